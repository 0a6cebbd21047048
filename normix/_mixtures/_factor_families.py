r"""The named factor mixtures: thin final classes over `AbstractFactorNormalMixture`.

Each wraps the ordinary mixture of its family with $\Sigma = FF^\top + \operatorname{diag}(D)$;
all mathematics is in `AbstractFactorNormalMixture` (EM) and `AbstractNormalMixture`
(density, moments, sampling). Fit them with `normix.fit(cls, X, rank=r)`.

| class | wraps | constructor |
|---|---|---|
| `FactorGeneralizedHyperbolic` | `GeneralizedHyperbolic` | `(mu, gamma, F, D, p, a, b)` |
| `FactorNormalInverseGaussian` | `NormalInverseGaussian` | `(mu, gamma, F, D, mean, shape)` |
| `FactorNormalInverseGamma` (skew-t) | `NormalInverseGamma` | `(mu, gamma, F, D, shape, rate)` |
| `FactorVarianceGamma` | `VarianceGamma` | `(mu, gamma, F, D, shape, rate)` |
"""

from typing import ClassVar

import equinox as eqx
from jaxtyping import ArrayLike

from .._covariance import LowRankPlusDiagonal
from ._factor import AbstractFactorNormalMixture, _check_min_diag
from ._families import (
    GeneralizedHyperbolic,
    NormalInverseGamma,
    NormalInverseGaussian,
    VarianceGamma,
)
from ._marginal import AbstractNormalMixture


class FactorGeneralizedHyperbolic(AbstractFactorNormalMixture):
    r"""Generalized hyperbolic law with $\Sigma = FF^\top + \operatorname{diag}(D)$:
    $Y \sim \mathrm{GIG}(p, a, b)$; `fix_p=True` keeps $p$ fixed in the EM."""

    mixture: GeneralizedHyperbolic
    min_diag: float | None = eqx.field(static=True, default=None)
    base_family: ClassVar[type[AbstractNormalMixture]] = GeneralizedHyperbolic

    def __init__(
        self,
        mu: ArrayLike,
        gamma: ArrayLike,
        F: ArrayLike,
        D: ArrayLike,
        p: ArrayLike,
        a: ArrayLike,
        b: ArrayLike,
        *,
        fix_p: bool = False,
        min_diag: float | None = None,
    ):
        cov = LowRankPlusDiagonal(F, D)
        self.mixture = GeneralizedHyperbolic(mu, gamma, cov, p, a, b, fix_p=fix_p)
        self.min_diag = _check_min_diag(type(self).__name__, min_diag)


class FactorNormalInverseGaussian(AbstractFactorNormalMixture):
    r"""Normal-inverse Gaussian law with $\Sigma = FF^\top + \operatorname{diag}(D)$:
    $Y \sim \mathrm{InverseGaussian}(\text{mean}, \text{shape})$."""

    mixture: NormalInverseGaussian
    min_diag: float | None = eqx.field(static=True, default=None)
    base_family: ClassVar[type[AbstractNormalMixture]] = NormalInverseGaussian

    def __init__(
        self,
        mu: ArrayLike,
        gamma: ArrayLike,
        F: ArrayLike,
        D: ArrayLike,
        mean: ArrayLike,
        shape: ArrayLike,
        *,
        min_diag: float | None = None,
    ):
        cov = LowRankPlusDiagonal(F, D)
        self.mixture = NormalInverseGaussian(mu, gamma, cov, mean, shape)
        self.min_diag = _check_min_diag(type(self).__name__, min_diag)


class FactorNormalInverseGamma(AbstractFactorNormalMixture):
    r"""Skew-t law with $\Sigma = FF^\top + \operatorname{diag}(D)$:
    $Y \sim \mathrm{InverseGamma}(\text{shape}, \text{rate})$."""

    mixture: NormalInverseGamma
    min_diag: float | None = eqx.field(static=True, default=None)
    base_family: ClassVar[type[AbstractNormalMixture]] = NormalInverseGamma

    def __init__(
        self,
        mu: ArrayLike,
        gamma: ArrayLike,
        F: ArrayLike,
        D: ArrayLike,
        shape: ArrayLike,
        rate: ArrayLike,
        *,
        min_diag: float | None = None,
    ):
        cov = LowRankPlusDiagonal(F, D)
        self.mixture = NormalInverseGamma(mu, gamma, cov, shape, rate)
        self.min_diag = _check_min_diag(type(self).__name__, min_diag)


class FactorVarianceGamma(AbstractFactorNormalMixture):
    r"""Variance-gamma law with $\Sigma = FF^\top + \operatorname{diag}(D)$:
    $Y \sim \mathrm{Gamma}(\text{shape}, \text{rate})$; `min_shape` as in `VarianceGamma`."""

    mixture: VarianceGamma
    min_diag: float | None = eqx.field(static=True, default=None)
    base_family: ClassVar[type[AbstractNormalMixture]] = VarianceGamma

    def __init__(
        self,
        mu: ArrayLike,
        gamma: ArrayLike,
        F: ArrayLike,
        D: ArrayLike,
        shape: ArrayLike,
        rate: ArrayLike,
        *,
        min_shape: float | None = None,
        min_diag: float | None = None,
    ):
        cov = LowRankPlusDiagonal(F, D)
        self.mixture = VarianceGamma(mu, gamma, cov, shape, rate, min_shape=min_shape)
        self.min_diag = _check_min_diag(type(self).__name__, min_diag)
