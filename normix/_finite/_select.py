# ruff: noqa: F722  (jaxtyping shape strings)
r"""Choosing the number of components (and the covariance type / component family).

Every candidate $(K, \text{family}, \text{covariance})$ is fitted by `fit_mixture` and
scored on the same data by (smaller is better)

$$\mathrm{AIC} = -2\ell + 2k,\qquad \mathrm{BIC} = -2\ell + k\log n,\qquad
  \mathrm{ICL} = \mathrm{BIC} + 2\sum_i w_i\sum_k -r_{ik}\log r_{ik},$$

$\ell$ the total log-likelihood, $k$ the number of free parameters, $n$ the (weighted)
number of observations and $r_{ik}$ the responsibilities.
"""

import dataclasses
import time
from collections.abc import Iterable
from typing import Any

import jax
import jax.numpy as jnp
from jaxtyping import ArrayLike, PRNGKeyArray

from .._distributions import MultivariateNormal
from .._fitting import EMResult, validate_data
from ._fit import fit_mixture
from ._mixture import FiniteMixture

_CRITERIA = ("bic", "aic", "icl")


@dataclasses.dataclass(frozen=True)
class MixtureCandidate:
    """One row of a `MixtureSelection` table."""

    n_components: int
    component: str
    covariance: str
    log_likelihood: float  # mean per observation
    n_parameters: int
    aic: float
    bic: float
    icl: float
    n_steps: int
    converged: bool
    seconds: float
    result: EMResult


@dataclasses.dataclass(frozen=True)
class MixtureSelection:
    """Candidates sorted by `criterion`, best first; `best` is the winning `FiniteMixture`."""

    criterion: str
    candidates: tuple[MixtureCandidate, ...]

    @property
    def best(self) -> FiniteMixture:
        return self.candidates[0].result.model

    @property
    def best_candidate(self) -> MixtureCandidate:
        return self.candidates[0]

    def table(self) -> str:
        """A plain-text table of the candidates, best first."""
        head = (
            f"{'K':>3}  {'component':<22}{'cov':<10}{'loglik/obs':>12}{'k':>6}"
            f"{'AIC':>13}{'BIC':>13}{'ICL':>13}{'steps':>7}{'sec':>7}"
        )
        rows = [head, "-" * len(head)]
        for c in self.candidates:
            mark = "" if c.converged else "  (not converged)"
            rows.append(
                f"{c.n_components:>3}  {c.component:<22}{c.covariance:<10}{c.log_likelihood:>12.5f}"
                f"{c.n_parameters:>6d}{c.aic:>13.2f}{c.bic:>13.2f}{c.icl:>13.2f}"
                f"{c.n_steps:>7d}{c.seconds:>7.2f}{mark}"
            )
        return "\n".join(rows)


def _as_tuple(value: Any) -> tuple:
    if isinstance(value, (str, type)) or not isinstance(value, Iterable):
        return (value,)
    return tuple(value)


def select_mixture(
    X: ArrayLike,
    n_components: int | Iterable[int] = range(1, 7),
    *,
    component: Any = MultivariateNormal,
    covariance: str | Iterable[str] = "full",
    criterion: str = "bic",
    key: PRNGKeyArray,
    weights: ArrayLike | None = None,
    **fit_kwargs: Any,
) -> MixtureSelection:
    r"""Fit every combination of `n_components` × `component` × `covariance` and rank by
    `criterion` (`"bic"`, `"aic"` or `"icl"`).

    `component` and `covariance` may be single values or sequences; covariance types other
    than `"full"` apply to `MultivariateNormal` only (GH-family classes are fitted once, with
    a full dispersion matrix). Remaining keyword arguments go to `fit_mixture` (`n_init`,
    `max_steps`, `tol`, `reg_covar`, ...). Every candidate uses the same `key`.

    **Returns:** a `MixtureSelection` (`.best`, `.candidates`, `.table()`).
    """
    if criterion not in _CRITERIA:
        raise ValueError(
            f"select_mixture: `criterion` must be one of {_CRITERIA}, got {criterion!r}."
        )
    ks = _as_tuple(n_components)
    families = _as_tuple(component)
    covs = _as_tuple(covariance)
    if not ks or not families or not covs:
        raise ValueError(
            "select_mixture: `n_components`, `component` and `covariance` must be non-empty."
        )
    x, w = validate_data(X, weights)
    user_weights = None if weights is None else w
    rows = []
    for family in families:
        family_covs = covs if family is MultivariateNormal else ("full",)
        for cov in family_covs:
            for K in ks:
                start = time.perf_counter()
                result = fit_mixture(
                    x,
                    int(K),
                    component=family,
                    covariance=cov,
                    key=key,
                    weights=user_weights,
                    **fit_kwargs,
                )
                jax.block_until_ready(result.log_likelihood)
                seconds = time.perf_counter() - start
                model = result.model
                rows.append(
                    MixtureCandidate(
                        n_components=int(K),
                        component=family.__name__,
                        covariance=cov,
                        log_likelihood=float(result.log_likelihood),
                        n_parameters=model.n_parameters(),
                        aic=float(model.aic(x, user_weights)),
                        bic=float(model.bic(x, user_weights)),
                        icl=float(model.icl(x, user_weights)),
                        n_steps=int(result.n_steps),
                        converged=bool(result.converged),
                        seconds=seconds,
                        result=result,
                    )
                )
    ordered = tuple(
        sorted(rows, key=lambda c: (not jnp.isfinite(getattr(c, criterion)), getattr(c, criterion)))
    )
    return MixtureSelection(criterion=criterion, candidates=ordered)
