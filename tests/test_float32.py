"""Dtype follows the inputs: float32 parameters and data give float32 results.

Two settings: x64 enabled (the test default, where strict promotion would catch any
float64 leaking into a float32 computation), and x64 temporarily disabled with
`jax.enable_x64(False)` (the default JAX configuration of most users).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from cases import case_params


def _f32(tree):
    return jax.tree.map(lambda a: np.asarray(a, dtype=np.float32), tree)


def _run(case, params, key):
    """log_prob, fit (natural parameters), sample and entropy, all jitted."""
    dist = case.build(params)
    x = jnp.asarray(case.points(params, np.random.default_rng(0)), dtype=dist_dtype(dist))
    data = dist.sample(key, (4000,))
    fitted = eqx.filter_jit(case.family.fit)(data)
    return dist, {
        "log_prob": eqx.filter_jit(lambda d, x: d.log_prob(x))(dist, x),
        "entropy": eqx.filter_jit(lambda d: d.entropy())(dist),
        "fit_eta": eqx.filter_jit(lambda d: d.expectation_params())(fitted),
        "sample": data,
    }


def dist_dtype(dist):
    return jax.tree.leaves(dist)[0].dtype


@pytest.mark.parametrize("case,params", case_params(which="fit_grid"))
@pytest.mark.parametrize("x64", [True, False], ids=["x64-on", "x64-off"])
def test_float32_in_float32_out(case, params, x64):
    p32 = _f32(params)
    with jax.enable_x64(x64):
        dist32, out32 = _run(case, p32, jr.key(0))
        assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(dist32))
        for name, value in out32.items():
            assert value.dtype == jnp.float32, name
            assert np.all(np.isfinite(np.asarray(value))), name
        # The same data, refitted in float64 (only possible with x64 on).
        data = np.asarray(out32["sample"], dtype=np.float64)
    dist64 = case.build(params)
    x = case.points(params, np.random.default_rng(0))
    np.testing.assert_allclose(
        np.asarray(out32["log_prob"], np.float64), np.asarray(dist64.log_prob(x)),
        rtol=1e-4, atol=1e-4,
    )
    np.testing.assert_allclose(float(out32["entropy"]), float(dist64.entropy()), rtol=1e-4,
                               atol=1e-4)
    eta64 = np.asarray(case.family.fit(data).expectation_params())
    np.testing.assert_allclose(np.asarray(out32["fit_eta"], np.float64), eta64, rtol=1e-3,
                               atol=1e-4 * np.max(np.abs(eta64)))
