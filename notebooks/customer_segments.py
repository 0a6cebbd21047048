# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Customer segments with finite mixtures
#
# The classic mixture-model tutorial: a shop records how much each customer spent last
# year, and suspects there are a few kinds of customer ("segments") with different
# typical spending. A K-component mixture
#
# $$p(x) = \sum_{k=1}^K \pi_k\, p_k(x)$$
#
# models the spending of a random customer: with probability $\pi_k$ the customer belongs
# to segment $k$, whose spending has density $p_k$. Fitting it by EM gives the segments'
# sizes and profiles, the number of segments is chosen by BIC, and a new customer is
# classified by the posterior probability of each segment,
# $P(k \mid x) = \pi_k p_k(x) / p(x)$.
#
# Part 1 uses Gaussian segments, as the tutorial does. Part 2 repeats the analysis on
# spending that is skewed and heavy-tailed within each segment (as real spending is),
# where Gaussian segments go wrong and normal-inverse Gaussian (NIG) segments do not.

# %%
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import normix

jax.config.update("jax_enable_x64", True)
t_start = time.perf_counter()
key = jax.random.key(0)

# %% [markdown]
# ## Part 1: Gaussian segments
#
# Synthetic annual spending (in euros) of 1,500 customers from three segments.

# %%
rng = np.random.default_rng(42)
segments = {  # name: (share, mean, standard deviation)
    "occasional": (0.50, 250.0, 60.0),
    "regular": (0.35, 700.0, 120.0),
    "premium": (0.15, 1600.0, 250.0),
}
n = 1500
names = list(segments)
shares = np.array([segments[s][0] for s in names])
true_segment = rng.choice(len(names), size=n, p=shares)
spend = np.array([rng.normal(segments[names[k]][1], segments[names[k]][2]) for k in true_segment])
X = spend[:, None]  # (n, 1): one feature per customer
print(f"{n} customers, spending from {spend.min():.0f} to {spend.max():.0f} euros")

# %% [markdown]
# ### Choosing the number of segments
#
# Fit mixtures with K = 1, ..., 5 (four k-means++ starts each) and rank them by
# BIC $= -2\ell + k\log n$ (lower is better): extra segments must improve the
# log-likelihood $\ell$ by more than they cost in parameters $k$.

# %%
selection = normix.select_mixture(X, n_components=range(1, 6), criterion="bic", key=key, n_init=4)
print(selection.table())
gmm = selection.best
print(f"\nBIC chooses K = {gmm.n_components}")

# %% [markdown]
# ### Characterising the segments


# %%
def describe(model, title):
    order = np.argsort(np.asarray(model.means[:, 0]))
    print(title)
    print(f"{'segment':>8}{'share':>8}{'mean spend':>12}{'std':>8}")
    for rank, k in enumerate(order):
        sd = float(jnp.sqrt(model.covariances[k, 0, 0]))
        print(
            f"{rank:>8}{float(model.weights[k]):>8.2f}{float(model.means[k, 0]):>12.0f}{sd:>8.0f}"
        )
    return order


order = describe(gmm, "Gaussian segments (sorted by mean spending):")
print("truth:", {s: segments[s] for s in names})

# %% [markdown]
# ### Classifying new customers
#
# `predict_proba` gives each new customer's probability of belonging to each segment;
# `predict` the most probable one.

# %%
new_customers = np.array([[120.0], [480.0], [1000.0], [1250.0], [3000.0]])
proba = np.asarray(gmm.predict_proba(new_customers))[:, order]
print(f"{'spend':>8}" + "".join(f"{'P(seg ' + str(r) + ')':>11}" for r in range(len(order))))
for x, p in zip(new_customers[:, 0], proba, strict=True):
    print(f"{x:>8.0f}" + "".join(f"{v:>11.3f}" for v in p))

# %% [markdown]
# ## Part 2: skewed, heavy-tailed segments
#
# Within a segment, spending is rarely symmetric: most customers spend a little above the
# segment's floor and a few spend much more. Here each segment's spending follows a
# right-skewed NIG law. Gaussian segments have to use several components to cover one
# skewed segment, so BIC over-counts segments; NIG segments describe each with one.

# %%
# segment: (share, mu, gamma, sigma^2, lambda) of X = mu + gamma*Y + sqrt(sigma^2*Y)*Z with
# Y ~ inverse Gaussian(mean 1, shape lambda), Z ~ N(0, 1): a NIG law, skewed right (gamma > 0)
nig_segments = [
    (0.50, 150.0, 80.0, 900.0, 1.0),
    (0.35, 550.0, 120.0, 3600.0, 1.0),
    (0.15, 1300.0, 250.0, 16900.0, 1.0),
]
labels = rng.choice(3, size=n, p=[seg[0] for seg in nig_segments])
_, mu, gam, s2, lam = (np.array([seg[i] for seg in nig_segments])[labels] for i in range(5))
y = rng.wald(1.0, lam)
Xs = (mu + gam * y + np.sqrt(s2 * y) * rng.normal(size=n))[:, None]
print(f"skewed spending: median {np.median(Xs):.0f}, max {np.max(Xs):.0f}")

# %%
gauss_sel = normix.select_mixture(Xs, n_components=range(1, 6), key=key, n_init=4)
nig_sel = normix.select_mixture(
    Xs,
    n_components=(2, 3, 4),
    component=normix.NormalInverseGaussian,
    key=key,
    n_init=1,  # NIG fits start from a short Gaussian-mixture EM: one start suffices here
    max_steps=150,
    tol=1e-5,
)
print("Gaussian segments:\n" + gauss_sel.table())
print("\nNIG segments:\n" + nig_sel.table())
print(
    f"\nBIC: Gaussian mixture chooses K = {gauss_sel.best.n_components}, "
    f"NIG mixture chooses K = {nig_sel.best.n_components} (truth: 3); best Gaussian BIC "
    f"{gauss_sel.best_candidate.bic:.1f} vs best NIG BIC {nig_sel.best_candidate.bic:.1f}"
)

# %% [markdown]
# The NIG segments recover the true segments; we check with the adjusted Rand index
# (1 = the same partition as the true segments).


# %%
def adjusted_rand(a, b):
    a, b = np.asarray(a), np.asarray(b)
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)

    def comb2(v):
        return (v * (v - 1) / 2).sum()

    index = comb2(table)
    expected = comb2(table.sum(1)) * comb2(table.sum(0)) / comb2(np.array([len(a)]))
    maximum = (comb2(table.sum(1)) + comb2(table.sum(0))) / 2
    return (index - expected) / (maximum - expected)


nig = nig_sel.best
gauss3 = normix.fit_mixture(Xs, 3, key=key, n_init=4).model
# membership probabilities of the sample and of the new customers in one compiled call
# (the NIG density has many small operations: one jit beats running them one by one)
proba_all = np.asarray(eqx.filter_jit(type(nig).predict_proba)(nig, np.vstack([Xs, new_customers])))
nig_labels = proba_all[:n].argmax(axis=1)
print(f"ARI, NIG mixture (K={nig.n_components}): {adjusted_rand(labels, nig_labels):.3f}")
print(f"ARI, Gaussian mixture with K=3:          {adjusted_rand(labels, gauss3.predict(Xs)):.3f}")
order_nig = describe(nig, "\nNIG segments (mean, std of each segment's spending):")

# %%
proba = proba_all[n:][:, order_nig]
print("membership probabilities under the NIG segments:")
print(f"{'spend':>8}" + "".join(f"{'P(seg ' + str(r) + ')':>11}" for r in range(len(order_nig))))
for x, p in zip(new_customers[:, 0], proba, strict=True):
    print(f"{x:>8.0f}" + "".join(f"{v:>11.3f}" for v in p))
print(f"\nnotebook ran in {time.perf_counter() - t_start:.1f} s")
