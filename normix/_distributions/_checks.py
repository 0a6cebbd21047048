"""Value checks on distribution parameters that fire under `jit` (via `eqx.error_if`)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array

from .._errors import error_if


def check_spread(gap: Array, family: str, statistic: str) -> Array:
    """`gap`, raising at run time (also under `jit`) unless it is > 0: the Jensen gap of the
    expectation parameters that an MLE divides by, which is 0 for data without spread."""
    return error_if(
        gap,
        ~(gap > 0),
        f"{family}: the expectations have no spread ({statistic} must be > 0; it is 0 for "
        "constant data, up to rounding): the MLE does not exist. Fit data that vary.",
    )


def check_positive(value: Array, family: str, name: str) -> Array:
    """`value`, raising at run time (also under `jit`) unless it is finite and > 0."""
    return error_if(
        value,
        ~(jnp.isfinite(value) & (value > 0)),
        f"{family}: `{name}` must be finite and > 0; pass a positive {name} "
        "(check for NaN/inf or a sign error).",
    )
