"""Eager calls of loop-heavy functions as cached compiled programs.

Called outside `jit`, a JAX function runs op by op. Primitives are compiled once per shape
and cached, but a `lax.while_loop` / `fori_loop` whose body closes over Python functions
made inside the call (a quantile search around a cdf, a rejection sampler, the GIG Newton
solver) is traced and compiled again at *every* call: a second `ppf` or `sample` of the
same law used to cost as much as the first (5-8 s on a 2-core CPU).

`compiled_when_eager(fn)` runs `fn` through one module-level `eqx.filter_jit` program when
no argument is a tracer, so the compiled program is cached by `fn`, the argument shapes
and dtypes and the static (non-array) arguments, not by the values. Inside `jit` / `vmap`
(any tracer in the arguments) `fn` is called as it is, so enclosing programs are unchanged.
There is one program per check mode (`jit_by_check_mode`, also used by the fits), so a
trace made inside `normix._errors.checks_as_nan` never serves a raising call, and per CPU
code generation mode (`normix._codegen`: compiled for compile speed first, and for run
speed once a program has run long enough). Python floats
passed as arguments are turned into arrays first; `filter_jit` would otherwise treat them as
static and compile once per value (a `value_at_risk(0.99)` then `(0.95)`). Ints, bools,
tuples (shapes), strings and `None` stay static.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

import equinox as eqx
import jax
import jax.numpy as jnp

from ._codegen import TierRecord, at_top_level, cpu_codegen, fast_compile_options, signature
from ._errors import checks_as_nan_active

_F = TypeVar("_F", bound=Callable[..., Any])
T = TypeVar("T")


def is_traced(tree: Any) -> bool:
    """Whether `tree` holds a tracer (a `jit` / `vmap` argument)."""
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def _float_to_array(leaf: Any) -> Any:
    return jnp.asarray(leaf) if type(leaf) is float else leaf


def jit_by_check_mode(fn: Callable[..., T]) -> Callable[[], Callable[..., T]]:
    """`eqx.filter_jit(fn)` per check mode and CPU code generation; returns a function
    giving the callable for the current modes. Jitted functions cache their traces by
    argument types only, so a function traced in both check modes must be two jitted
    objects, and they wrap two function objects (`<name>_nan_checks` for the NaN mode,
    also the name its compiled program is cached under; `_fast_compile` is appended for
    the program compiled for compile speed, see `normix._codegen`). In `"auto"` code
    generation the callable times eager calls per argument signature and moves a
    signature to the default-compiled program once it has run long enough."""
    programs: dict[tuple[bool, tuple[tuple[str, Any], ...]], Callable[..., T]] = {}
    records: dict[Any, TierRecord] = {}

    def jitted(nan: bool, fast: bool) -> Callable[..., T]:
        options = fast_compile_options() if fast else {}
        key = (nan, tuple(sorted(options.items())))
        if key not in programs:
            if nan or options:

                def wrapped(*args: Any) -> T:
                    return fn(*args)

                suffix = ("_nan_checks" if nan else "") + ("_fast_compile" if options else "")
                wrapped.__name__ = f"{fn.__name__}{suffix}"
                wrapped.__qualname__ = f"{fn.__qualname__}{suffix}"
            else:
                wrapped = fn
            jit_kwargs = {"compiler_options": options} if options else {}
            programs[key] = eqx.filter_jit(wrapped, **jit_kwargs)
        return programs[key]

    def call(nan: bool, mode: str, *args: Any) -> T:
        if is_traced(args) or not at_top_level():
            # inside the caller's trace (also on constants): no compile options allowed
            return jitted(nan, False)(*args)
        if mode == "fast_compile":
            return jitted(nan, True)(*args)
        key = signature((nan, args))
        if key is None:  # no hashable signature: no timings to keep
            return jitted(nan, True)(*args)
        record = records.setdefault(key, TierRecord())
        if record.fast_run:
            return jitted(nan, False)(*args)
        start = time.perf_counter()
        out = jax.block_until_ready(jitted(nan, True)(*args))
        record.record(time.perf_counter() - start)
        return out

    def program() -> Callable[..., T]:
        nan = checks_as_nan_active()
        mode = cpu_codegen()
        # (inside a transformation's trace: the default program, and no probe of the
        # compile options from inside someone else's trace)
        if mode == "fast_run" or not at_top_level() or not fast_compile_options():
            return jitted(nan, False)
        return functools.partial(call, nan, mode)

    return program


def _compiled_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return fn(*args, **kwargs)


_compiled_programs = jit_by_check_mode(_compiled_call)


def compiled_when_eager(fn: _F) -> _F:
    """Decorator: eager calls of `fn` (a function or method) go through one cached compiled
    program (see the module docstring); traced calls are unchanged."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if is_traced((args, kwargs)):
            return fn(*args, **kwargs)
        args = tuple(_float_to_array(a) for a in args)
        kwargs = {k: _float_to_array(v) for k, v in kwargs.items()}
        return _compiled_programs()(fn, args, kwargs)

    return wrapper  # pyright: ignore[reportReturnType]
