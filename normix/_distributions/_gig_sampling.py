r"""Exact GIG sampling (Hörmann & Leydold 2014), pure JAX.

Reduction. $Y \sim \mathrm{GIG}(p, a, b)$ with $a, b > 0$ is $Y = \alpha X$ ($p \ge 0$) or
$Y = \alpha / X$ ($p < 0$), $\alpha = \sqrt{b/a}$, where $X$ has the standardised density
$g(x) \propto x^{\lambda - 1} e^{-\frac{\omega}{2}(x + 1/x)}$, $\lambda = |p|$,
$\omega = \sqrt{ab}$. Three rejection methods cover every $(\lambda, \omega)$ with a
uniformly bounded rejection constant (W. Hörmann, J. Leydold, "Generating generalized
inverse Gaussian random variates", Statistics and Computing 24 (2014) 547–557):

1. $\lambda > 2$ or $\omega > 3$: ratio-of-uniforms with the mode $x_m$ as centre; the
   bounding rectangle $[u_-, u_+] \times [0, 1]$ comes from the two roots of a cubic
   (Cardano, trigonometric form).
2. otherwise, if $\lambda \ge 1 - \tfrac94\omega^2$ or $\omega > 0.2$: ratio-of-uniforms
   without shift, rectangle $[0, u_m] \times [0, 1]$.
3. otherwise ($0 \le \lambda < 1$, small $\omega$, where $g$ is not $T_{-1/2}$-concave):
   rejection from a three-piece dominating function (constant on $[0, x_0]$,
   $x^{\lambda-1}$ on $[x_0, 2/\omega]$, exponential beyond).

The limits use $Y = 2G/a$, $G \sim \mathrm{Gamma}(p)$ ($b = 0$) and $Y = b/(2G)$,
$G \sim \mathrm{Gamma}(-p)$ ($a = 0$), with $\log G$ from `jax.random.loggamma`.

Every draw loops (`lax.while_loop`) until *its own* proposal is accepted; nothing is
returned unaccepted. With scalar parameters all draws share one method (`lax.switch`) and
the loop refills only the missing draws from the accepted proposals of the pass (about
$1/\text{acceptance}$ full passes). With per-draw parameters every element evaluates all
three proposal types from the same two uniforms and keeps its own.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import jax.random as jr
from jaxtyping import Array, ArrayLike, PRNGKeyArray

from .._compiled import compiled_when_eager
from .._errors import error_if
from ._gig_functions import gig_params_proper

__all__ = ["sample_gig"]


def _mode(lam: Array, omega: Array) -> Array:
    one = jnp.ones_like(lam)
    big = lam >= 1
    q = jnp.abs(lam - 1)
    r = jnp.sqrt(q * q + omega * omega)
    m_big = (r + q) / omega
    m_small = omega / jnp.where(big, one, r + q)
    return jnp.where(big, m_big, m_small)


def _log_g(x: Array, lam: Array, omega: Array) -> Array:
    """$\\log g(x) = (\\lambda - 1)\\log x - \\frac\\omega2 (x + 1/x)$."""
    return (lam - 1) * jnp.log(x) - 0.5 * omega * (x + 1 / x)


# ---------------------------------------------------------------------------- setups
def _setup_shift(lam, omega):
    """Method 1 constants: (xm, nc, u_minus, u_plus)."""
    t, s = 0.5 * (lam - 1), 0.25 * omega
    xm = _mode(lam, omega)
    nc = t * jnp.log(xm) - s * (xm + 1 / xm)
    a3 = -(2 * (lam + 1) / omega + xm)
    b3 = 2 * (lam - 1) * xm / omega - 1
    c3 = xm
    p3 = b3 - a3 * a3 / 3
    q3 = 2 * a3**3 / 27 - a3 * b3 / 3 + c3
    arg = jnp.clip(-q3 / (2 * jnp.sqrt(-(p3**3) / 27)), -1.0, 1.0)
    fi = jnp.arccos(arg)
    fak = 2 * jnp.sqrt(-p3 / 3)
    y1 = fak * jnp.cos(fi / 3) - a3 / 3
    y2 = fak * jnp.cos(fi / 3 + 4 * math.pi / 3) - a3 / 3
    u_plus = (y1 - xm) * jnp.exp(t * jnp.log(y1) - s * (y1 + 1 / y1) - nc)
    u_minus = (y2 - xm) * jnp.exp(t * jnp.log(y2) - s * (y2 + 1 / y2) - nc)
    return xm, nc, u_minus, u_plus


def _propose_shift(c, lam, omega, u1, v):
    xm, nc, u_minus, u_plus = c
    x = (u_minus + (u_plus - u_minus) * u1) / v + xm
    pos = x > 0
    xs = jnp.where(pos, x, jnp.ones_like(x))
    # RoU test: v <= sqrt(g(x) / g(xm)), with nc = log g(xm) / 2
    ok = pos & (2 * jnp.log(v) <= _log_g(xs, lam, omega) - 2 * nc)
    return xs, ok


def _setup_noshift(lam, omega):
    """Method 2 constants: (nc, u_max)."""
    t, s = 0.5 * (lam - 1), 0.25 * omega
    xm = _mode(lam, omega)
    nc = t * jnp.log(xm) - s * (xm + 1 / xm)
    ym = ((lam + 1) + jnp.sqrt((lam + 1) ** 2 + omega * omega)) / omega
    um = jnp.exp(0.5 * (lam + 1) * jnp.log(ym) - s * (ym + 1 / ym) - nc)
    return nc, um


def _propose_noshift(c, lam, omega, u1, v):
    nc, um = c
    x = um * u1 / v
    pos = x > 0
    xs = jnp.where(pos, x, jnp.ones_like(x))
    ok = pos & (2 * jnp.log(v) <= _log_g(xs, lam, omega) - 2 * nc)
    return xs, ok


def _setup_new(lam, omega):
    """Method 3 constants: (x0, k0, k1, k2, A0, A1, A2, lam_safe)."""
    one = jnp.ones_like(lam)
    xm = _mode(lam, omega)
    x0 = omega / (1 - lam)
    k0 = jnp.exp(_log_g(xm, lam, omega))
    a0 = k0 * x0
    far = x0 >= 2 / omega  # cannot happen in this method's regime; kept for safety
    k1 = jnp.where(far, jnp.zeros_like(lam), jnp.exp(-omega))
    ell = jnp.log(2 / omega) - jnp.log(x0)
    lam_nz = jnp.where(lam == 0, one, lam)
    # (x0^lam) * ((2/w / x0)^lam - 1) / lam, without cancellation for small lam
    integral = jnp.where(lam == 0, ell, jnp.exp(lam * jnp.log(x0)) * jnp.expm1(lam * ell) / lam_nz)
    a1 = jnp.where(far, jnp.zeros_like(lam), k1 * integral)
    edge = jnp.where(far, x0, 2 / omega)
    k2 = jnp.exp((lam - 1) * jnp.log(edge))
    a2 = k2 * 2 * jnp.exp(-omega * edge / 2) / omega
    return x0, k0, k1, k2, a0, a1, a2, edge


def _propose_new(c, lam, omega, u1, v):
    x0, k0, k1, k2, a0, a1, a2, edge = c
    one = jnp.ones_like(lam)
    w = (a0 + a1 + a2) * u1
    in0 = w <= a0
    in1 = ~in0 & (w <= a0 + a1)
    # region 0: uniform on [0, x0]
    x_0 = x0 * w / a0
    # region 1: density k1 x^(lam-1) on [x0, 2/omega]; x = x0 (1 + lam W)^(1/lam)
    k1_s = jnp.where(k1 > 0, k1, one)
    wr = (w - a0) / (k1_s * jnp.exp(lam * jnp.log(x0)))
    lam_nz = jnp.where(lam == 0, one, lam)
    expo = jnp.where(lam == 0, wr, jnp.log1p(lam * wr) / lam_nz)
    x_1 = x0 * jnp.exp(expo)
    # region 2: density k2 exp(-omega x / 2) on [edge, inf)
    arg = jnp.exp(-omega * edge / 2) - omega * (w - a0 - a1) / (2 * k2)
    arg = jnp.maximum(arg, jnp.zeros_like(arg))
    x_2 = -2 / omega * jnp.log(arg)
    x = jnp.where(in0, x_0, jnp.where(in1, x_1, x_2))
    pos = (x > 0) & jnp.isfinite(x)
    xs = jnp.where(pos, x, one)
    log_h = jnp.where(
        in0,
        jnp.log(k0),
        jnp.where(in1, jnp.log(k1_s) + (lam - 1) * jnp.log(xs), jnp.log(k2) - omega * xs / 2),
    )
    ok = pos & (jnp.log(v) + log_h <= _log_g(xs, lam, omega))
    return xs, ok


# ----------------------------------------------------------------------- regimes
_SHIFT, _NOSHIFT, _NEW, _GAMMA_B0, _GAMMA_A0 = 0, 1, 2, 3, 4


def _regime(p, a, b):
    lam = jnp.abs(p)
    omega = jnp.sqrt(a * b)
    r = jnp.where(
        (lam > 2) | (omega > 3),
        _SHIFT,
        jnp.where((lam >= 1 - 2.25 * omega * omega) | (omega > 0.2), _NOSHIFT, _NEW),
    )
    r = jnp.where(b == 0, _GAMMA_B0, jnp.where(a == 0, _GAMMA_A0, r))
    return r


def _safe_params(p, a, b, r):
    """(lam, omega, log_alpha) for the RoU methods, harmless where `r` is a Gamma limit."""
    one = jnp.ones_like(p)
    interior = (a > 0) & (b > 0)
    a_s = jnp.where(interior, a, one)
    b_s = jnp.where(interior, b, one)
    la, lb = jnp.log(a_s), jnp.log(b_s)
    lam = jnp.abs(p)
    omega = jnp.exp(0.5 * (la + lb))
    del r
    return lam, omega, 0.5 * (lb - la)


def _safe_setups(lam, omega, r):
    one = jnp.ones_like(lam)
    l1 = jnp.where(r == _SHIFT, lam, 3 * one)
    w1 = jnp.where(r == _SHIFT, omega, one)
    l2 = jnp.where(r == _NOSHIFT, lam, one)
    w2 = jnp.where(r == _NOSHIFT, omega, one)
    l3 = jnp.where(r == _NEW, lam, 0.5 * one)
    w3 = jnp.where(r == _NEW, omega, 0.1 * one)
    return (
        (l1, w1, _setup_shift(l1, w1)),
        (l2, w2, _setup_noshift(l2, w2)),
        (l3, w3, _setup_new(l3, w3)),
    )


def _uniforms(key, shape, dtype):
    k1, k2 = jr.split(key)
    u1 = jr.uniform(k1, shape, dtype)
    v = 1 - jr.uniform(k2, shape, dtype)  # in (0, 1]
    return u1, v


def _to_y(x, p, log_alpha):
    return jnp.where(p >= 0, jnp.exp(log_alpha) * x, jnp.exp(log_alpha) / x)


def _gamma_limit(key, p, a, b, r, shape, dtype):
    """Draws for the two Gamma limits (any other element gets a harmless value)."""
    one = jnp.ones_like(p)
    shape_g = jnp.where(r == _GAMMA_B0, p, jnp.where(r == _GAMMA_A0, -p, one))
    shape_g = jnp.where(shape_g > 0, shape_g, one)
    log_g = jr.loggamma(key, shape_g, shape, dtype=dtype)
    a_s = jnp.where(a > 0, a, one)
    b_s = jnp.where(b > 0, b, one)
    y_b0 = jnp.exp(jnp.log(2.0) + log_g - jnp.log(a_s))
    y_a0 = jnp.exp(jnp.log(b_s) - jnp.log(2.0) - log_g)
    return jnp.where(r == _GAMMA_B0, y_b0, y_a0)


# ----------------------------------------------------------------------- samplers
def _sample_per_draw(key, p, a, b):
    """One draw per element of the (equal-shaped) parameter arrays."""
    dtype = p.dtype
    r = _regime(p, a, b)
    lam, omega, log_alpha = _safe_params(p, a, b, r)
    s1, s2, s3 = _safe_setups(lam, omega, r)
    is_gamma = (r == _GAMMA_B0) | (r == _GAMMA_A0)
    key, kg = jr.split(key)

    def body(c):
        x, done, key = c
        key, sub = jr.split(key)
        u1, v = _uniforms(sub, p.shape, dtype)
        x1, ok1 = _propose_shift(s1[2], s1[0], s1[1], u1, v)
        x2, ok2 = _propose_noshift(s2[2], s2[0], s2[1], u1, v)
        x3, ok3 = _propose_new(s3[2], s3[0], s3[1], u1, v)
        xn = jnp.where(r == _SHIFT, x1, jnp.where(r == _NOSHIFT, x2, x3))
        okn = jnp.where(r == _SHIFT, ok1, jnp.where(r == _NOSHIFT, ok2, ok3))
        take = ~done & okn
        return jnp.where(take, xn, x), done | take, key

    def cond(c):
        return ~jnp.all(c[1])

    x0 = jnp.ones_like(p)
    x, _, _ = jax.lax.while_loop(cond, body, (x0, is_gamma, key))
    y = _to_y(x, p, log_alpha)
    y_g = jax.lax.cond(
        jnp.any(is_gamma),
        lambda: _gamma_limit(kg, p, a, b, r, p.shape, dtype),
        lambda: jnp.ones_like(p),
    )
    return jnp.where(is_gamma, y_g, y)


def _fill(key, n, dtype, propose):
    """`n` i.i.d. accepted draws: each pass proposes `n` and fills the missing slots with
    the accepted proposals, in order."""

    def body(c):
        out, count, key = c
        key, sub = jr.split(key)
        u1, v = _uniforms(sub, (n,), dtype)
        x, ok = propose(u1, v)
        rank = jnp.cumsum(ok, dtype=jnp.int32) - 1 + count
        idx = jnp.where(ok & (rank < n), rank, n)
        out = out.at[idx].set(x, mode="drop")
        count = jnp.minimum(count + jnp.sum(ok, dtype=jnp.int32), n)
        return out, count, key

    def cond(c):
        return c[1] < n

    out, _, _ = jax.lax.while_loop(
        cond, body, (jnp.ones((n,), dtype), jnp.array(0, jnp.int32), key)
    )
    return out


def _sample_fixed(key, p, a, b, shape):
    """Draws of shape `shape` for scalar parameters."""
    dtype = p.dtype
    n = math.prod(shape)
    r = _regime(p, a, b)
    lam, omega, log_alpha = _safe_params(p, a, b, r)
    s1, s2, s3 = _safe_setups(lam, omega, r)

    def rou(setup, propose):
        def branch(key):
            lam_, omega_, c = setup
            x = _fill(key, n, dtype, lambda u1, v: propose(c, lam_, omega_, u1, v))
            return _to_y(x, p, log_alpha)

        return branch

    def gamma(key):
        return _gamma_limit(key, p, a, b, r, (n,), dtype)

    branches = [
        rou(s1, _propose_shift),
        rou(s2, _propose_noshift),
        rou(s3, _propose_new),
        gamma,
        gamma,
    ]
    return jax.lax.switch(r, branches, key).reshape(shape)


@compiled_when_eager
def sample_gig(
    key: PRNGKeyArray,
    p: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    shape: tuple[int, ...] | None = None,
) -> Array:
    r"""Exact draws from $\mathrm{GIG}(p, a, b)$ (see the module docstring).

    * Scalar parameters: `shape` draws (default `()`), all from the one law.
    * Array parameters: they are broadcast to `shape` (default: their broadcast shape) and
      each draw has its own law. `jax.vmap` over parameters works as well.

    Parameters must describe a proper law ($a, b > 0$; or $a = 0 < b$, $p < 0$; or
    $b = 0 < a$, $p > 0$; all finite), else this raises (also under `jit`). Where checks
    run in NaN mode (`normix._errors.checks_as_nan`) all draws are then NaN. An improper
    law never reaches the rejection loops, which would not end on it.
    """
    dtype = jnp.result_type(p, a, b, float)
    p, a, b = (jnp.asarray(x, dtype) for x in (p, a, b))
    proper = gig_params_proper(p, a, b)
    # a stand-in law where the parameters are improper, so every loop ends
    p, a, b = (jnp.where(proper, x, 1.0) for x in (p, a, b))
    if p.ndim == 0 and a.ndim == 0 and b.ndim == 0:
        draws = _sample_fixed(key, p, a, b, () if shape is None else tuple(shape))
    else:
        if shape is None:
            shape = jnp.broadcast_shapes(p.shape, a.shape, b.shape)
        p, a, b = (jnp.broadcast_to(x, shape) for x in (p, a, b))
        proper = jnp.broadcast_to(proper, shape)
        draws = _sample_per_draw(key, p, a, b)
    # checked on the draws, not on p: in NaN mode a check poisons its whole argument, and
    # NaN parameters must not reach the loops
    return error_if(
        jnp.where(proper, draws, jnp.nan),
        ~jnp.all(proper),
        "sample_gig: (p, a, b) must describe a proper GIG law: finite, with a > 0 and "
        "b > 0, or a = 0 < b with p < 0 (inverse Gamma), or b = 0 < a with p > 0 (Gamma).",
    )
