"""Generic properties of every exponential family in the registry (`tests/cases.py`)."""

from __future__ import annotations

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
import scipy.stats as st
from cases import (
    CASES,
    case_ids,
    case_params,
    jit_build_theta,
    jit_elog_h,
    jit_em_step,
    jit_entropy,
    jit_eta,
    jit_eta_to_theta_and_jacobian,
    jit_expectation_at,
    jit_fisher,
    jit_fit,
    jit_from_natural,
    jit_grad_psi,
    jit_initialize,
    jit_kl,
    jit_log_likelihood,
    jit_log_prob,
    jit_moments,
    jit_psi,
    jit_t_and_log_h,
    jit_theta,
)

RTOL = 1e-12


def _np(tree):
    return jax.tree.map(lambda a: np.asarray(a, dtype=np.float64), tree)


def _assert_params_close(got: dict, want: dict, rtol: float = RTOL) -> None:
    """Each parameter within `rtol` relative to its largest entry (vectors may hold 0s)."""
    for name in want:
        w = np.asarray(want[name])
        atol = rtol * np.max(np.abs(w))
        np.testing.assert_allclose(np.asarray(got[name]), w, rtol=rtol, atol=atol, err_msg=name)


def _term_scale(dist, x: np.ndarray) -> np.ndarray:
    r"""Magnitude of the terms summed in $\log p(x) = \log h + \theta\cdot t - \psi$: the
    rounding floor of any float64 evaluation of the log-density."""
    t, log_h = jit_t_and_log_h(type(dist), jnp.asarray(x))
    return np.asarray(
        jnp.abs(t) @ jnp.abs(jit_theta(dist)) + jnp.abs(log_h) + jnp.abs(jit_psi(dist))
    )


# ------------------------------------------------------------------ scipy parity
@pytest.mark.parametrize("case,params", case_params())
def test_log_prob_matches_scipy(case, params):
    dist = case.build(params)
    x = case.points(params, np.random.default_rng(0))
    got = np.asarray(jit_log_prob(dist, x))
    want = case.scipy(params).logpdf(x)
    np.testing.assert_array_less(np.abs(got - want), RTOL * _term_scale(dist, x) + 1e-300)


@pytest.mark.parametrize("case,params", case_params())
def test_moments_match_scipy(case, params):
    dist = case.build(params)
    ref = case.scipy(params)
    if case.family.event_ndim == 0:
        want_mean, want_var = ref.mean(), ref.var()
    else:
        want_mean, want_var = ref.mean, np.diag(ref.cov)
    mean, var = jit_moments(dist)
    np.testing.assert_allclose(np.asarray(mean), want_mean, rtol=RTOL)
    np.testing.assert_allclose(np.asarray(var), want_var, rtol=RTOL)


@pytest.mark.parametrize("case,params", case_params())
def test_entropy_matches_scipy(case, params):
    dist = case.build(params)
    got = float(jit_entropy(dist))
    want = float(case.scipy(params).entropy())
    # Entropy = psi - theta.eta - E log h: rounding floor relative to the summed terms.
    scale = float(
        jnp.abs(jit_psi(dist))
        + jnp.abs(jit_theta(dist)) @ jnp.abs(jit_eta(dist))
        + jnp.abs(jit_elog_h(dist))
    )
    assert abs(got - want) <= 1e-12 * max(scale, 1.0), (got, want, scale)


# ------------------------------------------------------------------ psi, eta, Fisher
@pytest.mark.parametrize("case,params", case_params())
def test_grad_log_partition_is_expectation(case, params):
    dist = case.build(params)
    grad = jit_grad_psi(dist)
    eta = jit_eta(dist)
    # Compare on the scale of each component's standard deviation sqrt(I_ii).
    sd = np.sqrt(np.diag(np.asarray(jit_fisher(dist))))
    np.testing.assert_array_less(
        np.abs(np.asarray(grad - eta)), 1e-11 * (np.abs(np.asarray(eta)) + sd)
    )


@pytest.mark.parametrize("case,params", case_params())
def test_fisher_information_matches_finite_differences(case, params):
    dist = case.build(params)
    theta = np.asarray(jit_theta(dist))
    fisher = np.asarray(jit_fisher(dist))
    sd = np.sqrt(np.diag(fisher))
    # Central differences; step eps^(1/3) times the natural scale 1/sqrt(I_ii) of theta_i.
    steps = np.finfo(np.float64).eps ** (1 / 3) / sd
    fd = np.empty_like(fisher)
    for i, h in enumerate(steps):
        e = np.zeros_like(theta)
        e[i] = h
        up = np.asarray(jit_expectation_at(case.family, jnp.asarray(theta + e)))
        down = np.asarray(jit_expectation_at(case.family, jnp.asarray(theta - e)))
        fd[:, i] = (up - down) / (2 * h)
    scaled_err = (fd - fisher) / np.outer(sd, sd)
    assert np.max(np.abs(scaled_err)) < 1e-7
    np.testing.assert_allclose(fisher, fisher.T, rtol=1e-12, atol=1e-12 * np.max(np.abs(fisher)))


@pytest.mark.parametrize("case,params", case_params())
def test_fisher_information_is_covariance_of_t(case, params):
    if case.cov_t is None:
        pytest.skip("no closed-form Cov[t(X)]")
    fisher = np.asarray(jit_fisher(case.build(params)))
    want = case.cov_t(params)
    sd = np.sqrt(np.diag(want))
    np.testing.assert_array_less(np.abs(fisher - want), 1e-10 * np.outer(sd, sd) + 1e-300)


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("case,params", case_params())
def test_natural_expectation_round_trip(case, params):
    dist = case.build(params)
    theta, eta = jit_theta(dist), jit_eta(dist)
    back, jac = jit_eta_to_theta_and_jacobian(case.family, eta)
    # Tight, up to the conditioning of eta -> theta: perturbing eta by one ulp moves theta
    # by J eps |eta|, J = d theta / d eta = I^{-1} (pinv in the MVN embedding).
    jac = np.asarray(jac)
    cond_floor = np.abs(jac) @ np.abs(np.asarray(eta)) * np.finfo(np.float64).eps
    err = np.abs(np.asarray(back - theta))
    np.testing.assert_array_less(err, RTOL * np.abs(np.asarray(theta)) + 10 * cond_floor)


@pytest.mark.parametrize("case,params", case_params())
def test_classical_round_trip(case, params):
    dist = case.build(params)
    back = jit_from_natural(case.family, jit_theta(dist))
    _assert_params_close(_np(case.classical(back)), params, rtol=1e-12)


# ------------------------------------------------------------------ KL
@pytest.mark.parametrize("case", case_ids())
def test_kl_matches_closed_form(case):
    if case.kl is None:
        pytest.skip("no closed-form KL")
    dists = [case.build(p) for p in case.grid]
    for (i, p), (j, q) in itertools.product(enumerate(case.grid), repeat=2):
        if case.family.event_ndim and len(p["mean"]) != len(q["mean"]):
            continue
        dp, dq = dists[i], dists[j]
        got = float(jit_kl(dp, dq))
        want = case.kl(p, q)
        # Rounding floor of the Bregman form psi_q - psi_p - (theta_q - theta_p).eta_p.
        scale = float(
            jnp.abs(jit_psi(dq))
            + jnp.abs(jit_psi(dp))
            + jnp.abs(jit_theta(dq) - jit_theta(dp)) @ jnp.abs(jit_eta(dp))
        )
        assert abs(got - want) <= 1e-12 * (abs(want) + scale), (i, j, got, want, scale)
        if i == j:
            assert abs(got) <= 1e-12 * scale


def test_kl_rejects_other_family():
    a, b = CASES[0].build(CASES[0].grid[0]), CASES[1].build(CASES[1].grid[0])
    with pytest.raises(TypeError, match="same family"):
        a.kl_divergence(b)


# ------------------------------------------------------------------ fitting
N_FIT = 20_000


@pytest.mark.slow
@pytest.mark.parametrize("case,params", case_params(which="fit_grid"))
def test_fit_recovers_parameters(case, params):
    truth = case.build(params)
    x = case.scipy(params).rvs(size=N_FIT, random_state=np.random.default_rng(3))
    x = x.reshape((N_FIT, *truth.event_shape))
    fitted = jit_fit(case.family, x)
    # Delta method: Cov(theta_hat) = J I J^T / n with J = d theta / d eta.
    _, jac = jit_eta_to_theta_and_jacobian(case.family, jit_eta(truth))
    cov_theta = np.asarray(jac @ jit_fisher(truth) @ jac.T) / N_FIT
    se = np.sqrt(np.diag(cov_theta))
    err = np.abs(np.asarray(jit_theta(fitted) - jit_theta(truth)))
    assert np.all(err <= 4 * se + 1e-12), err / se

    # Weighted: random weights, compared with the same estimator written with numpy.
    w = np.random.default_rng(4).uniform(0.2, 2.0, size=N_FIT)
    fitted_w = jit_fit(case.family, x, w)
    t = np.asarray(jit_t_and_log_h(case.family, jnp.asarray(x))[0])
    eta_w = w @ t / w.sum()
    np.testing.assert_allclose(np.asarray(jit_eta(fitted_w)), eta_w, rtol=1e-10, atol=1e-12)
    err_w = np.abs(np.asarray(jit_theta(fitted_w) - jit_theta(truth)))
    assert np.all(err_w <= 5 * se + 1e-12), err_w / se


@pytest.mark.parametrize("case", case_ids())
def test_fit_integer_weights_equal_repeated_rows(case):
    params = case.fit_grid[0]
    x = case.scipy(params).rvs(size=100, random_state=np.random.default_rng(5))
    x = x.reshape((100, *case.build(params).event_shape))
    # Integer weights in {0, 1, 2, 3} summing to 200, so the repeated data has 200 rows.
    w = np.repeat([0, 1, 2, 3], 25)
    np.random.default_rng(6).shuffle(w)
    weighted = jit_fit(case.family, x, w.astype(np.float64))
    repeated = jit_fit(case.family, np.repeat(x, w, axis=0))
    _assert_params_close(_np(case.classical(weighted)), _np(case.classical(repeated)), 1e-11)


@pytest.mark.parametrize("case", case_ids())
def test_em_steps_reproduce_fit(case):
    params = case.fit_grid[0]
    x = case.scipy(params).rvs(size=100, random_state=np.random.default_rng(7))
    x = jnp.asarray(x.reshape((100, *case.build(params).event_shape)))
    w = jnp.asarray(np.random.default_rng(8).uniform(0.5, 1.5, size=100))
    start = case.build(jax.tree.map(lambda a: 1.3 * np.asarray(a), params))
    stepped = jit_em_step(start, x, w)
    fitted = jit_fit(case.family, x, w)
    _assert_params_close(_np(case.classical(stepped)), _np(case.classical(fitted)), 1e-13)
    init = jit_initialize(case.family, x, w)
    _assert_params_close(_np(case.classical(init)), _np(case.classical(fitted)), 1e-13)
    ll = float(jit_log_likelihood(fitted, x, w))
    np.testing.assert_allclose(ll, float(w @ jit_log_prob(fitted, x) / w.sum()), rtol=1e-14)
    assert ll >= float(jit_log_likelihood(start, x, w))


@pytest.mark.parametrize("case", case_ids())
def test_fit_rejects_nonfinite_data(case):
    params = case.fit_grid[0]
    event_shape = case.build(params).event_shape
    x = case.scipy(params).rvs(size=100, random_state=np.random.default_rng(9))
    x = np.array(x.reshape((100, *event_shape)), dtype=np.float64)
    for bad in (np.nan, np.inf):
        xb = x.copy()
        xb.reshape(-1)[3] = bad
        with pytest.raises(Exception, match="data contain NaN or inf"):
            case.family.fit(xb)
        with pytest.raises(Exception, match="data contain NaN or inf"):
            jax.block_until_ready(jit_fit(case.family, xb))
    with pytest.raises(Exception, match="weights must be finite"):
        jit_fit(case.family, x, -np.ones(100))


# ------------------------------------------------------------------ jit / vmap / retracing
@pytest.mark.parametrize("case", case_ids())
def test_jit_matches_eager(case):
    p, q = case.grid[1], case.grid[2]
    if case.family.event_ndim:
        q = p
    dp, dq = case.build(p), case.build(q)
    x = jnp.asarray(case.points(p, np.random.default_rng(0)))
    for fn in (
        lambda d: d.log_prob(x),
        lambda d: d.kl_divergence(dq),
        lambda d: type(d).fit(x).natural_params(),
    ):
        np.testing.assert_allclose(
            np.asarray(eqx.filter_jit(fn)(dp)), np.asarray(fn(dp)), rtol=1e-13, atol=1e-300
        )
    # Building under jit gives the same distribution.
    built = jax.jit(case.build)(p)
    _assert_params_close(_np(case.classical(built)), _np(case.classical(dp)), 1e-14)


@pytest.mark.parametrize("case", case_ids())
def test_batched_log_prob_matches_loop(case):
    p = case.grid[1]
    dist = case.build(p)
    pts = case.points(p, np.random.default_rng(1))
    idx = np.random.default_rng(2).integers(0, len(pts), size=12)
    x = pts[idx].reshape((3, 4, *dist.event_shape))
    batched = np.asarray(dist.log_prob(x))
    assert batched.shape == (3, 4)
    loop = np.array([[float(dist.log_prob(x[i, j])) for j in range(4)] for i in range(3)])
    np.testing.assert_allclose(batched, loop, rtol=1e-14)
    if case.family.event_ndim:
        with pytest.raises(ValueError, match="trailing shape"):
            dist.log_prob(np.zeros((2, dist.event_shape[0] + 1)))


@pytest.mark.parametrize("case", case_ids())
def test_no_retrace_with_new_values(case):
    p, q = case.fit_grid[0], case.fit_grid[0]
    q = jax.tree.map(lambda a: np.asarray(a) * 1.1, q)
    dp, dq = case.build(p), case.build(q)
    x1 = jnp.asarray(case.points(p, np.random.default_rng(0)))
    x2 = x1 * 1.05

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def log_prob(d, x):
        return d.log_prob(x)

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def fit(x):
        return case.family.fit(x)

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def build(params):
        return case.build(params)

    log_prob(dp, x1)
    log_prob(dq, x2)
    fit(x1)
    fit(x2)
    build(jax.tree.map(lambda a: jnp.asarray(np.asarray(a, np.float64)), p))
    build(jax.tree.map(lambda a: jnp.asarray(np.asarray(a, np.float64)), q))


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("case", case_ids())
def test_invalid_parameters_raise(case):
    for params, message in case.invalid:
        with pytest.raises(Exception, match=message.replace("`", ".")):
            case.build(params)
        arrays = jax.tree.map(lambda a: np.asarray(a, dtype=np.float64), params)
        with pytest.raises(Exception, match=message.replace("`", ".")):
            jax.block_until_ready(jit_build_theta(case.build, arrays))


@pytest.mark.parametrize("case", case_ids())
def test_bad_shapes_raise_value_error(case):
    for params in case.bad_shapes:
        with pytest.raises(ValueError, match=case.name):
            case.build(params)
        with pytest.raises(ValueError, match=case.name):
            jax.jit(lambda p: case.build(p).natural_params())(params)


# ------------------------------------------------------------------ sampling and support
@pytest.mark.slow
@pytest.mark.parametrize("case,params", case_params(which="fit_grid"))
def test_sample_matches_distribution(case, params):
    dist = case.build(params)
    s = dist.sample(jr.key(11), (2, 2000))  # typed key
    assert s.shape == (2, 2000, *dist.event_shape)
    assert s.dtype == jnp.float64
    np.testing.assert_array_equal(np.asarray(dist.sample(jr.PRNGKey(11), (2, 2000))), s)
    x = np.asarray(s).reshape((4000, *dist.event_shape))
    assert np.all(np.isfinite(x))
    if case.family.event_ndim == 0:
        assert st.kstest(x, case.scipy(params).cdf).pvalue > 1e-4
    else:
        n = x.shape[0]
        cov = np.asarray(dist.cov())
        z = (x.mean(0) - np.asarray(dist.mean())) / np.sqrt(np.diag(cov) / n)
        assert np.all(np.abs(z) < 4.5)
        sd = np.sqrt(np.diag(cov))
        se_cov = np.sqrt((np.outer(sd, sd) ** 2 + cov**2) / n)
        assert np.all(np.abs(np.cov(x.T, bias=True).reshape(cov.shape) - cov) < 4.5 * se_cov)


@pytest.mark.parametrize("case", case_ids())
def test_log_prob_outside_support_is_minus_inf(case):
    dist = case.build(case.grid[1])
    if case.family.event_ndim == 0:
        bad = jnp.array([0.0, -1.0, jnp.inf])
    else:
        bad = jnp.full((2, *dist.event_shape), jnp.nan).at[1].set(jnp.inf)
    assert np.all(np.asarray(dist.log_prob(bad)) == -np.inf)

    def total(d):
        lp = d.log_prob(bad)
        return jnp.sum(jnp.where(jnp.isfinite(lp), lp, 0.0))

    grads = eqx.filter_jit(eqx.filter_grad(total))(dist)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("case", case_ids())
def test_n_parameters(case):
    for p in case.grid:
        dist = case.build(p)
        k = dist.natural_params().shape[0]
        n = dist.n_parameters()
        assert isinstance(n, int)
        if case.family.event_ndim == 0:
            assert n == k
        else:
            d = dist.event_shape[0]
            assert n == d + d * (d + 1) // 2
