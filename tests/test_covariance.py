"""Covariance operators against their dense `as_matrix()` oracle."""

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest

from normix._covariance import AbstractCovariance, DenseCovariance, LowRankPlusDiagonal

D_DIM = 5


def _dense(key, d=D_DIM, dtype=jnp.float64):
    A = jr.normal(key, (d, d), dtype=dtype)
    S = A @ A.T + d * jnp.eye(d, dtype=dtype)
    return DenseCovariance.from_matrix(S)


def _low_rank(key, d=D_DIM, r=2, dtype=jnp.float64):
    k1, k2 = jr.split(key)
    F = jr.normal(k1, (d, r), dtype=dtype)
    D = jnp.exp(0.5 * jr.normal(k2, (d,), dtype=dtype))
    return LowRankPlusDiagonal(F, D)


def _diag_only(key, d=D_DIM, dtype=jnp.float64):
    return _low_rank(key, d=d, r=0, dtype=dtype)


def _tall_rank(key, d=3, dtype=jnp.float64):
    return _low_rank(key, d=d, r=5, dtype=dtype)  # r > d is allowed


BUILDERS = {
    "dense": _dense,
    "low_rank": _low_rank,
    "diagonal": _diag_only,
    "rank_above_dim": _tall_rank,
}


@pytest.fixture(params=sorted(BUILDERS))
def cov(request, key):
    return BUILDERS[request.param](key)


def test_is_covariance(cov):
    assert isinstance(cov, AbstractCovariance)
    S = cov.as_matrix()
    assert S.shape == (cov.dim, cov.dim)
    np.testing.assert_allclose(S, S.T, rtol=0, atol=1e-14)
    assert jnp.all(jnp.linalg.eigvalsh(S) > 0)


def test_solve_matches_dense(cov, getkey):
    S = cov.as_matrix()
    v = jr.normal(getkey(), (cov.dim,))
    V = jr.normal(getkey(), (cov.dim, 3))
    np.testing.assert_allclose(cov.solve(v), jnp.linalg.solve(S, v), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cov.solve(V), jnp.linalg.solve(S, V), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(cov.quad_form(v), v @ jnp.linalg.solve(S, v), rtol=1e-10)


def test_logdet_matches_dense(cov):
    sign, ld = jnp.linalg.slogdet(cov.as_matrix())
    assert sign == 1
    np.testing.assert_allclose(cov.logdet(), ld, rtol=1e-12, atol=1e-12)


def test_whiten_and_mahalanobis(cov, getkey):
    S = cov.as_matrix()
    X = jr.normal(getkey(), (50, cov.dim))
    ref = jnp.einsum("ni,ni->n", X, jnp.linalg.solve(S, X.T).T)
    W = cov.whiten(X)
    assert W.shape == X.shape
    np.testing.assert_allclose(jnp.sum(W**2, axis=1), ref, rtol=1e-10)
    np.testing.assert_allclose(cov.mahalanobis_sq(X), ref, rtol=1e-10)
    # whitening is linear: W = X T^T with T^T T = S^{-1}
    T = cov.whiten(jnp.eye(cov.dim)).T
    np.testing.assert_allclose(T.T @ T, jnp.linalg.inv(S), rtol=1e-9, atol=1e-12)


def test_diagonal_trace_scale(cov):
    S = cov.as_matrix()
    np.testing.assert_allclose(cov.diagonal(), jnp.diag(S), rtol=1e-12)
    np.testing.assert_allclose(cov.trace(), jnp.trace(S), rtol=1e-12)
    c = 2.5
    scaled = cov.scale(c)
    assert type(scaled) is type(cov)
    np.testing.assert_allclose(scaled.as_matrix(), c * S, rtol=1e-12)
    np.testing.assert_allclose(scaled.logdet(), cov.logdet() + cov.dim * jnp.log(c), rtol=1e-12)


def test_sample_noise_moments(cov, key):
    n = 40_000
    Z = cov.sample_noise(key, (n,))
    assert Z.shape == (n, cov.dim)
    S = cov.as_matrix()
    emp_mean = jnp.mean(Z, axis=0)
    se_mean = jnp.sqrt(jnp.diag(S) / n)
    assert jnp.all(jnp.abs(emp_mean) < 5 * se_mean)
    emp = Z.T @ Z / n
    # Var(z_i z_j) = S_ii S_jj + S_ij^2 for a centred Gaussian
    se = jnp.sqrt((jnp.outer(jnp.diag(S), jnp.diag(S)) + S**2) / n)
    assert jnp.all(jnp.abs(emp - S) < 5 * se)
    Z2 = cov.sample_noise(key, (2, 3))
    assert Z2.shape == (2, 3, cov.dim)
    assert cov.sample_noise(key).shape == (cov.dim,)


def test_jit_invariance(cov, getkey):
    v = jr.normal(getkey(), (cov.dim,))
    X = jr.normal(getkey(), (7, cov.dim))

    def ops(c, v, X):
        return c.solve(v), c.logdet(), c.whiten(X), c.mahalanobis_sq(X), c.quad_form(v)

    eager = ops(cov, v, X)
    jitted = eqx.filter_jit(ops)(cov, v, X)
    for a, b in zip(eager, jitted, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_vmap_over_operators(getkey):
    keys = jr.split(getkey(), 4)
    for build in (_dense, _low_rank):
        batch = jax.vmap(build)(keys)
        v = jr.normal(getkey(), (D_DIM,))
        X = jr.normal(getkey(), (6, D_DIM))
        batched = jax.vmap(lambda c, v=v, X=X: (c.logdet(), c.solve(v), c.mahalanobis_sq(X)))(batch)
        for i, k in enumerate(keys):
            one = build(k)
            np.testing.assert_allclose(batched[0][i], one.logdet(), rtol=1e-12)
            np.testing.assert_allclose(batched[1][i], one.solve(v), rtol=1e-12)
            np.testing.assert_allclose(batched[2][i], one.mahalanobis_sq(X), rtol=1e-10)


@pytest.mark.parametrize("build", [_dense, _low_rank])
def test_float32_smoke(build, key):
    cov = build(key, dtype=jnp.float32)
    X = jr.normal(key, (10, D_DIM), dtype=jnp.float32)
    for out in (
        cov.solve(X[0]),
        cov.logdet(),
        cov.whiten(X),
        cov.mahalanobis_sq(X),
        cov.sample_noise(key, (3,)),
        cov.as_matrix(),
    ):
        assert out.dtype == jnp.float32
        assert jnp.all(jnp.isfinite(out))
    ref = jnp.einsum("ni,ni->n", X, jnp.linalg.solve(cov.as_matrix(), X.T).T)
    np.testing.assert_allclose(cov.mahalanobis_sq(X), ref, rtol=1e-3)


def test_gradients_finite(key):
    """Gradients of logdet and quad_form flow through both operators."""
    v = jnp.arange(1.0, D_DIM + 1.0)
    for cov in (_dense(key), _low_rank(key)):
        g = eqx.filter_grad(lambda c: c.logdet() + c.quad_form(v))(cov)
        assert all(jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(g))


def test_from_matrix_roundtrip_and_cholesky(key):
    cov = _dense(key)
    again = DenseCovariance.from_cholesky(cov.cholesky())
    np.testing.assert_allclose(again.as_matrix(), cov.as_matrix(), rtol=1e-14)
    # only the lower triangle of L is read
    L = cov.cholesky() + jnp.triu(jnp.ones((D_DIM, D_DIM)), k=1)
    np.testing.assert_allclose(DenseCovariance(L).as_matrix(), cov.as_matrix(), rtol=1e-14)


def test_value_errors():
    with pytest.raises(Exception, match="not positive definite"):
        DenseCovariance.from_matrix(jnp.array([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(Exception, match="not symmetric"):
        DenseCovariance.from_matrix(jnp.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(Exception, match="not positive definite"):
        jax.jit(lambda S: DenseCovariance.from_matrix(S).L)(jnp.array([[1.0, 0.0], [0.0, -1.0]]))
    with pytest.raises(Exception, match="must be > 0"):
        LowRankPlusDiagonal(jnp.ones((2, 1)), jnp.array([1.0, 0.0]))
    with pytest.raises(Exception, match="must be > 0"):
        DenseCovariance(jnp.eye(2)).scale(-1.0)
    unchecked = LowRankPlusDiagonal(jnp.ones((2, 1)), jnp.array([1.0, -1.0]), check=False)
    assert not jnp.isfinite(unchecked.logdet())
    # check=False: a non-PD matrix gives a NaN factor rather than an error
    bad = DenseCovariance.from_matrix(jnp.array([[1.0, 2.0], [2.0, 1.0]]), check=False)
    assert not jnp.all(jnp.isfinite(bad.L))


def test_shape_errors():
    with pytest.raises(ValueError, match="`L`"):
        DenseCovariance(jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="`S`"):
        DenseCovariance.from_matrix(jnp.ones(3))
    with pytest.raises(ValueError, match="`F`"):
        LowRankPlusDiagonal(jnp.ones(3), jnp.ones(3))
    with pytest.raises(ValueError, match="`D`"):
        LowRankPlusDiagonal(jnp.ones((3, 1)), jnp.ones(2))
    cov = DenseCovariance(jnp.eye(3))
    with pytest.raises(ValueError, match="`v`"):
        cov.solve(jnp.ones(2))
    with pytest.raises(ValueError, match="`x`"):
        cov.whiten(jnp.ones(3))
    with pytest.raises(ValueError, match="`v`"):
        cov.quad_form(jnp.ones((3, 2)))
