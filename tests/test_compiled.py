"""Eager calls of loop-heavy methods compile once per shape, not once per call
(`normix._compiled.compiled_when_eager`)."""

import contextlib

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

import normix
from normix._compiled import compiled_when_eager

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compiles():
    """Number of XLA compilations of `compiled_when_eager` programs inside the block (a
    one-element list); the few eager primitives around them are not counted."""
    count = [0]

    def listener(event, duration, fun_name="", **kwargs):
        if event == _COMPILE_EVENT and "_compiled_call" in fun_name:
            count[0] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield count
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def test_decorator_traces_once_per_shape_not_per_value():
    traces = []
    with count_compiles() as n:
        compiled_when_eager(jnp.sin)(jnp.zeros(3))
    assert n[0] == 1  # the counter sees these programs

    @compiled_when_eager
    def scaled_cumsum(x, scale, n_terms):
        traces.append((x.shape, n_terms))
        return jnp.cumsum(x * scale)[:n_terms]

    a = scaled_cumsum(jnp.arange(4.0), 0.5, 2)
    b = scaled_cumsum(jnp.arange(4.0) + 1, 2.0, 2)  # new values, float scale: no retrace
    assert len(traces) == 1
    np.testing.assert_allclose(a, [0.0, 0.5])
    np.testing.assert_allclose(b, [2.0, 6.0])
    scaled_cumsum(jnp.arange(4.0), 0.5, n_terms=3)  # an int is static: a new program
    scaled_cumsum(jnp.arange(5.0), 0.5, 3)  # a new shape: a new program
    assert len(traces) == 3
    # under a transformation the function is called as it is, inside the caller's trace
    out = jax.jit(lambda x: scaled_cumsum(x, 3.0, 2))(jnp.arange(4.0))
    np.testing.assert_allclose(out, [0.0, 3.0])
    out = jax.vmap(lambda s: scaled_cumsum(jnp.arange(4.0), s, 2))(jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(out, [[0.0, 1.0], [0.0, 2.0]])


def test_check_mode_is_part_of_the_cache_key():
    """A program traced inside `checks_as_nan()` returns NaN on a failed check; the same
    call outside it must still raise (and the reverse), whatever ran first."""
    import equinox as eqx

    from normix._errors import checks_as_nan, error_if

    @compiled_when_eager
    def checked_log(x):
        return jnp.log(error_if(x, jnp.any(x <= 0), "checked_log: x must be positive"))

    bad = jnp.array([1.0, -1.0])
    with checks_as_nan():
        assert bool(jnp.all(jnp.isnan(checked_log(bad))))
    with pytest.raises(eqx.EquinoxRuntimeError, match="x must be positive"):
        checked_log(bad)
    with checks_as_nan():
        assert bool(jnp.all(jnp.isnan(checked_log(bad))))
    np.testing.assert_allclose(checked_log(jnp.array([1.0, 2.0])), [0.0, np.log(2.0)])


@pytest.fixture(scope="module")
def nig_1d():
    return normix.NormalInverseGaussian(
        mu=jnp.array([0.05]),
        gamma=jnp.array([-0.1]),
        cov=jnp.array([[0.8]]),
        mean=1.0,
        shape=1.5,
    )


def test_quantiles_and_tail_risk_compile_once(nig_1d):
    """A second value-at-risk (a quantile of the same shape) reuses the compiled search
    (each call used to trace and compile its loops again: ~6 s per call on 2 cores)."""
    m = nig_1d
    var99 = m.value_at_risk(0.99)
    with count_compiles() as n:
        var95 = m.value_at_risk(0.95)
    assert n[0] == 0
    # and the values are the quantiles: F(-VaR) = 1 - level
    np.testing.assert_allclose(m.cdf(-jnp.stack([var99, var95])), [0.01, 0.05], rtol=1e-9)


@pytest.mark.slow  # two compiles of ~5 s each on 2 cores
def test_gig_sampling_and_solver_compile_once():
    gig = normix.GIG(p=0.7, a=1.3, b=2.1)
    eta = gig.expectation_params()
    gig.sample(jr.key(0), (64,))
    normix.GIG.from_expectation(eta)
    with count_compiles() as n:
        draws = gig.sample(jr.key(1), (64,))
        refit = normix.GIG.from_expectation(eta * jnp.array([1.0, 1.01, 1.01]))
        same = normix.GIG.from_expectation(eta)
    assert n[0] == 0
    assert draws.shape == (64,) and bool(jnp.all(draws > 0))
    assert bool(jnp.all(jnp.isfinite(refit.natural_params())))
    np.testing.assert_allclose(same.natural_params(), gig.natural_params(), rtol=1e-8)


def test_posterior_of_many_rows_says_to_vmap(nig_1d):
    with pytest.raises(ValueError, match=r"jax.vmap\(model.posterior\)"):
        nig_1d.posterior(jnp.zeros((10, 1)))
    post = jax.vmap(nig_1d.posterior)(jnp.array([[0.0], [1.0], [2.0]]))
    assert post.b.shape == (3,)
    # the posterior parameter b grows with the distance from mu
    assert bool(jnp.all(jnp.diff(post.b) > 0))
