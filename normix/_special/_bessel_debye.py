r"""Debye (Olver) uniform asymptotic expansion of $K_\nu(x)$ for $\nu \ge \nu_0 = 20$.

With $R = \sqrt{\nu^2 + x^2}$ and $p = \nu/R$ (DLMF 10.41.4, 10.41.7),

$$\log K_\nu(x) = \tfrac12\log\frac{\pi}{2} - \tfrac12\log R - R + \nu\operatorname{asinh}
\frac{\nu}{x} + \log S_u, \qquad S_u = \sum_{k\ge0} (-1)^k\frac{u_k(p)}{\nu^k},$$

$$\frac{\partial}{\partial x}\log K_\nu(x) = -\frac{R}{x}\,\frac{S_v}{S_u}, \qquad
S_v = \sum_{k \ge 0} (-1)^k \frac{v_k(p)}{\nu^k},$$

with Debye's polynomials $u_0 = v_0 = 1$,
$u_{k+1} = \tfrac12 p^2(1-p^2)u_k' + \tfrac18\int_0^p (1-5t^2)u_k\,dt$ and
$v_k = u_k + p(p^2-1)(\tfrac12 u_{k-1} + p u_{k-1}')$ (DLMF 10.41.10-11), generated here
in exact rational arithmetic at import. The expansion is uniform in $x \in (0, \infty)$;
$\max_p |u_{14}(p)| \approx 2\cdot10^2$ so 14 terms at $\nu \ge 20$ leave a relative error
$\lesssim 2\cdot10^{-16}$. Both $u_k$ and $v_k - u_k$ have the form $p^k P_k(p^2)$ and are
summed by Horner's rule in $w = -p/\nu$.

The ratios use $K_{\nu\pm1}/K_\nu = \mp\partial_x\log K_\nu \pm \nu/x$ (recurrence and
derivative identities). $v_k - u_k = (p^2 - 1)\,p^k Q_k(p^2)$, and $1 - p^2 = x^2/R^2$ is
exact, so $S_v - S_u = -(x/R)^2 T$, $T = \sum_k w^k Q_k(p^2)$, has no cancellation even
for $x \ll \nu$. Then, with $T_u = T/S_u$,

$$\frac{K_{\nu+1}}{K_\nu} = 1 + \frac{\nu + \nu^2/(R + x) - (x^2/R)\,T_u}{x}, \qquad
\frac{K_{\nu-1}}{K_\nu} = x\Bigl(\frac{1}{R + \nu} - \frac{T_u}{R}\Bigr),$$

both free of cancellation ($T < 0$); the first is taken through `log1p` when $x > \nu$,
so that it stays accurate when it is close to 1 ($x \gg \nu$).
"""

import math
from fractions import Fraction

import jax.numpy as jnp
from jaxtyping import Array, Float

from ._bessel_recur import fixed_loop

NU0 = 20.0
_N_DEBYE = 14


def _poly_mul(a, b):
    out = [Fraction(0)] * (len(a) + len(b) - 1)
    for i, ca in enumerate(a):
        for j, cb in enumerate(b):
            out[i + j] += ca * cb
    return out


def _poly_add(a, b):
    n = max(len(a), len(b))
    return [(a[i] if i < len(a) else 0) + (b[i] if i < len(b) else 0) for i in range(n)]


def _poly_deriv(a):
    return [i * a[i] for i in range(1, len(a))] or [Fraction(0)]


def _debye_polynomials(n):
    """Coefficients (in p) of u_k and of Q_k with v_k - u_k = (p^2 - 1) Q_k, exact."""
    u = [[Fraction(1)]]
    for _ in range(n - 1):
        a = u[-1]
        t1 = _poly_mul(
            [Fraction(0), Fraction(0), Fraction(1, 2), Fraction(0), Fraction(-1, 2)], _poly_deriv(a)
        )
        integrand = _poly_mul([Fraction(1), Fraction(0), Fraction(-5)], a)
        t2 = [Fraction(0)] + [c / (i + 1) / 8 for i, c in enumerate(integrand)]
        u.append(_poly_add(t1, t2))
    d = [[Fraction(0)]]
    for k in range(1, n):
        # v_k - u_k = p (p^2 - 1) inner_k = (p^2 - 1) * d_k with d_k = p inner_k
        inner = _poly_add([c / 2 for c in u[k - 1]], [Fraction(0)] + _poly_deriv(u[k - 1]))
        d.append(_poly_mul([Fraction(0), Fraction(1)], inner))
    return u, d


def _even_part(poly, k):
    """Given poly = p^k P(p^2), return the coefficients of P (as floats)."""
    coeffs = [poly[i] if i < len(poly) else Fraction(0) for i in range(k, len(poly), 2)]
    assert all(c == 0 for i, c in enumerate(poly) if i < k or (i - k) % 2), "parity"
    return tuple(float(c) for c in coeffs) or (0.0,)


_U, _D = _debye_polynomials(_N_DEBYE)
_U_COEFFS = tuple(_even_part(_U[k], k) for k in range(_N_DEBYE))
_D_COEFFS = tuple(_even_part(_D[k], k) for k in range(_N_DEBYE))
del _U, _D


def _horner(coeffs, t):
    acc = jnp.full_like(t, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        acc = acc * t + c
    return acc


def _series(table, p2, w, unroll=True):
    r"""$\sum_k w^k P_k(p^2)$ by Horner's rule in $w$ (`unroll=False`: a `fori_loop` over
    $k$ on the zero-padded coefficient table, a small graph for higher derivatives)."""
    if unroll:
        acc = _horner(table[-1], p2)
        for coeffs in reversed(table[:-1]):
            acc = acc * w + _horner(coeffs, p2)
        return acc
    width = max(len(c) for c in table)
    padded = jnp.asarray([list(c) + [0.0] * (width - len(c)) for c in table], p2.dtype)
    last = len(table) - 1

    def row(k):
        coeffs = padded[k]
        return fixed_loop(
            1,
            width,
            lambda j, _, acc: acc * p2 + coeffs[width - 1 - j],
            jnp.zeros_like(p2) + coeffs[width - 1],
            p2.dtype,
            False,
        )

    def body(i, _, acc):
        return acc * w + row(last - i)

    return fixed_loop(1, last + 1, body, row(last), p2.dtype, False)


def debye_log_kv(
    nu: Float[Array, "..."], x: Float[Array, "..."], unroll: bool = True
) -> tuple[Float[Array, "..."], Float[Array, "..."], Float[Array, "..."], Float[Array, "..."]]:
    r"""Return $(\log K_\nu,\ \log\frac{K_{\nu+1}}{K_\nu},\ \log\frac{K_{\nu-1}}{K_\nu},\
    \frac{x K_{\nu+1}}{2K_\nu})$ at $x$, for $\nu \ge \nu_0$ and any $x > 0$."""
    r = jnp.hypot(nu, x)
    p = nu / r
    p2 = p * p
    w = -p / nu
    s_u = _series(_U_COEFFS, p2, w, unroll)
    t_u = _series(_D_COEFFS, p2, w, unroll) / s_u  # (S_v - S_u) / S_u = -(x/R)^2 t_u
    # asinh(nu/x) without forming nu/x (which overflows for tiny x).
    big = nu > x
    x_1 = jnp.where(big, x, 1.0)
    asinh_big = jnp.log(jnp.where(big, nu + r, 1.0)) - jnp.log(x_1)
    asinh_small = jnp.arcsinh(jnp.where(big, 0.5, nu / jnp.where(big, 1.0, x)))
    asinh_q = jnp.where(big, asinh_big, asinh_small)
    log_k = 0.5 * math.log(0.5 * math.pi) - 0.5 * jnp.log(r) - r + nu * asinh_q + jnp.log(s_u)
    x_over_r = x / r
    a = nu + nu * nu / (r + x) - x * x_over_r * t_u  # = x (K_{nu+1}/K_nu - 1)
    x_safe = jnp.where(big, 1.0, x)
    log_up = jnp.where(
        big, jnp.log(jnp.where(big, a + x, 1.0)) - jnp.log(x_1), jnp.log1p(a / x_safe)
    )
    log_dn = jnp.log(x) + jnp.log(1.0 / (r + nu) - t_u / r)
    return log_k, log_up, log_dn, 0.5 * (a + x)
