r"""The named normal variance-mean mixtures users construct and fit.

Each is a thin final class: it fixes the subordinator (and so the joint family), the
classical-parameter constructor, and the start used by `initialize`. All mathematics is
in `AbstractNormalMixture` and `AbstractJointNormalMixture`.

| class | $Y$ | constructor |
|---|---|---|
| `VarianceGamma` | Gamma(shape, rate) | `(mu, gamma, cov, shape, rate)` |
| `NormalInverseGamma` (skew-t) | InverseGamma(shape, rate) | `(mu, gamma, cov, shape, rate)` |
| `StudentT` | InverseGamma(df/2, df/2), $\gamma = 0$ | `(mu, cov, df)` |
| `NormalInverseGaussian` | InverseGaussian(mean, shape) | `(mu, gamma, cov, mean, shape)` |
| `GeneralizedHyperbolic` | GIG(p, a, b) | `(mu, gamma, cov, p, a, b)` |
"""

from __future__ import annotations

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from .._covariance import AbstractCovariance
from .._distributions._gamma import Gamma
from .._distributions._gig import GIG
from .._distributions._inverse_gamma import InverseGamma
from .._distributions._inverse_gaussian import InverseGaussian
from .._subordinator import AbstractSubordinator
from ._gig_m_step import (
    gig_m_step_fixed_p_with_boundary,
    gig_m_step_with_boundary,
)
from ._joint import (
    AbstractJointNormalMixture,
    JointGeneralizedHyperbolic,
    JointNormalInverseGamma,
    JointNormalInverseGaussian,
    JointVarianceGamma,
)
from ._marginal import AbstractNormalMixture

Cov = ArrayLike | AbstractCovariance


def _scalar(value: float, dtype: jnp.dtype):
    return jnp.asarray(value, dtype=dtype)


class VarianceGamma(AbstractNormalMixture):
    r"""Variance-gamma law: $Y \sim \mathrm{Gamma}(\text{shape}, \text{rate})$.

    Gauge: $\mathbb{E}Y = \text{shape}/\text{rate} = 1$ after fitting. The density is
    unbounded at $x = \mu$ when shape $\le d/2$ (see `docs/design.md`, VG singularity).
    """

    joint: JointVarianceGamma
    min_shape: float | None = eqx.field(static=True, default=None)
    joint_family: ClassVar[type[AbstractJointNormalMixture]] = JointVarianceGamma
    gauge_on_inverse_moment: ClassVar[bool] = False
    symmetric: ClassVar[bool] = False
    fix_p: ClassVar[bool] = False

    def __init__(
        self,
        mu: ArrayLike,
        gamma: ArrayLike,
        cov: Cov,
        shape: ArrayLike,
        rate: ArrayLike,
        *,
        min_shape: float | None = None,
    ):
        self.joint = JointVarianceGamma(mu, gamma, cov, Gamma(shape, rate))
        self.min_shape = min_shape

    def subordinator_m_step(self, eta_gig: Float[Array, " 3"], theta0: Array) -> Gamma:
        r"""Gamma MLE from $(\mathbb{E}\log Y, \mathbb{E}Y)$; with `min_shape` set, the MLE
        over shape $\ge$ `min_shape` (the profile likelihood is concave in the shape, so
        it is $\max(\hat\alpha, \alpha_{\min})$ with rate $\alpha/\mathbb{E}Y$)."""
        fitted = Gamma.from_gig_expectation(eta_gig, theta0)
        if self.min_shape is None:
            return fitted
        shape = jnp.maximum(fitted.shape, jnp.asarray(self.min_shape, fitted.shape.dtype))
        return Gamma(shape, shape / eta_gig[2])

    @classmethod
    def default_subordinator(cls, dim: int, dtype: jnp.dtype) -> AbstractSubordinator:
        shape = _scalar(0.5 * dim + 2.0, dtype)
        return Gamma(shape, shape)


class NormalInverseGamma(AbstractNormalMixture):
    r"""Skew-t law (normal-inverse-gamma mixture): $Y \sim \mathrm{InverseGamma}(\text{shape},
    \text{rate})$; with shape = rate = ν/2 and γ = 0 it is Student-t with ν degrees of freedom.

    Gauge: $\mathbb{E}Y^{-1} = \text{shape}/\text{rate} = 1$ after fitting.
    """

    joint: JointNormalInverseGamma
    joint_family: ClassVar[type[AbstractJointNormalMixture]] = JointNormalInverseGamma
    gauge_on_inverse_moment: ClassVar[bool] = True
    symmetric: ClassVar[bool] = False
    fix_p: ClassVar[bool] = False

    def __init__(
        self, mu: ArrayLike, gamma: ArrayLike, cov: Cov, shape: ArrayLike, rate: ArrayLike
    ):
        self.joint = JointNormalInverseGamma(mu, gamma, cov, InverseGamma(shape, rate))

    def subordinator_m_step(self, eta_gig: Float[Array, " 3"], theta0: Array) -> InverseGamma:
        """The closed-form MLE of the InverseGamma subordinator."""
        return InverseGamma.from_gig_expectation(eta_gig, theta0)

    @classmethod
    def default_subordinator(cls, dim: int, dtype: jnp.dtype) -> AbstractSubordinator:
        return InverseGamma(_scalar(3.0, dtype), _scalar(3.0, dtype))


class StudentT(AbstractNormalMixture):
    r"""Multivariate Student-t with `df` degrees of freedom, location `mu`, scale matrix
    `cov`: the skew-t with $\gamma = 0$ held fixed, $Y \sim \mathrm{InverseGamma}(\nu/2, \nu/2)$.
    """

    joint: JointNormalInverseGamma
    joint_family: ClassVar[type[AbstractJointNormalMixture]] = JointNormalInverseGamma
    gauge_on_inverse_moment: ClassVar[bool] = True
    symmetric: ClassVar[bool] = True
    fix_p: ClassVar[bool] = False

    def __init__(self, mu: ArrayLike, cov: Cov, df: ArrayLike):
        mu = jnp.asarray(mu)
        mu = mu.astype(jnp.result_type(mu, float))
        half = 0.5 * jnp.asarray(df, dtype=mu.dtype)
        self.joint = JointNormalInverseGamma(mu, jnp.zeros_like(mu), cov, InverseGamma(half, half))

    @property
    def df(self):
        """Degrees of freedom ν = 2·shape of the inverse-gamma subordinator."""
        return 2.0 * self.subordinator.shape

    def subordinator_m_step(self, eta_gig: Float[Array, " 3"], theta0: Array) -> InverseGamma:
        """The closed-form MLE of the InverseGamma subordinator."""
        return InverseGamma.from_gig_expectation(eta_gig, theta0)

    @classmethod
    def default_subordinator(cls, dim: int, dtype: jnp.dtype) -> AbstractSubordinator:
        return InverseGamma(_scalar(3.0, dtype), _scalar(3.0, dtype))


class NormalInverseGaussian(AbstractNormalMixture):
    r"""Normal-inverse Gaussian law: $Y \sim \mathrm{InverseGaussian}(\text{mean}, \text{shape})$.

    Gauge: $\mathbb{E}Y = \text{mean} = 1$ after fitting.
    """

    joint: JointNormalInverseGaussian
    joint_family: ClassVar[type[AbstractJointNormalMixture]] = JointNormalInverseGaussian
    gauge_on_inverse_moment: ClassVar[bool] = False
    symmetric: ClassVar[bool] = False
    fix_p: ClassVar[bool] = False

    def __init__(
        self, mu: ArrayLike, gamma: ArrayLike, cov: Cov, mean: ArrayLike, shape: ArrayLike
    ):
        self.joint = JointNormalInverseGaussian(mu, gamma, cov, InverseGaussian(mean, shape))

    def subordinator_m_step(self, eta_gig: Float[Array, " 3"], theta0: Array) -> InverseGaussian:
        """The closed-form MLE of the InverseGaussian subordinator."""
        return InverseGaussian.from_gig_expectation(eta_gig, theta0)

    @classmethod
    def default_subordinator(cls, dim: int, dtype: jnp.dtype) -> AbstractSubordinator:
        return InverseGaussian(_scalar(1.0, dtype), _scalar(1.0, dtype))


class GeneralizedHyperbolic(AbstractNormalMixture):
    r"""Generalized hyperbolic law: $Y \sim \mathrm{GIG}(p, a, b)$.

    Gauge: $\mathbb{E}Y = 1$ after fitting. Limits: $p = -1/2$ is NIG, $b \to 0$ is VG,
    $a \to 0$ is the skew-t.
    """

    joint: JointGeneralizedHyperbolic
    fix_p: bool = eqx.field(static=True, default=False)
    joint_family: ClassVar[type[AbstractJointNormalMixture]] = JointGeneralizedHyperbolic
    gauge_on_inverse_moment: ClassVar[bool] = False
    symmetric: ClassVar[bool] = False

    def __init__(
        self,
        mu: ArrayLike,
        gamma: ArrayLike,
        cov: Cov,
        p: ArrayLike,
        a: ArrayLike,
        b: ArrayLike,
        *,
        fix_p: bool = False,
    ):
        self.joint = JointGeneralizedHyperbolic(mu, gamma, cov, GIG(p, a, b))
        self.fix_p = bool(fix_p)

    def subordinator_m_step(self, eta_gig: Float[Array, " 3"], theta0: Array) -> GIG:
        """GIG MLE by Newton (warm-started at `theta0`, the current subordinator); over the
        closure of the GIG family when p is free (an inverse-Gamma or Gamma law when the
        maximiser lies on the boundary, `_gig_m_step.py`); with `fix_p=True`, over (a, b)
        and the boundary law of that p."""
        if self.fix_p:
            return gig_m_step_fixed_p_with_boundary(eta_gig, self.subordinator)
        return gig_m_step_with_boundary(eta_gig, self.subordinator)

    @classmethod
    def default_subordinator(cls, dim: int, dtype: jnp.dtype) -> AbstractSubordinator:
        # GIG(-1/2, 1, 1) = InverseGaussian(1, 1): E[Y] = 1, in the gauge.
        return GIG(_scalar(-0.5, dtype), _scalar(1.0, dtype), _scalar(1.0, dtype))


class Hyperbolic(AbstractNormalMixture):
    r"""Hyperbolic law: GH with $p = (d + 1)/2$ held fixed, $Y \sim \mathrm{GIG}((d+1)/2, a, b)$.

    Gauge: $\mathbb{E}Y = 1$ after fitting.
    """

    joint: JointGeneralizedHyperbolic
    joint_family: ClassVar[type[AbstractJointNormalMixture]] = JointGeneralizedHyperbolic
    gauge_on_inverse_moment: ClassVar[bool] = False
    symmetric: ClassVar[bool] = False
    fix_p: ClassVar[bool] = True

    def __init__(self, mu: ArrayLike, gamma: ArrayLike, cov: Cov, a: ArrayLike, b: ArrayLike):
        mu = jnp.asarray(mu)
        mu = mu.astype(jnp.result_type(mu, float))
        p = 0.5 * (jnp.shape(mu)[-1] + 1) if jnp.ndim(mu) == 1 else 1.0
        self.joint = JointGeneralizedHyperbolic(mu, gamma, cov, GIG(p, a, b))

    def subordinator_m_step(self, eta_gig: Float[Array, " 3"], theta0: Array) -> GIG:
        """GIG MLE over (a, b) with p = (d + 1)/2, over the closure of that family (the
        Gamma law b = 0 when heavy tails put the maximiser on the boundary,
        `_gig_m_step.py`)."""
        return gig_m_step_fixed_p_with_boundary(eta_gig, self.subordinator)

    @classmethod
    def default_subordinator(cls, dim: int, dtype: jnp.dtype) -> AbstractSubordinator:
        # GIG((d+1)/2, a, a) rescaled to E[Y] = 1 is found by the first M-step; start at a=b.
        p = _scalar(0.5 * (dim + 1), dtype)
        return GIG(p, _scalar(1.0, dtype), _scalar(1.0, dtype))
