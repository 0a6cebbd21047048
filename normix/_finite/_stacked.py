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

**GIG subordinators with free $p$ (`GeneralizedHyperbolic`).** Responsibility weighting
routinely produces expected statistics whose GIG maximiser lies on the family's boundary
(an inverse Gamma or Gamma law); `GeneralizedHyperbolic.m_step` handles it
(`normix/_mixtures/_gig_m_step.py`), so every component keeps finite parameters and EM
stays monotone.

`reg_covar` is added to the diagonal of every dispersion matrix $\Sigma_k$ in the M-step
(as in scikit-learn's Gaussian mixtures), so a component collapsing onto a few (or
duplicated) points, or data with a constant column, stays positive definite. It is added
to the statistic $\mathbb{E}[XX^\top Y^{-1}]$, which enters the closed-form $\Sigma$ with
coefficient one, so it reaches $\Sigma$ before the Cholesky factorisation (a singular
estimate regularised after factorising would already be NaN).
"""

from typing import Self

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, PRNGKeyArray

from .._mixtures import AbstractNormalMixture, NormalMixtureStats
from .._mixtures._stats import posterior_mixture_stats
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


def _regularise(stats: NormalMixtureStats, reg_covar: float) -> NormalMixtureStats:
    r"""Statistics whose M-step gives $\Sigma + \text{reg\_covar}\, I$: the closed-form
    $\Sigma$ (`normal_part_mle`, `symmetric_normal_part_mle`) is
    $\mathbb{E}[XX^\top Y^{-1}]$ plus terms free of it."""
    eye = jnp.eye(stats.x.shape[-1], dtype=stats.xx_inv_y.dtype)
    return eqx.tree_at(lambda s: s.xx_inv_y, stats, stats.xx_inv_y + reg_covar * eye)


class StackedComponents(AbstractComponents):
    r"""K components of one GH-family class, stored as one batched model.

    **Arguments:**

    - `model`: an `AbstractNormalMixture` whose array leaves all have a leading axis $K$
      (build it with `eqx.filter_vmap` over a constructor, or `stack_components`).
    - `reg_covar`: added to the diagonal of each $\Sigma_k$ in every M-step (default
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

        uses_log = self.model.joint_family.subordinator_family.uses_log_statistic

        def one(m: AbstractNormalMixture):
            # one Bessel evaluation for the density and the expectations; no E[log Y]
            # when the subordinator has no log-y statistic (NaN, unused by its M-step)
            return m._row_log_likelihood_and_expectations(x, log_moment=uses_log)

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

        def one(w: Float[Array, " n"], eta: Float[Array, "n 3"], mu: Float[Array, " d"]):
            return posterior_mixture_stats(w / jnp.sum(w), eta, x, mu)

        return jax.vmap(one)(weights.T, aux, self.model.mu)

    def m_step(
        self, stats: NormalMixtureStats, mass: Float[Array, " K"], total_weight: Float[Array, ""]
    ) -> Self:
        reg = self.reg_covar

        def one(m: AbstractNormalMixture, s: NormalMixtureStats) -> AbstractNormalMixture:
            # free-p GH: the boundary-aware GIG M-step (_gig_m_step.py)
            return m.m_step(_regularise(s, reg) if reg > 0 else s)

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
