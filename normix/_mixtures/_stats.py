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
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float


class NormalMixtureStats(eqx.Module):
    r"""Weighted means of $t(x, y)$ (or of its conditional expectation given $x$)."""

    log_y: Float[Array, ""]
    inv_y: Float[Array, ""]
    y: Float[Array, ""]
    x: Float[Array, " d"]
    x_inv_y: Float[Array, " d"]
    xx_inv_y: Float[Array, "d d"]

    def gig_part(self) -> Float[Array, " 3"]:
        r"""$(\mathbb{E}\log Y, \mathbb{E}\,Y^{-1}, \mathbb{E}\,Y)$, what the subordinator needs."""
        return jnp.stack([self.log_y, self.inv_y, self.y])

    def flatten(self) -> Float[Array, " k"]:
        """The flat vector in the order of the joint family's sufficient statistics."""
        return jnp.concatenate(
            [self.gig_part(), self.x, self.x_inv_y, self.xx_inv_y.reshape(-1)]
        )

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
        )


def normal_part_mle(
    s: NormalMixtureStats,
) -> tuple[Float[Array, " d"], Float[Array, " d"], Float[Array, "d d"]]:
    r"""Closed-form $(\mu, \gamma, \Sigma)$ maximising the expected complete-data likelihood."""
    denom = 1.0 - s.inv_y * s.y
    gamma = (s.x_inv_y - s.inv_y * s.x) / denom
    mu = (s.x - s.y * s.x_inv_y) / denom
    sigma = (
        s.xx_inv_y
        - jnp.outer(s.x_inv_y, mu)
        - jnp.outer(mu, s.x_inv_y)
        + s.inv_y * jnp.outer(mu, mu)
        - jnp.outer(s.x, gamma)
        - jnp.outer(gamma, s.x)
        + jnp.outer(mu, gamma)
        + jnp.outer(gamma, mu)
        + s.y * jnp.outer(gamma, gamma)
    )
    return mu, gamma, 0.5 * (sigma + sigma.T)


def symmetric_normal_part_mle(
    s: NormalMixtureStats,
) -> tuple[Float[Array, " d"], Float[Array, "d d"]]:
    r"""$(\mu, \Sigma)$ with $\gamma = 0$ held fixed (symmetric laws such as Student-t):
    $\mu = s_5 / s_2$, $\Sigma = s_6 - s_5 s_5^\top / s_2$."""
    mu = s.x_inv_y / s.inv_y
    sigma = s.xx_inv_y - jnp.outer(s.x_inv_y, mu)
    return mu, 0.5 * (sigma + sigma.T)
