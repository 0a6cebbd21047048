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


_EPS = np.finfo(np.float64).eps


@jax.jit
@jax.vmap
def _fisher(p, a, b):
    theta = jnp.stack([p - 1, -b / 2, -a / 2])
    return jax.jacfwd(lambda t: gig_expectations(t[0] + 1, -2 * t[2], -2 * t[1]))(theta)


def _conditioning_floor(p, a, b, eta, resid):
    r"""Componentwise error of theta forced by rounding eta to float64 (or by the attained
    moment residual `resid`, where larger):
    $|J^{-1}| (|\eta|\,\varepsilon)$ with $J = \partial\eta/\partial\theta = \mathrm{Cov}\,t$.
    No float64 algorithm that is given eta can be more accurate than this."""
    J = np.array(_fisher(p, a, b))
    s = 1 / np.sqrt(np.abs(np.diagonal(J, axis1=1, axis2=2)))  # Jacobi scaling
    Js = J * s[:, :, None] * s[:, None, :]
    singular = ~np.isfinite(Js).all(axis=(1, 2)) | (np.linalg.cond(Js) > 1 / _EPS)
    Js[singular] = np.eye(3)
    J_inv = np.linalg.inv(Js) * s[:, :, None] * s[:, None, :]
    floor = np.einsum("nij,nj->ni", np.abs(J_inv), np.maximum(np.abs(eta) * _EPS, resid))
    floor[singular] = np.inf
    return floor


def _check(p, a, b):
    """Round trip theta -> eta -> theta. Asserted: every solve succeeds; the moment equations
    hold to ~machine precision; each component of theta is recovered to 1e-9 relative, or --
    where rounding eta alone moves it by more (ill-conditioning, e.g. b of a near-Gamma law,
    p of a near-Gaussian law) -- to 20x the conditioning floor. A point is `unidentified`
    where that floor exceeds a parameter's own size: there only the moment equations are
    meaningful. Moment equations: 1e-11 for sqrt(ab) <= 100, 1e-10 beyond (near-Gaussian laws,
    where Newton stops on a flat valley floor)."""
    n = len(p)
    th0 = np.full((n, 3), np.nan)
    th0[:, 0] = p - 1 + 0.05
    th0[:, 1] = -b / 2 * 1.05
    th0[:, 2] = -a / 2 * 0.95
    theta, code, steps, steps_warm, eta, back = (np.asarray(x) for x in _round_trip(p, a, b, th0))
    assert np.all(code == 0)
    true = np.stack([p - 1, -b / 2, -a / 2], axis=1)
    scale = np.abs(true)
    scale[:, 0] = np.maximum(np.abs(p), 1)  # p relative to max(|p|, 1)
    # forward round trip: the moment equations hold to ~machine precision
    res = np.abs(back - eta) / np.maximum(np.abs(eta), 1)
    floor = _conditioning_floor(p, a, b, eta, np.abs(back - eta))
    unidentified = (20 * floor > scale).any(axis=1)
    moderate = np.sqrt(a * b) <= 100
    assert res[moderate & ~unidentified].max() < 1e-11
    assert res.max() < 1e-10
    err = np.abs(theta - true)
    ok = (err <= 1e-9 * scale) | (err <= 20 * floor)
    ok[unidentified] = True
    assert ok.all(), np.argwhere(~ok)
    # and where the problem allows 1e-9, 1e-9 is what we get
    well = (20 * floor <= 1e-9 * scale) & ~unidentified[:, None]
    assert (err[well] <= 1e-9 * scale[well]).all()
    return steps, steps_warm, well, unidentified


@pytest.mark.slow
def test_round_trip_grid():
    p, a, b = _grid(
        np.array([-50.0, -5.0, -0.5, 0.0, 0.3, 1.0, 2.5, 10.0, 50.0]),
        np.array([1e-3, 0.1, 1.0, 10.0, 100.0]),
        np.array([1e-10, 1.0, 1e10]),
    )
    steps, steps_warm, well, unidentified = _check(p, a, b)
    assert well.mean() > 0.6  # the 1e-9 bound is attainable on most of the grid
    assert unidentified.mean() < 0.1


@pytest.mark.slow
def test_round_trip_extreme_grid():
    """sqrt(ab) down to 1e-6 and up to 1e4 with |p| up to 50: every solve succeeds and meets
    the moment equations; at the ends the law is Gamma / inverse-Gamma / Gaussian to
    round-off and a, b or p is not identified at all."""
    p, a, b = _grid(
        np.array([-50.0, -20.0, -1.5, 0.0, 1.0, 2.5, 30.0, 50.0]),
        np.array([1e-6, 1e-3, 1.0, 1e3, 1e4]),
        np.array([1e-10, 1e-5, 1.0, 1e5, 1e10]),
    )
    _check(p, a, b)


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
