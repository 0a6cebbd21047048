"""Run-time checks (`error_if`) whose failure mode the fitting entry points can switch.

Every value check in normix goes through [`error_if`][] / [`branched_error_if`][] here
rather than calling Equinox directly. By default they behave exactly like
`eqx.error_if` (`on_error="default"`: raise, also under `jit`, or whatever `EQX_ON_ERROR`
says). Inside [`checks_as_nan`][] they are traced with `on_error="nan"`: a failed check
turns the guarded value into NaN instead of raising through a host callback.

In NaN mode the check is normix's own `jnp.where`, applied per element of a `vmap`
batch, not Equinox's, which NaNs the whole batch when one element fails.

Why: JAX's persistent compilation cache does not store programs that contain host
callbacks, and Equinox's raising checks are host callbacks. `normix.fit` called on
concrete data therefore traces its program inside `checks_as_nan` (a program without
callbacks, which the cache can keep), reads the result code on the host, and only when the
fit ended `nonfinite` (which every failed check leads to) runs the raising program to
report the exact error. The switch is a `ContextVar`, so it is per thread: a fit traced in
one thread does not change checks traced in another. Jitted functions cache their traces
by argument types, not by this switch, so the two modes must be traced through different
jitted functions (see `normix._fitting._driver`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike

_ON_ERROR: ContextVar[str] = ContextVar("normix_on_error", default="default")


def _nan_if(x: Any, pred: ArrayLike) -> Any:
    """The floating-point leaves of `x` replaced by NaN where `any(pred)`, per batch
    element under `vmap` (Equinox's NaN mode reduces `pred` over the whole vmapped batch,
    so one failing dataset or start would turn every other one into NaN too)."""
    bad = jnp.any(jnp.asarray(pred))

    def one(leaf: Any) -> Any:
        if eqx.is_inexact_array(leaf):
            return jnp.where(bad, jnp.asarray(jnp.nan, leaf.dtype), leaf)
        return leaf

    return jax.tree.map(one, x)


def error_if(x: Any, pred: ArrayLike, msg: str) -> Any:
    """`eqx.error_if(x, pred, msg)` in the current check mode (see the module doc)."""
    if _ON_ERROR.get() == "nan":
        return _nan_if(x, pred)
    return eqx.error_if(x, pred, msg)


def branched_error_if(x: Any, pred: ArrayLike, index: ArrayLike, msgs: Sequence[str]) -> Any:
    """`eqx.branched_error_if(x, pred, index, msgs)` in the current check mode."""
    if _ON_ERROR.get() == "nan":
        return _nan_if(x, pred)
    return eqx.branched_error_if(x, pred, index, msgs)


def enum_error_if(token: Any, pred: ArrayLike, item: Any) -> Any:
    """`item.error_if(token, pred)` for an `eqx.Enumeration` item (a result code), in the
    current check mode: raises with the message of the code held by `item`."""
    messages = item._enumeration._index_to_message  # pyright: ignore
    return branched_error_if(token, pred, item._value, messages)  # pyright: ignore


def checks_as_nan_active() -> bool:
    """Whether checks are currently traced in NaN mode."""
    return _ON_ERROR.get() == "nan"


@contextlib.contextmanager
def checks_as_nan() -> Iterator[None]:
    """Inside: checks traced now return NaN on failure instead of raising."""
    token = _ON_ERROR.set("nan")
    try:
        yield
    finally:
        _ON_ERROR.reset(token)
