r"""The exponential-family base class.

A family has densities

$$p(x \mid \theta) = h(x)\, \exp\big(\theta \cdot t(x) - \psi(\theta)\big)$$

with natural parameters $\theta$ (a flat vector), sufficient statistics $t(x)$, base
measure $h(x)$ and log-partition $\psi(\theta)$. The expectation parameters are
$\eta = \nabla\psi(\theta) = \mathbb{E}[t(X)]$ and the Fisher information is
$\nabla^2\psi(\theta) = \operatorname{Cov}[t(X)]$.

Each family writes only the per-family pieces (abstract methods below); everything
derived from them (`log_prob`, `fisher_information`, `kl_divergence`, `entropy`,
`from_expectation`, `fit`) is written once here and never overridden.
"""

from __future__ import annotations

import abc
from typing import ClassVar, Self

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._em_model import AbstractEMModel
from ._errors import error_if
from ._misc import map_over_batch, require_rows, split_batch


class AbstractExponentialFamily(AbstractEMModel):
    r"""Base class of every exponential family in normix.

    Subclasses store their classical parameters as fields and implement the abstract
    methods. Parameters are scalars or fixed-shape arrays for a *single* distribution;
    build many distributions at once with `jax.vmap` over the constructor.

    `event_ndim` (a class variable) is the number of trailing axes of one observation:
    0 for univariate laws, 1 for vector-valued laws.

    Every family is also an `AbstractEMModel`: its E-step is the weighted mean of $t(x)$
    and its M-step is `from_expectation`, so `normix.fit` reaches the MLE in one step.
    Families implement `n_parameters` (free parameters, for AIC/BIC).
    """

    event_ndim: ClassVar[int]

    # ------------------------------------------------------------------ per family
    @property
    @abc.abstractmethod
    def event_shape(self) -> tuple[int, ...]:
        """Shape of one observation."""

    @abc.abstractmethod
    def natural_params(self) -> Float[Array, " k"]:
        r"""The natural parameters $\theta$ as a flat vector."""

    @classmethod
    @abc.abstractmethod
    def log_partition_at(cls, theta: Float[Array, " k"]) -> Float[Array, ""]:
        r"""The log-partition $\psi(\theta)$."""

    @classmethod
    @abc.abstractmethod
    def expectation_at(cls, theta: Float[Array, " k"]) -> Float[Array, " k"]:
        r"""$\eta = \nabla\psi(\theta)$: a closed form, or `expectation_by_autodiff`."""

    @classmethod
    @abc.abstractmethod
    def natural_from_expectation(
        cls, eta: Float[Array, " k"], theta0: Float[Array, " k"] | None = None
    ) -> Float[Array, " k"]:
        r"""Invert $\eta = \nabla\psi(\theta)$; `theta0` is an optional warm start."""

    @classmethod
    @abc.abstractmethod
    def from_natural(cls, theta: Float[Array, " k"]) -> Self:
        r"""Build the distribution from natural parameters $\theta$."""

    @classmethod
    @abc.abstractmethod
    def sufficient_statistics(cls, x: Array) -> Float[Array, " k"]:
        r"""$t(x)$ for one observation."""

    @classmethod
    @abc.abstractmethod
    def log_base_measure(cls, x: Array) -> Float[Array, ""]:
        r"""$\log h(x)$ for one observation inside the support."""

    @classmethod
    @abc.abstractmethod
    def in_support(cls, x: Array) -> Array:
        """Boolean: is the single observation `x` in the support?"""

    @abc.abstractmethod
    def expected_log_base_measure(self) -> Float[Array, ""]:
        r"""$\mathbb{E}[\log h(X)]$ (needed by `entropy`)."""

    @abc.abstractmethod
    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...] = ()) -> Array:
        """Draw independent samples of shape `shape + event_shape`."""

    @abc.abstractmethod
    def mean(self) -> Array:
        """$\\mathbb{E}[X]$."""

    # ------------------------------------------------------------------ derived, final
    def log_partition(self) -> Float[Array, ""]:
        r"""$\psi(\theta)$ at this distribution's parameters."""
        return self.log_partition_at(self.natural_params())

    def expectation_params(self) -> Float[Array, " k"]:
        r"""$\eta = \mathbb{E}[t(X)] = \nabla\psi(\theta)$."""
        return self.expectation_at(self.natural_params())

    def fisher_information(self) -> Float[Array, "k k"]:
        r"""$I(\theta) = \nabla^2\psi(\theta) = \partial\eta/\partial\theta$."""
        return jax.jacfwd(self.expectation_at)(self.natural_params())

    def log_prob(self, x: ArrayLike) -> Array:
        r"""$\log p(x)$ for one observation or any leading batch shape.

        Points outside the support get $-\infty$.
        """
        theta = self.natural_params()
        psi = self.log_partition_at(theta)
        x = jnp.asarray(x, dtype=jnp.result_type(x, theta.dtype))

        def single(xi: Array) -> Array:
            ok = self.in_support(xi)
            # "double where": evaluate the formula at a harmless point outside the support,
            # so neither the value nor any gradient sees NaN from an unselected branch.
            safe = jnp.where(ok, xi, jnp.ones_like(xi))
            lp = self.log_base_measure(safe) + theta @ self.sufficient_statistics(safe) - psi
            return jnp.where(ok, lp, -jnp.inf)

        return map_over_batch(single, x, self.event_shape, type(self).__name__)

    def prob(self, x: ArrayLike) -> Array:
        """The density $p(x)$; see `log_prob`."""
        return jnp.exp(self.log_prob(x))

    def kl_divergence(self, other: Self) -> Float[Array, ""]:
        r"""$\mathrm{KL}(p \,\|\, q)$ with $p$ = `self`, $q$ = `other`, in Bregman form

        $$\psi(\theta_q) - \psi(\theta_p) - (\theta_q - \theta_p)\cdot\eta_p.$$
        """
        if type(other) is not type(self):
            raise TypeError(
                f"kl_divergence needs two distributions of the same family, got "
                f"{type(self).__name__} and {type(other).__name__}."
            )
        theta_p, theta_q = self.natural_params(), other.natural_params()
        eta_p = self.expectation_at(theta_p)
        return (
            self.log_partition_at(theta_q)
            - self.log_partition_at(theta_p)
            - (theta_q - theta_p) @ eta_p
        )

    def entropy(self) -> Float[Array, ""]:
        r"""$H = \psi(\theta) - \theta\cdot\eta - \mathbb{E}[\log h(X)]$."""
        theta = self.natural_params()
        return (
            self.log_partition_at(theta)
            - theta @ self.expectation_at(theta)
            - self.expected_log_base_measure()
        )

    @classmethod
    def from_expectation(cls, eta: ArrayLike, theta0: Float[Array, " k"] | None = None) -> Self:
        r"""The distribution whose expectation parameters are $\eta$ (the M-step)."""
        eta = jnp.asarray(eta, dtype=jnp.result_type(eta, float))
        return cls.from_natural(cls.natural_from_expectation(eta, theta0))

    @classmethod
    def mean_sufficient_statistics(
        cls, x: ArrayLike, weights: ArrayLike | None = None
    ) -> Float[Array, " k"]:
        r"""$\bar t = \sum_i w_i\, t(x_i) / \sum_i w_i$ over all leading axes of `x`.

        Raises (also under `jit`, via `eqx.error_if`) if the data hold NaN/inf or points
        outside the support, or if the weights are negative or sum to zero.
        """
        x = jnp.asarray(x)
        x = x.astype(jnp.result_type(x, float))
        if x.ndim < cls.event_ndim:
            raise ValueError(
                f"{cls.__name__}.fit: data must have at least {cls.event_ndim} axes, "
                f"got shape {x.shape}."
            )
        event_shape = x.shape[x.ndim - cls.event_ndim :]
        batch_shape = split_batch(x, event_shape, cls.__name__)
        flat = x.reshape((-1, *event_shape))
        if flat.shape[0] == 0:
            raise ValueError(f"{cls.__name__}.fit: no observations.")
        flat = error_if(
            flat, ~jnp.all(jnp.isfinite(flat)), f"{cls.__name__}.fit: data contain NaN or inf."
        )
        ok = jax.vmap(cls.in_support)(flat)
        flat = error_if(
            flat, ~jnp.all(ok), f"{cls.__name__}.fit: data contain points outside the support."
        )
        stats = jax.vmap(cls.sufficient_statistics)(flat)
        if weights is None:
            return jnp.mean(stats, axis=0)
        w = jnp.asarray(weights, dtype=stats.dtype)
        if w.shape != batch_shape:
            raise ValueError(
                f"{cls.__name__}.fit: weights must have shape {batch_shape} (the batch shape "
                f"of the data), got {w.shape}."
            )
        w = w.reshape(-1)
        w = error_if(
            w,
            ~jnp.all(jnp.isfinite(w) & (w >= 0)) | ~(jnp.sum(w) > 0),
            f"{cls.__name__}.fit: weights must be finite, non-negative and not all zero.",
        )
        return (w @ stats) / jnp.sum(w)

    # --------------------------------------------------------- EM protocol, final
    def e_step(self, x: Array, weights: Float[Array, " n"]) -> Float[Array, " k"]:
        r"""Weighted mean of $t(x_i)$ (no latent variables: this is exact)."""
        stats = jax.vmap(self.sufficient_statistics)(x)
        return (weights @ stats) / jnp.sum(weights)

    def m_step(self, stats: Float[Array, " k"]) -> Self:
        """`from_expectation(stats)`, warm-started at the current natural parameters."""
        return self.from_expectation(stats, theta0=self.natural_params())

    def log_likelihood(self, x: Array, weights: Float[Array, " n"]) -> Float[Array, ""]:
        """Weighted mean log-density over the observations in `x` (shape `(n, *event)`)."""
        return (weights @ self.log_prob(x)) / jnp.sum(weights)

    @classmethod
    def initialize(
        cls, x: Array, weights: Float[Array, " n"], *, key: PRNGKeyArray | None = None
    ) -> Self:
        """The MLE itself (an exponential family needs no iterative start)."""
        x = jnp.asarray(x)
        if cls.event_ndim == 1:
            require_rows(x, cls.__name__)
        elif x.ndim != 1 + cls.event_ndim:
            raise ValueError(
                f"{cls.__name__}: the data must have shape (n,), one value per observation; "
                f"got shape {x.shape}."
            )
        return cls.fit(x, weights)

    @classmethod
    def fit(cls, x: ArrayLike, weights: ArrayLike | None = None) -> Self:
        r"""Maximum-likelihood estimate: the $\hat\theta$ with $\nabla\psi(\hat\theta) = \bar t$."""
        return cls.from_expectation(cls.mean_sufficient_statistics(x, weights))


def expectation_by_autodiff(
    family: type[AbstractExponentialFamily], theta: Float[Array, " k"]
) -> Float[Array, " k"]:
    r"""$\eta = \nabla\psi(\theta)$ by automatic differentiation, for families without a
    closed form. Call it from a family's `expectation_at`."""
    return jax.grad(family.log_partition_at)(theta)
