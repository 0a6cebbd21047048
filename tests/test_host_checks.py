"""Fits on concrete data compile without host callbacks and check on the host
(`normix._fitting._host_checks`), with the same outcomes as the raising programs."""

import os
import subprocess
import sys
import textwrap

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
import pytest
from jaxtyping import Array, Int

import normix
from normix._distributions._checks import check_positive
from normix._em_model import AbstractEMModel
from normix._errors import checks_as_nan, checks_as_nan_active, error_if
from normix._fitting import EMResults, fit, fit_multistart


def test_checks_as_nan_switches_error_if_per_context():
    x = jnp.array([1.0, 2.0])

    def checked(v, pred):
        return error_if(v, pred, "boom")

    with pytest.raises(Exception, match="boom"):
        jax.jit(checked)(x, jnp.array(True))
    assert not checks_as_nan_active()
    with checks_as_nan():
        assert checks_as_nan_active()
        nan_checked = jax.jit(lambda v, p: checked(v, p))  # traced in NaN mode
        out = nan_checked(x, jnp.array(True))
        ok = nan_checked(x, jnp.array(False))
    assert not checks_as_nan_active()
    assert bool(jnp.all(jnp.isnan(out)))
    np.testing.assert_array_equal(ok, x)
    with pytest.raises(Exception, match="boom"):  # traced again outside: raises
        jax.jit(lambda v, p: checked(v, p))(x, jnp.array(True))


class _Gauss(eqx.Module):
    """1-D Gaussian fitted by EM (one step is exact) whose M-step passes its variance
    through a normix parameter check, which fails (scale -1) at iterate `bad_at`."""

    mu: Array
    var: Array
    t: Int[Array, ""]
    bad_at: int = eqx.field(static=True)


class CheckedGauss(AbstractEMModel):
    g: _Gauss

    def e_step(self, x, weights):
        w = weights / jnp.sum(weights)
        return w @ x, w @ (x * x)

    def log_likelihood(self, x, weights):
        g = self.g
        lp = -0.5 * jnp.log(2 * jnp.pi * g.var) - 0.5 * (x - g.mu) ** 2 / g.var
        return weights @ lp / jnp.sum(weights)

    def m_step(self, stats):
        s1, s2 = stats
        g = self.g
        t = g.t + 1
        scale = check_positive(jnp.where(t == g.bad_at, -1.0, 1.0), "CheckedGauss", "scale")
        var = (s2 - s1 * s1) * scale + 1e-3 * t  # keeps changing: the fit runs to max_steps
        return CheckedGauss(_Gauss(s1, var, t, g.bad_at))

    def n_parameters(self) -> int:
        return 2

    @classmethod
    def initialize(cls, x, weights, *, key=None):
        raise NotImplementedError


def _start(bad_at):
    return CheckedGauss(_Gauss(jnp.array(0.0), jnp.array(1.0), jnp.array(0), bad_at))


@pytest.fixture(scope="module")
def x():
    return jr.normal(jr.key(0), (50,)) * 2.0 + 1.0


def test_failed_check_inside_the_loop(x):
    # a check failing at iterate 3: `throw=True` raises that exact check, on both paths;
    # `throw=False` never raises from inside the loop, it ends `nonfinite` with the last
    # finite iterate, the same on both paths
    with pytest.raises(Exception, match="CheckedGauss: `scale` must be finite and > 0"):
        fit(_start(3), x, max_steps=6, throw=True)
    with pytest.raises(Exception, match="CheckedGauss: `scale` must be finite and > 0"):
        jax.jit(lambda d: fit(_start(3), d, max_steps=6, throw=True))(x)
    direct = fit(_start(3), x, max_steps=6, throw=False)
    jitted = jax.jit(lambda d: fit(_start(3), d, max_steps=6, throw=False))(x)
    for res in (direct, jitted):
        assert res.result == EMResults.nonfinite
        assert int(res.n_steps) == 2 and int(res.model.g.t) == 2
        assert np.isfinite(float(res.log_likelihood))
    # one failing start no longer takes the others down with it
    late = CheckedGauss(_Gauss(jnp.array(0.0), jnp.array(1.0), jnp.array(10), 3))  # never t=3
    starts = jax.tree.map(lambda a, b: jnp.stack([a, b]), _start(3), late)
    best, each = fit_multistart(starts, x, max_steps=6, throw=False)
    assert jax.tree.map(lambda a: a[0], each).result == EMResults.nonfinite
    assert best.result == EMResults.max_steps_reached and int(best.n_steps) == 6
    # all starts failing: the multistart's own `throw` reports the result code
    with pytest.raises(Exception, match="non-finite"):
        fit_multistart(jax.tree.map(lambda a: jnp.stack([a, a]), _start(3)), x, max_steps=6)


def test_concrete_fit_equals_jitted_fit(x):
    direct = fit(_start(100), x, max_steps=6, throw=False)
    jitted = jax.jit(lambda d: fit(_start(100), d, max_steps=6, throw=False))(x)
    assert direct.result == EMResults.max_steps_reached
    for a, b in zip(jax.tree.leaves(direct), jax.tree.leaves(jitted), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(eqx.EquinoxRuntimeError, match="EM reached `max_steps`"):
        fit(_start(100), x, max_steps=6)
    with pytest.raises(Exception, match="EM reached `max_steps`"):
        jax.jit(lambda d: fit(_start(100), d, max_steps=6))(x)


def test_checks_in_nan_mode_end_the_fit_nonfinite(x):
    # what the host path sees before it reruns the raising program (and what the CLI gets)
    with checks_as_nan():
        res = fit(_start(3), x, max_steps=6, throw=False)
    assert res.result == EMResults.nonfinite
    assert int(res.n_steps) == 2 and int(res.model.g.t) == 2


def test_fit_programs_on_concrete_data_go_to_the_persistent_cache(tmp_path):
    # JAX's persistent cache refuses programs with host callbacks, such as raising checks
    script = textwrap.dedent(
        """
        import os, sys
        import jax
        jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_compilation_cache_dir", sys.argv[1])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        import numpy as np, normix
        x = np.random.default_rng(0).gamma(2.0, size=200)
        normix.fit(normix.Gamma, x)
        jax.jit(lambda v: normix.fit(normix.Gamma, v))(x)  # raising checks: not stored
        X = np.random.default_rng(1).normal(size=(60, 2))
        normix.fit_mixture(X, 2, key=jax.random.key(0), max_steps=5)
        print(" ".join(sorted(os.listdir(sys.argv[1]))))
        """
    )
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    names = out.stdout.split()
    # (compiled for compile speed: the default CPU code generation mode)
    assert any(n.startswith("jit__fit_impl_nan_checks_fast_compile-") for n in names), names
    assert any(n.startswith("jit__fit_from_key_impl_nan_checks_fast_compile-") for n in names), (
        names
    )
    assert not any(n.startswith("jit__lambda") for n in names), names


def test_normix_fit_untraced_bad_data_message_unchanged():
    X = np.random.default_rng(0).normal(size=(40, 2))
    X[5, 0] = np.nan
    with pytest.raises(Exception, match="1 row"):
        normix.fit(normix.NormalInverseGaussian, X)


def test_fit_inside_jit_on_constants_uses_the_raising_program(x):
    # no argument is a tracer, yet the call is traced: the host path must notice
    data = np.asarray(x)
    out = jax.jit(lambda: fit(_start(100), data, max_steps=6, throw=False).log_likelihood)()
    ref = fit(_start(100), data, max_steps=6, throw=False).log_likelihood
    np.testing.assert_array_equal(out, ref)
    # (the NaN-mode program would report the result code, not the check)
    with pytest.raises(Exception, match="CheckedGauss: `scale`"):
        jax.jit(lambda: fit(_start(3), data, max_steps=6, throw=True).log_likelihood)()
