# ruff: noqa: F722  (jaxtyping shape strings)
r"""Mixture components from a GH-family law: K normal variance-mean mixtures stacked.

`StackedComponents(model)` holds one `AbstractNormalMixture` (`GeneralizedHyperbolic`,
`NormalInverseGaussian`, `NormalInverseGamma`, `VarianceGamma`, `StudentT`, `Hyperbolic`)
whose every array leaf has a leading axis $K$. Every per-component computation is one
`eqx.filter_vmap` over that axis:

* $\log p_k(x_i)$ is the component's own Bessel-function density;
* the E-step of component $k$ is the component's own weighted E-step
  (`e_step_with_log_likelihood`) with weights $w_i r_{ik}$: it returns the weighted means of
  the posterior expectations of the joint sufficient statistics
  $(\log Y, Y^{-1}, Y, X, XY^{-1}, XX^\top Y^{-1})$ given $x_i$ under component $k$;
* the M-step is the component's own `m_step` (closed form for the normal part, the
  subordinator's $\eta\to\theta$ map, in its scale gauge) on those statistics, so a
  K-component mixture of GH laws is fitted by exactly the EM of one GH law, applied with
  responsibility weights.

**GIG subordinators with free $p$ (`GeneralizedHyperbolic`).** The subordinator M-step
maximises $\theta^\top\eta - \log Z(\theta)$ over the GIG family. Its maximiser can lie on
the family's boundary, an inverse Gamma ($a = 0$) or a Gamma ($b = 0$) law: responsibility
weighting routinely produces such $\eta$ (a component whose posterior mixing laws look like
a Student-t's), and Newton's method in the interior then runs off towards $a \to 0$ and
stops without converging. When the interior solve does not succeed, the M-step takes, of
the boundary maximisers (both closed-form up to one scalar Newton solve) and the current
subordinator, the one with the largest $\theta^\top\eta - \log Z(\theta)$: the expected
complete-data log-likelihood never decreases, so EM stays monotone and finite.

`reg_covar` is added to the diagonal of every dispersion matrix $\Sigma_k$ after the
M-step (as in scikit-learn's Gaussian mixtures), so a component collapsing onto a few
(or duplicated) points stays positive definite.
"""

from typing import Self

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .._covariance import DenseCovariance
from .._distributions import GIG
from .._distributions._gig_functions import gig_expectations, gig_log_normalizer
from .._distributions._gig_solver import GIGSolverResult, solve_gig_natural
from .._mixtures import AbstractNormalMixture, GeneralizedHyperbolic, NormalMixtureStats
from ._components import AbstractComponents, empty_components


def _index(tree, i: int):
    return jax.tree.map(lambda leaf: leaf[i] if eqx.is_array(leaf) else leaf, tree)


def _select_rows(keep_new: Array, new, old):
    """Leaf by leaf, component `k` from `new` where `keep_new[k]`, else from `old`."""

    def pick(a, b):
        if not eqx.is_array(a):
            return a
        mask = keep_new.reshape((-1,) + (1,) * (a.ndim - 1))
        return jnp.where(mask, a, b)

    return jax.tree.map(pick, new, old)


def _gamma_shape_mle(s: Float[Array, ""]) -> Float[Array, ""]:
    r"""Shape $\alpha$ of the Gamma MLE: the root of $\log\alpha - \psi(\alpha) = s$,
    $s = \log\mathbb{E}Y - \mathbb{E}\log Y > 0$ (Minka's start, then Newton in
    $\log\alpha$; $\log\alpha - \psi(\alpha)$ is decreasing and convex in $\log\alpha$)."""
    s_safe = jnp.where(s > 0, s, 1.0)
    alpha = (3.0 - s_safe + jnp.sqrt((s_safe - 3.0) ** 2 + 24.0 * s_safe)) / (12.0 * s_safe)
    log_alpha = jnp.log(alpha)

    def newton(_, la):
        a = jnp.exp(la)
        f = la - jax.scipy.special.digamma(a) - s_safe
        df = 1.0 - a * jax.scipy.special.polygamma(1, a)  # d f / d log(alpha) < 0
        return la - f / df

    log_alpha = jax.lax.fori_loop(0, 8, newton, log_alpha)
    return jnp.where(s > 0, jnp.exp(log_alpha), jnp.nan)


def _gig_objective(p: Array, a: Array, b: Array, eta: Float[Array, " 3"]) -> Array:
    r"""$\theta^\top\eta - \log Z(p, a, b)$, $\theta = (p - 1, -b/2, -a/2)$ ($-\infty$ where
    the parameters are not a GIG law)."""
    val = (p - 1) * eta[0] - 0.5 * b * eta[1] - 0.5 * a * eta[2] - gig_log_normalizer(p, a, b)
    valid = (
        jnp.isfinite(p)
        & jnp.isfinite(a)
        & jnp.isfinite(b)
        & (((a > 0) & (b > 0)) | ((a == 0) & (b > 0) & (p < 0)) | ((b == 0) & (a > 0) & (p > 0)))
    )
    return jnp.where(valid & jnp.isfinite(val), val, -jnp.inf)


def gig_m_step_with_boundary(eta: Float[Array, " 3"], current: GIG) -> GIG:
    r"""GIG maximum likelihood for expected statistics $\eta = (\mathbb{E}\log Y,
    \mathbb{E}Y^{-1}, \mathbb{E}Y)$ over the closure of the family: the interior Newton
    solution when it succeeds; otherwise the best of the inverse-Gamma MLE
    ($\alpha$ from $\log\alpha - \psi(\alpha) = \log\mathbb{E}Y^{-1} + \mathbb{E}\log Y$,
    $\mathrm{GIG}(-\alpha, 0, 2\alpha/\mathbb{E}Y^{-1})$), the Gamma MLE
    ($\log\alpha - \psi(\alpha) = \log\mathbb{E}Y - \mathbb{E}\log Y$,
    $\mathrm{GIG}(\alpha, 2\alpha/\mathbb{E}Y, 0)$) and `current`, by
    $\theta^\top\eta - \log Z(\theta)$. Never raises; never worse than `current`."""
    theta, result = solve_gig_natural(eta, current.natural_params())
    p_i, b_i, a_i = theta[0] + 1, -2 * theta[1], -2 * theta[2]
    ok = (result == GIGSolverResult.successful) & jnp.all(jnp.isfinite(theta))
    alpha_ig = _gamma_shape_mle(jnp.log(eta[1]) + eta[0])
    alpha_g = _gamma_shape_mle(jnp.log(eta[2]) - eta[0])
    zero = jnp.zeros_like(eta[0])
    cands = jnp.stack(
        [
            jnp.stack([p_i, a_i, b_i]),
            jnp.stack([-alpha_ig, zero, 2 * alpha_ig / eta[1]]),
            jnp.stack([alpha_g, 2 * alpha_g / eta[2], zero]),
            jnp.stack([current.p, current.a, current.b]),
        ]
    )
    score = jax.vmap(lambda c: _gig_objective(c[0], c[1], c[2], eta))(cands)
    score = score.at[0].set(jnp.where(ok, jnp.inf, -jnp.inf))  # the interior MLE wins
    best = cands[jnp.argmax(score)]
    return GIG(best[0], best[1], best[2])


def _free_p_gh_m_step(m: GeneralizedHyperbolic, s: NormalMixtureStats) -> GeneralizedHyperbolic:
    """`GeneralizedHyperbolic.m_step` (scale gauge $E Y = 1$, then the closed-form normal
    part) with the subordinator from `gig_m_step_with_boundary`."""
    s = s.rescale_latent(s.y)
    sub = gig_m_step_with_boundary(s.gig_part(), m.subordinator)
    return m.with_joint(m.joint_family.from_mixture_stats(s, sub, symmetric=m.symmetric))


def _regularise(model: AbstractNormalMixture, reg_covar: float) -> AbstractNormalMixture:
    r"""$\Sigma \to \Sigma + \text{reg\_covar}\, I$ for one (unbatched) component."""
    sigma = model.covariance.as_matrix()
    eye = jnp.eye(model.dim, dtype=sigma.dtype)
    cov = DenseCovariance(jnp.linalg.cholesky(sigma + reg_covar * eye))
    return model.with_joint(eqx.tree_at(lambda j: j.covariance, model.joint, cov))


class StackedComponents(AbstractComponents):
    r"""K components of one GH-family class, stored as one batched model.

    **Arguments:**

    - `model`: an `AbstractNormalMixture` whose array leaves all have a leading axis $K$
      (build it with `eqx.filter_vmap` over a constructor, or `stack_components`).
    - `reg_covar`: added to the diagonal of each $\Sigma_k$ after every M-step (default
      `1e-6`; `0` switches it off).
    """

    model: AbstractNormalMixture
    reg_covar: float = eqx.field(static=True)

    def __init__(self, model: AbstractNormalMixture, *, reg_covar: float = 1e-6):
        if not isinstance(model, AbstractNormalMixture):
            raise TypeError(
                "StackedComponents: `model` must be a batched GH-family law (an "
                f"AbstractNormalMixture such as NormalInverseGaussian), got {type(model).__name__}."
            )
        if model.mu.ndim != 2:
            raise ValueError(
                "StackedComponents: `model` must be batched over components (`mu` of shape "
                f"(K, d)), got `mu` of shape {model.mu.shape}."
            )
        if not (isinstance(reg_covar, (int, float)) and reg_covar >= 0):
            raise ValueError(
                f"StackedComponents: `reg_covar` must be a float >= 0, got {reg_covar!r}."
            )
        self.model = model
        self.reg_covar = float(reg_covar)

    @property
    def n_components(self) -> int:
        return self.model.mu.shape[0]

    @property
    def dim(self) -> int:
        return self.model.mu.shape[1]

    @property
    def family(self) -> type[AbstractNormalMixture]:
        return type(self.model)

    def component(self, k: int) -> AbstractNormalMixture:
        """Component `k` as an ordinary (unbatched) model."""
        return _index(self.model, k)

    def log_prob_rows(self, x: Float[Array, "n d"]) -> tuple[Float[Array, "n K"], Array]:
        r"""$\log p_k(x_i)$ and, from the same posterior GIG parameters, the posterior
        expectations $(\mathbb{E}\log Y, \mathbb{E}Y^{-1}, \mathbb{E}Y \mid x_i, k)$ that
        the E-step needs (the Bessel functions are evaluated once per row and component)."""

        def one(m: AbstractNormalMixture):
            p_post, a_post, b_post, beta, const = m._row_terms(x)
            log_p = const + beta + gig_log_normalizer(p_post, a_post, b_post)
            return log_p, gig_expectations(p_post, a_post, b_post)

        rows, eta = eqx.filter_vmap(one)(self.model)
        return rows.T, eta

    def e_step(
        self,
        x: Float[Array, "n d"],
        resp_weights: Float[Array, "n K"],
        mass: Float[Array, " K"],
        aux: Array,
    ) -> NormalMixtureStats:
        r"""Per component, the weighted means (weights $w_i r_{ik}$) of the posterior
        expectations of the joint sufficient statistics, exactly as the family's own
        `e_step` with those weights. An emptied component gets uniform weights (its
        statistics are discarded by the M-step), so no 0/0 is formed."""
        empty = empty_components(mass)
        uniform = jnp.ones_like(resp_weights[:, 0])
        weights = jnp.where(empty[None, :], uniform[:, None], resp_weights)

        def one(w: Float[Array, " n"], eta: Float[Array, "n 3"]) -> NormalMixtureStats:
            w = w / jnp.sum(w)
            m = w @ eta
            c = w * eta[:, 1]
            return NormalMixtureStats(
                log_y=m[0],
                inv_y=m[1],
                y=m[2],
                x=w @ x,
                x_inv_y=c @ x,
                xx_inv_y=(x * c[:, None]).T @ x,
            )

        return jax.vmap(one)(weights.T, aux)

    def m_step(
        self, stats: NormalMixtureStats, mass: Float[Array, " K"], total_weight: Float[Array, ""]
    ) -> Self:
        reg = self.reg_covar

        def one(m: AbstractNormalMixture, s: NormalMixtureStats) -> AbstractNormalMixture:
            if isinstance(m, GeneralizedHyperbolic) and not m.fix_p:
                new = _free_p_gh_m_step(m, s)
            else:
                new = m.m_step(s)
            return _regularise(new, reg) if reg > 0 else new

        new = eqx.filter_vmap(one)(self.model, stats)
        new = _select_rows(~empty_components(mass), new, self.model)
        return eqx.tree_at(lambda c: c.model, self, new)

    def n_parameters(self) -> int:
        return self.n_components * self.component(0).n_parameters()

    def sample_each(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "... K d"]:
        keys = jr.split(key, self.n_components)
        draws = eqx.filter_vmap(lambda m, k: m.sample(k, shape))(self.model, keys)
        return jnp.moveaxis(draws, 0, -2)

    def component_means(self) -> Float[Array, "K d"]:
        return eqx.filter_vmap(lambda m: m.mean())(self.model)

    def component_covariances(self) -> Float[Array, "K d d"]:
        return eqx.filter_vmap(lambda m: m.cov())(self.model)


def stack_components(models, *, reg_covar: float = 1e-6) -> StackedComponents:
    """`StackedComponents` from a list of models of one GH-family class (same dimension)."""
    models = list(models)
    if not models:
        raise ValueError("stack_components: need at least one component.")
    kinds = {type(m) for m in models}
    if len(kinds) != 1:
        raise TypeError(
            "stack_components: all components must be of one family, got "
            f"{sorted(k.__name__ for k in kinds)}."
        )
    stacked = jax.tree.map(
        lambda *leaves: jnp.stack(leaves) if eqx.is_array(leaves[0]) else leaves[0], *models
    )
    return StackedComponents(stacked, reg_covar=reg_covar)
