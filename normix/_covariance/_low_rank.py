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

import jax.numpy as jnp
import jax.random as jr
import jax.scipy.linalg as jsl
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import error_if
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
            D = error_if(D, ~jnp.all(D > 0), "LowRankPlusDiagonal: the diagonal `D` must be > 0.")
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

    def capacitance_inverse(self) -> Float[Array, "r r"]:
        r"""$C^{-1} = (I_r + F^\top D^{-1} F)^{-1}$ ($r\times r$, symmetric).

        It is also $I_r - F^\top\Sigma^{-1}F$, the covariance of the factor scores given
        an observation in the factor-analysis model $x = F z + \varepsilon$."""
        M = self.capacitance_cholesky()
        C_inv = jsl.cho_solve((M, True), jnp.eye(self.rank, dtype=M.dtype))
        return 0.5 * (C_inv + C_inv.T)

    def mahalanobis_and_scores(
        self, x: Float[Array, "n d"]
    ) -> tuple[Float[Array, " n"], Float[Array, "n r"]]:
        r"""$q_i = x_i^\top\Sigma^{-1}x_i$ and the factor scores $m_i = F^\top\Sigma^{-1}x_i$
        for every row, from one pass over the data.

        With $y_i = D^{-1/2}x_i$ and $p_i = G^\top y_i$: $m_i = C^{-1}p_i$ (because
        $F^\top\Sigma^{-1} = C^{-1}G^\top D^{-1/2}$) and $q_i = \lVert y_i\rVert^2 -
        p_i^\top C^{-1} p_i$. Cost $O(n d r + d r^2 + r^3)$; $C^{-1}$ is applied as one
        $r\times r$ matrix product (no per-row triangular solves)."""
        x = check_rows("LowRankPlusDiagonal.mahalanobis_and_scores", x, self.dim)
        x = x.astype(jnp.result_type(x, self.D))
        G = self.scaled_factor()
        y = x / jnp.sqrt(self.D)[None, :]
        p = y @ G
        m = p @ self.capacitance_inverse()
        q = jnp.sum(y * y, axis=-1) - jnp.sum(p * m, axis=-1)
        return q, m

    def canonical(self) -> Self:
        r"""The same $\Sigma$ with $F$ rotated to a canonical form.

        $F$ is identified only up to $F \to F R$, $R$ orthogonal. The canonical
        representative has $F^\top D^{-1} F$ diagonal with decreasing entries (columns
        of $G = D^{-1/2}F$ orthogonal, by decreasing norm) and the entry of largest
        magnitude in each column of $F$ positive. It is unique when the eigenvalues of
        $F^\top D^{-1}F$ are distinct. Cost $O(d r^2 + r^3)$."""
        G = self.scaled_factor()
        _, V = jnp.linalg.eigh(G.T @ G)
        F = self.F @ V[:, ::-1]
        rows = jnp.argmax(jnp.abs(F), axis=0)
        signs = jnp.sign(F[rows, jnp.arange(self.rank)])
        signs = jnp.where(signs == 0, 1.0, signs).astype(F.dtype)
        return LowRankPlusDiagonal(F * signs[None, :], self.D, check=False)

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
        c = error_if(c, ~(c > 0), "LowRankPlusDiagonal.scale: `c` must be > 0.")
        return LowRankPlusDiagonal(jnp.sqrt(c) * self.F, c * self.D)
