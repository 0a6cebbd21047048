r"""$\log K_v(z)$, the modified Bessel function of the second kind, in log space.

Public functions: [`log_kv`][] and [`log_kv_ratio`][]. Both are pure JAX, elementwise with
broadcasting, finite for every real $v$ and $z > 0$, and follow the inputs' dtype.

## Region map ($\nu = |v|$, $\nu_0 = 20$)

| region | method | file |
|---|---|---|
| $\nu \ge \nu_0$, any $z$ | Debye/Olver uniform expansion, 14 terms | `_bessel_debye.py` |
| $\nu < \nu_0$, $z \le 2$ | Temme series for $K_\mu, K_{\mu+1}$, $\mu = \nu - \mathrm{round}(\nu)$, then forward recurrence | `_bessel_temme.py` + here |
| $\nu < \nu_0$, $z > 2$ | trapezoid rule on $\int_0^\infty e^{-z\cosh t}\cosh(\nu t)\,dt$, 40 nodes | `_bessel_quad.py` |

Why these: every region is a *fixed* amount of vectorised work (no data-dependent loop),
each is accurate to a few ulps on its whole domain including the overflow corners, and
each is an analytic function of $(v, z)$ written in differentiable JAX, so the
$v$-derivative is the exact derivative of a converged series/expansion/quadrature
(no finite differences). The Debye expansion is uniform in $z$, so it covers tiny $z$ with
large $\nu$ (where $\log K \approx \log\Gamma(\nu) + \nu\log(2/z)$) and huge $z$ alike. Below
$\nu_0$ Temme's series is the classical choice for small $z$ (it handles
$\nu \to 0$ and $\nu \to 1/2$ without cancellation). For $z > 2$ the trapezoid rule was
preferred over Steed's CF2: it needs no recurrence, has no intermediate that can overflow
for huge $z$, and yields $K_{\nu+1}/K_\nu$ from the same nodes. Under `vmap`/`where`
every branch runs, so each branch sees guarded inputs (the "double where").

Forward recurrence (stable for $K$) is carried in the scaled ratio
$y_k = z K_{\mu+k+1}/(2K_{\mu+k})$, $y_k = (z^2/4)/y_{k-1} + \mu + k$, bounded by
$k + 3/2$ for $z \le 2$, so the product $\prod_{k<n} y_k$ cannot overflow and

$$\log K_{\mu+n}(z) = \log K_\mu(z) + n\log\frac2z + \log\prod_{k<n} y_k .$$

## Derivatives

`log_kv` has a `custom_jvp` (with `symbolic_zeros`, so no $v$-work unless $v$ is
differentiated):

$$\partial_z \log K_v(z) = \frac{u - 2y}{z}, \quad y = \frac{z K_{u+1}(z)}{2K_u(z)}, \qquad
\partial_v \log K_v(z) = \pm\partial_u \log K_u(z),$$

where $u = v$ for $v \ge -1/2$ and $u = -v$ otherwise (all formulas accept
$u \ge -1/2$ and are even in $u$ near 0, so second derivatives are right at $v = 0$),

the ratio coming from the same evaluation and $\partial_u$ from forward-mode autodiff
of the Temme and Debye formulas, and from the quadrature of
$\partial_u K_u = \int_0^\infty t \sinh(ut)e^{-z\cosh t}dt$ in the trapezoid region. The tangent rule is itself differentiable JAX, so Hessians work.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_derivatives import SymbolicZero
from jaxtyping import Array, ArrayLike, Float

from ._bessel_debye import NU0, debye_log_kv
from ._bessel_quad import trapezoid_log_kv
from ._bessel_temme import temme_log_kv


_Z_TEMME = 2.0


def _log_kv_and_ratio(u, x):
    r"""$(\log K_u, \log(K_{u+1}/K_u), x K_{u+1}/(2K_u))$ at $x$, for $u \ge -1/2$, $x > 0$."""
    dtype = x.dtype
    use_debye = u >= NU0
    small = x <= _Z_TEMME
    use_temme = jnp.logical_and(jnp.logical_not(use_debye), small)
    use_quad = jnp.logical_and(jnp.logical_not(use_debye), jnp.logical_not(small))

    log_k_d, rho_d, y_d = debye_log_kv(jnp.where(use_debye, u, NU0), x)
    log_k_q, rho_q, y_q = trapezoid_log_kv(
        jnp.where(use_quad, u, 0.0), jnp.where(use_quad, x, 2.0 * _Z_TEMME)
    )

    u_t = jnp.where(use_temme, u, 0.25)
    x_t = jnp.where(use_temme, x, 1.0)
    n = jnp.round(u_t)
    mu = u_t - n
    log_k_mu, y0 = temme_log_kv(mu, x_t)
    x2 = 0.25 * x_t * x_t
    # y_0 < sqrt(tiny) only when x is so small that x^2/(4 y_0) is far below rounding; the
    # floor keeps 1/y^2 (autodiff of x2/y) finite.
    y_floor = float(np.sqrt(np.finfo(dtype).tiny))

    prod, y, y_n = jnp.ones_like(y0), y0, y0
    for k in range(1, int(NU0) + 1):  # unrolled: a few flops per step, fused by XLA
        prod = jnp.where(k <= n, prod * y, prod)
        y = x2 / jnp.maximum(y, y_floor) + mu + float(k)
        y_n = jnp.where(k == n, y, y_n)
    log_2_over_x = math.log(2.0) - jnp.log(x_t)
    log_k_t = log_k_mu + n * log_2_over_x + jnp.log(prod)
    rho_t = log_2_over_x + jnp.log(y_n)

    log_k = jnp.where(use_debye, log_k_d, jnp.where(use_temme, log_k_t, log_k_q))
    rho = jnp.where(use_debye, rho_d, jnp.where(use_temme, rho_t, rho_q))
    y = jnp.where(use_debye, y_d, jnp.where(use_temme, y_n, y_q))
    return log_k, rho, y


def _prepare(v, z):
    dtype = jnp.result_type(v, z, float)
    v = jnp.asarray(v, dtype)
    z = jnp.asarray(z, dtype)
    shape = jnp.broadcast_shapes(v.shape, z.shape)
    return jnp.broadcast_to(v, shape), jnp.broadcast_to(z, shape)


def _reflect(v):
    # K_v = K_{-v}; keep v itself on [-1/2, 1/2] so that log K stays smooth through v = 0
    # (all region formulas are even there), which keeps Hessians right at v = 0.
    return jnp.where(v < -0.5, -v, v)


@jax.custom_jvp
def _log_kv(v, z):
    return _log_kv_and_ratio(_reflect(v), z)[0]


def _log_kv_jvp(primals, tangents):
    v, z = primals
    dv, dz = tangents
    u = _reflect(v)
    if isinstance(dv, SymbolicZero):
        log_k, _, y = _log_kv_and_ratio(u, z)
        tangent = jnp.zeros_like(log_k)
    else:
        du = jnp.where(v < -0.5, -dv, dv)
        (log_k, _, y), (tangent, _, _) = jax.jvp(
            lambda n: _log_kv_and_ratio(n, z), (u,), (du,)
        )
    if not isinstance(dz, SymbolicZero):
        tangent = tangent + (u - 2.0 * y) / z * dz
    return log_k, tangent


_log_kv.defjvp(_log_kv_jvp, symbolic_zeros=True)


def log_kv(v: ArrayLike, z: ArrayLike) -> Float[Array, "..."]:
    r"""$\log K_v(z)$, the log of the modified Bessel function of the second kind.

    Elementwise with broadcasting; $K_{-v} = K_v$. Accurate to a few ulps of $\log K$
    for $|v| \le 1000$ and $10^{-300} \le z \le 10^9$ (float64), finite for every real $v$
    and $z > 0$. Differentiable in both arguments with exact rules:
    $\partial_z \log K_v = |v|/z - K_{|v|+1}/K_{|v|}$ and $\partial_v \log K_v$ from the
    analytic derivative of the region formula (see the module docstring).

    **Arguments:**

    - `v`: order (any real).
    - `z`: argument, $z > 0$.

    **Returns:** $\log K_v(z)$ in dtype `jnp.result_type(v, z, float)`.
    """
    v, z = _prepare(v, z)
    return _log_kv(v, z)


def log_kv_ratio(v: ArrayLike, z: ArrayLike) -> Float[Array, "..."]:
    r"""$\log K_{v+1}(z) - \log K_v(z)$, computed directly (no cancellation).

    For $v \ge -1/2$ this is the ratio returned by the region formulas; for $v < -1/2$,
    $K_{v+1}/K_v = K_{-v-1}/K_{-v} = 1 / (K_{u+1}/K_u)$ with $u = -v-1 > -1/2$.
    Used for GIG moments, e.g. $E[Y] = \sqrt{b/a}\,K_{p+1}(\sqrt{ab})/K_p(\sqrt{ab})$.
    Differentiable (plain autodiff through the region formulas).

    **Arguments:**

    - `v`: order (any real).
    - `z`: argument, $z > 0$.

    **Returns:** $\log(K_{v+1}(z)/K_v(z))$.
    """
    v, z = _prepare(v, z)
    upper = v >= -0.5
    _, rho, _ = _log_kv_and_ratio(jnp.where(upper, v, -v - 1.0), z)
    return jnp.where(upper, rho, -rho)
