"""Data sharded over several devices with `jax.sharding`: fits give the same result, the
E-step's sums become all-reduces, and the data are never gathered onto one device.

JAX fixes its device count when its backend starts, so the check runs in a subprocess
with two virtual CPU devices (`--xla_force_host_platform_device_count=2`)."""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, os
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp, jax.random as jr, numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import normix
    from normix._errors import checks_as_nan

    nig = np.asarray(normix.NormalInverseGaussian(
        jnp.zeros(3), jnp.array([0.3, -0.2, 0.1]), jnp.eye(3) + 0.3, 1.0, 2.0
    ).sample(jr.key(0), (2048,)))
    two = nig + np.where(np.arange(2048) < 1024, 4.0, 0.0)[:, None]  # two clusters
    mesh = Mesh(np.array(jax.devices()), ("rows",))
    rows = NamedSharding(mesh, P("rows"))
    fits = {
        "nig": (nig, lambda d: normix.fit(normix.NormalInverseGaussian, d, throw=False)),
        "gmm_full": (
            two, lambda d: normix.fit_mixture(d, 2, key=jr.key(1), max_steps=25, throw=False)
        ),
        "gmm_chunked": (
            two,
            lambda d: normix.fit_mixture(
                d, 2, covariance="diag", key=jr.key(1), max_steps=25, chunk_size=256,
                throw=False,
            ),
        ),
    }
    out = {"devices": len(jax.devices())}
    for name, (x, fit) in fits.items():
        plain = fit(jnp.asarray(x))
        # the program a concrete call compiles (run-time checks without host callbacks),
        # compiled for the sharded data, read, and run
        with checks_as_nan():
            program = jax.jit(lambda d: fit(d)).lower(jax.device_put(x, rows)).compile()
        sharded = program(jax.device_put(x, rows))
        lines = program.as_text().splitlines()
        out[name] = {
            "ll": [float(plain.log_likelihood), float(sharded.log_likelihood)],
            "steps": [int(plain.n_steps), int(sharded.n_steps)],
            "replicated": all(
                leaf.sharding.is_fully_replicated for leaf in jax.tree.leaves(sharded.model)
            ),
            "all_reduce": sum("all-reduce(" in ln for ln in lines),
            "data_gathers": sum("all-gather(" in ln and "[2048,3]" in ln for ln in lines),
        }
    print(json.dumps(out))
    """
)


def test_fits_on_row_sharded_data():
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["devices"] == 2
    for name in ("nig", "gmm_full", "gmm_chunked"):
        res = out[name]
        plain, sharded = res["ll"]
        assert abs(plain - sharded) <= 1e-12 * abs(plain), (name, res)
        assert res["steps"][0] == res["steps"][1], (name, res)
        assert res["all_reduce"] > 0, (name, res)  # the E-step's sums
        assert res["replicated"], (name, res)  # every device holds the fitted model
        assert res["data_gathers"] == 0, (name, res)
