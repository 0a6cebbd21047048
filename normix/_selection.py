r"""Family selection by information criterion (like R ghyp's `stepAIC.ghyp`).

Each candidate family is fitted to the same data by `normix.fit`; the candidates are
ranked by

$$\mathrm{AIC} = -2\ell + 2k \qquad\text{or}\qquad \mathrm{BIC} = -2\ell + k\log n,$$

with $\ell$ the total log-likelihood, $k$ the number of free parameters (the scale gauge
of the mixtures is not counted) and $n$ the number of observations. Smaller is better.
"""

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike

from ._distributions import MultivariateNormal
from ._em_model import AbstractEMModel
from ._fitting import EMResult, fit, validate_data
from ._mixtures import (
    GeneralizedHyperbolic,
    Hyperbolic,
    NormalInverseGamma,
    NormalInverseGaussian,
    StudentT,
    VarianceGamma,
)

DEFAULT_FAMILIES: tuple[type[AbstractEMModel], ...] = (
    MultivariateNormal,
    StudentT,
    NormalInverseGamma,
    NormalInverseGaussian,
    VarianceGamma,
    Hyperbolic,
    GeneralizedHyperbolic,
)

_CRITERIA = ("aic", "bic")


@dataclasses.dataclass(frozen=True)
class CandidateFit:
    """One row of a selection table."""

    family: str
    log_likelihood: float  # mean per observation
    n_parameters: int
    aic: float
    bic: float
    n_steps: int
    converged: bool
    seconds: float
    result: EMResult


@dataclasses.dataclass(frozen=True)
class Selection:
    """Candidates sorted by the criterion (best first); `best` is the winning model."""

    criterion: str
    candidates: tuple[CandidateFit, ...]

    @property
    def best(self) -> Any:
        return self.candidates[0].result.model

    def table(self) -> str:
        """A plain-text table of the candidates, best first."""
        head = (
            f"{'family':<24}{'loglik/obs':>14}{'k':>6}{'AIC':>14}{'BIC':>14}{'steps':>7}{'sec':>8}"
        )
        rows = [head, "-" * len(head)]
        for c in self.candidates:
            mark = "" if c.converged else "  (not converged)"
            rows.append(
                f"{c.family:<24}{c.log_likelihood:>14.6f}{c.n_parameters:>6d}"
                f"{c.aic:>14.2f}{c.bic:>14.2f}{c.n_steps:>7d}{c.seconds:>8.2f}{mark}"
            )
        return "\n".join(rows)


def select(
    X: ArrayLike,
    families: tuple[type[AbstractEMModel], ...] = DEFAULT_FAMILIES,
    *,
    criterion: str = "aic",
    weights: ArrayLike | None = None,
    **fit_kwargs: Any,
) -> Selection:
    r"""Fit each family in `families` to `X` and rank them by `criterion` (`"aic"` or
    `"bic"`). Extra keyword arguments go to `normix.fit` (e.g. `max_steps`, `solver`);
    `throw=False` is used so one failing candidate does not stop the others (its row is
    marked not converged and ranks by the log-likelihood it reached).

    `weights` are frequency weights: a weight of 2 counts a row twice, so the criteria use
    the total log-likelihood $\sum_i w_i \log f(x_i)$ and $n = \sum_i w_i$. Their scale
    therefore matters (unlike for the fitted parameters): weights that sum to 1 describe
    one observation, and AIC/BIC then rank almost by the parameter count. Rescale
    relative weights to sum to the number of rows, `w * len(w) / w.sum()`, for the usual
    penalty."""
    if criterion not in _CRITERIA:
        raise ValueError(f"select: `criterion` must be one of {_CRITERIA}, got {criterion!r}.")
    if not families:
        raise ValueError("select: `families` is empty.")
    x, w = validate_data(X, weights)
    n = float(jnp.sum(w))
    user_weights = None if weights is None else w
    fit_kwargs.setdefault("throw", False)
    rows = []
    for family in families:
        start = time.perf_counter()
        result = fit(family, x, weights=user_weights, **fit_kwargs)
        jax.block_until_ready(result.log_likelihood)
        seconds = time.perf_counter() - start
        ll = float(result.log_likelihood)
        k = result.model.n_parameters()
        total = n * ll
        rows.append(
            CandidateFit(
                family=family.__name__,
                log_likelihood=ll,
                n_parameters=k,
                aic=-2.0 * total + 2.0 * k,
                bic=-2.0 * total + k * float(jnp.log(n)),
                n_steps=int(result.n_steps),
                converged=bool(result.converged),
                seconds=seconds,
                result=result,
            )
        )
    key = (lambda c: c.aic) if criterion == "aic" else (lambda c: c.bic)
    ordered = tuple(sorted(rows, key=lambda c: (not jnp.isfinite(key(c)), key(c))))
    return Selection(criterion=criterion, candidates=ordered)
