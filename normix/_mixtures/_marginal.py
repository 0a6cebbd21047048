r"""Marginal laws of normal variance-mean mixtures, each wrapping its joint law.

Integrating $y$ out of the joint density gives, with
$Q(x) = (x-\mu)^\top\Sigma^{-1}(x-\mu)$, $A = \gamma^\top\Sigma^{-1}\gamma$ and
$Z(p,a,b) = \int_0^\infty y^{p-1}e^{-(ay + b/y)/2}dy = 2 (b/a)^{p/2} K_p(\sqrt{ab})$,

$$\log f(x) = -\tfrac d2 \log 2\pi - \tfrac12\log|\Sigma| + \gamma^\top\Sigma^{-1}(x-\mu)
  - \log Z(p, a, b) + \log Z\big(p - \tfrac d2,\ a + A,\ b + Q(x)\big),$$

and the posterior $Y \mid x \sim \mathrm{GIG}(p - d/2, a + A, b + Q(x))$. The E-step averages
the posterior expectations of the joint sufficient statistics; the M-step is the joint
family's closed form.

**Scale gauge.** $(\gamma, \Sigma, Y) \mapsto (c\gamma, c\Sigma, Y/c)$ leaves the law of $X$
unchanged. normix fixes $\mathbb{E}[Y] = 1$ (Gamma, inverse Gaussian, GIG subordinators) or
$\mathbb{E}[Y^{-1}] = 1$ (inverse gamma, where $\mathbb{E}[Y]$ may not exist; with it $\Sigma$ is
the usual scale matrix of the Student-t). Every M-step applies it to the statistics before
solving, so it costs nothing and the iterates never drift along the gauge orbit.
"""

import abc
import dataclasses
import math
from typing import Self

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, PRNGKeyArray

from .._compiled import compiled_when_eager
from .._covariance import DenseCovariance
from .._distributions._gig import GIG
from .._distributions._gig_functions import (
    gig_expectations,
    gig_log_normalizer,
    gig_log_normalizer_and_expectations,
    gig_moment,
)
from .._em_model import AbstractECMModel, AbstractFusedEMModel
from .._errors import branched_error_if, error_if
from .._misc import require_rows, split_batch
from .._special._bessel_fixed import prefers_fixed_order
from .._subordinator import AbstractSubordinator
from ._joint import AbstractJointNormalMixture, subordinator_from_gig_params
from ._stats import (
    NormalMixtureStats,
    normal_part_mle,
    posterior_mixture_stats,
    symmetric_normal_part_mle,
)
from ._univariate import (
    latent_grid,
    log_cdf,
    log_density,
    log_survival,
    log_tail,
    partial_expectation,
    quantile,
)


def _times(coef: Array, moment: Array) -> Array:
    """`coef * moment`, but 0 where `coef == 0` (also for an infinite `moment`)."""
    return jnp.where(coef == 0, 0.0, coef * moment)


class AbstractNormalMixture(AbstractFusedEMModel, AbstractECMModel):
    r"""Marginal law of $X$ in $X \mid Y \sim N(\mu + \gamma Y, \Sigma Y)$.

    Concrete classes (`VarianceGamma`, `NormalInverseGamma`, `NormalInverseGaussian`,
    `GeneralizedHyperbolic`, …) fix the joint family and the classical-parameter
    constructor; all the mathematics lives here.
    """

    joint: eqx.AbstractVar[AbstractJointNormalMixture]
    joint_family: eqx.AbstractClassVar[type[AbstractJointNormalMixture]]
    gauge_on_inverse_moment: eqx.AbstractClassVar[bool]
    symmetric: eqx.AbstractClassVar[bool]
    # p of a GIG subordinator held fixed by the fit (Hyperbolic; GH with fix_p=True): one
    # parameter fewer for AIC / BIC
    fix_p: eqx.AbstractVar[bool]

    @abc.abstractmethod
    def subordinator_m_step(
        self, eta_gig: Float[Array, " 3"], theta0: Float[Array, " k"]
    ) -> AbstractSubordinator:
        r"""The subordinator's M-step from $(\mathbb{E}\log Y, \mathbb{E}Y^{-1}, \mathbb{E}Y)$,
        under this family's constraints (fixed $p$, a shape bound, ...); `theta0` is the
        current subordinator's natural parameters (a warm start)."""

    @classmethod
    @abc.abstractmethod
    def default_subordinator(cls, dim: int, dtype: jnp.dtype) -> AbstractSubordinator:
        """The subordinator used by `initialize` (in the gauge, moderately heavy-tailed)."""

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_joint(cls, joint: AbstractJointNormalMixture) -> Self:
        """Wrap a joint law (of this class's joint family)."""
        if not isinstance(joint, cls.joint_family):
            raise TypeError(
                f"{cls.__name__}.from_joint needs a {cls.joint_family.__name__}, "
                f"got {type(joint).__name__}."
            )
        obj = object.__new__(cls)
        object.__setattr__(obj, "joint", joint)
        for field in dataclasses.fields(cls):  # settings such as `min_shape` keep defaults
            if field.name != "joint":
                object.__setattr__(obj, field.name, field.default)
        return obj

    # ------------------------------------------------------------------ accessors
    @property
    def mu(self) -> Float[Array, " d"]:
        return self.joint.mu

    @property
    def gamma(self) -> Float[Array, " d"]:
        return self.joint.gamma

    @property
    def covariance(self):
        """The covariance operator $\\Sigma$ (dispersion of the normal part)."""
        return self.joint.covariance

    @property
    def subordinator(self) -> AbstractSubordinator:
        return self.joint.subordinator

    @property
    def dim(self) -> int:
        return self.joint.dim

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    # ------------------------------------------------------------------ density
    def _row_terms(self, x: Float[Array, "n d"]):
        """Posterior GIG parameters and the $x$-dependent density terms for many rows."""
        p, a, b = self.subordinator.gig_params()
        resid = x - self.mu[None, :]
        whitened = self.covariance.whiten(resid)
        q = jnp.sum(whitened * whitened, axis=-1)
        inv_gamma = self.covariance.solve(self.gamma)
        big_a = self.gamma @ inv_gamma
        beta = resid @ inv_gamma
        d = self.dim
        const = (
            -0.5 * d * math.log(2 * math.pi)
            - 0.5 * self.covariance.logdet()
            - self.subordinator.log_gig_normalizer()
        )
        return p - 0.5 * d, a + big_a, b + q, beta, const

    def _static_gig_order(self, shift: float) -> float | None:
        r"""$p + $ `shift` when the subordinator's $p$ is a constant of its family and the
        result is an integer or half-integer of size at most `FIXED_ORDER_MAX` (the
        fixed-order Bessel path), else `None` (general path)."""
        p = self.joint_family.subordinator_family.fixed_p
        if p is None:
            return None
        order = p + shift
        return order if prefers_fixed_order(order) else None

    def _posterior_order(self) -> float | None:
        r"""The posterior order $p - d/2$, when static (inverse-Gaussian subordinator:
        $-(d+1)/2$, for $d \le 59$; see `_static_gig_order`)."""
        return self._static_gig_order(-0.5 * self.dim)

    def _log_prob_rows(self, x: Float[Array, "n d"]) -> Float[Array, " n"]:
        p_post, a_post, b_post, beta, const = self._row_terms(x)
        log_z = gig_log_normalizer(p_post, a_post, b_post, fixed_order=self._posterior_order())
        return const + beta + log_z

    def log_prob(self, x: ArrayLike) -> Array:
        """$\\log f(x)$ for one observation of shape `(d,)` or any leading batch shape."""
        x = jnp.asarray(x)
        x = x.astype(jnp.result_type(x, self.mu.dtype))
        batch_shape = split_batch(x, self.event_shape, type(self).__name__)
        return self._log_prob_rows(x.reshape(-1, self.dim)).reshape(batch_shape)

    def prob(self, x: ArrayLike) -> Array:
        return jnp.exp(self.log_prob(x))

    def posterior(self, x: Float[Array, " d"]) -> GIG:
        r"""The posterior law of the latent $Y$ given one observation $x$ of shape `(d,)`
        (for many rows: `jax.vmap(model.posterior)(X)`)."""
        return self.joint.posterior(x)

    # ------------------------------------------------------------------ EM protocol
    def e_step_with_log_likelihood(
        self, x: Float[Array, "n d"], weights: Float[Array, " n"]
    ) -> tuple[NormalMixtureStats, Array]:
        r"""Weighted means of $\mathbb{E}[t(x_i, Y) \mid x_i]$ and the weighted mean
        log-likelihood, sharing the Mahalanobis distances and posterior parameters (and
        one Bessel evaluation per row). This is the EM driver's E-step: when the
        subordinator has no $\log y$ statistic (inverse Gaussian) `log_y` is not computed
        (NaN), which halves the Bessel work; `e_step` always computes it."""
        uses_log = self.joint_family.subordinator_family.uses_log_statistic
        return self._e_step(x, weights, log_moment=uses_log)

    def _e_step(
        self, x: Float[Array, "n d"], weights: Float[Array, " n"], *, log_moment: bool
    ) -> tuple[NormalMixtureStats, Array]:
        """`e_step_with_log_likelihood`; with `log_moment=False` the `log_y` statistic is
        NaN (not computed: the inverse-Gaussian M-step does not use it)."""
        log_lik, eta = self._row_log_likelihood_and_expectations(x, log_moment=log_moment)
        # computed once: XLA otherwise fuses the per-row Bessel work into each of the
        # reductions below (the log-likelihood and the statistics' sums), e.g. twice the
        # E-step time for the fixed-order NIG path under `vmap` over data sets
        log_lik, eta = jax.lax.optimization_barrier((log_lik, eta))
        w = weights / jnp.sum(weights)
        return posterior_mixture_stats(w, eta, x, self.mu), jnp.sum(w * log_lik)

    def _row_log_likelihood_and_expectations(
        self, x: Float[Array, "n d"], *, log_moment: bool
    ) -> tuple[Float[Array, " n"], Float[Array, "n 3"]]:
        r"""$\log f(x_i)$ and the posterior $(\mathbb{E}\log Y, \mathbb{E}Y^{-1}, \mathbb{E}Y
        \mid x_i)$ from one Bessel evaluation per row; with `log_moment=False` the first
        is NaN (not computed) and a static posterior order takes the fixed-order path."""
        p_post, a_post, b_post, beta, const = self._row_terms(x)
        log_z, eta = gig_log_normalizer_and_expectations(
            p_post,
            a_post,
            b_post,
            log_moment=log_moment,
            fixed_order=None if log_moment else self._posterior_order(),
        )
        return const + beta + log_z, eta

    def e_step(self, x: Float[Array, "n d"], weights: Float[Array, " n"]) -> NormalMixtureStats:
        r"""Weighted means of $\mathbb{E}[t(x_i, Y) \mid x_i]$."""
        return self._e_step(x, weights, log_moment=True)[0]

    def m_step(self, stats: NormalMixtureStats) -> Self:
        """Closed-form M-step in the scale gauge (see the module docstring)."""
        scale = 1.0 / stats.inv_y if self.gauge_on_inverse_moment else stats.y
        stats = stats.rescale_latent(scale)
        sub = self.subordinator_m_step(stats.gig_part(), self.subordinator.natural_params())
        joint = self.joint_family.from_mixture_stats(stats, sub, symmetric=self.symmetric)
        return self.with_joint(joint)

    def with_joint(self, joint: AbstractJointNormalMixture) -> Self:
        """This model (same settings) with its joint law replaced."""
        return eqx.tree_at(lambda m: m.joint, self, joint)

    def conditional_m_steps(
        self, stats: NormalMixtureStats, x: Float[Array, "n d"], weights: Float[Array, " n"]
    ) -> Self:
        r"""One multicycle-ECM sweep (as in R ghyp's MCECM): update $(\mu, \gamma, \Sigma)$
        from `stats`, recompute the E-step with them, update the subordinator from the
        fresh GIG statistics, then return the equivalent model in the gauge."""
        if self.symmetric:
            mu, sigma = symmetric_normal_part_mle(stats)
            gamma = jnp.zeros_like(mu)
        else:
            mu, gamma, sigma = normal_part_mle(stats)
        cov = DenseCovariance(jnp.linalg.cholesky(sigma))
        step1 = self.with_joint(self.joint_family(mu, gamma, cov, self.subordinator))
        fresh = step1.e_step(x, weights)
        sub = self.subordinator_m_step(fresh.gig_part(), self.subordinator.natural_params())
        return self.with_joint(self.joint_family(mu, gamma, cov, sub)).normalize_gauge()

    def normalize_gauge(self) -> Self:
        r"""The same law with the latent rescaled so that $\mathbb{E}Y = 1$ (or
        $\mathbb{E}Y^{-1} = 1$ for the inverse-gamma subordinator):
        $(\gamma, \Sigma, Y) \to (c\gamma, c\Sigma, Y/c)$."""
        p, a, b = self.subordinator.gig_params()
        moments = gig_expectations(p, a, b)
        c = 1.0 / moments[1] if self.gauge_on_inverse_moment else moments[2]
        sub = subordinator_from_gig_params(self.joint_family.subordinator_family, p, a * c, b / c)
        joint = self.joint_family(self.mu, self.gamma * c, self.covariance.scale(c), sub)
        return self.with_joint(joint)

    def log_likelihood(self, x: Float[Array, "n d"], weights: Float[Array, " n"]) -> Array:
        return (weights @ self._log_prob_rows(x)) / jnp.sum(weights)

    def n_parameters(self) -> int:
        """Free parameters of the law of $X$ (for AIC/BIC); γ is not counted when fixed at 0,
        nor the GIG index $p$ when the fit holds it fixed (`fix_p`)."""
        return self.joint.n_parameters() - (self.dim if self.symmetric else 0) - int(self.fix_p)

    @classmethod
    def initialize(
        cls, x: Array, weights: Float[Array, " n"], *, key: PRNGKeyArray | None = None
    ) -> Self:
        r"""Moment start: $\mu$ = weighted mean, $\gamma = 0$, $\Sigma$ = weighted covariance,
        and `default_subordinator` (which is in the gauge)."""
        x = jnp.asarray(x)
        require_rows(x, cls.__name__)
        n, d = x.shape
        x = _check_enough_variation(x, cls.__name__)
        w = weights / jnp.sum(weights)
        mu = w @ x
        resid = x - mu[None, :]
        sigma = (resid * w[:, None]).T @ resid
        sub = cls.default_subordinator(d, x.dtype)
        joint = cls.joint_family(mu, jnp.zeros_like(mu), DenseCovariance.from_matrix(sigma), sub)
        return cls.from_joint(joint)

    # ------------------------------------------------------------------ moments
    def _abs_moment_exists(self, r: float, kappa_r: Array) -> Bool[Array, " d"]:
        r"""Whether $\mathbb{E}|X_j|^r < \infty$ for each coordinate, given the latent
        cumulant $\kappa_r$ (finite exactly where $\mathbb{E}Y^r$ is):
        $X_j - \mu_j = \gamma_j Y + \sigma_j\sqrt Y Z$ needs $\mathbb{E}Y^r < \infty$,
        or only $\mathbb{E}Y^{r/2} < \infty$ where $\gamma_j = 0$."""
        p, a, b = self.subordinator.gig_params()
        m_half = gig_moment(p, a, b, jnp.asarray(r / 2, self.mu.dtype))
        return jnp.isfinite(kappa_r) | ((self.gamma == 0) & jnp.isfinite(m_half))

    def mean(self) -> Float[Array, " d"]:
        r"""$\mathbb{E}X = \mu + \gamma\,\mathbb{E}Y$: $\pm\infty$ (the sign of
        $\gamma_j$) where $\gamma_j \ne 0$ and $\mathbb{E}Y$ is infinite (the other tail has
        a finite mean); $\mu_j$ where $\gamma_j = 0$ and $\mathbb{E}\sqrt Y$ is finite
        (Student-t with $\nu > 1$); NaN where neither tail has a finite mean (Student-t
        with $\nu \le 1$)."""
        k1 = self.subordinator.cumulants()[0]
        infinite = (self.gamma != 0) & ~jnp.isfinite(k1)
        return jnp.where(
            self._abs_moment_exists(1.0, k1),
            self.mu + _times(self.gamma, k1),
            jnp.where(infinite, jnp.sign(self.gamma) * jnp.inf, jnp.nan),
        )

    def cov(self) -> Float[Array, "d d"]:
        r"""$\operatorname{Cov}X = \mathbb{E}[Y]\,\Sigma + \operatorname{Var}(Y)\,\gamma\gamma^\top$
        (the second term is 0 where $\gamma_i\gamma_j = 0$, also when $\operatorname{Var}Y$
        is infinite). A variance is $+\infty$ where the mean is finite and
        $\mathbb{E}X_j^2$ is not (Student-t with $1 < \nu \le 2$), NaN where the mean is not
        finite (undefined, as in scipy)."""
        k1, k2, _, _ = self.subordinator.cumulants()
        gg = jnp.outer(self.gamma, self.gamma)
        cov = k1 * self.covariance.as_matrix() + _times(gg, k2)
        # the mean is finite exactly where E|X_j| is (else +-inf or NaN, see `mean`)
        diag = jnp.where(self._abs_moment_exists(1.0, k1), jnp.diag(cov), jnp.nan)
        return cov.at[jnp.diag_indices(self.dim)].set(diag)

    def variance(self) -> Float[Array, " d"]:
        return jnp.diag(self.cov())

    def _central_moments(self):
        r"""Per coordinate: $c_2$, $c_3$ (central moments), $c_4 - 3c_2^2$ (the fourth
        cumulant) and the latent cumulants, from $D = \gamma(Y - \kappa_1) +
        \sigma\sqrt Y Z$ in terms of the latent cumulants $\kappa_n$ (no cancellation
        for nearly Gaussian laws, where $\kappa_2, \kappa_3, \kappa_4 \to 0$):
        $c_2 = \gamma^2\kappa_2 + \sigma^2\kappa_1$,
        $c_3 = \gamma^3\kappa_3 + 3\gamma\sigma^2\kappa_2$,
        $c_4 - 3c_2^2 = \gamma^4\kappa_4 + 6\gamma^2\sigma^2\kappa_3 + 3\sigma^4\kappa_2$."""
        k = self.subordinator.cumulants()
        k1, k2, k3, k4 = k
        g = self.gamma
        s2 = jnp.diag(self.covariance.as_matrix())
        # terms with a zero skewness coefficient are 0 even where the latent cumulant is
        # infinite (0 * inf would be NaN)
        c2 = _times(g * g, k2) + s2 * k1
        c3 = _times(g**3, k3) + _times(3 * g * s2, k2)
        e4 = _times(g**4, k4) + _times(6 * g * g * s2, k3) + 3 * s2 * s2 * k2
        return c2, c3, e4, k

    def skewness(self) -> Float[Array, " d"]:
        r"""Skewness of each coordinate, $\mathbb{E}[(X_j - \mathbb{E}X_j)^3]/\sigma_j^3$
        (NaN where $\mathbb{E}|X_j|^3$ is infinite)."""
        c2, c3, _, k = self._central_moments()
        return jnp.where(self._abs_moment_exists(3.0, k[2]), c3 / c2**1.5, jnp.nan)

    def kurtosis(self) -> Float[Array, " d"]:
        r"""Excess kurtosis of each coordinate, $(c_4 - 3c_2^2)/c_2^2$: $+\infty$ where the
        variance is finite and $\mathbb{E}X_j^4$ is not, NaN where the variance is not
        finite."""
        c2, _, e4, k = self._central_moments()
        return jnp.where(self._abs_moment_exists(2.0, k[1]), e4 / c2**2, jnp.nan)

    # ------------------------------------------------------------------ d = 1 only
    def _univariate_params(self, what: str):
        if self.dim != 1:
            raise ValueError(
                f"{type(self).__name__}.{what} is defined for univariate laws (d = 1); this "
                f"one has d = {self.dim}."
            )
        p, a, b = self.subordinator.gig_params()
        sigma = jnp.sqrt(self.covariance.as_matrix()[0, 0])
        log_z = self.subordinator.log_gig_normalizer()
        return self.mu[0], self.gamma[0], sigma, p, a, b, log_z

    # The d = 1 functions below run eagerly as cached compiled programs
    # (`compiled_when_eager`): the quantile search's loops would otherwise be traced and
    # compiled again at every call.
    @compiled_when_eager
    def log_cdf(self, x: ArrayLike) -> Array:
        r"""$\log F(x)$ for an array of scalar values (d = 1 only)."""
        params = self._univariate_params("log_cdf")
        return log_cdf(*params, jnp.asarray(x, dtype=self.mu.dtype))

    def cdf(self, x: ArrayLike) -> Array:
        r"""$F(x) = P(X \le x)$ for an array of scalar values (d = 1 only)."""
        return jnp.exp(self.log_cdf(x))

    @compiled_when_eager
    def survival(self, x: ArrayLike) -> Array:
        r"""$1 - F(x)$, accurate in the right tail (d = 1 only)."""
        params = self._univariate_params("survival")
        return jnp.exp(log_survival(*params, jnp.asarray(x, dtype=self.mu.dtype)))

    @compiled_when_eager
    def ppf(self, q: ArrayLike) -> Array:
        r"""Quantile function $F^{-1}(q)$ for an array of probabilities in $[0, 1]$ (d = 1 only;
        $F^{-1}(0) = -\infty$, $F^{-1}(1) = +\infty$, NaN gives NaN, other values raise).
        Differentiable in $q$ and in the parameters (forward and reverse mode) by the implicit
        function theorem, $\partial x/\partial\theta = -\partial_\theta F(x)/f(x)$; so are
        `value_at_risk` and `expected_shortfall`."""
        mu, gamma, sigma, p, a, b, log_z = self._univariate_params("ppf")
        q = jnp.asarray(q, dtype=self.mu.dtype)
        q = error_if(
            q,
            (q < 0) | (q > 1),
            "ppf: probabilities must lie in [0, 1] (ppf(0) = -inf, ppf(1) = +inf); for "
            "value_at_risk / expected_shortfall the confidence level must lie in [0, 1].",
        )

        grid = latent_grid(p, a, b, log_z)

        def log_tail_fn(x, upper):
            return log_tail(mu, gamma, sigma, grid, x, upper)

        def pdf_fn(x):
            return jnp.exp(log_density(mu, gamma, sigma, grid, x))

        def one(qi):
            return quantile(log_tail_fn, pdf_fn, mu, sigma + jnp.abs(gamma), qi)

        return jax.vmap(one)(q.reshape(-1)).reshape(q.shape)

    def value_at_risk(self, level: ArrayLike = 0.99) -> Array:
        r"""Value-at-risk of the loss $-X$ at confidence `level`: $-F^{-1}(1 - \text{level})$."""
        return -self.ppf(1.0 - jnp.asarray(level, dtype=self.mu.dtype))

    @compiled_when_eager
    def expected_shortfall(self, level: ArrayLike = 0.99) -> Array:
        r"""Expected shortfall of the loss $-X$: $-\mathbb{E}[X \mid X \le q]$ with
        $q = F^{-1}(\alpha)$, $\alpha = 1 - \text{level}$."""
        params = self._univariate_params("expected_shortfall")
        alpha = 1.0 - jnp.asarray(level, dtype=self.mu.dtype)
        alpha = error_if(
            alpha,
            (alpha <= 0) | (alpha > 1),
            "expected_shortfall: the confidence level must lie in [0, 1) (at level 1 the "
            "tail is empty).",
        )
        q = self.ppf(alpha)
        return -partial_expectation(*params, q) / alpha

    # ------------------------------------------------------------------ sampling
    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...] = ()) -> Array:
        """Draws of shape `shape + (d,)`: $X = \\mu + \\gamma Y + \\sqrt{Y}\\,\\Sigma^{1/2} Z$."""
        return self.joint.sample(key, shape)[..., :-1]


def _check_enough_variation(x: Array, owner: str) -> Array:
    """Clear errors for data an EM start cannot use: too few rows (at trace time) and
    constant columns (at run time, also under `jit`, naming the first such column)."""
    n, d = x.shape
    if n <= d:
        raise ValueError(
            f"{owner}: need more observations than dimensions to estimate a covariance "
            f"(got n={n}, d={d})."
        )
    constant = jnp.max(x, axis=0) == jnp.min(x, axis=0)
    messages = tuple(
        f"{owner}: column {j} of the data is constant, so the covariance is singular; "
        "remove it or add noise."
        for j in range(d)
    )
    return branched_error_if(x, jnp.any(constant), jnp.argmax(constant), messages)
