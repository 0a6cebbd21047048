"""Factor normal variance-mean mixtures, Sigma = F F^T + diag(D) (normix issue #5).

References used: dense linear algebra (numpy), the full-Sigma mixtures (whose densities
are tested against scipy elsewhere), the data-generating parameters of simulated data,
and the first-order optimality of EM fixed points (the gradient of the log-likelihood,
by autodiff, vanishes at a converged fit).
"""

import equinox as eqx
import jax
import jax.extend
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import normix
from normix._covariance import LowRankPlusDiagonal
from normix._mixtures._factor import blockwise_sum
from normix._mixtures._factor_init import factor_analysis_start


def _factor_cov(key, d, r, dtype=jnp.float64):
    k1, k2 = jr.split(key)
    F = jr.normal(k1, (d, r), dtype=dtype)
    D = 0.5 * jnp.exp(0.3 * jr.normal(k2, (d,), dtype=dtype))
    return F, D


# ---------------------------------------------------------------- Woodbury parts
def test_woodbury_parts_match_dense(getkey):
    d, r, n = 23, 4, 7
    F, D = _factor_cov(getkey(), d, r)
    cov = LowRankPlusDiagonal(F, D)
    S = np.asarray(F) @ np.asarray(F).T + np.diag(np.asarray(D))
    S_inv = np.linalg.inv(S)
    x = np.asarray(jr.normal(getkey(), (n, d)))
    q, m = cov.mahalanobis_and_scores(jnp.asarray(x))
    np.testing.assert_allclose(q, np.einsum("ni,ij,nj->n", x, S_inv, x), rtol=1e-10)
    np.testing.assert_allclose(m, x @ S_inv @ np.asarray(F), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        cov.capacitance_inverse(), np.eye(r) - np.asarray(F).T @ S_inv @ np.asarray(F), atol=1e-12
    )
    np.testing.assert_allclose(cov.quad_form(jnp.asarray(x[0])), x[0] @ S_inv @ x[0], rtol=1e-10)
    np.testing.assert_allclose(cov.logdet(), np.linalg.slogdet(S)[1], rtol=1e-12)
    np.testing.assert_allclose(cov.solve(jnp.asarray(x.T)), S_inv @ x.T, rtol=1e-9, atol=1e-12)


def test_canonical_rotation(getkey):
    d, r = 15, 3
    F, D = _factor_cov(getkey(), d, r)
    Q = jnp.linalg.qr(jr.normal(getkey(), (r, r)))[0]
    a = LowRankPlusDiagonal(F, D).canonical()
    b = LowRankPlusDiagonal(F @ Q, D).canonical()  # same Sigma, rotated loadings
    np.testing.assert_allclose(a.as_matrix(), LowRankPlusDiagonal(F, D).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(a.F, b.F, atol=1e-10)  # rotation removed
    gram = (a.F / a.D[:, None]).T @ a.F
    np.testing.assert_allclose(gram - jnp.diag(jnp.diag(gram)), 0.0, atol=1e-10)
    assert jnp.all(jnp.diff(jnp.diag(gram)) < 0)


def test_sample_covariance_monte_carlo(key):
    d, r, n = 6, 2, 200_000
    F, D = _factor_cov(jr.key(3), d, r)
    cov = LowRankPlusDiagonal(F, D)
    z = np.asarray(cov.sample_noise(key, (n,)))
    S = np.asarray(cov.as_matrix())
    emp = z.T @ z / n
    se = np.sqrt((S * S + np.outer(np.diag(S), np.diag(S))) / n)  # Var of a Gaussian product
    assert np.all(np.abs(emp - S) < 5 * se)


def test_no_dense_matrices_in_em_step(getkey):
    """The E-step, M-step and log-density never build a d x d (or n x d x d) array."""
    d, r, n = 37, 3, 53
    F, D = _factor_cov(getkey(), d, r)
    model = normix.FactorNormalInverseGaussian(jnp.zeros(d), 0.1 * jnp.ones(d), F, D, 1.0, 2.0)
    x = jr.normal(getkey(), (n, d))
    w = jnp.ones(n)

    def step(m):
        stats, ll = m.e_step_with_log_likelihood(x, w)
        return m.m_step(stats), ll, m.log_prob(x)

    jaxpr = jax.make_jaxpr(step)(model)

    def shapes(jp):
        for eqn in jp.eqns:
            for v in eqn.outvars:
                yield getattr(v.aval, "shape", ())
            for p in eqn.params.values():
                for item in p if isinstance(p, (tuple, list)) else (p,):
                    if isinstance(item, jax.extend.core.ClosedJaxpr):
                        yield from shapes(item.jaxpr)
                    elif isinstance(item, jax.extend.core.Jaxpr):
                        yield from shapes(item)

    bad = [s for s in shapes(jaxpr.jaxpr) if sum(1 for k in s if k == d) >= 2]
    assert not bad, f"dense d x d intermediates: {bad[:5]}"


def test_blockwise_sum_matches_direct(getkey):
    x = jr.normal(getkey(), (1000, 3))
    w = jr.uniform(getkey(), (1000,))

    def fn(xb, wb):
        return {"s": wb @ xb, "q": (xb * wb[:, None]).T @ xb, "t": jnp.sum(wb)}

    direct = fn(x, w)
    for block in (1000, 999, 333, 64, 7):
        got = blockwise_sum(fn, x, w, block=block)
        for k in direct:
            np.testing.assert_allclose(got[k], direct[k], rtol=1e-12)


# ---------------------------------------------------------------- the law
def test_log_prob_matches_full_sigma_mixture(getkey):
    d, r = 9, 2
    F, D = _factor_cov(getkey(), d, r)
    mu, gamma = jr.normal(getkey(), (d,)), 0.3 * jr.normal(getkey(), (d,))
    fac = normix.FactorGeneralizedHyperbolic(mu, gamma, F, D, -1.3, 0.7, 1.9)
    full = normix.GeneralizedHyperbolic(mu, gamma, fac.covariance.as_matrix(), -1.3, 0.7, 1.9)
    x = mu[None, :] + 2.0 * jr.normal(getkey(), (20, d))
    np.testing.assert_allclose(fac.log_prob(x), full.log_prob(x), rtol=1e-11)
    np.testing.assert_allclose(fac.log_prob(x[0]), full.log_prob(x[0]), rtol=1e-11)
    np.testing.assert_allclose(fac.mean(), full.mean(), rtol=1e-12)
    np.testing.assert_allclose(fac.cov(), full.cov(), rtol=1e-12)
    assert fac.rank == r and fac.loadings.shape == (d, r)
    assert fac.n_parameters() == 3 * d + d * r - 1 + 3 - 1


def test_factor_analysis_start_matches_dense_fa(getkey):
    """The O(n d r) start equals factor analysis computed from the dense covariance."""
    d, r, n = 12, 2, 4000
    F, D = _factor_cov(getkey(), d, r)
    x = LowRankPlusDiagonal(F, D).sample_noise(getkey(), (n,)) + 1.0
    mean, cov = factor_analysis_start(x, jnp.ones(n), r, fa_steps=500)
    xc = np.asarray(x) - np.asarray(x).mean(0)
    S = xc.T @ xc / n
    np.testing.assert_allclose(mean, np.asarray(x).mean(0), rtol=1e-12)
    # dense FA EM from the same start converges to the same stationary point; check the
    # FA stationarity conditions directly: diag(S - Sigma) = 0 and (S - Sigma) Sigma^-1 F = 0
    Sig = np.asarray(cov.as_matrix())
    Fh = np.asarray(cov.F)
    np.testing.assert_allclose(np.diag(S - Sig), 0.0, atol=1e-6)
    np.testing.assert_allclose((S - Sig) @ np.linalg.solve(Sig, Fh), 0.0, atol=1e-5)
    rel = np.linalg.norm(Sig - np.asarray(LowRankPlusDiagonal(F, D).as_matrix()))
    assert rel / np.linalg.norm(Sig) < 0.1


# ---------------------------------------------------------------- EM
D_SIM, R_SIM, N_SIM = 12, 2, 3000


# compiled once each and shared by the tests below (eager calls run op by op)
_em_step = eqx.filter_jit(lambda m, x, w: m.m_step(m.e_step(x, w)))
_log_likelihood = eqx.filter_jit(lambda m, x, w: m.log_likelihood(x, w))
_half_step = eqx.filter_jit(lambda m, x, w: m._half_step(x, w))


@pytest.fixture(scope="module")
def nig_case():
    k1, k2 = jr.split(jr.key(7))
    F, D = _factor_cov(k1, D_SIM, R_SIM)
    mu = jnp.linspace(-0.5, 0.5, D_SIM)
    gamma = 0.3 * jnp.cos(jnp.arange(D_SIM, dtype=jnp.float64))
    true = normix.FactorNormalInverseGaussian(mu, gamma, F, D, 1.0, 1.5)
    x = true.sample(k2, (N_SIM,))
    res = normix.fit(normix.FactorNormalInverseGaussian, x, rank=R_SIM, max_steps=300)
    return true, x, res


def test_em_recovers_sigma_and_subordinator(nig_case):
    true, x, res = nig_case
    assert res.result == normix.EMResults.successful
    trace = np.asarray(res.trace[: int(res.n_steps) + 1])
    assert np.all(np.diff(trace) >= -1e-10 * (1 + np.abs(trace[:-1])))  # monotone
    S_hat = np.asarray(res.model.covariance.as_matrix())
    S = np.asarray(true.covariance.as_matrix())
    assert np.linalg.norm(S_hat - S) / np.linalg.norm(S) < 0.08
    np.testing.assert_allclose(res.model.subordinator.mu, 1.0, rtol=1e-8)  # gauge
    assert abs(float(res.model.subordinator.lam) / 1.5 - 1) < 0.25
    xs = np.asarray(x)
    se = xs.std(0) / np.sqrt(xs.shape[0])
    assert np.all(np.abs(np.asarray(res.model.mean()) - xs.mean(0)) < 3 * se)
    # the MLE beats the data-generating parameters on the same data
    w = jnp.ones(x.shape[0])
    assert float(res.log_likelihood) >= float(_log_likelihood(true, x, w))
    np.testing.assert_allclose(res.log_likelihood, _log_likelihood(res.model, x, w), rtol=1e-12)
    # N_SIM > BLOCK_ROWS: the blocked log-likelihood equals the unblocked log-density
    log_prob = eqx.filter_jit(lambda m, x: m.log_prob(x))
    np.testing.assert_allclose(res.log_likelihood, jnp.mean(log_prob(res.model, x)), rtol=1e-12)


@pytest.mark.slow
def test_em_fixed_point_is_stationary(nig_case):
    """At convergence the gradient of the observed log-likelihood vanishes (an
    independent check of the E- and M-step formulas)."""
    _, x, res = nig_case
    w = jnp.ones(x.shape[0])
    params, static = eqx.partition(res.model, eqx.is_inexact_array)

    def ll(p):
        return eqx.combine(p, static).log_likelihood(x, w)

    g = jax.grad(ll)(params)
    m = res.model
    grads = {
        "mu": g.mixture.joint.mu,
        "gamma": g.mixture.joint.gamma,
        "F": g.mixture.joint.covariance.F,
        "D": g.mixture.joint.covariance.D,
    }
    for name, value in grads.items():
        assert float(jnp.max(jnp.abs(value))) < 2e-4, name
    assert m.loadings.shape == (D_SIM, R_SIM)


def test_fit_argument_errors(nig_case):
    true, x, _ = nig_case
    with pytest.raises(ValueError, match="rank"):
        normix.fit(normix.FactorNormalInverseGaussian, x)
    with pytest.raises(ValueError, match=f"got rank={D_SIM}"):  # the value, not a tracer
        normix.fit(normix.FactorNormalInverseGaussian, x, rank=np.int64(D_SIM))
    # a NumPy integer (e.g. from np.arange) is a rank like a Python int (traced only: the
    # shapes of the result say which rank was fitted)
    shapes = jax.eval_shape(
        lambda: normix.fit(
            normix.FactorNormalInverseGaussian, x, rank=np.int64(2), max_steps=2, throw=False
        )
    )
    assert shapes.model.loadings.shape == (x.shape[1], 2)
    with pytest.raises(TypeError, match="model class"):
        normix.fit(true, x, rank=2)
    with pytest.raises(TypeError, match="ECM"):
        normix.fit(true, x, solver=normix.ECM())
    with pytest.raises(ValueError, match="min_diag"):
        normix.FactorNormalInverseGaussian(
            true.mu, true.gamma, true.loadings, true.uniquenesses, 1.0, 1.0, min_diag=1.5
        )


# ---------------------------------------------------------------- slow
@pytest.mark.slow
def test_gh_em_recovers_sigma_and_gig():
    d, r, n = 20, 3, 6000
    k1, k2 = jr.split(jr.key(11))
    F, D = _factor_cov(k1, d, r)
    true = normix.FactorGeneralizedHyperbolic(
        jnp.zeros(d), 0.2 * jnp.ones(d) / jnp.sqrt(d), F, D, -0.5, 1.0, 1.0
    )
    x = true.sample(k2, (n,))
    res = normix.fit(normix.FactorGeneralizedHyperbolic, x, rank=r, max_steps=500)
    trace = np.asarray(res.trace[: int(res.n_steps) + 1])
    assert np.all(np.diff(trace) >= -1e-9 * (1 + np.abs(trace[:-1])))
    S_hat = np.asarray(res.model.covariance.as_matrix())
    S = np.asarray(true.covariance.as_matrix())
    assert np.linalg.norm(S_hat - S) / np.linalg.norm(S) < 0.06
    p, a, b = res.model.subordinator.gig_params()
    # GIG(-1/2, 1, 1) has E[Y] = 1 (already in the gauge); p is weakly identified
    assert abs(float(p) + 0.5) < 0.5 and abs(float(a) - 1) < 0.4 and abs(float(b) - 1) < 0.4
    assert float(res.log_likelihood) >= float(true.log_likelihood(x, jnp.ones(n)))


@pytest.mark.slow
def test_rank_d_minus_one_approaches_full_sigma():
    """Sigma = FF^T + D with r = d - 1 can represent every covariance, so the factor fit
    reaches the full-Sigma optimum."""
    d, n = 4, 2000
    k1, k2 = jr.split(jr.key(5))
    A = jr.normal(k1, (d, d))
    full_true = normix.NormalInverseGaussian(
        jnp.zeros(d), 0.2 * jnp.ones(d), A @ A.T + jnp.eye(d), 1.0, 2.0
    )
    x = full_true.sample(k2, (n,))
    full = normix.fit(normix.NormalInverseGaussian, x, max_steps=2000)
    fac = normix.fit(normix.FactorNormalInverseGaussian, x, rank=d - 1, max_steps=3000, throw=False)
    gap = float(full.log_likelihood - fac.log_likelihood)
    assert -1e-6 < gap < 2e-4, gap
    rel = np.linalg.norm(fac.model.covariance.as_matrix() - full.model.covariance.as_matrix())
    assert rel / np.linalg.norm(full.model.covariance.as_matrix()) < 0.02


@pytest.mark.slow
@pytest.mark.parametrize(
    "cls",
    [normix.FactorVarianceGamma, normix.FactorNormalInverseGamma],
    ids=lambda c: c.__name__,
)
def test_other_families_fit_monotone(cls):
    d, r, n = 10, 2, 3000
    k1, k2 = jr.split(jr.key(13))
    F, D = _factor_cov(k1, d, r)
    true = normix.FactorNormalInverseGaussian(jnp.zeros(d), 0.2 * jnp.ones(d), F, D, 1.0, 1.0)
    x = true.sample(k2, (n,))
    res = normix.fit(cls, x, rank=r, max_steps=500)
    trace = np.asarray(res.trace[: int(res.n_steps) + 1])
    assert np.all(np.diff(trace) >= -1e-9 * (1 + np.abs(trace[:-1])))
    S_hat = np.asarray(res.model.covariance.as_matrix())

    # compare shapes of Sigma (the families' gauges differ): correlation matrices
    def corr(S):
        s = np.sqrt(np.diag(S))
        return S / np.outer(s, s)

    S = np.asarray(true.covariance.as_matrix())
    assert np.max(np.abs(corr(S_hat) - corr(S))) < 0.08


@pytest.mark.slow
def test_min_diag_floor_is_applied():
    d, r, n = 8, 2, 1500
    k1, k2 = jr.split(jr.key(17))
    F, D = _factor_cov(k1, d, r)
    true = normix.FactorNormalInverseGaussian(jnp.zeros(d), jnp.zeros(d), F, D, 1.0, 1.0)
    x = true.sample(k2, (n,))
    res = normix.fit(normix.FactorNormalInverseGaussian, x, rank=r, min_diag=0.3, max_steps=1000)
    var = np.var(np.asarray(x), axis=0)
    D_hat = np.asarray(res.model.uniquenesses)
    assert np.all(D_hat >= 0.3 * var * (1 - 1e-12))
    assert np.any(np.isclose(D_hat, 0.3 * var, rtol=1e-10))  # the floor binds somewhere


@pytest.mark.parametrize("shape", [3.05, 3.5])
def test_variance_gamma_em_step_on_a_cusp_is_finite_and_the_limit(shape):
    # mu on an observation, d/2 < shape <= d/2 + 1: E[1/Y | x_j] = inf, finite density.
    # The step keeps mu there, drops x_j's vanishing 1/Y terms (resid = m = 0) and ascends.
    d, r, n = 6, 2, 400
    k1, _, k3 = jr.split(jr.key(0), 3)
    F, D = _factor_cov(k1, d, r)
    vg = normix.FactorVarianceGamma(jnp.zeros(d), 0.2 * jnp.ones(d), F, D, shape, shape)
    x = vg.sample(k3, (n,))
    w = jnp.ones(n)
    on_cusp = eqx.tree_at(lambda m: m.mixture.joint.mu, vg, x[5])
    new = _em_step(on_cusp, x, w)
    leaves = jax.tree.leaves(eqx.filter(new, eqx.is_inexact_array))
    assert all(bool(jnp.all(jnp.isfinite(v))) for v in leaves)
    np.testing.assert_array_equal(np.asarray(new.mu), np.asarray(x[5]))
    assert float(_log_likelihood(new, x, w)) >= float(_log_likelihood(on_cusp, x, w))
    half, _ = _half_step(on_cusp, x, w / n)
    if shape == 3.05:
        # cycle 2 (at the half step's shape) is on the cusp too
        assert float(half.subordinator.shape) <= 0.5 * d + 1
        return
    # cycle 1 alone on the cusp (posterior order 1/2): the ordinary step from
    # mu = x_j + 1e-9 tends to it. (Near order 0 the GIG moments approach their b = 0
    # limit only like b^order, so no such comparison is possible for shape 3.05.)
    assert float(half.subordinator.shape) > 0.5 * d + 1
    near = eqx.tree_at(lambda m: m.mixture.joint.mu, vg, x[5] + 1e-9)
    limit = _em_step(near, x, w)
    np.testing.assert_allclose(np.asarray(limit.mu), np.asarray(new.mu), rtol=0, atol=1e-6)
    for part in (
        lambda m: m.gamma,
        lambda m: m.covariance.as_matrix(),
        lambda m: m.subordinator.shape,
    ):
        np.testing.assert_allclose(np.asarray(part(limit)), np.asarray(part(new)), rtol=1e-5)
