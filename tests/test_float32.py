"""Dtype follows the inputs: float32 parameters and data give float32 results.

Two settings: x64 enabled (the test default, where strict promotion would catch any
float64 leaking into a float32 computation), and x64 temporarily disabled with
`jax.enable_x64(False)` (the default JAX configuration of most users).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from cases import case_ids, jit_entropy, jit_eta, jit_fit, jit_log_prob, jit_sample


def _f32(tree):
    return jax.tree.map(lambda a: np.asarray(a, dtype=np.float32), tree)


def _run(case, params, key):
    """log_prob, fit (natural parameters), sample and entropy, all jitted."""
    dist = case.build(params)
    x = jnp.asarray(case.points(params, np.random.default_rng(0)), dtype=dist_dtype(dist))
    data = jit_sample(dist, key, (4000,))
    return dist, {
        "log_prob": jit_log_prob(dist, x),
        "entropy": jit_entropy(dist),
        "fit_eta": jit_eta(jit_fit(case.family, data)),
        "sample": data,
    }


def dist_dtype(dist):
    return jax.tree.leaves(dist)[0].dtype


@pytest.mark.parametrize("case", case_ids())
@pytest.mark.parametrize("x64", [True, False], ids=["x64-on", "x64-off"])
def test_float32_in_float32_out(case, x64):
    params = case.fit_grid[0]
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
        np.asarray(out32["log_prob"], np.float64),
        np.asarray(jit_log_prob(dist64, x)),
        rtol=1e-4,
        atol=1e-4,
    )
    np.testing.assert_allclose(
        float(out32["entropy"]), float(jit_entropy(dist64)), rtol=1e-4, atol=1e-4
    )
    eta64 = np.asarray(jit_eta(jit_fit(case.family, data)))
    np.testing.assert_allclose(
        np.asarray(out32["fit_eta"], np.float64),
        eta64,
        rtol=1e-3,
        atol=1e-4 * np.max(np.abs(eta64)),
    )
