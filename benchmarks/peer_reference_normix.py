"""Drive the *reference* GH library (PyPI `normix` 0.4.5, xshi19) for side-by-side timings.

It shares our import name, so it runs in its own virtual environment, from a working
directory outside this repository, and prints one JSON object as the LAST line of stdout
(anything the library prints goes before it; `bench_mixtures.py` parses the last line):

    cd /tmp && /tmp/peer/bin/python /work/main/benchmarks/peer_reference_normix.py \
        fit --family gh --data FILE [--e-backend cpu|jax] [--m-backend cpu|jax] \
        [--fixed-iters 5 --reps 2] [--launch-time EPOCH]
    cd /tmp && /tmp/peer/bin/python /work/main/benchmarks/peer_reference_normix.py \
        nig-loop --data FILE.npz --n-datasets 10 [--e-backend cpu]

`fit`: cold = first `default_init(X)` + `.fit(X)` in this fresh process (its `total_s`
counts from `--launch-time`, the parent's `time.time()` just before it spawned us, so it
includes interpreter start-up and every import; without it, from the top of this script);
warm = the same again in the same process; `fixed`: from the warm optimum, `.fit(X,
max_iter=K, tol=0)` timed `reps` times (best), the cleanest per-iteration figure.

`nig-loop`: a Python loop of `NormalInverseGaussian.default_init(x).fit(x)` over the
datasets in FILE.npz (key `x`, shape (N, n)); one untimed warm-up fit on dataset 0 first,
so the per-dataset times are warm.

Set-up (BENCHMARKS.md): python3.12 -m venv /tmp/peer && /tmp/peer/bin/pip install normix==0.4.5
"""

import time

T_SCRIPT0 = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

if __name__ == "__main__":
    # make sure the repository's own `normix` is not importable from here: drop the
    # script directory, the working directory and anything under this repository
    _here = os.path.dirname(os.path.abspath(__file__))
    _repo = os.path.dirname(_here)
    sys.path = [
        p
        for p in sys.path
        if p not in ("", ".", _here) and not os.path.abspath(p).startswith(_repo)
    ]

warnings.filterwarnings("ignore")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402

T_IMPORT0 = time.perf_counter()
import normix  # noqa: E402

T_IMPORT = time.perf_counter() - T_IMPORT0

FAMILIES = {
    "gh": "GeneralizedHyperbolic",
    "nig": "NormalInverseGaussian",
    "skewt": "NormalInverseGamma",
    "vg": "VarianceGamma",
}


def load(path: str) -> np.ndarray:
    with open(path) as f:
        ncol = len(f.readline().split(","))
    return (
        np.loadtxt(path, delimiter=",", skiprows=1, usecols=range(1, ncol)).reshape(-1, ncol - 1)
        * 100.0
    )


def _block(model):
    jax.block_until_ready(jax.tree_util.tree_leaves(model))


def _fit_kwargs(args):
    kw = {}
    if args.e_backend is not None:
        kw["e_step_backend"] = args.e_backend
    if getattr(args, "m_backend", None) is not None:
        kw["m_step_backend"] = args.m_backend
    return kw


def fit_once(cls, X, kwargs):
    t0 = time.perf_counter()
    init = cls.default_init(X)
    _block(init)
    t1 = time.perf_counter()
    res = init.fit(X, **kwargs)
    _block(res.model)
    t2 = time.perf_counter()
    ll = float(res.model.marginal_log_likelihood(X))
    return {
        "init_s": t1 - t0,
        "fit_s": t2 - t1,
        "n_iter": int(res.n_iter),
        "converged": None if res.converged is None else bool(res.converged),
        "log_likelihood": ll,
    }, res.model


def cmd_fit(args):
    launch = args.launch_time if args.launch_time is not None else T_SCRIPT0
    X = jax.numpy.asarray(load(args.data))
    cls = getattr(normix, FAMILIES[args.family])
    kwargs = _fit_kwargs(args)
    cold, _ = fit_once(cls, X, kwargs)
    cold["total_s"] = time.time() - launch
    out = {
        "family": args.family,
        "library": f"normix {getattr(normix, '__version__', '?')} (reference, PyPI)",
        "normix_file": normix.__file__,
        "jax": jax.__version__,
        "fit_kwargs": kwargs,
        "import_s": T_IMPORT,
        "cold": cold,
    }
    if not args.no_warm:
        warm, model = fit_once(cls, X, kwargs)
        warm["per_iter_s"] = warm["fit_s"] / max(warm["n_iter"], 1)
        out["warm"] = warm
        if args.fixed_iters > 0:
            times, iters = [], []
            for _ in range(args.reps):
                t0 = time.perf_counter()
                res = model.fit(X, max_iter=args.fixed_iters, tol=0.0, **kwargs)
                _block(res.model)
                times.append(time.perf_counter() - t0)
                iters.append(int(res.n_iter))
            best = int(np.argmin(times))
            out["fixed"] = {
                "max_iter": args.fixed_iters,
                "times_s": times,
                "n_iter": iters,
                "per_iter_s": times[best] / max(iters[best], 1),
                "log_likelihood": float(res.model.marginal_log_likelihood(X)),
            }
    print(json.dumps(out), flush=True)


def cmd_nig_loop(args):
    data = np.load(args.data)["x"][: args.n_datasets]
    cls = normix.NormalInverseGaussian
    kwargs = _fit_kwargs(args)
    # warm-up (compile) on dataset 0, untimed in the loop
    t0 = time.perf_counter()
    X0 = jax.numpy.asarray(np.asarray(data[0], dtype=np.float64).reshape(-1, 1))
    _block(cls.default_init(X0).fit(X0, **kwargs).model)
    warmup = time.perf_counter() - t0
    times, lls, iters = [], [], []
    for x in data:
        X = jax.numpy.asarray(np.asarray(x, dtype=np.float64).reshape(-1, 1))
        t0 = time.perf_counter()
        init = cls.default_init(X)
        res = init.fit(X, **kwargs)
        _block(res.model)
        times.append(time.perf_counter() - t0)
        iters.append(int(res.n_iter))
        lls.append(float(res.model.marginal_log_likelihood(X)))
    print(
        json.dumps(
            {
                "fit_kwargs": kwargs,
                "warmup_s": warmup,
                "times_s": times,
                "n_iter": iters,
                "log_likelihoods": lls,
            }
        ),
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--family", choices=sorted(FAMILIES), required=True)
    f.add_argument("--data", required=True)
    f.add_argument("--e-backend", default=None, choices=["cpu", "jax"])
    f.add_argument("--m-backend", default=None, choices=["cpu", "jax"])
    f.add_argument("--no-warm", action="store_true")
    f.add_argument("--fixed-iters", type=int, default=0)
    f.add_argument("--reps", type=int, default=2)
    f.add_argument("--launch-time", type=float, default=None)
    f.set_defaults(func=cmd_fit)
    g = sub.add_parser("nig-loop")
    g.add_argument("--data", required=True)
    g.add_argument("--n-datasets", type=int, default=10)
    g.add_argument("--e-backend", default=None, choices=["cpu", "jax"])
    g.add_argument("--m-backend", default=None, choices=["cpu", "jax"])
    g.set_defaults(func=cmd_nig_loop)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
