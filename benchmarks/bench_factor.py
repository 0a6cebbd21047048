"""Factor GH (Sigma = F F^T + diag(D)) EM: per-iteration cost, memory, crossover with the
full-Sigma GH, and a side-by-side with the reference library's factor GH.

    .venv/bin/python benchmarks/bench_factor.py            # everything (~20-30 min here)
    .venv/bin/python benchmarks/bench_factor.py --quick    # smoke run, small shapes
    .venv/bin/python benchmarks/bench_factor.py --no-peer  # skip the reference library

Sections (float64, CPU):

1. **Scaling** (n = 10,000; d in {100, 500, 1000, 2000}; r in {5, 10}): time per EM
   iteration of `FactorGeneralizedHyperbolic` (E-step fused with the log-likelihood, then
   M-step, exactly what `normix.fit` runs per step), from the model's own start, measured as
   (t(1 + K iterations) - t(1 iteration)) / K inside one compiled `lax.fori_loop` (best of
   `--reps`), so compilation and dispatch are excluded. Memory: XLA's compiled memory
   analysis of that loop (`jax.jit(...).lower(...).compile().memory_analysis()`:
   `temp_size_in_bytes`, the scratch the iteration needs besides its inputs and outputs;
   the n x d data itself is the argument). `ns_per_ndr` = time / (n d r) shows the
   O(n d r) scaling.
2. **Crossover**: the same figures for the full-Sigma `GeneralizedHyperbolic` (O(n d^2)
   per E-step) at the same n for d up to `--full-max-d`, plus small d where full Sigma wins.
3. **Reference library** (`peer_reference_factor.py`, own venv, subprocess, same data):
   factor GH at d = 500, r = 5, n = 2552 (synthetic factor GH): log-likelihood at each
   library's own convergence, cold/warm whole fits and per-iteration time.

Writes `benchmarks/results/factor.json` (with `os.getloadavg()`; the machine is shared:
compare ratios taken in the same run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)
import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import normix  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
PEER_PYTHON = "/tmp/peer/bin/python"


def simulate_factor_gh(n: int, d: int, r: int, seed: int = 0) -> np.ndarray:
    """X = mu + gamma Y + sqrt(Y) (F z + sqrt(D) eps), Y ~ GIG(-1/2, 1, 1) = IG(1, 1)."""
    rng = np.random.default_rng(seed)
    F = rng.normal(size=(d, r)) / np.sqrt(r)
    D = 0.3 * np.exp(0.3 * rng.normal(size=d))
    mu = 0.05 * rng.normal(size=d)
    gamma = 0.1 * rng.normal(size=d)
    y = rng.wald(1.0, 1.0, size=n)
    z = rng.normal(size=(n, r))
    eps = rng.normal(size=(n, d))
    return mu + np.outer(y, gamma) + np.sqrt(y)[:, None] * (z @ F.T + eps * np.sqrt(D))


def _iteration_loop(model, x, w):
    """A compiled `k`-iteration EM loop over the model's array leaves, and its memory."""
    params, static = eqx.partition(model, eqx.is_array)

    def run(params, k):
        def body(_, carry):
            p, _ = carry
            m = eqx.combine(p, static)
            stats, ll = m.e_step_with_log_likelihood(x, w)
            new = eqx.partition(m.m_step(stats), eqx.is_array)[0]
            return new, ll

        return jax.lax.fori_loop(0, k, body, (params, jnp.zeros((), x.dtype)))

    k0 = jnp.asarray(1, dtype=jnp.int32)
    t0 = time.perf_counter()
    compiled = jax.jit(run).lower(params, k0).compile()
    compile_s = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    temp = getattr(mem, "temp_size_in_bytes", None) if mem is not None else None
    return compiled, params, compile_s, temp


def per_iteration(model, x, w, iters: int, reps: int) -> dict:
    compiled, params, compile_s, temp = _iteration_loop(model, x, w)

    def timed(k):
        best = np.inf
        for _ in range(reps):
            t0 = time.perf_counter()
            out = compiled(params, jnp.asarray(k, dtype=jnp.int32))
            jax.block_until_ready(out)
            best = min(best, time.perf_counter() - t0)
        return best

    t1 = timed(1)
    tk = timed(1 + iters)
    return {
        "per_iter_s": max(tk - t1, 0.0) / iters,
        "one_iter_call_s": t1,
        "compile_s": compile_s,
        "temp_bytes": temp,
    }


def bench_scaling(ds, ranks, n, iters, reps, full_max_d, small_ds) -> list[dict]:
    rows = []
    for d in sorted(set(ds) | set(small_ds)):
        x_np = simulate_factor_gh(n, d, max(ranks), seed=d)
        x = jnp.asarray(x_np)
        w = jnp.ones(n, dtype=x.dtype)
        for r in ranks if d in ds else ranks[:1]:
            if r >= d:
                continue
            model = normix.FactorGeneralizedHyperbolic.initialize(x, w, rank=r)
            res = per_iteration(model, x, w, iters, reps)
            res.update(model="factor_gh", d=d, r=r, n=n)
            res["ns_per_ndr"] = 1e9 * res["per_iter_s"] / (n * d * r)
            rows.append(res)
            print(_fmt(res), flush=True)
        if d <= full_max_d:
            model = normix.GeneralizedHyperbolic.initialize(x, w)
            res = per_iteration(model, x, w, iters, reps)
            res.update(model="full_gh", d=d, r=None, n=n)
            res["ns_per_ndd"] = 1e9 * res["per_iter_s"] / (n * d * d)
            rows.append(res)
            print(_fmt(res), flush=True)
        del x, x_np
    return rows


def _fmt(row: dict) -> str:
    mem = row["temp_bytes"]
    mem_s = "n/a" if mem is None else f"{mem / 2**20:9.1f} MiB"
    r = "-" if row["r"] is None else row["r"]
    return (
        f"{row['model']:>10} d={row['d']:>5} r={r!s:>3} n={row['n']}: "
        f"{1e3 * row['per_iter_s']:9.2f} ms/iter   temp {mem_s}   "
        f"(compile {row['compile_s']:.1f} s)"
    )


def bench_convergence(n, d, r, seed=1) -> tuple[dict, str]:
    """normix factor GH fitted to convergence on the peer-comparison data."""
    x_np = simulate_factor_gh(n, d, r, seed=seed)
    path = f"/tmp/normix_bench_factor_{n}x{d}_r{r}.npy"
    np.save(path, x_np)
    x = jnp.asarray(x_np)
    w = jnp.ones(n, dtype=x.dtype)
    out = {}
    for label in ("cold", "warm"):
        t0 = time.perf_counter()
        res = normix.fit(normix.FactorGeneralizedHyperbolic, x, rank=r, max_steps=500)
        jax.block_until_ready(res)
        out[label] = {
            "fit_s": time.perf_counter() - t0,
            "n_steps": int(res.n_steps),
            "log_likelihood": float(res.log_likelihood),
            "result": str(res.result),
        }
    trace = np.asarray(res.trace[: int(res.n_steps) + 1])
    out["monotone"] = bool(np.all(np.diff(trace) >= -1e-9 * (1 + np.abs(trace[:-1]))))
    model = normix.FactorGeneralizedHyperbolic.initialize(x, w, rank=r)
    out["per_iter"] = per_iteration(model, x, w, iters=10, reps=3)
    out["warm"]["per_iter_s"] = out["warm"]["fit_s"] / max(out["warm"]["n_steps"], 1)
    out.update(n=n, d=d, r=r)
    return out, path


def run_peer(path: str, r: int, fixed_iters: int) -> dict | None:
    if not os.path.exists(PEER_PYTHON):
        print(f"reference library not found at {PEER_PYTHON}; skipped", flush=True)
        return None
    cmd = [
        PEER_PYTHON,
        os.path.join(HERE, "peer_reference_factor.py"),
        "--data",
        path,
        "--rank",
        str(r),
        "--fixed-iters",
        str(fixed_iters),
        "--reps",
        "2",
    ]
    t0 = time.time()
    proc = subprocess.run(cmd, cwd="/tmp", capture_output=True, text=True, timeout=5400)
    if proc.returncode != 0:
        print(proc.stderr[-3000:], flush=True)
        return {"error": proc.stderr[-3000:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["wall_s"] = time.time() - t0
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-peer", action="store_true")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--ds", default="100,500,1000,2000")
    ap.add_argument("--small-ds", default="10,30")
    ap.add_argument("--ranks", default="5,10")
    ap.add_argument("--full-max-d", type=int, default=2000)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(RESULTS, "factor.json"))
    args = ap.parse_args()
    ds = [int(v) for v in args.ds.split(",")]
    small = [int(v) for v in args.small_ds.split(",") if v]
    ranks = [int(v) for v in args.ranks.split(",")]
    n, peer_shape = args.n, (2552, 500, 5)
    if args.quick:
        ds, small, ranks, n, peer_shape = [50, 100], [10], [3], 2000, (600, 40, 3)

    record = {
        "script": "benchmarks/bench_factor.py",
        "argv": sys.argv[1:],
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_start": os.getloadavg(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "dtype": "float64",
        "memory_metric": "XLA compiled memory_analysis().temp_size_in_bytes of the EM loop",
    }
    if not args.no_scaling:
        print("== per-iteration cost (factor GH vs full-Sigma GH)", flush=True)
        record["scaling"] = bench_scaling(
            ds, ranks, n, args.iters, args.reps, args.full_max_d, small
        )
    pn, pd, pr = peer_shape
    print(f"== convergence, n={pn} d={pd} r={pr}", flush=True)
    conv, path = bench_convergence(pn, pd, pr)
    record["normix_fit"] = conv
    print(json.dumps(conv, indent=1), flush=True)
    if not args.no_peer:
        print("== reference library (subprocess)", flush=True)
        peer = run_peer(path, pr, fixed_iters=3)
        record["peer"] = peer
        print(json.dumps(peer, indent=1), flush=True)
        if peer and "fixed" in peer:
            ours = conv["per_iter"]["per_iter_s"]
            record["ratios"] = {
                "peer_per_iter_over_normix": peer["fixed"]["per_iter_s"] / ours,
                "peer_warm_fit_over_normix_warm_fit": peer["warm"]["fit_s"] / conv["warm"]["fit_s"],
                "ll_normix_minus_peer": conv["warm"]["log_likelihood"]
                - peer["warm"]["log_likelihood"],
            }
            print(json.dumps(record["ratios"], indent=1), flush=True)
    record["loadavg_end"] = os.getloadavg()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
