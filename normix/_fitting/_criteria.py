r"""Information criteria from a fitted model.

With $\ell$ the total (weight-summed) log-likelihood, $k$ = `n_parameters()` and $n$ the
number of observations (the sum of the weights, read as frequency weights):

$$\mathrm{AIC} = -2\ell + 2k,\qquad \mathrm{BIC} = -2\ell + k\log n.$$

Smaller is better.
"""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._em_model import AbstractEMModel
from ._driver import EMResult, validate_data


def _total_log_likelihood(
    result_or_model: EMResult | AbstractEMModel, X: ArrayLike, weights: ArrayLike | None
) -> tuple[Float[Array, ""], Float[Array, ""], int]:
    model = result_or_model.model if isinstance(result_or_model, EMResult) else result_or_model
    if not isinstance(model, AbstractEMModel):
        raise TypeError(
            f"expected an EMResult or an AbstractEMModel, got {type(result_or_model).__name__}."
        )
    x, w = validate_data(X, weights)
    n = jnp.sum(w)
    return n * model.log_likelihood(x, w), n, model.n_parameters()


def aic(
    result_or_model: EMResult | AbstractEMModel, X: ArrayLike, weights: ArrayLike | None = None
) -> Float[Array, ""]:
    r"""Akaike information criterion $-2\ell + 2k$ of the model on data `X`."""
    ll, _, k = _total_log_likelihood(result_or_model, X, weights)
    return -2.0 * ll + 2.0 * k


def bic(
    result_or_model: EMResult | AbstractEMModel, X: ArrayLike, weights: ArrayLike | None = None
) -> Float[Array, ""]:
    r"""Bayesian information criterion $-2\ell + k\log n$ of the model on data `X`."""
    ll, n, k = _total_log_likelihood(result_or_model, X, weights)
    return -2.0 * ll + k * jnp.log(n)
