"""Normal-mixture EM benchmark: normix vs the reference GH library (PyPI normix 0.4.5).

One command (from the repository root):

    XLA_PYTHON_CLIENT_PREALLOCATE=false .venv/bin/python benchmarks/bench_mixtures.py

prints a table per section and writes `benchmarks/results/mixtures.json`.

Sections (workloads and reference optima: ../shared/BENCHMARKS.md):

1. S&P 20 stocks (n = 8312, d = 20, returns x 100), GH / NIG / skew-t / VG.
   * normix cold: a fresh process (this script in `worker-fit` mode) that imports normix,
     loads the data and fits from the class; wall time from just before the parent
     spawned it (interpreter start-up, imports, compile, initialise, EM).
   * normix warm: in that process, `normix.fit(cls, X)` again (best of 3): total time
     and time / n_steps; and the cleanest per-iteration figure, `normix.fit(model, X,
     max_steps=20, solver=EM(all tolerances 0), throw=False)` from the fitted model
     (first call compiles, then best of 5; divided by the steps actually run: EM stops
     early when an iterate repeats exactly), with normix's default CPU code generation
     ("auto": these calls run the program compiled for compile speed) and again with
     `normix.set_cpu_codegen("fast_run")` (XLA's defaults, where "auto" moves a program
     that has run long enough).
   * peer: `peer_reference_normix.py fit` in the reference library's own venv (cwd
     /tmp): cold (its whole process) and warm (second `default_init` + `fit`, and a
     fixed `max_iter`, `tol=0` run from the warm optimum). GH / skew-t / VG default to
     the scipy ("cpu") E-step, NIG to the pure-JAX one, so NIG is run with both.
     The ratio columns use the peer's fastest path.
2. S&P 500 index (d = 1): the same four families, normix only (peer with --peer-univariate).
3. 1000 univariate NIG datasets (n = 500) fitted in one `jax.vmap`ped, jitted call
   (each dataset from its own moment start: `normix.fit(NormalInverseGaussian, x)`),
   warm (best of 2 after the compiling call); the peer loops over a subset
   (`nig-loop`, warm per-dataset time, extrapolated to 1000); per-dataset LLs compared.

Every measurement runs in a subprocess with a timeout, one at a time (the machine is
shared: read the ratios, not the seconds); a failure is recorded and the rest goes on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA = Path(os.environ.get("NORMIX_BENCH_DATA", "/work/shared/data"))
SP20 = DATA / "sp500_20_log_returns.csv"
SPX = DATA / "sp500_index_log_returns.csv"
PEER_PY = os.environ.get("NORMIX_PEER_PYTHON", "/tmp/peer/bin/python")
PEER_DRIVER = HERE / "peer_reference_normix.py"
OUT_JSON = HERE / "results" / "mixtures.json"

FAMILIES = {
    "gh": "GeneralizedHyperbolic",
    "nig": "NormalInverseGaussian",
    "skewt": "NormalInverseGamma",
    "vg": "VarianceGamma",
}
LABEL = {"gh": "GH", "nig": "NIG", "skewt": "skew-t", "vg": "VG"}
REF_LL = {
    "sp500_20": {"gh": -35.784656, "nig": -35.789887, "skewt": -35.788988, "vg": -35.858959},
    "sp500_index": {"gh": -1.420857, "nig": -1.420858, "skewt": -1.423080, "vg": -1.426084},
}
# peer backends per family (None = the library's own default for that family)
PEER_BACKENDS = {
    "gh": [None],  # default e_step_backend='cpu'
    "nig": [None, "cpu"],  # default e_step_backend='jax'
    "skewt": [None],  # default 'cpu'
    "vg": [None],  # default 'cpu'
}


# ----------------------------------------------------------------------------- workers
def _load_csv(path):
    import numpy as np

    with open(path) as f:
        ncol = len(f.readline().split(","))
    x = np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(1, ncol))
    return x.reshape(-1, ncol - 1) * 100.0


def _emit(obj) -> None:
    print(json.dumps(obj), flush=True)


def _setup_jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def _result_name(normix, r) -> str:
    for name in ("successful", "max_steps_reached", "nonfinite", "decreased"):
        member = getattr(normix.EMResults, name, None)
        if member is not None and bool(r.result == member):
            return name
    return str(r.result)


def worker_fit(args) -> None:
    """Cold fit from the class, then warm fits and a fixed-step per-iteration timing."""
    jax = _setup_jax()
    if args.cache_dir:
        # JAX's persistent compilation cache: what a user's later processes see
        jax.config.update("jax_compilation_cache_dir", args.cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    import numpy as np

    import normix

    X = _load_csv(args.data)
    cls = getattr(normix, FAMILIES[args.family])

    def one():
        t0 = time.perf_counter()
        r = normix.fit(cls, X, throw=False)
        jax.block_until_ready(r)
        return time.perf_counter() - t0, r

    _, r = one()
    cold_s = time.time() - args.launch_time
    out = {
        "family": args.family,
        "data": str(args.data),
        "n": int(X.shape[0]),
        "d": int(X.shape[1]),
        "jax": jax.__version__,
        "normix_file": normix.__file__,
        "devices": [str(d) for d in jax.devices()],
        "cold": {
            "total_s": cold_s,
            "log_likelihood": float(r.log_likelihood),
            "n_steps": int(r.n_steps),
            "converged": bool(r.converged),
            "result": _result_name(normix, r),
        },
    }
    if args.warm_reps == 0:
        _emit(out)
        return
    warm = []
    for _ in range(args.warm_reps):
        dt, r = one()
        warm.append(dt)
    best = min(warm)
    out["warm"] = {
        "times_s": warm,
        "total_s": best,
        "n_steps": int(r.n_steps),
        "per_iter_s": best / max(int(r.n_steps), 1),
        "log_likelihood": float(r.log_likelihood),
    }
    if args.fixed_steps > 0:
        solver = normix.EM(rtol=0.0, atol=0.0, param_rtol=0.0, param_atol=0.0)
        model = r.model

        def fixed_steps():
            times, steps = [], []
            for i in range(args.fixed_reps + 1):
                t0 = time.perf_counter()
                r2 = normix.fit(model, X, max_steps=args.fixed_steps, solver=solver, throw=False)
                jax.block_until_ready(r2)
                dt = time.perf_counter() - t0
                if i == 0:
                    compile_s = dt
                    continue
                times.append(dt)
                steps.append(int(r2.n_steps))
            k = int(np.argmin(times))
            return {
                "max_steps": args.fixed_steps,
                "first_call_s": compile_s,
                "times_s": times,
                "n_steps": steps,
                "per_iter_s": times[k] / max(steps[k], 1),
                "log_likelihood": float(r2.log_likelihood),
            }

        # the default ("auto") code generation: these few calls stay on the program
        # compiled for compile speed; then the same with XLA's default code generation,
        # which "auto" moves a program to once it has run long enough
        out["fixed"] = fixed_steps()
        out["fixed"]["cpu_codegen"] = normix.cpu_codegen()
        normix.set_cpu_codegen("fast_run")
        out["fixed_fast_run"] = fixed_steps()
    _emit(out)


def worker_vmap(args) -> None:
    """Simulate N NIG datasets of size n, fit all in one vmapped call, save a subset."""
    jax = _setup_jax()
    import jax.numpy as jnp
    import numpy as np

    import normix

    true = normix.NormalInverseGaussian([0.05], [-0.1], [[1.0]], mean=1.0, shape=1.5)
    X = true.sample(jax.random.key(args.seed), (args.n_datasets, args.n))  # (N, n, 1)
    X = jax.block_until_ready(X)
    cls = normix.NormalInverseGaussian
    Solver = {"em": normix.EM, "squarem": normix.SQUAREM}[args.solver]
    solver = Solver() if args.rtol is None else Solver(rtol=args.rtol, param_rtol=args.param_rtol)

    @jax.jit
    def fit_all(X):
        def one(x):
            r = normix.fit(cls, x, max_steps=args.max_steps, solver=solver, throw=False)
            ll = r.model.log_likelihood(x, jnp.ones(x.shape[0], x.dtype))
            return ll, r.n_steps, r.converged

        return jax.vmap(one)(X)

    # compile ahead of time (the "first call" minus its run), then time warm calls
    t0 = time.perf_counter()
    compiled = fit_all.lower(X).compile()
    first = time.perf_counter() - t0
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        out = jax.block_until_ready(compiled(X))
        times.append(time.perf_counter() - t0)
    ll, steps, conv = (np.asarray(a) for a in out)
    if args.npz_out:
        np.savez(
            args.npz_out,
            x=np.asarray(X[: args.subset, :, 0]),
            normix_ll=ll[: args.subset],
        )
    _emit(
        {
            "n_datasets": args.n_datasets,
            "n": args.n,
            "max_steps": args.max_steps,
            "solver": repr(solver),
            "compile_s": first,
            "times_s": times,
            "warm_s": min(times),
            "n_steps_max": int(steps.max()),
            "n_steps_mean": float(steps.mean()),
            "n_converged": int(conv.sum()),
            "n_finite_ll": int(np.isfinite(ll).sum()),
            "ll_mean": float(np.nanmean(ll)),
            "subset_ll": ll[: args.subset].tolist(),
        }
    )


# ----------------------------------------------------------------------------- driver
def _loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def _run_json(cmd, *, cwd, timeout, env=None):
    """Run `cmd`, parse the last stdout line as JSON; never raise."""
    t0 = time.time()
    rec = {"cmd": " ".join(map(str, cmd)), "cwd": str(cwd), "loadavg_before": _loadavg()}
    try:
        p = subprocess.run(
            [str(c) for c in cmd],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        rec["error"] = f"timeout after {timeout} s"
        rec["stderr_tail"] = e.stderr[-2000:] if isinstance(e.stderr, str) else ""
        rec["wall_s"] = time.time() - t0
        return None, rec
    rec["wall_s"] = time.time() - t0
    rec["returncode"] = p.returncode
    lines = [ln for ln in p.stdout.strip().splitlines() if ln.strip()]
    if p.returncode != 0 or not lines:
        rec["error"] = f"exit {p.returncode}, {len(lines)} stdout lines"
        rec["stdout_tail"] = p.stdout[-2000:]
        rec["stderr_tail"] = p.stderr[-4000:]
        return None, rec
    try:
        return json.loads(lines[-1]), rec
    except json.JSONDecodeError as e:
        rec["error"] = f"stdout is not JSON: {e}"
        rec["stdout_tail"] = p.stdout[-2000:]
        rec["stderr_tail"] = p.stderr[-4000:]
        return None, rec


def _env():
    env = dict(os.environ)
    env["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
    env.setdefault("JAX_PLATFORMS", env.get("JAX_PLATFORMS", ""))
    if not env["JAX_PLATFORMS"]:
        env.pop("JAX_PLATFORMS")
    return env


def _peer_env():
    env = _env()
    env.pop("PYTHONPATH", None)  # never let the repository's normix in
    env.pop("VIRTUAL_ENV", None)
    return env


def run_normix_cached_cold(family, data, args):
    """Cold fit in a fresh process whose compiled program is already in JAX's persistent
    compilation cache (a first process fills a fresh cache, a second one is timed), with
    default settings: `normix.fit` on concrete data compiles without host callbacks, so
    the cache stores its program."""
    import tempfile

    env = _env()
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(2):
            cmd = [sys.executable, str(Path(__file__).resolve()), "worker-fit"]
            cmd += ["--family", family, "--data", data, "--fixed-steps", 0, "--warm-reps", 0]
            cmd += ["--cache-dir", cache, "--launch-time", repr(time.time())]
            res, rec = _run_json(cmd, cwd=REPO, timeout=args.timeout, env=env)
            if res is None:
                return None, rec
    return res, rec


def run_normix_fit(family, data, args, fixed_steps):
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "worker-fit",
        "--family",
        family,
        "--data",
        data,
        "--fixed-steps",
        fixed_steps,
        "--launch-time",
        repr(time.time()),
    ]
    return _run_json(cmd, cwd=REPO, timeout=args.timeout, env=_env())


def run_peer_fit(family, data, backend, args, fixed_iters, reps):
    cmd = [PEER_PY, str(PEER_DRIVER), "fit", "--family", family, "--data", data]
    if backend is not None:
        cmd += ["--e-backend", backend]
    cmd += ["--fixed-iters", fixed_iters, "--reps", reps, "--launch-time", repr(time.time())]
    return _run_json(cmd, cwd="/tmp", timeout=args.peer_timeout, env=_peer_env())


def _fmt(x, spec="{:.3g}"):
    if x is None:
        return "–"
    try:
        return spec.format(x)
    except (TypeError, ValueError):
        return str(x)


def _ms(x):
    return None if x is None else 1e3 * x


def _ratio(a, b):
    if a is None or b is None or b <= 0:
        return None
    return a / b


def _table(title, header, rows):
    widths = [max([len(str(h))] + [len(str(r[i])) for r in rows]) for i, h in enumerate(header)]
    print(f"\n## {title}\n")
    print("  ".join(str(h).rjust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(str(c).rjust(w) for c, w in zip(r, widths, strict=True)))


def _get(d, *keys):
    for k in keys:
        if d is None:
            return None
        d = d.get(k)
    return d


def section_sp20(args, results):
    print(f"\n# S&P 20 stocks ({SP20.name}); load {_loadavg()}", flush=True)
    sec = results.setdefault("sp500_20", {})
    for fam in args.families:
        entry = sec.setdefault(fam, {"reference_ll": REF_LL["sp500_20"][fam]})
        print(f"  normix {fam} ...", flush=True)
        res, rec = run_normix_fit(fam, SP20, args, args.fixed_steps)
        entry["normix"], entry["normix_run"] = res, rec
        if res is None:
            print(f"    FAILED: {rec.get('error')}\n{rec.get('stderr_tail', '')[-1500:]}")
        if not args.no_cached_cold:
            print(
                f"  normix {fam} (cold, compiled program in the persistent cache) ...", flush=True
            )
            cres, _ = run_normix_cached_cold(fam, SP20, args)
            entry["normix_cached_cold_s"] = _get(cres, "cold", "total_s") if cres else None
        if args.no_peer:
            continue
        entry["peer"] = {}
        for be in PEER_BACKENDS[fam]:
            name = be or "default"
            iters, reps = (3, 1) if (be is None and fam == "nig") else (args.peer_fixed_iters, 2)
            print(f"  peer {fam} (e-backend {name}) ...", flush=True)
            pres, prec = run_peer_fit(fam, SP20, be, args, iters, reps)
            entry["peer"][name] = {"result": pres, "run": prec}
            if pres is None:
                print(f"    FAILED: {prec.get('error')}\n{prec.get('stderr_tail', '')[-1500:]}")
        _summarise_sp20(entry)
        _save(results)


def _summarise_sp20(entry):
    """Pick the peer's fastest path and compute the ratios."""
    n = entry.get("normix")
    peers = {k: v["result"] for k, v in entry.get("peer", {}).items() if v.get("result")}
    s = {}
    if peers:

        def per_it(p):
            cands = [_get(p, "fixed", "per_iter_s"), _get(p, "warm", "per_iter_s")]
            cands = [c for c in cands if c is not None]
            return min(cands) if cands else None

        best_warm = min(peers, key=lambda k: per_it(peers[k]) or float("inf"))
        best_cold = min(peers, key=lambda k: _get(peers[k], "cold", "total_s") or float("inf"))
        s.update(
            peer_warm_backend=best_warm,
            peer_warm_per_iter_s=_get(peers[best_warm], "warm", "per_iter_s"),
            peer_fixed_per_iter_s=_get(peers[best_warm], "fixed", "per_iter_s"),
            peer_per_iter_s=per_it(peers[best_warm]),
            peer_cold_backend=best_cold,
            peer_cold_s=_get(peers[best_cold], "cold", "total_s"),
            peer_ll=max(
                (_get(p, "warm", "log_likelihood") or _get(p, "cold", "log_likelihood") or -1e300)
                for p in peers.values()
            ),
        )
    if n:
        nf = _get(n, "fixed", "per_iter_s")
        nw = _get(n, "warm", "per_iter_s")
        s.update(
            normix_ll=_get(n, "cold", "log_likelihood"),
            normix_cold_s=_get(n, "cold", "total_s"),
            normix_per_iter_s=nf if nf is not None else nw,
            normix_warm_total_s=_get(n, "warm", "total_s"),
        )
        s["ll_minus_reference"] = s["normix_ll"] - entry["reference_ll"]
    s["ratio_per_iter"] = _ratio(s.get("peer_per_iter_s"), s.get("normix_per_iter_s"))
    s["ratio_warm_per_iter"] = _ratio(
        s.get("peer_warm_per_iter_s"), _get(n, "warm", "per_iter_s") if n else None
    )
    s["ratio_cold"] = _ratio(s.get("peer_cold_s"), s.get("normix_cold_s"))
    entry["summary"] = s


def print_sp20(results):
    sec = results.get("sp500_20", {})
    rows = []
    for fam, e in sec.items():
        n, s = e.get("normix") or {}, e.get("summary", {})
        rows.append(
            [
                LABEL[fam],
                _fmt(_get(n, "cold", "log_likelihood"), "{:.6f}"),
                _fmt(s.get("ll_minus_reference"), "{:+.1e}"),
                _fmt(s.get("peer_ll"), "{:.6f}"),
                _fmt(_get(n, "cold", "n_steps"), "{}"),
                _fmt(_get(n, "cold", "total_s"), "{:.1f}"),
                _fmt(e.get("normix_cached_cold_s"), "{:.1f}"),
                _fmt(_ms(_get(n, "warm", "total_s")), "{:.0f}"),
                _fmt(_ms(_get(n, "warm", "per_iter_s")), "{:.2f}"),
                _fmt(_ms(_get(n, "fixed", "per_iter_s")), "{:.2f}"),
                _fmt(_ms(_get(n, "fixed_fast_run", "per_iter_s")), "{:.2f}"),
                _fmt(s.get("peer_cold_s"), "{:.1f}") + f" ({s.get('peer_cold_backend', '')})",
                _fmt(_ms(s.get("peer_warm_per_iter_s")), "{:.0f}"),
                _fmt(_ms(s.get("peer_fixed_per_iter_s")), "{:.0f}")
                + f" ({s.get('peer_warm_backend', '')})",
                _fmt(s.get("ratio_per_iter"), "{:.0f}x"),
                _fmt(s.get("ratio_cold"), "{:.2f}x"),
            ]
        )
    _table(
        "S&P 20 stocks (n=8312, d=20): normix vs reference normix 0.4.5",
        [
            "family",
            "normix LL",
            "-ref",
            "peer LL",
            "steps",
            "cold s",
            "cached cold s",
            "warm ms",
            "ms/it",
            "fixed ms/it",
            "fast_run ms/it",
            "peer cold s",
            "peer ms/it",
            "peer fixed ms/it",
            "ratio/it",
            "ratio cold",
        ],
        rows,
    )
    print(
        "  ratio/it = peer fastest per-iteration (fixed-iteration run) / normix fixed-step "
        "per-iteration (goal >= 20x; normix's default code generation, whose first programs "
        "are compiled for compile speed; fast_run ms/it = the same with XLA's default code "
        "generation, which normix moves a program to once it has run long enough); "
        "ratio cold = peer cold / normix cold (whole process); "
        "cached cold = a fresh normix process whose compiled program is in JAX's persistent "
        "compilation cache (default settings): what a user's later runs of the same script "
        "see once the cache is switched on."
    )
    # per-backend detail
    rows = []
    for fam, e in sec.items():
        for be, v in (e.get("peer") or {}).items():
            p = v.get("result") or {}
            rows.append(
                [
                    LABEL[fam],
                    be,
                    _fmt(_get(p, "cold", "total_s"), "{:.1f}"),
                    _fmt(_get(p, "cold", "init_s"), "{:.1f}"),
                    _fmt(_get(p, "cold", "fit_s"), "{:.1f}"),
                    _fmt(_get(p, "warm", "init_s"), "{:.2f}"),
                    _fmt(_get(p, "warm", "fit_s"), "{:.2f}"),
                    _fmt(_get(p, "warm", "n_iter"), "{}"),
                    _fmt(_ms(_get(p, "warm", "per_iter_s")), "{:.0f}"),
                    _fmt(_ms(_get(p, "fixed", "per_iter_s")), "{:.0f}"),
                    _fmt(_get(p, "warm", "log_likelihood"), "{:.6f}"),
                    v.get("run", {}).get("error", ""),
                ]
            )
    if rows:
        _table(
            "reference library detail",
            [
                "family",
                "e-backend",
                "cold s",
                "cold init",
                "cold fit",
                "warm init",
                "warm fit",
                "iters",
                "ms/it",
                "fixed ms/it",
                "LL",
                "error",
            ],
            rows,
        )


def section_univariate(args, results):
    print(f"\n# S&P 500 index ({SPX.name}); load {_loadavg()}", flush=True)
    sec = results.setdefault("sp500_index", {})
    for fam in args.families:
        entry = sec.setdefault(fam, {"reference_ll": REF_LL["sp500_index"][fam]})
        print(f"  normix {fam} ...", flush=True)
        res, rec = run_normix_fit(fam, SPX, args, args.uni_fixed_steps)
        entry["normix"], entry["normix_run"] = res, rec
        if res is None:
            print(f"    FAILED: {rec.get('error')}\n{rec.get('stderr_tail', '')[-1500:]}")
        else:
            entry["ll_minus_reference"] = res["cold"]["log_likelihood"] - entry["reference_ll"]
        if not args.no_cached_cold:
            print(
                f"  normix {fam} (cold, compiled program in the persistent cache) ...", flush=True
            )
            cres, _ = run_normix_cached_cold(fam, SPX, args)
            entry["normix_cached_cold_s"] = _get(cres, "cold", "total_s") if cres else None
        if args.peer_univariate and not args.no_peer:
            entry["peer"] = {}
            for be in PEER_BACKENDS[fam]:
                name = be or "default"
                iters, reps = (3, 1) if (be is None and fam == "nig") else (0, 1)
                pres, prec = run_peer_fit(fam, SPX, be, args, iters, reps)
                entry["peer"][name] = {"result": pres, "run": prec}
        _save(results)


def print_univariate(results):
    rows = []
    for fam, e in results.get("sp500_index", {}).items():
        n = e.get("normix") or {}
        peers = {k: v.get("result") for k, v in (e.get("peer") or {}).items() if v.get("result")}
        pll = max((_get(p, "warm", "log_likelihood") for p in peers.values()), default=None)
        pit = min((_get(p, "warm", "per_iter_s") for p in peers.values()), default=None)
        rows.append(
            [
                LABEL[fam],
                _fmt(_get(n, "cold", "log_likelihood"), "{:.6f}"),
                _fmt(e["reference_ll"], "{:.6f}"),
                _fmt(e.get("ll_minus_reference"), "{:+.1e}"),
                _fmt(_get(n, "cold", "n_steps"), "{}"),
                str(_get(n, "cold", "result")),
                _fmt(_get(n, "cold", "total_s"), "{:.1f}"),
                _fmt(e.get("normix_cached_cold_s"), "{:.1f}"),
                _fmt(_ms(_get(n, "warm", "total_s")), "{:.1f}"),
                _fmt(_ms(_get(n, "warm", "per_iter_s")), "{:.2f}"),
                _fmt(pll, "{:.6f}"),
                _fmt(_ms(pit), "{:.0f}"),
            ]
        )
    _table(
        "S&P 500 index (n=8312, d=1): normix",
        [
            "family",
            "normix LL",
            "reference",
            "diff",
            "steps",
            "result",
            "cold s",
            "cached cold s",
            "warm ms",
            "ms/it",
            "peer LL",
            "peer ms/it",
        ],
        rows,
    )


def section_vmap(args, results):
    print(f"\n# {args.n_datasets} NIG datasets of n={args.n_obs}; load {_loadavg()}", flush=True)
    sec = results.setdefault("nig_vmap", {})
    npz = HERE / "results" / "_nig_datasets_subset.npz"
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "worker-vmap",
        "--n-datasets",
        args.n_datasets,
        "--n",
        args.n_obs,
        "--subset",
        args.peer_datasets,
        "--npz-out",
        npz,
        "--max-steps",
        args.vmap_max_steps,
        "--reps",
        args.vmap_reps,
    ]
    if args.vmap_rtol is not None:
        cmd += ["--rtol", args.vmap_rtol, "--param-rtol", args.vmap_param_rtol]
    sec["normix_runs"] = {}
    for solver in args.vmap_solvers:
        print(f"  normix vmap ({solver}) ...", flush=True)
        res, rec = _run_json(cmd + ["--solver", solver], cwd=REPO, timeout=args.timeout, env=_env())
        sec["normix_runs"][solver] = {"normix": res, "run": rec}
        if res is None:
            print(f"    FAILED: {rec.get('error')}\n{rec.get('stderr_tail', '')[-1500:]}")
    if not any(r["normix"] for r in sec["normix_runs"].values()):
        return
    if args.no_peer:
        return
    sec["peer"] = {}
    for be in args.peer_loop_backends:
        name = be or "default"
        cmd = [PEER_PY, str(PEER_DRIVER), "nig-loop", "--data", npz]
        cmd += ["--n-datasets", args.peer_datasets]
        if be is not None:
            cmd += ["--e-backend", be]
        print(f"  peer nig-loop (e-backend {name}) ...", flush=True)
        pres, prec = _run_json(cmd, cwd="/tmp", timeout=args.peer_timeout, env=_peer_env())
        sec["peer"][name] = {"result": pres, "run": prec}
        if pres is None:
            print(f"    FAILED: {prec.get('error')}\n{prec.get('stderr_tail', '')[-1500:]}")
    try:
        npz.unlink()
    except OSError:
        pass
    _summarise_vmap(sec)


def _summarise_vmap(sec):
    for run in sec["normix_runs"].values():
        if run["normix"]:
            run["summary"] = _summarise_vmap_run(run["normix"], sec)


def _summarise_vmap_run(n, sec):
    import statistics

    peers = {k: v["result"] for k, v in sec.get("peer", {}).items() if v.get("result")}
    s = {
        "normix_warm_s": n["warm_s"],
        "normix_compile_s": n["compile_s"],
        # the vmapped while_loop runs every dataset for the slowest one's steps
        "normix_per_dataset_step_ms": 1e3
        * n["warm_s"]
        / (n["n_datasets"] * max(n["n_steps_max"], 1)),
    }
    if peers:
        per = {k: statistics.median(p["times_s"]) for k, p in peers.items()}
        best = min(per, key=per.get)
        p = peers[best]
        sub = len(p["log_likelihoods"])
        nl = n["subset_ll"][:sub]
        diffs = [a - b for a, b in zip(nl, p["log_likelihoods"], strict=False)]
        s.update(
            peer_backend=best,
            peer_per_dataset_s=per[best],
            peer_mean_per_dataset_s=sum(p["times_s"]) / len(p["times_s"]),
            peer_extrapolated_s=per[best] * n["n_datasets"],
            peer_subset=sub,
            ratio=per[best] * n["n_datasets"] / n["warm_s"],
            ll_diff_normix_minus_peer=diffs,
            ll_diff_min=min(diffs),
            ll_check_pass=bool(min(diffs) >= -1e-6),
        )
    return s


def print_vmap(results):
    sec = results.get("nig_vmap")
    if not sec or not sec.get("normix_runs"):
        return
    rows = []
    for solver, run in sec["normix_runs"].items():
        if not run.get("normix"):
            continue
        n, s = run["normix"], run.get("summary", {})
        rows.append(
            [
                solver,
                n["n_datasets"],
                n["n"],
                _fmt(n["compile_s"], "{:.1f}"),
                _fmt(n["warm_s"], "{:.2f}"),
                _fmt(s.get("normix_per_dataset_step_ms"), "{:.3f}"),
                f"{n['n_steps_mean']:.1f}/{n['n_steps_max']}",
                f"{n['n_converged']}/{n['n_datasets']}",
                _fmt(_ms(s.get("peer_per_dataset_s")), "{:.0f}")
                + f" ({s.get('peer_backend', '')})",
                _fmt(s.get("peer_extrapolated_s"), "{:.0f}"),
                _fmt(s.get("ratio"), "{:.0f}x"),
                _fmt(s.get("ll_diff_min"), "{:+.1e}"),
                s.get("ll_check_pass"),
            ]
        )
    _table(
        "1000 univariate NIG fits in one vmapped call",
        [
            "solver",
            "N",
            "n",
            "compile s",
            "warm s",
            "ms/(dataset*step)",
            "steps mean/max",
            "converged",
            "peer ms/dataset",
            "peer x1000 s",
            "ratio",
            "min LL diff",
            "LL ok",
        ],
        rows,
    )
    print(
        f"  normix solver {n.get('solver')}, max_steps {n['max_steps']}; peer: median warm "
        "time per dataset over the subset, x N; LL diff = normix - peer per dataset on the "
        "subset (must be >= -1e-6)."
    )


def _machine_info():
    info = {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "loadavg_start": _loadavg(),
    }
    try:
        info["cpu_model"] = next(
            ln.split(":", 1)[1].strip()
            for ln in open("/proc/cpuinfo")
            if ln.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    try:
        import jax

        info["jax"] = jax.__version__
    except ImportError:
        pass
    for key, cmd in {
        "git_commit": ["git", "rev-parse", "HEAD"],
        "git_dirty": ["git", "status", "--porcelain", "--untracked-files=no"],
    }.items():
        try:
            o = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=30).stdout
            info[key] = o.strip() if key == "git_commit" else bool(o.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        o = subprocess.run(
            [PEER_PY, "-c", "import importlib.metadata as m; print(m.version('normix'))"],
            cwd="/tmp",
            capture_output=True,
            text=True,
            timeout=60,
            env=_peer_env(),
        )
        info["peer_normix_version"] = o.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["peer_normix_version"] = None
    return info


_RESULTS_PATH = [OUT_JSON]


def _save(results):
    path = _RESULTS_PATH[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1, default=str))
    tmp.replace(path)


def main_bench(args):
    _RESULTS_PATH[0] = Path(args.out)
    t_start = time.time()
    results = {
        "benchmark": "normal-mixture EM, normix vs reference normix 0.4.5 (PyPI)",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": _machine_info(),
        "settings": {k: v for k, v in vars(args).items() if k not in ("func",) and not callable(v)},
        "notes": [
            "Machine shared with other engineers: compare ratios within this run.",
            "normix cold = wall time of a fresh process (start-up, imports, data load, "
            "compile, initialise, EM) until the first fit from the class returns.",
            "normix fixed ms/it = fit from the fitted model with all tolerances 0, "
            "max_steps fixed; time / steps actually run (EM stops when an iterate repeats "
            "exactly); best of reps after a compiling call.",
            "peer cold = wall time from spawn to the end of default_init + fit in a fresh "
            "process; peer ms/it = warm fit time / n_iter, and fixed = fit(max_iter=K, tol=0) "
            "from the warm optimum (pure-JAX E-step: K=3, 1 rep; else K=peer_fixed_iters, "
            "best of 2).",
            "peer fits stop at its default tol=1e-3 (parameter change), so its LL may sit "
            "slightly below the optimum.",
        ],
    }
    print(f"machine: {results['machine']}", flush=True)
    _save(results)
    if "sp20" in args.sections:
        section_sp20(args, results)
    if "uni" in args.sections:
        section_univariate(args, results)
    if "vmap" in args.sections:
        section_vmap(args, results)
    results["machine"]["loadavg_end"] = _loadavg()
    results["total_wall_s"] = time.time() - t_start
    _save(results)
    print_sp20(results)
    print_univariate(results)
    print_vmap(results)
    print(
        f"\nload average start {results['machine']['loadavg_start']}, "
        f"end {results['machine']['loadavg_end']}; total {results['total_wall_s']:.0f} s; "
        f"written {args.out}"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd")

    w = sub.add_parser("worker-fit", help="(internal) one normix family in a fresh process")
    w.add_argument("--family", choices=sorted(FAMILIES), required=True)
    w.add_argument("--data", required=True)
    w.add_argument("--launch-time", type=float, required=True)
    w.add_argument("--warm-reps", type=int, default=3)
    w.add_argument("--cache-dir", default=None, help="use JAX's persistent compilation cache")
    w.add_argument("--fixed-steps", type=int, default=20)
    w.add_argument("--fixed-reps", type=int, default=5)
    w.set_defaults(func=worker_fit)

    v = sub.add_parser("worker-vmap", help="(internal) vmapped NIG fits")
    v.add_argument("--n-datasets", type=int, default=1000)
    v.add_argument("--n", type=int, default=500)
    v.add_argument("--max-steps", type=int, default=500)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--reps", type=int, default=1)
    v.add_argument("--rtol", type=float, default=None, help="None: normix.EM() defaults")
    v.add_argument("--param-rtol", type=float, default=1e-6)
    v.add_argument("--subset", type=int, default=10)
    v.add_argument("--solver", default="em", choices=["em", "squarem"])
    v.add_argument("--npz-out", default=None)
    v.set_defaults(func=worker_vmap)

    b = sub.add_parser("run", help="the benchmark (default)")
    b.add_argument(
        "--sections", nargs="+", default=["sp20", "uni", "vmap"], choices=["sp20", "uni", "vmap"]
    )
    b.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    b.add_argument("--fixed-steps", type=int, default=20)
    b.add_argument(
        "--uni-fixed-steps",
        type=int,
        default=0,
        help="fixed-step per-iteration timing on the index too (costs a compile)",
    )
    b.add_argument("--peer-fixed-iters", type=int, default=5)
    b.add_argument("--peer-univariate", action="store_true")
    b.add_argument("--no-peer", action="store_true")
    b.add_argument("--no-cached-cold", action="store_true", help="skip the cached-cold runs")
    b.add_argument("--n-datasets", type=int, default=1000)
    b.add_argument("--n-obs", type=int, default=500)
    b.add_argument("--vmap-max-steps", type=int, default=500)
    b.add_argument("--vmap-reps", type=int, default=1)
    b.add_argument(
        "--vmap-rtol",
        type=lambda s: None if s == "default" else float(s),
        default=1e-6,
        help="EM rtol for the vmapped fits ('default': EM())",
    )
    b.add_argument("--vmap-param-rtol", type=float, default=1e-2)
    b.add_argument(
        "--vmap-solvers", nargs="+", default=["em", "squarem"], choices=["em", "squarem"]
    )
    b.add_argument("--peer-datasets", type=int, default=10)
    b.add_argument(
        "--peer-loop-backends",
        nargs="+",
        default=["cpu"],
        type=lambda s: None if s == "default" else s,
        help="e-backends for the peer NIG loop ('default' = its own: jax)",
    )
    b.add_argument("--timeout", type=int, default=900, help="per normix subprocess (s)")
    b.add_argument("--peer-timeout", type=int, default=900, help="per peer subprocess (s)")
    b.add_argument("--out", default=str(OUT_JSON))
    b.set_defaults(func=main_bench)

    argv = sys.argv[1:]
    if not argv or argv[0] not in ("worker-fit", "worker-vmap", "run", "-h", "--help"):
        argv = ["run", *argv]
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
