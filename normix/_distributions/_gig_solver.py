r"""The GIG expectation-to-natural map $\eta \mapsto \theta$ (the M-step of every GH fit).

Problem. Given $\eta = (\mathbb{E}\log Y, \mathbb{E}\,Y^{-1}, \mathbb{E}\,Y)$, find
$\theta = (p - 1, -b/2, -a/2)$ minimising the strictly convex

$$f(\theta) = \psi(\theta) - \theta\cdot\eta, \qquad \nabla f = \mathbb{E}_\theta t - \eta,
\qquad \nabla^2 f = \operatorname{Cov}_\theta t .$$

Scale-free reduction (PITFALLS #3). If $Y \sim \mathrm{GIG}(p, a, b)$ then
$Y/\sigma \sim \mathrm{GIG}(p, a\sigma, b/\sigma)$. With $\sigma = \sqrt{\eta_3/\eta_2}$ the
rescaled problem has $\tilde\eta = (\eta_1 - \log\sigma,\ m,\ m)$, $m = \sqrt{\eta_2\eta_3}$
$\ge 1$ (Jensen), so $\mathbb{E}\tilde Y = \mathbb{E}\tilde Y^{-1}$: the a/b imbalance of the
data (ratios $10^{\pm 10}$ and beyond) is removed exactly, before any iteration, and the
solution maps back by $\theta = (\tilde\theta_1, \sigma\tilde\theta_2, \tilde\theta_3/\sigma)$.
The remaining problem depends on $(m, \tilde\eta_1)$ only, i.e. on the scale-free shape
$(p, \omega = \sqrt{ab})$. Newton's method in $\theta$ is affine invariant, so this
rescaling changes no iterate; it changes the *conditioning* of every quantity computed,
which is what fails in floating point otherwise. The Newton system is further solved with
Jacobi (diagonal) scaling.

Iteration. Damped Newton in $\tilde\theta$:

* direction $d = -H^{-1} g$ (Jacobi-scaled solve; if $d$ is not a descent direction, the
  scaled gradient is used instead);
* step $t \le 1$ limited by a fraction-to-the-boundary rule ($a, b$ shrink by at most a
  factor 10 per step and stay $> 0$: the natural domain is $\theta_2, \theta_3 < 0$);
* Armijo backtracking on $f$, with a round-off allowance since $f$ is a difference of
  large terms;
* converged when the moment equations hold to `gtol` (relative), or a full Newton step
  is below `rtol` relative to every component of $\tilde\theta$, or the Newton
  decrement $\lambda^2 = -g\cdot d$ stalls at the round-off floor.

Why hand-rolled rather than `optx.minimise`: the solution lives on an open domain whose
boundary ($a \to 0$ or $b \to 0$) is where the Gamma / inverse-Gamma laws sit and where
M-steps of VG / skew-t-like fits go; optimistix's Newton (a root finder) and its line
searches have no notion of a feasible set, so steps would leave it and produce NaN. The
loop still follows optimistix conventions: `lax.while_loop` with `max_steps`, a result
code from an `eqx.Enumeration`, no silent fallback.

Derivatives: $\nabla f = \eta(\theta) - \eta$ uses the closed-form Bessel-ratio moments
(whose $\partial_p\log K_p$ comes from `log_kv`'s `custom_jvp`), so the fixed point is
exact. The Newton matrix $\operatorname{Cov} t$ has its $(1/Y, Y)$ block in closed form
($\mathbb{E}Y^{\pm 2}$ by Bessel ratios, $\operatorname{Cov}(Y, 1/Y) = 1 - \mathbb{E}Y\,
\mathbb{E}Y^{-1}$) -- exact even where $b$ (or $a$) barely moves $\eta$, e.g. near-Gamma
laws, where finite differences in $b$ drown in round-off -- and its $\log Y$ row by a
central difference in $p$ (step $10^{-5}\max(|p|, 1)$, error $\sim 10^{-10}$), one
batched call on 3 points. `jax.jacfwd` would need second derivatives of `log_kv`, whose
compilation was measured at minutes on these machines; a $10^{-10}$-accurate Newton
matrix changes only the local rate (linear with ratio $\sim 10^{-10}$), not the solution.

Compile cost: every call site of the Bessel code is a separate inlined copy of its region
pipelines, so the whole solve is one `lax.while_loop` with exactly one Bessel call site,
one batched `log_kv_fused` call per turn (orders $p, p-2, p+1$ at each of 3 or 4 points):
the first turn scores the start candidates and the warm start ($\psi$ from the same
call), the next evaluates the chosen start ($\psi$, the moments and the $p$-differences),
then each trial point of the line search; an accepted trial point already carries the
gradient and Newton matrix of the next iteration. The GH M-step compiled in 6.5 s instead
of 9.4 s with one point per turn (2026-11); scoring the starts in the loop instead of a
second call site took the solver's trace + compile from 2.9-3.2 to 2.2-2.4 s (2-core CPU,
2026-12-08, compiled without the fusion emitters as `normix.fit` first does).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int

from .._compiled import compiled_when_eager
from ._gig_functions import _interior_log_z, _interior_moments

__all__ = [
    "GIGNewtonSolver",
    "GIGSolution",
    "GIGSolverResult",
    "solve_gig_natural",
    "solve_gig_natural_fixed_p",
]


_STALL_DECREMENT = 1e-16
_STALL_RESIDUAL = 1e-12
_FLAT_RESIDUAL = 1e-13
_FD_STEP = 1e-5


class GIGSolverResult(eqx.Enumeration):
    """Outcome of a GIG $\\eta \\to \\theta$ solve."""

    successful = ""
    max_steps_reached = (
        "GIG eta->theta: Newton reached max_steps without converging; raise "
        "`max_steps`, pass a warm start theta0, or check whether eta lies at the boundary "
        "(a Gamma or inverse-Gamma law) of the GIG expectation space."
    )
    infeasible_expectation = (
        "GIG eta->theta: eta = (E log Y, E 1/Y, E Y) is not the expectation of any GIG "
        "law: it needs E 1/Y > 0, E Y > 0, E[Y] E[1/Y] > 1, E log Y < log E[Y] and "
        "-E log Y < log E[1/Y] (Jensen), all finite."
    )
    nonfinite = (
        "GIG eta->theta: a non-finite value appeared during the Newton iteration "
        "(overflow in the Bessel functions or eta extremely close to the boundary)."
    )
    line_search_failed = (
        "GIG eta->theta: the line search found no decrease along the Newton direction "
        "before reaching the requested tolerance (round-off floor); loosen `rtol`."
    )


class GIGSolution(eqx.Module):
    r"""`theta` (natural parameters), `result` (a `GIGSolverResult`), `num_steps`, and
    `warm_objective`: $f(\theta_0) = \psi(\theta_0) - \theta_0\cdot\eta$ at the warm start
    `theta0` for the $\eta$ given (also an infeasible one), computed with the start
    candidates, so a caller comparing laws by $\theta\cdot\eta - \psi(\theta)$ needs no
    Bessel evaluation of its own (with `fixed_p`: at $\theta_0$ with its $p$ set to
    `fixed_p`, and a non-finite $\eta_1$ read as 0); NaN when no `theta0` was given or
    when it is not in the open natural domain ($\theta_2, \theta_3 < 0$, finite)."""

    theta: Float[Array, " 3"]
    result: GIGSolverResult
    num_steps: Int[Array, ""]
    warm_objective: Float[Array, ""]

    def succeeded(self) -> Array:
        """Whether the interior solve succeeded: result `successful` and a finite `theta`."""
        return (self.result == GIGSolverResult.successful) & jnp.all(jnp.isfinite(self.theta))


class _Plan(eqx.Module):
    """One Newton iteration's direction and the convergence tests known before its line
    search (see `GIGNewtonSolver.solve`)."""

    d: Array  # the (possibly bent) step direction
    slope: Array  # g . d (< 0)
    dec: Array  # Newton decrement of the unbent direction
    small: Array  # any of the convergence tests (i)-(iv) holds
    floor_flat: Array  # test (iv)
    resid_min: Array  # min(max residual, previous)


class _Turn(eqx.Module):
    """State of the solver loop (one Bessel evaluation per turn)."""

    trial: Array  # the point evaluated in this turn
    th: Array  # current iterate
    f0: Array  # f(th)
    t: Array  # trial step length
    k: Array  # index of the trial in the current line search (-1: the start, -2: scoring)
    plan: _Plan
    prev_dec: Array
    prev_resid: Array
    step: Array  # Newton iterations completed
    result: GIGSolverResult
    done: Array
    warm_objective: Array  # f at the warm start (set in the first turn)


# `_Turn.k` of the first turn, which scores the start candidates
_SCORING = -2


def _feasible(eta: Array) -> Array:
    e_log, e_inv, e_y = eta[0], eta[1], eta[2]
    ok = jnp.all(jnp.isfinite(eta)) & (e_inv > 0) & (e_y > 0)
    safe_inv = jnp.where(ok, e_inv, jnp.ones_like(e_inv))
    safe_y = jnp.where(ok, e_y, jnp.ones_like(e_y))
    l_inv, l_y = jnp.log(safe_inv), jnp.log(safe_y)
    return ok & (l_inv + l_y > 0) & (e_log < l_y) & (-e_log < l_inv)


def _newton_moments(theta: Array) -> tuple[Array, ...]:
    """Interior (E log Y, E 1/Y, E Y, E 1/Y^2, E Y^2, psi) at natural parameters `theta`,
    psi the log-normaliser log 2 + (p/2) log(b/a) + log K_p(sqrt(ab)) (one Bessel call)."""
    p, b, a = theta[0] + 1, -2 * theta[1], -2 * theta[2]
    la, lb = jnp.log(a), jnp.log(b)
    hlr = 0.5 * (lb - la)
    *moments, log_k = _interior_moments(p, 0.5 * (la + lb), hlr, second=True)
    return (*moments, _interior_log_z(p, hlr, log_k))


def _start_candidates(eta_n: Array, m: Array, fixed_p: Array | None) -> Array:
    r"""Candidate starts (rows) in the scale-free problem ($\tilde\eta_2 = \tilde\eta_3 = m$).

    Candidates matching $\mathbb{E}\tilde Y = \mathbb{E}\tilde Y^{-1} = m$ (approximately):
    the inverse Gaussian ($p = -1/2$), a near-Gamma law ($p = m^2/(m^2 - 1)$) and a
    near-inverse-Gamma law (its mirror image); the one with the lowest $f$ is taken. With
    `fixed_p` the single candidate is the symmetric-shape law of that $p$ with the
    concentration of the inverse-Gaussian match.
    """
    dtype = eta_n.dtype
    m2 = m * m
    lam = 1 / (m - 1 / m)  # inverse Gaussian with mean m: E 1/Y = 1/m + 1/lam = m
    ig = jnp.stack([jnp.asarray(-1.5, dtype), -lam / 2, -lam / (2 * m2)])
    if fixed_p is not None:
        # GIG(p, w/s, w s) with s chosen from the profile equation given w = lam / m.
        w = lam / m
        p = fixed_p
        s = (-p + jnp.sqrt(p * p + w * w * m2)) / (w * m)
        s = jnp.where(p > 0, w * m / (p + jnp.sqrt(p * p + w * w * m2)), s)
        return jnp.stack([p - 1, -w * s / 2, -w / (2 * s)])[None]
    pg = m2 / (m2 - 1)
    a_g = 2 * pg / m
    b_g = a_g * 1e-3 / (1 + pg) ** 2
    gam = jnp.stack([pg - 1, -b_g / 2, -a_g / 2])
    igam = jnp.stack([-pg - 1, -a_g / 2, -b_g / 2])
    return jnp.stack([ig, gam, igam])


class GIGNewtonSolver(eqx.Module):
    r"""Damped Newton for the GIG $\eta \to \theta$ map (see the module docstring).

    **Arguments:**

    - `gtol`: converged when $|\mathbb{E}_\theta t_i - \eta_i| \le$ `gtol`
      $\max(|\tilde\eta_i|, 1)$ for every $i$ (scale-free units): the moment equations
      hold to near machine precision. This is the criterion that works for every
      conditioning (e.g. near-Gamma laws, where $b$ barely affects $\eta$).
    - `rtol`, `atol`: or when a full Newton step satisfies
      $|d_i| \le$ `rtol` $|\tilde\theta_i| +$ `atol` for every component.
    - `max_steps`: Newton iterations at most (static).
    - `max_backtracks`: step halvings per line search at most (static).
    """

    gtol: float = 1e-15
    rtol: float = 1e-12
    atol: float = 0.0
    max_steps: int = eqx.field(static=True, default=200)
    max_backtracks: int = eqx.field(static=True, default=60)

    @compiled_when_eager
    def solve(
        self,
        eta: ArrayLike,
        theta0: ArrayLike | None = None,
        fixed_p: ArrayLike | None = None,
    ) -> GIGSolution:
        r"""Minimise $\psi(\theta) - \theta\cdot\eta$ over $\theta$ (or over $(\theta_2,
        \theta_3)$ with $p$ = `fixed_p` held fixed; then $\eta_1$ is ignored).

        `theta0` (optional) is a warm start, e.g. the previous EM iterate; it is used when
        it lies in the open natural domain ($\theta_2, \theta_3 < 0$), else the default
        start is used.
        """
        eta = jnp.asarray(eta)
        eta = eta.astype(jnp.result_type(eta, float))
        dtype = eta.dtype
        eps = jnp.finfo(dtype).eps
        if fixed_p is not None:
            fixed_p = jnp.asarray(fixed_p, dtype)
            eta = eta.at[0].set(jnp.where(jnp.isfinite(eta[0]), eta[0], 0))
            mid = 0.5 * (jnp.log(eta[2]) - jnp.log(eta[1]))  # satisfies both Jensen bounds
            e_log_ok = jnp.stack([mid, eta[1], eta[2]])
            feasible = _feasible(jnp.where(jnp.isfinite(eta), e_log_ok, jnp.nan)) & jnp.isfinite(
                fixed_p
            )
        else:
            feasible = _feasible(eta)
        safe_eta = jnp.where(feasible, eta, jnp.array([0.0, 2.0, 2.0], dtype))

        # ---- scale-free problem
        log_sigma = 0.5 * (jnp.log(safe_eta[2]) - jnp.log(safe_eta[1]))
        sigma = jnp.exp(log_sigma)
        m = jnp.exp(0.5 * (jnp.log(safe_eta[2]) + jnp.log(safe_eta[1])))
        eta_n = jnp.stack([safe_eta[0] - log_sigma, m, m])
        if fixed_p is not None:
            eta_n = eta_n.at[0].set(0)
        mask = jnp.array([0.0 if fixed_p is not None else 1.0, 1.0, 1.0], dtype)

        # The candidate starts and the warm start are scored inside the solver loop, by
        # its one Bessel evaluation (each call site of the Bessel code is compiled
        # separately): the loop's first turn evaluates them, the next one the start.
        cands = _start_candidates(eta_n, m, fixed_p)
        n_default = cands.shape[0]
        if theta0 is not None:
            th0 = jnp.asarray(theta0, dtype)
            th0n = jnp.stack([th0[0], th0[1] / sigma, th0[2] * sigma])
            if fixed_p is not None:
                th0n = th0n.at[0].set(fixed_p - 1)
            ok0 = jnp.all(jnp.isfinite(th0n)) & (th0n[1] < 0) & (th0n[2] < 0)
            cands = jnp.concatenate([cands, jnp.where(ok0, th0n, cands[0])[None]])
        n_cands = cands.shape[0]
        n_points = max(n_cands, 3)  # points per evaluation: 3 for a Newton turn
        cands = jnp.concatenate([cands, jnp.broadcast_to(cands[0], (n_points - n_cands, 3))])

        def choose_start(f_raw):
            # the best default candidate by f, then the warm start if it is no worse
            fs = jnp.where(jnp.isfinite(f_raw), f_raw, jnp.inf)
            i_start = jnp.argmin(fs[:n_default])
            start, f_start = cands[i_start], f_raw[i_start]
            warm_objective = jnp.full((), jnp.nan, dtype)
            if theta0 is None:
                return start, f_start, warm_objective
            # psi(theta0) from the scale-free problem (log Z(p, a s, b / s) =
            # log Z(p, a, b) - p log s), then f(theta0) for the eta given (even if
            # infeasible: a caller may still compare laws by it). With `fixed_p`, theta0's
            # p is replaced by it (as in the solve) and eta_1 is the one given, with a
            # non-finite E log Y read as 0 (the same for every law of that p).
            f_warm = f_raw[n_cands - 1]
            th0p = th0n[0] + 1
            psi0 = f_warm + th0n @ eta_n + th0p * log_sigma
            th0_full = th0.at[0].set(th0n[0]) if fixed_p is not None else th0
            warm_objective = jnp.where(ok0, psi0 - th0_full @ eta, jnp.nan)
            # f(theta) - f(theta*) = KL(p_theta* || p_theta) >= 0: of the warm and the default
            # start, take the one closer to the solution in KL (the default start is exact for
            # inverse-Gaussian laws and close for near-Gamma ones, so a poor warm start, e.g.
            # after a large EM step, does not cost extra Newton steps).
            use_warm = ok0 & jnp.isfinite(f_warm) & ~(f_warm > f_start)
            start = jnp.where(use_warm, th0n, start)
            f_start = jnp.where(use_warm, f_warm, f_start)
            return start, f_start, warm_objective

        def evaluate(pts):
            # f, its gradient and the Newton matrix at pts[0] from ONE batched Bessel
            # evaluation at the rows of `pts` (pts[1], pts[2] = pts[0] +- h e_p), and f at
            # every row. Gradient: closed-form Bessel ratios. Newton matrix Cov(t): the
            # (a, b) block in closed form (Var Y = E Y^2 - (E Y)^2, Var 1/Y likewise,
            # Cov(Y, 1/Y) = 1 - E Y E 1/Y), the p row by central differences in p of the
            # closed-form moments (3 points; see the module notes).
            th = pts[0]
            h = _FD_STEP * jnp.maximum(jnp.abs(th[0]), 1)
            ms = jax.vmap(_newton_moments)(pts)
            e_log, e_inv, e_y, e_inv2, e_y2, psi = (m[0] for m in ms)
            d_p = jnp.stack([(m[1] - m[2]) / (2 * h) for m in ms[:3]])
            c_ii = e_inv2 - e_inv * e_inv
            c_yy = e_y2 - e_y * e_y
            c_iy = 1 - e_inv * e_y
            hess = jnp.stack(
                [
                    d_p,
                    jnp.stack([d_p[1], c_ii, c_iy]),
                    jnp.stack([d_p[2], c_iy, c_yy]),
                ]
            )
            g = jnp.stack([e_log, e_inv, e_y]) - eta_n
            return psi - th @ eta_n, g, hess, ms[5] - pts @ eta_n

        def newton_points(th):
            h = _FD_STEP * jnp.maximum(jnp.abs(th[0]), 1)
            pts = jnp.stack([th, th.at[0].add(h), th.at[0].add(-h)])
            return jnp.concatenate([pts, jnp.broadcast_to(th, (n_points - 3, 3))])

        def direction(g, hess):
            g = g * mask
            hess = hess * mask[:, None] * mask[None, :] + jnp.diag(1 - mask)
            diag = jnp.abs(jnp.diagonal(hess))
            dscale = 1 / jnp.sqrt(jnp.where(diag > 0, diag, jnp.ones_like(diag)))
            hs = hess * dscale[:, None] * dscale[None, :]
            d = -dscale * jnp.linalg.solve(hs, dscale * g)
            d = d * mask
            dec = -(g @ d)
            bad = ~jnp.all(jnp.isfinite(d)) | ~(dec > 0)
            d_grad = -(dscale**2) * g
            d = jnp.where(bad, d_grad, d)
            return d, jnp.where(bad, -(g @ d_grad), dec)

        def step_limits(th, d):
            # keep theta_2, theta_3 < 0 and let them shrink by at most a factor 10 per step
            lims = [jnp.ones((), dtype)]
            for i in (1, 2):
                lim = jnp.where(d[i] > 0, 0.9 * (-th[i]) / jnp.where(d[i] > 0, d[i], 1), 1.0)
                lims.append(jnp.minimum(lim, 1.0))
            return jnp.stack(lims)

        def bend(th, g, hess, d):
            # Boundary-blocked Newton step: the component i in {2, 3} that would cross
            # theta_i = 0 is set to its largest admissible move (theta_i shrinks 10x) and the
            # others minimise the quadratic model given it,
            #     d_J = -H_JJ^{-1} (g_J + H_Ji d_i).
            # The scaled step t0 d is in the same slice, so the model value of the bent step
            # is at most that of t0 d (< 0), hence g.d < 0: still a descent direction. Without
            # this, a weakly identified a or b (near-Gamma / near-inverse-Gamma laws) makes
            # the Newton step nearly parallel to its axis, t0 ~ 0 and the other parameters
            # never move (a warm start then creeps to the boundary for max_steps).
            lims = step_limits(th, d)
            i = jnp.argmin(lims)
            blocked = lims[i] < 1
            e_i = jax.nn.one_hot(i, 3, dtype=dtype)
            d_i = 0.9 * (-th[i])
            free = mask * (1 - e_i)
            h_ff = hess * free[:, None] * free[None, :] + jnp.diag(1 - free)
            rhs = -(g + hess[:, i] * d_i) * free
            diag = jnp.abs(jnp.diagonal(h_ff))
            dscale = 1 / jnp.sqrt(jnp.where(diag > 0, diag, jnp.ones_like(diag)))
            hs = h_ff * dscale[:, None] * dscale[None, :]
            d_b = dscale * jnp.linalg.solve(hs, dscale * rhs) * free + e_i * d_i
            slope = g @ d_b
            use = blocked & jnp.all(jnp.isfinite(d_b)) & (slope < 0)
            return jnp.where(use, d_b, d), jnp.where(use, -slope, -(g @ d))

        R = GIGSolverResult

        def plan(th, g, hess, prev_dec, prev_resid):
            # A Newton iteration from th: the direction, the bent step, and the convergence
            # tests that only need g and the Newton direction:
            # (i) the moment equations hold to `gtol` (relative; E log Y absolute up to 1),
            # (ii) a full Newton step is below `rtol` relative, or (iii) round-off floor:
            # full steps no longer shrink an already negligible Newton decrement, or (iv)
            # the round-off floor is reached along a flat direction: the moment equations
            # hold to `_FLAT_RESIDUAL` and no longer improve (e.g. eta within round-off of
            # the Gamma / inverse-Gamma boundary, where damped steps would shrink a or b
            # forever).
            d, dec = direction(g, hess)
            d_step, slope = bend(th, g * mask, hess * mask[:, None] * mask[None, :], d)
            resid = jnp.abs(g) * mask / jnp.maximum(jnp.abs(eta_n), 1)
            small = jnp.all(resid <= self.gtol)
            small = small | jnp.all(jnp.abs(d) * mask <= self.rtol * jnp.abs(th) + self.atol)
            stalled = ((dec < _STALL_DECREMENT) | jnp.all(resid <= _STALL_RESIDUAL)) & (
                dec >= prev_dec / 4
            )
            r_max = jnp.max(resid)
            floor_flat = (r_max <= _FLAT_RESIDUAL) & (r_max > prev_resid / 2)
            small = small | stalled | floor_flat | (dec <= 16 * eps * eps)
            return _Plan(d_step, -slope, dec, small, floor_flat, jnp.minimum(r_max, prev_resid))

        # One loop, one evaluation per turn: the first turn evaluates the start; every
        # later turn evaluates the trial point th + t d of the current line search (the
        # full, boundary-limited step first, then halvings, Armijo with a round-off
        # allowance since f is a difference of large terms). An accepted trial point comes
        # with its own gradient and Newton matrix, so the next Newton iteration needs no
        # further evaluation.
        def cond(c):
            return (c.k == _SCORING) | (~c.done & (c.step < self.max_steps))

        def body(c):
            scoring = c.k == _SCORING
            f_x, g_x, hess_x, f_rows = evaluate(jnp.where(scoring, cands, newton_points(c.trial)))
            turn = newton_turn(c, f_x, g_x, hess_x)
            # the first turn: the start is chosen; the next turn evaluates it
            start, f_start, warm_objective = choose_start(f_rows)
            scored = eqx.tree_at(
                lambda t: (t.trial, t.th, t.f0, t.k, t.done, t.warm_objective),
                c,
                (start, start, f_start, jnp.array(-1), ~feasible, warm_objective),
            )
            return jax.tree.map(lambda a, b: jnp.where(scoring, a, b), scored, turn)

        def newton_turn(c, f_x, g_x, hess_x):
            tol_f = 64 * eps * (jnp.abs(c.f0 + c.th @ eta_n) + jnp.abs(c.th @ eta_n) + 1)
            armijo = jnp.isfinite(f_x) & (f_x <= c.f0 + 1e-4 * c.t * c.plan.slope + tol_f)
            first = c.k < 0  # the start point: accepted as it is
            ok = armijo | first
            search_over = ok | (c.k >= self.max_backtracks)
            # ---- end of a Newton iteration (not at the first turn)
            pl = c.plan
            finite = jnp.all(jnp.isfinite(c.trial)) & jnp.isfinite(f_x) & jnp.isfinite(pl.dec)
            converged = ok & (c.t == 1) & pl.small & finite
            # at the round-off floor the line search may fail although we are converged
            floor = ~ok & pl.small & finite
            result = R.where(
                ~finite,
                R.nonfinite,
                R.where(~ok & ~floor, R.line_search_failed, R.successful),
            )
            converged = converged | (pl.floor_flat & finite)
            done = converged | floor | ~finite | ~ok
            accept = ok & (finite | first)
            th = jnp.where(accept, c.trial, c.th)
            # (the start keeps the objective value it was chosen by)
            f0 = jnp.where(accept & ~first, f_x, c.f0)
            ended = search_over & ~first  # a Newton iteration ends in this turn
            prev_dec = jnp.where(ended, jnp.where(c.t == 1, pl.dec, jnp.inf), c.prev_dec)
            prev_resid = jnp.where(ended, pl.resid_min, c.prev_resid)
            stop = ended & done
            # ---- the next Newton iteration from th (its first trial: the full,
            # boundary-limited step), when the search is over and the solve goes on
            nxt = plan(th, g_x, hess_x, prev_dec, prev_resid)
            t0 = jnp.min(step_limits(th, nxt.d))
            new_iter = search_over & ~stop
            # ---- or the next halving of the current line search
            t_half = c.t / 2
            t = jnp.where(new_iter, t0, t_half)
            plan_ = jax.tree.map(lambda a, b: jnp.where(new_iter, a, b), nxt, c.plan)
            trial = jnp.where(new_iter, th + t0 * nxt.d, c.th + t_half * c.plan.d)
            step = c.step + jnp.where(ended, 1, 0)
            return _Turn(
                trial=trial,
                th=th,
                f0=f0,
                t=t,
                k=jnp.where(new_iter, 0, c.k + 1),
                plan=plan_,
                prev_dec=prev_dec,
                prev_resid=prev_resid,
                step=step,
                result=R.where(stop, result, c.result),
                done=stop,
                warm_objective=c.warm_objective,
            )

        inf = jnp.array(jnp.inf, dtype)
        zero3 = jnp.zeros(3, dtype)
        plan0 = _Plan(zero3, inf, inf, jnp.array(False), jnp.array(False), inf)
        init = _Turn(
            trial=cands[0],
            th=cands[0],
            f0=inf,
            t=jnp.ones((), dtype),
            k=jnp.array(_SCORING),
            plan=plan0,
            prev_dec=inf,
            prev_resid=inf,
            step=jnp.array(0),
            result=R.successful,
            done=jnp.array(False),
            warm_objective=jnp.full((), jnp.nan, dtype),
        )
        out = jax.lax.while_loop(cond, body, init)
        th, steps, result, done = out.th, out.step, out.result, out.done
        result = R.where(done, result, R.max_steps_reached)
        result = R.where(feasible, result, R.infeasible_expectation)
        theta = jnp.stack([th[0], th[1] * sigma, th[2] / sigma])
        return GIGSolution(
            theta=theta, result=result, num_steps=steps, warm_objective=out.warm_objective
        )


_DEFAULT_SOLVER = GIGNewtonSolver()


def solve_gig_natural(
    eta: ArrayLike,
    theta0: ArrayLike | None = None,
    solver: GIGNewtonSolver = _DEFAULT_SOLVER,
) -> tuple[Float[Array, " 3"], GIGSolverResult]:
    r"""$\theta = (p - 1, -b/2, -a/2)$ with $\mathbb{E}_\theta[(\log Y, Y^{-1}, Y)] = \eta$.

    Returns `(theta, result)`; check `result == GIGSolverResult.successful` (the EM
    driver surfaces it). Pure JAX: `jit`/`vmap`-able. `theta0` is an optional warm start.
    """
    sol = solver.solve(eta, theta0)
    return sol.theta, sol.result


def solve_gig_natural_fixed_p(
    p: ArrayLike,
    eta_inv: ArrayLike,
    eta_y: ArrayLike,
    theta0: ArrayLike | None = None,
    solver: GIGNewtonSolver = _DEFAULT_SOLVER,
) -> tuple[tuple[Float[Array, ""], Float[Array, ""]], GIGSolverResult]:
    r"""Maximum likelihood $(a, b)$ of $\mathrm{GIG}(p, a, b)$ with $p$ held fixed.

    Solves $\mathbb{E}[Y^{-1}] = $ `eta_inv`, $\mathbb{E}[Y] = $ `eta_y` for $(a, b)$
    (the stationarity conditions of the log-likelihood in $(a, b)$; $\mathbb{E}\log Y$
    does not enter). `theta0` is an optional warm start in the full natural
    parametrisation $(p - 1, -b/2, -a/2)$. Returns `((a, b), result)`.
    """
    eta_inv, eta_y = jnp.asarray(eta_inv), jnp.asarray(eta_y)
    dtype = jnp.result_type(p, eta_inv, eta_y, float)
    eta = jnp.stack([jnp.zeros((), dtype), eta_inv.astype(dtype), eta_y.astype(dtype)])
    sol = solver.solve(eta, theta0, fixed_p=jnp.asarray(p, dtype))
    return (-2 * sol.theta[2], -2 * sol.theta[1]), sol.result
