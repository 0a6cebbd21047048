r"""SQUAREM: EM accelerated by squared extrapolation (Varadhan & Roland 2008, scheme S3).

EM converges linearly, and slowly where the likelihood is flat along some direction (a
skewness parameter traded against the location, a GIG index, a tail parameter near the
Gaussian limit). SQUAREM uses two EM steps from $m_0$,

$$m_1 = M(m_0), \quad m_2 = M(m_1), \qquad r = m_1 - m_0, \quad v = m_2 - 2m_1 + m_0,$$

to extrapolate along the EM path with the step length $\alpha = -\lVert r\rVert /
\lVert v\rVert$ (clipped to $[-\alpha_{\max}, -1]$),

$$m' = m_0 - 2\alpha r + \alpha^2 v,$$

and then takes one EM step from $m'$ ("stabilisation"): the next iterate is
$m'' = M(m')$. The differences are taken leaf by leaf over the model's floating-point
parameters (the same pytree the stopping rule compares). $\alpha = -1$ gives $m' = m_2$,
plain EM. The combination is affine (its coefficients sum to one), so linear constraints
that every iterate satisfies (weights summing to one, a gauge $\mathbb{E}Y = 1$) hold for
$m'$ too.

**Safeguard (monotone).** $m''$ is accepted only if $\ell(m')$ is finite and at least
$\ell(m_1)$, and $m''$ is finite; otherwise the iteration returns $m_2$, two plain EM
steps. Since an EM step never decreases $\ell$, accepted iterates satisfy
$\ell(m'') \ge \ell(m') \ge \ell(m_1) \ge \ell(m_0)$, so the log-likelihood trace is
monotone as with EM. Parameters outside the model's domain (a negative GIG $a$, a
negative weight) give a non-finite $\ell(m')$ and are rejected by the same test.

One iteration costs three E-steps and three M-steps (it reports $\ell(m_0)$ and counts
as one step in `n_steps` and the trace); on slowly converging fits it needs far fewer
E-steps than EM (see `docs/design.md`).
"""

import equinox as eqx
import jax
import jax.numpy as jnp

from ._driver import _all_finite, _select
from ._solvers import AbstractCauchyEMSolver, e_step_and_log_likelihood


def _sq_norm(tree) -> jax.Array:
    return sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree))


class SQUAREM(AbstractCauchyEMSolver):
    r"""EM accelerated by squared extrapolation (module docstring), with a monotone
    safeguard. Same stopping rule and tolerances as `EM` (applied to successive
    SQUAREM iterates); `max_step` is $\alpha_{\max}$, the largest extrapolation factor.

    Works with every model that `EM()` fits (it only calls `e_step` / `m_step`).
    """

    rtol: float = 1e-9
    atol: float = 1e-12
    param_rtol: float = 1e-6
    param_atol: float = 1e-9
    decrease_tol: float = 1e-8
    max_step: float = 64.0

    def init(self, model, x, weights) -> None:
        return None

    def step(self, model, x, weights, state):
        # The three E/M passes (from m_0, m_1 and the extrapolated m') run as one loop of
        # three iterations, so the compiled program holds one copy of the E- and M-step.
        def extrapolate(m0, m1, m2):
            p0, static = eqx.partition(m0, eqx.is_inexact_array)
            p1 = eqx.filter(m1, eqx.is_inexact_array)
            p2 = eqx.filter(m2, eqx.is_inexact_array)
            r = jax.tree.map(lambda a, b: b - a, p0, p1)
            v = jax.tree.map(lambda a, b, c: c - 2 * b + a, p0, p1, p2)
            nr, nv = jnp.sqrt(_sq_norm(r)), jnp.sqrt(_sq_norm(v))
            ratio = jnp.where(nv > 0, nr / jnp.where(nv > 0, nv, 1), 1)
            alpha = -jnp.clip(ratio, 1, self.max_step)
            alpha = jnp.where(jnp.isfinite(alpha), alpha, -1)
            p_ext = jax.tree.map(lambda a, dr, dv: a - 2 * alpha * dr + alpha**2 * dv, p0, r, v)
            return eqx.combine(p_ext, static)

        def body(i, carry):
            cur, m1, m2, lls = carry
            stats, ll = e_step_and_log_likelihood(cur, x, weights)
            nxt = cur.m_step(stats)
            lls = lls.at[i].set(jnp.asarray(ll, lls.dtype))
            m1 = _select(i == 0, nxt, m1)
            m2 = _select(i == 1, nxt, m2)
            # after the second pass, the third runs from the extrapolated point
            cur = _select(i == 1, extrapolate(model, m1, nxt), nxt)
            return cur, m1, m2, lls

        dtype = jnp.result_type(*jax.tree.leaves(eqx.filter(model, eqx.is_inexact_array)))
        lls = jnp.full((3,), jnp.nan, dtype)
        m_next, _, m2, lls = jax.lax.fori_loop(0, 3, body, (model, model, model, lls))
        ll0, ll1, ll_ext = lls[0], lls[1], lls[2]
        accept = jnp.isfinite(ll_ext) & (ll_ext >= ll1) & _all_finite(m_next)
        return _select(accept, m_next, m2), ll0, state
