# ruff: noqa: F722  (jaxtyping shape strings)
r"""`normix.fit_mixture`: fit a K-component mixture by EM through `normix.fit`.

Steps: (1) starting responsibilities from k-means++ or at random (or a user model);
(2) the start is the M-step of those responsibilities (Gaussian components; for
GH-family components, followed by at most 100 Gaussian-mixture EM steps, after which each
Gaussian becomes the family's default law with the same location and dispersion and
$\gamma = 0$); (3) EM by `normix.fit`. With `n_init > 1` the
starts are built and fitted as *one* `vmap`ped batch (`normix.fit_multistart`) and the
start with the highest final log-likelihood is kept.
"""

import operator
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._compiled import is_traced, jit_by_check_mode
from .._covariance import DenseCovariance
from .._distributions import GIG, Gamma, InverseGamma, InverseGaussian, MultivariateNormal
from .._fitting import AbstractEMSolver, EMResult, fit, fit_multistart, validate_data
from .._fitting._host_checks import call_with_host_checks
from .._misc import require_rows
from .._mixtures import AbstractNormalMixture
from ._components import empty_components
from ._gaussian import GaussianComponents, check_covariance_type
from ._init import kmeans_responsibilities, random_responsibilities
from ._mixture import FiniteMixture, MixtureStats
from ._solver import MixtureEM
from ._stacked import StackedComponents

_INITS = ("kmeans++", "random")


def _global_precision_cholesky(
    x: Array, w: Array, covariance_type: str, K: int, reg: float
) -> Array:
    """Precision factors of the pooled data covariance (placeholders for empty components)."""
    wn = w / jnp.sum(w)
    xc = x - (wn @ x)[None, :]
    d = x.shape[1]
    var = wn @ (xc * xc) + reg
    if covariance_type in ("full", "tied"):
        cov = (xc * wn[:, None]).T @ xc + reg * jnp.eye(d, dtype=x.dtype)
        L = jnp.linalg.cholesky(cov)
        P = jax.scipy.linalg.solve_triangular(L, jnp.eye(d, dtype=x.dtype), lower=True).T
        return P if covariance_type == "tied" else jnp.broadcast_to(P, (K, d, d))
    if covariance_type == "diag":
        return jnp.broadcast_to(1.0 / jnp.sqrt(var), (K, d))
    return jnp.broadcast_to(1.0 / jnp.sqrt(jnp.mean(var)), (K,))


def gaussian_from_responsibilities(
    x: Float[Array, "n d"],
    w: Float[Array, " n"],
    resp: Float[Array, "n K"],
    covariance_type: str = "full",
    *,
    reg_covar: float = 1e-6,
    prior_strength: float = 0.0,
    prior_scale: Array | None = None,
    weight_concentration: float = 1.0,
    chunk_size: int | None = None,
) -> FiniteMixture:
    """The Gaussian mixture given by one M-step from responsibilities `resp` (rows sum to
    one), with sample weights `w`. A component with no mass gets the pooled data
    covariance and the data mean. With `chunk_size`, the mixture runs its E-step in row
    blocks, and `"full"` components use `quadratic_features` when `x` is float64 (in
    float32 the quadratic expansion costs too much accuracy; see `GaussianComponents`)."""
    K = resp.shape[1]
    total = jnp.sum(w)
    wn = w / total
    mean = wn @ x
    resp_w = resp * wn[:, None]
    mass = jnp.sum(resp_w, axis=0)
    # two passes: the statistics are centred at the components' means, so the covariances
    # lose nothing to far-apart clusters (see GaussianComponents, "Centring")
    empty = empty_components(mass)
    means = (resp_w.T @ x) / jnp.where(empty, 1.0, mass)[:, None]
    means = jnp.where(empty[:, None], mean[None, :], means)
    placeholder = GaussianComponents(
        means,
        _global_precision_cholesky(x, w, covariance_type, K, reg_covar),
        covariance_type,
        reg_covar=reg_covar,
        prior_strength=prior_strength,
        prior_scale=prior_scale,
        quadratic_features=(
            chunk_size is not None and covariance_type == "full" and x.dtype == jnp.float64
        ),
    )
    mixture = FiniteMixture(
        jnp.full((K,), 1.0 / K, dtype=x.dtype),
        placeholder,
        weight_concentration=weight_concentration,
        chunk_size=chunk_size,
    )
    _, aux = placeholder.log_prob_rows(x)
    stats = placeholder.e_step(x, resp_w, mass, aux)
    return mixture.m_step(MixtureStats(mass=mass, components=stats, total_weight=total))


def _light_subordinator(sub):
    r"""A light-tailed subordinator of the same family, in the gauge: the component starts
    close to its Gaussian ($Y$ concentrated near 1, coefficient of variation about 0.3) and
    EM grows the tails where the data ask for them. Heavy-tailed starts let one wide
    component swallow its neighbours."""
    one = jnp.ones_like(jnp.asarray(sub.gig_params()[0]))
    c = 10.0 * one
    if isinstance(sub, InverseGaussian):
        return InverseGaussian(one, c)
    if isinstance(sub, Gamma):
        return Gamma(c, c)
    if isinstance(sub, InverseGamma):
        return InverseGamma(c, c)
    if isinstance(sub, GIG):
        return GIG(sub.p, c, c)
    return sub


def _gh_from_gaussian(
    family: type[AbstractNormalMixture], gaussian: FiniteMixture, reg_covar: float
) -> FiniteMixture:
    """Each Gaussian component $N(m_k, S_k)$ as a light-tailed law of the family with
    $\\mu = m_k$, $\\gamma = 0$, $\\Sigma = S_k$."""
    comps = gaussian.components
    d = comps.dim
    dtype = comps.means.dtype
    sub = _light_subordinator(family.default_subordinator(d, dtype))

    def one(mu, cov):
        joint = family.joint_family(
            mu, jnp.zeros_like(mu), DenseCovariance(jnp.linalg.cholesky(cov)), sub
        )
        return family.from_joint(joint)

    stacked = eqx.filter_vmap(one)(comps.means, comps.component_covariances())
    return FiniteMixture(
        gaussian.weights,
        StackedComponents(stacked, reg_covar=reg_covar),
        weight_concentration=gaussian.weight_concentration,
    )


def _count_distinct_rows(x: Any, w: Any) -> int | None:
    """Number of distinct rows with positive weight, or None under tracing."""
    if isinstance(x, jax.core.Tracer) or isinstance(w, jax.core.Tracer):
        return None
    xa = np.asarray(x)
    if w is not None:
        xa = xa[np.asarray(w) > 0]
    return int(np.unique(xa.reshape(len(xa), -1), axis=0).shape[0])


def _check_component(component: Any, covariance: str) -> None:
    if component is MultivariateNormal:
        check_covariance_type(covariance, "fit_mixture")
        return
    if isinstance(component, type) and issubclass(component, AbstractNormalMixture):
        if covariance != "full":
            raise ValueError(
                f"fit_mixture: {component.__name__} components have a dense dispersion matrix; "
                f"covariance={covariance!r} is only available for MultivariateNormal components."
            )
        return
    raise TypeError(
        "fit_mixture: `component` must be normix.MultivariateNormal or a GH-family class "
        "(GeneralizedHyperbolic, NormalInverseGaussian, NormalInverseGamma, VarianceGamma, "
        f"StudentT, Hyperbolic), got {component!r}."
    )


def _count_argument(value: Any, name: str) -> int:
    """`value` as a Python int >= 1 (NumPy integers accepted), else a ValueError."""
    if isinstance(value, bool):
        value = None
    try:
        count = operator.index(value)
    except TypeError:
        count = 0
    if count < 1:
        raise ValueError(f"fit_mixture: `{name}` must be an int >= 1, got {value!r}.")
    return count


def initial_mixture(
    key: PRNGKeyArray,
    x: Float[Array, "n d"],
    w: Float[Array, " n"],
    n_components: int,
    *,
    component: Any = MultivariateNormal,
    covariance: str = "full",
    init: str = "kmeans++",
    reg_covar: float = 1e-6,
    prior_strength: float = 0.0,
    prior_scale: Array | None = None,
    weight_concentration: float = 1.0,
    n_lloyd: int = 10,
    chunk_size: int | None = None,
) -> FiniteMixture:
    """A starting mixture from `init` (`"kmeans++"` or `"random"`), a pure function of
    `key` (so it can be `vmap`ped over keys)."""
    if init == "kmeans++":
        resp = kmeans_responsibilities(key, x, w, n_components, n_lloyd)
    elif init == "random":
        resp = random_responsibilities(key, x, n_components)
    else:
        raise ValueError(
            f"fit_mixture: `init` must be one of {_INITS} or a FiniteMixture, got {init!r}."
        )
    gaussian = gaussian_from_responsibilities(
        x,
        w,
        resp,
        covariance if component is MultivariateNormal else "full",
        reg_covar=reg_covar,
        prior_strength=prior_strength,
        prior_scale=prior_scale,
        weight_concentration=weight_concentration,
        chunk_size=chunk_size if component is MultivariateNormal else None,
    )
    if component is MultivariateNormal:
        return gaussian
    # GH-family components start from a short Gaussian-mixture EM (cheap, and it places
    # the components far better than the hard k-means partition does)
    warm = fit(gaussian, x, weights=w, solver=MixtureEM(tol=1e-6), max_steps=100, throw=False)
    return _gh_from_gaussian(component, warm.model, reg_covar)


def fit_mixture(
    X: ArrayLike,
    n_components: int,
    *,
    component: Any = MultivariateNormal,
    covariance: str = "full",
    n_init: int = 1,
    init: str | FiniteMixture = "kmeans++",
    key: PRNGKeyArray | None = None,
    max_steps: int = 200,
    tol: float = 1e-6,
    reg_covar: float = 1e-6,
    weight_concentration: float = 1.0,
    covariance_prior: float = 0.0,
    weights: ArrayLike | None = None,
    solver: AbstractEMSolver | None = None,
    throw: bool = False,
    verbose: bool | int = False,
    n_lloyd: int = 10,
    chunk_size: int | None | str = "auto",
) -> EMResult:
    r"""Fit a K-component finite mixture by EM.

    **Arguments:**

    - `X`: data, shape `(n, d)`.
    - `n_components`: $K \ge 1$.
    - `component`: `normix.MultivariateNormal` (default) or a GH-family class
      (`GeneralizedHyperbolic`, `NormalInverseGaussian`, `NormalInverseGamma` (skew-t),
      `VarianceGamma`, `StudentT`, `Hyperbolic`).
    - `covariance`: for Gaussian components, scikit-learn's `"full"`, `"diag"`,
      `"spherical"` or `"tied"`; GH-family components are always `"full"`.
    - `n_init`: number of starts, fitted as one `vmap`ped batch; the best is kept.
    - `init`: `"kmeans++"` (default), `"random"` (random responsibilities) or an initial
      `FiniteMixture` (then `n_init`, `covariance`, `component`, `chunk_size` are taken
      from it, and `reg_covar`, `weight_concentration`, `covariance_prior` too: passing
      other values than their defaults with it is an error).
    - `key`: PRNG key for the starts (required unless `init` is a model).
    - `max_steps`, `tol`: at most `max_steps` EM iterations; stop when the mean
      log-likelihood changes by less than `tol` (absolute, nats per observation; as
      scikit-learn's `tol`). Ignored if `solver` is given.
    - `reg_covar`: added to the diagonal of every covariance ($\Sigma_k$ for GH-family
      components) in each M-step.
    - `weight_concentration`: $\alpha \ge 1$ of a symmetric Dirichlet prior on the weights
      (MAP EM; `1` = maximum likelihood).
    - `covariance_prior`: strength $\nu \ge 0$ (in pseudo-observations) of a conjugate
      prior shrinking Gaussian covariances towards the diagonal of the data covariance
      (MAP EM; `0` = none).
    - `weights`: optional non-negative sample weights, shape `(n,)`.
    - `solver`: an `AbstractEMSolver` replacing the default `MixtureEM(tol)`.
    - `chunk_size`: Gaussian components: E-step over blocks of this many rows (see
      `FiniteMixture`; `"full"` components then use `quadratic_features` in float64,
      built once per fit when both copies take at most 1 GiB (the mixture's
      `feature_cache_bytes`; pass an `init` mixture to change it), and whitening in
      float32). `"auto"`
      (default): 512 for Gaussian components when $n \ge 8192$, else one block; `None`:
      one block.
    - `throw`: raise if the best fit did not converge or went non-finite (default: report
      it in `result.result` / `result.converged`).

    **Returns:** an `EMResult` whose `.model` is the fitted `FiniteMixture`.

    **Errors:** `ValueError` if $K$ exceeds the number of distinct (positively weighted)
    rows of `X` (checked when `X` is concrete), or if $K > n$.
    """
    n_components = _count_argument(n_components, "n_components")
    n_init = _count_argument(n_init, "n_init")
    x, w = validate_data(X, weights)
    require_rows(x, "fit_mixture")
    n = x.shape[0]
    if n_components > n:
        raise ValueError(
            f"fit_mixture: n_components={n_components} exceeds the number of observations n={n}."
        )
    distinct = _count_distinct_rows(X, weights)
    if distinct is not None and n_components > distinct:
        raise ValueError(
            f"fit_mixture: n_components={n_components} exceeds the number of distinct data "
            f"points ({distinct}); a mixture with more components than distinct points is "
            "degenerate. Use fewer components."
        )
    if solver is None:
        solver = MixtureEM(tol=float(tol))
    user_weights = None if weights is None else w
    if isinstance(init, FiniteMixture):
        overridden = [
            name
            for name, value, default in (
                ("reg_covar", reg_covar, 1e-6),
                ("weight_concentration", weight_concentration, 1.0),
                ("covariance_prior", covariance_prior, 0.0),
            )
            if value != default
        ]
        if overridden:
            raise ValueError(
                f"fit_mixture: {', '.join(overridden)} cannot be combined with an initial "
                "model, which carries its own (`GaussianComponents(..., reg_covar=, "
                "prior_strength=)`, `StackedComponents(..., reg_covar=)`, "
                "`FiniteMixture(..., weight_concentration=)`); set them there."
            )
        if init.n_components != n_components:
            raise ValueError(
                f"fit_mixture: the initial model has {init.n_components} components, "
                f"n_components={n_components}."
            )
        return fit(
            init,
            x,
            weights=user_weights,
            solver=solver,
            max_steps=max_steps,
            throw=throw,
            verbose=verbose,
        )
    _check_component(component, covariance)
    if chunk_size == "auto":
        chunk_size = 512 if component is MultivariateNormal and n >= 8192 else None
    if chunk_size is not None and component is not MultivariateNormal:
        raise ValueError("fit_mixture: `chunk_size` is available for Gaussian components only.")
    if key is None:
        raise ValueError("fit_mixture: pass a PRNG `key` (e.g. jax.random.key(0)) for the starts.")
    if not (isinstance(covariance_prior, (int, float)) and covariance_prior >= 0):
        raise ValueError(f"fit_mixture: `covariance_prior` must be >= 0, got {covariance_prior!r}.")
    prior_scale = None
    if covariance_prior > 0:
        if component is not MultivariateNormal:
            raise ValueError(
                "fit_mixture: `covariance_prior` is implemented for MultivariateNormal components."
            )
        wn = w / jnp.sum(w)
        xc = x - (wn @ x)[None, :]
        prior_scale = wn @ (xc * xc)

    args = (
        key,
        x,
        w,
        user_weights,
        n_components,
        n_init,
        component,
        covariance,
        init,
        reg_covar,
        float(covariance_prior),
        prior_scale,
        weight_concentration,
        n_lloyd,
        chunk_size,
        solver,
        max_steps,
    )

    def call(throw: bool) -> EMResult:
        return _fit_from_key()(*args, throw, verbose)

    # see `normix._fitting._host_checks`: on concrete data, compile without host callbacks
    if verbose or is_traced((key, x, w, user_weights, prior_scale, solver)):
        return call(bool(throw))
    return call_with_host_checks(call, bool(throw))


def _fit_from_key_impl(
    key,
    x,
    w,
    user_weights,
    n_components,
    n_init,
    component,
    covariance,
    init,
    reg_covar,
    prior_strength,
    prior_scale,
    weight_concentration,
    n_lloyd,
    chunk_size,
    solver,
    max_steps,
    throw,
    verbose,
) -> EMResult:
    """Starts and EM in one compiled function (cached across calls with equal settings)."""

    def start(k: PRNGKeyArray) -> FiniteMixture:
        return initial_mixture(
            k,
            x,
            w,
            n_components,
            component=component,
            covariance=covariance,
            init=init,
            reg_covar=reg_covar,
            prior_strength=prior_strength,
            prior_scale=prior_scale,
            weight_concentration=weight_concentration,
            n_lloyd=n_lloyd,
            chunk_size=chunk_size,
        )

    kwargs = dict(weights=user_weights, solver=solver, max_steps=max_steps, verbose=verbose)
    if n_init == 1:
        return fit(start(key), x, throw=throw, **kwargs)
    models = eqx.filter_vmap(start)(jr.split(key, n_init))
    best, _ = fit_multistart(models, x, throw=throw, **kwargs)
    return best


_fit_from_key = jit_by_check_mode(_fit_from_key_impl)
