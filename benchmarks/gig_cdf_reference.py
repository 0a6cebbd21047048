"""Store the mpmath reference of tests/test_gig_cdf.py (GIG tails on its grid of regimes)
in benchmarks/results/gig_cdf_mpmath_ref.npz, and print the accuracy table of
`gig_cdf` / `gig_survival` against it (max and median relative error of the tail away
from the mode, per regime).

    python benchmarks/gig_cdf_reference.py
"""

import sys
import time
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import test_gig_cdf as grid_def  # noqa: E402

from normix._distributions._gig_cdf import gig_cdf, gig_survival  # noqa: E402


def main() -> None:
    pts = grid_def._points()
    t0 = time.perf_counter()
    ref = [grid_def._reference_tail(*row) for row in pts]
    seconds = time.perf_counter() - t0
    tails = np.array([r[0] for r in ref])
    lower = np.array([r[1] for r in ref])
    np.savez(grid_def.REF_FILE, points=pts, tails=tails, lower=lower)
    cdf = np.asarray(gig_cdf(*pts.T))
    sf = np.asarray(gig_survival(*pts.T))
    rel = np.abs(np.where(lower, cdf, sf) / tails - 1)
    per = len(pts) // len(grid_def.REGIMES)
    print(f"mpmath reference: {len(pts)} points in {seconds:.1f} s -> {grid_def.REF_FILE}")
    print(f"{'p':>7} {'a':>8} {'b':>8}  {'max rel':>8} {'median':>8} {'min tail':>9}")
    for i, (p, a, b) in enumerate(grid_def.REGIMES):
        r, t = rel[i * per : (i + 1) * per], tails[i * per : (i + 1) * per]
        print(f"{p:7g} {a:8.1e} {b:8.1e}  {r.max():8.1e} {np.median(r):8.1e} {t.min():9.1e}")
    print(f"all: max {rel.max():.1e}, median {np.median(rel):.1e}")


if __name__ == "__main__":
    main()
