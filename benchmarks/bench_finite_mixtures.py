"""Finite-mixture benchmark: normix vs scikit-learn (and gmmx), same data, same start.

One command (from the repository root):

    XLA_PYTHON_CLIENT_PREALLOCATE=false .venv/bin/python benchmarks/bench_finite_mixtures.py

prints a table per section and writes `benchmarks/results/finite_mixtures.json` (sections not
run keep their stored results).
`--quick` shrinks every workload (for a smoke test); `--sections a,b` runs a subset.

Sections (each in its own subprocess, one at a time; the machine is shared, so every
peer is timed in the same run and the ratios are what to read):

* `gmm64`: n = 65,536, d = 32, K = 16, full covariance, 20 EM iterations (tol = 0) in
  float64 from one common start (weights, means, precisions) given to both. scikit-learn
  `GaussianMixture(max_iter=20, tol=0, init_params="random_from_data", weights_init=...,
  means_init=..., precisions_init=...)`.fit (its cheap init is then overwritten by the
  given start); normix `fit_mixture(X, 16, init=start, max_steps=20, tol=0,
  chunk_size=...)` in variants (the default for this size: 512-row blocks with
  quadratic features, with normix's default CPU code generation and with
  `set_cpu_codegen("fast_run")`; 512-row blocks with whitening matmuls; one block), cold
  (first call: trace + compile + run) and warm (best of 3). The
  FLOP limit is 20 x 2 n K d^2 (the whitening matmul of the E-step, ~2.1 GFLOP per
  iteration) divided by the float64 matmul rate measured in the same process (best of 5
  2048 x 2048 products, before and after the normix runs). Final mean log-likelihoods are compared.
* `gmm32`: the same workload in float32: normix vs gmmx (`EMFitter(max_iter=20, tol=0)`,
  warm), with the float32 matmul rate. The float32 default is 512-row blocks with
  whitening; the quadratic-feature variant is timed as the alternative.
* `f32acc`: accuracy, not time: one float32 E-step (mean log-likelihood) per E-step variant
  against float64, at the model 40 float64 EM iterations reach from the `gmm64` start
  (n = 16,384). It is why float32 does not use quadratic features by default.
* `many`: 1000 datasets of 200 points in d = 2 with K = 2 (two shifted Gaussian
  clusters), fitted in one `jax.jit(jax.vmap(fit_mixture))` call (k-means++ start each,
  tol = 1e-6, at most 100 iterations), warm; scikit-learn `GaussianMixture(2, tol=1e-6,
  max_iter=100)` in a Python loop over a subset, extrapolated to 1000.
* `gh`: a 3-component NIG mixture (normix only; no Python peer fits GH mixtures) on
  n = 3000 points in d = 5: time per EM iteration (20 iterations, tol = 0, warm) and the
  cold whole fit.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT_JSON = HERE / "results" / "finite_mixtures.json"
SECTIONS = ("gmm64", "gmm32", "f32acc", "many", "gh")


def _best(f, repeat):
    times = []
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def _matmul_rate(jnp, jax, dtype) -> float:
    a = jnp.asarray(__import__("numpy").random.default_rng(0).normal(size=(2048, 2048)), dtype)
    f = jax.jit(lambda a: a @ a)
    jax.block_until_ready(f(a))
    t, _ = _best(lambda: jax.block_until_ready(f(a)), 5)
    return 2 * 2048**3 / t


def _gmm_data(np, n, d, K, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(K, d))
    labels = rng.integers(0, K, size=n)
    A = rng.normal(scale=0.3, size=(K, d, d)) + np.eye(d)[None]
    X = centres[labels] + np.einsum("nij,nj->ni", A[labels], rng.normal(size=(n, d)))
    # common start: K random data points, the pooled covariance, equal weights
    means0 = X[rng.choice(n, K, replace=False)]
    prec0 = np.broadcast_to(np.linalg.inv(np.cov(X.T)), (K, d, d)).copy()
    w0 = np.full(K, 1.0 / K)
    return X, w0, means0, prec0


def worker_gmm(quick: bool, dtype_name: str) -> dict:
    import jax

    if dtype_name == "float64":
        jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    import normix

    n, d, K, iters = (8192, 16, 8, 20) if quick else (65536, 32, 16, 20)
    X, w0, means0, prec0 = _gmm_data(np, n, d, K)
    dtype = jnp.float64 if dtype_name == "float64" else jnp.float32
    out = {"n": n, "d": d, "K": K, "iterations": iters, "dtype": dtype_name}
    rate = _matmul_rate(jnp, jax, dtype)
    flops = iters * 2.0 * n * K * d * d
    out["matmul_gflops"] = rate / 1e9
    out["flop_limit_s"] = flops / rate

    Xj = jnp.asarray(X, dtype)
    # the default of fit_mixture for this size: 512-row blocks, quadratic features in
    # float64 (built once per fit: `feature_cache_bytes`), whitening in float32 (see the
    # `f32acc` section); the features rebuilt in every block of every iteration, the other
    # block variant and one block for comparison
    quad = dtype_name == "float64"
    cache = 2**30
    # (normix's default CPU code generation "auto" compiles a program for compile speed and
    # moves it to XLA's default code generation once it has run long enough; these few
    # calls stay on the first program, so the default is also timed with "fast_run")
    variants = {
        "normix": (512, quad, cache, "auto"),
        "normix_fast_run": (512, quad, cache, "fast_run"),
        "normix_chunk512_whiten" if quad else "normix_chunk512_quad": (
            512,
            not quad,
            cache,
            "auto",
        ),
        "normix_one_block": (None, False, cache, "auto"),
    }
    if quad:
        variants["normix_chunk512_quad_uncached"] = (512, True, 0, "auto")
    out["variants"] = list(variants)
    for tag, (chunk, quad, cache, codegen) in variants.items():
        normix.set_cpu_codegen(codegen)
        comps = normix.GaussianComponents.from_precisions(
            jnp.asarray(means0, dtype), jnp.asarray(prec0, dtype), "full", quadratic_features=quad
        )
        s = normix.FiniteMixture(
            jnp.asarray(w0, dtype), comps, chunk_size=chunk, feature_cache_bytes=cache
        )

        def run(s=s):
            r = normix.fit_mixture(Xj, K, init=s, max_steps=iters, tol=0.0)
            jax.block_until_ready(r.log_likelihood)
            return r

        t0 = time.perf_counter()
        r = run()
        cold = time.perf_counter() - t0
        warm, r = _best(run, 3)
        out[tag] = {
            "cold_s": cold,
            "warm_s": warm,
            "n_steps": int(r.n_steps),
            "log_likelihood": float(r.log_likelihood),
        }
    out["matmul_gflops_after"] = _matmul_rate(jnp, jax, dtype) / 1e9

    if dtype_name == "float64":
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture

        def sk():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                return GaussianMixture(
                    K,
                    covariance_type="full",
                    max_iter=iters,
                    tol=0.0,
                    init_params="random_from_data",
                    weights_init=w0,
                    means_init=means0,
                    precisions_init=prec0,
                    random_state=0,
                ).fit(X)

        t_sk, g = _best(sk, 1 if not quick else 2)
        out["sklearn"] = {"s": t_sk, "n_iter": int(g.n_iter_), "log_likelihood": float(g.score(X))}
    else:
        try:
            import gmmx

            gm = gmmx.GaussianMixtureModelJax.from_squeezed(
                means=jnp.asarray(means0, dtype),
                covariances=jnp.asarray(np.linalg.inv(prec0), dtype),
                weights=jnp.asarray(w0, dtype),
            )
            fitter = gmmx.EMFitter(max_iter=iters, tol=0.0)

            def gx():
                res = fitter.fit(Xj, gm)
                jax.block_until_ready(res.gmm.means)
                return res

            t0 = time.perf_counter()
            gx()
            cold = time.perf_counter() - t0
            t_gx, res = _best(gx, 3)
            out["gmmx"] = {
                "cold_s": cold,
                "warm_s": t_gx,
                "n_iter": int(res.n_iter),
                "log_likelihood": float(res.gmm.score(Xj)) if hasattr(res.gmm, "score") else None,
            }
        except Exception as e:  # noqa: BLE001 - reported, benchmark goes on
            out["gmmx"] = {"error": f"{type(e).__name__}: {e}"}
    return out


def worker_f32acc(quick: bool) -> dict:
    """Accuracy of one float32 E-step (mean log-likelihood) against float64, per E-step
    variant, at the model float64 EM reaches from the `gmm64` start (40 iterations)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    import normix

    n, d, K = (4096, 16, 8) if quick else (16384, 32, 16)
    X, w0, means0, prec0 = _gmm_data(np, n, d, K)
    comps = normix.GaussianComponents.from_precisions(
        jnp.asarray(means0), jnp.asarray(prec0), "full"
    )
    start = normix.FiniteMixture(jnp.asarray(w0), comps)
    m64 = normix.fit_mixture(jnp.asarray(X), K, init=start, max_steps=40, tol=0.0).model
    ref = float(m64.log_likelihood(jnp.asarray(X), jnp.ones(n)))
    out = {"n": n, "d": d, "K": K, "float64_log_likelihood": ref}
    for tag, (dtype, chunk, quad) in {
        "float64_chunk512_quad": (jnp.float64, 512, True),
        "float32_chunk512_whiten": (jnp.float32, 512, False),
        "float32_chunk512_quad": (jnp.float32, 512, True),
        "float32_one_block": (jnp.float32, None, False),
    }.items():
        c = normix.GaussianComponents(
            jnp.asarray(m64.components.means, dtype),
            jnp.asarray(m64.components.precisions_cholesky, dtype),
            "full",
            quadratic_features=quad,
        )
        m = normix.FiniteMixture(jnp.asarray(m64.weights, dtype), c, chunk_size=chunk)
        ll = float(m.log_likelihood(jnp.asarray(X, dtype), jnp.ones(n, dtype)))
        out[tag] = {"log_likelihood": ll, "relative_error": abs(ll - ref) / abs(ref)}
    return out


def worker_many(quick: bool) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import warnings

    import jax.numpy as jnp
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    import normix

    n_sets, n, K = (100, 200, 2) if quick else (1000, 200, 2)
    rng = np.random.default_rng(1)
    shift = rng.uniform(2.0, 5.0, size=(n_sets, 1, 1))
    lab = rng.integers(0, 2, size=(n_sets, n, 1))
    data = rng.normal(size=(n_sets, n, 2)) + lab * shift
    keys = jax.random.split(jax.random.key(0), n_sets)

    @jax.jit
    def all_fits(data, keys):
        def one(x, k):
            r = normix.fit_mixture(x, K, key=k, max_steps=100, tol=1e-6)
            return r.log_likelihood, r.n_steps

        return jax.vmap(one)(data, keys)

    dj = jnp.asarray(data)
    t0 = time.perf_counter()
    jax.block_until_ready(all_fits(dj, keys))
    cold = time.perf_counter() - t0
    warm, (ll, steps) = _best(lambda: jax.block_until_ready(all_fits(dj, keys)), 2)

    n_loop = 50 if quick else 200

    def loop():
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for i in range(n_loop):
                g = GaussianMixture(K, tol=1e-6, max_iter=100, random_state=i).fit(data[i])
                out.append(g.score(data[i]))
        return out

    t_sk, sk_ll = _best(loop, 1)
    per = t_sk / n_loop
    diff = np.asarray(ll[:n_loop]) - np.asarray(sk_ll)
    return {
        "n_datasets": n_sets,
        "n": n,
        "K": K,
        "normix_cold_s": cold,
        "normix_warm_s": warm,
        "normix_mean_steps": float(np.mean(np.asarray(steps))),
        "sklearn_per_dataset_s": per,
        "sklearn_extrapolated_s": per * n_sets,
        "sklearn_loop_size": n_loop,
        "ll_normix_minus_sklearn_median": float(np.median(diff)),
        "ll_fraction_normix_ge_sklearn_minus_1e-6": float(np.mean(diff >= -1e-6)),
    }


def worker_gh(quick: bool) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    import normix

    n, d, K, iters = (1000, 5, 3, 10) if quick else (3000, 5, 3, 20)
    rng = np.random.default_rng(2)
    comps = [
        normix.NormalInverseGaussian(
            jnp.asarray(rng.normal(scale=4.0, size=d)),
            jnp.asarray(rng.normal(size=d)),
            0.5 * jnp.eye(d),
            jnp.array(1.0),
            jnp.array(1.0),
        )
        for _ in range(K)
    ]
    truth = normix.FiniteMixture(jnp.full((K,), 1.0 / K), comps)
    X = truth.sample(jax.random.key(0), (n,))
    key = jax.random.key(1)
    t0 = time.perf_counter()
    r = normix.fit_mixture(X, K, component=normix.NormalInverseGaussian, key=key)
    jax.block_until_ready(r.log_likelihood)
    cold = time.perf_counter() - t0
    start = r.model

    def run():
        res = normix.fit(start, X, solver=normix.MixtureEM(tol=0.0), max_steps=iters, throw=False)
        jax.block_until_ready(res.log_likelihood)
        return res

    run()
    warm, res = _best(run, 3)
    return {
        "n": n,
        "d": d,
        "K": K,
        "cold_fit_s": cold,
        "cold_fit_steps": int(r.n_steps),
        "per_iteration_ms": 1e3 * warm / int(res.n_steps),
        "iterations": int(res.n_steps),
        "log_likelihood": float(r.log_likelihood),
        "true_model_log_likelihood": float(truth.score(X)),
    }


def _worker(section: str, quick: bool) -> dict:
    if section == "gmm64":
        return worker_gmm(quick, "float64")
    if section == "gmm32":
        return worker_gmm(quick, "float32")
    if section == "f32acc":
        return worker_f32acc(quick)
    if section == "many":
        return worker_many(quick)
    return worker_gh(quick)


def _print(section: str, r: dict) -> None:
    print(f"\n== {section}")
    if "error" in r:
        print("  failed:", r["error"])
        return
    if section.startswith("gmm"):
        print(
            f"  n={r['n']} d={r['d']} K={r['K']} {r['dtype']}, {r['iterations']} iterations; "
            f"matmul {r['matmul_gflops']:.1f} GFLOP/s -> FLOP limit {r['flop_limit_s']:.3f} s"
        )
        for tag in r.get("variants", ("normix", "normix_chunk512_whiten", "normix_one_block")):
            v = r[tag]
            print(
                f"  {tag:<30} warm {v['warm_s']:8.3f} s  cold {v['cold_s']:7.2f} s  "
                f"x limit {v['warm_s'] / r['flop_limit_s']:5.2f}  LL {v['log_likelihood']:.10f}"
            )
        peer = "sklearn" if "sklearn" in r else "gmmx"
        v = r[peer]
        if "error" in v:
            print(f"  {peer}: {v['error']}")
        else:
            t = v.get("s", v.get("warm_s"))
            print(
                f"  {peer:<30} {t:8.3f} s  LL {v['log_likelihood']}  -> normix (default) "
                f"{t / r['normix']['warm_s']:.1f}x faster"
            )
    elif section == "f32acc":
        print(
            f"  one E-step at the float64 EM model (n={r['n']} d={r['d']} K={r['K']}): "
            f"float64 LL {r['float64_log_likelihood']:.10f}"
        )
        for tag, v in r.items():
            if isinstance(v, dict):
                ll, err = v["log_likelihood"], v["relative_error"]
                print(f"  {tag:<24} LL {ll:.10f}  rel. error {err:.1e}")
    elif section == "many":
        print(
            f"  {r['n_datasets']} datasets, n={r['n']}, K={r['K']}: normix one call warm "
            f"{r['normix_warm_s']:.3f} s (cold {r['normix_cold_s']:.2f} s); sklearn loop "
            f"{r['sklearn_extrapolated_s']:.2f} s (extrapolated from {r['sklearn_loop_size']}) "
            f"-> {r['sklearn_extrapolated_s'] / r['normix_warm_s']:.1f}x"
        )
    else:
        print(
            f"  NIG mixture n={r['n']} d={r['d']} K={r['K']}: {r['per_iteration_ms']:.2f} ms per "
            f"iteration; cold whole fit {r['cold_fit_s']:.1f} s ({r['cold_fit_steps']} steps)"
        )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sections", default=",".join(SECTIONS))
    ap.add_argument("--worker", default=None)
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.quick)))
        return
    name = OUT_JSON if not args.quick else OUT_JSON.with_name("finite_mixtures_quick.json")
    # sections not run this time keep their stored results
    results = json.loads(name.read_text()) if name.exists() else {}
    results.pop("loadavg_start", None)
    results.pop("loadavg_end", None)
    results |= {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "quick": args.quick,
        "command": "XLA_PYTHON_CLIENT_PREALLOCATE=false .venv/bin/python "
        "benchmarks/bench_finite_mixtures.py" + (" --quick" if args.quick else ""),
    }
    for section in args.sections.split(","):
        cmd = [sys.executable, __file__, "--worker", section] + (["--quick"] if args.quick else [])
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            if p.returncode != 0:
                r = {"error": p.stderr[-2000:]}
            else:
                r = json.loads(p.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            r = {"error": f"timeout after {args.timeout} s"}
        r["loadavg"] = os.getloadavg()
        results[section] = r
        _print(section, r)
    results["loadavg_end"] = os.getloadavg()
    OUT_JSON.parent.mkdir(exist_ok=True)
    name.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {name}")


if __name__ == "__main__":
    main()
