"""Value checks on distribution parameters that fire under `jit` (via `eqx.error_if`)."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array

from .._errors import error_if


def check_positive(value: Array, family: str, name: str) -> Array:
    """`value`, raising at run time (also under `jit`) unless it is finite and > 0."""
    return error_if(
        value,
        ~(jnp.isfinite(value) & (value > 0)),
        f"{family}: `{name}` must be finite and > 0; pass a positive {name} "
        "(check for NaN/inf or a sign error).",
    )
