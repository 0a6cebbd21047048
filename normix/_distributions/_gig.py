r"""The generalized inverse Gaussian distribution $\mathrm{GIG}(p, a, b)$."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import enum_error_if, error_if
from .._misc import as_float, require_scalar
from .._subordinator import AbstractSubordinator
from ._gig_boundary import boundary_maximisers
from ._gig_cdf import gig_cdf, gig_survival
from ._gig_functions import (
    gig_cumulants,
    gig_expectations,
    gig_log_normalizer,
    gig_moment,
    gig_params_proper,
)
from ._gig_sampling import sample_gig
from ._gig_solver import GIGNewtonSolver, GIGSolverResult


class GIG(AbstractSubordinator):
    r"""The generalized inverse Gaussian law, density

    $$f(y) = \frac{(a/b)^{p/2}}{2 K_p(\sqrt{ab})}\, y^{p-1} e^{-(a y + b/y)/2}, \qquad y > 0.$$

    Proper laws: $a, b > 0$ (any real $p$); $a = 0$, $b > 0$, $p < 0$ (inverse Gamma, shape
    $-p$, scale $b/2$); $b = 0$, $a > 0$, $p > 0$ (Gamma, shape $p$, rate $a/2$). Other
    values raise (also under `jit`, via `eqx.error_if`).

    As an exponential family:

    * sufficient statistics $t(y) = (\log y,\ 1/y,\ y)$, base measure $h = 1$;
    * natural parameters $\theta = (p - 1,\ -b/2,\ -a/2)$;
    * log-partition $\psi(\theta) = \log 2 + \tfrac p2\log(b/a) + \log K_p(\sqrt{ab})$
      (`gig_log_normalizer`, with the Gamma / inverse-Gamma closed forms at $ab = 0$);
    * expectation parameters $\eta = (\mathbb{E}\log Y, \mathbb{E}\,Y^{-1}, \mathbb{E}\,Y)$
      by Bessel ratios (`gig_expectations`);
    * $\eta \to \theta$ by the damped Newton solver `GIGNewtonSolver` in a scale-free
      parametrisation (`solve_gig_natural`); `natural_from_expectation` raises if it fails.

    scipy: `geninvgauss(p, b=sqrt(a*b), scale=sqrt(b/a))` for $a, b > 0$.

    **Arguments:**

    - `p`: the index $p$, a real scalar.
    - `a`: the rate-like parameter $a \ge 0$.
    - `b`: the scale-like parameter $b \ge 0$.
    """

    p: Float[Array, ""]
    a: Float[Array, ""]
    b: Float[Array, ""]

    def __init__(self, p: ArrayLike, a: ArrayLike, b: ArrayLike):
        p, a, b = as_float(p, a, b)
        for name, v in (("p", p), ("a", a), ("b", b)):
            require_scalar(name, v, "GIG")
        self.p = error_if(
            p,
            ~gig_params_proper(p, a, b),
            "GIG(p, a, b) needs finite parameters with a > 0 and b > 0, or a = 0 < b with "
            "p < 0 (inverse Gamma), or b = 0 < a with p > 0 (Gamma).",
        )
        self.a = a
        self.b = b

    # ------------------------------------------------------------ exponential family
    @property
    def event_shape(self) -> tuple[int, ...]:
        return ()

    def natural_params(self) -> Float[Array, " 3"]:
        return jnp.stack([self.p - 1, -self.b / 2, -self.a / 2])

    @classmethod
    def log_partition_at(cls, theta: Float[Array, " 3"]) -> Float[Array, ""]:
        return gig_log_normalizer(theta[0] + 1, -2 * theta[2], -2 * theta[1])

    @classmethod
    def expectation_at(cls, theta: Float[Array, " 3"]) -> Float[Array, " 3"]:
        r"""$(\mathbb{E}\log Y, \mathbb{E}\,Y^{-1}, \mathbb{E}\,Y)$ in closed form
        (`gig_expectations`); its `jacfwd` is the Fisher information."""
        return gig_expectations(theta[0] + 1, -2 * theta[2], -2 * theta[1])

    @classmethod
    def natural_from_expectation(
        cls, eta: Float[Array, " 3"], theta0: Float[Array, " 3"] | None = None
    ) -> Float[Array, " 3"]:
        r"""$\theta$ with $\nabla\psi(\theta) = \eta$, by `GIGNewtonSolver()` warm-started at
        `theta0`: the maximum-likelihood law over the closure of the family. Where the
        interior solve does not succeed, the supremum lies on the boundary (data that look
        Gamma- or inverse-Gamma-distributed: Newton runs off towards $b \to 0$ or $a \to 0$),
        and the better of the Gamma ($b = 0$) and inverse-Gamma ($a = 0$) maximum-likelihood
        laws is returned (`_gig_boundary.py`). Raises (also under `jit`) with the solver's
        message where $\eta$ is not the expectation of any GIG law (Jensen's inequalities) or
        no boundary law exists.
        `solve_gig_natural` gives the interior solve's result code instead."""
        sol = GIGNewtonSolver().solve(eta, theta0)
        interior = sol.succeeded()
        laws, scores = boundary_maximisers(eta)
        p, a, b = laws[jnp.argmax(scores)]
        feasible = sol.result != GIGSolverResult.infeasible_expectation
        on_boundary = ~interior & feasible & jnp.any(scores > -jnp.inf)
        theta = jnp.where(on_boundary, jnp.stack([p - 1, -b / 2, -a / 2]), sol.theta)
        return enum_error_if(theta, ~interior & ~on_boundary, sol.result)

    @classmethod
    def from_natural(cls, theta: Float[Array, " 3"]) -> GIG:
        return cls(theta[0] + 1, -2 * theta[2], -2 * theta[1])

    @classmethod
    def sufficient_statistics(cls, x: Array) -> Float[Array, " 3"]:
        return jnp.stack([jnp.log(x), 1 / x, x])

    @classmethod
    def log_base_measure(cls, x: Array) -> Float[Array, ""]:
        return jnp.zeros_like(x)

    @classmethod
    def in_support(cls, x: Array) -> Array:
        return (x > 0) & jnp.isfinite(x)

    def expected_log_base_measure(self) -> Float[Array, ""]:
        return jnp.zeros_like(self.p)

    def n_parameters(self) -> int:
        return 3

    # ------------------------------------------------------------ subordinator
    def log_gig_normalizer(self) -> Float[Array, ""]:
        """`log_normalizer()` (the general Bessel path)."""
        return self.log_normalizer()

    def gig_params(self) -> tuple[Float[Array, ""], Float[Array, ""], Float[Array, ""]]:
        return self.p, self.a, self.b

    @classmethod
    def from_gig_expectation(
        cls, eta_gig: Float[Array, " 3"], theta0: Float[Array, " 3"] | None = None
    ) -> GIG:
        r"""Uses all three statistics $(\mathbb{E}\log Y, \mathbb{E}\,Y^{-1}, \mathbb{E}\,Y)$."""
        return cls.from_expectation(eta_gig, theta0)

    # ------------------------------------------------------------ moments, cdf, sampling
    def mean(self) -> Float[Array, ""]:
        r"""$\mathbb{E}\,Y = \sqrt{b/a}\,K_{p+1}(\omega)/K_p(\omega)$ ($+\infty$ if it does
        not exist: $a = 0$, $p \ge -1$)."""
        return gig_expectations(self.p, self.a, self.b)[2]

    def moment(self, r: ArrayLike) -> Float[Array, ...]:
        r"""$\mathbb{E}[Y^r] = (b/a)^{r/2} K_{p+r}(\omega)/K_p(\omega)$ (`gig_moment`)."""
        return gig_moment(self.p, self.a, self.b, r)

    def variance(self) -> Float[Array, ""]:
        r"""$\kappa_2 = \mathbb{E}[Y^2] - (\mathbb{E}\,Y)^2$, from `gig_cumulants` (Hankel's
        expansion where that difference would cancel, $\omega = \sqrt{ab}$ large)."""
        return gig_cumulants(self.p, self.a, self.b)[1]

    def cumulants(self) -> tuple[Array, Array, Array, Array]:
        r"""`gig_cumulants`: from the raw moments, or Hankel's expansion for large
        $\sqrt{ab}$."""
        return gig_cumulants(self.p, self.a, self.b)

    def mode(self) -> Float[Array, ""]:
        r"""$\big(p - 1 + \sqrt{(p-1)^2 + ab}\big)/a$ (0 when $b = 0$ and $p \le 1$)."""
        q = self.p - 1
        root = jnp.sqrt(q * q + self.a * self.b)
        safe = jnp.where(q >= 0, q + root, jnp.ones_like(q))
        alt = jnp.where(q < 0, root - q, jnp.ones_like(q))
        return jnp.where(q >= 0, safe / jnp.where(self.a > 0, self.a, 1.0), self.b / alt)

    def log_normalizer(self) -> Float[Array, ""]:
        """$\\log Z(p, a, b)$ (equal to $\\psi(\\theta)$)."""
        return gig_log_normalizer(self.p, self.a, self.b)

    def cdf(self, y: ArrayLike) -> Array:
        """$P(Y \\le y)$ (`gig_cdf`: composite Gauss-Legendre quadrature, pure JAX)."""
        return gig_cdf(y, self.p, self.a, self.b)

    def survival(self, y: ArrayLike) -> Array:
        """$P(Y > y)$, with relative accuracy in the upper tail (`gig_survival`)."""
        return gig_survival(y, self.p, self.a, self.b)

    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...] = ()) -> Array:
        """Exact samples of shape `shape` (`sample_gig`: Hörmann & Leydold 2014)."""
        return sample_gig(key, self.p, self.a, self.b, shape)
