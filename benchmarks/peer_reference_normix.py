"""Drive the *reference* GH library (PyPI `normix` 0.4.5, xshi19) for side-by-side timings.

It shares our import name, so it runs in its own virtual environment, from a working
directory outside this repository, and prints one JSON object on stdout:

    /tmp/peer/bin/python benchmarks/peer_reference_normix.py fit --family gh --data FILE
    /tmp/peer/bin/python benchmarks/peer_reference_normix.py nig-loop --n-datasets 10

Set-up (BENCHMARKS.md): python3.12 -m venv /tmp/peer && /tmp/peer/bin/pip install normix==0.4.5
"""

import argparse
import json
import sys
import time
import warnings

if __name__ == "__main__":
    # make sure the repository's own `normix` is not importable from here
    sys.path = [p for p in sys.path if "normix" not in p and p not in ("", ".")]

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
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=None, dtype=str)[:, 1:].astype(
        float
    ) * 100.0


def _block(model):
    jax.block_until_ready(jax.tree_util.tree_leaves(model))


def fit_once(cls, X, e_backend):
    t0 = time.perf_counter()
    init = cls.default_init(X)
    _block(init)
    t1 = time.perf_counter()
    kwargs = {} if e_backend is None else {"e_step_backend": e_backend}
    res = init.fit(X, **kwargs)
    _block(res.model)
    t2 = time.perf_counter()
    ll = float(res.model.marginal_log_likelihood(X))
    return {"init_s": t1 - t0, "fit_s": t2 - t1, "n_iter": int(res.n_iter), "log_likelihood": ll}


def cmd_fit(args):
    X = jax.numpy.asarray(load(args.data))
    cls = getattr(normix, FAMILIES[args.family])
    t0 = time.perf_counter()
    cold = fit_once(cls, X, args.e_backend)
    cold["total_s"] = time.perf_counter() - t0 + T_IMPORT
    warm = fit_once(cls, X, args.e_backend)
    warm["per_iter_s"] = warm["fit_s"] / max(warm["n_iter"], 1)
    print(json.dumps({"family": args.family, "cold": cold, "warm": warm, "import_s": T_IMPORT}))


def cmd_nig_loop(args):
    data = np.load(args.data)["x"][: args.n_datasets]
    cls = normix.NormalInverseGaussian
    times, lls = [], []
    for i, x in enumerate(data):
        X = jax.numpy.asarray(x[:, None])
        t0 = time.perf_counter()
        init = cls.default_init(X)
        res = init.fit(X)
        _block(res.model)
        times.append(time.perf_counter() - t0)
        lls.append(float(res.model.marginal_log_likelihood(X)))
    print(json.dumps({"times_s": times, "log_likelihoods": lls}))


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--family", choices=sorted(FAMILIES), required=True)
    f.add_argument("--data", required=True)
    f.add_argument("--e-backend", default=None)
    f.set_defaults(func=cmd_fit)
    g = sub.add_parser("nig-loop")
    g.add_argument("--data", required=True)
    g.add_argument("--n-datasets", type=int, default=10)
    g.set_defaults(func=cmd_nig_loop)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
