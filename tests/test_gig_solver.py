"""GIG eta -> theta: round trips, warm starts, jit/vmap, result codes, fixed p."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from normix import (
    GIGNewtonSolver,
    GIGSolverResult,
    gig_expectations,
    solve_gig_natural,
    solve_gig_natural_fixed_p,
)

SOLVER = GIGNewtonSolver()


@jax.jit
@jax.vmap
def _round_trip(p, a, b, th0):
    eta = gig_expectations(p, a, b)
    warm = jnp.all(jnp.isfinite(th0))
    cold = SOLVER.solve(eta)
    hot = SOLVER.solve(eta, jnp.where(warm, th0, jnp.array([p - 1, -b / 2, -a / 2])))
    back = gig_expectations(cold.theta[0] + 1, -2 * cold.theta[2], -2 * cold.theta[1])
    return cold.theta, cold.result._value, cold.num_steps, hot.num_steps, eta, back


def _grid(ps, ws, rs):
    p, w, r = (x.ravel() for x in np.meshgrid(ps, ws, rs, indexing="ij"))
    return p, w / np.sqrt(r), w * np.sqrt(r)  # b / a = r, sqrt(ab) = w


def _check(p, a, b, well_conditioned):
    n = len(p)
    th0 = np.full((n, 3), np.nan)
    th0[:, 0] = p - 1 + 0.05
    th0[:, 1] = -b / 2 * 1.05
    th0[:, 2] = -a / 2 * 0.95
    theta, code, steps, steps_warm, eta, back = (np.asarray(x) for x in _round_trip(p, a, b, th0))
    assert np.all(code == 0)
    # forward round trip: the moment equations hold to ~machine precision everywhere
    res = np.abs(back - eta) / np.maximum(np.abs(eta), 1)
    assert res.max() < 1e-12
    true = np.stack([p - 1, -b / 2, -a / 2], axis=1)
    scale = np.abs(true)
    scale[:, 0] = np.maximum(np.abs(p), 1)  # p relative to max(|p|, 1)
    rel = np.abs(theta - true) / scale
    assert rel[well_conditioned].max() < 1e-9
    return steps, steps_warm


@pytest.mark.slow
def test_round_trip_grid():
    p, a, b = _grid(
        np.array([-50.0, -5.0, -0.5, 0.0, 0.3, 1.0, 2.5, 10.0, 50.0]),
        np.array([1e-3, 0.1, 1.0, 10.0, 100.0]),
        np.array([1e-10, 1.0, 1e10]),
    )
    w = np.sqrt(a * b)
    # For sqrt(ab) <= 1e-3 and |p| large the law is near-(inverse-)Gamma and a (or b) is
    # determined only to its conditioning; the forward residual is checked everywhere.
    steps, steps_warm = _check(p, a, b, (w >= 0.1) & (w <= 100))
    assert steps_warm.mean() < steps.mean()


@pytest.mark.slow
def test_round_trip_extreme_grid():
    """sqrt(ab) down to 1e-6 and up to 1e4: p and a (or b) are recovered; the parameter
    that the law barely depends on (b of a near-Gamma law) only to its conditioning."""
    p, a, b = _grid(
        np.array([-50.0, -20.0, -1.5, 0.0, 1.0, 2.5, 30.0, 50.0]),
        np.array([1e-6, 1e-3, 1.0, 1e3, 1e4]),
        np.array([1e-10, 1e-5, 1.0, 1e5, 1e10]),
    )
    w = np.sqrt(a * b)
    _check(p, a, b, (w >= 1e-3) & (w <= 1e2))


def test_infeasible_eta_reports_code():
    eta = jnp.array([0.0, 0.5, 1.5])  # E[1/Y] E[Y] < 1 violates Jensen
    theta, result = jax.jit(solve_gig_natural)(eta)
    assert result == GIGSolverResult.infeasible_expectation
    eta = jnp.array([1.0, 2.0, 2.0])  # E log Y > log E Y
    _, result = jax.jit(solve_gig_natural)(eta)
    assert result == GIGSolverResult.infeasible_expectation


def test_natural_from_expectation_raises_on_infeasible():
    import normix

    with pytest.raises(Exception, match="Jensen"):
        normix.GIG.natural_from_expectation(jnp.array([0.0, 0.5, 1.5]))


def test_fixed_p():
    p, a, b = 0.7, 1.3, 2.1
    eta = gig_expectations(p, a, b)
    (a2, b2), result = jax.jit(solve_gig_natural_fixed_p)(p, eta[1], eta[2])
    assert result == GIGSolverResult.successful
    np.testing.assert_allclose([float(a2), float(b2)], [a, b], rtol=1e-10)


def test_from_gig_expectation_boundary_limit():
    # eta of a Gamma law (b = 0): either the b -> 0 limit is reached or a code is given
    eta = gig_expectations(3.0, 2.0, 0.0)
    theta, result = jax.jit(solve_gig_natural)(eta)
    ok = result == GIGSolverResult.successful
    if bool(ok):
        np.testing.assert_allclose(np.asarray(theta)[[0, 2]], [2.0, -1.0], rtol=1e-6)
        assert -2 * float(theta[1]) < 1e-6
