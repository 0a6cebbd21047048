"""GIG: normaliser, log_prob, moments, limits and gradients against scipy / mpmath (the cdf:
tests/test_gig_cdf.py)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest
import scipy.stats as st

import normix
from normix import gig_expectations, gig_log_normalizer, gig_moment

# (p, a, b) interior grid: p negative/zero/positive/large, sqrt(ab) from 1e-6 to 1e4,
# b/a from 1e-10 to 1e10.
GRID = [
    (0.5, 1.0, 2.0),
    (-1.5, 3.0, 0.2),
    (2.0, 1e-3, 5.0),
    (0.0, 1.0, 1.0),
    (30.0, 1e-5, 1e5),
    (-20.0, 1e3, 1e-3),
    (1.0, 1e-6, 1e-6),
    (50.0, 1e2, 1e6),
    (-0.3, 1e4, 1e4),
    (0.2, 1e-6, 1e-6),
    (-50.0, 1e-8, 1e-4),
    (3.7, 1e-5, 1e5),
]
P, A, B = (np.array(c) for c in zip(*GRID, strict=True))


@jax.jit
def _all(p, a, b):
    return gig_log_normalizer(p, a, b), gig_expectations(p, a, b)


def _mp_ref(p, a, b):
    mp.mp.dps = 40
    p, a, b = mp.mpf(p), mp.mpf(a), mp.mpf(b)
    w, s = mp.sqrt(a * b), mp.sqrt(b / a)
    lk = lambda v: mp.log(mp.besselk(v, w))  # noqa: E731
    log_z = mp.log(2) + p / 2 * mp.log(b / a) + lk(p)
    e_y = s * mp.exp(lk(p + 1) - lk(p))
    e_inv = mp.exp(lk(p - 1) - lk(p)) / s
    e_log = mp.log(s) + mp.diff(lk, p)
    return float(log_z), np.array([float(e_log), float(e_inv), float(e_y)])


@pytest.fixture(scope="module")
def computed():
    return tuple(np.asarray(x) for x in _all(P, A, B))


def test_normalizer_and_moments_vs_mpmath(computed):
    log_z, eta = computed
    for i, (p, a, b) in enumerate(GRID):
        ref_z, ref_eta = _mp_ref(p, a, b)
        assert abs(log_z[i] - ref_z) <= 1e-12 * max(1.0, abs(ref_z)), (p, a, b)
        np.testing.assert_allclose(eta[i, 1:], ref_eta[1:], rtol=1e-12, err_msg=str((p, a, b)))
        assert abs(eta[i, 0] - ref_eta[0]) <= 1e-12 * max(1.0, abs(ref_eta[0])), (p, a, b)


def test_log_prob_vs_scipy():
    for p, a, b in [(0.5, 1.0, 2.0), (-1.5, 3.0, 0.2), (2.0, 1e-3, 5.0), (30.0, 1e-5, 1e5)]:
        w, s = np.sqrt(a * b), np.sqrt(b / a)
        frozen = st.geninvgauss(p, w, scale=s)
        y = frozen.ppf([0.01, 0.3, 0.5, 0.9, 0.999])
        lp = np.asarray(eqx.filter_jit(lambda d, y: d.log_prob(y))(normix.GIG(p, a, b), y))
        np.testing.assert_allclose(lp, frozen.logpdf(y), rtol=1e-12, atol=1e-12)


def test_limits_vs_gamma_and_inverse_gamma():
    # b = 0: Gamma(shape p, rate a/2); a = 0: InverseGamma(shape -p, scale b/2)
    log_z, eta = _all(np.array([3.0, -2.5]), np.array([2.0, 0.0]), np.array([0.0, 3.0]))
    y = np.array([0.3, 1.7])
    g = st.gamma(3.0, scale=1.0)
    ig = st.invgamma(2.5, scale=1.5)
    lp_g = (3.0 - 1) * np.log(y) - y - log_z[0]
    lp_ig = (-2.5 - 1) * np.log(y) - 1.5 / y - log_z[1]
    np.testing.assert_allclose(lp_g, g.logpdf(y), rtol=1e-13)
    np.testing.assert_allclose(lp_ig, ig.logpdf(y), rtol=1e-13)
    np.testing.assert_allclose(eta[0, 1:], [1 / 2, 3.0], rtol=1e-14)
    np.testing.assert_allclose(eta[1, 1:], [2.5 / 1.5, 1.5 / 1.5], rtol=1e-14)
    # continuity: a = 1e-12 vs a = 0 (and b likewise)
    log_z2, eta2 = _all(np.array([3.0, -2.5]), np.array([2.0, 1e-12]), np.array([1e-12, 3.0]))
    np.testing.assert_allclose(log_z2, log_z, rtol=1e-10)
    np.testing.assert_allclose(eta2, eta, rtol=1e-9)


def test_nonexistent_moments_are_inf_not_nan():
    _, eta = _all(np.array([0.5, -0.5, 1.0]), np.array([1.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0]))
    eta = np.asarray(eta)
    assert eta[0, 1] == np.inf and eta[1, 2] == np.inf and eta[2, 1] == np.inf
    assert np.isfinite(eta[0, [0, 2]]).all() and np.isfinite(eta[1, [0, 1]]).all()
    log_z, _ = _all(np.array([0.5, -0.5]), np.array([0.0, 1.0]), np.array([1.0, 0.0]))
    assert np.all(np.asarray(log_z) == np.inf)  # improper limits


def test_gig_moment_vs_mpmath():
    mp.mp.dps = 30
    f = jax.jit(gig_moment)
    for p, a, b in [(0.5, 1.0, 2.0), (-20.0, 1e3, 1e-3), (2.0, 1e-3, 5.0)]:
        w, s = mp.sqrt(mp.mpf(a) * b), mp.sqrt(mp.mpf(b) / a)
        for r in (2.0, -1.5, 0.5):
            ref = s**r * mp.besselk(p + r, w) / mp.besselk(p, w)
            assert abs(float(f(p, a, b, r)) / float(ref) - 1) < 1e-12
    # limits: Gamma(3, rate 1) E Y^-2 = 1/2, E Y^-3 = inf
    assert abs(float(f(3.0, 2.0, 0.0, -2.0)) - 0.5) < 1e-14
    assert float(f(3.0, 2.0, 0.0, -3.0)) == np.inf


def test_grad_log_partition_is_expectation():
    thetas = jnp.array(
        [[-0.5, -1.0, -0.5], [-2.5, -0.1, -1.5], [1.0, -2.5, -5e-4], [2.0, 0.0, -1.0]]
    )
    g = jax.jit(jax.vmap(jax.grad(normix.GIG.log_partition_at)))(thetas)
    e = jax.vmap(normix.GIG.expectation_at)(thetas)
    np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-11)


@pytest.mark.slow
def test_fisher_information_vs_finite_differences():
    d = normix.GIG(0.7, 1.3, 2.1)
    fisher = np.asarray(eqx.filter_jit(lambda d: d.fisher_information())(d))
    theta = np.asarray(d.natural_params())
    h = 1e-6
    fd = np.stack(
        [
            (
                np.asarray(normix.GIG.expectation_at(theta + h * np.eye(3)[i]))
                - np.asarray(normix.GIG.expectation_at(theta - h * np.eye(3)[i]))
            )
            / (2 * h)
            for i in range(3)
        ],
        axis=1,
    )
    np.testing.assert_allclose(fisher, fd, rtol=1e-7)
    np.testing.assert_allclose(fisher, fisher.T, rtol=1e-10)


def test_invalid_parameters_raise():
    with pytest.raises(Exception, match="GIG"):
        eqx.filter_jit(lambda: normix.GIG(0.5, 0.0, 1.0).p)()
    with pytest.raises(Exception, match="GIG"):
        normix.GIG(-0.5, 1.0, 0.0)
    with pytest.raises(Exception, match="GIG"):
        normix.GIG(0.5, -1.0, 1.0)


def test_mle_on_gamma_and_inverse_gamma_data_is_the_boundary_law():
    """On Gamma-distributed data the GIG likelihood has its supremum at b = 0, where the
    interior Newton solve cannot converge (it used to raise "max_steps"): the fit is the
    Gamma MLE (scipy's `gamma.fit`), as a GIG with b = 0; likewise a = 0 for inverse-Gamma
    data. Data with an interior maximiser keep the interior solution. (Statistics that
    violate Jensen's inequality still raise: test_gig_solver.py.)"""
    x = np.random.default_rng(0).gamma(2.0, 1.5, size=5000)
    fit = jax.jit(normix.GIG.fit)
    shape, _, scale = st.gamma.fit(x, floc=0, method="MLE")
    # the premise: at the Gamma MLE the objective decreases into the interior (b > 0),
    # i.e. the data's mean of 1/x exceeds the model's E[1/Y] = rate / (shape - 1)
    assert np.mean(1 / x) > 1 / (scale * (shape - 1))
    g = fit(jnp.asarray(x))
    np.testing.assert_allclose([g.p, g.a], [shape, 2 / scale], rtol=1e-6)
    assert float(g.b) == 0.0
    ll = float(jnp.mean(g.log_prob(jnp.asarray(x))))
    assert ll >= st.gamma.logpdf(x, shape, scale=scale).mean() - 1e-12
    ig = fit(jnp.asarray(1 / x))
    np.testing.assert_allclose([-ig.p, ig.b], [g.p, g.a], rtol=1e-12)
    assert float(ig.a) == 0.0
    w = np.random.default_rng(1).wald(1.0, 2.0, size=x.size)  # same shape: no recompile
    inner = fit(jnp.asarray(w))
    assert float(inner.a) > 0 and float(inner.b) > 0
