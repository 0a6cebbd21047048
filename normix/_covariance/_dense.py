r"""A dense covariance stored by its lower Cholesky factor, $\Sigma = L L^\top$."""

from __future__ import annotations

from typing import Self

import jax.numpy as jnp
import jax.random as jr
import jax.scipy.linalg as jsl
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import error_if
from ._abstract import AbstractCovariance, check_rhs, check_rows


class DenseCovariance(AbstractCovariance):
    r"""$\Sigma = L L^\top$ with $L$ lower triangular ($d\times d$).

    Only the lower triangle of `L` is read (the strict upper triangle is zeroed at
    construction). Build it from a covariance matrix with `from_matrix(S)`, or from a
    factor with `DenseCovariance(L)` / `from_cholesky(L)`.

    Costs: factorisation-free (the factor *is* the parameter); `solve` is two triangular
    solves, `logdet` $= 2\sum_i\log|L_{ii}|$, and `whiten(X)` $= X L^{-\top}$ inverts the
    $d\times d$ triangle once and uses one matrix product for all rows.
    """

    L: Float[Array, "d d"]

    def __init__(self, L: ArrayLike):
        L = jnp.asarray(L)
        L = L.astype(jnp.result_type(L, float))
        if L.ndim != 2 or L.shape[0] != L.shape[1]:
            raise ValueError(
                f"DenseCovariance: `L` must be a square (d, d) lower-triangular Cholesky "
                f"factor, got shape {L.shape}."
            )
        self.L = jnp.tril(L)

    @classmethod
    def from_cholesky(cls, L: ArrayLike) -> Self:
        r"""The covariance $L L^\top$ for a lower-triangular `L` (no value checks)."""
        return cls(L)

    @classmethod
    def from_matrix(cls, S: ArrayLike, *, check: bool = True) -> Self:
        r"""The covariance with matrix `S` (symmetric positive definite, shape `(d, d)`).

        `S` is symmetrised as $(S + S^\top)/2$ and factorised by Cholesky. With
        `check=True` (default) an error is raised, also under `jit` (`eqx.error_if`), if
        `S` is not symmetric to within $\sqrt{\epsilon}\max|S|$, or not positive definite
        (or holds NaN/inf). With `check=False` a non-PD `S` gives a NaN factor instead,
        which `normix.fit` reports as a `nonfinite` result (useful inside M-steps).
        """
        S = jnp.asarray(S)
        S = S.astype(jnp.result_type(S, float))
        if S.ndim != 2 or S.shape[0] != S.shape[1]:
            raise ValueError(f"DenseCovariance.from_matrix: `S` must be square, got {S.shape}.")
        if check:
            tol = jnp.sqrt(jnp.finfo(S.dtype).eps) * jnp.max(jnp.abs(S))
            S = error_if(
                S,
                jnp.any(jnp.abs(S - S.T) > tol),
                "DenseCovariance.from_matrix: `S` is not symmetric.",
            )
        L = jnp.linalg.cholesky(0.5 * (S + S.T))
        if check:
            L = error_if(
                L,
                ~jnp.all(jnp.isfinite(L)),
                "DenseCovariance.from_matrix: `S` is not positive definite (its Cholesky "
                "factorisation failed) or contains NaN/inf.",
            )
        return cls(L)

    # ------------------------------------------------------------------ operator
    @property
    def dim(self) -> int:
        return self.L.shape[-1]

    def cholesky(self) -> Float[Array, "d d"]:
        """The lower Cholesky factor $L$."""
        return self.L

    def solve(self, v: Float[Array, d * m]) -> Float[Array, d * m]:
        v = check_rhs("DenseCovariance.solve", v, self.dim)
        return jsl.cho_solve((self.L, True), v.astype(jnp.result_type(v, self.L)))

    def logdet(self) -> Float[Array, ""]:
        return 2.0 * jnp.sum(jnp.log(jnp.abs(jnp.diagonal(self.L))))

    def as_matrix(self) -> Float[Array, "d d"]:
        return self.L @ self.L.T

    def inverse_cholesky(self) -> Float[Array, "d d"]:
        r"""$L^{-1}$ (lower triangular), computed with one triangular solve."""
        eye = jnp.eye(self.dim, dtype=self.L.dtype)
        return jsl.solve_triangular(self.L, eye, lower=True)

    def whiten(self, x: Float[Array, "n d"]) -> Float[Array, "n d"]:
        r"""$w_i = L^{-1} x_i$, computed as $X L^{-\top}$ (one inverse, one matmul)."""
        x = check_rows("DenseCovariance.whiten", x, self.dim)
        return x @ self.inverse_cholesky().T

    def sample_noise(self, key: PRNGKeyArray, shape: tuple[int, ...] = ()) -> Array:
        z = jr.normal(key, (*shape, self.dim), dtype=self.L.dtype)
        return z @ self.L.T

    def diagonal(self) -> Float[Array, " d"]:
        return jnp.sum(self.L * self.L, axis=1)

    def scale(self, c: ArrayLike) -> Self:
        r"""$c\,\Sigma$, i.e. the factor $\sqrt{c}\,L$; `c` must be a positive scalar."""
        c = jnp.asarray(c, dtype=jnp.result_type(c, self.L))
        if c.ndim != 0:
            raise ValueError(f"DenseCovariance.scale: `c` must be a scalar, got {c.shape}.")
        c = error_if(c, ~(c > 0), "DenseCovariance.scale: `c` must be > 0.")
        return DenseCovariance(jnp.sqrt(c) * self.L)
