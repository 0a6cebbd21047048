"""Family-specific checks: cdfs, higher moments, subordinator (GIG) forms, the MVN's
Cholesky interface, and the special-function helpers the families use."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.random as jr
import mpmath as mp
import numpy as np
import pytest
import scipy.integrate as si
import scipy.stats as st
from cases import (
    GAMMA,
    INVERSE_GAMMA,
    INVERSE_GAUSSIAN,
    MVN,
    case_params,
    jit_cdf,
    jit_fit,
    jit_log_prob,
)

import normix
from normix._distributions._gamma import inverse_log_minus_digamma, log_standard_gamma
from normix._distributions._gig_functions import gig_cumulants
from normix._special._exp1 import log_scaled_exp1, scaled_exp1

mp.mp.dps = 40
UNIVARIATE = (GAMMA, INVERSE_GAMMA, INVERSE_GAUSSIAN)


# ------------------------------------------------------------------ special helpers
def test_scaled_exp1_matches_mpmath():
    x = np.concatenate([np.logspace(-300, 300, 121), np.linspace(0.5, 3.0, 26)])
    ref = np.array([float(mp.exp(mp.mpf(v)) * mp.e1(mp.mpf(v))) for v in x])
    np.testing.assert_allclose(np.asarray(scaled_exp1(x)), ref, rtol=5e-15)
    log_ref = np.array([float(mp.log(mp.exp(mp.mpf(v)) * mp.e1(mp.mpf(v)))) for v in x])
    np.testing.assert_allclose(np.asarray(log_scaled_exp1(x)), log_ref, rtol=5e-15, atol=5e-16)
    assert float(scaled_exp1(0.0)) == np.inf
    assert np.isnan(float(scaled_exp1(-1.0)))
    # d/dx e^x E1(x) = e^x E1(x) - 1/x, and the derivative is finite in both regimes.
    v = np.array([0.3, 2.0, 40.0])
    want = [float(mp.exp(t) * mp.e1(t) - 1 / mp.mpf(t)) for t in v]
    np.testing.assert_allclose(np.asarray(jax.vmap(jax.grad(scaled_exp1))(v)), want, rtol=1e-12)


def test_inverse_log_minus_digamma_matches_mpmath():
    a = np.logspace(-6, 8, 57)
    c = np.array([float(mp.log(v) - mp.digamma(v)) for v in a])
    got = np.asarray(jax.jit(inverse_log_minus_digamma)(c))
    # Conditioning: |da/a| = |dc / (a f'(a))| <= ~1 ulp of c times 2.
    np.testing.assert_allclose(got, a, rtol=1e-14)
    assert np.all(np.isnan(np.asarray(inverse_log_minus_digamma(np.array([0.0, -1.0, np.nan])))))


# ------------------------------------------------------------------ cdfs
def _ig_cdf(m, lam, x):
    m, lam, x = mp.mpf(m), mp.mpf(lam), mp.mpf(x)
    s = mp.sqrt(lam / x)
    return mp.ncdf(s * (x / m - 1)) + mp.exp(2 * lam / m) * mp.ncdf(-s * (x / m + 1))


_CDF_REF = {
    "Gamma": lambda p, x: mp.gammainc(p["shape"], 0, p["rate"] * mp.mpf(x), regularized=True),
    "InverseGamma": lambda p, x: mp.gammainc(
        p["shape"], p["rate"] / mp.mpf(x), mp.inf, regularized=True
    ),
    "InverseGaussian": lambda p, x: _ig_cdf(p["mean"], p["shape"], x),
}


@pytest.mark.parametrize("case,params", case_params(UNIVARIATE))
def test_cdf_matches_mpmath(case, params):
    dist = case.build(params)
    x = case.points(params, np.random.default_rng(0))
    ref = [_CDF_REF[case.name](params, v) for v in x]
    want = np.array([float(r) for r in ref])
    got = np.asarray(jit_cdf(dist, x))
    # Values reached through exp(log ...) carry relative error ~ eps |log F|.
    log_want = np.array([float(mp.log(r)) if r > 0 else -np.inf for r in ref])
    tol = 1e-12 * np.maximum(1.0, np.abs(np.where(np.isfinite(log_want), log_want, 0)))
    if case.name != "InverseGaussian":  # jax gammainc: ~1e-12 at shape 1e3, 3e-13 at 1e-3
        tol = tol * 5
    np.testing.assert_array_less(np.abs(got - want), tol * want + 1e-300)
    np.testing.assert_allclose(got, case.scipy(params).cdf(x), rtol=1e-9, atol=1e-300)
    assert float(dist.cdf(-1.0)) == 0.0


def test_inverse_gaussian_log_cdf_no_overflow():
    # 2 lambda / mu = 2e4: exp(2 lambda / mu) overflows, the log-space formula does not.
    dist = normix.InverseGaussian(1.0, 1e4)
    x = np.array([0.9, 0.97, 0.99, 1.0, 1.01, 1.05])
    log_cdf = jax.jit(lambda d, x: d.log_cdf(x))
    got = np.asarray(log_cdf(dist, x))
    want = np.array([float(mp.log(_ig_cdf(1.0, 1e4, v))) for v in x])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-20)
    assert np.all(np.isfinite(np.asarray(jit_cdf(dist, x))))
    assert float(log_cdf(dist, np.array([0.0, -1.0]))[0]) == -np.inf
    # d/dx log F(x) = p(x) / F(x)
    grad = jax.jit(jax.vmap(jax.grad(lambda v, d: d.log_cdf(v)), in_axes=(0, None)))
    want_grad = np.exp(np.asarray(jit_log_prob(dist, x)) - got)
    np.testing.assert_allclose(np.asarray(grad(x, dist)), want_grad, rtol=1e-10)


# ------------------------------------------------------------------ higher moments
@pytest.mark.parametrize("case,params", case_params(UNIVARIATE))
def test_skewness_and_kurtosis_match_scipy(case, params):
    dist = case.build(params)
    skew, kurt = case.scipy(params).stats(moments="sk")
    got_s, got_k = float(dist.skewness()), float(dist.kurtosis())
    if np.isfinite(skew):
        np.testing.assert_allclose(got_s, skew, rtol=1e-12)
    else:
        assert not np.isfinite(got_s)
    if np.isfinite(kurt):
        np.testing.assert_allclose(got_k, kurt, rtol=1e-12)
    else:
        assert not np.isfinite(got_k)


def test_inverse_gamma_moments_that_do_not_exist():
    d = normix.InverseGamma(0.8, 1.0)
    assert float(d.mean()) == np.inf and float(d.variance()) == np.inf
    d = normix.InverseGamma(1.5, 1.0)
    assert np.isfinite(float(d.mean())) and float(d.variance()) == np.inf
    grads = jax.grad(lambda a: normix.InverseGamma(a, 1.0).mean())(0.8)
    assert float(grads) == 0.0  # no NaN from the unselected branch


def test_inverse_gaussian_expected_log_x_matches_quadrature():
    for m, lam in ((0.3, 2.0), (5.0, 0.7), (1.0, 1e3), (1.0, 1e-3)):
        ref = INVERSE_GAUSSIAN.scipy({"mean": m, "shape": lam})
        # Split at the mean so quad sees the peak.
        f = lambda x, ref=ref: ref.pdf(x) * np.log(x)
        want = sum(
            si.quad(f, a, b, limit=400, epsabs=0, epsrel=1e-13)[0] for a, b in ((0, m), (m, np.inf))
        )
        got = float(normix.InverseGaussian(m, lam).expected_log_x())
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_inverse_gaussian_kl_matches_quadrature():
    p, q = normix.InverseGaussian(0.7, 2.0), normix.InverseGaussian(1.5, 0.6)
    rp = INVERSE_GAUSSIAN.scipy({"mean": 0.7, "shape": 2.0})
    rq = INVERSE_GAUSSIAN.scipy({"mean": 1.5, "shape": 0.6})
    want = si.quad(lambda x: rp.pdf(x) * (rp.logpdf(x) - rq.logpdf(x)), 0, np.inf, limit=400)[0]
    np.testing.assert_allclose(float(p.kl_divergence(q)), want, rtol=1e-9)


# ------------------------------------------------------------------ subordinator (GIG) form
@pytest.mark.parametrize("case,params", case_params(UNIVARIATE))
def test_gig_params_reproduce_density(case, params):
    dist = case.build(params)
    p, a, b = (float(v) for v in dist.gig_params())
    x = case.points(params, np.random.default_rng(0))
    # log p(x) - [(p - 1) log x - (a x + b / x) / 2] is the (constant) normaliser.
    rest = np.asarray(dist.log_prob(x)) - ((p - 1) * np.log(x) - (a * x + b / x) / 2)
    np.testing.assert_allclose(rest, rest[0], rtol=1e-11, atol=1e-11 * np.max(np.abs(rest)))
    # ... and it is log Z(p, a, b) of the GIG form (closed form for Gamma / InverseGamma)
    np.testing.assert_allclose(-rest[0], float(dist.log_gig_normalizer()), rtol=1e-12, atol=1e-12)
    table = {
        "Gamma": (params.get("shape"), 2 * params.get("rate", 0), 0.0),
        "InverseGamma": (-params.get("shape", 0), 0.0, 2 * params.get("rate", 0)),
        "InverseGaussian": (
            -0.5,
            params.get("shape", 0) / params.get("mean", 1) ** 2,
            params.get("shape"),
        ),
    }[case.name]
    np.testing.assert_allclose((p, a, b), table, rtol=1e-15)


def test_gig_log_gig_normalizer_matches_scipy():
    import scipy.special as sp

    for p, a, b in [(0.7, 2.0, 3.0), (-2.5, 0.3, 9.0), (12.0, 40.0, 0.01)]:
        ref = np.log(2.0) + 0.5 * p * np.log(b / a) + np.log(sp.kv(p, np.sqrt(a * b)))
        got = float(normix.GIG(p, a, b).log_gig_normalizer())
        np.testing.assert_allclose(got, ref, rtol=1e-12)


def _gig_eta(case, params) -> np.ndarray:
    """(E log Y, E 1/Y, E Y) in closed form (None entries replaced by NaN where infinite)."""
    ref = case.scipy(params)
    e_log = si.quad(lambda x: ref.pdf(x) * np.log(x), 0, np.inf, limit=400)[0]
    e_inv = si.quad(lambda x: ref.pdf(x) / x, 0, np.inf, limit=400)[0]
    return np.array([e_log, e_inv, ref.mean()])


@pytest.mark.parametrize(
    "case,params",
    [
        (GAMMA, {"shape": 3.0, "rate": 2.0}),
        (INVERSE_GAMMA, {"shape": 3.0, "rate": 2.0}),
        (INVERSE_GAUSSIAN, {"mean": 1.3, "shape": 2.0}),
    ],
    ids=["Gamma", "InverseGamma", "InverseGaussian"],
)
def test_from_gig_expectation_recovers_parameters(case, params):
    eta_gig = _gig_eta(case, params)
    got = case.family.from_gig_expectation(jnp.asarray(eta_gig))
    for name, value in case.classical(got).items():
        np.testing.assert_allclose(float(value), params[name], rtol=1e-7)
    warm = case.family.from_gig_expectation(
        jnp.asarray(eta_gig), case.build(params).natural_params()
    )
    assert type(warm) is case.family


def test_constructors_vmap():
    shapes, rates = jnp.array([0.5, 2.0, 7.0]), jnp.array([1.0, 3.0, 0.1])
    batch = jax.vmap(normix.Gamma)(shapes, rates)
    lp = jax.vmap(lambda d: d.log_prob(1.3))(batch)
    want = st.gamma(a=np.asarray(shapes), scale=1 / np.asarray(rates)).logpdf(1.3)
    np.testing.assert_allclose(np.asarray(lp), want, rtol=1e-13)


@pytest.mark.parametrize("alpha", [1e-3, 0.4, 1.0, 7.5, 1e3])
def test_log_standard_gamma_sampler(alpha):
    # log G ~ scipy.stats.loggamma(alpha); the log scale stays exact for tiny alpha.
    log_g = np.asarray(log_standard_gamma(jr.key(3), jnp.float64(alpha), (4000,)))
    assert np.all(np.isfinite(log_g))
    assert st.kstest(log_g, st.loggamma(c=alpha).cdf).pvalue > 1e-4


def test_gamma_sample_tiny_shape_has_no_nan(key):
    x = np.asarray(normix.Gamma(1e-3, 1.0).sample(key, (4000,)))
    assert not np.any(np.isnan(x)) and np.all(x >= 0)
    # About half the draws lie below 1e-300 and round to 0: P(X < 1e-300) ~ 0.5.
    assert 0.4 < np.mean(x == 0) < 0.6


# ------------------------------------------------------------------ MultivariateNormal
def test_mvn_cov_variance_and_cholesky():
    p = MVN.grid[1]
    dist = MVN.build(p)
    np.testing.assert_allclose(np.asarray(dist.cov()), p["cov"], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(np.asarray(dist.variance()), np.diag(p["cov"]), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(dist.mean()), p["mean"])
    chol = np.linalg.cholesky(p["cov"])
    other = normix.MultivariateNormal.from_cholesky(p["mean"], chol)
    np.testing.assert_array_equal(np.asarray(other.chol), chol)
    x = MVN.points(p, np.random.default_rng(0))
    np.testing.assert_allclose(
        np.asarray(other.log_prob(x)), np.asarray(dist.log_prob(x)), rtol=1e-13
    )
    assert dist.event_shape == (3,)
    assert dist.n_parameters() == 9


def test_mvn_cholesky_errors():
    with pytest.raises(Exception, match="`chol` must be lower triangular"):
        normix.MultivariateNormal.from_cholesky(np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(Exception, match="`chol` is not positive definite"):
        normix.MultivariateNormal.from_cholesky(np.zeros(2), np.array([[1.0, 0.0], [0.5, -1.0]]))
    with pytest.raises(Exception, match="`chol` is not positive definite"):
        jax.jit(normix.MultivariateNormal.from_cholesky)(np.zeros(2), np.diag([1.0, 0.0]))
    with pytest.raises(ValueError, match="exactly one of `cov` and `chol`"):
        normix.MultivariateNormal(np.zeros(2))
    with pytest.raises(ValueError, match="exactly one of `cov` and `chol`"):
        normix.MultivariateNormal(np.zeros(2), np.eye(2), chol=np.eye(2))
    with pytest.raises(ValueError, match="`chol` must have shape"):
        normix.MultivariateNormal.from_cholesky(np.zeros(2), np.eye(3))


def test_mvn_fit_is_sample_mean_and_covariance():
    rng = np.random.default_rng(0)
    lower = np.array([[1.0, 0, 0], [0.5, 1.0, 0], [0.2, -0.3, 2.0]])
    x = rng.normal(size=(200, 3)) @ lower.T + np.array([1.0, -1.0, 3.0])
    fitted = jit_fit(normix.MultivariateNormal, x)
    np.testing.assert_allclose(np.asarray(fitted.mean()), x.mean(0), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(fitted.cov()), np.cov(x.T, bias=True), rtol=1e-11)
    ref = st.multivariate_normal(x.mean(0), np.cov(x.T, bias=True))
    np.testing.assert_allclose(
        np.asarray(jit_log_prob(fitted, x[:9])), ref.logpdf(x[:9]), rtol=1e-12
    )


def test_fit_to_constant_data_names_the_problem():
    """The MLE divides by a Jensen gap (log E[X] - E[log X] for the Gamma, ...) that is 0
    for constant data; the error says so instead of "`shape` must be finite and > 0 ...
    check for a sign error"."""
    import equinox as eqx

    for cls in (normix.Gamma, normix.InverseGamma, normix.InverseGaussian):
        with pytest.raises(eqx.EquinoxRuntimeError, match="no spread"):
            cls.fit(np.array([1.5, 1.5, 1.5]))
        fitted = cls.fit(np.array([1.0, 2.0, 3.5]))  # same program, data that vary
        assert all(np.isfinite(np.asarray(v)) for v in jax.tree.leaves(fitted))


def test_gig_cumulants_of_nearly_degenerate_laws():
    """sqrt(ab) large: the raw-moment differences cancel (kappa_4 was 1e-5 off at
    sqrt(ab) = 1e3, 19% at 1e4; the mean, a difference of two log K's, 4e-11 at 1e6),
    Hankel's expansion keeps full accuracy; on both sides of the switch
    (sqrt(ab) = max(20, p^2 / 16)). Reference: mpmath Bessel ratios, 60 digits."""
    cases = [
        (p, w, s) for p in (-0.5, 1.0, 7.5) for w in (19.0, 21.0, 1e3, 1e6) for s in (1e-3, 40.0)
    ]
    cases += [(-30.0, 55.0, 1.0), (-30.0, 57.0, 1.0), (60.0, 226.0, 3.0)]
    p, w, s = (np.array(c, float) for c in zip(*cases, strict=True))
    got = np.array(jax.jit(gig_cumulants)(p, w / s, w * s))  # a = w / s, b = w s
    for i, (pi, wi, scale) in enumerate(cases):
        with mp.workdps(60):
            m = [
                mp.mpf(scale) ** n * mp.besselk(pi + n, wi) / mp.besselk(pi, wi)
                for n in range(1, 5)
            ]
            k2 = m[1] - m[0] ** 2
            k3 = m[2] - 3 * m[0] * m[1] + 2 * m[0] ** 3
            k4 = m[3] - 4 * m[0] * m[2] + 6 * m[0] ** 2 * m[1] - 3 * m[0] ** 4 - 3 * k2**2
            ref = np.array([float(m[0]), float(k2), float(k3), float(k4)])
        # raw moments below the switch lose ~1e-11 there (more for |p| > 18: ~eps w^3 in
        # kappa_4); Hankel keeps ~1e-15 above it
        rtol = 1e-13 if wi >= max(20.0, pi * pi / 16) else (5e-11 if abs(pi) < 18 else 1e-7)
        np.testing.assert_allclose(got[:, i], ref, rtol=rtol, err_msg=str(cases[i]))
    # GIG.variance is kappa_2 (it was E Y^2 - (E Y)^2: 4e-9 off at sqrt(ab) = 1e4)
    with mp.workdps(60):
        k = [mp.besselk(1 + n, 1e4) / mp.besselk(1, 1e4) for n in (1, 2)]
        ref = float(k[1] - k[0] ** 2)
    assert float(normix.GIG(1.0, 1e4, 1e4).variance()) == pytest.approx(ref, rel=1e-14)


def test_subordinator_cumulants_closed_forms():
    """Cumulants of Gamma / InverseGamma / InverseGaussian (closed forms) and GIG against scipy's
    mean, variance, skewness and excess kurtosis; +inf where E[Y^n] is infinite."""
    cases = [
        (normix.Gamma(2.5, 1.5), st.gamma(2.5, scale=1 / 1.5)),
        (normix.InverseGamma(6.5, 2.0), st.invgamma(6.5, scale=2.0)),
        (normix.InverseGaussian(1.3, 2.2), st.invgauss(1.3 / 2.2, scale=2.2)),
        # the default, from the raw GIG moments
        (normix.GIG(0.7, 2.0, 3.0), st.geninvgauss(0.7, np.sqrt(6.0), scale=np.sqrt(1.5))),
    ]
    for law, ref in cases:
        k1, k2, k3, k4 = (float(k) for k in jax.jit(type(law).cumulants)(law))
        m, v, s, k = (float(x) for x in ref.stats("mvsk"))
        np.testing.assert_allclose([k1, k2, k3 / k2**1.5, k4 / k2**2], [m, v, s, k], rtol=1e-13)
    kappas = np.array(jax.jit(normix.InverseGamma.cumulants)(normix.InverseGamma(2.5, 2.0)))
    assert np.isfinite(kappas[:2]).all() and (kappas[2:] == np.inf).all()
