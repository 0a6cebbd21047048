r"""The multivariate normal distribution as an exponential family."""

from __future__ import annotations

import math

import jax.numpy as jnp
import jax.random as jr
from jax.scipy.linalg import cho_solve, solve_triangular
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import error_if
from .._exponential_family import AbstractExponentialFamily
from .._misc import as_float

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _dim_from_theta(theta: Array) -> int:
    """$d$ from the length $k = d + d^2$ of $\\theta$ (static)."""
    k = theta.shape[-1]
    d = int(round((math.sqrt(1 + 4 * k) - 1) / 2))
    if d + d * d != k:
        raise ValueError(
            f"MultivariateNormal: natural parameters must have length d + d^2, got {k}."
        )
    return d


def _symmetrise(a: Array) -> Array:
    return (a + a.T) / 2


def _inverse_from_cholesky(chol: Array) -> Array:
    r"""$A^{-1}$ from the lower Cholesky factor of $A$, symmetrised."""
    eye = jnp.eye(chol.shape[0], dtype=chol.dtype)
    return _symmetrise(cho_solve((chol, True), eye))


def _check_cholesky(chol: Array, what: str) -> Array:
    diag = jnp.diag(chol)
    return error_if(
        chol,
        ~jnp.all(jnp.isfinite(chol)) | ~jnp.all(diag > 0),
        f"MultivariateNormal: `{what}` is not positive definite (its Cholesky factor "
        "failed or has a non-positive diagonal); pass a symmetric positive-definite "
        "covariance (add a small ridge to its diagonal if it is nearly singular).",
    )


class MultivariateNormal(AbstractExponentialFamily):
    r"""The $d$-dimensional normal distribution $N(\mu, \Sigma)$,

    $$p(x) = (2\pi)^{-d/2} |\Sigma|^{-1/2}
    \exp\big(-\tfrac12 (x - \mu)^\top \Sigma^{-1} (x - \mu)\big).$$

    As an exponential family (flat vectors of length $d + d^2$, row-major `vec`):

    * natural parameters $\theta = (\Sigma^{-1}\mu,\ \mathrm{vec}(-\tfrac12\Sigma^{-1}))$;
    * sufficient statistics $t(x) = (x,\ \mathrm{vec}(x x^\top))$;
    * base measure $\log h(x) = -\tfrac d2 \log(2\pi)$;
    * log-partition, with $\Lambda = -(\Theta_2 + \Theta_2^\top)$ (the precision),
      $\psi(\theta) = \tfrac12\theta_1^\top\Lambda^{-1}\theta_1 - \tfrac12\log|\Lambda|$
      $= \tfrac12\mu^\top\Sigma^{-1}\mu + \tfrac12\log|\Sigma|$;
    * expectation parameters $\eta = (\mu,\ \mathrm{vec}(\Sigma + \mu\mu^\top))$.

    Only the symmetric part of $\Theta_2$ matters ($\psi$ symmetrises it), so the Fisher
    information in this embedding is singular along antisymmetric directions.

    Stored as the mean `mu` and the lower Cholesky factor `chol` of $\Sigma$.
    scipy: `multivariate_normal(mean, cov)`.

    **Arguments:**

    - `mean`: $\mu$, shape `(d,)`.
    - `cov`: $\Sigma$, shape `(d, d)`, symmetric positive definite. Or, keyword-only,
    - `chol`: its lower Cholesky factor (see `from_cholesky`) instead of `cov`.
    """

    event_ndim = 1

    mu: Float[Array, " d"]
    chol: Float[Array, "d d"]

    def __init__(
        self,
        mean: ArrayLike,
        cov: ArrayLike | None = None,
        *,
        chol: ArrayLike | None = None,
    ):
        if (cov is None) == (chol is None):
            raise ValueError("MultivariateNormal: pass exactly one of `cov` and `chol`.")
        matrix_name = "cov" if chol is None else "chol"
        mean, matrix = as_float(mean, cov if chol is None else chol)
        if mean.ndim != 1:
            raise ValueError(
                f"MultivariateNormal: `mean` must be 1-D (shape (d,)), got shape {mean.shape}. "
                "To work with many distributions at once, build them under `jax.vmap`."
            )
        d = mean.shape[0]
        if matrix.shape != (d, d):
            raise ValueError(
                f"MultivariateNormal: `{matrix_name}` must have shape {(d, d)} to match "
                f"`mean` of shape {(d,)}, got shape {matrix.shape}."
            )
        self.mu = error_if(
            mean,
            ~jnp.all(jnp.isfinite(mean)),
            "MultivariateNormal: `mean` contains NaN or inf; pass finite values.",
        )
        matrix = error_if(
            matrix,
            ~jnp.all(jnp.isfinite(matrix)),
            f"MultivariateNormal: `{matrix_name}` contains NaN or inf; pass finite values.",
        )
        if chol is None:
            tol = math.sqrt(float(jnp.finfo(matrix.dtype).eps)) * jnp.max(jnp.abs(matrix))
            matrix = error_if(
                matrix,
                jnp.any(jnp.abs(matrix - matrix.T) > tol),
                "MultivariateNormal: `cov` is not symmetric; pass a symmetric matrix "
                "(e.g. (cov + cov.T) / 2).",
            )
            self.chol = _check_cholesky(jnp.linalg.cholesky(matrix), "cov")
        else:
            matrix = error_if(
                matrix,
                jnp.any(jnp.triu(matrix, 1) != 0),
                "MultivariateNormal: `chol` must be lower triangular (zeros above the "
                "diagonal); pass jnp.linalg.cholesky(cov).",
            )
            self.chol = _check_cholesky(matrix, "chol")

    @classmethod
    def from_cholesky(cls, mean: ArrayLike, chol: ArrayLike) -> MultivariateNormal:
        r"""$N(\mu, L L^\top)$ from the mean and a lower-triangular $L$ with positive diagonal."""
        return cls(mean, chol=chol)

    # ------------------------------------------------------------ exponential family
    @property
    def event_shape(self) -> tuple[int, ...]:
        return self.mu.shape

    def natural_params(self) -> Float[Array, " k"]:
        precision = _inverse_from_cholesky(self.chol)
        return jnp.concatenate([precision @ self.mu, (-0.5 * precision).ravel()])

    @classmethod
    def _split(cls, theta: Array) -> tuple[Array, Array]:
        d = _dim_from_theta(theta)
        return theta[:d], theta[d:].reshape(d, d)

    @classmethod
    def log_partition_at(cls, theta: Float[Array, " k"]) -> Float[Array, ""]:
        theta1, theta2 = cls._split(theta)
        chol_prec = jnp.linalg.cholesky(-(theta2 + theta2.T))
        z = solve_triangular(chol_prec, theta1, lower=True)
        return 0.5 * z @ z - jnp.sum(jnp.log(jnp.diag(chol_prec)))

    @classmethod
    def expectation_at(cls, theta: Float[Array, " k"]) -> Float[Array, " k"]:
        theta1, theta2 = cls._split(theta)
        cov = _inverse_from_cholesky(jnp.linalg.cholesky(-(theta2 + theta2.T)))
        mu = cov @ theta1
        return jnp.concatenate([mu, (cov + jnp.outer(mu, mu)).ravel()])

    @classmethod
    def natural_from_expectation(
        cls, eta: Float[Array, " k"], theta0: Float[Array, " k"] | None = None
    ) -> Float[Array, " k"]:
        r"""$\mu = \eta_1$, $\Sigma = \mathrm{sym}(H) - \mu\mu^\top$ with $H$ the reshaped
        $\eta_2$, then $\theta = (\Sigma^{-1}\mu, -\tfrac12\Sigma^{-1})$ (closed form)."""
        mu, second = cls._split(eta)
        cov = _symmetrise(second) - jnp.outer(mu, mu)
        precision = _inverse_from_cholesky(jnp.linalg.cholesky(cov))
        return jnp.concatenate([precision @ mu, (-0.5 * precision).ravel()])

    @classmethod
    def from_natural(cls, theta: Float[Array, " k"]) -> MultivariateNormal:
        theta1, theta2 = cls._split(theta)
        cov = _inverse_from_cholesky(jnp.linalg.cholesky(-(theta2 + theta2.T)))
        return cls(cov @ theta1, cov)

    @classmethod
    def sufficient_statistics(cls, x: Array) -> Float[Array, " k"]:
        return jnp.concatenate([x, jnp.outer(x, x).ravel()])

    @classmethod
    def log_base_measure(cls, x: Array) -> Float[Array, ""]:
        return jnp.zeros((), dtype=x.dtype) - x.shape[-1] * _HALF_LOG_2PI

    @classmethod
    def in_support(cls, x: Array) -> Array:
        return jnp.all(jnp.isfinite(x))

    def expected_log_base_measure(self) -> Float[Array, ""]:
        return jnp.zeros((), dtype=self.mu.dtype) - self.mu.shape[0] * _HALF_LOG_2PI

    def n_parameters(self) -> int:
        d = self.mu.shape[0]
        return d + d * (d + 1) // 2

    # ------------------------------------------------------------ moments, sampling
    def mean(self) -> Float[Array, " d"]:
        return self.mu

    def cov(self) -> Float[Array, "d d"]:
        r"""$\Sigma = L L^\top$."""
        return self.chol @ self.chol.T

    def variance(self) -> Float[Array, " d"]:
        r"""The marginal variances, $\mathrm{diag}\,\Sigma$."""
        return jnp.sum(self.chol**2, axis=1)

    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...] = ()) -> Array:
        r"""Samples of shape `shape + (d,)`: $\mu + L z$ with $z \sim N(0, I)$."""
        d = self.mu.shape[0]
        z = jr.normal(key, (*shape, d), dtype=self.mu.dtype)
        return z @ self.chol.T + self.mu.reshape((1,) * len(shape) + (d,))
