"""Test configuration: float64, strict promotion, key-reuse checks, shared fixtures."""

import os

os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import jax  # noqa: E402
import jax.random as jr  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_numpy_dtype_promotion", "strict")


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
