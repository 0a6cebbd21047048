"""GIG distribution and survival functions against mpmath quadrature (25 digits), and the
Gamma / inverse-Gamma limits against scipy."""

from pathlib import Path

import jax
import mpmath as mp
import numpy as np
import pytest
import scipy.stats as st

import normix
from normix._distributions._gig_cdf import gig_cdf, gig_survival


def _reference_tail(y, p, a, b):
    """The tail of GIG(p, a, b) on the side of y away from the mode, in mpmath: the
    integral of e^{l(u)} / Z over u = log t, split into pieces no longer than half the
    local length scale 1 / max(|l'|, sqrt(l''), 1/2), until l has fallen 80 below l(c)."""
    mp.mp.dps = 25
    P, A, B = mp.mpf(p), mp.mpf(a), mp.mpf(b)
    log_z = mp.log(2) + P / 2 * mp.log(B / A) + mp.log(mp.besselk(P, mp.sqrt(A * B)))
    u_mode = float(mp.log((P + mp.sqrt(P * P + A * B)) / A))

    def ell(u):
        return p * u - 0.5 * (a * np.exp(u) + b * np.exp(-u))

    c = float(np.log(y))
    lower = c <= u_mode
    step_dir = -1.0 if lower else 1.0
    pts, u = [c], c
    while ell(u) > ell(c) - 80 and len(pts) < 5000:
        d1 = abs(p - 0.5 * (a * np.exp(u) - b * np.exp(-u)))
        d2 = 0.5 * (a * np.exp(u) + b * np.exp(-u))
        u += step_dir * 0.5 / max(d1, np.sqrt(d2), 0.5)
        pts.append(u)
    pts.sort()

    def f(t):
        return mp.exp(P * t - (A * mp.exp(t) + B * mp.exp(-t)) / 2 - log_z)

    tail = mp.fsum(mp.quad(f, [pts[i], pts[i + 1]]) for i in range(len(pts) - 1))
    return float(tail), lower


# (p, a, b): sqrt(ab) from 1e-8 to 1e4, b/a from 1e-10 to 1e10, |p| up to 50
REGIMES = [
    (0.5, 1.0, 2.0),
    (-1.5, 3.0, 0.2),
    (30.0, 1e-5, 1e5),
    (2.0, 1e-3, 5.0),
    (-50.0, 2.0, 3.0),
    (50.0, 1e3, 1e-3),
    (0.1, 1e-6, 1e-6),
    (-0.3, 1e-6, 1e-6),
    (-0.7, 1e4, 1e4),
    (5.0, 1e-8, 10.0),
    (-5.0, 10.0, 1e-8),
    (1e-3, 1e-8, 1e-8),
]
DROPS = (0.1, 1.5, 12.0, 70.0)  # points where the log-density is this far below its peak


def _points():
    """For each regime, the y on either side of the mode where l(log y) = l(u_mode) - t,
    t in DROPS (bisection in u): tails from about 1e-32 to 0.5."""
    rows = []
    for p, a, b in REGIMES:

        def ell(u, p=p, a=a, b=b):
            return p * u - 0.5 * (a * np.exp(u) + b * np.exp(-u))

        u_mode = np.log((p + np.sqrt(p * p + a * b)) / a)
        for t in DROPS:
            for side in (-1.0, 1.0):
                lo, hi = 0.0, 1.0
                while ell(u_mode + side * hi) > ell(u_mode) - t:
                    hi *= 2
                for _ in range(100):
                    mid = 0.5 * (lo + hi)
                    if ell(u_mode + side * mid) > ell(u_mode) - t:
                        lo = mid
                    else:
                        hi = mid
                rows.append((float(np.exp(u_mode + side * lo)), p, a, b))
    return np.array(rows)


REF_FILE = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "gig_cdf_mpmath_ref.npz"


def _evaluate(pts, tails, lower):
    f = jax.jit(lambda y, p, a, b: (gig_cdf(y, p, a, b), gig_survival(y, p, a, b)))
    cdf, sf = (np.asarray(v) for v in f(*pts.T))
    return pts, tails, lower, cdf, sf


@pytest.fixture(scope="module")
def grid():
    """The mpmath reference over the whole grid, stored by `python
    benchmarks/gig_cdf_reference.py` (computing it takes ~20 s); a sample of it is
    recomputed live in `test_stored_reference_is_current`, the whole grid in the slow
    `test_live_reference_whole_grid`."""
    ref = np.load(REF_FILE)
    # same grid as the code (up to the last bits of numpy's exp/log, which differ between
    # CPUs; the reference is evaluated at the stored points)
    np.testing.assert_allclose(ref["points"], _points(), rtol=1e-12, atol=0)
    return _evaluate(ref["points"], ref["tails"], ref["lower"])


def test_stored_reference_is_current(grid):
    pts, tails, lower, _, _ = grid
    for i in range(0, len(pts), 17):
        tail, low = _reference_tail(*pts[i])
        assert low == lower[i] and tail == pytest.approx(tails[i], rel=1e-15)


@pytest.mark.slow
def test_live_reference_whole_grid():
    pts = _points()
    ref = [_reference_tail(*row) for row in pts]
    _, tails, lower, cdf, sf = _evaluate(
        pts, np.array([r[0] for r in ref]), np.array([r[1] for r in ref])
    )
    rel = np.abs(np.where(lower, cdf, sf) / tails - 1)
    assert rel.max() <= 1e-10


def test_tails_relative_accuracy_vs_mpmath(grid):
    pts, tails, lower, cdf, sf = grid
    assert np.all(tails > 0)
    ours = np.where(lower, cdf, sf)
    rel = np.abs(ours / tails - 1)
    worst = int(np.argmax(rel))
    assert rel.max() <= 1e-10, f"rel {rel.max():.2e} at (y, p, a, b) = {pts[worst]}"
    # the tails span ~1e-32 .. 0.5: deep tails keep relative accuracy
    assert tails.min() < 1e-25


def test_cdf_absolute_accuracy_and_complement(grid):
    _, tails, lower, cdf, sf = grid
    ref_cdf = np.where(lower, tails, 1 - tails)
    np.testing.assert_allclose(cdf, ref_cdf, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cdf + sf, 1.0, rtol=0, atol=1e-15)


def test_monotone_ends_and_improper():
    y = np.geomspace(1e-10, 1e10, 400)
    for p, a, b in [(0.1, 1e-6, 1e-6), (-2.0, 3.0, 0.5)]:
        f = np.asarray(gig_cdf(y, p, a, b))
        assert np.all(np.diff(f) >= 0) and f[0] < 1e-3 and f[-1] > 1 - 1e-3
    assert float(gig_cdf(0.0, 0.5, 1.0, 2.0)) == 0.0
    assert float(gig_cdf(np.inf, 0.5, 1.0, 2.0)) == 1.0
    assert float(gig_survival(0.0, 0.5, 1.0, 2.0)) == 1.0
    assert np.isnan(float(gig_cdf(1.0, 0.5, 0.0, 2.0)))  # a = 0 needs p < 0
    assert np.isnan(float(gig_cdf(np.nan, 0.5, 1.0, 2.0)))


def test_gamma_and_inverse_gamma_limits_vs_scipy():
    y = np.array([0.05, 0.7, 1.3, 6.0])
    np.testing.assert_allclose(
        np.asarray(gig_cdf(y, 3.0, 2.0, 0.0)), st.gamma(3.0).cdf(y), rtol=1e-13
    )
    np.testing.assert_allclose(
        np.asarray(gig_survival(y, 3.0, 2.0, 0.0)), st.gamma(3.0).sf(y), rtol=1e-13
    )
    ig = st.invgamma(2.5, scale=1.5)
    np.testing.assert_allclose(np.asarray(gig_cdf(y, -2.5, 0.0, 3.0)), ig.cdf(y), rtol=1e-13)
    np.testing.assert_allclose(np.asarray(gig_survival(y, -2.5, 0.0, 3.0)), ig.sf(y), rtol=1e-13)


def test_class_methods_and_float32():
    d = normix.GIG(0.7, 1.3, 2.1)
    y = np.array([0.2, 1.0, 4.0])
    np.testing.assert_allclose(np.asarray(d.cdf(y)), np.asarray(gig_cdf(y, 0.7, 1.3, 2.1)))
    np.testing.assert_allclose(np.asarray(d.survival(y)), 1 - np.asarray(d.cdf(y)), atol=1e-15)
    y32 = np.asarray(y, np.float32)
    f32 = gig_cdf(y32, np.float32(0.7), np.float32(1.3), np.float32(2.1))
    assert f32.dtype == np.float32
    np.testing.assert_allclose(np.asarray(f32), np.asarray(d.cdf(y)), rtol=1e-5)
