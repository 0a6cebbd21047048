r"""Probabilistic-PCA / factor-analysis start for factor mixtures, in $O(n d r)$.

With weights $w_i$ (normalised) and $S = \sum_i w_i (x_i - \bar x)(x_i - \bar x)^\top$,
the $d\times d$ matrix $S$ is never formed:

1. **Subspace iteration** for the top eigenvectors of $S$ (Halko, Martinsson & Tropp
   2011): $k = \min(r + 10, d)$ columns, started *deterministically* from the $k$
   columns of $S$ with the largest variances ($S E_J = \tilde X^\top \tilde X_{:, J}$,
   $\tilde X = \operatorname{diag}(\sqrt w)(X - \bar x)$), then `power_steps` rounds of
   $Q \leftarrow \operatorname{qr}(\tilde X^\top(\tilde X Q))$ and a Rayleigh-Ritz step.
   Each round costs $O(n d k)$.
2. **Probabilistic PCA** (Tipping & Bishop 1999): $\sigma^2 = (\operatorname{tr}S -
   \sum_{j\le r}\lambda_j)/(d - r)$, $F = U_r(\Lambda_r - \sigma^2 I)^{1/2}$,
   $D = \sigma^2\mathbf 1$ (a Ritz value below $\sigma^2$ gives a zero column).
3. **Factor analysis**: `fa_steps` Gaussian FA EM steps (Rubin & Thayer 1982), each
   $O(n d r)$: $\beta = F^\top\Sigma^{-1}$, $F \leftarrow S\beta^\top(\beta S\beta^\top +
   I - \beta F)^{-1}$, $D \leftarrow \operatorname{diag}(S) - \operatorname{diag}(F\beta S)$.
   As part of this *start* (not of the fitted estimator) each $D_j$ is kept
   $\ge 10^{-3} S_{jj}$, so a near-Heywood start stays well defined; EM then moves freely.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._covariance import LowRankPlusDiagonal

_OVERSAMPLE = 10
_INIT_DIAG_FRACTION = 1e-3


def _orthonormal(q: Array) -> Array:
    return jnp.linalg.qr(q)[0]


def factor_analysis_start(
    x: Float[Array, "n d"],
    weights: Float[Array, " n"],
    rank: int,
    *,
    power_steps: int = 6,
    fa_steps: int = 20,
) -> tuple[Float[Array, " d"], LowRankPlusDiagonal]:
    r"""$(\bar x, \Sigma_0)$ with $\Sigma_0 = F F^\top + \operatorname{diag}(D)$ the PPCA
    start refined by factor-analysis EM; see the module docstring. $O(n d r)$ time and
    $O(n d)$ memory (besides the data)."""
    n, d = x.shape
    w = weights / jnp.sum(weights)
    mean = w @ x
    xt = (x - mean[None, :]) * jnp.sqrt(w)[:, None]
    var = jnp.sum(xt * xt, axis=0)  # diag(S)
    k = min(rank + _OVERSAMPLE, d)
    _, cols = jax.lax.top_k(var, k)
    q = xt.T @ xt[:, cols]  # = S[:, cols]

    def power(_, q):
        q = _orthonormal(q)
        return xt.T @ (xt @ q)

    q = _orthonormal(jax.lax.fori_loop(0, power_steps, power, q))
    z = xt @ q
    lam, v = jnp.linalg.eigh(z.T @ z)
    lam, v = lam[::-1][:rank], v[:, ::-1][:, :rank]
    u = q @ v
    sigma2 = (jnp.sum(var) - jnp.sum(lam)) / (d - rank)
    F = u * jnp.sqrt(jnp.maximum(lam - sigma2, 0.0))[None, :]
    D = jnp.full((d,), sigma2, dtype=x.dtype)
    floor = _INIT_DIAG_FRACTION * var
    D = jnp.maximum(D, floor)

    def fa_step(_, fd):
        F, D = fd
        cov = LowRankPlusDiagonal(F, D, check=False)
        c_inv = cov.capacitance_inverse()
        beta = c_inv @ (F / D[:, None]).T  # F^T Sigma^{-1}, (r, d)
        s_beta = xt.T @ (xt @ beta.T)  # S beta^T, (d, r)
        ezz = c_inv + beta @ s_beta
        F_new = jnp.linalg.solve(ezz, s_beta.T).T
        D_new = var - jnp.sum(F_new * s_beta, axis=1)
        return F_new, jnp.maximum(D_new, floor)

    F, D = jax.lax.fori_loop(0, fa_steps, fa_step, (F, D))
    return mean, LowRankPlusDiagonal(F, D, check=False).canonical()
