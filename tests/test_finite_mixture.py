"""Finite mixtures with Gaussian components: scikit-learn parity, EM properties, degenerate
cases, sample weights, priors, model selection."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture

import normix
from normix import FiniteMixture, GaussianComponents, fit_mixture
from normix._finite._fit import gaussian_from_responsibilities
from normix._finite._gaussian import QuadraticRows

COV_TYPES = ("full", "tied", "diag", "spherical")


@pytest.fixture(scope="module")
def overlapping():
    """Three overlapping, correlated 3-D clusters (EM needs many iterations)."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [2.0, 1.0, 0.0], [0.5, 2.5, 1.0]])
    A = [np.eye(3), np.array([[1.0, 0.6, 0], [0, 0.8, 0.3], [0, 0, 1.2]]), 0.7 * np.eye(3)]
    X = np.concatenate(
        [rng.normal(size=(150, 3)) @ a.T + c for a, c in zip(A, centres, strict=True)]
    )
    return X[rng.permutation(len(X))]


@pytest.fixture(scope="module")
def separated():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
    labels = rng.integers(0, 3, size=300)
    return rng.normal(size=(300, 2)) + centres[labels], labels


def _sklearn_start(X, ct):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        g0 = GaussianMixture(3, covariance_type=ct, max_iter=1, random_state=3).fit(X)
    return g0.weights_, g0.means_, g0.precisions_


@pytest.mark.parametrize("ct", COV_TYPES)
def test_sklearn_parity(overlapping, ct):
    X = overlapping
    w0, m0, p0 = _sklearn_start(X, ct)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref = GaussianMixture(
            3,
            covariance_type=ct,
            max_iter=20,
            tol=0.0,
            weights_init=w0,
            means_init=m0,
            precisions_init=p0,
        ).fit(X)
    start = FiniteMixture(w0, GaussianComponents.from_precisions(m0, p0, ct))
    result = fit_mixture(X, 3, init=start, max_steps=20, tol=0.0)
    model = result.model
    assert int(result.n_steps) == 20
    # sklearn's score is the mean log-likelihood of the final parameters, as ours
    ll = float(result.log_likelihood)
    assert abs(ll / ref.score(X) - 1) <= 1e-8
    np.testing.assert_allclose(model.weights, ref.weights_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.components.means, ref.means_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(
        model.components.covariances, ref.covariances_, rtol=1e-8, atol=1e-10
    )
    np.testing.assert_allclose(model.components.precisions, ref.precisions_, rtol=1e-7, atol=1e-9)
    assert model.n_parameters() == ref._n_parameters()
    np.testing.assert_allclose(float(model.bic(X)), ref.bic(X), rtol=1e-10)
    np.testing.assert_allclose(float(model.aic(X)), ref.aic(X), rtol=1e-10)
    np.testing.assert_allclose(model.predict_proba(X), ref.predict_proba(X), atol=1e-8)
    np.testing.assert_allclose(model.log_prob(X), ref.score_samples(X), rtol=1e-10)
    # EM is monotone (reg_covar is tiny here)
    assert np.all(np.diff(np.asarray(result.trace)) >= -1e-12)


def test_log_prob_matches_scipy_and_proba_rows(separated, getkey):
    X, _ = separated
    result = fit_mixture(X, 3, key=getkey(), covariance="full")
    m = result.model
    cov = np.asarray(m.covariances)
    dens = sum(
        float(m.weights[k]) * stats.multivariate_normal(np.asarray(m.means[k]), cov[k]).pdf(X)
        for k in range(3)
    )
    np.testing.assert_allclose(m.log_prob(X), np.log(dens), rtol=1e-10)
    proba = np.asarray(m.predict_proba(X))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(m.predict(X), proba.argmax(axis=1))
    # one observation and a batch shape
    np.testing.assert_allclose(m.log_prob(X[0]), m.log_prob(X)[0], rtol=1e-12)
    assert m.predict_proba(X.reshape(10, 30, 2)).shape == (10, 30, 3)
    # monotone and converged
    trace = np.asarray(result.trace)[: int(result.n_steps) + 1]
    assert np.all(np.diff(trace) >= -1e-12)
    assert bool(result.converged)


def test_kmeans_plus_plus_recovers_separated_clusters(separated, key):
    from sklearn.metrics import adjusted_rand_score

    X, labels = separated
    centres, assign = normix._finite.kmeans_plus_plus(key, jnp.asarray(X), jnp.ones(len(X)), 3)
    assert adjusted_rand_score(labels, np.asarray(assign)) > 0.97
    result = fit_mixture(X, 3, key=key, covariance="spherical")
    assert adjusted_rand_score(labels, np.asarray(result.model.predict(X))) > 0.97


def test_n_init_batch_equals_separate_fits(overlapping, key):
    X = overlapping
    kwargs = dict(covariance="diag", max_steps=30, tol=0.0, init="random")
    best = fit_mixture(X, 3, n_init=3, key=key, **kwargs)
    singles = [fit_mixture(X, 3, key=k, **kwargs) for k in jr.split(key, 3)]
    lls = np.array([float(r.log_likelihood) for r in singles])
    i = int(np.argmax(lls))
    np.testing.assert_allclose(float(best.log_likelihood), lls[i], rtol=1e-12)
    np.testing.assert_allclose(best.model.weights, singles[i].model.weights, rtol=1e-10)
    np.testing.assert_allclose(
        best.model.components.means, singles[i].model.components.means, rtol=1e-10, atol=1e-12
    )


def test_sample_moments(key):
    comps = GaussianComponents.from_covariances(
        jnp.array([[0.0, 0.0], [3.0, -1.0]]),
        jnp.array([[[1.0, 0.3], [0.3, 0.5]], [[0.4, -0.1], [-0.1, 0.9]]]),
        "full",
    )
    m = FiniteMixture(jnp.array([0.3, 0.7]), comps)
    n = 200_000
    x, labels = m.sample_with_labels(key, (n,))
    assert x.shape == (n, 2)
    se_mean = np.sqrt(np.diag(np.asarray(m.cov())) / n)
    np.testing.assert_array_less(np.abs(np.asarray(x.mean(0) - m.mean())), 5 * se_mean)
    np.testing.assert_allclose(np.cov(np.asarray(x).T), m.cov(), atol=0.02)
    assert abs(float(jnp.mean(labels == 1)) - 0.7) < 5 * np.sqrt(0.21 / n)


def test_frequency_weights_equal_replicated_rows(overlapping):
    X = overlapping[:200]
    counts = np.random.default_rng(2).integers(0, 4, size=len(X))
    w0, m0, p0 = _sklearn_start(X, "full")
    start = FiniteMixture(w0, GaussianComponents.from_precisions(m0, p0, "full"))
    weighted = fit_mixture(X, 3, init=start, weights=counts.astype(float), max_steps=15, tol=0.0)
    replicated = fit_mixture(np.repeat(X, counts, axis=0), 3, init=start, max_steps=15, tol=0.0)
    np.testing.assert_allclose(weighted.log_likelihood, replicated.log_likelihood, rtol=1e-10)
    np.testing.assert_allclose(
        weighted.model.components.covariances, replicated.model.components.covariances, rtol=1e-9
    )
    Xr = np.repeat(X, counts, axis=0)
    np.testing.assert_allclose(
        float(weighted.model.bic(X, counts.astype(float))),
        float(replicated.model.bic(Xr)),
        rtol=1e-10,
    )


def test_dirichlet_and_covariance_priors(overlapping):
    X = jnp.asarray(overlapping)
    n = X.shape[0]
    w0, m0, p0 = _sklearn_start(overlapping, "full")
    mle = FiniteMixture(w0, GaussianComponents.from_precisions(m0, p0, "full"))
    stats_ = mle.e_step(X, jnp.ones(n))
    alpha = 5.0
    map_model = FiniteMixture(
        w0, GaussianComponents.from_precisions(m0, p0, "full"), weight_concentration=alpha
    ).m_step(stats_)
    expected = (n * stats_.mass + alpha - 1) / (n + 3 * (alpha - 1))
    np.testing.assert_allclose(map_model.weights, expected, rtol=1e-12)
    # conjugate covariance shrinkage: (N_k S_k + nu Psi)/(N_k + nu) + reg
    nu, psi = 10.0, jnp.array([1.0, 2.0, 3.0])
    shrunk = FiniteMixture(
        w0,
        GaussianComponents.from_precisions(m0, p0, "full", prior_strength=nu, prior_scale=psi),
    ).m_step(stats_)
    plain = mle.m_step(stats_)
    Nk = n * stats_.mass
    eye = jnp.eye(3)[None]
    S = plain.components.covariances - 1e-6 * eye
    want = (Nk[:, None, None] * S + nu * jnp.diag(psi)[None]) / (
        Nk[:, None, None] + nu
    ) + 1e-6 * eye
    np.testing.assert_allclose(shrunk.components.covariances, want, rtol=1e-9)


def test_emptied_component_keeps_parameters(separated):
    X, _ = separated
    far = jnp.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0], [500.0, 500.0]])
    start = FiniteMixture(
        jnp.array([0.3, 0.3, 0.3, 0.1]),
        GaussianComponents.from_covariances(far, jnp.ones(4), "spherical"),
    )
    result = fit_mixture(X, 4, init=start, max_steps=10, tol=0.0)
    m = result.model
    assert bool(jnp.all(jnp.isfinite(m.components.means)))
    assert float(m.weights[3]) < 1e-12
    np.testing.assert_array_equal(m.components.means[3], far[3])
    assert np.all(np.isfinite(np.asarray(m.predict_proba(X))))


def test_duplicate_points_and_collapse_are_finite(key):
    rng = np.random.default_rng(4)
    X = np.concatenate([np.tile([[1.0, 2.0]], (40, 1)), rng.normal(size=(60, 2)) + 5])
    result = fit_mixture(X, 2, key=key, covariance="full")
    m = result.model
    assert bool(jnp.all(jnp.isfinite(m.components.covariances)))
    assert np.isfinite(float(result.log_likelihood))
    # the collapsed component has covariance reg_covar * I
    k = int(jnp.argmin(jnp.abs(m.means[:, 0] - 1.0)))
    np.testing.assert_allclose(m.covariances[k], 1e-6 * np.eye(2), rtol=1e-6, atol=1e-12)


def test_errors(key):
    X = np.concatenate([np.zeros((5, 2)), np.ones((5, 2))])
    with pytest.raises(ValueError, match="distinct data points"):
        fit_mixture(X, 3, key=key)
    with pytest.raises(ValueError, match="exceeds the number of observations"):
        fit_mixture(X, 11, key=key)
    with pytest.raises(ValueError, match="covariance"):
        fit_mixture(X, 2, key=key, covariance="banana")
    with pytest.raises(ValueError, match="only available for MultivariateNormal"):
        fit_mixture(X, 2, key=key, component=normix.NormalInverseGaussian, covariance="diag")
    with pytest.raises(ValueError, match="weights"):
        FiniteMixture(
            jnp.ones(3) / 3, GaussianComponents(jnp.zeros((2, 2)), jnp.ones(2), "spherical")
        )
    with pytest.raises(ValueError, match="precisions_cholesky"):
        GaussianComponents(jnp.zeros((2, 2)), jnp.ones(3), "spherical")
    with pytest.raises(TypeError, match="fit_mixture"):
        normix.fit(FiniteMixture, X)


def test_select_mixture_bic_picks_true_k(separated, key):
    X, _ = separated
    sel = normix.select_mixture(X, n_components=(2, 3, 4), covariance="spherical", key=key)
    assert sel.best.n_components == 3
    assert sel.best_candidate.n_components == 3
    bics = [c.bic for c in sel.candidates]
    assert bics == sorted(bics)
    assert "BIC" in sel.table()
    assert min(sel.candidates, key=lambda c: c.icl).n_components == 3
    assert min(sel.candidates, key=lambda c: c.aic).n_components == 3
    best = sel.best_candidate
    np.testing.assert_allclose(best.bic, float(best.result.model.bic(X)), rtol=1e-12)


@pytest.mark.slow
def test_vmap_over_datasets_equals_loop(key):
    """The whole fit (init + EM) maps over datasets in one call."""
    keys = jr.split(key, 4)
    data = jax.vmap(
        lambda k: jr.normal(k, (60, 2)) + jnp.where(jr.bernoulli(k, 0.5, (60, 1)), 4.0, 0.0)
    )(keys)

    def one(x, k):
        start = normix._finite.initial_mixture(k, x, jnp.ones(60), 2, covariance="diag")
        return normix.fit(start, x, solver=normix.MixtureEM(tol=0.0), max_steps=10, throw=False)

    batched = jax.vmap(one)(data, keys)
    for i in range(4):
        single = one(data[i], keys[i])
        np.testing.assert_allclose(batched.log_likelihood[i], single.log_likelihood, rtol=1e-10)


def test_chunked_e_step_matches_one_block(overlapping, key):
    """Row blocks (with quadratic features for "full") give the same fit as one block."""
    X = overlapping
    kwargs = dict(key=key, covariance="full", max_steps=15, tol=0.0)
    one = fit_mixture(X, 3, chunk_size=None, **kwargs)
    chunked = fit_mixture(X, 3, chunk_size=128, **kwargs)  # 450 rows: 4 blocks, padded
    assert chunked.model.components.quadratic_features
    np.testing.assert_allclose(chunked.log_likelihood, one.log_likelihood, rtol=1e-12)
    np.testing.assert_allclose(
        chunked.model.components.covariances, one.model.components.covariances, rtol=1e-9
    )
    np.testing.assert_allclose(chunked.trace, one.trace, rtol=1e-12)


def test_cached_features_match_per_block_features(overlapping, key):
    """Inside `fit`, "full" components with quadratic features get the rows' features once
    (`em_data` builds `QuadraticRows`: both layouts, centred at the data mean) instead of in
    every block of every iteration. Same iterates as rebuilding them per block, and the
    budget `feature_cache_bytes` decides which path runs."""
    X = jnp.asarray(overlapping)
    n, d = X.shape
    w = jnp.ones(n)
    start = normix._finite.initial_mixture(key, X, w, 3, covariance="full", chunk_size=128)
    assert start.components.quadratic_features
    rows = start.em_data(X, w)
    F = d * (d + 1) // 2 + d
    assert isinstance(rows, QuadraticRows)
    assert rows.f.shape == (n, F) and rows.fT.shape == (F, n)
    np.testing.assert_allclose(rows.center, jnp.mean(X, axis=0), rtol=1e-12)
    need = 2 * n * F * 8

    def with_budget(budget):
        return FiniteMixture(
            start.weights, start.components, chunk_size=128, feature_cache_bytes=budget
        )

    assert isinstance(with_budget(need).em_data(X, w), QuadraticRows)
    assert with_budget(need - 1).em_data(X, w) is X
    solver = normix.MixtureEM(tol=0.0)

    def fit_program(budget):
        return str(
            jax.make_jaxpr(
                lambda x: (
                    normix.fit(
                        with_budget(budget), x, solver=solver, max_steps=2, throw=False
                    ).log_likelihood
                )
            )(X)
        )

    # `fit` hands the transposed features to its loop only when they fit the budget
    assert f"f64[{F},{n}]" in fit_program(need)
    assert f"f64[{F},{n}]" not in fit_program(0)
    cached = normix.fit(with_budget(need), X, solver=solver, max_steps=15, throw=False)
    per_block = normix.fit(with_budget(0), X, solver=solver, max_steps=15, throw=False)
    np.testing.assert_allclose(cached.trace, per_block.trace, rtol=1e-12)
    np.testing.assert_allclose(
        cached.model.components.covariances, per_block.model.components.covariances, rtol=1e-9
    )
    # vmapped starts share the (unbatched) cached features and equal separate fits
    other = normix._finite.initial_mixture(
        jr.fold_in(key, 1), X, w, 3, covariance="full", chunk_size=128
    )
    other = FiniteMixture(  # the same static settings: `fit` reuses the cached program
        other.weights, other.components, chunk_size=128, feature_cache_bytes=need
    )
    starts = jax.tree.map(lambda *a: jnp.stack(a), other, with_budget(need))
    _, each = normix.fit_multistart(starts, X, solver=solver, max_steps=15, throw=False)
    np.testing.assert_allclose(each.trace[1], cached.trace, rtol=1e-12)
    alone = normix.fit(other, X, solver=solver, max_steps=15, throw=False)
    np.testing.assert_allclose(each.trace[0], alone.trace, rtol=1e-12)
    with pytest.raises(ValueError, match="feature_cache_bytes"):
        with_budget(-1)


def test_float32_chunked_e_step_whitens_and_stays_accurate(key):
    """In float32 the chunked "full" E-step whitens instead of expanding quadratic features:
    clusters far from the centre of the means make the expansion cancel large terms. Its
    log-likelihood then agrees with float64 to float32 rounding."""
    k1, k2 = jr.split(key)
    d, n = 6, 1024
    labels = jr.bernoulli(k1, 0.5, (n, 1))
    X = jr.normal(k2, (n, d)) * 0.5 + jnp.where(labels, 12.0, -12.0)
    resp = jnp.concatenate([labels, ~labels], axis=1).astype(X.dtype)
    w = jnp.ones(n)
    lls = {}
    build = eqx.filter_jit(
        lambda X, w, r: gaussian_from_responsibilities(X, w, r, "full", chunk_size=256)
    )
    log_likelihood = eqx.filter_jit(lambda m, X, w: m.log_likelihood(X, w))
    for dtype in (jnp.float64, jnp.float32):
        Xd, wd = X.astype(dtype), w.astype(dtype)
        m = build(Xd, wd, resp.astype(dtype))
        assert m.components.quadratic_features == (dtype == jnp.float64)
        lls[dtype] = float(log_likelihood(m, Xd, wd))
    np.testing.assert_allclose(lls[jnp.float32], lls[jnp.float64], rtol=2e-6)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_float32_far_apart_clusters_keep_their_covariances(ct):
    """Clusters 1000 standard deviations apart, in float32: the statistics are centred at
    each component's mean (and the diag / spherical distances taken directly), so the fit
    matches the float64 fit to float32 accuracy. Centred at one common point, the
    variances came out 1.38 instead of 0.97 (full), and sigma = 0.1 ended NaN at step 0."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0.0, 1.0, (500, 2)), rng.normal(1000.0, 0.1, (500, 2))])
    fits = {
        dt: fit_mixture(X.astype(dt), 2, covariance=ct, key=jr.key(0), max_steps=20, tol=0.0)
        for dt in (np.float32, np.float64)
    }
    f32, f64 = fits[np.float32], fits[np.float64]
    assert f32.model.weights.dtype == jnp.float32
    np.testing.assert_allclose(f32.log_likelihood, f64.log_likelihood, rtol=1e-5)

    # the seeding differs between dtypes: compare components ordered by their means
    def ordered(r):
        cov = np.asarray(r.model.components.covariances)
        if ct == "tied":
            return cov
        return cov[np.argsort(np.asarray(r.model.components.means)[:, 0])]

    np.testing.assert_allclose(ordered(f32), ordered(f64), rtol=2e-3, atol=1e-6)


def test_init_model_with_conflicting_settings_and_numpy_counts():
    X = np.random.default_rng(0).normal(size=(60, 2))
    comps = GaussianComponents.from_covariances(
        jnp.array([[0.0, 0.0], [1.0, 1.0]]), jnp.stack([jnp.eye(2)] * 2)
    )
    init = FiniteMixture(jnp.array([0.5, 0.5]), comps)
    for kw in ({"reg_covar": 0.5}, {"weight_concentration": 2.0}, {"covariance_prior": 1.0}):
        with pytest.raises(ValueError, match=next(iter(kw))):
            fit_mixture(X, 2, init=init, **kw)
    a = fit_mixture(X, np.int64(2), n_init=np.int32(2), key=jr.key(0))
    b = fit_mixture(X, 2, n_init=2, key=jr.key(0))
    np.testing.assert_array_equal(a.log_likelihood, b.log_likelihood)
    for bad in (0, 2.0, True, "2"):
        with pytest.raises(ValueError, match="n_components"):
            fit_mixture(X, bad, key=jr.key(0))
