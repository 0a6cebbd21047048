"""log K_v(z), log K_{v+1}/K_v and the fused (value, d/dv, both ratios) against mpmath,
identities, derivatives, jit/vmap, float32.

Reference values for the 108 x 101 grid |v| <= 1000, z in [1e-300, 1e9] (and d/dv, d/dz on
a 28 x 21 subgrid) come from the mpmath cache written by `benchmarks/bench_bessel.py`.
Inputs are padded to a few fixed lengths (`_call`), so each jitted function compiles once
or twice for the whole module.
"""

import os

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
import pytest

from normix._special import log_kv, log_kv_fused, log_kv_ratio

mp.mp.dps = 40
CACHE = os.path.join(
    os.path.dirname(__file__), "..", "benchmarks", "results", "bessel_mpmath_ref.npz"
)
_BUCKETS = (512, 16384)


def _call(fn, *arrays):
    """`fn` on the flattened, broadcast float64 inputs padded (with v = 0.3, z = 1) to a
    fixed length: one compilation per function and bucket."""
    arrays = np.broadcast_arrays(*(np.asarray(a, float) for a in arrays))
    shape, size = arrays[0].shape, arrays[0].size
    pad = next(b for b in _BUCKETS if b >= size)
    fills = (0.3, 1.0, 1.0)
    padded = [
        np.concatenate([a.ravel(), np.full(pad - size, f)])
        for a, f in zip(arrays, fills[: len(arrays)], strict=True)
    ]
    out = fn(*padded)
    return jax.tree.map(lambda o: np.asarray(o)[:size].reshape(shape), out)


_grad = jax.jit(jax.vmap(jax.grad(log_kv, argnums=(0, 1))))


def _grid(vs, zs):
    v, z = np.meshgrid(np.asarray(vs, float), np.asarray(zs, float), indexing="ij")
    return v.ravel(), z.ravel()


def _rel_err(x, ref):
    """Relative error of log K; absolute where |log K| < 1 (log K crosses 0)."""
    return np.abs(x - ref) / np.maximum(1.0, np.abs(ref))


@pytest.fixture(scope="module")
def ref():
    d = np.load(CACHE)
    return {k: d[k] for k in d}


@pytest.fixture(scope="module")
def ratio_ref():
    """mpmath log(K_{v+1}/K_v) at v and at v - 1 (the latter gives log(K_{v-1}/K_v))."""
    v, z = _grid(
        [-30.5, -3.2, -1.0, -0.7, -0.5, -0.2, 0.0, 0.4, 2.0, 10.5, 15.5, 19.7, 22.0, 300.0],
        [1e-200, 1e-3, 0.5, 1.9, 2.5, 20.0, 1e4, 1e8],
    )

    def lr(a, b):
        a = mp.mpf(a)
        return float(mp.log(mp.besselk(a + 1, b) / mp.besselk(a, b)))

    up = np.array([lr(a, b) for a, b in zip(v, z, strict=True)])
    down = np.array([-lr(a - 1, b) for a, b in zip(v, z, strict=True)])
    return v, z, up, down


def test_log_kv_matches_mpmath(ref):
    vv, zz = np.meshgrid(ref["v"], ref["z"], indexing="ij")
    got = _call(log_kv, vv, zz)
    assert np.all(np.isfinite(got))
    # Relative (absolute where |log K| < 1), plus 2 ulp of |v|: for |v| ~ 1000 the Debye
    # leading term -R + |v| asinh(|v|/z) is a difference of two numbers of size ~|v|, so
    # near the zero of log K (z ~ 0.66 |v|) its absolute error is ~|v| eps = 2e-13.
    err = _rel_err(got, ref["logk"]) / (
        1e-13 + 4.5e-16 * np.abs(vv) / np.maximum(1.0, np.abs(ref["logk"]))
    )
    i = np.unravel_index(err.argmax(), err.shape)
    assert err.max() < 1.0, (vv[i], zz[i], err.max())


def test_gradients_match_mpmath(ref):
    vs, zs = np.meshgrid(ref["vs"], ref["zs"], indexing="ij")
    dv, dz = _call(_grad, vs, zs)
    err_v = np.abs(dv - ref["dv"]) / np.maximum(np.abs(ref["dv"]), 1e-300)
    err_z = np.abs(dz - ref["dz"]) / np.abs(ref["dz"])
    assert err_v.max() < 1e-10, (vs.flat[err_v.argmax()], zs.flat[err_v.argmax()], err_v.max())
    assert err_z.max() < 1e-10, (vs.flat[err_z.argmax()], zs.flat[err_z.argmax()], err_z.max())


def test_gradients_small_orders():
    """d/dv relative accuracy near v = 0 and on both sides of the region boundaries."""
    v, z = _grid([1e-10, 0.3, -0.5, 1.0, 2.5, 7.7, 19.6, 20.5], [1e-8, 0.4, 1.9, 2.1, 6.0, 80.0])

    def f(a, b):
        return mp.log(mp.besselk(a, b))

    ref_v = np.array(
        [
            float(mp.diff(lambda a, b=b: f(a, mp.mpf(b)), mp.mpf(a0)))
            for a0, b in zip(v, z, strict=True)
        ]
    )
    dv, _ = _call(_grad, v, z)
    err = np.abs(dv - ref_v) / np.abs(ref_v)
    assert err.max() < 1e-10, (v[err.argmax()], z[err.argmax()], err.max())
    dv0, _ = _call(_grad, np.zeros(3), np.array([0.1, 3.0, 1e4]))
    np.testing.assert_array_equal(dv0, 0.0)


def test_symmetry_and_recurrence(ref):
    vv, zz = np.meshgrid(ref["v"][::4], ref["z"][::4], indexing="ij")
    np.testing.assert_array_equal(_call(log_kv, vv, zz), _call(log_kv, -vv, zz))
    # K_{v+1} = K_{v-1} + (2v/z) K_v, in log space, where the three terms are comparable.
    v, z = _grid([0.3, 1.0, 2.5, 7.2, 19.5, 25.0, 60.0], [0.05, 0.5, 1.9, 2.1, 7.0, 40.0, 300.0])
    lhs = _call(log_kv, v + 1, z)
    rhs = np.logaddexp(_call(log_kv, v - 1, z), np.log(2 * v / z) + _call(log_kv, v, z))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-13, atol=1e-13)


def test_log_kv_ratio_matches_mpmath(ratio_ref):
    v, z, up, _ = ratio_ref
    got = _call(log_kv_ratio, v, z)
    err = np.abs(got - up) / np.maximum(np.abs(up), 1e-2)
    assert err.max() < 1e-12, (v[err.argmax()], z[err.argmax()], err.max())
    # consistent with log_kv (the difference cancels: compare on the scale of log K)
    lk = _call(log_kv, v, z)
    direct = _call(log_kv, v + 1, z) - lk
    assert np.all(np.abs(got - direct) <= 1e-13 * np.maximum(1.0, np.abs(lk)))


def test_fused_matches_mpmath(ref, ratio_ref):
    vs, zs = np.meshgrid(ref["vs"], ref["zs"], indexing="ij")
    log_k, dv, _, _ = _call(log_kv_fused, vs, zs)
    idx = np.searchsorted(ref["v"], ref["vs"])[:, None], np.searchsorted(ref["z"], ref["zs"])
    assert np.all(_rel_err(log_k, ref["logk"][idx]) < 1e-13)
    err_v = np.abs(dv - ref["dv"]) / np.maximum(np.abs(ref["dv"]), 1e-300)
    assert err_v.max() < 1e-10, (vs.flat[err_v.argmax()], zs.flat[err_v.argmax()], err_v.max())
    v, z, up, down = ratio_ref
    _, _, got_up, got_down = _call(log_kv_fused, v, z)
    for got, want in ((got_up, up), (got_down, down)):
        err = np.abs(got - want) / np.maximum(np.abs(want), 1e-2)
        assert err.max() < 1e-12, (v[err.argmax()], z[err.argmax()], err.max())


def test_fused_matches_separate_functions(ref):
    vv, zz = np.meshgrid(ref["v"][::2], ref["z"][::2], indexing="ij")
    v = np.concatenate([vv.ravel(), np.linspace(-25, 25, 301)])
    z = np.concatenate([zz.ravel(), np.geomspace(1e-3, 1e3, 301)])
    log_k, dv, up, down = _call(log_kv_fused, v, z)
    scale = np.maximum(1.0, np.abs(log_k))
    assert np.all(np.abs(log_k - _call(log_kv, v, z)) <= 1e-15 * scale)
    g_v, _ = _call(_grad, v, z)
    np.testing.assert_allclose(dv, g_v, rtol=1e-14, atol=0)
    assert np.all(np.abs(up - _call(log_kv_ratio, v, z)) <= 1e-15 * scale)
    # v - 1 may fall in another region than v (e.g. 20.5 -> 19.5): two algorithms
    assert np.all(np.abs(down + _call(log_kv_ratio, v - 1, z)) <= 1e-13 * scale)


def test_small_arrays_use_loop_forms_with_same_values(ref):
    """Arrays of <= 16 elements (e.g. scalars under `vmap`) take the `fori_loop` forms of the
    region formulas; they agree with the unrolled forms to a few ulps."""
    vv, zz = np.meshgrid(ref["v"][::6], ref["z"][::6], indexing="ij")
    v = np.concatenate([vv.ravel(), np.linspace(-25, 25, 101)])
    z = np.concatenate([zz.ravel(), np.geomspace(1e-3, 1e3, 101)])
    big = _call(log_kv_fused, v, z)  # 512 elements: unrolled
    scalar = _call(jax.jit(jax.vmap(log_kv_fused)), v, z)  # one element per vmap slice
    for b, s in zip(big, scalar, strict=True):
        assert np.all(np.abs(s - b) <= 1e-14 * np.maximum(1.0, np.abs(b)))


def test_fused_e_step_shapes():
    """One scalar order for a batch of arguments (the EM E-step), and batches hitting one
    region or several (batch-level branches) agree elementwise."""
    z_small, z_large = np.geomspace(1e-3, 2.0, 32), np.geomspace(2.01, 1e3, 32)
    full = log_kv_fused(-10.5, np.concatenate([z_small, z_large]))
    assert all(o.shape == (64,) for o in full)
    for part, sl in ((z_small, slice(0, 32)), (z_large, slice(32, 64))):
        for a, b in zip(log_kv_fused(-10.5, part), full, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b)[sl], rtol=1e-15, atol=0)


_V2 = np.array([0.0, 0.3, -1.7, 10.5, 19.6, 33.0])
_Z2 = np.array([0.7, 5.0, 0.01, 12.0, 150.0, 3.0])


def test_fused_is_differentiable():
    """Forward mode through the fused function (as a GIG Fisher information needs):
    d/dv of its d/dv output against mpmath's second derivative."""
    d2 = jax.jit(jax.vmap(jax.jacfwd(lambda a, b: log_kv_fused(a, b).dlog_kv_dv)))(_V2, _Z2)
    ref = [
        float(mp.diff(lambda a, b=b: mp.log(mp.besselk(a, mp.mpf(b))), mp.mpf(v), 2))
        for v, b in zip(_V2, _Z2, strict=True)
    ]
    np.testing.assert_allclose(np.asarray(d2), ref, rtol=1e-9)


@pytest.mark.slow
def test_fused_vmap_over_orders():
    z_large = np.geomspace(2.01, 1e3, 32)
    # vmap over orders: the batch-level branches become selects, same values
    vs = np.array([-10.5, 0.2, 33.0])
    mapped = jax.vmap(log_kv_fused, (0, None))(vs, z_large)
    for i, v in enumerate(vs):
        for a, b in zip(mapped, log_kv_fused(v, z_large), strict=True):
            np.testing.assert_allclose(np.asarray(a)[i], np.asarray(b), rtol=1e-15, atol=0)


@pytest.mark.slow
def test_fused_reverse_mode_and_mixed_partials():
    d2_fwd = jax.vmap(jax.jacfwd(lambda a, b: log_kv_fused(a, b).dlog_kv_dv))(_V2, _Z2)
    d2_rev = jax.vmap(jax.grad(lambda a, b: log_kv_fused(a, b).dlog_kv_dv))(_V2, _Z2)
    np.testing.assert_allclose(d2_fwd, d2_rev, rtol=1e-12)
    dvdz = jax.vmap(jax.grad(lambda a, b: log_kv_fused(a, b).dlog_kv_dv, argnums=1))(_V2, _Z2)
    dzdv = jax.vmap(jax.grad(jax.grad(log_kv, argnums=1), argnums=0))(_V2, _Z2)
    np.testing.assert_allclose(dvdz, dzdv, rtol=1e-10, atol=1e-14)


def test_extreme_grid_finite():
    v, z = _grid(
        np.concatenate([np.linspace(-1000, 1000, 41), [0.0, 1e-10, 0.5, -0.5, 19.999]]),
        np.logspace(-300, 9, 41),
    )
    outs = [_call(log_kv, v, z), *_call(_grad, v, z), _call(log_kv_ratio, v, z)]
    outs += list(_call(log_kv_fused, v, z))
    for arr in outs:
        assert np.all(np.isfinite(arr))


def test_log_kv_at_the_ends_of_the_domain():
    """log K_v(0) = +inf and log K_v(inf) = -inf for every order (v = 0 and 1 used to give
    NaN at z = 0, v = 30 +inf); z < 0 and NaN arguments give NaN; the gradient at the ends
    is 0, not NaN, so a masked-out end does not poison a reverse pass."""
    v = jnp.array([0.0, 1.0, 30.0, -2.5, 0.5, 700.0, np.nan, 2.0])
    z = jnp.array([0.0, 0.0, 0.0, 0.0, np.inf, np.inf, 0.0, -1.0])
    out = np.asarray(jax.jit(log_kv)(v, z))
    np.testing.assert_array_equal(out[:4], np.inf)
    np.testing.assert_array_equal(out[4:6], -np.inf)
    assert np.isnan(out[6:]).all()
    grads = jax.jit(jax.grad(lambda a, b: jnp.sum(jnp.where(b > 0, 0.0, log_kv(a, b))), (0, 1)))
    for g in grads(jnp.array([1.0, 2.0]), jnp.array([0.0, 3.0])):
        np.testing.assert_array_equal(np.asarray(g), 0.0)


def test_jit_eager_vmap_broadcast():
    v = np.array([0.2, 3.5, 40.0, -7.0])
    z = np.array([0.5, 2.5, 1e3])
    eager = np.asarray(log_kv(v[:, None], z[None, :]))
    looped = np.array([[float(log_kv(a, b)) for b in z] for a in v])
    mapped = np.asarray(jax.vmap(jax.vmap(log_kv, (None, 0)), (0, None))(v, z))
    np.testing.assert_allclose(mapped, looped, rtol=1e-14, atol=0)
    np.testing.assert_allclose(eager, looped, rtol=1e-14, atol=0)
    assert log_kv(1.5, 2.0).dtype == jnp.float64


def test_float32():
    v, z = _grid([0.0, 0.4, 1.5, 6.3, 25.0, 120.0], [1e-3, 0.5, 1.9, 2.5, 30.0, 500.0])
    v32, z32 = v.astype(np.float32), z.astype(np.float32)
    got = log_kv(v32, z32)
    assert got.dtype == jnp.float32
    ref32 = np.array(
        [float(mp.log(mp.besselk(float(a), float(b)))) for a, b in zip(v32, z32, strict=True)]
    )
    assert np.all(_rel_err(np.asarray(got, float), ref32) < 1e-5)
    fused = log_kv_fused(v32, z32)
    assert all(o.dtype == jnp.float32 for o in fused)
    np.testing.assert_allclose(np.asarray(fused.log_kv), np.asarray(got), rtol=1e-6)


@pytest.mark.slow
def test_float32_derivatives_finite():
    # z >= 1e-30 so that d/dz log K ~ -|v|/z is representable in float32.
    ve, ze = _grid(np.linspace(-1000, 1000, 21), np.logspace(-30, 9, 21))
    ve, ze = ve.astype(np.float32), ze.astype(np.float32)
    g = jax.vmap(jax.grad(log_kv, argnums=(0, 1)))(ve, ze)
    assert np.all(np.isfinite(np.asarray(log_kv(ve, ze))))
    assert all(np.all(np.isfinite(np.asarray(a))) for a in (*g, *log_kv_fused(ve, ze)))


@pytest.mark.slow
def test_hessian_matches_mpmath():
    hess = jax.jit(jax.hessian(log_kv, argnums=(0, 1)))

    def f(a, b):
        return mp.log(mp.besselk(a, b))

    for v, z in [(1.3, 0.7), (0.3, 5.0), (25.0, 3.0), (7.5, 40.0), (0.0, 1.0), (0.0, 6.0)]:
        h = hess(v, z)
        got = np.array([[float(h[i][j]) for j in range(2)] for i in range(2)])
        d = [float(mp.diff(f, (v, z), o)) for o in [(2, 0), (1, 1), (0, 2)]]
        ref = np.array([[d[0], d[1]], [d[1], d[2]]])
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, ref, rtol=1e-7, atol=1e-7 * np.abs(ref).max())
