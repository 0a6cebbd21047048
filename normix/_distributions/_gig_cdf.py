r"""The GIG distribution function, by a fixed double-exponential quadrature (pure JAX).

In $u = \log y$ the GIG density becomes $e^{\ell(u)}/Z$ with the smooth, strictly concave

$$\ell(u) = p\,u - \tfrac12\,(a e^{u} + b e^{-u}).$$

For $c = \log y$ we integrate the tail that does *not* contain the mode $u_m$
($e^{u_m} = (p + \sqrt{p^2 + ab})/a$): $F(y) = \int_{-\infty}^{c}$ when $c \le u_m$, and
$1 - F(y) = \int_{c}^{\infty}$ otherwise. Either integrand is monotone, so the
exp-sinh rule

$$\int_0^\infty g(x)\,dx \approx h \sum_k g(x_k)\, x_k\, \tfrac{\pi}{2}\cosh t_k,\qquad
x_k = \sigma\, e^{\frac{\pi}{2}\sinh t_k},\ t_k = k h,$$

with a local length scale $\sigma = 1/\max(|\ell'(c)|, \sqrt{|\ell''(c)|})$ resolves it on
every scale from $10^{-19}\sigma$ to $10^{18}\sigma$ with a fixed node set (no
data-dependent control flow, cheap under `vmap`). The sum is taken in log space, so deep
tails keep full relative accuracy. The Gamma ($b = 0$) and inverse-Gamma ($a = 0$) limits
use the regularised incomplete gamma function instead.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jax.scipy.special import gammainc, gammaincc, logsumexp
from jaxtyping import Array, ArrayLike, Float

from ._gig_functions import _interior_logs, _prep, gig_log_normalizer, gig_regimes

__all__ = ["gig_cdf"]

_H = 1 / 24
_T_MIN, _T_MAX = -4.25, 3.5


def _nodes(dtype) -> tuple[Array, Array]:
    n_lo, n_hi = round(_T_MIN / _H), round(_T_MAX / _H)
    t = jnp.arange(n_lo, n_hi + 1, dtype=dtype) * _H
    e = (math.pi / 2) * jnp.sinh(t)
    log_x = e  # log(x / sigma)
    log_w = jnp.log(_H * math.pi / 2 * jnp.cosh(t)) + e  # log(h * dx/dt / sigma)
    return log_x, log_w


def gig_cdf(y: ArrayLike, p: ArrayLike, a: ArrayLike, b: ArrayLike) -> Float[Array, ...]:
    r"""$P(Y \le y)$ for $Y \sim \mathrm{GIG}(p, a, b)$, elementwise (see the module notes).

    Accuracy: about $10^{-13}$ absolute (and relative in the lower tail) against
    arbitrary-precision quadrature over $p \in [-50, 50]$, $\sqrt{ab} \in [10^{-6}, 10^4]$.
    """
    y, p, a, b = _prep(y, p, a, b)
    interior, a_zero, b_zero = gig_regimes(p, a, b)
    one = jnp.ones_like(p)
    pos = (y > 0) & jnp.isfinite(y)
    y_s = jnp.where(pos, y, one)
    c = jnp.log(y_s)

    # ---- interior: exp-sinh quadrature of the tail away from the mode
    log_w, _ = _interior_logs(interior, a, b)
    a_i = jnp.where(interior, a, one)
    b_i = jnp.where(interior, b, one)
    p_i = jnp.where(interior, p, one)
    la, lb = jnp.log(a_i), jnp.log(b_i)
    root = jnp.sqrt(p_i * p_i + jnp.exp(2 * log_w))
    u_mode = jnp.where(
        p_i >= 0,
        jnp.log(p_i + root) - la,
        lb - jnp.log(jnp.where(p_i >= 0, one, root - p_i)),
    )
    upper = c > u_mode
    sgn = jnp.where(upper, one, -one)
    ea, eb = jnp.exp(la + c), jnp.exp(lb - c)
    d1 = p_i - 0.5 * (ea - eb)
    d2 = 0.5 * (ea + eb)
    sigma = 1 / jnp.maximum(jnp.abs(d1), jnp.sqrt(d2))
    log_x, log_wt = _nodes(y.dtype)
    log_x = log_x.reshape((1,) * c.ndim + (-1,))
    log_wt = log_wt.reshape((1,) * c.ndim + (-1,))
    x = sigma[..., None] * jnp.exp(log_x)
    u = c[..., None] + sgn[..., None] * x
    ell = p_i[..., None] * u - 0.5 * (jnp.exp(la[..., None] + u) + jnp.exp(lb[..., None] - u))
    log_tail = logsumexp(ell + log_wt, axis=-1) + jnp.log(sigma)
    log_z = gig_log_normalizer(p_i, a_i, b_i)
    frac = jnp.exp(jnp.minimum(log_tail - log_z, 0))
    cdf_int = jnp.where(upper, 1 - frac, frac)

    # ---- limits
    ok_b0 = b_zero & (p > 0)
    cdf_b0 = gammainc(jnp.where(ok_b0, p, one), jnp.where(ok_b0, a, one) * y_s / 2)
    ok_a0 = a_zero & (p < 0)
    cdf_a0 = gammaincc(jnp.where(ok_a0, -p, one), jnp.where(ok_a0, b, one) / (2 * y_s))

    out = jnp.where(interior, cdf_int, jnp.where(ok_b0, cdf_b0, jnp.where(ok_a0, cdf_a0, jnp.nan)))
    proper = interior | ok_b0 | ok_a0
    out = jnp.where(pos, out, jnp.where(y == jnp.inf, one, jnp.zeros_like(y)))
    return jnp.where(proper & ~jnp.isnan(y), out, jnp.nan)
