"""How normix's own compiled programs are compiled on CPU: for compile speed or run speed.

normix compiles one program per eager entry point (`normix.fit` and `fit_mixture` on
concrete data, and the eager calls that `normix._compiled.compiled_when_eager` routes
through a cached program: quantiles, sampling, the GIG solver...). On XLA:CPU most of a
first call's time is code generation, and it grows with the number of kernels, not with
the data: a GH fit's program (Bessel pipelines, a Newton solver on scalars, the EM loop)
has hundreds of small kernels. XLA's newer MLIR "fusion emitters" make kernels faster
but cost more to generate, so a program compiled without them
(`xla_cpu_use_fusion_emitters=False`) is ready sooner and runs slower (2-core CPU,
S&P 20 stocks, 2026-12-08; the fitted parameters are bitwise equal either way):

| program | first call, fusion emitters | without | later calls, with | without |
|---|---|---|---|---|
| GH fit (21 EM steps) | 9.0-10.4 s | 6.2-6.4 s | 0.08 s | 0.13 s |
| skew-t fit | 3.4 s | 2.7 s | 0.055 s | 0.083 s |
| NIG fit | 1.45 s | 1.05 s | 0.018 s | 0.024 s |
| GMM n=65536 d=32 K=16, 20 steps | 6.8 s | 4.9 s | 2.11 s | 2.36 s |

Which is better depends on how often the program runs, which only the calls reveal. The
default mode `"auto"` therefore decides per program and argument signature, as in the
ski-rental problem: the first call compiles without the fusion emitters; once the later
calls have spent enough run time that the faster code would have paid for its own
compilation (`RUN_SAVING` x their run time >= `COMPILE_RATIO` x the first compile), the
next call compiles with XLA's defaults and every later one uses that program. Total time
is then at most about twice that of the better fixed choice made in hindsight; one fit
never pays for a slow compile, a Python loop of thousands of equal-shape fits runs at
full speed after a one-time recompile.

`"fast_compile"` and `"fast_run"` fix the choice. Programs the user compiles (anything
under their own `jax.jit`) are never affected, nor are GPU / TPU programs.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import core as jax_core

__all__ = [
    "at_top_level",
    "cpu_codegen",
    "fast_compile_options",
    "set_cpu_codegen",
    "signature",
    "TierRecord",
]

MODES = ("auto", "fast_compile", "fast_run")
ENV_VAR = "NORMIX_CPU_CODEGEN"
_FAST_COMPILE_OPTIONS: dict[str, Any] = {"xla_cpu_use_fusion_emitters": False}

# Ski-rental constants (measured, table above): the default code generator runs a program
# in about (1 - RUN_SAVING) of the time and compiles it in about COMPILE_RATIO x the time.
RUN_SAVING = 0.35
COMPILE_RATIO = 1.5

_mode: str | None = None  # None: from the environment variable (default "auto")


def _checked(mode: Any, where: str) -> str:
    if mode not in MODES:
        raise ValueError(
            f"{where}: the CPU code generation mode must be one of {MODES}, got {mode!r}."
        )
    return mode


def cpu_codegen() -> str:
    """The current mode: set by [`set_cpu_codegen`][normix.set_cpu_codegen], else the
    environment variable `NORMIX_CPU_CODEGEN`, else `"auto"`."""
    if _mode is not None:
        return _mode
    return _checked(os.environ.get(ENV_VAR, "auto"), f"environment variable {ENV_VAR}")


def set_cpu_codegen(mode: str) -> str:
    """Choose how normix compiles its own programs on CPU; returns the previous mode.

    - `"auto"` (default): a program is first compiled for compile speed (without XLA's
      fusion emitters: a first GH fit is ready in about 2/3 of the time); once its calls
      have run long enough to repay it, it is compiled again with XLA's defaults (EM
      steps up to ~1.6x faster) and that program serves the later calls.
    - `"fast_compile"`: always for compile speed.
    - `"fast_run"`: always XLA's defaults: slower first calls, faster repeats.

    The numbers computed are the same in every mode (the same operations; bitwise equal
    in the fits measured). Applies to programs compiled after the call, never to
    programs under the user's own `jax.jit`, nor on GPU / TPU. The environment variable
    `NORMIX_CPU_CODEGEN` sets the initial mode.
    """
    global _mode
    previous = cpu_codegen()
    _mode = _checked(mode, "normix.set_cpu_codegen")
    return previous


@functools.cache
def _options_supported(options: tuple[tuple[str, Any], ...]) -> bool:
    """Whether this jaxlib accepts the compile options (a later XLA may drop the flag:
    then every program gets the defaults)."""

    def normix_codegen_probe(x: jax.Array) -> jax.Array:
        return x + 1

    try:
        jitted = jax.jit(normix_codegen_probe, compiler_options=dict(options))
        jitted.lower(jnp.zeros(())).compile()
    except Exception:  # noqa: BLE001 (any rejection means: not supported)
        return False
    return True


def fast_compile_options() -> dict[str, Any]:
    """The compile options of a fast-compiling program here; empty where there is no such
    choice (not on CPU, or an XLA without the flag)."""
    if jax.default_backend() != "cpu":
        return {}
    options = tuple(sorted(_FAST_COMPILE_OPTIONS.items()))
    return dict(options) if _options_supported(options) else {}


def at_top_level() -> bool:
    """Whether no JAX transformation (`jit`, `vmap`, `eval_shape`...) is tracing now: only
    a top-level `jit` may carry compile options."""
    clean = getattr(jax_core, "trace_state_clean", None)
    return True if clean is None else bool(clean())


def signature(args: Any) -> Any:
    """A hashable key of what a jitted call is compiled for: the pytree structure, array
    shapes and dtypes, and the other (static) leaves; `None` if a leaf is unhashable."""
    leaves, treedef = jax.tree.flatten(args)
    spec = tuple(
        (leaf.shape, leaf.dtype, bool(getattr(leaf, "weak_type", False)))
        if isinstance(leaf, jax.Array | np.ndarray | np.generic)
        else leaf
        for leaf in leaves
    )
    key = (treedef, spec)
    try:
        hash(key)
    except TypeError:
        return None
    return key


class TierRecord:
    """Timings of one program signature's fast-compiled calls (`"auto"` mode)."""

    __slots__ = ("calls", "first_s", "later_s", "fast_run")

    def __init__(self) -> None:
        self.calls = 0
        self.first_s = 0.0  # the first call: compile + run
        self.later_s = 0.0  # the other calls: run time
        self.fast_run = False  # switched to the default code generator

    def record(self, seconds: float) -> None:
        """Add one call's wall time and decide whether the next call switches."""
        self.calls += 1
        if self.calls == 1:
            self.first_s = seconds
            return
        self.later_s += seconds
        compile_s = max(self.first_s - self.later_s / (self.calls - 1), 0.0)
        self.fast_run = RUN_SAVING * self.later_s >= COMPILE_RATIO * compile_s
