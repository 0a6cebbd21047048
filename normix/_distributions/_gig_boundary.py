# ruff: noqa: F722  (jaxtyping shape strings)
r"""The boundary of the GIG family: Gamma ($b = 0$) and inverse-Gamma ($a = 0$) laws.

The GIG maximum-likelihood objective $\theta^\top\eta - \log Z(\theta)$ can have its
supremum on the family's boundary (data that look Gamma- or inverse-Gamma-distributed);
the interior Newton solve then runs off towards $b \to 0$ or $a \to 0$ and stops without
converging. These helpers give the boundary maximisers in closed form (up to the scalar
Gamma-shape equation) and score them without a Bessel function, for `GIG`'s own MLE and
for the GH M-step (`normix/_mixtures/_gig_m_step.py`).
"""

import jax
import jax.numpy as jnp
from jax.scipy.special import gammaln
from jaxtyping import Array, Float

from ._gamma import inverse_log_minus_digamma


def boundary_objective(p: Array, a: Array, b: Array, eta: Float[Array, " 3"]) -> Array:
    r"""$\theta^\top\eta - \log Z(p, a, b)$, $\theta = (p - 1, -b/2, -a/2)$, for a boundary
    law: inverse Gamma ($a = 0 < b$, $p < 0$: $\log Z = \log\Gamma(-p) + p\log(b/2)$) or Gamma
    ($b = 0 < a$, $p > 0$: $\log Z = \log\Gamma(p) - p\log(a/2)$), in closed form;
    $-\infty$ for anything else (including interior laws and non-finite parameters)."""
    inv_gamma = (a == 0) & (b > 0) & (p < 0)
    gamma = (b == 0) & (a > 0) & (p > 0)
    ok = (inv_gamma | gamma) & jnp.isfinite(p) & jnp.isfinite(a) & jnp.isfinite(b)
    shape = jnp.where(ok, jnp.abs(p), 1.0)
    half_scale = jnp.where(ok, 0.5 * (a + b), 1.0)  # a/2 (Gamma) or b/2 (inverse Gamma)
    log_z = gammaln(shape) - shape * jnp.log(half_scale)
    val = (p - 1) * eta[0] - 0.5 * b * eta[1] - 0.5 * a * eta[2] - log_z
    return jnp.where(ok & jnp.isfinite(val), val, -jnp.inf)


def boundary_maximisers(eta: Float[Array, " 3"]) -> tuple[Float[Array, "2 3"], Float[Array, " 2"]]:
    r"""The inverse-Gamma and Gamma maximum-likelihood laws for the GIG statistics
    $\eta = (\mathbb{E}\log Y, \mathbb{E}Y^{-1}, \mathbb{E}Y)$, as rows $(p, a, b)$, and
    their objectives (`boundary_objective`; $-\infty$ where a law does not exist):

    * inverse Gamma: $\alpha$ from $\log\alpha - \psi(\alpha) = \log\mathbb{E}Y^{-1} +
      \mathbb{E}\log Y$, the law $\mathrm{GIG}(-\alpha, 0, 2\alpha/\mathbb{E}Y^{-1})$;
    * Gamma: $\log\alpha - \psi(\alpha) = \log\mathbb{E}Y - \mathbb{E}\log Y$,
      $\mathrm{GIG}(\alpha, 2\alpha/\mathbb{E}Y, 0)$.

    Both shapes come from one call of the Gamma shape solver (NaN where no root)."""
    alpha_ig, alpha_g = inverse_log_minus_digamma(
        jnp.stack([jnp.log(eta[1]) + eta[0], jnp.log(eta[2]) - eta[0]])
    )
    zero = jnp.zeros_like(eta[0])
    laws = jnp.stack(
        [
            jnp.stack([-alpha_ig, zero, 2 * alpha_ig / eta[1]]),
            jnp.stack([alpha_g, 2 * alpha_g / eta[2], zero]),
        ]
    )
    scores = jax.vmap(lambda c: boundary_objective(c[0], c[1], c[2], eta))(laws)
    return laws, scores
