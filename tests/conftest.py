"""Test configuration: float64, strict promotion, key-reuse checks, shared fixtures."""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
# The suite is compile-bound (hundreds of small programs, each run a few times). XLA:CPU's
# older loop-fusion code generator compiles them about 45% faster; the numbers it computes
# agree to rounding, and the library itself keeps XLA's defaults (docs/design.md, "Test
# suite time"). NORMIX_TEST_XLA_DEFAULTS=1 runs the suite with the defaults instead.
if os.environ.get("NORMIX_TEST_XLA_DEFAULTS", "0") != "1":
    # with the flag global, normix's two code-generation tiers compile the same code:
    # stay on the first (tests/test_codegen.py sets "auto" where it tests the switch)
    os.environ.setdefault("NORMIX_CPU_CODEGEN", "fast_compile")
    _flag = "--xla_cpu_use_fusion_emitters=false"
    if _flag.split("=")[0] not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()

import jax  # noqa: E402
import jax.random as jr  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")

# Opt-in (NORMIX_TEST_CACHE=1): a persistent compilation cache in the repository (ignored
# by git). Off by default: on a fresh clone, serialising every compiled program to disk
# made the suite slower, not faster. Results do not depend on it.
if os.environ.get("NORMIX_TEST_CACHE", "0") == "1":
    _cache = os.path.join(os.path.dirname(os.path.dirname(__file__)), ".jax-test-cache")
    jax.config.update("jax_compilation_cache_dir", _cache)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.3)


@pytest.fixture
def key():
    return jr.key(20261122)


@pytest.fixture
def getkey():
    """Call `getkey()` for a fresh key each time within a test."""
    state = {"key": jr.key(1234)}

    def _next():
        state["key"], sub = jr.split(state["key"])
        return sub

    return _next
