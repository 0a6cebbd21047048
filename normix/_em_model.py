r"""The protocol the generic EM driver needs from a model.

EM maximises the observed-data log-likelihood by alternating

* E-step: expected complete-data sufficient statistics under the current model,
  averaged over observations with weights $w_i$;
* M-step: the model whose complete-data MLE corresponds to those statistics.

Anything implementing these methods can be fitted by `normix.fit`: a single exponential
family (where one EM step is the closed-form MLE), a normal variance-mean mixture, a
finite mixture or an HMM.
"""

from __future__ import annotations

import abc
from typing import Any, Self

import equinox as eqx
from jaxtyping import Array, Float, PRNGKeyArray


class AbstractEMModel(eqx.Module):
    """A model that the EM driver can fit."""

    @abc.abstractmethod
    def e_step(self, x: Array, weights: Float[Array, " n"]) -> Any:
        """Weighted mean of the expected complete-data sufficient statistics (a pytree).

        `x` has shape `(n, *event_shape)`, `weights` shape `(n,)` (non-negative, not all
        zero; they need not sum to one).
        """

    @abc.abstractmethod
    def m_step(self, stats: Any) -> Self:
        """The model maximising the expected complete-data log-likelihood given `stats`.

        `self` is the current iterate (a warm start for iterative inner solvers).
        """

    @abc.abstractmethod
    def log_likelihood(self, x: Array, weights: Float[Array, " n"]) -> Float[Array, ""]:
        """Weighted mean observed-data log-likelihood, $\\sum_i w_i \\log p(x_i)/\\sum_i w_i$."""

    @abc.abstractmethod
    def n_parameters(self) -> int:
        """Number of free parameters (for AIC / BIC). Static: a Python int."""

    @classmethod
    @abc.abstractmethod
    def initialize(
        cls, x: Array, weights: Float[Array, " n"], *, key: PRNGKeyArray | None = None
    ) -> Self:
        """A starting model computed from data, used when a class is passed to `fit`."""
