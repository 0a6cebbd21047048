"""GIG benchmark: sampling vs scipy (fixed and per-draw parameters), batched eta->theta
solves per second, and the round-trip accuracy over the parameter grid.

Run: `.venv/bin/python benchmarks/bench_gig.py` (writes benchmarks/results/gig.json).
"""

import json
import os
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.random as jr  # noqa: E402
import numpy as np  # noqa: E402
import scipy.stats as st  # noqa: E402

from normix import GIGNewtonSolver, gig_expectations, sample_gig  # noqa: E402


def _time(f, reps=3):
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(f())
        best = min(best, time.perf_counter() - t)
    return best


def main():
    out = {"loadavg_start": list(os.getloadavg())}
    # ---- 1e6 draws, fixed parameters
    p, a, b = 0.5, 1.3, 2.1
    w, s = np.sqrt(a * b), np.sqrt(b / a)
    f = jax.jit(sample_gig, static_argnums=4)
    f(jr.key(0), p, a, b, (1_000_000,)).block_until_ready()
    t_nx = _time(lambda: f(jr.key(1), p, a, b, (1_000_000,)))
    rng = np.random.default_rng(0)
    t_sp = _time(lambda: st.geninvgauss.rvs(p, w, scale=s, size=1_000_000, random_state=rng))
    out["fixed_1e6"] = {"normix_s": t_nx, "scipy_s": t_sp, "speedup": t_sp / t_nx}

    # ---- 1e5 draws, distinct parameters per draw
    n = 100_000
    ps = rng.uniform(-3, 3, n)
    as_ = np.exp(rng.uniform(-3, 3, n))
    bs = np.exp(rng.uniform(-3, 3, n))
    g = jax.jit(sample_gig)
    g(jr.key(0), ps, as_, bs).block_until_ready()
    t_nx = _time(lambda: g(jr.key(2), ps, as_, bs))
    m = 2000  # scipy: vectorised rvs with array parameters (its fastest path), subsample
    t_sp = _time(
        lambda: st.geninvgauss.rvs(
            ps[:m], np.sqrt(as_[:m] * bs[:m]), scale=np.sqrt(bs[:m] / as_[:m]), random_state=rng
        ),
        reps=1,
    ) * (n / m)
    out["per_draw_1e5"] = {"normix_s": t_nx, "scipy_s_extrapolated": t_sp, "speedup": t_sp / t_nx}

    # ---- eta -> theta solves per second (vmap), and round-trip accuracy
    solver = GIGNewtonSolver()

    @jax.jit
    @jax.vmap
    def solve(p, a, b):
        eta = gig_expectations(p, a, b)
        sol = solver.solve(eta)
        return sol.theta, sol.result._value

    n = 10_000
    ps = rng.uniform(-5, 5, n)
    ws = np.exp(rng.uniform(np.log(1e-2), np.log(1e2), n))
    rs = np.exp(rng.uniform(np.log(1e-5), np.log(1e5), n))
    aa, bb = ws / np.sqrt(rs), ws * np.sqrt(rs)
    solve(ps, aa, bb)[0].block_until_ready()
    t = _time(lambda: solve(ps, aa, bb), reps=2)
    theta, code = (np.asarray(x) for x in solve(ps, aa, bb))
    true = np.stack([ps - 1, -bb / 2, -aa / 2], 1)
    rel = np.abs(theta - true) / np.abs(true)
    rel[:, 0] = np.abs(theta[:, 0] - true[:, 0]) / np.maximum(np.abs(ps), 1)
    out["solves"] = {
        "n": n,
        "seconds": t,
        "solves_per_s": n / t,
        "success_fraction": float(np.mean(code == 0)),
        "round_trip_max_rel_err": float(rel.max()),
        "round_trip_median_rel_err": float(np.median(rel.max(1))),
    }

    print(f"{'benchmark':<28}{'normix':>12}{'scipy':>12}{'ratio':>10}")
    print(
        f"{'1e6 draws, fixed params':<28}{out['fixed_1e6']['normix_s']:>12.4f}"
        f"{out['fixed_1e6']['scipy_s']:>12.4f}{out['fixed_1e6']['speedup']:>10.2f}"
    )
    print(
        f"{'1e5 draws, per-draw params':<28}{out['per_draw_1e5']['normix_s']:>12.4f}"
        f"{out['per_draw_1e5']['scipy_s_extrapolated']:>12.4f}"
        f"{out['per_draw_1e5']['speedup']:>10.2f}"
    )
    print(
        f"eta->theta: {out['solves']['solves_per_s']:.0f} solves/s (vmap, n={n}), "
        f"success {out['solves']['success_fraction']:.4f}, max rel err "
        f"{out['solves']['round_trip_max_rel_err']:.2e}"
    )
    out["loadavg_end"] = list(os.getloadavg())
    path = os.path.join(os.path.dirname(__file__), "results", "gig.json")
    with open(path, "w") as fh:
        json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()
