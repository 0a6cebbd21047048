"""Eager calls of loop-heavy methods: first call (compiles) and a second call with new
values of the same shape (must reuse the compiled program; see `normix/_compiled.py`).

One command (from the repository root):

    .venv/bin/python benchmarks/bench_eager_calls.py

prints a table and writes `benchmarks/results/eager_calls.json`. Before
`compiled_when_eager` the second call cost as much as the first (6-8 s for `ppf`,
`value_at_risk`, `expected_shortfall` on 2 cores).
"""

import json
import platform
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import jax.random as jr  # noqa: E402

import normix  # noqa: E402

OUT_JSON = Path(__file__).resolve().parent / "results" / "eager_calls.json"


def _timed(f):
    t = time.perf_counter()
    jax.block_until_ready(f())
    return time.perf_counter() - t


def main() -> None:
    nig = normix.NormalInverseGaussian(
        mu=jnp.array([0.05]), gamma=jnp.array([-0.1]), cov=jnp.array([[0.8]]), mean=1.0, shape=1.5
    )
    gh = normix.GeneralizedHyperbolic(
        mu=jnp.zeros(5), gamma=jnp.full(5, 0.1), cov=jnp.eye(5), p=-1.0, a=1.0, b=2.0
    )
    gig = normix.GIG(p=0.7, a=1.3, b=2.1)
    eta = gig.expectation_params()
    cases = {
        "ppf (2 values)": (
            lambda: nig.ppf(jnp.array([0.1, 0.9])),
            lambda: nig.ppf(jnp.array([0.2, 0.8])),
        ),
        "value_at_risk": (lambda: nig.value_at_risk(0.99), lambda: nig.value_at_risk(0.95)),
        "expected_shortfall": (
            lambda: nig.expected_shortfall(0.99),
            lambda: nig.expected_shortfall(0.95),
        ),
        "GH d=5 sample (100)": (
            lambda: gh.sample(jr.key(0), (100,)),
            lambda: gh.sample(jr.key(1), (100,)),
        ),
        "sample_gig (100)": (
            lambda: normix.sample_gig(jr.key(0), 0.5, 1.0, 2.0, (100,)),
            lambda: normix.sample_gig(jr.key(1), 0.6, 1.0, 2.0, (100,)),
        ),
        "GIG.from_expectation": (
            lambda: normix.GIG.from_expectation(eta).p,
            lambda: normix.GIG.from_expectation(eta * jnp.array([1.0, 1.01, 1.01])).p,
        ),
    }
    rows = {}
    print(f"{'call':<24}{'first s':>10}{'second s':>10}")
    for name, (first, second) in cases.items():
        t1, t2 = _timed(first), _timed(second)
        rows[name] = {"first_s": t1, "second_s": t2}
        print(f"{name:<24}{t1:>10.2f}{t2:>10.3f}")
    OUT_JSON.parent.mkdir(exist_ok=True)
    OUT_JSON.write_text(
        json.dumps(
            {
                "machine": platform.machine(),
                "jax": jax.__version__,
                "date": time.strftime("%Y-%m-%d %H:%M"),
                "calls": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
