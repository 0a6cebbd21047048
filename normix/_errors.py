"""Run-time checks (`error_if`) whose failure mode the fitting entry points can switch.

Every value check in normix goes through [`error_if`][] / [`branched_error_if`][] here
rather than calling Equinox directly. By default they behave exactly like
`eqx.error_if` (`on_error="default"`: raise, also under `jit`, or whatever `EQX_ON_ERROR`
says). Inside [`checks_as_nan`][] they are traced with `on_error="nan"`: a failed check
turns the guarded value into NaN instead of raising through a host callback.

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
from jaxtyping import ArrayLike

_ON_ERROR: ContextVar[str] = ContextVar("normix_on_error", default="default")


def error_if(x: Any, pred: ArrayLike, msg: str) -> Any:
    """`eqx.error_if(x, pred, msg)` in the current check mode (see the module doc)."""
    return eqx.error_if(x, pred, msg, on_error=_ON_ERROR.get())  # pyright: ignore


def branched_error_if(x: Any, pred: ArrayLike, index: ArrayLike, msgs: Sequence[str]) -> Any:
    """`eqx.branched_error_if(x, pred, index, msgs)` in the current check mode."""
    return eqx.branched_error_if(x, pred, index, msgs, on_error=_ON_ERROR.get())  # pyright: ignore


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
