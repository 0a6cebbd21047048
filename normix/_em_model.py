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


class AbstractFusedEMModel(AbstractEMModel):
    """An EM model that computes its log-likelihood in the same pass as its E-step.

    The EM driver needs the log-likelihood of every iterate (for the stopping rule and the
    trace). Models whose E-step already evaluates the per-observation densities (normal
    mixtures, finite mixtures) subclass this and return both at once; `normix.fit` then
    makes one pass over the data per iteration instead of two. Implement `e_step` as
    `self.e_step_with_log_likelihood(x, weights)[0]` (`jit` drops the unused part).
    """

    @abc.abstractmethod
    def e_step_with_log_likelihood(
        self, x: Array, weights: Float[Array, " n"]
    ) -> tuple[Any, Float[Array, ""]]:
        """`(self.e_step(x, weights), self.log_likelihood(x, weights))` in one pass."""


class AbstractECMModel(AbstractEMModel):
    """A model fitted by expectation / conditional maximisation (ECM).

    `normix.ECM()` calls `conditional_m_steps` in place of `m_step`: starting from the
    E-step statistics of `self`, it performs the model's sequence of conditional
    M-steps (each maximising over a block of parameters with the others held fixed) and
    may recompute E-steps on `(x, weights)` between them (ECME / multicycle ECM). Each
    conditional step must not decrease the expected complete-data log-likelihood, so the
    observed log-likelihood stays monotone.
    """

    @abc.abstractmethod
    def conditional_m_steps(self, stats: Any, x: Array, weights: Float[Array, " n"]) -> Self:
        """The next iterate after one ECM sweep, given `stats = self.e_step(x, weights)`."""


class AbstractPreparedDataEMModel(AbstractEMModel):
    """An EM model whose E-step reads the data in a form prepared once per fit.

    `normix.fit` calls `em_data(x, weights)` once, before the EM loop, and passes its
    result to every E-step and log-likelihood in place of `x`. Per-row quantities that do
    not depend on the parameters (e.g. the quadratic features of a Gaussian mixture's
    E-step) are then computed once per fit instead of once per iteration. The methods must
    still accept plain `x` (users call them on data).
    """

    @abc.abstractmethod
    def em_data(self, x: Array, weights: Float[Array, " n"]) -> Any:
        """The data as `e_step` / `log_likelihood` read them inside `fit`. It may depend on
        static fields only (not on parameter arrays), so that the starts of a vmapped
        multistart share it."""
