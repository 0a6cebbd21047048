r"""Expected sufficient statistics of the joint normal variance-mean mixture, and the
closed-form M-step of its normal part.

For $X \mid Y \sim N(\mu + \gamma Y, \Sigma Y)$ the complete-data sufficient statistics are

$$t(x, y) = \big(\log y,\; y^{-1},\; y,\; x,\; x\,y^{-1},\; x x^\top y^{-1}\big).$$

Given their (weighted) means $s_1,\dots,s_6$, the complete-data MLE of the normal part is

$$\gamma = \frac{s_5 - s_2 s_4}{1 - s_2 s_3},\qquad
  \mu = \frac{s_4 - s_3 s_5}{1 - s_2 s_3},$$
$$\Sigma = s_6 - s_5\mu^\top - \mu s_5^\top + s_2\,\mu\mu^\top - s_4\gamma^\top - \gamma s_4^\top
  + \mu\gamma^\top + \gamma\mu^\top + s_3\,\gamma\gamma^\top.$$

By Jensen $s_2 s_3 = \mathbb{E}[Y^{-1}]\,\mathbb{E}[Y] \ge 1$, so the denominator is $\le 0$; it
is used as it is (flooring it at a small *positive* number would flip the signs of $\mu$
and $\gamma$ near the Gaussian limit; PITFALLS #9).

**Centred statistics.** The E-step accumulates the $x$-statistics of $z = x - c$, with $c$
the current $\mu$ (`centre`), and the M-step returns $\mu = c + \mu_z$. Besides avoiding
the cancellation of uncentred second moments, this makes the variance-gamma cusp exact
(PITFALLS #1): with $b = 0$, an observation $x_j = \mu$ has $\mathbb{E}[Y^{-1} \mid x_j] =
\infty$ when the shape is $\le d/2 + 1$. Its terms $z_j/Y$ and $z_j z_j^\top / Y$ are then
identically zero (not $0\cdot\infty$): the E-step drops them from $s_5, s_6$ and keeps
$s_2 = \infty$. The expected complete-data log-likelihood is $-\infty$ unless
$\mu = x_j$, so its maximiser is $\mu_z = 0$ with
$\gamma = s_4 / s_3$, $\Sigma = s_6 - s_4\gamma^\top - \gamma s_4^\top + s_3\gamma\gamma^\top$
(the limit of the formulas above as $s_2 \to \infty$), and EM stays on that cusp, a local
maximum of the likelihood.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float


class NormalMixtureStats(eqx.Module):
    r"""Weighted means of $t(x, y)$ (or of its conditional expectation given $x$), with the
    $x$-statistics (`x`, `x_inv_y`, `xx_inv_y`) those of $x - $ `centre`; `flatten` gives
    the uncentred ones (the joint family's expectation parameters)."""

    log_y: Float[Array, ""]
    inv_y: Float[Array, ""]
    y: Float[Array, ""]
    x: Float[Array, " d"]
    x_inv_y: Float[Array, " d"]
    xx_inv_y: Float[Array, "d d"]
    centre: Float[Array, " d"]

    def gig_part(self) -> Float[Array, " 3"]:
        r"""$(\mathbb{E}\log Y, \mathbb{E}\,Y^{-1}, \mathbb{E}\,Y)$, what the subordinator needs."""
        return jnp.stack([self.log_y, self.inv_y, self.y])

    def flatten(self) -> Float[Array, " k"]:
        """The flat vector of uncentred statistics, in the order of the joint family's
        sufficient statistics (infinite at a variance-gamma cusp, where they do not exist)."""
        c, s2 = self.centre, self.inv_y
        cc = jnp.outer(c, c)
        # s2 * c with 0 * inf = 0: a coordinate where the centre is 0 has no 1/Y term
        x_inv_y = self.x_inv_y + jnp.where(c == 0, 0.0, s2 * c)
        xx = self.xx_inv_y + jnp.outer(self.x_inv_y, c) + jnp.outer(c, self.x_inv_y)
        xx = xx + jnp.where(cc == 0, 0.0, s2 * cc)
        x = self.x + c
        return jnp.concatenate([self.gig_part(), x, x_inv_y, xx.reshape(-1)])

    @classmethod
    def unflatten(cls, flat: Float[Array, " k"], dim: int) -> NormalMixtureStats:
        """Inverse of `flatten` for dimension `dim`."""
        d = dim
        return cls(
            log_y=flat[0],
            inv_y=flat[1],
            y=flat[2],
            x=flat[3 : 3 + d],
            x_inv_y=flat[3 + d : 3 + 2 * d],
            xx_inv_y=flat[3 + 2 * d :].reshape(d, d),
            centre=jnp.zeros(d, dtype=flat.dtype),
        )

    def rescale_latent(self, c: Float[Array, ""]) -> NormalMixtureStats:
        r"""The statistics of the rescaled latent $Y' = Y / c$ (same $x$)."""
        return NormalMixtureStats(
            log_y=self.log_y - jnp.log(c),
            inv_y=self.inv_y * c,
            y=self.y / c,
            x=self.x,
            x_inv_y=self.x_inv_y * c,
            xx_inv_y=self.xx_inv_y * c,
            centre=self.centre,
        )


def weighted_row_sum(w: Float[Array, " n"], values: Float[Array, "n k"]) -> Float[Array, " k"]:
    r"""$\sum_i w_i v_i$ over rows, a row of zero weight adding 0 even where its $v_i$ is
    infinite (e.g. $\mathbb{E}[Y^{-1} \mid x_i]$ on a cusp, in a block's unused rows)."""
    wv = w[:, None] * values
    return jnp.sum(jnp.where(w[:, None] > 0, wv, 0.0), axis=0)


def inverse_latent_weights(w: Float[Array, " n"], e_inv: Float[Array, " n"]) -> Float[Array, " n"]:
    r"""$w_i\,\mathbb{E}[Y^{-1} \mid x_i]$ as the weight of the $x$-dependent $1/Y$ terms,
    with 0 for rows of zero weight and for rows on a variance-gamma cusp
    ($\mathbb{E}[Y^{-1} \mid x_i] = \infty$, $x_i = \mu$), whose terms are identically zero
    (module docstring)."""
    return jnp.where((w > 0) & ~jnp.isinf(e_inv), w * e_inv, 0.0)


def posterior_mixture_stats(
    w: Float[Array, " n"],
    eta: Float[Array, "n 3"],
    x: Float[Array, "n d"],
    centre: Float[Array, " d"],
) -> NormalMixtureStats:
    r"""`NormalMixtureStats` from normalised weights $w_i$ and the per-row posterior
    expectations $\eta_i = (\mathbb{E}\log Y, \mathbb{E}Y^{-1}, \mathbb{E}Y \mid x_i)$,
    centred at `centre` (the $\mu$ of the model that gave $\eta$).

    Rows with zero weight contribute nothing (even where $\eta_i$ is infinite), and rows
    on a variance-gamma cusp ($\mathbb{E}[Y^{-1} \mid x_i] = \infty$, $x_i = \mu$) leave
    their vanishing $z/Y$ terms out (module docstring). The weighted sums are reductions,
    which fuse with the Bessel evaluation (under `vmap` over datasets a vector-matrix
    product would become many small batched matmuls); only the $d\times d$ moment is a
    matmul."""
    z = x - centre[None, :]
    m = weighted_row_sum(w, eta)
    c = inverse_latent_weights(w, eta[:, 1])
    return NormalMixtureStats(
        log_y=m[0],
        inv_y=m[1],
        y=m[2],
        x=jnp.sum(w[:, None] * z, axis=0),
        x_inv_y=jnp.sum(c[:, None] * z, axis=0),
        xx_inv_y=(z * c[:, None]).T @ z,
        centre=centre,
    )


def _cusp_and_inv_y(s: NormalMixtureStats) -> tuple[Array, Array]:
    r"""Whether $s_2 = \mathbb{E}Y^{-1}$ is infinite (a variance-gamma cusp), and $s_2$ with
    that infinity replaced by 0: at the cusp every term it multiplies has a factor
    $\mu_z = 0$, so the M-step formulas hold with 0 in its place."""
    cusp = jnp.isinf(s.inv_y)
    return cusp, jnp.where(cusp, 0.0, s.inv_y)


def location_skew_mle(s: NormalMixtureStats) -> tuple[Float[Array, " d"], Float[Array, " d"]]:
    r"""$(\mu, \gamma)$ of `normal_part_mle` (they do not involve $\Sigma$), with the
    cusp limit $\mu = $ `centre`, $\gamma = s_4/s_3$ when $s_2 = \infty$."""
    cusp, s2 = _cusp_and_inv_y(s)
    denom = 1.0 - s2 * s.y
    gamma = jnp.where(cusp, s.x / s.y, (s.x_inv_y - s2 * s.x) / denom)
    mu_z = jnp.where(cusp, 0.0, (s.x - s.y * s.x_inv_y) / denom)
    return s.centre + mu_z, gamma


def normal_part_mle(
    s: NormalMixtureStats,
) -> tuple[Float[Array, " d"], Float[Array, " d"], Float[Array, "d d"]]:
    r"""Closed-form $(\mu, \gamma, \Sigma)$ maximising the expected complete-data likelihood
    (module docstring), computed in the centred coordinates of `s`."""
    mu, gamma = location_skew_mle(s)
    mu_z = mu - s.centre
    _, s2 = _cusp_and_inv_y(s)
    sigma = (
        s.xx_inv_y
        - jnp.outer(s.x_inv_y, mu_z)
        - jnp.outer(mu_z, s.x_inv_y)
        + s2 * jnp.outer(mu_z, mu_z)
        - jnp.outer(s.x, gamma)
        - jnp.outer(gamma, s.x)
        + jnp.outer(mu_z, gamma)
        + jnp.outer(gamma, mu_z)
        + s.y * jnp.outer(gamma, gamma)
    )
    return mu, gamma, 0.5 * (sigma + sigma.T)


def symmetric_normal_part_mle(
    s: NormalMixtureStats,
) -> tuple[Float[Array, " d"], Float[Array, "d d"]]:
    r"""$(\mu, \Sigma)$ with $\gamma = 0$ held fixed (symmetric laws such as Student-t):
    $\mu_z = s_5 / s_2$ (0 at a cusp, $s_2 = \infty$), $\Sigma = s_6 - s_5 \mu_z^\top$."""
    cusp, _ = _cusp_and_inv_y(s)
    mu_z = jnp.where(cusp, 0.0, s.x_inv_y / s.inv_y)
    sigma = s.xx_inv_y - jnp.outer(s.x_inv_y, mu_z)
    return s.centre + mu_z, 0.5 * (sigma + sigma.T)
