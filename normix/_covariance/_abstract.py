r"""The covariance-operator interface.

A covariance operator represents a symmetric positive-definite $d\times d$ matrix
$\Sigma$ through a structured parametrisation (a Cholesky factor, a low-rank factor plus a
diagonal, ...) and owns every linear-algebra operation a normal mixture needs:

* `solve(v)` $=\Sigma^{-1}v$, `logdet()` $=\log\det\Sigma$, `as_matrix()` $=\Sigma$;
* `whiten(X)`: rows $w_i = T x_i$ with $T^\top T = \Sigma^{-1}$, so that
  $\lVert w_i\rVert^2 = x_i^\top\Sigma^{-1}x_i$ (Mahalanobis distances of many rows with
  one factorisation and a matmul);
* `sample_noise(key, shape)`: draws from $N(0, \Sigma)$;
* `diagonal()` $=\operatorname{diag}\Sigma$, `scale(c)` $= c\,\Sigma$ (the scale gauge of
  normal variance-mean mixtures).

Derived operations (`quad_form`, `mahalanobis_sq`, `trace`) are written once here and
never overridden. Concrete operators are final. Factorisations are computed locally on
demand and never cached in fields, so operators stay plain pytrees of parameters.
"""

from __future__ import annotations

import abc
from typing import Self

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray


class AbstractCovariance(eqx.Module):
    r"""A symmetric positive-definite $d\times d$ matrix $\Sigma$ in structured form."""

    # ------------------------------------------------------------------ per operator
    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """The dimension $d$ (a static Python int)."""

    @abc.abstractmethod
    def solve(self, v: Float[Array, d * m]) -> Float[Array, d * m]:
        r"""$\Sigma^{-1} v$ for `v` of shape `(d,)` or `(d, m)`."""

    @abc.abstractmethod
    def logdet(self) -> Float[Array, ""]:
        r"""$\log\det\Sigma$."""

    @abc.abstractmethod
    def as_matrix(self) -> Float[Array, "d d"]:
        r"""The dense matrix $\Sigma$ (for tests and small problems)."""

    @abc.abstractmethod
    def whiten(self, x: Float[Array, "n d"]) -> Float[Array, "n d"]:
        r"""Rows $w_i = T x_i$ with $T^\top T = \Sigma^{-1}$, for `x` of shape `(n, d)`.

        Then $\lVert w_i\rVert^2 = x_i^\top \Sigma^{-1} x_i$. One factorisation is shared by
        all rows and applied with matrix products.
        """

    @abc.abstractmethod
    def sample_noise(self, key: PRNGKeyArray, shape: tuple[int, ...] = ()) -> Array:
        r"""Independent draws from $N(0, \Sigma)$, of shape `shape + (d,)`."""

    @abc.abstractmethod
    def diagonal(self) -> Float[Array, " d"]:
        r"""The diagonal of $\Sigma$ (the marginal variances)."""

    @abc.abstractmethod
    def scale(self, c: ArrayLike) -> Self:
        r"""The operator for $c\,\Sigma$, $c > 0$ a scalar."""

    # ------------------------------------------------------------------ derived, final
    def quad_form(self, v: Float[Array, " d"]) -> Float[Array, ""]:
        r"""$v^\top \Sigma^{-1} v$ for one vector `v` of shape `(d,)`."""
        v = jnp.asarray(v)
        if v.shape != (self.dim,):
            raise ValueError(
                f"{type(self).__name__}.quad_form: `v` must have shape ({self.dim},), got "
                f"{v.shape}; use `mahalanobis_sq` for many rows."
            )
        return v @ self.solve(v)

    def mahalanobis_sq(self, x: Float[Array, "n d"]) -> Float[Array, " n"]:
        r"""$x_i^\top \Sigma^{-1} x_i$ for every row of `x` (shape `(n, d)`): the squared
        row norms of `whiten(x)`."""
        w = self.whiten(x)
        return jnp.sum(w * w, axis=-1)

    def trace(self) -> Float[Array, ""]:
        r"""$\operatorname{tr}\Sigma$."""
        return jnp.sum(self.diagonal())


def check_rows(owner: str, x: Array, dim: int) -> Array:
    """Raise a `ValueError` unless `x` has shape `(n, dim)`; return it as an array."""
    x = jnp.asarray(x)
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(f"{owner}: `x` must have shape (n, {dim}), got {x.shape}.")
    return x


def check_rhs(owner: str, v: Array, dim: int) -> Array:
    """Raise a `ValueError` unless `v` has shape `(dim,)` or `(dim, m)`."""
    v = jnp.asarray(v)
    if v.ndim not in (1, 2) or v.shape[0] != dim:
        raise ValueError(f"{owner}: `v` must have shape ({dim},) or ({dim}, m), got {v.shape}.")
    return v
