r"""The inverse Gaussian (Wald) distribution."""

from __future__ import annotations

import math
from typing import ClassVar

import jax.numpy as jnp
import jax.random as jr
from jax.scipy.special import ndtr
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._misc import as_float, require_scalar
from .._special._exp1 import scaled_exp1
from .._subordinator import AbstractSubordinator
from ._checks import check_positive, check_spread
from ._gig_functions import gig_log_normalizer

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
_TAIL_FROM = -20.0
_TAIL_TERMS = 12


def _log_ndtr(z: Array) -> Array:
    r"""$\log\Phi(z)$ to a few ulps (relative) for every $z$.

    `jax.scipy.special.log_ndtr` loses up to ~$10^{-12}$ (relative) around $z = -25$ (a
    short asymptotic series) and the relative accuracy of tiny values for $z \gg 0$, so:

    * $z > 0$: $\log(1 - \Phi(-z))$ via `log1p`;
    * $-20 < z \le 0$: $\log\Phi(z)$ directly;
    * $z \le -20$: $-z^2/2 - \log(-z) - \tfrac12\log 2\pi
      + \log\sum_{k=0}^{11} (-1)^k (2k-1)!!\, z^{-2k}$ (truncation $< 10^{-16}$).
    """
    pos = z > 0
    tail = z <= _TAIL_FROM
    z_pos = jnp.where(pos, z, jnp.ones_like(z))
    z_mid = jnp.where(pos | tail, -jnp.ones_like(z), z)
    z_tail = jnp.where(tail, z, jnp.full_like(z, _TAIL_FROM))
    inv2 = 1 / (z_tail * z_tail)
    term = jnp.ones_like(z)
    total = jnp.ones_like(z)
    for k in range(1, _TAIL_TERMS):
        term = term * (-(2 * k - 1)) * inv2
        total = total + term
    log_tail = -0.5 * z_tail * z_tail - jnp.log(-z_tail) - _HALF_LOG_2PI + jnp.log(total)
    return jnp.where(pos, jnp.log1p(-ndtr(-z_pos)), jnp.where(tail, log_tail, jnp.log(ndtr(z_mid))))


class InverseGaussian(AbstractSubordinator):
    r"""The inverse Gaussian distribution with mean $\mu > 0$ and shape $\lambda > 0$,

    $$p(x) = \sqrt{\frac{\lambda}{2\pi x^3}}\,
    \exp\Big(-\frac{\lambda (x - \mu)^2}{2\mu^2 x}\Big), \qquad x > 0.$$

    As an exponential family:

    * natural parameters $\theta = (-\lambda/2,\ -\lambda/(2\mu^2))$;
    * sufficient statistics $t(x) = (1/x,\ x)$;
    * base measure $\log h(x) = -\tfrac12\log(2\pi) - \tfrac32\log x$;
    * log-partition $\psi(\theta) = -\tfrac12\log(-2\theta_1) - 2\sqrt{\theta_1\theta_2}$
      $= -\tfrac12\log\lambda - \lambda/\mu$;
    * expectation parameters $\eta = (1/\mu + 1/\lambda,\ \mu)$.

    It is $\mathrm{GIG}(p = -\tfrac12, a = \lambda/\mu^2, b = \lambda)$.
    scipy: `invgauss(mu=mean/shape, scale=shape)`.

    Fields are `mu` and `lam` (`mean` is the method $\mathbb{E}X$).

    **Arguments:**

    - `mean`: $\mu$, a positive scalar.
    - `shape`: $\lambda$, a positive scalar.
    """

    mu: Float[Array, ""]
    lam: Float[Array, ""]
    uses_log_statistic: ClassVar[bool] = False
    fixed_p: ClassVar[float | None] = -0.5

    def __init__(self, mean: ArrayLike, shape: ArrayLike):
        mean, shape = as_float(mean, shape)
        require_scalar("mean", mean, "InverseGaussian")
        require_scalar("shape", shape, "InverseGaussian")
        self.mu = check_positive(mean, "InverseGaussian", "mean")
        self.lam = check_positive(shape, "InverseGaussian", "shape")

    # ------------------------------------------------------------ exponential family
    @property
    def event_shape(self) -> tuple[int, ...]:
        return ()

    def natural_params(self) -> Float[Array, " 2"]:
        return jnp.stack([-self.lam / 2, -self.lam / (2 * self.mu**2)])

    @classmethod
    def log_partition_at(cls, theta: Float[Array, " 2"]) -> Float[Array, ""]:
        return -0.5 * jnp.log(-2 * theta[0]) - 2 * jnp.sqrt(theta[0] * theta[1])

    @classmethod
    def expectation_at(cls, theta: Float[Array, " 2"]) -> Float[Array, " 2"]:
        ratio = jnp.sqrt(theta[1] / theta[0])  # 1 / mu
        return jnp.stack([ratio - 0.5 / theta[0], 1 / ratio])

    @classmethod
    def natural_from_expectation(
        cls, eta: Float[Array, " 2"], theta0: Float[Array, " 2"] | None = None
    ) -> Float[Array, " 2"]:
        r"""$\mu = \eta_2$, $1/\lambda = \eta_1 - 1/\eta_2$ (closed form)."""
        mu = eta[1]
        lam = 1 / check_spread(eta[0] - 1 / mu, "InverseGaussian", "E[1/X] - 1/E[X]")
        return jnp.stack([-lam / 2, -lam / (2 * mu**2)])

    @classmethod
    def from_natural(cls, theta: Float[Array, " 2"]) -> InverseGaussian:
        return cls(jnp.sqrt(theta[0] / theta[1]), -2 * theta[0])

    @classmethod
    def sufficient_statistics(cls, x: Array) -> Float[Array, " 2"]:
        return jnp.stack([1 / x, x])

    @classmethod
    def log_base_measure(cls, x: Array) -> Float[Array, ""]:
        return -_HALF_LOG_2PI - 1.5 * jnp.log(x)

    @classmethod
    def in_support(cls, x: Array) -> Array:
        return (x > 0) & jnp.isfinite(x)

    def expected_log_x(self) -> Float[Array, ""]:
        r"""$\mathbb{E}\log X = \log\mu - e^{2\lambda/\mu} E_1(2\lambda/\mu)$ (checked
        against numerical integration; `scaled_exp1` keeps it finite for any $\lambda/\mu$)."""
        return jnp.log(self.mu) - scaled_exp1(2 * self.lam / self.mu)

    def expected_log_base_measure(self) -> Float[Array, ""]:
        return -_HALF_LOG_2PI - 1.5 * self.expected_log_x()

    def n_parameters(self) -> int:
        return 2

    # ------------------------------------------------------------ subordinator
    def log_gig_normalizer(self) -> Float[Array, ""]:
        r"""$\log Z(-\tfrac12, a, b)$ by the fixed-order Bessel path ($K_{1/2}$ in closed
        form)."""
        return gig_log_normalizer(*self.gig_params(), fixed_order=-0.5)

    def gig_params(self) -> tuple[Float[Array, ""], Float[Array, ""], Float[Array, ""]]:
        return -0.5 * jnp.ones_like(self.mu), self.lam / self.mu**2, self.lam

    @classmethod
    def from_gig_expectation(
        cls, eta_gig: Float[Array, " 3"], theta0: Float[Array, " 2"] | None = None
    ) -> InverseGaussian:
        r"""Uses $(\mathbb{E}\,Y^{-1}, \mathbb{E}\,Y)$ = `eta_gig[1]`, `eta_gig[2]`."""
        return cls.from_expectation(eta_gig[1:], theta0)

    # ------------------------------------------------------------ moments, cdf, sampling
    def mean(self) -> Float[Array, ""]:
        return self.mu

    def variance(self) -> Float[Array, ""]:
        return self.mu**3 / self.lam

    def skewness(self) -> Float[Array, ""]:
        return 3 * jnp.sqrt(self.mu / self.lam)

    def cumulants(self) -> tuple[Array, Array, Array, Array]:
        r"""$\kappa_1 = \mu$, $\kappa_2 = \mu^3/\lambda$, $\kappa_3 = 3\mu^5/\lambda^2$,
        $\kappa_4 = 15\mu^7/\lambda^3$."""
        m, lam = self.mu, self.lam
        return self.mean(), self.variance(), 3 * m**5 / lam**2, 15 * m**7 / lam**3

    def kurtosis(self) -> Float[Array, ""]:
        r"""Excess kurtosis $15\mu/\lambda$."""
        return 15 * self.mu / self.lam

    def log_cdf(self, x: ArrayLike) -> Array:
        r"""$\log P(X \le x)$, computed in log space,

        $$\log\Big(\Phi\big(s(x/\mu - 1)\big) + e^{2\lambda/\mu}\,\Phi\big(-s(x/\mu + 1)\big)\Big),
        \quad s = \sqrt{\lambda/x},$$

        with an accurate $\log\Phi$ (`_log_ndtr`) and `logaddexp`, so $e^{2\lambda/\mu}$
        never overflows.
        """
        x = jnp.asarray(x, dtype=jnp.result_type(x, self.mu.dtype))
        pos = x > 0
        x_safe = jnp.where(pos, x, jnp.ones_like(x))
        s = jnp.sqrt(self.lam / x_safe)
        first = _log_ndtr(s * (x_safe / self.mu - 1))
        second = 2 * self.lam / self.mu + _log_ndtr(-s * (x_safe / self.mu + 1))
        return jnp.where(pos, jnp.logaddexp(first, second), -jnp.inf)

    def cdf(self, x: ArrayLike) -> Array:
        r"""$P(X \le x)$; see `log_cdf`."""
        return jnp.exp(self.log_cdf(x))

    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...] = ()) -> Array:
        r"""Samples of shape `shape` (Michael, Schucany & Haas, 1976).

        With $\nu \sim N(0, 1)$ and $r = \mu\nu^2/(2\lambda)$ the smaller root is
        $x_1 = \mu/(1 + r + \sqrt{r(r + 2)})$ (the cancellation-free form of
        $\mu(1 + r - \sqrt{r(r+2)})$); return $x_1$ with probability $\mu/(\mu + x_1)$,
        else $\mu^2/x_1$.
        """
        key_n, key_u = jr.split(key)
        dtype = self.mu.dtype
        nu = jr.normal(key_n, shape, dtype=dtype)
        u = jr.uniform(key_u, shape, dtype=dtype)
        r = self.mu * nu**2 / (2 * self.lam)
        x1 = self.mu / (1 + r + jnp.sqrt(r * (r + 2)))
        return jnp.where(u * (self.mu + x1) <= self.mu, x1, self.mu**2 / x1)
