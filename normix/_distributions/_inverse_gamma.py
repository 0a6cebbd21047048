r"""The inverse-gamma distribution."""

from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import digamma, gammaincc, gammaln
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._misc import as_float, require_scalar
from .._subordinator import AbstractSubordinator
from ._checks import check_positive, check_spread
from ._gamma import inverse_log_minus_digamma, log_standard_gamma


class InverseGamma(AbstractSubordinator):
    r"""The inverse-gamma distribution with shape $\alpha > 0$ and rate $\beta > 0$,

    $$p(x) = \frac{\beta^\alpha}{\Gamma(\alpha)}\, x^{-\alpha - 1} e^{-\beta / x},
    \qquad x > 0,$$

    i.e. $1/X \sim \mathrm{Gamma}(\alpha, \beta)$. As an exponential family:

    * natural parameters $\theta = (-\alpha - 1,\ -\beta)$;
    * sufficient statistics $t(x) = (\log x,\ 1/x)$;
    * base measure $h(x) = 1$;
    * log-partition $\psi(\theta) = \log\Gamma(-\theta_1 - 1) + (\theta_1 + 1)\log(-\theta_2)$;
    * expectation parameters $\eta = (\log\beta - \psi_0(\alpha),\ \alpha/\beta)$.

    It is $\mathrm{GIG}(p = -\alpha, a = 0, b = 2\beta)$.
    scipy: `invgamma(a=shape, scale=rate)`.

    **Arguments:**

    - `shape`: $\alpha$, a positive scalar.
    - `rate`: $\beta$, a positive scalar (the scale of $X$, the rate of $1/X$).
    """

    shape: Float[Array, ""]
    rate: Float[Array, ""]

    def __init__(self, shape: ArrayLike, rate: ArrayLike):
        shape, rate = as_float(shape, rate)
        require_scalar("shape", shape, "InverseGamma")
        require_scalar("rate", rate, "InverseGamma")
        self.shape = check_positive(shape, "InverseGamma", "shape")
        self.rate = check_positive(rate, "InverseGamma", "rate")

    # ------------------------------------------------------------ exponential family
    @property
    def event_shape(self) -> tuple[int, ...]:
        return ()

    def natural_params(self) -> Float[Array, " 2"]:
        return jnp.stack([-self.shape - 1, -self.rate])

    @classmethod
    def log_partition_at(cls, theta: Float[Array, " 2"]) -> Float[Array, ""]:
        alpha = -theta[0] - 1
        return gammaln(alpha) - alpha * jnp.log(-theta[1])

    @classmethod
    def expectation_at(cls, theta: Float[Array, " 2"]) -> Float[Array, " 2"]:
        alpha, beta = -theta[0] - 1, -theta[1]
        return jnp.stack([jnp.log(beta) - digamma(alpha), alpha / beta])

    @classmethod
    def natural_from_expectation(
        cls, eta: Float[Array, " 2"], theta0: Float[Array, " 2"] | None = None
    ) -> Float[Array, " 2"]:
        r"""$\alpha$ solves $\log\alpha - \psi_0(\alpha) = \log\eta_2 + \eta_1$
        (`inverse_log_minus_digamma`; `theta0` is not needed), then $\beta = \alpha/\eta_2$."""
        gap = check_spread(jnp.log(eta[1]) + eta[0], "InverseGamma", "log E[1/X] + E[log X]")
        alpha = inverse_log_minus_digamma(gap)
        return jnp.stack([-alpha - 1, -alpha / eta[1]])

    @classmethod
    def from_natural(cls, theta: Float[Array, " 2"]) -> InverseGamma:
        return cls(-theta[0] - 1, -theta[1])

    @classmethod
    def sufficient_statistics(cls, x: Array) -> Float[Array, " 2"]:
        return jnp.stack([jnp.log(x), 1 / x])

    @classmethod
    def log_base_measure(cls, x: Array) -> Float[Array, ""]:
        return jnp.zeros_like(x)

    @classmethod
    def in_support(cls, x: Array) -> Array:
        return (x > 0) & jnp.isfinite(x)

    def expected_log_base_measure(self) -> Float[Array, ""]:
        return jnp.zeros_like(self.shape)

    def n_parameters(self) -> int:
        return 2

    # ------------------------------------------------------------ subordinator
    def log_gig_normalizer(self) -> Float[Array, ""]:
        r"""$\log\Gamma(\alpha) - \alpha\log\beta$: the GIG normalizer in closed form, which
        is this family's log-partition (its base measure is 1)."""
        return self.log_partition()

    def gig_params(self) -> tuple[Float[Array, ""], Float[Array, ""], Float[Array, ""]]:
        return -self.shape, jnp.zeros_like(self.rate), 2 * self.rate

    @classmethod
    def from_gig_expectation(
        cls, eta_gig: Float[Array, " 3"], theta0: Float[Array, " 2"] | None = None
    ) -> InverseGamma:
        r"""Uses $(\mathbb{E}\log Y, \mathbb{E}\,Y^{-1})$ = `eta_gig[0]`, `eta_gig[1]`."""
        return cls.from_expectation(eta_gig[:2], theta0)

    # ------------------------------------------------------------ moments, sampling
    def mean(self) -> Float[Array, ""]:
        r"""$\beta/(\alpha - 1)$ for $\alpha > 1$, else $+\infty$."""
        ok = self.shape > 1
        a = jnp.where(ok, self.shape, 2 * jnp.ones_like(self.shape))
        return jnp.where(ok, self.rate / (a - 1), jnp.inf)

    def variance(self) -> Float[Array, ""]:
        r"""$\beta^2/((\alpha - 1)^2(\alpha - 2))$ for $\alpha > 2$, else $+\infty$."""
        ok = self.shape > 2
        a = jnp.where(ok, self.shape, 3 * jnp.ones_like(self.shape))
        return jnp.where(ok, self.rate**2 / ((a - 1) ** 2 * (a - 2)), jnp.inf)

    def skewness(self) -> Float[Array, ""]:
        r"""$4\sqrt{\alpha - 2}/(\alpha - 3)$ for $\alpha > 3$, else NaN (undefined)."""
        ok = self.shape > 3
        a = jnp.where(ok, self.shape, 4 * jnp.ones_like(self.shape))
        return jnp.where(ok, 4 * jnp.sqrt(a - 2) / (a - 3), jnp.nan)

    def kurtosis(self) -> Float[Array, ""]:
        r"""Excess kurtosis $(30\alpha - 66)/((\alpha - 3)(\alpha - 4))$ for $\alpha > 4$,
        else NaN (undefined)."""
        ok = self.shape > 4
        a = jnp.where(ok, self.shape, 5 * jnp.ones_like(self.shape))
        return jnp.where(ok, (30 * a - 66) / ((a - 3) * (a - 4)), jnp.nan)

    def cumulants(self) -> tuple[Array, Array, Array, Array]:
        r"""With $m = \beta/(\alpha - 1)$: $\kappa_2 = m^2/(\alpha - 2)$,
        $\kappa_3 = 4m^3/((\alpha - 2)(\alpha - 3))$,
        $\kappa_4 = m^4(30\alpha - 66)/((\alpha - 2)^2(\alpha - 3)(\alpha - 4))$; $\kappa_n =
        +\infty$ for $\alpha \le n$ ($\kappa_1$, $\kappa_2$: `mean`, `variance`)."""

        def kappa(n, formula):
            # evaluated at a shape where it is finite, then +inf where alpha <= n
            a = jnp.where(self.shape > n, self.shape, (n + 1) * jnp.ones_like(self.shape))
            return jnp.where(self.shape > n, formula(a, self.rate / (a - 1)), jnp.inf)

        return (
            self.mean(),
            self.variance(),
            kappa(3, lambda a, m: 4 * m**3 / ((a - 2) * (a - 3))),
            kappa(4, lambda a, m: m**4 * (30 * a - 66) / ((a - 2) ** 2 * (a - 3) * (a - 4))),
        )

    def cdf(self, x: ArrayLike) -> Array:
        r"""$P(X \le x) = Q(\alpha, \beta/x)$, the regularised upper incomplete gamma."""
        x = jnp.asarray(x, dtype=jnp.result_type(x, self.rate.dtype))
        pos = x > 0
        x_safe = jnp.where(pos, x, jnp.ones_like(x))
        return jnp.where(pos, gammaincc(self.shape, self.rate / x_safe), jnp.zeros_like(x))

    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...] = ()) -> Array:
        r"""Samples of shape `shape`, drawn as $\exp(\log\beta - \log G)$ with
        $G \sim \mathrm{Gamma}(\alpha, 1)$ on the log scale (`log_standard_gamma`)."""
        log_g = log_standard_gamma(key, self.shape, shape)
        return jnp.exp(jnp.log(self.rate) - log_g)
