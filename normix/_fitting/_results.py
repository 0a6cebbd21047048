"""Outcome codes of an EM fit."""

import equinox as eqx


class EMResults(eqx.Enumeration):
    """How an EM fit ended (the `result` field of `normix.EMResult`).

    * `successful`: the solver's stopping rule held.
    * `max_steps_reached`: `max_steps` iterations ran without the stopping rule holding.
    * `nonfinite`: a non-finite log-likelihood or parameter appeared; the loop stopped and
      the result holds the last finite iterate.
    * `decreased`: the stopping rule held, but the log-likelihood decreased at some
      iteration by more than the solver's `decrease_tol` (EM is monotone, so this flags an
      inexact or inconsistent M-step). Reported, never raised.

    With `throw=True`, `fit` raises for `max_steps_reached` and `nonfinite`.
    """

    successful = ""
    max_steps_reached = (
        "EM reached `max_steps` before its stopping rule held (EM / ECM / SQUAREM: "
        "relative log-likelihood change <= rtol and parameter change <= param_rtol; "
        "MixtureEM: absolute log-likelihood change < tol). Increase `max_steps`, loosen "
        "the solver's tolerances, start from a better initial model, or pass "
        "`throw=False` and inspect `result.trace`, `result.ll_converged` and "
        "`result.params_converged`."
    )
    nonfinite = (
        "EM produced a non-finite log-likelihood or parameter and stopped; the result "
        "holds the last finite iterate. Check the data for outliers or repeated points, "
        "try another initial model, or a constrained/regularised model (finite mixtures: "
        "a component holding fewer points than dimensions has a singular covariance; "
        "increase `reg_covar`, markedly so in float32, or use fewer components). Pass "
        "`throw=False` to inspect `result.model` and `result.trace`."
    )
    decreased = (
        "The log-likelihood decreased between EM iterations by more than the solver's "
        "`decrease_tol`. EM is monotone, so an M-step is inexact (an inner solver did not "
        "converge) or the model's E- and M-steps are inconsistent; with priors (MAP EM: "
        "`weight_concentration`, `covariance_prior`) or `reg_covar` the penalised "
        "objective rises while the likelihood may drop. Inspect `result.trace`."
    )
