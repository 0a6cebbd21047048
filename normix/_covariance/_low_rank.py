r"""Low-rank plus diagonal covariance $\Sigma = F F^\top + \operatorname{diag}(D)$.

With $G = D^{-1/2} F$ ($d\times r$) and the $r\times r$ capacitance matrix
$C = I_r + G^\top G = I_r + F^\top D^{-1} F = M M^\top$ (Cholesky),

$$\Sigma = D^{1/2}(I_d + G G^\top)D^{1/2},\qquad
\Sigma^{-1} = D^{-1/2}\big(I_d - G C^{-1} G^\top\big)D^{-1/2}$$

(Woodbury) and $\log\det\Sigma = \sum_i \log D_i + 2\sum_j \log M_{jj}$ (matrix determinant
lemma). Every operation costs $O(d r^2 + r^3)$ for the factorisation plus $O(d r)$ per
right-hand side; no dense $d\times d$ matrix is formed except by `as_matrix`.
"""

from __future__ import annotations

from typing import Self

import equinox as eqx
import jax.numpy as jnp
import jax.random as jr
import jax.scipy.linalg as jsl
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._abstract import AbstractCovariance, check_rhs, check_rows


class LowRankPlusDiagonal(AbstractCovariance):
    r"""$\Sigma = F F^\top + \operatorname{diag}(D)$ with $F$ of shape `(d, r)` and $D > 0$.

    The factor-analysis covariance. `D > 0` is checked with `eqx.error_if` (also under
    `jit`) unless `check=False`; then a non-positive `D` shows up as a non-finite
    `logdet`, which `normix.fit` reports as a `nonfinite` result instead of raising inside
    the loop (e.g. a Heywood case in an M-step). `r = 0` (an `F` of shape `(d, 0)`) gives
    a diagonal covariance.
    """

    F: Float[Array, "d r"]
    D: Float[Array, " d"]

    def __init__(self, F: ArrayLike, D: ArrayLike, *, check: bool = True):
        F, D = jnp.asarray(F), jnp.asarray(D)
        dtype = jnp.result_type(F, D, float)
        if F.ndim != 2:
            raise ValueError(f"LowRankPlusDiagonal: `F` must have shape (d, r), got {F.shape}.")
        if D.ndim != 1 or D.shape[0] != F.shape[0]:
            raise ValueError(
                f"LowRankPlusDiagonal: `D` must have shape (d,) = ({F.shape[0]},) to match "
                f"`F` of shape {F.shape}, got {D.shape}."
            )
        D = D.astype(dtype)
        self.F = F.astype(dtype)
        if check:
            D = eqx.error_if(
                D, ~jnp.all(D > 0), "LowRankPlusDiagonal: the diagonal `D` must be > 0."
            )
        self.D = D

    # ------------------------------------------------------------------ factorisation
    @property
    def dim(self) -> int:
        return self.F.shape[0]

    @property
    def rank(self) -> int:
        """The number of columns $r$ of $F$."""
        return self.F.shape[1]

    def scaled_factor(self) -> Float[Array, "d r"]:
        r"""$G = D^{-1/2} F$."""
        return self.F / jnp.sqrt(self.D)[:, None]

    def capacitance_cholesky(self) -> Float[Array, "r r"]:
        r"""Lower Cholesky factor $M$ of $C = I_r + F^\top D^{-1} F$."""
        G = self.scaled_factor()
        C = jnp.eye(self.rank, dtype=G.dtype) + G.T @ G
        return jnp.linalg.cholesky(C)

    # ------------------------------------------------------------------ operator
    def solve(self, v: Float[Array, d * m]) -> Float[Array, d * m]:
        v = check_rhs("LowRankPlusDiagonal.solve", v, self.dim)
        v = v.astype(jnp.result_type(v, self.D))
        G, M = self.scaled_factor(), self.capacitance_cholesky()
        s = jnp.sqrt(self.D)
        s = s if v.ndim == 1 else s[:, None]
        y = v / s
        y = y - G @ jsl.cho_solve((M, True), G.T @ y)
        return y / s

    def logdet(self) -> Float[Array, ""]:
        M = self.capacitance_cholesky()
        return jnp.sum(jnp.log(self.D)) + 2.0 * jnp.sum(jnp.log(jnp.diagonal(M)))

    def as_matrix(self) -> Float[Array, "d d"]:
        return self.F @ self.F.T + jnp.diag(self.D)

    def whiten(self, x: Float[Array, "n d"]) -> Float[Array, "n d"]:
        r"""Symmetric whitening $W = Y - Y G K G^\top$ with $Y = X D^{-1/2}$.

        With $G^\top G = V \Lambda V^\top$ ($r\times r$ eigendecomposition) and
        $K = V f(\Lambda) V^\top$, $f(\lambda) = 1/\big(s(s+1)\big)$, $s = \sqrt{1+\lambda}$,
        the matrix $T = I - G K G^\top$ satisfies $T^2 = (I + G G^\top)^{-1}$, so
        $\lVert w_i\rVert^2 = x_i^\top\Sigma^{-1}x_i$. Cost $O(n d r + d r^2 + r^3)$.
        (Gradients through `eigh` are undefined when $G^\top G$ has repeated eigenvalues;
        differentiate `solve`/`quad_form` instead in that case.)
        """
        x = check_rows("LowRankPlusDiagonal.whiten", x, self.dim)
        x = x.astype(jnp.result_type(x, self.D))
        G = self.scaled_factor()
        lam, V = jnp.linalg.eigh(G.T @ G)
        s = jnp.sqrt(1.0 + lam)
        K = (V * (1.0 / (s * (s + 1.0)))[None, :]) @ V.T
        Y = x / jnp.sqrt(self.D)[None, :]
        return Y - ((Y @ G) @ K) @ G.T

    def sample_noise(self, key: PRNGKeyArray, shape: tuple[int, ...] = ()) -> Array:
        r"""$F z + \sqrt{D}\odot\varepsilon$, $z \sim N(0, I_r)$, $\varepsilon\sim N(0, I_d)$."""
        k1, k2 = jr.split(key)
        z = jr.normal(k1, (*shape, self.rank), dtype=self.D.dtype)
        eps = jr.normal(k2, (*shape, self.dim), dtype=self.D.dtype)
        sqrt_d = jnp.sqrt(self.D).reshape((1,) * len(shape) + (self.dim,))
        return z @ self.F.T + sqrt_d * eps

    def diagonal(self) -> Float[Array, " d"]:
        return jnp.sum(self.F * self.F, axis=1) + self.D

    def scale(self, c: ArrayLike) -> Self:
        r"""$c\,\Sigma = (\sqrt{c}F)(\sqrt{c}F)^\top + \operatorname{diag}(cD)$, $c > 0$."""
        c = jnp.asarray(c, dtype=jnp.result_type(c, self.D))
        if c.ndim != 0:
            raise ValueError(f"LowRankPlusDiagonal.scale: `c` must be a scalar, got {c.shape}.")
        c = eqx.error_if(c, ~(c > 0), "LowRankPlusDiagonal.scale: `c` must be > 0.")
        return LowRankPlusDiagonal(jnp.sqrt(c) * self.F, c * self.D)
