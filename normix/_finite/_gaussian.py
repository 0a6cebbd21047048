# ruff: noqa: F722  (jaxtyping shape strings)
r"""Gaussian mixture components with the four covariance structures of scikit-learn.

Component $k$ is $N(\mu_k, \Sigma_k)$, stored, as in `sklearn.mixture.GaussianMixture`, by
its mean and a Cholesky factor $P_k$ of the precision, $\Sigma_k^{-1} = P_k P_k^\top$:

| `covariance_type` | $\Sigma_k$ | `precisions_cholesky` shape | free covariance parameters |
|---|---|---|---|
| `"full"` | any SPD matrix per component | `(K, d, d)` | $K d(d+1)/2$ |
| `"tied"` | one SPD matrix shared by all | `(d, d)` | $d(d+1)/2$ |
| `"diag"` | diagonal per component | `(K, d)` | $K d$ |
| `"spherical"` | $\sigma_k^2 I$ per component | `(K,)` | $K$ |

**Log-density.** With $y_{ik} = P_k^\top (x_i - \mu_k)$,
$\log p_k(x_i) = -\tfrac12\big(d\log 2\pi + \lVert y_{ik}\rVert^2\big) + \log|P_k|$. For
`"full"` all $K$ whitenings are one matrix product $X\,[P_1 \cdots P_K]$ ($n\times d$ by
$d\times Kd$).

**M-step** (weights $w_{ik}$ summing to one, $N_k = \sum_i w_{ik}$):

$$\mu_k = \frac{1}{N_k}\sum_i w_{ik} x_i,\qquad
  \hat\Sigma_k = \frac{1}{N_k}\sum_i w_{ik}(x_i-\mu_k)(x_i-\mu_k)^\top,$$

`"tied"`: $\hat\Sigma = \sum_k N_k \hat\Sigma_k$; `"diag"`: the diagonal of $\hat\Sigma_k$;
`"spherical"`: its mean diagonal. Then, optionally, the conjugate (inverse-Wishart-type)
MAP shrinkage towards a diagonal prior scale $\Psi$ with strength $\nu$ (pseudo-observations),
$\Sigma_k = (N_k^{\text{obs}}\hat\Sigma_k + \nu\Psi)/(N_k^{\text{obs}} + \nu)$, and finally
scikit-learn's `reg_covar` added to the diagonal. With $\nu = 0$ this is exactly
scikit-learn's M-step.

**Centring.** The E-step sums $\sum_i w_{ik}(x_i - m_k)$ and
$\sum_i w_{ik}(x_i - m_k)(x_i - m_k)^\top$ around each component's *current* mean $m_k$,
and the M-step subtracts $\delta_k\delta_k^\top$, $\delta_k = \mu_k - m_k$ (a one-pass
form that is exact near convergence, where $\delta_k \to 0$). Sums around one common
point lose $\epsilon\,(|m_k - c|/\sigma_k)^2$ relative in $\hat\Sigma_k$: in float32, two
unit-variance clusters 1000 apart came out with variances 1.38 and 1.02 (found 2026-12-07;
scikit-learn centres at $\mu_k$ too). The quadratic-feature path (float64) shares one
centre across components by construction and carries that error, about $10^{-10}$
relative for clusters 100 standard deviations from the centre.
"""

import math
from typing import Any, Self

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.random as jr
import jax.scipy.linalg as jsl
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from .._errors import error_if
from ._components import AbstractComponents, empty_components

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_LOG_2PI = math.log(2 * math.pi)


def check_covariance_type(covariance_type: str, owner: str) -> str:
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"{owner}: `covariance` must be one of {COVARIANCE_TYPES}, got {covariance_type!r}."
        )
    return covariance_type


def _precision_cholesky_from_cov(cov: Float[Array, "d d"]) -> Float[Array, "d d"]:
    r"""Upper-triangular $P = L^{-\top}$ with $\Sigma = L L^\top$, so $P P^\top = \Sigma^{-1}$."""
    L = jnp.linalg.cholesky(cov)
    eye = jnp.eye(cov.shape[-1], dtype=cov.dtype)
    return jsl.solve_triangular(L, eye, lower=True).T


def _inverse(P: Float[Array, "d d"]) -> Float[Array, "d d"]:
    """Inverse of a triangular (upper or lower) precision factor."""
    return jnp.linalg.inv(P)


# rows per block when `quadratic_rows` builds the feature matrices (fastest of 256 / 512 /
# 2048 at n = 65,536, d = 32)
_BUILD_BLOCK = 256


def _triu(d: int) -> tuple[np.ndarray, np.ndarray]:
    r"""Row-major indices $(a, b)$, $a \le b$, of the upper triangle (static)."""
    return np.triu_indices(d)


def _row_features(xc: Float[Array, "n d"]) -> Float[Array, "n F"]:
    r"""$f_i = (z_i, x_i - c)$: the products $(x_a x_b)_{a \le b}$ of the centred row in
    `_triu` order (static slices, no gather), then the row itself."""
    d = xc.shape[1]
    return jnp.concatenate([xc[:, i : i + 1] * xc[:, i:] for i in range(d)] + [xc], axis=1)


class QuadraticRows(eqx.Module):
    r"""The rows as the quadratic-feature E-step reads them, built once per fit
    (`GaussianComponents.quadratic_rows`): the features $f_i = (z_i, x_i - c)$ of every row
    (`f`, shape `(n, T + d)`), the same matrix transposed (`fT`), and the centre $c$.

    Both layouts are kept because XLA:CPU runs each of the E-step's two products fast only
    with the long row axis outermost in one operand and innermost in the other:
    $fC$ reads `f`, and the moments $f^\top W$ read `fT` (the same product on `f`
    transposes the whole matrix first, at twice the time)."""

    center: Float[Array, " d"]
    f: Float[Array, "n F"]
    fT: Float[Array, "F n"]


class GaussianStats(eqx.Module):
    r"""Responsibility-weighted statistics, centred at `center` $c_k$ (the current means,
    shape `(K, d)`; one point `(d,)` for quadratic features): `sx[k]`
    $=\sum_i w_{ik}(x_i - c_k)$ and `sxx` the matching second moments (`(K, d, d)` full,
    `(d, d)` tied (summed over components), `(K, d)` diag/spherical, `(K, T)` packed upper
    triangles for quadratic features)."""

    center: Array
    sx: Float[Array, "K d"]
    sxx: Array


class GaussianComponents(AbstractComponents):
    r"""K Gaussian components $N(\mu_k, \Sigma_k)$ with a scikit-learn covariance type.

    **Arguments:**

    - `means`: $\mu_k$, shape `(K, d)`.
    - `precisions_cholesky`: $P_k$ with $P_k P_k^\top = \Sigma_k^{-1}$, in scikit-learn's
      shape for `covariance_type` (see the module table).
    - `covariance_type`: `"full"`, `"tied"`, `"diag"` or `"spherical"`.
    - `reg_covar`: added to the diagonal of every covariance in the M-step (default
      `1e-6`, scikit-learn's), so a collapsing component stays positive definite.
    - `prior_strength`, `prior_scale`: $\nu \ge 0$ and the diagonal of $\Psi$ (shape
      `(d,)`) of the conjugate covariance prior (MAP EM); $\nu = 0$ (default) is the MLE.
    - `quadratic_features`: `"full"` type only. Compute the Mahalanobis distances and the
      scatter matrices through the features $f_i = (z_i, x_i - c)$ of the centred rows,
      $z_i = (x_{ia}x_{ib})_{a\le b}$ ($T = d(d+1)/2$ products):
      $q_{ik} = z_i^\top \ell_k - 2 (x_i - c)^\top\Lambda_k m_k + m_k^\top\Lambda_k m_k$.
      The E-step is then two matmuls with $T + d$ columns instead of $Kd$: $f\,C$ (all
      $n\times K$ log-densities) and $W^\top f$ (the packed second and first moments of
      all components at once, summed over row blocks and unpacked once in the M-step),
      half the flops of whitening (no triangular zeros multiplied), but $O(nT)$ memory and
      a quadratic expansion, so meant for the chunked E-step
      (`FiniteMixture(chunk_size=...)`) in float64. The expansion subtracts terms of size
      $|x - c|^2/\sigma^2$ to get $q_{ik}$: in float32 that cancellation costs about
      $10^{-4}$ relative in the log-likelihood of well-separated clusters, against $10^{-8}$
      for whitening. Default `False`.

    Build from covariances with `from_covariances`, from precisions with
    `from_precisions`.
    """

    means: Float[Array, "K d"]
    precisions_cholesky: Array
    covariance_type: str = eqx.field(static=True)
    reg_covar: float = eqx.field(static=True)
    prior_strength: float = eqx.field(static=True)
    prior_scale: Float[Array, " d"] | None
    quadratic_features: bool = eqx.field(static=True)

    def __init__(
        self,
        means: ArrayLike,
        precisions_cholesky: ArrayLike,
        covariance_type: str = "full",
        *,
        reg_covar: float = 1e-6,
        prior_strength: float = 0.0,
        prior_scale: ArrayLike | None = None,
        quadratic_features: bool = False,
    ):
        check_covariance_type(covariance_type, "GaussianComponents")
        means = jnp.asarray(means)
        means = means.astype(jnp.result_type(means, float))
        if means.ndim != 2:
            raise ValueError(
                f"GaussianComponents: `means` must have shape (K, d), got {means.shape}."
            )
        K, d = means.shape
        prec = jnp.asarray(precisions_cholesky, dtype=means.dtype)
        expected = {"full": (K, d, d), "tied": (d, d), "diag": (K, d), "spherical": (K,)}
        if prec.shape != expected[covariance_type]:
            raise ValueError(
                f"GaussianComponents: for covariance_type={covariance_type!r} "
                f"`precisions_cholesky` must have shape {expected[covariance_type]}, "
                f"got {prec.shape}."
            )
        if not (isinstance(reg_covar, (int, float)) and reg_covar >= 0):
            raise ValueError(
                f"GaussianComponents: `reg_covar` must be a float >= 0, got {reg_covar!r}."
            )
        if not (isinstance(prior_strength, (int, float)) and prior_strength >= 0):
            raise ValueError(
                "GaussianComponents: `prior_strength` must be a float >= 0, "
                f"got {prior_strength!r}."
            )
        if prior_strength > 0 and prior_scale is None:
            raise ValueError(
                "GaussianComponents: `prior_strength > 0` needs `prior_scale` (shape (d,))."
            )
        if prior_scale is not None:
            prior_scale = jnp.asarray(prior_scale, dtype=means.dtype)
            if prior_scale.shape != (d,):
                raise ValueError(
                    f"GaussianComponents: `prior_scale` must have shape ({d},), "
                    f"got {prior_scale.shape}."
                )
        self.means = means
        self.precisions_cholesky = prec
        self.covariance_type = covariance_type
        self.reg_covar = float(reg_covar)
        self.prior_strength = float(prior_strength)
        self.prior_scale = prior_scale
        self.quadratic_features = bool(quadratic_features)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_covariances(
        cls, means: ArrayLike, covariances: ArrayLike, covariance_type: str = "full", **kwargs
    ) -> Self:
        """Components from covariances in scikit-learn's shapes (`covariances_`)."""
        check_covariance_type(covariance_type, "GaussianComponents.from_covariances")
        means = jnp.asarray(means)
        cov = jnp.asarray(covariances, dtype=jnp.result_type(means, float))
        if covariance_type == "full":
            prec = jax.vmap(_precision_cholesky_from_cov)(cov)
        elif covariance_type == "tied":
            prec = _precision_cholesky_from_cov(cov)
        else:
            prec = 1.0 / jnp.sqrt(cov)
        prec = error_if(
            prec,
            ~jnp.all(jnp.isfinite(prec)),
            "GaussianComponents.from_covariances: a covariance is not positive definite.",
        )
        return cls(means, prec, covariance_type, **kwargs)

    @classmethod
    def from_precisions(
        cls, means: ArrayLike, precisions: ArrayLike, covariance_type: str = "full", **kwargs
    ) -> Self:
        """Components from precisions in scikit-learn's shapes (`precisions_init`)."""
        check_covariance_type(covariance_type, "GaussianComponents.from_precisions")
        means = jnp.asarray(means)
        prec = jnp.asarray(precisions, dtype=jnp.result_type(means, float))
        chol = jnp.linalg.cholesky(prec) if covariance_type in ("full", "tied") else jnp.sqrt(prec)
        chol = error_if(
            chol,
            ~jnp.all(jnp.isfinite(chol)),
            "GaussianComponents.from_precisions: a precision is not positive definite.",
        )
        return cls(means, chol, covariance_type, **kwargs)

    # ------------------------------------------------------------------ accessors
    @property
    def n_components(self) -> int:
        return self.means.shape[-2]

    @property
    def dim(self) -> int:
        return self.means.shape[-1]

    @property
    def covariances(self) -> Array:
        """Covariances in scikit-learn's shape for the covariance type (`covariances_`)."""
        P = self.precisions_cholesky
        if self.covariance_type == "full":
            inv = jax.vmap(_inverse)(P)
            return jnp.einsum("kji,kjl->kil", inv, inv)
        if self.covariance_type == "tied":
            inv = _inverse(P)
            return inv.T @ inv
        return 1.0 / (P * P)

    @property
    def precisions(self) -> Array:
        """Precisions in scikit-learn's shape (`precisions_`)."""
        P = self.precisions_cholesky
        if self.covariance_type == "full":
            return jnp.einsum("kij,klj->kil", P, P)
        if self.covariance_type == "tied":
            return P @ P.T
        return P * P

    def component_means(self) -> Float[Array, "K d"]:
        return self.means

    @property
    def expands_quadratic(self) -> bool:
        """Whether the E-step uses quadratic features (`"full"` with `quadratic_features`;
        the flag is ignored by the other types). Static."""
        return self.covariance_type == "full" and self.quadratic_features

    def center(self) -> Float[Array, " d"]:
        r"""The one point $c$ the quadratic-feature E-step expands around: the mean of the
        $\mu_k$."""
        return jnp.mean(self.means, axis=0)

    def component_covariances(self) -> Float[Array, "K d d"]:
        cov = self.covariances
        K, d = self.n_components, self.dim
        if self.covariance_type == "full":
            return cov
        if self.covariance_type == "tied":
            return jnp.broadcast_to(cov, (K, d, d))
        if self.covariance_type == "diag":
            return jax.vmap(jnp.diag)(cov)
        return cov[:, None, None] * jnp.eye(d, dtype=cov.dtype)[None]

    def n_parameters(self) -> int:
        """Means, covariances (scikit-learn's count for the type); weights are counted by
        the mixture."""
        K, d = self.n_components, self.dim
        cov = {
            "full": K * d * (d + 1) // 2,
            "tied": d * (d + 1) // 2,
            "diag": K * d,
            "spherical": K,
        }[self.covariance_type]
        return K * d + cov

    # ------------------------------------------------------------------ E-step
    def _quadratic_coefficients(
        self, mc: Float[Array, "K d"]
    ) -> tuple[Float[Array, "F K"], Float[Array, " K"]]:
        r"""`"full"` type: $(C, c_0)$ with $\log p_k(x_i) = [z_i, x_i - c]\,C_{\cdot k} + c_{0k}$,
        $z_i = ((x_{ia} - c_a)(x_{ib} - c_b))_{a\le b}$. With $\Lambda_k = P_k P_k^\top$ and
        $m_k = \mu_k - c$: the $z$ rows of $C$ are $-\tfrac12(2 - \delta_{ab})\Lambda_{k,ab}$,
        the linear rows $\Lambda_k m_k$, and
        $c_{0k} = -\tfrac12 m_k^\top\Lambda_k m_k + \log|P_k| - \tfrac d2\log 2\pi$."""
        d = self.dim
        a, b = _triu(d)
        P = self.precisions_cholesky
        prec = jnp.einsum("kij,klj->kil", P, P)
        coef = jnp.where(a == b, -0.5, -1.0).astype(prec.dtype)
        lin = jnp.einsum("kab,kb->ka", prec, mc)
        C = jnp.concatenate([prec[:, a, b] * coef[None, :], lin], axis=1).T
        logdet = jnp.sum(jnp.log(jnp.diagonal(P, axis1=1, axis2=2)), axis=-1)
        c0 = -0.5 * jnp.sum(lin * mc, axis=1) + logdet - 0.5 * d * _LOG_2PI
        return C, c0

    def quadratic_rows(self, x: Float[Array, "n d"], weights: Float[Array, " n"]) -> QuadraticRows:
        r"""`QuadraticRows` of `x`, centred at the weighted data mean (any fixed centre
        near the clusters serves; this one does not change during a fit)."""
        center = (weights @ x) / jnp.sum(weights)
        n, d = x.shape
        F = d * (d + 1) // 2 + d
        B = min(n, _BUILD_BLOCK)

        # Row blocks: each block's features are built and transposed in cache and written
        # into both outputs (a whole-matrix transpose costs as much as building both). The
        # last block starts at n - B and rewrites a few rows with the same values.
        def block(out, i):
            f, fT = out
            start = jnp.minimum(i * B, n - B)
            xc = jax.lax.dynamic_slice_in_dim(x, start, B, 0) - center[None, :]
            fb = _row_features(xc)
            f = jax.lax.dynamic_update_slice_in_dim(f, fb, start, 0)
            fT = jax.lax.dynamic_update_slice_in_dim(fT, fb.T, start, 1)
            return (f, fT), None

        empty = (jnp.empty((n, F), x.dtype), jnp.empty((F, n), x.dtype))
        f, fT = jax.lax.scan(block, empty, jnp.arange(-(-n // B)))[0]
        return QuadraticRows(center=center, f=f, fT=fT)

    def log_prob_rows(
        self, x: Float[Array, "n d"] | QuadraticRows
    ) -> tuple[Float[Array, "n K"], Any]:
        if isinstance(x, QuadraticRows):
            C, c0 = self._quadratic_coefficients(self.means - x.center[None, :])
            return x.f @ jax.lax.optimization_barrier(C) + c0[None, :], x
        n, d = x.shape
        K = self.n_components
        center = self.center()
        xc = x - center[None, :]
        mc = self.means - center[None, :]
        P = self.precisions_cholesky
        ctype = self.covariance_type
        if self.expands_quadratic:
            f = _row_features(xc)
            C, c0 = self._quadratic_coefficients(mc)
            return f @ C + c0[None, :], f
        if ctype == "full":
            W = jnp.transpose(P, (1, 0, 2)).reshape(d, K * d)
            m = jnp.einsum("ki,kij->kj", mc, P)
            y = (xc @ W).reshape(n, K, d) - m[None]
            q = jnp.sum(y * y, axis=-1)
            logdet = jnp.sum(jnp.log(jnp.diagonal(P, axis1=1, axis2=2)), axis=-1)
        elif ctype == "tied":
            y = xc @ P
            m = mc @ P
            diff = y[:, None, :] - m[None]
            q = jnp.sum(diff * diff, axis=-1)
            logdet = jnp.broadcast_to(jnp.sum(jnp.log(jnp.diagonal(P))), (K,))
        elif ctype == "diag":
            # direct differences (one fused reduction), not the expansion
            # |x|^2 - 2 x.m + |m|^2, which cancels for clusters far from the centre
            diff = (xc[:, None, :] - mc[None, :, :]) * P[None, :, :]
            q = jnp.sum(diff * diff, axis=-1)
            logdet = jnp.sum(jnp.log(P), axis=1)
        else:
            diff = xc[:, None, :] - mc[None, :, :]
            q = jnp.sum(diff * diff, axis=-1) * (P * P)[None, :]
            logdet = d * jnp.log(P)
        return -0.5 * (d * _LOG_2PI + q) + logdet[None, :], xc

    def e_step(
        self,
        x: Float[Array, "n d"],
        resp_weights: Float[Array, "n K"],
        mass: Float[Array, " K"],
        aux: Any,
    ) -> GaussianStats:
        if isinstance(aux, QuadraticRows):
            T = self.dim * (self.dim + 1) // 2
            # the barrier keeps XLA from folding the transpose into the product, which
            # would make it contract over the long axis of both operands (2x slower)
            v = jax.lax.optimization_barrier(aux.fT @ resp_weights).T
            return GaussianStats(center=aux.center, sx=v[:, T:], sxx=v[:, :T])
        n, d = x.shape
        ctype = self.covariance_type
        if self.expands_quadratic:
            # one matmul gives the packed second moments and the first moments; they are
            # unpacked to (K, d, d) in the M-step (after any sum over row blocks)
            v = resp_weights.T @ aux
            T = d * (d + 1) // 2
            return GaussianStats(center=self.center(), sx=v[:, T:], sxx=v[:, :T])
        # centred at each component's current mean (module docstring, "Centring")
        centers = self.means
        xk = x[None, :, :] - centers[:, None, :]  # (K, n, d)
        a = resp_weights.T[:, :, None] * xk
        sx = jnp.sum(a, axis=1)
        if ctype == "full":
            sxx = jnp.einsum("kni,knj->kij", a, xk)
        elif ctype == "tied":
            sxx = jnp.einsum("kni,knj->ij", a, xk)
        else:
            sxx = jnp.sum(a * xk, axis=1)
        return GaussianStats(center=centers, sx=sx, sxx=sxx)

    def stats_center(self) -> Array:
        """The `center` of this model's E-step statistics (the same in every row block)."""
        return self.center() if self.expands_quadratic else self.means

    # ------------------------------------------------------------------ M-step
    def _shrink(self, cov: Array, n_obs: Array) -> Array:
        r"""Conjugate MAP shrinkage $(N\hat\Sigma + \nu\Psi)/(N + \nu)$ (none if $\nu=0$)."""
        if self.prior_strength == 0.0:
            return cov
        nu = self.prior_strength
        psi = self.prior_scale
        ctype = self.covariance_type
        if ctype in ("full", "tied"):
            psi_mat = jnp.diag(psi)
            if ctype == "full":
                return (n_obs[:, None, None] * cov + nu * psi_mat[None]) / (
                    n_obs[:, None, None] + nu
                )
            return (n_obs * cov + nu * psi_mat) / (n_obs + nu)
        if ctype == "diag":
            return (n_obs[:, None] * cov + nu * psi[None, :]) / (n_obs[:, None] + nu)
        return (n_obs * cov + nu * jnp.mean(psi)) / (n_obs + nu)

    def m_step(
        self, stats: GaussianStats, mass: Float[Array, " K"], total_weight: Float[Array, ""]
    ) -> Self:
        empty = empty_components(mass)
        safe = jnp.where(empty, 1.0, mass)
        delta = stats.sx / safe[:, None]
        means = jnp.broadcast_to(stats.center, delta.shape) + delta
        d = self.dim
        eye = jnp.eye(d, dtype=means.dtype)
        ctype = self.covariance_type
        reg = self.reg_covar
        n_obs = mass * total_weight
        if ctype == "full":
            sxx = stats.sxx
            if sxx.ndim == 2:  # packed upper triangle (quadratic features)
                a, b = _triu(d)
                K = self.n_components
                sxx = jnp.zeros((K, d, d), sxx.dtype).at[:, a, b].set(sxx).at[:, b, a].set(sxx)
            cov = sxx / safe[:, None, None] - delta[:, :, None] * delta[:, None, :]
            cov = 0.5 * (cov + jnp.transpose(cov, (0, 2, 1)))
            cov = self._shrink(cov, n_obs) + reg * eye[None]
            prec = jax.vmap(_precision_cholesky_from_cov)(cov)
            prec = jnp.where(empty[:, None, None], self.precisions_cholesky, prec)
        elif ctype == "tied":
            cov = (stats.sxx - (delta * mass[:, None]).T @ delta) / jnp.sum(mass)
            cov = 0.5 * (cov + cov.T)
            cov = self._shrink(cov, jnp.sum(n_obs)) + reg * eye
            prec = _precision_cholesky_from_cov(cov)
        elif ctype == "diag":
            var = stats.sxx / safe[:, None] - delta * delta
            var = self._shrink(var, n_obs) + reg
            prec = jnp.where(empty[:, None], self.precisions_cholesky, 1.0 / jnp.sqrt(var))
        else:
            var = jnp.mean(stats.sxx / safe[:, None] - delta * delta, axis=1)
            var = self._shrink(var, n_obs) + reg
            prec = jnp.where(empty, self.precisions_cholesky, 1.0 / jnp.sqrt(var))
        means = jnp.where(empty[:, None], self.means, means)
        return eqx.tree_at(lambda c: (c.means, c.precisions_cholesky), self, (means, prec))

    # ------------------------------------------------------------------ sampling
    def sample_each(self, key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "... K d"]:
        r"""$x = \mu_k + P_k^{-\top} z$, $z \sim N(0, I)$, for every component."""
        K, d = self.n_components, self.dim
        z = jr.normal(key, (*shape, K, d), dtype=self.means.dtype)
        P = self.precisions_cholesky
        ctype = self.covariance_type
        if ctype == "full":
            noise = jnp.einsum("...ki,kij->...kj", z, jax.vmap(_inverse)(P))
        elif ctype == "tied":
            noise = z @ _inverse(P)
        elif ctype == "diag":
            noise = z / P
        else:
            noise = z / P[:, None]
        return self.means.reshape((1,) * len(shape) + (K, d)) + noise
