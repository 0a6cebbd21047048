"""normix.plotting: the figures hold what they claim (histogram = data density, model
curves = exp(log_prob), QQ quantiles vs scipy, marginal contours vs scipy, EM trace)."""

import numpy as np
import pytest
import scipy.stats as st

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import jax.numpy as jnp  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

import normix  # noqa: E402
from normix import plotting  # noqa: E402


@pytest.fixture(scope="module")
def gauss1():
    return normix.MultivariateNormal(jnp.asarray([0.2]), jnp.asarray([[1.5]]))


@pytest.fixture(scope="module")
def x1():
    return np.random.default_rng(0).normal(0.2, np.sqrt(1.5), size=2000)


def test_density_curve_and_histogram(gauss1, x1):
    ax = plotting.plot_density({"N": gauss1}, x1, bins=50)
    line = ax.get_lines()[0]
    gx, gy = line.get_data()
    np.testing.assert_allclose(gy, st.norm(0.2, np.sqrt(1.5)).pdf(gx), rtol=1e-10)
    heights = np.array([p.get_height() for p in ax.patches])
    widths = np.array([p.get_width() for p in ax.patches])
    assert abs(np.sum(heights * widths) - 1.0) < 1e-9  # a density histogram
    assert ax.get_yscale() == "log"
    plt.close("all")


def test_qq_quantiles_match_scipy(gauss1, x1):
    ax = plotting.plot_qq({"N": gauss1}, x1)
    q, emp = ax.get_lines()[0].get_data()
    n = len(x1)
    probs = (np.arange(1, n + 1) - 0.5) / n
    ref = st.norm(0.2, np.sqrt(1.5)).ppf(probs)
    np.testing.assert_allclose(q, ref, atol=2e-3)
    np.testing.assert_array_equal(emp, np.sort(x1))
    plt.close("all")


def test_marginal_of_mixture_matches_scipy_and_contours_draw():
    # a 3-D Student-t: its (0, 2) marginal is a bivariate t with the same nu
    nu, mu = 5.0, np.array([0.1, -0.3, 0.5])
    sigma = np.array([[1.0, 0.3, 0.2], [0.3, 2.0, 0.1], [0.2, 0.1, 0.5]])
    t3 = normix.StudentT(jnp.asarray(mu), jnp.asarray(sigma), jnp.asarray(nu))
    m2 = plotting.marginal_log_prob(t3, (0, 2))
    pts = np.array([[0.0, 0.0], [1.0, -1.0], [2.5, 1.5]])
    ref = st.multivariate_t(mu[[0, 2]], sigma[np.ix_([0, 2], [0, 2])], df=nu).logpdf(pts)
    np.testing.assert_allclose(plotting._log_prob(m2, pts), ref, rtol=1e-10)
    g = normix.MultivariateNormal(jnp.asarray(mu), jnp.asarray(sigma))
    g2 = plotting.marginal_log_prob(g, (2, 0))
    ref = st.multivariate_normal(mu[[2, 0]], sigma[np.ix_([2, 0], [2, 0])]).logpdf(pts)
    np.testing.assert_allclose(plotting._log_prob(g2, pts), ref, rtol=1e-10)
    X = np.random.default_rng(1).multivariate_normal(mu, sigma, size=500)
    ax = plotting.plot_contours(g, X, dims=(0, 2), names=["a", "b", "c"])
    assert ax.get_xlabel() == "a" and ax.get_ylabel() == "c"
    with pytest.raises(ValueError, match="two different indices"):
        plotting.marginal_log_prob(g, (1, 1))
    plt.close("all")


def test_marginal_of_a_factor_model_is_the_dense_marginal():
    """Factor models plot their 2-D marginals as the same law with Sigma = F F^T + diag D
    (was NotImplementedError for d > 2)."""
    mu, gamma = np.array([0.1, -0.3, 0.5, 0.0]), np.array([0.2, 0.0, -0.1, 0.3])
    F = np.array([[1.0], [0.5], [-0.4], [0.2]])
    D = np.array([0.5, 0.3, 0.8, 0.4])
    fac = normix.FactorNormalInverseGaussian(mu, gamma, F, D, 1.0, 2.0)
    dense = normix.NormalInverseGaussian(mu, gamma, F @ F.T + np.diag(D), 1.0, 2.0)
    pts = np.array([[0.0, 0.0], [1.0, -1.0], [2.5, 1.5]])
    got = plotting._log_prob(plotting.marginal_log_prob(fac, (3, 1)), pts)
    want = plotting._log_prob(plotting.marginal_log_prob(dense, (3, 1)), pts)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_trace_plot():
    # the shape and settings of the demo test's index fit: no new compilation
    X = np.random.default_rng(2).standard_t(4, size=(1000, 1))
    r = normix.fit(normix.StudentT, X, max_steps=500, throw=False)
    assert bool(r.converged)
    ax = plotting.plot_trace(r)
    y = ax.get_lines()[0].get_ydata()
    n = int(r.n_steps)
    np.testing.assert_array_equal(y, np.asarray(r.trace)[: n + 1])
    assert np.all(np.diff(y) >= -1e-12)  # EM is monotone
    plt.close("all")
