"""Benchmark log K_v(z): accuracy vs mpmath on the extreme grid, throughput vs scipy.

Run: `.venv/bin/python benchmarks/bench_bessel.py`. Writes `benchmarks/results/bessel.json`
and caches the mpmath reference values in `benchmarks/results/bessel_mpmath_ref.npz`.

Grid: v = linspace(-1000, 1000, 101) plus {1e-10, +-0.5, 1.5, 2.5, 19.5, 20.5} (0 is in the
linspace), z = logspace(-300, 9, 101). The derivative reference (mpmath.diff, slow) uses a
documented subsample: every 5th z and every 5th linspace v plus the extra orders.
scipy has no d/dv; its d/dz is formed from the recurrence with kve (for comparison only).

Timings (best of several warm runs, same process, so the ratios are what to compare):
throughput on 1e6 points v ~ U(-5, 5), z ~ U(0.1, 50) of `log_kv`, of value + grad in
(v, z), and of `log_kv_fused`, against scipy `kve`; the "E-step kernel": n = 8312 rows,
one scalar order v = -10.5 (GH, d = 20), z log-uniform on [1e-3, 1e3] (every region
below |v| = 20 is hit) and on [2, 60] (typical posterior arguments), computing
log K_v, d/dv log K_v and both ratios; and the compile time of `jit(hessian(log_kv))`.
"""

import json
import os
import time

import jax
import jax.numpy as jnp
import mpmath as mp
import numpy as np
from scipy.special import kve

from normix._special import log_kv, log_kv_fused, log_kv_ratio


jax.config.update("jax_enable_x64", True)
mp.mp.dps = 40
HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
CACHE = os.path.join(RESULTS, "bessel_mpmath_ref.npz")

V_EXTRA = [1e-10, 0.5, -0.5, 1.5, 2.5, 19.5, 20.5]
V = np.unique(np.concatenate([np.linspace(-1000, 1000, 101), V_EXTRA]))
Z = np.logspace(-300, 9, 101)
V_SUB = np.unique(np.concatenate([np.linspace(-1000, 1000, 101)[::5], V_EXTRA]))
Z_SUB = Z[::5]


def _f(a, b):
    return mp.log(mp.besselk(a, b))


def reference():
    if os.path.exists(CACHE):
        d = np.load(CACHE)
        if d["v"].shape == V.shape and np.all(d["v"] == V) and np.all(d["vs"] == V_SUB):
            return d["logk"], d["dv"], d["dz"]
    t0 = time.time()
    logk = np.array([[float(_f(mp.mpf(a), mp.mpf(b))) for b in Z] for a in V])
    print(f"mpmath values: {time.time() - t0:.0f}s")
    t0 = time.time()
    dv = np.array([[float(mp.diff(lambda s: _f(s, mp.mpf(b)), mp.mpf(a))) for b in Z_SUB]
                   for a in V_SUB])
    # d/dz via d/ds f(v, z e^s) at s = 0 (keeps every evaluation at z > 0)
    dz = np.array([[float(mp.diff(lambda s: _f(mp.mpf(a), b * mp.exp(s)), 0) / b)
                    for b in Z_SUB] for a in V_SUB])
    print(f"mpmath derivatives: {time.time() - t0:.0f}s")
    np.savez_compressed(CACHE, v=V, z=Z, vs=V_SUB, zs=Z_SUB, logk=logk, dv=dv, dz=dz)
    return logk, dv, dz


def stats(x, ref, kind):
    finite = np.isfinite(x)
    if kind == "logk":  # relative; absolute where |log K| < 1
        err = np.abs(x - ref) / np.maximum(1.0, np.abs(ref))
    else:
        err = np.abs(x - ref) / np.maximum(np.abs(ref), np.finfo(float).tiny)
    err = np.where(finite, err, np.inf)
    return {
        "max_rel_err": float(np.max(err)),
        "median_rel_err": float(np.median(err)),
        "pct_finite": float(100 * finite.mean()),
    }


def accuracy():
    logk_ref, dv_ref, dz_ref = reference()
    vv, zz = np.meshgrid(V, Z, indexing="ij")
    ours = np.asarray(jax.jit(log_kv)(vv, zz))
    with np.errstate(all="ignore"):
        sp = np.log(kve(vv, zz)) - zz
    vs, zs = np.meshgrid(V_SUB, Z_SUB, indexing="ij")
    grad = jax.jit(jax.vmap(jax.grad(log_kv, argnums=(0, 1))))
    dv, dz = (np.asarray(g).reshape(vs.shape) for g in grad(vs.ravel(), zs.ravel()))
    with np.errstate(all="ignore"):
        nu = np.abs(vs)
        sp_dz = nu / zs - kve(nu + 1, zs) / kve(nu, zs)
    return {
        "grid": f"{V.size} v x {Z.size} z (derivatives: {V_SUB.size} x {Z_SUB.size})",
        "normix": {"logk": stats(ours, logk_ref, "logk"), "dv": stats(dv, dv_ref, "d"),
                   "dz": stats(dz, dz_ref, "d")},
        "scipy": {"logk": stats(sp, logk_ref, "logk"), "dv": None,
                  "dz": stats(sp_dz, dz_ref, "d")},
    }


def best_of(fn, *args, n=5):
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return min(times)


def throughput(n=10**6):
    rng = np.random.default_rng(0)
    v = rng.uniform(-5, 5, n)
    z = rng.uniform(0.1, 50, n)
    vj, zj = jnp.asarray(v), jnp.asarray(z)
    value = jax.jit(log_kv)
    both = jax.jit(jax.vmap(jax.value_and_grad(log_kv, argnums=(0, 1))))
    fused = jax.jit(log_kv_fused)
    t_sp = best_of(kve, v, z, n=5)
    t_val = best_of(value, vj, zj)
    t_both = best_of(both, vj, zj)
    t_fused = best_of(fused, vj, zj)
    return {"n": n, "scipy_kve_s": t_sp, "normix_value_s": t_val,
            "normix_value_and_grad_v_z_s": t_both, "normix_fused_s": t_fused,
            "ratio_value_vs_scipy": t_val / t_sp, "ratio_value_grad_vs_scipy": t_both / t_sp,
            "ratio_fused_vs_scipy": t_fused / t_sp}


def _separate(v, z):
    """The E-step quantities from the separate functions (what callers did before)."""
    v = jnp.full_like(z, v)
    log_k = log_kv(v, z)
    dv = jax.jvp(lambda a: log_kv(a, z), (v,), (jnp.ones_like(v),))[1]
    ratios = log_kv_ratio(jnp.stack([v, v - 1]), jnp.stack([z, z]))
    return log_k, dv, ratios[0], -ratios[1]


def e_step_kernel(n=8312, v=-10.5):
    rng = np.random.default_rng(1)
    out = {"n": n, "v": v}
    for name, lo, hi in (("wide", 1e-3, 1e3), ("typical", 2.0, 60.0)):
        z = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
        zj = jnp.asarray(z)

        def sp(z=z):  # scipy: K_v and K_{v+1} (no d/dv available)
            return kve(v, z), kve(v + 1, z)

        out[name] = {
            "z_range": [lo, hi],
            "scipy_kve_two_orders_ms": 1e3 * best_of(sp, n=20),
            "normix_value_ms": 1e3 * best_of(jax.jit(log_kv), v, zj, n=20),
            "normix_fused_ms": 1e3 * best_of(jax.jit(log_kv_fused), v, zj, n=20),
            "normix_separate_calls_ms": 1e3 * best_of(jax.jit(_separate), v, zj, n=20),
        }
    return out


def hessian_compile_s():
    t0 = time.perf_counter()
    h = jax.jit(jax.hessian(log_kv, argnums=(0, 1)))
    jax.block_until_ready(h(1.3, 0.7))
    return time.perf_counter() - t0


def main():
    acc = accuracy()
    print(f"Accuracy vs mpmath on {acc['grid']}")
    print(f"{'':8}{'quantity':8}{'max rel':>12}{'median rel':>12}{'% finite':>10}")
    for who in ("normix", "scipy"):
        for q in ("logk", "dv", "dz"):
            s = acc[who][q]
            if s is None:
                print(f"{who:8}{q:8}{'(no d/dv in scipy)':>34}")
                continue
            print(f"{who:8}{q:8}{s['max_rel_err']:12.2e}{s['median_rel_err']:12.2e}"
                  f"{s['pct_finite']:10.1f}")
    thr = throughput()
    print(f"\nThroughput, {thr['n']:.0e} points v~U(-5,5), z~U(0.1,50), best of 5 warm runs")
    print(f"scipy kve            {thr['scipy_kve_s']:.3f} s")
    print(f"normix log_kv        {thr['normix_value_s']:.3f} s  "
          f"({thr['ratio_value_vs_scipy']:.2f}x scipy time)")
    print(f"normix value+dv+dz   {thr['normix_value_and_grad_v_z_s']:.3f} s  "
          f"({thr['ratio_value_grad_vs_scipy']:.2f}x scipy time)")
    print(f"normix log_kv_fused  {thr['normix_fused_s']:.3f} s  "
          f"({thr['ratio_fused_vs_scipy']:.2f}x scipy time)")
    ek = e_step_kernel()
    print(f"\nE-step kernel: n = {ek['n']}, v = {ek['v']} (ms, best of 20)")
    print(f"{'z range':16}{'scipy kve x2':>14}{'log_kv':>10}{'fused':>10}{'separate':>10}")
    for name in ("wide", "typical"):
        r = ek[name]
        print(f"{str(r['z_range']):16}{r['scipy_kve_two_orders_ms']:14.3f}"
              f"{r['normix_value_ms']:10.3f}{r['normix_fused_ms']:10.3f}"
              f"{r['normix_separate_calls_ms']:10.3f}")
    hc = hessian_compile_s()
    print(f"\njit(hessian(log_kv)) compile + first call: {hc:.1f} s")
    with open(os.path.join(RESULTS, "bessel.json"), "w") as fh:
        json.dump({"accuracy": acc, "throughput": thr, "e_step_kernel": ek,
                   "hessian_compile_s": hc, "device": str(jax.devices()[0])}, fh, indent=2)


if __name__ == "__main__":
    main()
