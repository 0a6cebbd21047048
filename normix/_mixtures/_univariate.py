r"""Distribution function, quantiles and tail risk of a univariate normal mixture.

For $d = 1$, $X \mid Y \sim N(\mu + \gamma Y, \sigma^2 Y)$, so with $U = \log Y$

$$F(x) = \mathbb{E}\,\Phi\!\left(\frac{x - \mu - \gamma Y}{\sigma\sqrt Y}\right)
       = \int_{-\infty}^{\infty} \Phi(z_x(u))\, e^{\ell(u)}\,du,\qquad
\ell(u) = p u - \tfrac12(a e^{u} + b e^{-u}) - \log Z(p, a, b).$$

The log-$Y$ density $e^{\ell}$ is smooth, unimodal and decays at least exponentially on
both sides, so the trapezoid rule on a uniform grid converges geometrically. The grid spans
$\{u : \ell(u) \ge \ell(u^\ast) - L\}$ with $L = 45$ (mass outside $< 10^{-17}$ relative),
its ends found by Newton's method on the concave $\ell$. Sums are taken in log space
(`log_ndtr`, `logsumexp`) so deep-tail probabilities keep their relative accuracy.

The partial expectation used by expected shortfall follows from
$\mathbb{E}[X\,1\{X \le q\} \mid Y] = m\,\Phi(z) - s\,\varphi(z)$ with $m = \mu + \gamma Y$,
$s = \sigma\sqrt Y$, $z = (q - m)/s$.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import log_ndtr, logsumexp
from jaxtyping import Array, Float

from .._distributions._gig_functions import gig_log_normalizer

_TAIL = 45.0
_NODES = 513
_NEWTON = 40
# cap on the doublings of the quantile bracket (the width doubles at each pass, so real
# searches need a few dozen; the cap only stops a search that cannot bracket)
_MAX_DOUBLINGS = 1100


def _log_y_density_grid(p: Array, a: Array, b: Array) -> tuple[Array, Array]:
    """Nodes $u_k$ and log-weights $\\log(h\\, e^{\\ell(u_k)})$ of the trapezoid rule."""
    dtype = jnp.result_type(p, a, b)
    log_z = gig_log_normalizer(p, a, b)

    def ell(u):
        return p * u - 0.5 * (a * jnp.exp(u) + b * jnp.exp(-u)) - log_z

    def dell(u):
        return p - 0.5 * (a * jnp.exp(u) - b * jnp.exp(-u))

    root = jnp.sqrt(p * p + a * b)
    # mode e^{u*} solves a e^{2u} - 2 p e^u - b = 0; two algebraically equal forms, each
    # free of cancellation on its side of p = 0 (and valid at a = 0 or b = 0).
    safe_a = jnp.where(a > 0, a, 1.0)
    mode_pos = (p + root) / safe_a
    mode_neg = b / jnp.where(root - p > 0, root - p, 1.0)
    u_star = jnp.log(jnp.where(p >= 0, mode_pos, mode_neg))
    ell_star = ell(u_star)
    curv = 0.5 * (a * jnp.exp(u_star) + b * jnp.exp(-u_star))
    step0 = jnp.sqrt(2.0 * _TAIL / jnp.maximum(curv, jnp.finfo(dtype).tiny))
    step0 = jnp.minimum(step0, _TAIL / jnp.maximum(jnp.abs(p), 1e-3))

    def bound(sign):
        def body(_, u):
            g = ell(u) - ell_star + _TAIL
            slope = dell(u)
            slope = jnp.where(sign * slope < 0, slope, -sign * 1.0)
            u_new = u - g / slope
            # stay on this side of the mode
            return jnp.where(sign * (u_new - u_star) > 0, u_new, 0.5 * (u + u_star))

        return jax.lax.fori_loop(0, _NEWTON, body, u_star + sign * step0)

    u_lo, u_hi = bound(-1.0), bound(1.0)
    nodes = jnp.linspace(u_lo, u_hi, _NODES, dtype=dtype)
    h = (u_hi - u_lo) / (_NODES - 1)
    log_w = ell(nodes) + jnp.log(h)
    log_w = log_w.at[0].add(-jnp.log(2.0)).at[-1].add(-jnp.log(2.0))
    return nodes, log_w


def _conditional_z(mu, gamma, sigma, u, x):
    r"""$(x - \mu - \gamma e^u)/(\sigma e^{u/2})$ on the grid (last axis) for every x,
    and the conditional mean and sd on the grid."""
    lead = (1,) * x.ndim + u.shape
    y = jnp.exp(u).reshape(lead)
    s = (sigma * jnp.exp(0.5 * u)).reshape(lead)
    m = mu + gamma * y
    return (x[..., None] - m) / s, m, s


def log_tail(mu, gamma, sigma, p, a, b, x: Float[Array, "..."], upper: Array) -> Array:
    r"""$\log F(x)$, or $\log(1 - F(x))$ where `upper` (broadcast with `x`), elementwise,
    from one grid: $1 - F(x) = \int \Phi(-z_x(u))\,e^{\ell(u)}\,du$ keeps its relative
    accuracy in the right tail."""
    u, log_w = _log_y_density_grid(p, a, b)
    z, _, _ = _conditional_z(mu, gamma, sigma, u, x)
    z = jnp.where(jnp.asarray(upper)[..., None], -z, z)
    return logsumexp(log_w.reshape((1,) * x.ndim + u.shape) + log_ndtr(z), axis=-1)


def log_cdf(mu, gamma, sigma, p, a, b, x: Float[Array, "..."]) -> Array:
    r"""$\log F(x)$ elementwise in `x` (scalar parameters)."""
    return log_tail(mu, gamma, sigma, p, a, b, x, False)


def log_survival(mu, gamma, sigma, p, a, b, x: Float[Array, "..."]) -> Array:
    r"""$\log(1 - F(x))$ elementwise, accurate in the right tail."""
    return log_tail(mu, gamma, sigma, p, a, b, x, True)


def partial_expectation(mu, gamma, sigma, p, a, b, q: Float[Array, "..."]) -> Array:
    r"""$\mathbb{E}[X\,1\{X \le q\}]$ elementwise in `q`."""
    u, log_w = _log_y_density_grid(p, a, b)
    z, m, s = _conditional_z(mu, gamma, sigma, u, q)
    w = jnp.exp(log_w).reshape((1,) * q.ndim + u.shape)
    pdf = jnp.exp(-0.5 * z * z) / jnp.sqrt(2.0 * jnp.pi)
    return jnp.sum(w * (m * jnp.exp(log_ndtr(z)) - s * pdf), axis=-1)


def quantile(tail_fn, pdf_fn, center: Array, scale: Array, q: Array) -> Array:
    r"""Solve $F(x) = q$ for scalar $q \in (0, 1)$: bracket by doubling, then Newton steps
    safeguarded by bisection (fixed iteration counts, fully traceable). Above the median
    the equation solved is $1 - F(x) = 1 - q$ (`tail_fn(x, upper)` is $F(x)$, or
    $1 - F(x)$ where `upper`; $1 - q$ is exact there), so upper quantiles keep their
    accuracy up to $q = 1 - 2^{-53}$.
    $F^{-1}(0) = -\infty$, $F^{-1}(1) = +\infty$; a NaN or any other $q$ gives NaN (the
    caller checks the range), and so does a search that finds no bracket: the bracketing
    loop is bounded (`_MAX_DOUBLINGS`), so no $q$ and no law can keep it running."""
    inside = (q > 0) & (q < 1)
    target = jnp.where(inside, q, 0.5)
    upper = target > 0.5
    tail = jnp.where(upper, 1.0 - target, target)

    def excess(x):
        # increasing in x, zero at the quantile
        f = tail_fn(x, upper)
        return jnp.where(upper, tail - f, f - tail)

    def expand(state):
        lo, hi, width, _, k = state
        g_lo, g_hi = excess(lo), excess(hi)
        lo = jnp.where(g_lo > 0, lo - width, lo)
        hi = jnp.where(g_hi < 0, hi + width, hi)
        return lo, hi, 2.0 * width, (g_lo > 0) | (g_hi < 0), k + 1

    lo, hi, _, unbracketed, _ = jax.lax.while_loop(
        lambda s: s[3] & (s[4] < _MAX_DOUBLINGS),
        expand,
        (center - scale, center + scale, scale, jnp.asarray(True), jnp.asarray(0)),
    )

    def refine(_, state):
        lo, hi, x = state
        g = excess(x)
        lo = jnp.where(g < 0, x, lo)
        hi = jnp.where(g < 0, hi, x)
        newton = x - g / pdf_fn(x)
        in_bracket = (newton > lo) & (newton < hi) & jnp.isfinite(newton)
        return lo, hi, jnp.where(in_bracket, newton, 0.5 * (lo + hi))

    _, _, x = jax.lax.fori_loop(0, 80, refine, (lo, hi, 0.5 * (lo + hi)))
    # no bracket, or a cdf that is not finite (NaN parameters): NaN, never a silent number
    x = jnp.where(unbracketed | ~jnp.isfinite(excess(x)), jnp.nan, x)
    ends = jnp.where(q == 0, -jnp.inf, jnp.where(q == 1, jnp.inf, jnp.nan))
    return jnp.where(inside, x, ends.astype(x.dtype))
