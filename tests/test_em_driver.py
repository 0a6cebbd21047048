"""The generic EM driver on small self-contained EM models."""

import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from jax.scipy.special import logsumexp
from jaxtyping import Array, Float, Int

import normix
from normix._em_model import AbstractECMModel, AbstractEMModel, AbstractFusedEMModel
from normix._fitting import (
    ECM,
    EM,
    EMResult,
    EMResults,
    aic,
    bic,
    fit,
    fit_multistart,
)

TRACES = {"n": 0}


class GaussMix2(AbstractFusedEMModel):
    """Two-component 1-D Gaussian mixture: closed-form E- and M-steps."""

    weights: Float[Array, " 2"]
    mu: Float[Array, " 2"]
    var: Float[Array, " 2"]

    def __init__(self, weights, mu, var):
        self.weights, self.mu, self.var = (
            jnp.asarray(a, dtype=jnp.result_type(a, float)) for a in (weights, mu, var)
        )

    def _log_joint(self, x):
        z = x[:, None] - self.mu[None, :]
        return (
            jnp.log(self.weights)[None, :]
            - 0.5 * jnp.log(2 * jnp.pi * self.var)[None, :]
            - 0.5 * z**2 / self.var[None, :]
        )

    def e_step_with_log_likelihood(self, x, weights):
        TRACES["n"] += 1  # runs only while tracing
        lj = self._log_joint(x)
        lse = logsumexp(lj, axis=1)
        r = jnp.exp(lj - lse[:, None]) * weights[:, None]
        total = jnp.sum(weights)
        stats = (
            jnp.sum(r, axis=0) / total,
            jnp.sum(r * x[:, None], axis=0) / total,
            jnp.sum(r * x[:, None] ** 2, axis=0) / total,
        )
        return stats, weights @ lse / total

    def e_step(self, x, weights):
        return self.e_step_with_log_likelihood(x, weights)[0]

    def log_likelihood(self, x, weights):
        return self.e_step_with_log_likelihood(x, weights)[1]

    def m_step(self, stats):
        s0, s1, s2 = stats
        mu = s1 / s0
        return GaussMix2(s0, mu, s2 / s0 - mu**2)

    def n_parameters(self) -> int:
        return 5

    @classmethod
    def initialize(cls, x, weights, *, key=None):
        q = jnp.quantile(x, jnp.array([0.25, 0.75]))
        return cls(jnp.array([0.5, 0.5]), q, jnp.full((2,), jnp.var(x)))


class Flaky(AbstractEMModel):
    """Wraps GaussMix2 (non-fused path) and misbehaves at iterate `bad_at`."""

    inner: GaussMix2
    t: Int[Array, ""]
    mode: str = eqx.field(static=True)
    bad_at: int = eqx.field(static=True)

    def e_step(self, x, weights):
        return self.inner.e_step(x, weights)

    def log_likelihood(self, x, weights):
        ll = self.inner.log_likelihood(x, weights)
        if self.mode == "ll":
            ll = jnp.where(self.t >= self.bad_at, jnp.nan, ll)
        return ll

    def m_step(self, stats):
        inner = self.inner.m_step(stats)
        t = self.t + 1
        hit = t == self.bad_at
        if self.mode == "param":
            inner = eqx.tree_at(lambda m: m.mu, inner, jnp.where(hit, jnp.nan, inner.mu))
        elif self.mode == "decrease":
            inner = eqx.tree_at(lambda m: m.mu, inner, jnp.where(hit, inner.mu + 1.0, inner.mu))
        return Flaky(inner, t, self.mode, self.bad_at)

    def n_parameters(self) -> int:
        return 5

    @classmethod
    def initialize(cls, x, weights, *, key=None):
        raise NotImplementedError


class BlockGaussMix2(AbstractECMModel):
    """ECM on the mixture: update (weights, mu) first, then var after a fresh E-step."""

    inner: GaussMix2

    def e_step(self, x, weights):
        return self.inner.e_step(x, weights)

    def log_likelihood(self, x, weights):
        return self.inner.log_likelihood(x, weights)

    def m_step(self, stats):
        return BlockGaussMix2(self.inner.m_step(stats))

    def conditional_m_steps(self, stats, x, weights):
        s0, s1, _ = stats
        step1 = GaussMix2(s0, s1 / s0, self.inner.var)
        r0, r1, r2 = step1.e_step(x, weights)
        mu = step1.mu
        var = (r2 - 2 * mu * r1 + mu**2 * r0) / r0
        return BlockGaussMix2(GaussMix2(step1.weights, mu, var))

    def n_parameters(self) -> int:
        return 5

    @classmethod
    def initialize(cls, x, weights, *, key=None):
        return cls(GaussMix2.initialize(x, weights))


def _data(key, n=300):
    k1, k2 = jr.split(key)
    comp = jr.bernoulli(k1, 0.35, (n,))
    z = jr.normal(k2, (n,))
    return jnp.where(comp, -2.0 + 0.7 * z, 1.5 + 1.2 * z)


START = GaussMix2(jnp.array([0.5, 0.5]), jnp.array([-1.0, 1.0]), jnp.array([1.0, 1.0]))


def _leaves_close(a, b, **kw):
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(u, v, **kw)


def test_converges_monotone_and_matches_sklearn(key):
    from sklearn.mixture import GaussianMixture

    x = _data(key)
    res = fit(START, x, solver=EM(rtol=1e-14, param_rtol=1e-10))
    assert isinstance(res, EMResult)
    assert res.result == EMResults.successful
    assert bool(res.converged) and bool(res.ll_converged) and bool(res.params_converged)
    n = int(res.n_steps)
    assert 5 < n < 500
    tr = res.trace
    assert tr.shape == (501,)
    assert jnp.all(jnp.isfinite(tr[: n + 1])) and jnp.all(jnp.isnan(tr[n + 1 :]))
    assert jnp.all(jnp.diff(tr[: n + 1]) >= -1e-13)
    np.testing.assert_allclose(res.log_likelihood, tr[n], rtol=0, atol=0)

    gm = GaussianMixture(
        2,
        covariance_type="full",
        weights_init=np.asarray(START.weights),
        means_init=np.asarray(START.mu)[:, None],
        precisions_init=(1 / np.asarray(START.var))[:, None, None],
        reg_covar=0.0,
        tol=1e-14,
        max_iter=5000,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(np.asarray(x)[:, None])
    m = res.model
    np.testing.assert_allclose(m.weights, gm.weights_, rtol=1e-6)
    np.testing.assert_allclose(m.mu, gm.means_[:, 0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(m.var, gm.covariances_[:, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(res.log_likelihood, gm.score(np.asarray(x)[:, None]), rtol=1e-10)


def test_tolerances_control_stopping(key):
    x = _data(key)
    loose = fit(START, x, solver=EM(rtol=1e-4, param_rtol=float("inf")))
    tight = fit(START, x)
    assert loose.result == EMResults.successful
    assert int(loose.n_steps) < int(tight.n_steps)
    # the LL half alone may hold while the parameter half does not
    ll_only = fit(
        START,
        x,
        solver=EM(rtol=1e-6, param_rtol=1e-12, param_atol=1e-14),
        max_steps=60,
        throw=False,
    )
    assert ll_only.result == EMResults.max_steps_reached
    assert bool(ll_only.ll_converged) and not bool(ll_only.params_converged)


def test_max_steps_reached(key):
    x = _data(key)
    res = fit(START, x, max_steps=3, throw=False)
    assert res.result == EMResults.max_steps_reached
    assert int(res.n_steps) == 3 and not bool(res.converged)
    assert jnp.all(jnp.isfinite(res.trace))
    with pytest.raises(Exception, match="max_steps"):
        fit(START, x, max_steps=3)
    zero = fit(START, x, max_steps=0, throw=False)
    assert int(zero.n_steps) == 0 and zero.trace.shape == (1,)
    _leaves_close(zero.model, START, rtol=0)


@pytest.mark.parametrize("mode", ["param", "ll"])
def test_nonfinite_keeps_last_finite_model(key, mode):
    x = _data(key)
    model = Flaky(START, jnp.array(0), mode, 3)
    res = fit(model, x, throw=False)
    assert res.result == EMResults.nonfinite
    assert not bool(res.converged)
    assert int(res.n_steps) == 2 and int(res.model.t) == 2
    assert all(jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(res.model))
    assert jnp.isfinite(res.log_likelihood)
    assert jnp.all(jnp.isfinite(res.trace[:3])) and jnp.all(jnp.isnan(res.trace[3:]))
    if mode == "param":
        with pytest.raises(Exception, match="non-finite"):
            fit(model, x)


def test_nonfinite_initial_model(key):
    x = _data(key)
    res = fit(Flaky(START, jnp.array(0), "ll", 0), x, throw=False)
    assert res.result == EMResults.nonfinite and int(res.n_steps) == 0


def test_decrease_is_reported_not_stopping(key):
    x = _data(key)
    res = fit(Flaky(START, jnp.array(0), "decrease", 4), x)  # does not raise
    assert res.result == EMResults.decreased
    assert bool(res.converged)
    n = int(res.n_steps)
    assert jnp.min(jnp.diff(res.trace[: n + 1])) < 0


def test_ecm_solver(key):
    x = _data(key)
    em = fit(START, x, solver=EM(rtol=1e-14, param_rtol=1e-10))
    ecm = fit(BlockGaussMix2(START), x, solver=ECM(rtol=1e-14, param_rtol=1e-10))
    assert ecm.result == EMResults.successful
    n = int(ecm.n_steps)
    assert jnp.all(jnp.diff(ecm.trace[: n + 1]) >= -1e-13)
    _leaves_close(ecm.model.inner, em.model, rtol=1e-6, atol=1e-8)
    with pytest.raises(TypeError, match="AbstractECMModel"):
        fit(START, x, solver=ECM())


def test_class_initialize_and_weights(key):
    x = _data(key)
    a = fit(GaussMix2, x)
    b = fit(GaussMix2.initialize(x, jnp.ones_like(x)), x)
    _leaves_close(a.model, b.model, rtol=1e-12)
    # integer weights = repeated rows
    w = jnp.where(jnp.arange(x.shape[0]) % 3 == 0, 2.0, 1.0)
    xr = jnp.concatenate([x, x[::3]])
    rw, rr = fit(START, x, weights=w), fit(START, xr)
    _leaves_close(rw.model, rr.model, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(rw.log_likelihood, rr.log_likelihood, rtol=1e-10)


def test_jit_and_vmap_over_datasets(getkey):
    xs = jnp.stack([_data(getkey()) for _ in range(3)])
    singles = [fit(START, x) for x in xs]
    batched = jax.vmap(lambda x: fit(START, x, throw=False))(xs)
    jitted = jax.jit(lambda x: fit(START, x).model)(xs[1])
    for i, s in enumerate(singles):
        _leaves_close(jax.tree.map(lambda a, i=i: a[i], batched.model), s.model, rtol=1e-12)
        assert int(batched.n_steps[i]) == int(s.n_steps)
        assert bool((batched.result == s.result)[i])
    _leaves_close(jitted, singles[1].model, rtol=1e-12)


def test_vmap_over_initial_models_and_multistart(key):
    x = _data(key)
    starts = jax.vmap(GaussMix2)(
        jnp.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]]),
        jnp.array([[-1.0, 1.0], [0.0, 0.1], [5.0, 6.0]]),
        jnp.array([[1.0, 1.0], [2.0, 2.0], [0.1, 0.1]]),
    )
    best, allres = fit_multistart(starts, x, throw=False)
    assert allres.log_likelihood.shape == (3,)
    for i in range(3):
        one = fit(jax.tree.map(lambda a, i=i: a[i], starts), x, throw=False)
        np.testing.assert_allclose(allres.log_likelihood[i], one.log_likelihood, rtol=1e-12)
    ok = allres.result != EMResults.nonfinite
    np.testing.assert_allclose(
        best.log_likelihood, jnp.max(jnp.where(ok, allres.log_likelihood, -jnp.inf))
    )


def test_no_retrace_on_new_data(getkey):
    x1, x2 = _data(getkey()), _data(getkey())
    fit(START, x1, throw=False)
    n = TRACES["n"]
    res = fit(START, x2, throw=False)
    other_start = GaussMix2(START.weights, jnp.array([-2.0, 2.0]), START.var)
    fit(other_start, x1 + 0.1, throw=False)
    assert TRACES["n"] == n
    assert jnp.isfinite(res.log_likelihood)


def test_verbose_prints(key, capfd):
    x = _data(key)
    fit(START, x, max_steps=4, throw=False, verbose=2)
    jax.effects_barrier()
    out = capfd.readouterr().out
    assert "EM step 0" in out and "EM step 2" in out and "EM step 1" not in out


def test_bad_inputs(key):
    x = _data(key, n=20)
    bad = x.at[3].set(jnp.nan).at[7].set(jnp.inf)
    with pytest.raises(Exception, match="2 row"):
        fit(START, bad)
    with pytest.raises(Exception, match="2 row"):
        jax.jit(lambda d: fit(START, d).log_likelihood)(bad)
    with pytest.raises(ValueError, match="weights"):
        fit(START, x, weights=jnp.ones(3))
    with pytest.raises(Exception, match="non-negative"):
        fit(START, x, weights=-jnp.ones(20))
    with pytest.raises(Exception, match="not all zero"):
        fit(START, x, weights=jnp.zeros(20))
    with pytest.raises(ValueError, match="n >= 1"):
        fit(START, jnp.zeros((0,)))
    with pytest.raises(TypeError, match="AbstractEMModel"):
        fit(object(), x)
    with pytest.raises(TypeError, match="solver"):
        fit(START, x, solver="em")
    with pytest.raises(ValueError, match="max_steps"):
        fit(START, x, max_steps=-1)


def test_information_criteria(key):
    x = _data(key)
    res = fit(START, x)
    n = x.shape[0]
    total = n * res.log_likelihood
    np.testing.assert_allclose(aic(res, x), -2 * total + 10, rtol=1e-12)
    np.testing.assert_allclose(bic(res.model, x), -2 * total + 5 * np.log(n), rtol=1e-12)


def test_float32_fit(key):
    x = _data(key).astype(jnp.float32)
    start = jax.tree.map(lambda a: a.astype(jnp.float32), START)
    res = fit(start, x)
    assert res.log_likelihood.dtype == jnp.float32
    assert res.result == EMResults.successful


def test_exponential_family_fits_in_one_step(key):
    x = jr.gamma(key, 2.5, (400,)) / 1.7
    direct = normix.Gamma.fit(x)
    one = fit(normix.Gamma(1.0, 1.0), x, max_steps=1, throw=False)
    _leaves_close(one.model, direct, rtol=1e-12)
    full = fit(normix.Gamma, x)
    assert full.result == EMResults.successful
    _leaves_close(full.model, direct, rtol=1e-12)
    np.testing.assert_allclose(full.log_likelihood, jnp.mean(direct.log_prob(x)), rtol=1e-12)
