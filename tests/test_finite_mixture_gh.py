"""Finite mixtures with GH-family components (NIG, skew-t, GH, ...)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import adjusted_rand_score

import normix
from normix import FiniteMixture, fit_mixture


def _true_mixture():
    """Three skewed, heavy-tailed NIG clusters in d = 2."""
    specs = [([0.0, 0.0], [1.5, 0.0]), ([4.0, 4.0], [0.0, 1.5]), ([-3.0, 5.0], [-1.0, -1.0])]
    comps = [
        normix.NormalInverseGaussian(
            jnp.array(m), jnp.array(g), 0.3 * jnp.eye(2), jnp.array(1.0), jnp.array(0.5)
        )
        for m, g in specs
    ]
    return FiniteMixture(jnp.array([0.3, 0.4, 0.3]), comps)


@pytest.mark.slow
def test_log_prob_is_logsumexp_of_components():
    m = _true_mixture()
    x = jnp.asarray(np.random.default_rng(0).normal(size=(50, 2)) * 3 + 1)
    comps = [m.components.component(k) for k in range(3)]
    comp_lp = eqx.filter_jit(lambda c, x: c.log_prob(x))
    want = np.log(
        sum(float(m.weights[k]) * np.exp(np.asarray(comp_lp(comps[k], x))) for k in range(3))
    )
    np.testing.assert_allclose(eqx.filter_jit(m.log_prob)(x), want, rtol=1e-10)
    proba = np.asarray(eqx.filter_jit(m.predict_proba)(x))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    assert m.n_parameters() == 3 * comps[0].n_parameters() + 2


def test_univariate_nig_mixture_density_matches_scipy():
    r"""d = 1: NIG(mu, gamma, sigma^2, IG(mean 1, shape lam)) is scipy's norminvgauss with
    alpha = sqrt(lam/sigma^2 + gamma^2/sigma^4)·..., checked through the tabulated density."""
    mus, gammas, sig2, lam = [-1.0, 2.0], [0.5, -0.3], [0.4, 1.1], [2.0, 0.7]
    comps = [
        normix.NormalInverseGaussian(
            jnp.array([mu]), jnp.array([g]), jnp.array([[s]]), jnp.array(1.0), jnp.array(lm)
        )
        for mu, g, s, lm in zip(mus, gammas, sig2, lam, strict=True)
    ]
    m = FiniteMixture(jnp.array([0.4, 0.6]), comps)
    x = np.linspace(-4, 5, 41)
    dens = 0.0
    for w, mu, g, s, lm in zip([0.4, 0.6], mus, gammas, sig2, lam, strict=True):
        # X = mu + g Y + sqrt(s Y) Z, Y ~ IG(mean 1, shape lm): scipy norminvgauss(a, b, loc, scale)
        delta = np.sqrt(lm * s)  # scale of the NIG in Barndorff-Nielsen's (alpha, beta, delta)
        beta = g / s
        alpha = np.sqrt(lm / s + beta**2)
        dens = dens + w * stats.norminvgauss(alpha * delta, beta * delta, loc=mu, scale=delta).pdf(
            x
        )
    np.testing.assert_allclose(eqx.filter_jit(m.log_prob)(x[:, None]), np.log(dens), rtol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("family", [normix.NormalInverseGaussian, normix.GeneralizedHyperbolic])
def test_one_component_mixture_is_the_family_em(family, getkey):
    """K = 1 without regularisation reproduces the family's own EM iterates exactly (for GH
    with free p: the mixture's boundary-safe GIG M-step is the family's M-step whenever the
    interior solve succeeds)."""
    x = _true_mixture().sample(getkey(), (300,))
    start = family.initialize(x, jnp.ones(300))
    single = normix.fit(start, x, max_steps=8, throw=False, solver=normix.EM(rtol=0.0, atol=0.0))
    comps = normix.StackedComponents(jax.tree.map(lambda a: a[None], start), reg_covar=0.0)
    mixture = normix.fit(
        FiniteMixture(jnp.ones(1), comps),
        x,
        max_steps=8,
        throw=False,
        solver=normix.MixtureEM(tol=0.0),
    )
    assert int(mixture.n_steps) == int(single.n_steps) == 8
    np.testing.assert_allclose(mixture.log_likelihood, single.log_likelihood, rtol=1e-12)
    fitted = mixture.model.components.component(0)
    np.testing.assert_allclose(fitted.gamma, single.model.gamma, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        fitted.covariance.as_matrix(), single.model.covariance.as_matrix(), rtol=1e-9
    )


@pytest.mark.slow
def test_nig_mixture_em_is_monotone(getkey):
    x = _true_mixture().sample(getkey(), (400,))
    result = fit_mixture(
        x, 3, component=normix.NormalInverseGaussian, key=getkey(), max_steps=25, tol=0.0
    )
    trace = np.asarray(result.trace)[: int(result.n_steps) + 1]
    assert np.all(np.isfinite(trace))
    assert np.all(np.diff(trace) >= -1e-9)
    assert np.all(np.isfinite(np.asarray(result.model.predict_proba(x))))


@pytest.mark.slow
@pytest.mark.parametrize("family", [normix.NormalInverseGaussian, normix.NormalInverseGamma])
def test_skewed_clusters_gh_beats_gaussian_and_bic_picks_k(family):
    truth = _true_mixture()
    x, labels = truth.sample_with_labels(jax.random.key(7), (1200,))
    key = jax.random.key(3)
    gauss = fit_mixture(x, 3, key=key, n_init=3)
    heavy = fit_mixture(x, 3, component=family, key=key)
    ari_gauss = adjusted_rand_score(np.asarray(labels), np.asarray(gauss.model.predict(x)))
    ari_heavy = adjusted_rand_score(np.asarray(labels), np.asarray(heavy.model.predict(x)))
    assert ari_heavy > ari_gauss
    assert ari_heavy > 0.95
    sel = normix.select_mixture(x, n_components=(2, 3, 4), component=family, key=key)
    assert sel.best.n_components == 3
    # the Gaussian mixture needs extra components for the tails: BIC prefers the GH family
    assert float(heavy.model.bic(x)) < float(gauss.model.bic(x))


def _scipy_gig_objective_sup(eta, starts, p=None, xatol=1e-10, maxiter=20000):
    r"""$\sup_\theta \theta^\top\eta - \log Z(\theta)$ over the interior $a, b > 0$ (scipy
    `kve` normaliser, Nelder-Mead from several starts): in $(p, \log a, \log b)$, or in
    $(\log a, \log b)$ with `p` held fixed."""
    from scipy.optimize import minimize
    from scipy.special import kve

    eta = np.asarray(eta)

    def neg(v):
        q, la, lb = v if p is None else (p, *v)
        a, b = np.exp(la), np.exp(lb)
        w = np.sqrt(a * b)
        log_z = np.log(2) + q / 2 * np.log(b / a) + np.log(kve(q, w)) - w
        return -((q - 1) * eta[0] - b / 2 * eta[1] - a / 2 * eta[2] - log_z)

    opts = dict(xatol=xatol, fatol=1e-15, maxiter=maxiter)
    return max(-minimize(neg, x0, method="Nelder-Mead", options=opts).fun for x0 in starts)


def test_free_p_gig_m_step_takes_the_boundary_maximiser():
    """Regression (GH-component mixture with free p on two NIG clusters raised a GIG
    validity error): responsibility-weighted statistics whose GIG maximiser is an inverse
    Gamma (a = 0). The interior Newton solve fails there; the mixture's subordinator M-step
    returns the boundary law, whose objective equals scipy's supremum over the interior."""
    from normix._distributions import GIG
    from normix._distributions._gig_functions import gig_log_normalizer
    from normix._mixtures._gig_m_step import gig_m_step_with_boundary

    def _gig_objective(p, a, b, eta):
        return (p - 1) * eta[0] - b / 2 * eta[1] - a / 2 * eta[2] - gig_log_normalizer(p, a, b)

    # the statistics and current subordinator of the failing EM iteration
    eta = jnp.array([-0.07160349, 1.14368316, 1.0])
    current = GIG(jnp.array(-8.7333812), jnp.array(0.37157911), jnp.array(15.88980292))
    step = jax.jit(gig_m_step_with_boundary)
    new = step(eta, current)
    # a boundary law is only taken when the interior Newton solve did not succeed
    assert float(new.a) == 0.0 and float(new.p) < 0 and float(new.b) > 0
    ours = float(_gig_objective(new.p, new.a, new.b, eta))
    assert ours >= float(_gig_objective(current.p, current.a, current.b, eta))
    sup = _scipy_gig_objective_sup(eta, [(-8.7, np.log(0.37), np.log(15.9))])
    assert ours >= sup - 1e-10
    assert ours <= sup + 1e-9 * abs(sup)  # a real maximiser, not an overshoot

    # an interior eta (the expectation of a GIG law) gives that law back
    true = GIG(jnp.array(1.5), jnp.array(2.0), jnp.array(3.0))
    eta_in = normix.GIG.expectation_at(true.natural_params())
    got = step(eta_in, current)
    np.testing.assert_allclose([got.p, got.a, got.b], [1.5, 2.0, 3.0], rtol=1e-7)
    # NaN statistics give NaN parameters (the EM driver's `nonfinite` code), never a
    # silent value and never an exception mid-loop
    bad = step(jnp.full(3, jnp.nan), current)
    assert not np.isfinite([float(bad.p), float(bad.a), float(bad.b)]).any()


def test_fixed_p_gig_m_step_takes_the_boundary_maximiser():
    """Regression (the hyperbolic law, p = (d+1)/2 = 10.5, on the 20 stocks ended
    `nonfinite` at its first M-step): with p fixed, E[Y] E[1/Y] = 1.46 exceeds what GIG
    laws of that p reach (at most p/(p-1) = 1.105, the Gamma's), so the fixed-p Newton
    solve fails. The M-step returns the Gamma law GIG(p, 2p/E[Y], 0), whose objective is
    scipy's supremum over the interior; likewise the inverse Gamma for p < 0."""
    from normix._distributions import GIG
    from normix._distributions._gig_functions import gig_log_normalizer
    from normix._mixtures._gig_m_step import gig_m_step_fixed_p_with_boundary

    def objective(p, a, b, eta):
        return float(
            (p - 1) * eta[0] - b / 2 * eta[1] - a / 2 * eta[2] - gig_log_normalizer(p, a, b)
        )

    step = jax.jit(gig_m_step_fixed_p_with_boundary)
    # the statistics of the failing iteration (the hyperbolic fit's first E-step)
    eta = jnp.array([1.4586010244397087, 0.2842157947234593, 5.139028444006504])
    current = GIG(jnp.array(10.5), jnp.array(1.0), jnp.array(1.0))
    new = step(eta, current)
    assert float(new.p) == 10.5 and float(new.b) == 0.0
    np.testing.assert_allclose(float(new.a), 2 * 10.5 / float(eta[2]), rtol=1e-14)
    ours = objective(new.p, new.a, new.b, eta)
    assert ours >= objective(10.5, 1.0, 1.0, eta)
    fixed = dict(xatol=1e-12, maxiter=40000)
    starts = [(np.log(4.0), np.log(1e-3)), (0.0, 0.0)]
    sup = _scipy_gig_objective_sup(eta, starts, p=10.5, **fixed)
    assert ours >= sup - 1e-9 * abs(sup)
    assert ours <= sup + 1e-6 * abs(sup)  # a supremum approached as b -> 0

    # p < 0: the inverse-Gamma boundary (E Y E 1/Y = 2 > (-p)/(-p-1) = 1.5)
    eta_ig = jnp.array([0.1, 1.0, 2.0])
    cur_ig = GIG(jnp.array(-3.0), jnp.array(1.0), jnp.array(5.0))
    new_ig = step(eta_ig, cur_ig)
    assert float(new_ig.a) == 0.0
    np.testing.assert_allclose(float(new_ig.b), 6.0, rtol=1e-14)
    ours_ig = objective(new_ig.p, new_ig.a, new_ig.b, eta_ig)
    starts_ig = [(np.log(1e-3), np.log(6.0)), (0.0, 0.0)]
    sup_ig = _scipy_gig_objective_sup(eta_ig, starts_ig, p=-3.0, **fixed)
    assert sup_ig - 1e-9 * abs(sup_ig) <= ours_ig <= sup_ig + 1e-6 * abs(sup_ig)

    # an interior eta (the expectation of a GIG law of that p) gives that law back
    eta_in = normix.GIG.expectation_at(GIG(10.5, 2.0, 3.0).natural_params())
    got = step(eta_in, current)
    np.testing.assert_allclose([got.a, got.b], [2.0, 3.0], rtol=1e-7)
    # NaN statistics give NaN parameters (the EM driver's `nonfinite` code)
    bad = step(jnp.array([jnp.nan, jnp.nan, jnp.nan]), current)
    assert np.isnan(float(bad.a)) and np.isnan(float(bad.b))


def test_boundary_objective_matches_the_gig_normalizer():
    """The closed-form scores of inverse-Gamma and Gamma laws equal theta . eta - log Z
    with log Z from `gig_log_normalizer` (its a = 0 / b = 0 limits); interior laws and
    invalid parameters score -inf."""
    from normix._distributions._gig_boundary import boundary_objective as _boundary_objective
    from normix._distributions._gig_functions import gig_log_normalizer

    eta = jnp.array([-0.3, 1.7, 0.9])
    for p, a, b in [(-2.5, 0.0, 3.0), (-0.4, 0.0, 0.02), (4.0, 7.0, 0.0), (0.3, 0.5, 0.0)]:
        ref = (p - 1) * eta[0] - b / 2 * eta[1] - a / 2 * eta[2] - gig_log_normalizer(p, a, b)
        got = _boundary_objective(jnp.array(p), jnp.array(a), jnp.array(b), eta)
        np.testing.assert_allclose(float(got), float(ref), rtol=1e-13)
    for p, a, b in [(1.0, 2.0, 3.0), (2.0, 0.0, 3.0), (-2.0, 3.0, 0.0), (jnp.nan, 0.0, 1.0)]:
        got = _boundary_objective(jnp.array(p), jnp.array(a), jnp.array(b), eta)
        assert float(got) == -np.inf


@pytest.mark.slow
def test_free_p_gh_mixture_fits_two_nig_clusters():
    """GH components (p free) on two well-separated NIG clusters: a finite, monotone fit
    (no exception) that beats the true model's log-likelihood and classifies as well as
    the true model does."""
    comps = [
        normix.NormalInverseGaussian(
            jnp.array([-4.0, 0.0]), jnp.array([1.0, 0.5]), jnp.eye(2), 1.0, 1.0
        ),
        normix.NormalInverseGaussian(
            jnp.array([4.0, 2.0]), jnp.array([-0.5, 0.5]), 0.5 * jnp.eye(2), 1.0, 1.0
        ),
    ]
    truth = FiniteMixture(jnp.array([0.5, 0.5]), comps)
    x, labels = truth.sample_with_labels(jax.random.key(0), (2000,))
    result = fit_mixture(x, 2, component=normix.GeneralizedHyperbolic, key=jax.random.key(0))
    assert result.result == normix.EMResults.successful
    trace = np.asarray(result.trace)[: int(result.n_steps) + 1]
    assert np.all(np.isfinite(trace))
    assert np.all(np.diff(trace) >= -1e-9)
    assert float(result.log_likelihood) >= float(truth.score(x))
    labels = np.asarray(labels)
    ari = adjusted_rand_score(labels, np.asarray(result.model.predict(x)))
    ari_truth = adjusted_rand_score(labels, np.asarray(truth.predict(x)))
    assert ari_truth > 0.9
    assert ari >= ari_truth - 0.01


def test_reg_covar_keeps_gh_components_finite_on_a_constant_column():
    """`reg_covar` reaches Sigma_k before it is factorised: with a constant column the
    unregularised M-step estimate is singular, and regularising the factor afterwards (as
    before 2026-12-07) came too late (NaN at the first step)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    x[:100, :2] += 4.0
    x[:, 2] = 5.0
    res = fit_mixture(x, 2, component=normix.StudentT, reg_covar=1e-3, key=jax.random.key(0))
    assert res.result != normix.EMResults.nonfinite and int(res.n_steps) > 2
    stacked = res.model.components.model
    cov = np.asarray(eqx.filter_vmap(lambda m: m.covariance.as_matrix())(stacked))
    assert np.all(np.isfinite(cov))
    # the constant coordinate's dispersion is reg_covar (its scatter is 0), up to the
    # scale gauge's rescaling of Sigma (E[Y] = 1)
    assert np.all((cov[:, 2, 2] > 0.9e-3) & (cov[:, 2, 2] < 1.1e-3))
    # (not a monotone likelihood: the regularised M-step maximises no likelihood here,
    # which is unbounded as the constant coordinate's dispersion goes to 0)
    assert np.isfinite(float(res.log_likelihood))


@pytest.mark.slow
def test_degenerate_collapse_with_throw_false_returns_nonfinite():
    """A VG component collapsing onto a repeated point (its density is unbounded at mu):
    with `throw=False` the fit returns a `nonfinite` result holding the last finite
    iterate; a parameter check failing inside the loop used to raise instead."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    x = np.concatenate([x, np.repeat(x[:1], 100, axis=0)])
    res = fit_mixture(
        x, 2, component=normix.VarianceGamma, reg_covar=1e-3, key=jax.random.key(0), throw=False
    )
    assert res.result == normix.EMResults.nonfinite and int(res.n_steps) > 0
    leaves = jax.tree.leaves(eqx.filter(res.model, eqx.is_inexact_array))
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)
    assert np.isfinite(float(res.log_likelihood))
