"""Registry of exponential-family test cases, used by the generic property tests.

Adding a family means appending one `Case` to `CASES`:

* `build(params)` constructs a distribution from a dict of classical parameters;
* `classical(dist)` reads the same dict back (for round trips);
* `grid` holds valid parameter dicts, extreme ones included; `fit_grid` holds moderate
  ones for the statistical (sampling / fitting) tests;
* `scipy(params)` is a frozen `scipy.stats` reference (`logpdf`, `mean`, `var`/`cov`,
  `entropy`, `rvs`);
* `points(params, rng)` returns valid observations, shape `(m, *event_shape)`;
* `kl(p, q)` is an independent closed form of KL(p‖q) (or `None`);
* `cov_t(p)` is the closed-form covariance of $t(X)$ (or `None`);
* `invalid` lists `(params, message fragment)` pairs that must raise, also under `jit`;
  `bad_shapes` lists parameter dicts that must raise `ValueError` at trace time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import numpy as np
import pytest
import scipy.special as sp
import scipy.stats as st

import normix

Params = dict[str, Any]

# Jitted helpers shared by the test modules: defined once, so each compiles once per
# (family, shapes, dtype) and is reused across the parameter grids and the test files.
# A family (a class) passed as an argument is static under `eqx.filter_jit`.
jit_theta = eqx.filter_jit(lambda d: d.natural_params())
jit_eta = eqx.filter_jit(lambda d: d.expectation_params())
jit_psi = eqx.filter_jit(lambda d: d.log_partition())
jit_fisher = eqx.filter_jit(lambda d: d.fisher_information())
jit_grad_psi = eqx.filter_jit(lambda d: jax.grad(type(d).log_partition_at)(d.natural_params()))
jit_log_prob = eqx.filter_jit(lambda d, x: d.log_prob(x))
jit_cdf = eqx.filter_jit(lambda d, x: d.cdf(x))
jit_entropy = eqx.filter_jit(lambda d: d.entropy())
jit_kl = eqx.filter_jit(lambda p, q: p.kl_divergence(q))
jit_moments = eqx.filter_jit(lambda d: (d.mean(), d.variance()))
jit_elog_h = eqx.filter_jit(lambda d: d.expected_log_base_measure())
jit_fit = eqx.filter_jit(lambda family, x, w=None: family.fit(x, w))
jit_expectation_at = eqx.filter_jit(lambda family, theta: family.expectation_at(theta))
jit_from_natural = eqx.filter_jit(lambda family, theta: family.from_natural(theta))
jit_sample = eqx.filter_jit(lambda d, key, shape: d.sample(key, shape))
jit_em_step = eqx.filter_jit(lambda d, x, w: d.m_step(d.e_step(x, w)))
jit_initialize = eqx.filter_jit(lambda family, x, w: family.initialize(x, w))
jit_log_likelihood = eqx.filter_jit(lambda d, x, w: d.log_likelihood(x, w))
# `build` (a function in the case) is static; the parameter dict holds arrays.
jit_build_theta = eqx.filter_jit(lambda build, params: build(params).natural_params())


@eqx.filter_jit
def jit_eta_to_theta_and_jacobian(family, eta):
    theta = family.natural_from_expectation(eta)
    return theta, jax.jacfwd(family.natural_from_expectation)(eta)


@eqx.filter_jit
def jit_t_and_log_h(family, x):
    return jax.vmap(family.sufficient_statistics)(x), jax.vmap(family.log_base_measure)(x)


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    family: type
    build: Callable[[Params], Any]
    classical: Callable[[Any], Params]
    grid: tuple[Params, ...]
    fit_grid: tuple[Params, ...]
    scipy: Callable[[Params], Any]
    points: Callable[[Params, np.random.Generator], np.ndarray]
    invalid: tuple[tuple[Params, str], ...]
    bad_shapes: tuple[Params, ...]
    kl: Callable[[Params, Params], float] | None = None
    cov_t: Callable[[Params], np.ndarray] | None = None


def _positive_points(frozen: Any, scale: float) -> np.ndarray:
    """Nine points > 0: quantiles where representable (else multiples of `scale`), plus
    points around `scale`. A fixed count keeps jitted test helpers from recompiling."""
    with np.errstate(all="ignore"):  # extreme shapes: quantiles under/overflow
        q = frozen.ppf([0.05, 0.3, 0.5, 0.7, 0.95])
    fallback = scale * np.array([1e-3, 0.1, 0.5, 2.0, 10.0])
    q = np.where(np.isfinite(q) & (q > 1e-250), q, fallback)
    return np.concatenate([q, scale * np.array([1e-2, 0.3, 1.0, 3.0])])


# ------------------------------------------------------------------------ Gamma
def _kl_gamma(p: Params, q: Params) -> float:
    ap, bp, aq, bq = p["shape"], p["rate"], q["shape"], q["rate"]
    return float(
        (ap - aq) * sp.digamma(ap)
        - sp.gammaln(ap)
        + sp.gammaln(aq)
        + aq * (np.log(bp) - np.log(bq))
        + ap * (bq - bp) / bp
    )


def _cov_t_gamma(p: Params) -> np.ndarray:
    a, b = p["shape"], p["rate"]
    return np.array([[sp.polygamma(1, a), 1 / b], [1 / b, a / b**2]])


GAMMA = Case(
    name="Gamma",
    family=normix.Gamma,
    build=lambda p: normix.Gamma(p["shape"], p["rate"]),
    classical=lambda d: {"shape": d.shape, "rate": d.rate},
    grid=(
        {"shape": 1e-3, "rate": 1.0},
        {"shape": 0.5, "rate": 2.0},
        {"shape": 1.0, "rate": 1.0},
        {"shape": 3.7, "rate": 0.2},
        {"shape": 1e3, "rate": 50.0},
        {"shape": 2.0, "rate": 1e3},
    ),
    fit_grid=({"shape": 0.7, "rate": 2.0}, {"shape": 5.0, "rate": 0.5}),
    scipy=lambda p: st.gamma(a=p["shape"], scale=1 / p["rate"]),
    points=lambda p, rng: _positive_points(
        st.gamma(a=p["shape"], scale=1 / p["rate"]), p["shape"] / p["rate"]
    ),
    invalid=(
        ({"shape": -1.0, "rate": 1.0}, "Gamma: `shape` must be finite and > 0"),
        ({"shape": 1.0, "rate": 0.0}, "Gamma: `rate` must be finite and > 0"),
        ({"shape": np.nan, "rate": 1.0}, "Gamma: `shape` must be finite and > 0"),
        ({"shape": 1.0, "rate": np.inf}, "Gamma: `rate` must be finite and > 0"),
    ),
    bad_shapes=({"shape": np.ones(2), "rate": 1.0}, {"shape": 1.0, "rate": np.ones((1, 1))}),
    kl=_kl_gamma,
    cov_t=_cov_t_gamma,
)


# ------------------------------------------------------------------------ InverseGamma
def _cov_t_inverse_gamma(p: Params) -> np.ndarray:
    a, b = p["shape"], p["rate"]
    return np.array([[sp.polygamma(1, a), -1 / b], [-1 / b, a / b**2]])


INVERSE_GAMMA = Case(
    name="InverseGamma",
    family=normix.InverseGamma,
    build=lambda p: normix.InverseGamma(p["shape"], p["rate"]),
    classical=lambda d: {"shape": d.shape, "rate": d.rate},
    grid=(
        {"shape": 1e-3, "rate": 1.0},
        {"shape": 0.5, "rate": 2.0},
        {"shape": 2.5, "rate": 1.0},
        {"shape": 6.3, "rate": 0.2},
        {"shape": 1e3, "rate": 50.0},
        {"shape": 3.0, "rate": 1e3},
    ),
    fit_grid=({"shape": 0.8, "rate": 2.0}, {"shape": 5.0, "rate": 0.5}),
    scipy=lambda p: st.invgamma(a=p["shape"], scale=p["rate"]),
    points=lambda p, rng: _positive_points(
        st.invgamma(a=p["shape"], scale=p["rate"]), p["rate"] / p["shape"]
    ),
    invalid=(
        ({"shape": 0.0, "rate": 1.0}, "InverseGamma: `shape` must be finite and > 0"),
        ({"shape": 1.0, "rate": -2.0}, "InverseGamma: `rate` must be finite and > 0"),
        ({"shape": np.inf, "rate": 1.0}, "InverseGamma: `shape` must be finite and > 0"),
    ),
    bad_shapes=({"shape": np.ones(3), "rate": 1.0},),
    # 1/X ~ Gamma(shape, rate) and KL is invariant under bijections.
    kl=_kl_gamma,
    cov_t=_cov_t_inverse_gamma,
)


# ------------------------------------------------------------------------ InverseGaussian
def _kl_inverse_gaussian(p: Params, q: Params) -> float:
    mp_, lp, mq, lq = p["mean"], p["shape"], q["mean"], q["shape"]
    return float(0.5 * (np.log(lp / lq) + lq / lp - 1) + lq * (mp_ - mq) ** 2 / (2 * mp_ * mq**2))


def _cov_t_inverse_gaussian(p: Params) -> np.ndarray:
    m, lam = p["mean"], p["shape"]
    return np.array([[1 / (m * lam) + 2 / lam**2, -m / lam], [-m / lam, m**3 / lam]])


def _invgauss(p: Params) -> Any:
    return st.invgauss(mu=p["mean"] / p["shape"], scale=p["shape"])


INVERSE_GAUSSIAN = Case(
    name="InverseGaussian",
    family=normix.InverseGaussian,
    build=lambda p: normix.InverseGaussian(p["mean"], p["shape"]),
    classical=lambda d: {"mean": d.mu, "shape": d.lam},
    grid=(
        {"mean": 1.0, "shape": 1e-3},
        {"mean": 1.0, "shape": 1e3},
        {"mean": 0.3, "shape": 2.0},
        {"mean": 5.0, "shape": 0.7},
        {"mean": 1e-3, "shape": 1.0},
        {"mean": 1e3, "shape": 1.0},
    ),
    fit_grid=({"mean": 0.5, "shape": 2.0}, {"mean": 3.0, "shape": 1.0}),
    scipy=_invgauss,
    points=lambda p, rng: _positive_points(_invgauss(p), p["mean"]),
    invalid=(
        ({"mean": -1.0, "shape": 1.0}, "InverseGaussian: `mean` must be finite and > 0"),
        ({"mean": 1.0, "shape": 0.0}, "InverseGaussian: `shape` must be finite and > 0"),
        ({"mean": np.nan, "shape": 1.0}, "InverseGaussian: `mean` must be finite and > 0"),
    ),
    bad_shapes=({"mean": np.ones(2), "shape": 1.0},),
    kl=_kl_inverse_gaussian,
    cov_t=_cov_t_inverse_gaussian,
)


# ------------------------------------------------------------------------ MultivariateNormal
def _spd(d: int, seed: int, scale: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(d, d))
    cov = a @ a.T / d + 0.5 * np.eye(d)
    s = np.sqrt(np.diag(cov))
    return scale * cov / np.outer(s, s) * np.outer(np.linspace(1, 3, d), np.linspace(1, 3, d))


def _kl_mvn(p: Params, q: Params) -> float:
    d = len(p["mean"])
    sq_inv = np.linalg.inv(q["cov"])
    diff = q["mean"] - p["mean"]
    _, logdet_p = np.linalg.slogdet(p["cov"])
    _, logdet_q = np.linalg.slogdet(q["cov"])
    return float(
        0.5 * (np.trace(sq_inv @ p["cov"]) + diff @ sq_inv @ diff - d + logdet_q - logdet_p)
    )


def _cov_t_mvn(p: Params) -> np.ndarray:
    r"""Cov of $t(X) = (X, \mathrm{vec}(XX^\top))$ for $X \sim N(\mu, \Sigma)$ (Isserlis)."""
    m, s = p["mean"], p["cov"]
    d = len(m)
    c11 = s
    # Cov(x_i, x_j x_k) = m_j S_ik + m_k S_ij
    c12 = np.einsum("j,ik->ijk", m, s) + np.einsum("k,ij->ijk", m, s)
    # Cov(x_i x_j, x_k x_l) = S_ik S_jl + S_il S_jk + m_i m_k S_jl + m_i m_l S_jk
    #                        + m_j m_k S_il + m_j m_l S_ik
    c22 = (
        np.einsum("ik,jl->ijkl", s, s)
        + np.einsum("il,jk->ijkl", s, s)
        + np.einsum("i,k,jl->ijkl", m, m, s)
        + np.einsum("i,l,jk->ijkl", m, m, s)
        + np.einsum("j,k,il->ijkl", m, m, s)
        + np.einsum("j,l,ik->ijkl", m, m, s)
    )
    c12 = c12.reshape(d, d * d)
    return np.block([[c11, c12], [c12.T, c22.reshape(d * d, d * d)]])


def _mvn_points(p: Params, rng: np.random.Generator) -> np.ndarray:
    x = rng.multivariate_normal(p["mean"], p["cov"], size=6)
    return np.concatenate([x, p["mean"][None] + 4 * np.sqrt(np.diag(p["cov"]))[None]])


MVN = Case(
    name="MultivariateNormal",
    family=normix.MultivariateNormal,
    build=lambda p: normix.MultivariateNormal(p["mean"], p["cov"]),
    classical=lambda d: {"mean": d.mu, "cov": d.cov()},
    grid=(
        {"mean": np.array([0.3]), "cov": np.array([[2.0]])},
        {"mean": np.array([1.0, -2.0, 0.5]), "cov": _spd(3, 0)},
        {"mean": np.array([10.0, -3.0, 0.0]), "cov": _spd(3, 2, scale=1e-3)},
        {"mean": np.array([1.0, 2.0, -30.0]), "cov": _spd(3, 3, scale=1e3)},
    ),
    fit_grid=(
        {"mean": np.array([1.0, -2.0, 0.5]), "cov": _spd(3, 0)},
        {"mean": np.array([0.3]), "cov": np.array([[2.0]])},
    ),
    scipy=lambda p: st.multivariate_normal(p["mean"], p["cov"]),
    points=_mvn_points,
    invalid=(
        (
            {"mean": np.zeros(2), "cov": np.array([[1.0, 2.0], [2.0, 1.0]])},
            "MultivariateNormal: `cov` is not positive definite",
        ),
        (
            {"mean": np.zeros(2), "cov": np.array([[1.0, 0.5], [0.0, 1.0]])},
            "MultivariateNormal: `cov` is not symmetric",
        ),
        (
            {"mean": np.array([0.0, np.nan]), "cov": np.eye(2)},
            "MultivariateNormal: `mean` contains NaN or inf",
        ),
        (
            {"mean": np.zeros(2), "cov": np.array([[1.0, np.inf], [np.inf, 1.0]])},
            "MultivariateNormal: `cov` contains NaN or inf",
        ),
    ),
    bad_shapes=(
        {"mean": np.zeros((2, 2)), "cov": np.eye(2)},
        {"mean": np.zeros(2), "cov": np.eye(3)},
        {"mean": np.zeros(2), "cov": np.ones(2)},
        {"mean": 0.0, "cov": np.eye(1)},
    ),
    kl=_kl_mvn,
    cov_t=_cov_t_mvn,
)


CASES: tuple[Case, ...] = (GAMMA, INVERSE_GAMMA, INVERSE_GAUSSIAN, MVN)


def case_params(cases=CASES, which: str = "grid"):
    """`pytest.param(case, params)` for every case and every entry of its `which` grid."""
    return [
        pytest.param(c, p, id=f"{c.name}-{i}")
        for c in cases
        for i, p in enumerate(getattr(c, which))
    ]


def case_ids(cases=CASES):
    return [pytest.param(c, id=c.name) for c in cases]


def nig_2d() -> normix.NormalInverseGaussian:
    """A skewed, correlated 2-d NIG law used by the EM tests."""
    import jax.numpy as jnp

    return normix.NormalInverseGaussian(
        mu=jnp.array([0.1, -0.2]),
        gamma=jnp.array([0.3, -0.15]),
        cov=jnp.array([[1.0, 0.35], [0.35, 0.6]]),
        mean=1.0,
        shape=1.5,
    )
