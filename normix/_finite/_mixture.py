# ruff: noqa: F722  (jaxtyping shape strings)
r"""`FiniteMixture`: a K-component mixture $p(x) = \sum_k \pi_k p_k(x)$, fitted by EM.

**E-step.** With $\ell_{ik} = \log\pi_k + \log p_k(x_i)$, the responsibilities are
$r_{ik} = \exp(\ell_{ik} - \operatorname{logsumexp}_j \ell_{ij})$ and the mean
log-likelihood is $\sum_i \bar w_i \operatorname{logsumexp}_k \ell_{ik}$ ($\bar w_i$ the
normalised sample weights), computed in the same pass from one exponential per entry:
$e_{ik} = \exp(\ell_{ik} - \max_j \ell_{ij})$, $r_{ik} = e_{ik}/\sum_j e_{ij}$. The expected
complete-data statistics are the masses $N_k = \sum_i \bar w_i r_{ik}$ and each component's
statistics under the weights $\bar w_i r_{ik}$ (`AbstractComponents.e_step`).

**M-step.** $\pi_k$ maximises $\sum_k N_k\log\pi_k$ plus, optionally, a symmetric
Dirichlet($\alpha$) log-prior (MAP):
$\pi_k = (n N_k + \alpha - 1)/(n + K(\alpha - 1))$, $n = \sum_i w_i$, $\alpha \ge 1$
($\alpha = 1$: the MLE $\pi_k = N_k$). The components are updated by their own M-step.

**Emptied components.** A component whose mass falls to $\le 100\epsilon$ keeps its
previous parameters (its weight becomes $\approx 0$); nothing is divided by zero, so the fit
never produces NaN from an empty component.
"""

from typing import Any, Self

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from .._compiled import compiled_when_eager
from .._em_model import AbstractFusedEMModel, AbstractPreparedDataEMModel
from .._errors import error_if
from .._misc import split_batch
from .._mixtures import AbstractNormalMixture
from ._components import AbstractComponents
from ._gaussian import GaussianComponents, QuadraticRows
from ._stacked import StackedComponents, stack_components


class MixtureStats(eqx.Module):
    """E-step output of a `FiniteMixture`: component masses, their statistics, and the
    total sample weight $\\sum_i w_i$."""

    mass: Float[Array, " K"]
    components: Any
    total_weight: Float[Array, ""]


def _as_components(components: Any) -> AbstractComponents:
    if isinstance(components, AbstractComponents):
        return components
    if isinstance(components, AbstractNormalMixture):
        return StackedComponents(components)
    if isinstance(components, (list, tuple)):
        return stack_components(components)
    raise TypeError(
        "FiniteMixture: `components` must be an AbstractComponents (GaussianComponents, "
        "StackedComponents), a batched GH-family model, or a list of GH-family models; got "
        f"{type(components).__name__}."
    )


class FiniteMixture(AbstractFusedEMModel, AbstractPreparedDataEMModel):
    r"""A finite mixture $p(x) = \sum_{k=1}^K \pi_k\,p_k(x)$ of components of one family.

    **Arguments:**

    - `weights`: $\pi$, shape `(K,)`, non-negative, summing to one.
    - `components`: `GaussianComponents` (scikit-learn's covariance types), a
      `StackedComponents`, a batched GH-family model (leading axis $K$), or a list of
      GH-family models of one class.
    - `weight_concentration`: $\alpha \ge 1$ of a symmetric Dirichlet prior on the weights
      used by the M-step (MAP EM); `1.0` (default) is maximum likelihood.
    - `chunk_size`: Gaussian components only: run the E-step (and `log_likelihood`) over
      blocks of this many rows (one `lax.scan`, statistics summed), so the
      $n\times K\times d$ intermediates of the `"full"` type stay in cache and memory
      stays $O(\text{chunk}\cdot K d)$. `None` (default): one block.
    - `feature_cache_bytes`: `"full"` Gaussian components with `quadratic_features`
      only. Inside `fit` the feature matrix of the rows (two copies, $2n(T + d)$ numbers,
      $T = d(d+1)/2$) is built once per fit instead of once per iteration when it takes at
      most this many bytes (default $2^{30}$, 1 GiB); the E-step then runs on whole arrays
      and `chunk_size` applies only outside `fit`. `0` never caches.

    Fit with `normix.fit_mixture` (or `normix.fit` from an initial `FiniteMixture`).
    """

    weights: Float[Array, " K"]
    components: AbstractComponents
    weight_concentration: float = eqx.field(static=True)
    chunk_size: int | None = eqx.field(static=True)
    feature_cache_bytes: int = eqx.field(static=True)
    # files saved before the field existed load with its default (`normix.load`)
    _fields_added_later = {"feature_cache_bytes": 2**30}  # noqa: RUF012 (read only)

    def __init__(
        self,
        weights: ArrayLike,
        components: Any,
        *,
        weight_concentration: float = 1.0,
        chunk_size: int | None = None,
        feature_cache_bytes: int = 2**30,
    ):
        components = _as_components(components)
        if (
            not isinstance(feature_cache_bytes, int)
            or isinstance(feature_cache_bytes, bool)
            or feature_cache_bytes < 0
        ):
            raise ValueError(
                "FiniteMixture: `feature_cache_bytes` must be an int >= 0, got "
                f"{feature_cache_bytes!r}."
            )
        if chunk_size is not None:
            if not isinstance(chunk_size, int) or chunk_size < 1:
                raise ValueError(
                    f"FiniteMixture: `chunk_size` must be None or an int >= 1, got {chunk_size!r}."
                )
            if not isinstance(components, GaussianComponents):
                raise ValueError(
                    "FiniteMixture: `chunk_size` is available for Gaussian components only "
                    "(their E-step statistics are sums over rows)."
                )
        weights = jnp.asarray(weights)
        dtype = jax.tree.leaves(eqx.filter(components, eqx.is_inexact_array))[0].dtype
        weights = weights.astype(dtype)
        K = components.n_components
        if weights.shape != (K,):
            raise ValueError(
                f"FiniteMixture: `weights` must have shape ({K},) for {K} components, "
                f"got {weights.shape}."
            )
        if not (isinstance(weight_concentration, (int, float)) and weight_concentration >= 1):
            raise ValueError(
                "FiniteMixture: `weight_concentration` (Dirichlet alpha) must be a float >= 1, "
                f"got {weight_concentration!r}."
            )
        weights = error_if(
            weights,
            ~jnp.all(jnp.isfinite(weights) & (weights >= 0))
            | (jnp.abs(jnp.sum(weights) - 1) > 1e3 * jnp.finfo(dtype).eps * K),
            "FiniteMixture: `weights` must be finite, non-negative and sum to 1.",
        )
        self.weights = weights
        self.components = components
        self.weight_concentration = float(weight_concentration)
        self.chunk_size = chunk_size
        self.feature_cache_bytes = feature_cache_bytes

    # ------------------------------------------------------------------ accessors
    @property
    def n_components(self) -> int:
        return self.components.n_components

    @property
    def dim(self) -> int:
        return self.components.dim

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.dim,)

    @property
    def means(self) -> Float[Array, "K d"]:
        """$\\mathbb{E}[X]$ under each component."""
        return self.components.component_means()

    @property
    def covariances(self) -> Float[Array, "K d d"]:
        """$\\operatorname{Cov}[X]$ under each component (dense)."""
        return self.components.component_covariances()

    def mean(self) -> Float[Array, " d"]:
        r"""$\mathbb{E}X = \sum_k \pi_k \mathbb{E}_k X$."""
        return self.weights @ self.means

    def cov(self) -> Float[Array, "d d"]:
        r"""$\operatorname{Cov}X = \sum_k\pi_k(\Sigma_k + m_k m_k^\top) - m m^\top$."""
        m = self.means
        mean = self.weights @ m
        second = (
            jnp.einsum("k,kij->ij", self.weights, self.covariances)
            + (m.T * self.weights[None, :]) @ m
        )
        return second - jnp.outer(mean, mean)

    def n_parameters(self) -> int:
        """Component parameters plus $K - 1$ free weights (static)."""
        return self.components.n_parameters() + self.n_components - 1

    # ------------------------------------------------------------------ densities
    def _rows(self, x: Array) -> tuple[Array, tuple[int, ...]]:
        x = jnp.asarray(x)
        x = x.astype(jnp.result_type(x, self.weights.dtype))
        batch = split_batch(x, self.event_shape, "FiniteMixture")
        return x.reshape(-1, self.dim), batch

    def _joint_log_prob_rows(self, x: Float[Array, "n d"]) -> tuple[Float[Array, "n K"], Any]:
        comp, aux = self.components.log_prob_rows(x)
        return comp + jnp.log(self.weights)[None, :], aux

    def log_prob(self, x: ArrayLike) -> Array:
        r"""$\log p(x)$ for one observation `(d,)` or any leading batch shape."""
        rows, batch = self._rows(x)
        joint, _ = self._joint_log_prob_rows(rows)
        return jax.nn.logsumexp(joint, axis=1).reshape(batch)

    def prob(self, x: ArrayLike) -> Array:
        return jnp.exp(self.log_prob(x))

    def predict_log_proba(self, X: ArrayLike) -> Array:
        r"""$\log r_{ik} = \log\pi_k + \log p_k(x_i) - \log p(x_i)$, shape `batch + (K,)`."""
        rows, batch = self._rows(X)
        joint, _ = self._joint_log_prob_rows(rows)
        log_resp = joint - jax.nn.logsumexp(joint, axis=1, keepdims=True)
        return log_resp.reshape(*batch, self.n_components)

    def predict_proba(self, X: ArrayLike) -> Array:
        """Responsibilities $P(\\text{component } k \\mid x)$; rows sum to one."""
        return jnp.exp(self.predict_log_proba(X))

    def predict(self, X: ArrayLike) -> Int[Array, "..."]:
        """The most probable component of each observation."""
        return jnp.argmax(self.predict_log_proba(X), axis=-1)

    def score(self, X: ArrayLike, weights: ArrayLike | None = None) -> Float[Array, ""]:
        """(Weighted) mean log-likelihood per observation (scikit-learn's `score`)."""
        lp = self.log_prob(X).reshape(-1)
        if weights is None:
            return jnp.mean(lp)
        w = jnp.asarray(weights, dtype=lp.dtype).reshape(-1)
        return (w @ lp) / jnp.sum(w)

    def _n(self, X: ArrayLike, weights: ArrayLike | None) -> Array:
        rows, _ = self._rows(X)
        if weights is None:
            return jnp.asarray(rows.shape[0], dtype=self.weights.dtype)
        return jnp.sum(jnp.asarray(weights, dtype=self.weights.dtype))

    def aic(self, X: ArrayLike, weights: ArrayLike | None = None) -> Float[Array, ""]:
        r"""$-2\ell + 2k$ ($\ell$ the total log-likelihood, $k$ = `n_parameters()`)."""
        return -2.0 * self.score(X, weights) * self._n(X, weights) + 2.0 * self.n_parameters()

    def bic(self, X: ArrayLike, weights: ArrayLike | None = None) -> Float[Array, ""]:
        r"""$-2\ell + k\log n$."""
        n = self._n(X, weights)
        return -2.0 * self.score(X, weights) * n + self.n_parameters() * jnp.log(n)

    def icl(self, X: ArrayLike, weights: ArrayLike | None = None) -> Float[Array, ""]:
        r"""Integrated completed likelihood (Biernacki, Celeux & Govaert 2000), in its BIC
        form: $\mathrm{BIC} + 2\sum_i w_i \sum_k -r_{ik}\log r_{ik}$, i.e. BIC penalised by
        the entropy of the soft classification (favours well-separated clusters)."""
        log_resp = self.predict_log_proba(X).reshape(-1, self.n_components)
        resp = jnp.exp(log_resp)
        ent = -jnp.sum(jnp.where(resp > 0, resp * log_resp, 0.0), axis=1)
        if weights is None:
            total_ent = jnp.sum(ent)
        else:
            total_ent = jnp.asarray(weights, dtype=ent.dtype).reshape(-1) @ ent
        return self.bic(X, weights) + 2.0 * total_ent

    # ------------------------------------------------------------------ sampling
    @compiled_when_eager
    def sample(self, key: PRNGKeyArray, shape: tuple[int, ...] = ()) -> Array:
        """Draws of shape `shape + (d,)`: a component label $k \\sim \\pi$, then $x \\sim p_k$."""
        key_z, key_x = jr.split(key)
        labels = jr.categorical(key_z, jnp.log(self.weights), shape=shape)
        each = self.components.sample_each(key_x, shape)
        onehot = jax.nn.one_hot(labels, self.n_components, dtype=each.dtype)
        return jnp.sum(onehot[..., None] * each, axis=-2)

    @compiled_when_eager
    def sample_with_labels(
        self, key: PRNGKeyArray, shape: tuple[int, ...] = ()
    ) -> tuple[Array, Array]:
        """`(x, labels)`: draws and the component each came from."""
        key_z, key_x = jr.split(key)
        labels = jr.categorical(key_z, jnp.log(self.weights), shape=shape)
        each = self.components.sample_each(key_x, shape)
        onehot = jax.nn.one_hot(labels, self.n_components, dtype=each.dtype)
        return jnp.sum(onehot[..., None] * each, axis=-2), labels

    # ------------------------------------------------------------------ EM protocol
    def _e_block(self, x: Float[Array, "b d"], wn: Float[Array, " b"]):
        joint, aux = self._joint_log_prob_rows(x)
        # one exp pass: r = e / s with e = exp(joint - max), s = sum_k e, lse = max + log s
        top = jax.lax.stop_gradient(jnp.max(joint, axis=1))
        top = jnp.where(jnp.isfinite(top), top, 0.0)
        e = jnp.exp(joint - top[:, None])
        s = jnp.sum(e, axis=1)
        lse = top + jnp.log(s)
        resp_w = e * (wn / s)[:, None]
        mass = jnp.sum(resp_w, axis=0)
        return mass, self.components.e_step(x, resp_w, mass, aux), wn @ lse

    def _ll_block(self, x: Float[Array, "b d"], wn: Float[Array, " b"]):
        joint, _ = self._joint_log_prob_rows(x)
        return wn @ jax.nn.logsumexp(joint, axis=1)

    def _chunked(self, x: Any) -> bool:
        """Whether the E-step of `x` runs over row blocks (static). `QuadraticRows` (the
        cached features inside `fit`) never do."""
        if isinstance(x, QuadraticRows):
            return False
        return self.chunk_size is not None and self.chunk_size < x.shape[0]

    def em_data(self, x: Float[Array, "n d"], weights: Float[Array, " n"]) -> Any:
        r"""Inside `fit`: the rows' quadratic features, built once (`QuadraticRows`), for
        `"full"` Gaussian components with `quadratic_features` whose two feature copies
        take at most `feature_cache_bytes`; otherwise `x`. The cached path does per
        iteration only the two products of the E-step, where the per-block path also
        rebuilds the $n\times T$ features (about 1.6-2x the time at n = 65,536, d = 32,
        K = 16)."""
        comps = self.components
        if not (isinstance(comps, GaussianComponents) and comps.expands_quadratic):
            return x
        n, d = x.shape
        n_bytes = 2 * n * (d * (d + 1) // 2 + d) * x.dtype.itemsize
        if n_bytes > self.feature_cache_bytes:
            return x
        return comps.quadratic_rows(x, weights)

    def _over_blocks(self, fn, x: Float[Array, "n d"], wn: Float[Array, " n"]):
        r"""`fn(x, wn)` (a pytree of sums over rows) over row blocks of `chunk_size` rows, as
        one `lax.scan` (zero-padded; padded rows have weight 0), or on all rows at once.

        Block $j$ holds the rows $j, j + m, j + 2m, \dots$ ($m$ blocks), not a contiguous
        run: with `x` sharded by rows (`jax.sharding`) every block then has rows on every
        device, each device works on its own rows at every step and only the sums are
        exchanged; contiguous blocks made XLA gather all of `x` onto every device."""
        if not self._chunked(x):
            return fn(x, wn)
        n = x.shape[0]
        B = self.chunk_size
        n_blocks = -(-n // B)
        pad = n_blocks * B - n
        xp = jnp.concatenate([x, jnp.zeros((pad, x.shape[1]), x.dtype)])
        wp = jnp.concatenate([wn, jnp.zeros((pad,), wn.dtype)])
        xb = jnp.swapaxes(xp.reshape(B, n_blocks, -1), 0, 1)
        wb = wp.reshape(B, n_blocks).T
        shapes = jax.eval_shape(fn, xb[0], wb[0])
        zeros = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)

        def body(acc, block):
            return jax.tree.map(jnp.add, acc, fn(*block)), None

        return jax.lax.scan(body, zeros, (xb, wb))[0]

    def e_step_with_log_likelihood(
        self, x: Float[Array, "n d"], weights: Float[Array, " n"]
    ) -> tuple[MixtureStats, Float[Array, ""]]:
        total = jnp.sum(weights)
        mass, stats, ll = self._over_blocks(self._e_block, x, weights / total)
        if self._chunked(x):
            # the centre of the statistics is a model quantity (the same in every block),
            # not a sum
            stats = eqx.tree_at(lambda s: s.center, stats, self.components.stats_center())
        return MixtureStats(mass=mass, components=stats, total_weight=total), ll

    def e_step(self, x: Float[Array, "n d"], weights: Float[Array, " n"]) -> MixtureStats:
        return self.e_step_with_log_likelihood(x, weights)[0]

    def m_step(self, stats: MixtureStats) -> Self:
        K = self.n_components
        alpha = self.weight_concentration
        if alpha == 1.0:
            weights = stats.mass / jnp.sum(stats.mass)
        else:
            n = stats.total_weight
            weights = (n * stats.mass + (alpha - 1.0)) / (
                n * jnp.sum(stats.mass) + K * (alpha - 1.0)
            )
        components = self.components.m_step(stats.components, stats.mass, stats.total_weight)
        return eqx.tree_at(lambda m: (m.weights, m.components), self, (weights, components))

    def log_likelihood(
        self, x: Float[Array, "n d"], weights: Float[Array, " n"]
    ) -> Float[Array, ""]:
        return self._over_blocks(self._ll_block, x, weights / jnp.sum(weights))

    @classmethod
    def initialize(
        cls, x: Array, weights: Float[Array, " n"], *, key: PRNGKeyArray | None = None
    ) -> Self:
        """Not available: the number of components is needed. Use `normix.fit_mixture`."""
        raise TypeError(
            "FiniteMixture cannot be initialised from its class alone (K and the component "
            "family are needed): use `normix.fit_mixture(X, n_components, ...)`, or pass an "
            "initial FiniteMixture to `normix.fit`."
        )
