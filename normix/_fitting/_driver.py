r"""The generic EM driver `normix.fit`.

One compiled `lax.while_loop` with early exit. Iteration $k$ (starting at $k=0$ from the
initial model $m_0$) runs the solver's `step`: the E-step of $m_k$ together with its mean
log-likelihood $\ell_k = \ell(m_k)$, then the M-step giving $m_{k+1}$. The loop stops when
the solver's stopping rule holds for $(\ell_{k-1}, \ell_k, m_k, m_{k+1})$, when $\ell_k$ or
a parameter of $m_{k+1}$ is not finite, or after `max_steps` iterations. The returned
model's log-likelihood is then computed by one more pass of the same loop body (its
M-step is discarded), so `log_likelihood == trace[n_steps]` always describes the model
that is returned, and the compiled program holds one copy of the E-step, not two.
"""

from __future__ import annotations

import contextlib
from typing import Any

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

from .._compiled import is_traced, jit_by_check_mode
from .._em_model import AbstractEMModel, AbstractPreparedDataEMModel
from .._errors import branched_error_if, checks_as_nan, enum_error_if, error_if
from ._host_checks import call_with_host_checks
from ._results import EMResults
from ._solvers import EM, AbstractEMSolver

_MAX_COUNTED_BAD_ROWS = 50


class EMResult(eqx.Module):
    """The outcome of `normix.fit` (a pytree: it passes through `jit` and `vmap`).

    * `model`: the fitted model (the last finite iterate if `result` is `nonfinite`).
    * `log_likelihood`: weighted mean log-likelihood per observation of `model`.
    * `n_steps`: the number of M-steps that produced `model` from the initial model.
    * `converged`: whether the solver's stopping rule held.
    * `result`: an `EMResults` code (`successful`, `max_steps_reached`, `nonfinite`,
      `decreased`).
    * `trace`: length `max_steps + 1`; `trace[i]` is the mean log-likelihood of the
      `i`-th iterate for `i <= n_steps`, NaN afterwards.
    * `ll_converged`, `params_converged`: which halves of the stopping rule held at the
      last iteration.
    """

    model: Any
    log_likelihood: Float[Array, ""]
    n_steps: Int[Array, ""]
    converged: Bool[Array, ""]
    result: EMResults
    trace: Float[Array, " max_steps_plus_1"]
    ll_converged: Bool[Array, ""]
    params_converged: Bool[Array, ""]


class _Carry(eqx.Module):
    model: Any  # m_k
    prev: Any  # m_{k-1} (m_0 when k = 0)
    ll_prev: Float[Array, ""]  # l(m_{k-1}); NaN when k = 0
    step: Int[Array, ""]  # k
    solver_state: Any
    trace: Float[Array, " t"]
    finishing: Bool[Array, ""]  # m_k is the model to return: evaluate l(m_k), then stop
    stopped: Bool[Array, ""]
    log_likelihood: Float[Array, ""]  # of the returned model, once stopped
    rule_held: Bool[Array, ""]
    nonfinite: Bool[Array, ""]
    decreased: Bool[Array, ""]
    ll_converged: Bool[Array, ""]
    params_converged: Bool[Array, ""]


def _all_finite(tree: Any) -> Bool[Array, ""]:
    leaves = jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))
    return (
        jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))
        if leaves
        else (jnp.array(True))
    )


def _select(pred: Bool[Array, ""], a: Any, b: Any) -> Any:
    """`a` where `pred` else `b`, leaf by leaf over the array leaves of two pytrees."""
    return jax.tree.map(lambda u, v: jnp.where(pred, u, v) if eqx.is_array(u) else u, a, b)


def _bad_row_messages() -> tuple[str, ...]:
    how = (
        " Find them with `jnp.flatnonzero(~jnp.all(jnp.isfinite(X.reshape(len(X), -1)), "
        "axis=1))` and drop or impute them."
    )
    msgs = ["normix.fit: data are finite."]
    for k in range(1, _MAX_COUNTED_BAD_ROWS):
        msgs.append(f"normix.fit: {k} row(s) of the data contain NaN or inf." + how)
    msgs.append(
        f"normix.fit: {_MAX_COUNTED_BAD_ROWS} or more rows of the data contain NaN or inf." + how
    )
    return tuple(msgs)


_BAD_ROW_MESSAGES = _bad_row_messages()


def validate_data(
    x: ArrayLike, weights: ArrayLike | None
) -> tuple[Float[Array, "n ..."], Float[Array, " n"]]:
    """Data as a float array of shape `(n, *event_shape)`, `n >= 1`, and weights of shape
    `(n,)` (ones if `None`). Shapes are checked at trace time (`ValueError`); NaN/inf rows
    and invalid weights raise at run time, also under `jit` (`eqx.error_if`)."""
    x = jnp.asarray(x)
    x = x.astype(jnp.result_type(x, float))
    if x.ndim < 1 or x.shape[0] < 1:
        raise ValueError(
            f"normix.fit: `X` must have shape (n, *event_shape) with n >= 1, got {x.shape}."
        )
    n = x.shape[0]
    bad = ~jnp.all(jnp.isfinite(x.reshape(n, -1)), axis=1)
    n_bad = jnp.sum(bad, dtype=jnp.int32)
    x = branched_error_if(
        x, n_bad > 0, jnp.minimum(n_bad, _MAX_COUNTED_BAD_ROWS), _BAD_ROW_MESSAGES
    )
    if weights is None:
        return x, jnp.ones((n,), dtype=x.dtype)
    w = jnp.asarray(weights)
    if w.shape != (n,):
        raise ValueError(
            f"normix.fit: `weights` must have shape (n,) = ({n},) to match `X` of shape "
            f"{x.shape}, got {w.shape}."
        )
    w = w.astype(x.dtype)
    w = error_if(
        w,
        ~jnp.all(jnp.isfinite(w) & (w >= 0)) | ~(jnp.sum(w) > 0),
        "normix.fit: `weights` must be finite, non-negative and not all zero.",
    )
    return x, w


def _fit_impl(
    model_or_class: Any,
    x: Array,
    w: Array,
    key: PRNGKeyArray | None,
    solver: AbstractEMSolver,
    max_steps: int,
    throw: bool,
    print_every: int,
    init_kwargs: dict[str, Any],
) -> EMResult:
    x, w = validate_data(x, w)
    if isinstance(model_or_class, type):
        model = model_or_class.initialize(x, w, key=key, **init_kwargs)
    else:
        model = model_or_class
    dtype = x.dtype
    nan = jnp.array(jnp.nan, dtype=dtype)
    false = jnp.array(False)
    data = model.em_data(x, w) if isinstance(model, AbstractPreparedDataEMModel) else x

    carry = _Carry(
        model=model,
        prev=model,
        ll_prev=nan,
        step=jnp.array(0, dtype=jnp.int32),
        solver_state=solver.init(model, data, w),
        trace=jnp.full((max_steps + 1,), jnp.nan, dtype=dtype),
        finishing=jnp.array(max_steps == 0),
        stopped=false,
        log_likelihood=nan,
        rule_held=false,
        nonfinite=false,
        decreased=false,
        ll_converged=false,
        params_converged=false,
    )

    def cond(c: _Carry) -> Bool[Array, ""]:
        # `step <= max_steps` always holds (the body never advances past it); it is here
        # for the compiler. A condition reading one carry element makes XLA take that
        # element for an induction variable and, in every while-loop pass, extract and
        # clone the whole loop body it depends on (the E-step) to find a trip count:
        # 2 s of a 5 s VG compile. Reading two elements ends that search at once.
        return ~c.stopped & (c.step <= max_steps)

    def body(c: _Carry) -> _Carry:
        k = c.step
        # throw=False: a check failing inside an iteration (a constructor's parameter check
        # on a degenerate M-step) gives NaN, so the fit ends `nonfinite` with the last
        # finite iterate instead of raising
        with contextlib.nullcontext() if throw else checks_as_nan():
            new_model, ll, state = solver.step(c.model, data, w, c.solver_state)
        ll = jnp.asarray(ll).astype(dtype)
        term = solver.terminate(c.model, new_model, c.ll_prev, ll, state)
        if print_every > 0:
            lax.cond(
                k % print_every == 0,
                lambda: jax.debug.print(
                    "EM step {k}: log-likelihood {ll}, change {d}",
                    k=k,
                    ll=ll,
                    d=ll - c.ll_prev,
                ),
                lambda: None,
            )
        ll_ok = jnp.isfinite(ll)
        # l(m_k) not finite: return m_{k-1} (its l is known) or, at k = 0, m_0 as it is
        back = ~ll_ok & (k > 0)
        # m_{k+1} not finite (or l(m_k) not finite): stop, returning m_k / m_{k-1}
        params_ok = _all_finite(new_model)
        advance = ll_ok & ~c.finishing & params_ok
        stop_here = ~ll_ok | c.finishing | ~params_ok
        next_step = k + 1
        finishing = advance & (term.done | (next_step >= max_steps))
        return _Carry(
            model=_select(advance, new_model, _select(back, c.prev, c.model)),
            prev=_select(advance, c.model, c.prev),
            ll_prev=jnp.where(advance, ll, c.ll_prev),
            step=jnp.where(advance, next_step, jnp.where(back, k - 1, k)),
            solver_state=state,
            trace=c.trace.at[k].set(ll),
            finishing=finishing,
            stopped=stop_here,
            log_likelihood=jnp.where(back, c.ll_prev, ll),
            rule_held=jnp.where(c.finishing, c.rule_held, advance & term.done),
            nonfinite=~ll_ok | (~c.finishing & ~params_ok),
            decreased=c.decreased | (ll_ok & (k > 0) & term.decreased),
            ll_converged=jnp.where(c.finishing, c.ll_converged, ll_ok & term.ll_converged),
            params_converged=jnp.where(
                c.finishing, c.params_converged, ll_ok & term.params_converged
            ),
        )

    c = lax.while_loop(cond, body, carry)

    model = c.model
    ll = c.log_likelihood
    idx = jnp.arange(max_steps + 1, dtype=jnp.int32)
    trace = jnp.where(idx <= c.step, c.trace, nan).at[c.step].set(ll)
    converged = c.rule_held & ~c.nonfinite
    decreased = c.decreased
    result = EMResults.where(converged, EMResults.successful, EMResults.max_steps_reached)
    result = EMResults.where(decreased & converged, EMResults.decreased, result)
    result = EMResults.where(c.nonfinite, EMResults.nonfinite, result)
    out = EMResult(
        model=model,
        log_likelihood=ll,
        n_steps=c.step,
        converged=converged,
        result=result,
        trace=trace,
        ll_converged=c.ll_converged,
        params_converged=c.params_converged,
    )
    if throw:
        fail = (result == EMResults.max_steps_reached) | (result == EMResults.nonfinite)
        out = enum_error_if(out, fail, result)
    return out


def _data_ok(xp: Any, x: Any, w: Any) -> Any:
    """What `validate_data` checks at run time, in NumPy or `jax.numpy` (`xp`): finite
    data; finite, non-negative weights that are not all zero."""
    ok = xp.all(xp.isfinite(x))
    if w is not None:
        ok = ok & xp.all(xp.isfinite(w) & (w >= 0)) & (xp.sum(w) > 0)
    return ok


_data_valid = eqx.filter_jit(lambda x, w: _data_ok(jnp, x, w))


def _host_data_valid(x: Any, w: Any) -> bool | None:
    """`_data_ok` in NumPy for data held on the host (no program to compile); `None` for
    JAX arrays and tracers."""
    if isinstance(x, jax.Array) or isinstance(w, jax.Array):
        return None
    try:
        x = np.asarray(x)
        w = None if w is None else np.asarray(w)
    except (TypeError, ValueError):
        return None  # leave the error to the traced checks
    if any(a is not None and a.dtype.kind not in "biuf" for a in (x, w)):
        return None  # no copy to float64 here; leave odd dtypes to the traced checks
    return bool(_data_ok(np, x, w))


_fit_program = jit_by_check_mode(_fit_impl)


def _print_every(verbose: bool | int) -> int:
    if isinstance(verbose, bool):
        return 1 if verbose else 0
    if isinstance(verbose, int) and verbose >= 0:
        return verbose
    raise TypeError(f"normix.fit: `verbose` must be a bool or an int >= 0, got {verbose!r}.")


def fit(
    model_or_class: AbstractEMModel | type[AbstractEMModel],
    X: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    solver: AbstractEMSolver = EM(),  # noqa: B008 (immutable module)
    max_steps: int = 500,
    throw: bool = True,
    verbose: bool | int = False,
    key: PRNGKeyArray | None = None,
    **init_kwargs: Any,
) -> EMResult:
    r"""Fit a model by EM (or another `AbstractEMSolver`), as one compiled loop.

    **Arguments:**

    - `model_or_class`: an initial model (any `AbstractEMModel`), or a model class, in
      which case `cls.initialize(X, weights, key=key)` gives the initial model.
    - `X`: data of shape `(n, *event_shape)`, `n >= 1`; rows with NaN/inf raise an error.
    - `weights`: optional non-negative observation weights of shape `(n,)`: the fit
      maximises $\sum_i w_i \log f(x_i)$, so only their ratios matter here (`result.
      log_likelihood` is the weighted mean); `select` and `aic` / `bic` read them as
      frequency weights, $n = \sum_i w_i$.
    - `solver`: the iteration and stopping rule; default `EM()`.
    - `max_steps`: maximum number of EM iterations (static: fixes the trace length).
    - `throw`: raise (also under `jit`) if the fit ends `nonfinite` or
      `max_steps_reached`, with the exact failed check when one inside an iteration made
      it non-finite; otherwise read `result.result` (with `throw=False` nothing inside
      the loop raises: a failed check ends the fit `nonfinite`, returning the last
      finite iterate). Invalid data raise either way.
    - `verbose`: `True` or an int `k` prints step, log-likelihood and change every `k`
      steps from inside the compiled loop.
    - `key`: PRNG key passed to `initialize` when a class is given.
    - `**init_kwargs`: further keyword arguments of the class's `initialize` (only when a
      class is given), e.g. `normix.fit(normix.FactorGeneralizedHyperbolic, X, rank=5)`.

    **Returns:** an `EMResult`.

    Works under `jax.jit` and `jax.vmap` (over datasets or initial models); a second call
    with data of the same shape and dtype does not recompile.

    Called on concrete data (no `jit` / `vmap` around it), the compiled program holds no
    host callbacks, so JAX's persistent compilation cache can store it: run-time checks
    return NaN there, the result code is read on the host (the call returns once the fit
    has finished), and a fit that ends `nonfinite` is run again with raising checks to
    report the exact error. Outcomes are the same as under `jit`.
    """
    if not isinstance(solver, AbstractEMSolver):
        raise TypeError(
            f"normix.fit: `solver` must be an AbstractEMSolver such as normix.EM(), got {solver!r}."
        )
    if isinstance(model_or_class, type):
        if not issubclass(model_or_class, AbstractEMModel):
            raise TypeError(
                f"normix.fit: {model_or_class.__name__} is not an EM-fittable model class "
                "(an AbstractEMModel)."
            )
    elif not isinstance(model_or_class, AbstractEMModel):
        raise TypeError(
            "normix.fit: the first argument must be an AbstractEMModel instance or class, "
            f"got {type(model_or_class).__name__}."
        )
    elif init_kwargs:
        raise TypeError(
            f"normix.fit: keyword arguments {sorted(init_kwargs)} are passed to "
            "`initialize`, so they need a model class, not an initial model."
        )
    if not isinstance(max_steps, int) or isinstance(max_steps, bool) or max_steps < 0:
        raise ValueError(f"normix.fit: `max_steps` must be an int >= 0, got {max_steps!r}.")
    # NumPy scalars (rank=np.int64(5) from a loop) are static settings, as Python ones
    init_kwargs = {k: v.item() if isinstance(v, np.generic) else v for k, v in init_kwargs.items()}
    valid = _host_data_valid(X, weights)
    X = jnp.asarray(X)
    weights = None if weights is None else jnp.asarray(weights)
    print_every = _print_every(verbose)

    def call(throw: bool) -> EMResult:
        return _fit_program()(
            model_or_class, X, weights, key, solver, max_steps, throw, print_every, init_kwargs
        )

    # progress printing is a host callback anyway; under jit / vmap the checks raise
    if print_every > 0 or is_traced((model_or_class, X, weights, key, solver, init_kwargs)):
        return call(bool(throw))
    if valid is None:
        valid = _data_valid(X, weights)
        if isinstance(valid, jax.core.Tracer):  # inside `jit`, on constants
            return call(bool(throw))
    if not bool(valid):  # to the raising program: one compile before the error
        return call(bool(throw))
    return call_with_host_checks(call, bool(throw))


def fit_multistart(
    models: AbstractEMModel,
    X: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    solver: AbstractEMSolver = EM(),  # noqa: B008 (immutable module)
    max_steps: int = 500,
    throw: bool = True,
    verbose: bool | int = False,
) -> tuple[EMResult, EMResult]:
    """Fit from several initial models at once and keep the best.

    `models` is a *batched* model: every array leaf has a leading axis of length
    `n_starts` (build it with `jax.vmap` over a constructor, or `eqx.filter_vmap`).
    All starts run in one vmapped, compiled `fit`.

    **Returns:** `(best, all_results)`: the `EMResult` with the highest final
    log-likelihood among starts that did not end `nonfinite`, and the batched results of
    every start. `throw` applies to `best` only.
    """
    X = jnp.asarray(X)
    weights = None if weights is None else jnp.asarray(weights)

    def run(throw: bool) -> tuple[EMResult, EMResult]:
        def one(model: AbstractEMModel) -> EMResult:
            return fit(
                model,
                X,
                weights=weights,
                solver=solver,
                max_steps=max_steps,
                throw=False,
                verbose=verbose,
            )

        results = eqx.filter_vmap(one)(models)
        score = jnp.where(
            (results.result == EMResults.nonfinite) | ~jnp.isfinite(results.log_likelihood),
            -jnp.inf,
            results.log_likelihood,
        )
        best_index = jnp.argmax(score)
        best = jax.tree.map(lambda leaf: leaf[best_index] if eqx.is_array(leaf) else leaf, results)
        if throw:
            fail = (best.result == EMResults.max_steps_reached) | (
                best.result == EMResults.nonfinite
            )
            best = enum_error_if(best, fail, best.result)
        return best, results

    if _print_every(verbose) > 0 or is_traced((models, X, weights, solver)):
        return run(bool(throw))
    return call_with_host_checks(
        run, bool(throw), all_results=lambda out: out[1], returned=lambda out: out[0]
    )
