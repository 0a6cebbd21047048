"""The static-order Bessel path (`log_kv_fixed_order`, used by the normal-inverse-Gaussian
E-step) against 30-digit mpmath, the general `log_kv_fused`, and its edge values; and
the NIG E-step through it against the general path."""

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

import normix
from normix._distributions._gig_functions import (
    gig_log_normalizer,
    gig_log_normalizer_and_expectations,
)
from normix._special import log_kv_fused
from normix._special._bessel_fixed import log_kv_fixed_order

mp.mp.dps = 30
ORDERS = (0.0, -1.0, 2.0, 0.5, -2.5, -10.5, 30.0)
# both sides of the series / Chebyshev switch at z = 2, and the far ends
Z = np.concatenate(
    [np.logspace(-300, -3, 12), np.logspace(-3, 4, 46), [2.0 - 1e-9, 2.0, 2.0 + 1e-9]]
)


def _mp_ref(v: float) -> np.ndarray:
    rows = []
    for z in map(mp.mpf, Z):
        k = mp.besselk(v, z)
        rows.append(
            [
                float(mp.log(k)),
                float(mp.log(mp.besselk(v + 1, z) / k)),
                float(mp.log(mp.besselk(v - 1, z) / k)),
            ]
        )
    return np.array(rows).T


@pytest.mark.parametrize("v", ORDERS)
def test_matches_mpmath(v):
    got = log_kv_fixed_order(v, jnp.asarray(Z))
    outs = (got.log_kv, got.log_ratio_next, got.log_ratio_prev)
    for out, ref in zip(outs, _mp_ref(v), strict=True):
        err = np.abs(np.asarray(out) - ref) / np.maximum(1.0, np.abs(ref))
        assert err.max() < 5e-15, (v, err.max(), Z[np.argmax(err)])
    assert np.all(np.isnan(np.asarray(got.dlog_kv_dv)))


def test_agrees_with_general_path():
    rng = np.random.default_rng(0)
    z = jnp.asarray(rng.lognormal(0.0, 2.0, 2000))
    for v in (-1.0, -1.5, -4.0, -5.5):
        fixed = log_kv_fixed_order(v, z)
        general = log_kv_fused(v, z, dv=False)
        for i in (0, 2, 3):  # value and the two ratios
            a, b = fixed[i], general[i]
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-13, atol=1e-14)


def test_edges_and_errors():
    got = log_kv_fixed_order(-1.0, jnp.array([0.0, jnp.inf, -1.0, jnp.nan]))
    assert np.asarray(got.log_kv)[0] == np.inf
    assert np.asarray(got.log_kv)[1] == -np.inf
    assert np.asarray(got.log_ratio_next)[1] == 0.0
    assert np.all(np.isnan(np.asarray(got.log_kv)[2:]))
    with pytest.raises(ValueError, match="integer or half-integer"):
        log_kv_fixed_order(0.3, jnp.ones(3))


def test_float32_follows_dtype():
    z = np.logspace(-20, 3, 50)
    got = log_kv_fixed_order(-1.0, jnp.asarray(z, jnp.float32))
    assert got.log_kv.dtype == jnp.float32
    ref = np.asarray(log_kv_fixed_order(-1.0, jnp.asarray(z)).log_kv)
    np.testing.assert_allclose(np.asarray(got.log_kv), ref, rtol=2e-6, atol=2e-6)


def test_differentiable_in_z():
    """d/dz log K_1(z) = -K_0/K_1 - 1/z (recurrence identity), through plain autodiff."""
    z = jnp.array([0.01, 0.5, 1.99, 2.01, 7.0, 300.0])
    grad = jax.vmap(jax.grad(lambda t: log_kv_fixed_order(1.0, t).log_kv))(z)
    parts = log_kv_fixed_order(1.0, z)
    expected = -jnp.exp(parts.log_ratio_prev) - 1.0 / z
    np.testing.assert_allclose(np.asarray(grad), np.asarray(expected), rtol=1e-12)


@pytest.mark.parametrize("order", [-1.0, -1.5, -10.5])
def test_gig_functions_fixed_order(order):
    rng = np.random.default_rng(1)
    a = jnp.asarray(rng.lognormal(0.0, 2.0, 500))
    b = jnp.asarray(rng.lognormal(0.0, 2.0, 500))
    p = jnp.full_like(a, order)
    lz, eta = gig_log_normalizer_and_expectations(p, a, b, log_moment=False, fixed_order=order)
    lz_g, eta_g = gig_log_normalizer_and_expectations(p, a, b)
    np.testing.assert_allclose(np.asarray(lz), np.asarray(lz_g), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(np.asarray(eta[:, 1:]), np.asarray(eta_g[:, 1:]), rtol=1e-13)
    assert np.all(np.isnan(np.asarray(eta[:, 0])))
    np.testing.assert_allclose(
        np.asarray(gig_log_normalizer(p, a, b, fixed_order=order)), np.asarray(lz_g), rtol=1e-13
    )
    # outside the interior the fixed path says NaN rather than guessing
    lz0, _ = gig_log_normalizer_and_expectations(
        p[:2], jnp.array([0.0, 1.0]), jnp.array([1.0, 0.0]), log_moment=False, fixed_order=order
    )
    assert np.all(np.isnan(np.asarray(lz0)))
    with pytest.raises(ValueError, match="log_moment=False"):
        gig_log_normalizer_and_expectations(p, a, b, fixed_order=order)


@pytest.mark.parametrize("d", [1])
def test_nig_e_step_matches_general_path(d):
    """The NIG E-step (static posterior order -(d+1)/2) against the general Bessel path
    (`e_step`, which computes E[log Y] and so goes through `log_kv_fused`)."""
    rng = np.random.default_rng(2)
    cov = np.eye(d) + 0.3
    model = normix.NormalInverseGaussian(
        0.1 * np.ones(d), -0.2 * np.ones(d), cov, mean=1.0, shape=0.7
    )
    x = jnp.asarray(rng.standard_t(4, (400, d)))
    w = jnp.ones(400)

    @jax.jit  # one program (eager calls run the Bessel code op by op)
    def both(model, x, w):
        fast, ll = model.e_step_with_log_likelihood(x, w)
        p_post, a_post, b_post, beta, const = model._row_terms(x)
        ll_general = jnp.mean(const + beta + gig_log_normalizer(p_post, a_post, b_post))
        return fast, ll, model.e_step(x, w), ll_general

    fast, ll, general, ll_general = both(model, x, w)
    for name in ("inv_y", "y", "x", "x_inv_y", "xx_inv_y"):
        np.testing.assert_allclose(
            np.asarray(getattr(fast, name)), np.asarray(getattr(general, name)), rtol=1e-12
        )
    np.testing.assert_allclose(float(ll), float(ll_general), rtol=1e-12)


def test_nig_uses_fixed_path_only_for_moderate_orders():
    def model(d):
        return normix.NormalInverseGaussian(
            np.zeros(d), np.zeros(d), np.eye(d), mean=1.0, shape=1.0
        )

    assert model(1)._posterior_order() == -1.0
    assert model(20)._posterior_order() == -10.5
    assert model(59)._posterior_order() == -30.0
    assert model(61)._posterior_order() is None  # general (Debye) path
    # the prior's own normalizer: the fixed-order path (order -1/2), equal to the general one
    sub = model(3).subordinator
    np.testing.assert_allclose(
        float(sub.log_gig_normalizer()), float(gig_log_normalizer(*sub.gig_params())), rtol=1e-13
    )
    assert (
        normix.GeneralizedHyperbolic(
            np.zeros(2), np.zeros(2), np.eye(2), p=-0.5, a=1.0, b=1.0
        )._posterior_order()
        is None
    )  # p is a parameter of the GH, not a constant
