# ruff: noqa: F722  (jaxtyping shape strings)
r"""Starting points for mixture EM: k-means++ (in JAX) and random responsibilities.

**k-means++** (Arthur & Vassilvitskii 2007): the first centre is a data point drawn with
probability $\propto w_i$; each further centre is drawn with probability
$\propto w_i D(x_i)^2$, $D$ the distance to the nearest centre chosen so far. A few weighted
Lloyd iterations follow (an emptied cluster keeps its centre). The start is the M-step of
the hard assignment to the nearest centre, as scikit-learn's `init_params="kmeans"`.

**Random**: responsibilities $r_{ik} = u_{ik}/\sum_j u_{ij}$, $u_{ik}\sim U(0,1)$
(scikit-learn's `init_params="random"`).

Everything is a pure function of `(key, x, w)`, so `n_init` starts are one `vmap`.
"""

import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, Float, Int, PRNGKeyArray


def _sq_dist(x: Float[Array, "n d"], centers: Float[Array, "K d"]) -> Float[Array, "n K"]:
    d2 = (
        jnp.sum(x * x, axis=1)[:, None]
        - 2.0 * (x @ centers.T)
        + jnp.sum(centers * centers, axis=1)[None, :]
    )
    return jnp.maximum(d2, 0.0)


def _draw(key: PRNGKeyArray, p: Float[Array, " n"]) -> Int[Array, ""]:
    """An index drawn with probability proportional to `p` (uniform if `p` is all zero)."""
    p = jnp.where(jnp.sum(p) > 0, p, jnp.ones_like(p))
    return jr.categorical(key, jnp.log(p))


def _row(x: Float[Array, "n d"], i: Int[Array, ""]) -> Float[Array, " d"]:
    """`x[i]` as a masked sum over the rows: a reduction, so with `x` sharded by rows
    (`jax.sharding`) each device sums its own rows and only `d` numbers are exchanged;
    indexing would gather all of `x` onto every device."""
    return jnp.sum(jnp.where((jnp.arange(x.shape[0]) == i)[:, None], x, 0.0), axis=0)


def kmeans_plus_plus(
    key: PRNGKeyArray,
    x: Float[Array, "n d"],
    weights: Float[Array, " n"],
    n_components: int,
    n_lloyd: int = 10,
) -> tuple[Float[Array, "K d"], Int[Array, " n"]]:
    """k-means++ seeding followed by `n_lloyd` weighted Lloyd steps.

    **Returns:** `(centers, labels)`, the centres and each row's nearest centre.
    """
    n, d = x.shape
    K = n_components
    keys = jr.split(key, K)
    first = _row(x, _draw(keys[0], weights))
    centers = jnp.zeros((K, d), dtype=x.dtype).at[0].set(first)
    dmin = jnp.sum((x - first[None, :]) ** 2, axis=1)

    def seed(j, carry):
        centers, dmin = carry
        c = _row(x, _draw(keys[j], weights * dmin))
        dmin = jnp.minimum(dmin, jnp.sum((x - c[None, :]) ** 2, axis=1))
        return centers.at[j].set(c), dmin

    centers, _ = lax.fori_loop(1, K, seed, (centers, dmin))

    def lloyd(_, centers):
        labels = jnp.argmin(_sq_dist(x, centers), axis=1)
        onehot = jax.nn.one_hot(labels, K, dtype=x.dtype) * weights[:, None]
        counts = jnp.sum(onehot, axis=0)
        sums = onehot.T @ x
        new = sums / jnp.where(counts > 0, counts, 1.0)[:, None]
        return jnp.where((counts > 0)[:, None], new, centers)

    centers = lax.fori_loop(0, n_lloyd, lloyd, centers)
    labels = jnp.argmin(_sq_dist(x, centers), axis=1)
    return centers, labels


def kmeans_responsibilities(
    key: PRNGKeyArray,
    x: Float[Array, "n d"],
    weights: Float[Array, " n"],
    n_components: int,
    n_lloyd: int = 10,
) -> Float[Array, "n K"]:
    """One-hot responsibilities of the k-means++ (+ Lloyd) clustering."""
    _, labels = kmeans_plus_plus(key, x, weights, n_components, n_lloyd)
    return jax.nn.one_hot(labels, n_components, dtype=x.dtype)


def random_responsibilities(
    key: PRNGKeyArray, x: Float[Array, "n d"], n_components: int
) -> Float[Array, "n K"]:
    """Uniform random responsibilities, normalised per row."""
    u = jr.uniform(key, (x.shape[0], n_components), dtype=x.dtype)
    return u / jnp.sum(u, axis=1, keepdims=True)
