r"""EM solver strategies: how one iteration is taken and when to stop.

A solver is a small `eqx.Module` following optimistix's init / step / terminate pattern;
`normix.fit` runs it inside one `lax.while_loop`:

* `init(model, x, w) -> state`: solver state carried through the loop (a pytree, or
  `None`);
* `step(model, x, w, state) -> (next_model, ll, state)`: one iteration from `model`,
  returning also $\ell(\text{model})$, the weighted mean log-likelihood of the *input*
  model (computed in the same pass as its E-step when the model is an
  `AbstractFusedEMModel`);
* `terminate(model, next_model, ll_prev, ll, state) -> Termination`: the stopping rule,
  given consecutive iterates $m_k \to m_{k+1}$ and $\ell(m_{k-1}), \ell(m_k)$.

The driver owns everything else (trace, non-finite detection, result codes).
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from .._em_model import AbstractECMModel, AbstractEMModel, AbstractFusedEMModel


def e_step_and_log_likelihood(
    model: AbstractEMModel, x: Array, weights: Float[Array, " n"]
) -> tuple[Any, Float[Array, ""]]:
    """E-step statistics and mean log-likelihood of `model`: one pass when the model is an
    `AbstractFusedEMModel`, otherwise `e_step` and `log_likelihood` separately."""
    if isinstance(model, AbstractFusedEMModel):
        return model.e_step_with_log_likelihood(x, weights)
    return model.e_step(x, weights), model.log_likelihood(x, weights)


class Termination(eqx.Module):
    """The stopping decision after one iteration.

    * `done`: stop now (the rule held);
    * `ll_converged`, `params_converged`: the two halves of the rule;
    * `decreased`: the log-likelihood dropped by more than the solver's tolerance.
    """

    done: Bool[Array, ""]
    ll_converged: Bool[Array, ""]
    params_converged: Bool[Array, ""]
    decreased: Bool[Array, ""]


class AbstractEMSolver(eqx.Module):
    """Interface of an EM solver (see the module docstring)."""

    @abc.abstractmethod
    def init(self, model: AbstractEMModel, x: Array, weights: Float[Array, " n"]) -> Any:
        """Initial solver state."""

    @abc.abstractmethod
    def step(
        self, model: AbstractEMModel, x: Array, weights: Float[Array, " n"], state: Any
    ) -> tuple[AbstractEMModel, Float[Array, ""], Any]:
        """`(next_model, log_likelihood(model), next_state)`."""

    @abc.abstractmethod
    def terminate(
        self,
        model: AbstractEMModel,
        next_model: AbstractEMModel,
        ll_prev: Float[Array, ""],
        ll: Float[Array, ""],
        state: Any,
    ) -> Termination:
        """Stopping rule for the iteration `model -> next_model` with log-likelihoods
        `ll_prev` $=\\ell(m_{k-1})$ (NaN at the first step) and `ll` $=\\ell(m_k)$."""


def _tolerance(tol: float | Array, dtype: jnp.dtype) -> Array:
    """`tol` as an array of `dtype`, raised to at least 10 machine epsilons of `dtype`."""
    return jnp.maximum(jnp.asarray(tol, dtype=dtype), 10 * jnp.finfo(dtype).eps)


def _close(new: Array, old: Array, rtol: float | Array, atol: float | Array) -> Bool[Array, ""]:
    r"""$|new - old| \le atol + rtol\,|old|$ elementwise (an infinite tolerance always holds)."""
    dtype = jnp.result_type(new, old)
    rtol, atol = _tolerance(rtol, dtype), _tolerance(atol, dtype)
    ok = jnp.abs(new - old) <= atol + jnp.where(jnp.isinf(rtol), 0.0, rtol) * jnp.abs(old)
    return jnp.all(ok | jnp.isinf(rtol) | jnp.isinf(atol))


def _parameters_close(
    old: AbstractEMModel, new: AbstractEMModel, rtol: float, atol: float
) -> Bool[Array, ""]:
    """Every floating-point leaf of the model pytree passes `_close`."""
    old_leaves = jax.tree.leaves(eqx.filter(old, eqx.is_inexact_array))
    new_leaves = jax.tree.leaves(eqx.filter(new, eqx.is_inexact_array))
    oks = [_close(n, o, rtol, atol) for n, o in zip(new_leaves, old_leaves, strict=True)]
    return jnp.all(jnp.stack(oks)) if oks else jnp.array(True)


class AbstractCauchyEMSolver(AbstractEMSolver):
    r"""Solvers that stop when both the log-likelihood and the parameters have settled:

    $$|\ell_k - \ell_{k-1}| \le \text{atol} + \text{rtol}\,|\ell_{k-1}|
      \quad\text{and}\quad
      |p_{k+1} - p_k| \le \text{param\_atol} + \text{param\_rtol}\,|p_k|$$

    for every floating-point leaf $p$ of the model. A tolerance of `float("inf")` switches
    its half of the rule off. Tolerances below 10 machine epsilons of the data's dtype are
    raised to that (so float32 fits can stop). A drop
    $\ell_k < \ell_{k-1} - \text{decrease\_tol}\,(1 + |\ell_{k-1}|)$ is flagged as
    `decreased` (reported, the loop continues).
    """

    rtol: eqx.AbstractVar[float]
    atol: eqx.AbstractVar[float]
    param_rtol: eqx.AbstractVar[float]
    param_atol: eqx.AbstractVar[float]
    decrease_tol: eqx.AbstractVar[float]

    def terminate(self, model, next_model, ll_prev, ll, state) -> Termination:
        ll_ok = _close(ll, ll_prev, self.rtol, self.atol) & jnp.isfinite(ll_prev)
        p_ok = _parameters_close(model, next_model, self.param_rtol, self.param_atol)
        dec_tol = _tolerance(self.decrease_tol, ll.dtype)
        decreased = ll < ll_prev - dec_tol * (1 + jnp.abs(ll_prev))
        return Termination(ll_ok & p_ok, ll_ok, p_ok, decreased)


class EM(AbstractCauchyEMSolver):
    r"""Plain EM: $m_{k+1} = \text{m\_step}(\text{e\_step}(m_k))$.

    **Arguments** (stopping rule of `AbstractCauchyEMSolver`):

    - `rtol`, `atol`: relative / absolute tolerance on the change of the mean
      log-likelihood (nats per observation).
    - `param_rtol`, `param_atol`: relative / absolute tolerance on the change of every
      floating-point parameter leaf of the model.
    - `decrease_tol`: relative drop of the log-likelihood reported as `decreased`.
    """

    rtol: float = 1e-9
    atol: float = 1e-12
    param_rtol: float = 1e-6
    param_atol: float = 1e-9
    decrease_tol: float = 1e-8

    def init(self, model, x, weights) -> None:
        return None

    def step(self, model, x, weights, state):
        stats, ll = e_step_and_log_likelihood(model, x, weights)
        return model.m_step(stats), ll, state


class ECM(AbstractCauchyEMSolver):
    r"""Expectation / conditional maximisation: after the E-step of $m_k$, the model's own
    sequence of conditional M-steps (`AbstractECMModel.conditional_m_steps`), which may
    interleave further E-steps. Same stopping rule and arguments as `EM`."""

    rtol: float = 1e-9
    atol: float = 1e-12
    param_rtol: float = 1e-6
    param_atol: float = 1e-9
    decrease_tol: float = 1e-8

    def init(self, model, x, weights) -> None:
        if not isinstance(model, AbstractECMModel):
            raise TypeError(
                f"ECM needs a model implementing `AbstractECMModel.conditional_m_steps`; "
                f"{type(model).__name__} does not. Use `normix.EM()` instead."
            )
        return None

    def step(self, model, x, weights, state):
        stats, ll = e_step_and_log_likelihood(model, x, weights)
        return model.conditional_m_steps(stats, x, weights), ll, state
