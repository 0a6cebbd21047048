# ruff: noqa: F722  (jaxtyping shape strings)
r"""The interface of the K components of a finite mixture.

A finite mixture $p(x) = \sum_{k=1}^K \pi_k\, p_k(x)$ needs from its components only

* the per-row, per-component log-densities $\log p_k(x_i)$ (an $n\times K$ array), and
* the EM step of every component given responsibility weights: with
  $w_{ik} = w_i\,r_{ik} / \sum_j w_j$ (sample weight times responsibility, normalised so
  that $\sum_{ik} w_{ik} = 1$) the E-step returns the weighted complete-data sufficient
  statistics of each component, and the M-step maps them back to components.

Components are stored as *one* stacked module (a leading axis $K$ on every per-component
array), so each of these is a single vectorised computation, never a Python loop over $k$.
"""

import abc
from typing import Any, Self

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray


class AbstractComponents(eqx.Module):
    """K mixture components of one family, stacked along a leading axis."""

    @property
    @abc.abstractmethod
    def n_components(self) -> int:
        """$K$ (static)."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Dimension $d$ of one observation (static)."""

    @abc.abstractmethod
    def log_prob_rows(self, x: Float[Array, "n d"]) -> tuple[Float[Array, "n K"], Any]:
        r"""$\log p_k(x_i)$ for every row and component, and auxiliary arrays that
        `e_step` may reuse (intermediate results shared by the two passes)."""

    @abc.abstractmethod
    def e_step(
        self,
        x: Float[Array, "n d"],
        resp_weights: Float[Array, "n K"],
        mass: Float[Array, " K"],
        aux: Any,
    ) -> Any:
        r"""Responsibility-weighted complete-data statistics of every component.

        `resp_weights[i, k]` $= w_i r_{ik}/\sum_j w_j$ and `mass[k]` $= \sum_i$
        `resp_weights[i, k]`; `aux` is what `log_prob_rows` returned for the same `x`.
        """

    @abc.abstractmethod
    def m_step(self, stats: Any, mass: Float[Array, " K"], total_weight: Float[Array, ""]) -> Self:
        r"""Components maximising the expected complete-data log-likelihood.

        `total_weight` $=\sum_i w_i$ converts `mass` (fractions) into effective counts
        $N_k$ for priors. A component whose mass is below `empty_mass(dtype)` keeps its
        current parameters (`self` is the current iterate).
        """

    @abc.abstractmethod
    def n_parameters(self) -> int:
        """Free parameters of all K components together (static)."""

    @abc.abstractmethod
    def sample_each(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "... K d"]:
        """One draw from every component for each index in `shape`: shape `shape + (K, d)`."""

    @abc.abstractmethod
    def component_means(self) -> Float[Array, "K d"]:
        """$\\mathbb{E}[X]$ under each component."""

    @abc.abstractmethod
    def component_covariances(self) -> Float[Array, "K d d"]:
        """$\\operatorname{Cov}[X]$ under each component (dense $d\\times d$)."""


def empty_components(mass: Float[Array, " K"]) -> Array:
    r"""Components whose responsibility mass (a fraction of the total weight) is at most
    $100\,\epsilon$ of the dtype: they are treated as emptied and keep their parameters."""
    return mass <= 100 * jnp.finfo(mass.dtype).eps
