r"""$\log K_v(z)$, the modified Bessel function of the second kind, in log space.

Public functions: [`log_kv`][], [`log_kv_ratio`][] and [`log_kv_fused`][] (value,
$\partial_v$ and both neighbour ratios from one evaluation). All are pure JAX, jitted,
elementwise with broadcasting, finite for every real $v$ and $z > 0$, and follow the
inputs' dtype.

## Region map ($\nu = |v|$, $\nu_0 = 20$, $\mu = \nu - \mathrm{round}(\nu) \in [-\frac12, \frac12]$)

| region | method | file |
|---|---|---|
| $\nu \ge \nu_0$, any $z$ | Debye/Olver uniform expansion, 14 terms | `_bessel_debye.py` |
| $\nu < \nu_0$, $z \le 2$ | Temme series, $K_\mu, K_{\mu\pm1}$; recurrence | `_bessel_temme.py` |
| $\nu < \nu_0$, $z > 2$ | trapezoid (16 nodes); recurrence | `_bessel_quad.py` |

The recurrence (`_bessel_recur.py`) is division-free, scaled, and runs a fixed 20 steps.
Every region is a *fixed* amount of vectorised work (no data-dependent loop), accurate to
a few ulps on its whole domain including the overflow corners, and written in
differentiable JAX, so $\partial_v$ is the exact derivative of a converged
series/expansion/quadrature, carried as a forward-mode tangent in $\mu$ alongside the
value. Working at the small order $\mu$ keeps the quadrature short for every $z \ge 2$
(the integrand's saddle stays at $t = 0$), with one `exp` per node.

Cost control (PITFALLS #5, #6):

* batch-level branches: a region is computed only if some element of the batch needs it
  (`lax.cond` on `any`, kept a `cond` under `vmap` by taking the `any` over the whole
  vmapped batch). An E-step batch with one order $v$ and arguments $z_i > 2$ runs the
  quadrature pipeline alone;
* each region pipeline is one XLA loop over the elements (see `one_kernel`), and
  computes only the outputs asked for;
* second derivatives go through `fori_loop` forms of the same code (a `custom_jvp` on
  the shared parts), so `jit(hessian(log_kv))` compiles in seconds.

Under `where`/`select` every branch sees guarded inputs (the "double where").

## Derivatives

`log_kv` has a `custom_jvp` (with `symbolic_zeros`, so no $v$-work unless $v$ is
differentiated):

$$\partial_z \log K_v(z) = \frac{u - 2y}{z}, \quad y = \frac{z K_{u+1}(z)}{2K_u(z)}, \qquad
\partial_v \log K_v(z) = \pm\partial_u \log K_u(z),$$

where $u = v$ for $v \ge -1/2$ and $u = -v$ otherwise (all formulas accept
$u \ge -1/2$ and are even in $u$ near 0, so second derivatives are right at $v = 0$).
The tangent rule is itself differentiable, so Hessians work.
"""

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap
from jax.custom_derivatives import SymbolicZero
from jaxtyping import Array, ArrayLike, Float

from ._bessel_debye import NU0, debye_log_kv
from ._bessel_quad import trapezoid_log_kv
from ._bessel_recur import one_kernel, recurrence
from ._bessel_temme import temme_log_kv

_Z_TEMME = 2.0


class LogKvParts(NamedTuple):
    """Outputs of [`log_kv_fused`][]."""

    log_kv: Array
    r"""$\log K_v(z)$."""
    dlog_kv_dv: Array
    r"""$\partial_v \log K_v(z)$."""
    log_ratio_next: Array
    r"""$\log(K_{v+1}(z)/K_v(z))$."""
    log_ratio_prev: Array
    r"""$\log(K_{v-1}(z)/K_v(z))$."""


@custom_vmap
def _batch_any(mask):
    """`jnp.any(mask)`; under `vmap` it stays one unbatched scalar, the `any` over the whole
    batch (see `_if_any`)."""
    return jnp.any(mask)


@_batch_any.def_vmap
def _batch_any_vmap(axis_size, in_batched, mask):
    del axis_size, in_batched
    return jnp.any(mask), False


def _if_any(mask, fn, fill, *args):
    """`fn(*args)` if any element of `mask` is set, else `fill`: a batch-level branch that
    skips regions no element needs. `fn` returns one array per value in `fill`, each of
    the shape and dtype of the last argument (so the skipped branch is built without
    tracing `fn` a second time through `eval_shape`).

    Every caller selects the region's output only where its own mask is set, so running
    `fn` on more elements than needed never changes a result. Hence the predicate is the
    `any` over the *whole* batch, also under `vmap` (`_batch_any`): the branch stays a real
    `cond` (it would otherwise become a `select` that runs every region for every element,
    e.g. in a `vmap`ped fit over many datasets)."""
    like = args[-1]

    def skip(*_):
        return tuple(jnp.full(like.shape, f, like.dtype) for f in fill)

    return jax.lax.cond(_batch_any(mask), fn, skip, *args)


# Output slots of the region pipelines, and harmless fill values for skipped regions.
_SLOTS = ("log_k", "d_u", "log_up", "log_dn", "y_up")
_FILL = {"log_k": 0.0, "d_u": 0.0, "log_up": 0.0, "log_dn": 0.0, "y_up": 1.0}


def _low_pipeline(method, want, unroll):
    r"""Region pipeline for $u < \nu_0$: low-order `method` at $\mu$, then the recurrence.
    Returns the slots in `want`, from one XLA loop."""
    want_dv = "d_u" in want

    def run(n, mu, x):
        if want_dv:
            (log_k0, y0, ym0), (d0, dy0, _) = jax.jvp(
                lambda m: method(m, x, unroll), (mu,), (jnp.ones_like(mu),)
            )
        else:
            log_k0, y0, ym0 = method(mu, x, unroll)
            d0 = dy0 = jnp.zeros_like(log_k0)
        out = dict(zip(_SLOTS, recurrence(n, mu, x, log_k0, d0, y0, dy0, ym0, unroll), strict=True))
        return one_kernel(*(out[k] for k in want))

    return run


def _debye_pipeline(want, unroll):
    want_dv = "d_u" in want

    def run(nu, x):
        if want_dv:
            (log_k, log_up, log_dn, y), (d, _, _, _) = jax.jvp(
                lambda m: debye_log_kv(m, x, unroll), (nu,), (jnp.ones_like(nu),)
            )
        else:
            log_k, log_up, log_dn, y = debye_log_kv(nu, x, unroll)
            d = jnp.zeros_like(log_k)
        out = dict(zip(_SLOTS, (log_k, d, log_up, log_dn, y), strict=True))
        return one_kernel(*(out[k] for k in want))

    return run


def _log_kv_parts(u, x, want, unroll):
    r"""The slots named in `want` (a tuple, subset of `_SLOTS`) at $u \ge -1/2$, $x > 0$
    (same shapes): $\log K_u$, $\partial_u \log K_u$, $\log\frac{K_{u+1}}{K_u}$,
    $\log\frac{K_{u-1}}{K_u}$, $\frac{xK_{u+1}}{2K_u}$."""
    use_debye = u >= NU0
    low = jnp.logical_not(use_debye)
    small = x <= _Z_TEMME
    use_temme = jnp.logical_and(low, small)
    use_quad = jnp.logical_and(low, jnp.logical_not(small))
    fill = tuple(_FILL[k] for k in want)

    u_l = jnp.where(low, u, 0.25)
    n = jnp.round(u_l)
    mu = u_l - n
    temme = _if_any(
        use_temme,
        _low_pipeline(temme_log_kv, want, unroll),
        fill,
        n,
        jnp.where(use_temme, mu, 0.25),
        jnp.where(use_temme, x, 1.0),
    )
    quad = _if_any(
        use_quad,
        _low_pipeline(trapezoid_log_kv, want, unroll),
        fill,
        n,
        jnp.where(use_quad, mu, 0.25),
        jnp.where(use_quad, x, 2.0 * _Z_TEMME),
    )
    deb = _if_any(use_debye, _debye_pipeline(want, unroll), fill, jnp.where(use_debye, u, NU0), x)
    return tuple(
        jnp.where(use_debye, d, jnp.where(small, t, q))
        for d, t, q in zip(deb, temme, quad, strict=True)
    )


# Arrays of at most this many elements (per `vmap` slice: scalars in GIG M-steps and
# gauge normalisations) use the `fori_loop` forms: a tiny run time either way, and a
# graph several times smaller to compile.
_UNROLL_MIN_SIZE = 16


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _parts(u, x, want):
    """`_log_kv_parts` with unrolled loops (fast; `fori_loop`s for tiny arrays, see
    `_UNROLL_MIN_SIZE`); differentiating it (second derivatives
    of `log_kv`, derivatives of `log_kv_fused`) goes through the `fori_loop` form, whose
    graph is several times smaller and compiles in seconds."""
    return _log_kv_parts(u, x, want, x.size > _UNROLL_MIN_SIZE)


@_parts.defjvp
def _parts_jvp(want, primals, tangents):
    return jax.jvp(lambda a, b: _log_kv_parts(a, b, want, False), primals, tangents)


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
    return _parts(_reflect(v), z, ("log_k",))[0]


def _log_kv_jvp(primals, tangents):
    v, z = primals
    dv, dz = tangents
    u = _reflect(v)
    want_dv = not isinstance(dv, SymbolicZero)
    want_dz = not isinstance(dz, SymbolicZero)
    want = ("log_k",) + (("d_u",) if want_dv else ()) + (("y_up",) if want_dz else ())
    out = dict(zip(want, _parts(u, z, want), strict=True))
    log_k = out["log_k"]
    tangent = jnp.zeros_like(log_k)
    if want_dv:
        tangent = jnp.where(v < -0.5, -out["d_u"], out["d_u"]) * dv
    if want_dz:
        tangent = tangent + (u - 2.0 * out["y_up"]) / z * dz
    return log_k, tangent


_log_kv.defjvp(_log_kv_jvp, symbolic_zeros=True)


@jax.jit
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

    **Returns:** $\log K_v(z)$ in dtype `jnp.result_type(v, z, float)`; at the ends of the
    domain the limits $\log K_v(0) = +\infty$ and $\log K_v(\infty) = -\infty$ (derivative
    0 there), NaN for $z < 0$ or a NaN argument.
    """
    v, z = _prepare(v, z)
    ends = (z == 0) | jnp.isposinf(z)
    value = _log_kv(v, jnp.where(ends, jnp.ones_like(z), z))
    limit = jnp.where(z == 0, jnp.inf, -jnp.inf).astype(value.dtype)
    return jnp.where(ends & ~jnp.isnan(v), limit, value)


@jax.jit
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
    log_up, log_dn = _parts(_reflect(v), z, ("log_up", "log_dn"))
    return jnp.where(upper, log_up, log_dn)


@functools.partial(jax.jit, static_argnames=("dv",))
def log_kv_fused(v: ArrayLike, z: ArrayLike, dv: bool = True) -> LogKvParts:
    r"""$\log K_v(z)$, $\partial_v\log K_v(z)$, $\log\frac{K_{v+1}(z)}{K_v(z)}$ and
    $\log\frac{K_{v-1}(z)}{K_v(z)}$ from one evaluation.

    This is what GIG moments need: with $\omega = \sqrt{ab}$,
    $\mathbb{E}\log Y = \tfrac12\log\frac ba + \partial_p \log K_p(\omega)$,
    $\mathbb{E}Y = \sqrt{b/a}\,K_{p+1}/K_p$, $\mathbb{E}Y^{-1} = \sqrt{a/b}\,K_{p-1}/K_p$.
    The region work (series, quadrature, expansion, recurrence) is shared: the
    derivative rides along as a forward-mode tangent, and both ratios come from the
    recurrence's last two steps (or the Debye ratio formulas), never from a difference
    of logs. Accuracy as [`log_kv`][] and [`log_kv_ratio`][]; $\partial_v$ to $\sim10^{-14}$
    relative.

    Elementwise with broadcasting, dtype `jnp.result_type(v, z, float)`. Built from
    differentiable JAX (no custom rule), so it can be differentiated again in $v$ and $z$
    (e.g. `jax.jacfwd` for a Fisher information).

    **Arguments:**

    - `v`, `z`: order and argument, as in [`log_kv`][].
    - `dv`: compute $\partial_v \log K_v$ (static). With `dv=False` that output is NaN and
      the forward-mode tangent is skipped: about half the work, for callers that need only
      the value and the ratios (e.g. E-steps whose subordinator has no $\log y$ statistic).

    **Returns:** a [`LogKvParts`][] `(log_kv, dlog_kv_dv, log_ratio_next, log_ratio_prev)`.
    """
    v, z = _prepare(v, z)
    upper = v >= -0.5
    if dv:
        log_k, d_u, log_up, log_dn = _parts(_reflect(v), z, _SLOTS[:4])
    else:
        log_k, log_up, log_dn = _parts(_reflect(v), z, ("log_k", "log_up", "log_dn"))
        d_u = jnp.full_like(log_k, jnp.nan)
    return LogKvParts(
        log_k,
        jnp.where(upper, d_u, -d_u),
        jnp.where(upper, log_up, log_dn),
        jnp.where(upper, log_dn, log_up),
    )
