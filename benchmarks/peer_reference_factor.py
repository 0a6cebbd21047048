"""Drive the *reference* GH library's factor GH (PyPI `normix` 0.4.5, xshi19) for
side-by-side timings with `bench_factor.py`.

It shares our import name, so it runs in its own virtual environment from a working
directory outside this repository and prints one JSON object as the LAST line of stdout:

    cd /tmp && /tmp/peer/bin/python /work/main/benchmarks/peer_reference_factor.py \
        --data X.npy --rank 5 [--max-iter 200] [--fixed-iters 5 --reps 2] [--e-backend cpu]

* `cold`: `FactorGeneralizedHyperbolic.default_init(X, r=rank)` then `.fit(X,
  max_iter=...)` with the library's defaults (its own stopping rule), first call in this
  process (compiles);
* `warm`: the same again;
* `fixed`: from the warm optimum, `.fit(X, max_iter=K, tol=0)` timed `reps` times (best):
  the per-iteration figure.

`log_likelihood` is the library's `marginal_log_likelihood(X)` (mean per observation).
Set-up: python3.12 -m venv /tmp/peer && /tmp/peer/bin/pip install normix==0.4.5
"""

import time

T_SCRIPT0 = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

if __name__ == "__main__":
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

import normix  # noqa: E402


def _block(model):
    jax.block_until_ready(jax.tree_util.tree_leaves(model))


def fit_once(X, rank, kwargs):
    cls = normix.FactorGeneralizedHyperbolic
    t0 = time.perf_counter()
    init = cls.default_init(X, r=rank)
    _block(init)
    t1 = time.perf_counter()
    res = init.fit(X, **kwargs)
    _block(res.model)
    t2 = time.perf_counter()
    return {
        "init_s": t1 - t0,
        "fit_s": t2 - t1,
        "n_iter": int(res.n_iter),
        "converged": None if res.converged is None else bool(res.converged),
        "log_likelihood": float(res.model.marginal_log_likelihood(X)),
    }, res.model


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--max-iter", type=int, default=200)
    parser.add_argument("--fixed-iters", type=int, default=5)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--e-backend", default=None, choices=["cpu", "jax"])
    parser.add_argument("--no-warm", action="store_true")
    args = parser.parse_args()
    X = jax.numpy.asarray(np.load(args.data).astype(np.float64))
    kwargs = {"max_iter": args.max_iter}
    if args.e_backend is not None:
        kwargs["e_step_backend"] = args.e_backend
    cold, model = fit_once(X, args.rank, kwargs)
    out = {
        "library": f"normix {getattr(normix, '__version__', '?')} (reference, PyPI)",
        "normix_file": normix.__file__,
        "jax": jax.__version__,
        "shape": list(X.shape),
        "rank": args.rank,
        "fit_kwargs": kwargs,
        "cold": cold,
    }
    if not args.no_warm:
        warm, model = fit_once(X, args.rank, kwargs)
        warm["per_iter_s"] = warm["fit_s"] / max(warm["n_iter"], 1)
        out["warm"] = warm
    if args.fixed_iters > 0:
        extra = {k: v for k, v in kwargs.items() if k != "max_iter"}
        times, iters = [], []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            res = model.fit(X, max_iter=args.fixed_iters, tol=0.0, **extra)
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


if __name__ == "__main__":
    main()
