"""Small shared helpers: dtype handling and batching over leading axes."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike


def float_dtype(*args: ArrayLike) -> jnp.dtype:
    """The floating dtype that `args` promote to (float64 under `jax_enable_x64`)."""
    return jnp.result_type(*args, float)


def as_float(*args: ArrayLike) -> tuple[Array, ...]:
    """Convert `args` to arrays of one common floating dtype."""
    dtype = float_dtype(*args)
    return tuple(jnp.asarray(a, dtype=dtype) for a in args)


def require_scalar(name: str, value: Array, owner: str) -> None:
    """Raise a `ValueError` at trace time if a parameter is not a scalar."""
    if jnp.ndim(value) != 0:
        raise ValueError(
            f"{owner}: `{name}` must be a scalar, got shape {jnp.shape(value)}. "
            "To work with many distributions at once, build them under `jax.vmap`."
        )


def require_rows(x: Array, owner: str) -> None:
    """Trace-time check that `x` is an `(n, d)` matrix, one row per observation."""
    if x.ndim != 2:
        hint = " For one series use X[:, None]." if x.ndim == 1 else ""
        raise ValueError(
            f"{owner}: the data must have shape (n, d), one row per observation; got shape "
            f"{x.shape}.{hint}"
        )


def split_batch(x: Array, event_shape: tuple[int, ...], owner: str) -> tuple[int, ...]:
    """Return the batch shape of `x` given the event shape, or raise a clear `ValueError`."""
    n_event = len(event_shape)
    if x.ndim < n_event or tuple(x.shape[x.ndim - n_event :]) != tuple(event_shape):
        raise ValueError(
            f"{owner}: expected observations with trailing shape {tuple(event_shape)}, "
            f"got an array of shape {x.shape}."
        )
    return tuple(x.shape[: x.ndim - n_event])


def map_over_batch(
    fn: Callable[[Array], Array], x: Array, event_shape: tuple[int, ...], owner: str
) -> Array:
    """Apply `fn` (written for one observation) over every leading batch axis of `x`."""
    batch_shape = split_batch(x, event_shape, owner)
    if batch_shape == ():
        return fn(x)
    flat = x.reshape((-1, *event_shape))
    out = jax.vmap(fn)(flat)
    return out.reshape(batch_shape + out.shape[1:])
