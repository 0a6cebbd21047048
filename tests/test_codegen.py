"""CPU code generation of normix's own programs (`normix._codegen`): the modes, the
`"auto"` switch from the fast-compiling program to the default one, and that every mode
computes the same numbers."""

import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import normix
import normix._codegen as codegen

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@pytest.fixture
def restore_mode():
    previous = normix.set_cpu_codegen("auto")
    yield
    normix.set_cpu_codegen(previous)


def _compiled_names(body):
    names = []

    def listener(event, duration, fun_name="", **kwargs):
        if event == _COMPILE_EVENT:
            names.append(fun_name)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        body()
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return names


def test_set_cpu_codegen_validates_and_returns_previous(restore_mode, monkeypatch):
    assert normix.cpu_codegen() == "auto"
    assert normix.set_cpu_codegen("fast_run") == "auto"
    assert normix.set_cpu_codegen("fast_compile") == "fast_run"
    assert normix.cpu_codegen() == "fast_compile"
    with pytest.raises(ValueError, match="one of"):
        normix.set_cpu_codegen("fast")
    assert normix.cpu_codegen() == "fast_compile"  # unchanged by the rejected call
    monkeypatch.setattr(codegen, "_mode", None)
    monkeypatch.setenv("NORMIX_CPU_CODEGEN", "fast_run")
    assert normix.cpu_codegen() == "fast_run"
    monkeypatch.setenv("NORMIX_CPU_CODEGEN", "quick")
    with pytest.raises(ValueError, match="NORMIX_CPU_CODEGEN"):
        normix.cpu_codegen()


def test_auto_moves_a_repeated_program_to_the_default_code_generator(restore_mode, monkeypatch):
    x = np.random.default_rng(0).gamma(2.0, size=300) + 0.1
    x2 = np.random.default_rng(1).gamma(2.0, size=300) + 0.1

    def fits():
        return [float(normix.fit(normix.Gamma, v).log_likelihood) for v in (x, x, x2, x)]

    # as measured: a Gamma fit's runs never repay a second compile
    names = _compiled_names(lambda: fits())
    fit_names = [n for n in names if "_fit_impl" in n]
    assert fit_names and all(n.endswith("_fast_compile)") for n in fit_names), fit_names
    # any run time repays it: the signature moves after its second call
    monkeypatch.setattr(codegen, "RUN_SAVING", 1e9)
    out = []
    names = _compiled_names(lambda: out.extend(fits()))
    fit_names = [n for n in names if "_fit_impl" in n]
    assert fit_names == ["jit(_fit_impl_nan_checks)"], fit_names
    assert out[0] == out[1] == out[3]
    assert out[2] != out[0]


def test_every_mode_works_under_the_callers_transformations(restore_mode):
    xs = np.random.default_rng(2).gamma(2.0, size=(3, 200)) + 0.1
    expected = None
    for mode in codegen.MODES:
        normix.set_cpu_codegen(mode)
        fit = jax.vmap(lambda v: normix.fit(normix.Gamma, v, throw=False).log_likelihood)
        got = np.asarray(jax.jit(fit)(jnp.asarray(xs)))
        np.testing.assert_array_equal(got, np.asarray(fit(jnp.asarray(xs))))
        expected = got if expected is None else expected
        np.testing.assert_array_equal(got, expected)
        # traced on constants (no tracer among the arguments): still the caller's trace
        shape = jax.eval_shape(lambda: normix.fit(normix.Gamma, xs[0], throw=False))
        assert shape.log_likelihood.shape == ()


def test_unsupported_flag_falls_back_to_the_defaults(monkeypatch):
    monkeypatch.setattr(codegen, "_FAST_COMPILE_OPTIONS", {"xla_cpu_no_such_option": True})
    assert codegen.fast_compile_options() == {}
    r = normix.fit(normix.Gamma, np.random.default_rng(3).gamma(2.0, size=100) + 0.1)
    assert bool(r.converged)


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.random as jr, numpy as np
    import normix

    names = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda ev, d, fun_name="", **k: names.append(fun_name)
        if ev == "/jax/core/compile/backend_compile_duration" else None
    )
    rng = np.random.default_rng(0)
    x = rng.standard_t(4.0, size=(400, 2)) + rng.gamma(2.0, size=(400, 1)) * [0.5, -0.3]
    two = np.concatenate([x, x[:200] + 6.0])
    out = {}
    for mode in ("fast_compile", "fast_run"):
        normix.set_cpu_codegen(mode)
        vg = normix.fit(normix.VarianceGamma, x, throw=False)
        gmm = normix.fit_mixture(two, 2, key=jr.key(0), max_steps=30, throw=False)
        out[mode] = [
            np.asarray(leaf).tolist()
            for r in (vg, gmm)
            for leaf in jax.tree.leaves((r.model, r.log_likelihood, r.n_steps))
        ]
    out["names"] = names
    print(json.dumps(out))
    """
)


def test_both_code_generators_give_bitwise_equal_fits():
    """Without the test suite's global XLA flag (conftest), the two modes really compile
    differently; the fitted models are the same to the last bit."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["fast_compile"] == out["fast_run"]
    fits = [n for n in out["names"] if "_fit_" in n]
    assert any(n.endswith("_fast_compile)") for n in fits), fits
    assert any(not n.endswith("_fast_compile)") for n in fits), fits
