# ruff: noqa: F722  (jaxtyping shape strings)
r"""`MixtureEM`: plain EM with scikit-learn's stopping rule.

Stops when the mean log-likelihood per observation changes by less than `tol`:
$|\ell_k - \ell_{k-1}| < \text{tol}$ (strict, as `sklearn.mixture`; `tol = 0` never stops
early, so exactly `max_steps` iterations run). A drop larger than
`decrease_tol`$\,(1 + |\ell_{k-1}|)$ (the tolerance floored at 10 machine epsilons of the
dtype) is reported as `decreased` (EM is monotone; with
`reg_covar` or priors the monitored quantity is the likelihood, not the penalised
objective, so tiny drops can occur).
"""

import jax.numpy as jnp

from .._fitting import AbstractEMSolver, Termination, e_step_and_log_likelihood


class MixtureEM(AbstractEMSolver):
    """EM for finite mixtures with an absolute log-likelihood tolerance `tol` (see module)."""

    tol: float = 1e-6
    decrease_tol: float = 1e-8

    def init(self, model, x, weights) -> None:
        return None

    def step(self, model, x, weights, state):
        stats, ll = e_step_and_log_likelihood(model, x, weights)
        return model.m_step(stats), ll, state

    def terminate(self, model, next_model, ll_prev, ll, state) -> Termination:
        change = jnp.abs(ll - ll_prev)
        done = jnp.isfinite(ll_prev) & (change < jnp.asarray(self.tol, dtype=ll.dtype))
        # floored at 10 machine epsilons: in float32 one-ulp noise is not a decrease
        dec_tol = jnp.maximum(
            jnp.asarray(self.decrease_tol, dtype=ll.dtype), 10 * jnp.finfo(ll.dtype).eps
        )
        decreased = ll < ll_prev - dec_tol * (1 + jnp.abs(ll_prev))
        return Termination(done, done, jnp.array(True), decreased)
