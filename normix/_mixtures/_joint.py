r"""The joint law of a normal variance-mean mixture as an exponential family in $(x, y)$.

$$X \mid Y = y \sim N(\mu + \gamma y,\ \Sigma y),\qquad Y \sim \mathrm{GIG}(p, a, b)$$

(or one of its limits: Gamma $b = 0$, inverse gamma $a = 0$, inverse Gaussian $p = -1/2$).
Expanding the Gaussian exponent,

$$\log f(x, y) = -\tfrac d2\log 2\pi + \theta\cdot t(x, y) - \psi(\theta)$$

with $t = (\log y,\ y^{-1},\ y,\ x,\ x y^{-1},\ \operatorname{vec}(x x^\top) y^{-1})$ and

$$\theta = \big(p - 1 - \tfrac d2,\ -\tfrac12(b + \mu^\top\Sigma^{-1}\mu),\
  -\tfrac12(a + \gamma^\top\Sigma^{-1}\gamma),\ \Sigma^{-1}\gamma,\ \Sigma^{-1}\mu,\
  -\tfrac12\operatorname{vec}\Sigma^{-1}\big),$$
$$\psi(\theta) = \tfrac12\log|\Sigma| + \gamma^\top\Sigma^{-1}\mu + \log Z_{\mathrm{GIG}}(p, a, b),$$

$Z_{\mathrm{GIG}}(p,a,b) = \int_0^\infty y^{p-1} e^{-(a y + b/y)/2}\,dy$. Natural parameters are
always those of the *ambient* GH joint family, so Fisher information, KL and entropy are
the ambient ones even for the curved sub-families (VG, skew-t, NIG): PITFALLS #8.

An observation of the joint law is the vector $(x_1, \dots, x_d, y)$ of length $d + 1$.
"""

import math
from typing import ClassVar, Self

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._covariance import AbstractCovariance, DenseCovariance
from .._distributions._gamma import Gamma
from .._distributions._gig import GIG
from .._distributions._gig_functions import gig_expectations, gig_log_normalizer
from .._distributions._inverse_gamma import InverseGamma
from .._distributions._inverse_gaussian import InverseGaussian
from .._errors import error_if
from .._exponential_family import AbstractExponentialFamily
from .._subordinator import AbstractSubordinator
from ._stats import NormalMixtureStats, normal_part_mle, symmetric_normal_part_mle


def as_covariance(cov: ArrayLike | AbstractCovariance, dtype: jnp.dtype) -> AbstractCovariance:
    """A covariance object from a matrix (checked symmetric positive definite) or itself."""
    if isinstance(cov, AbstractCovariance):
        return cov
    return DenseCovariance.from_matrix(jnp.asarray(cov, dtype=dtype))


# Positions of each subordinator's sufficient statistics within the GIG's
# (log y, 1/y, y); its natural parameters are the same sub-vector of the GIG's
# theta = (p - 1, -b/2, -a/2).
_GIG_SLOTS: dict[type[AbstractSubordinator], tuple[int, ...]] = {
    Gamma: (0, 2),
    InverseGamma: (0, 1),
    InverseGaussian: (1, 2),
    GIG: (0, 1, 2),
}


def subordinator_from_gig_params(
    family: type[AbstractSubordinator], p: Array, a: Array, b: Array
) -> AbstractSubordinator:
    """The member of `family` equal to GIG(p, a, b) (the parameters the family does not
    have, e.g. b for Gamma, are ignored)."""
    theta = jnp.stack([p - 1.0, -0.5 * b, -0.5 * a])
    return family.from_natural(theta[jnp.array(_GIG_SLOTS[family])])


def _dim_from_natural_size(k: int) -> int:
    d = int(round(math.sqrt(k - 2))) - 1
    if 3 + 2 * d + d * d != k:
        raise ValueError(f"a joint mixture natural-parameter vector cannot have length {k}.")
    return d


def _split_natural(theta: Float[Array, " k"]):
    d = _dim_from_natural_size(theta.shape[-1])
    t_log, t_inv, t_y = theta[0], theta[1], theta[2]
    t_x = theta[3 : 3 + d]
    t_xinv = theta[3 + d : 3 + 2 * d]
    t_xx = theta[3 + 2 * d :].reshape(d, d)
    return d, t_log, t_inv, t_y, t_x, t_xinv, t_xx


def _classical_from_natural(theta: Float[Array, " k"]):
    """(mu, gamma, L_Sigma, p, a, b) from ambient natural parameters."""
    d, t_log, t_inv, t_y, t_x, t_xinv, t_xx = _split_natural(theta)
    precision = -(t_xx + t_xx.T)  # = Sigma^{-1}
    chol_p = jnp.linalg.cholesky(precision)
    eye = jnp.eye(d, dtype=theta.dtype)
    inv_chol_p = jax.scipy.linalg.solve_triangular(chol_p, eye, lower=True)
    sigma = inv_chol_p.T @ inv_chol_p
    mu = sigma @ t_xinv
    gamma = sigma @ t_x
    p = t_log + 1.0 + 0.5 * d
    mu_q = mu @ t_xinv
    gam_q = gamma @ t_x
    # b and a are differences; rounding can leave -1e-16 where the family has b = 0
    # (Gamma) or a = 0 (inverse gamma). Snap values within rounding of zero to zero.
    tol = 64 * jnp.finfo(theta.dtype).eps
    b_raw = -2.0 * t_inv - mu_q
    a_raw = -2.0 * t_y - gam_q
    b = jnp.where(jnp.abs(b_raw) <= tol * (jnp.abs(2.0 * t_inv) + jnp.abs(mu_q)), 0.0, b_raw)
    a = jnp.where(jnp.abs(a_raw) <= tol * (jnp.abs(2.0 * t_y) + jnp.abs(gam_q)), 0.0, a_raw)
    logdet_sigma = -2.0 * jnp.sum(jnp.log(jnp.diag(chol_p)))
    return d, mu, gamma, sigma, logdet_sigma, p, a, b


class AbstractJointNormalMixture(AbstractExponentialFamily):
    r"""Joint law of $(X, Y)$; see the module docstring. Concrete classes fix the
    subordinator family (`subordinator_family`)."""

    mu: Float[Array, " d"]
    gamma: Float[Array, " d"]
    covariance: AbstractCovariance
    subordinator: AbstractSubordinator
    subordinator_family: eqx.AbstractClassVar[type[AbstractSubordinator]]
    event_ndim: ClassVar[int] = 1

    def __init__(
        self,
        mu: ArrayLike,
        gamma: ArrayLike,
        cov: ArrayLike | AbstractCovariance,
        subordinator: AbstractSubordinator,
    ):
        name = type(self).__name__
        if not isinstance(subordinator, self.subordinator_family):
            raise TypeError(
                f"{name}: the subordinator must be a {self.subordinator_family.__name__}, "
                f"got {type(subordinator).__name__}."
            )
        mu, gamma = jnp.asarray(mu), jnp.asarray(gamma)
        dtype = jnp.result_type(mu, gamma, float)
        mu, gamma = mu.astype(dtype), gamma.astype(dtype)
        if mu.ndim != 1:
            raise ValueError(f"{name}: `mu` must be a vector of shape (d,), got {mu.shape}.")
        if gamma.shape != mu.shape:
            raise ValueError(
                f"{name}: `gamma` must have the shape of `mu` {mu.shape}, got {gamma.shape}."
            )
        covariance = as_covariance(cov, dtype)
        if covariance.dim != mu.shape[0]:
            raise ValueError(
                f"{name}: `cov` is {covariance.dim}-dimensional but `mu` has length {mu.shape[0]}."
            )
        self.mu = error_if(mu, ~jnp.all(jnp.isfinite(mu)), f"{name}: `mu` must be finite.")
        self.gamma = error_if(
            gamma, ~jnp.all(jnp.isfinite(gamma)), f"{name}: `gamma` must be finite."
        )
        self.covariance = covariance
        self.subordinator = subordinator

    # ------------------------------------------------------------------ EF pieces
    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.mu.shape[0] + 1,)

    @property
    def dim(self) -> int:
        """Dimension $d$ of $X$."""
        return self.mu.shape[0]

    def natural_params(self) -> Float[Array, " k"]:
        d = self.dim
        p, a, b = self.subordinator.gig_params()
        precision = self.covariance.solve(jnp.eye(d, dtype=self.mu.dtype))
        precision = 0.5 * (precision + precision.T)
        p_mu = precision @ self.mu
        p_gamma = precision @ self.gamma
        head = jnp.stack(
            [p - 1.0 - 0.5 * d, -0.5 * (b + self.mu @ p_mu), -0.5 * (a + self.gamma @ p_gamma)]
        )
        return jnp.concatenate([head, p_gamma, p_mu, (-0.5 * precision).reshape(-1)])

    @classmethod
    def log_partition_at(cls, theta: Float[Array, " k"]) -> Float[Array, ""]:
        _, mu, gamma, sigma, logdet_sigma, p, a, b = _classical_from_natural(theta)
        d, _, _, _, t_x, t_xinv, _ = _split_natural(theta)
        return 0.5 * logdet_sigma + gamma @ t_xinv + gig_log_normalizer(p, a, b)

    @classmethod
    def expectation_at(cls, theta: Float[Array, " k"]) -> Float[Array, " k"]:
        _, mu, gamma, sigma, _, p, a, b = _classical_from_natural(theta)
        e_log, e_inv, e_y = jnp.moveaxis(gig_expectations(p, a, b), -1, 0)
        xx = (
            sigma
            + e_inv * jnp.outer(mu, mu)
            + e_y * jnp.outer(gamma, gamma)
            + jnp.outer(mu, gamma)
            + jnp.outer(gamma, mu)
        )
        stats = NormalMixtureStats(
            log_y=e_log,
            inv_y=e_inv,
            y=e_y,
            x=mu + gamma * e_y,
            x_inv_y=mu * e_inv + gamma,
            xx_inv_y=xx,
            centre=jnp.zeros_like(mu),
        )
        return stats.flatten()

    @classmethod
    def natural_from_expectation(
        cls, eta: Float[Array, " k"], theta0: Float[Array, " k"] | None = None
    ) -> Float[Array, " k"]:
        d = _dim_from_natural_size(eta.shape[-1])
        stats = NormalMixtureStats.unflatten(eta, d)
        sub = cls.subordinator_family.from_gig_expectation(stats.gig_part())
        return cls.from_mixture_stats(stats, sub).natural_params()

    @classmethod
    def from_natural(cls, theta: Float[Array, " k"]) -> Self:
        _, mu, gamma, sigma, _, p, a, b = _classical_from_natural(theta)
        sub = subordinator_from_gig_params(cls.subordinator_family, p, a, b)
        return cls(mu, gamma, DenseCovariance(jnp.linalg.cholesky(sigma)), sub)

    @classmethod
    def from_mixture_stats(
        cls,
        stats: NormalMixtureStats,
        subordinator: AbstractSubordinator,
        *,
        symmetric: bool = False,
    ) -> Self:
        r"""Closed-form M-step of the normal part: $(\mu, \gamma, \Sigma)$ from
        `normal_part_mle` (or, with `symmetric=True`, $\gamma = 0$ and
        `symmetric_normal_part_mle`), combined with an already-updated `subordinator`.

        A covariance that is not positive definite gives a NaN factor (no exception inside
        the EM loop); `normix.fit` reports it as a `nonfinite` result."""
        if symmetric:
            mu, sigma = symmetric_normal_part_mle(stats)
            gamma = jnp.zeros_like(mu)
        else:
            mu, gamma, sigma = normal_part_mle(stats)
        return cls(mu, gamma, DenseCovariance(jnp.linalg.cholesky(sigma)), subordinator)

    @classmethod
    def sufficient_statistics(cls, x: Array) -> Float[Array, " k"]:
        z, y = x[:-1], x[-1]
        inv = 1.0 / y
        return jnp.concatenate(
            [jnp.stack([jnp.log(y), inv, y]), z, z * inv, (jnp.outer(z, z) * inv).reshape(-1)]
        )

    @classmethod
    def log_base_measure(cls, x: Array) -> Float[Array, ""]:
        d = x.shape[-1] - 1
        return jnp.asarray(-0.5 * d * math.log(2 * math.pi), dtype=x.dtype)

    @classmethod
    def in_support(cls, x: Array) -> Array:
        return x[-1] > 0

    def expected_log_base_measure(self) -> Float[Array, ""]:
        return jnp.asarray(-0.5 * self.dim * math.log(2 * math.pi), dtype=self.mu.dtype)

    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...] = ()) -> Array:
        """Draws of $(x, y)$ stacked as vectors of length $d + 1$."""
        key_y, key_z = jr.split(key)
        y = self.subordinator.sample(key_y, shape)[..., None]
        z = self.covariance.sample_noise(key_z, shape)
        lead = (1,) * len(shape) + (self.dim,)
        x = self.mu.reshape(lead) + self.gamma.reshape(lead) * y + jnp.sqrt(y) * z
        return jnp.concatenate([x, y], axis=-1)

    def mean(self) -> Array:
        e_y = self.subordinator.mean()
        return jnp.concatenate([self.mu + self.gamma * e_y, e_y[None]])

    def n_parameters(self) -> int:
        r"""Free parameters of the *marginal* law of $X$: $\mu, \gamma, \Sigma$ and the
        subordinator, less one for the scale gauge $(\gamma, \Sigma, Y) \to
        (c\gamma, c\Sigma, Y/c)$."""
        d = self.dim
        return 2 * d + d * (d + 1) // 2 + self.subordinator.n_parameters() - 1

    def posterior(self, x: Float[Array, " d"]) -> GIG:
        r"""$Y \mid X = x \sim \mathrm{GIG}(p - d/2,\ a + \gamma^\top\Sigma^{-1}\gamma,\
        b + (x-\mu)^\top\Sigma^{-1}(x-\mu))$ for one observation (a GIG law has scalar
        parameters: for many rows use `jax.vmap(model.posterior)(X)`)."""
        x = jnp.asarray(x)
        if x.shape != (self.dim,):
            raise ValueError(
                f"{type(self).__name__}.posterior takes one observation of shape "
                f"({self.dim},), got shape {x.shape}; for many rows use "
                "`jax.vmap(model.posterior)(X)`, a GIG with batched parameters."
            )
        p, a, b = self.subordinator.gig_params()
        inv_gamma = self.covariance.solve(self.gamma)
        r = x - self.mu
        return GIG(p - 0.5 * self.dim, a + self.gamma @ inv_gamma, b + r @ self.covariance.solve(r))


class JointVarianceGamma(AbstractJointNormalMixture):
    r"""Joint $(X, Y)$ of the variance-gamma law: $Y \sim \mathrm{Gamma}$."""

    subordinator_family: ClassVar[type[AbstractSubordinator]] = Gamma


class JointNormalInverseGamma(AbstractJointNormalMixture):
    r"""Joint $(X, Y)$ of the skew-t law: $Y \sim \mathrm{InverseGamma}$."""

    subordinator_family: ClassVar[type[AbstractSubordinator]] = InverseGamma


class JointNormalInverseGaussian(AbstractJointNormalMixture):
    r"""Joint $(X, Y)$ of the normal-inverse Gaussian law: $Y \sim \mathrm{InverseGaussian}$."""

    subordinator_family: ClassVar[type[AbstractSubordinator]] = InverseGaussian


class JointGeneralizedHyperbolic(AbstractJointNormalMixture):
    r"""Joint $(X, Y)$ of the generalized hyperbolic law: $Y \sim \mathrm{GIG}$."""

    subordinator_family: ClassVar[type[AbstractSubordinator]] = GIG
