r"""Temme's series for $K_\mu(x)$ and $K_{\mu+1}(x)$, $|\mu| \le 1/2$, $0 < x \le 2$.

With $\sigma = \mu \ln(2/x)$, $\Gamma_1(\mu) = \frac{1}{2\mu}\bigl(\frac{1}{\Gamma(1-\mu)} -
\frac{1}{\Gamma(1+\mu)}\bigr)$ and $\Gamma_2(\mu) = \frac12\bigl(\frac{1}{\Gamma(1-\mu)} +
\frac{1}{\Gamma(1+\mu)}\bigr)$ (Temme 1975, J. Comput. Phys. 19, 324):

$$K_\mu(x) = \sum_{k\ge0} c_k f_k, \qquad
\frac{x}{2} K_{\mu+1}(x) = \sum_{k \ge 0} c_k (p_k - k f_k), \qquad c_k = \frac{(x^2/4)^k}{k!},$$

$$f_0 = \frac{\mu\pi}{\sin \mu\pi}\Bigl[\cosh\sigma\,\Gamma_1(\mu) + \frac{\sinh\sigma}{\sigma}
\ln\frac{2}{x}\,\Gamma_2(\mu)\Bigr], \quad p_0 = \tfrac12 e^{\sigma}\Gamma(1+\mu), \quad
q_0 = \tfrac12 e^{-\sigma}\Gamma(1-\mu),$$

$$f_k = \frac{k f_{k-1} + p_{k-1} + q_{k-1}}{k^2 - \mu^2}, \quad p_k = \frac{p_{k-1}}{k - \mu},
\quad q_k = \frac{q_{k-1}}{k + \mu}.$$

Every ingredient is an entire function of $\mu$ evaluated without cancellation:
$1/\Gamma(1\pm\mu)$, $\Gamma_1$, $\Gamma_2$ from the Taylor series of $1/\Gamma(1+\mu)$,
$\sin(\pi\mu)/(\pi\mu)$ and $\sinh\sigma/\sigma$ from Taylor series near 0. So autodiff in
$\mu$ gives the exact derivative of the (converged) series. At $x = 2$ the terms fall like
$1/(k!)^2$; 14 terms reach $10^{-19}$.
"""

import math

import jax.numpy as jnp
from jaxtyping import Array, Float

from ._bessel_recur import fixed_loop

# Taylor coefficients of 1/Gamma(1 + m) (computed with mpmath at 50 digits).
_RGAMMA_TAYLOR = (
    1.0,
    0.5772156649015328606065,
    -0.655878071520253881077,
    -0.042002635034095235529,
    0.1665386113822914895017,
    -0.04219773455554433674821,
    -0.009621971527876973562115,
    0.007218943246663099542395,
    -0.001165167591859065112114,
    -0.0002152416741149509728157,
    0.0001280502823881161861532,
    -0.00002013485478078823865569,
    -0.000001250493482142670657345,
    0.000001133027231981695882374,
    -2.05633841697760710345e-7,
    6.116095104481415817862e-9,
    5.002007644469222930056e-9,
    -1.181274570487020144588e-9,
    1.043426711691100510492e-10,
    7.78226343990507125405e-12,
    -3.696805618642205708188e-12,
    5.100370287454475979015e-13,
)
_N_TEMME = 14


def _horner(coeffs, t, unroll=True):
    if unroll:
        acc = jnp.full_like(t, coeffs[-1])
        for c in reversed(coeffs[:-1]):
            acc = acc * t + c
        return acc
    table = jnp.asarray(coeffs[::-1], t.dtype)  # highest degree first
    return fixed_loop(
        1,
        len(coeffs),
        lambda k, _, acc: acc * t + table[k],
        jnp.full_like(t, coeffs[-1]),
        t.dtype,
        False,
    )


def _gamma12(mu, unroll=True):
    r"""$\Gamma_1(\mu) = -\sum_{k\,odd} a_k \mu^{k-1}$, $\Gamma_2(\mu) = \sum_{k\,even} a_k
    \mu^k$ where $1/\Gamma(1+m) = \sum a_k m^k$."""
    m2 = mu * mu
    g1 = -_horner(_RGAMMA_TAYLOR[1::2], m2, unroll)
    g2 = _horner(_RGAMMA_TAYLOR[0::2], m2, unroll)
    return g1, g2


def _sinc_pi(mu, unroll=True):
    r"""$\sin(\pi\mu)/(\pi\mu)$ by its Taylor series (exact to rounding for $|\mu| \le 1/2$)."""
    y2 = (math.pi * mu) ** 2
    coeffs = tuple((-1.0) ** k / math.factorial(2 * k + 1) for k in range(12))
    return _horner(coeffs, y2, unroll)


def _sinhc(s, unroll=True):
    r"""$\sinh(s)/s$: Taylor series for $|s| < 1$, the quotient otherwise (double where)."""
    small = jnp.abs(s) < 1.0
    s_small = jnp.where(small, s, 0.0)
    s_big = jnp.where(small, 1.0, s)
    coeffs = tuple(1.0 / math.factorial(2 * k + 1) for k in range(10))
    return jnp.where(small, _horner(coeffs, s_small * s_small, unroll), jnp.sinh(s_big) / s_big)


def temme_log_kv(
    mu: Float[Array, "..."], x: Float[Array, "..."], unroll: bool = True
) -> tuple[Float[Array, "..."], Float[Array, "..."], Float[Array, "..."]]:
    r"""Return $(\log K_\mu(x),\ y_+,\ y_-)$ with $y_\pm = x K_{1\pm\mu}(x) / (2 K_\mu(x))$.

    Valid for $|\mu| \le 1/2$ and $0 < x \le 2$ (finite, but inaccurate, elsewhere).
    $\frac x2 K_{1-\mu} = \sum_k c_k(q_k - k f_k)$ is the same series with $\mu \to -\mu$
    ($f_k$ is even, $p_k \leftrightarrow q_k$).

    $K_\mu$ is even in $\mu$, and the sum is arranged so that every intermediate is an
    explicitly even function of $\mu$ ($p_k$, $q_k$, for $K_{1\pm\mu}$, are carried as
    they are): with $s_k = p_k + q_k$ and $p_k - q_k = \mu b_k$,

    $$s_k = \frac{k s_{k-1} + \mu^2 b_{k-1}}{k^2-\mu^2}, \quad
    b_k = \frac{k b_{k-1} + s_{k-1}}{k^2 - \mu^2},$$

    $s_0 = A\cosh\sigma + \mu\sigma B \sinh\sigma/\sigma$,
    $b_0 = A \ln(2/x) \sinh\sigma/\sigma + B\cosh\sigma$, where
    $\Gamma(1\pm\mu) = A \pm \mu B$, $A = \Gamma_2/G$, $B = \Gamma_1/G$,
    $G = \Gamma_2^2 - \mu^2\Gamma_1^2$. Hence $\partial_\mu \log K_\mu$ computed by
    autodiff is $\mu$ times an even expression: relatively accurate even for
    $\mu = 10^{-10}$. One division per term: $1/(k^2 - \mu^2)$ serves all updates
    ($p_k = p_{k-1}(k+\mu)/(k^2-\mu^2)$, likewise $q_k$).
    """
    log_2_over_x = math.log(2.0) - jnp.log(x)
    sigma = mu * log_2_over_x
    mu2 = mu * mu
    g1, g2 = _gamma12(mu, unroll)
    gg = g2 * g2 - mu2 * g1 * g1  # 1/(Gamma(1+mu) Gamma(1-mu))
    a_even = g2 / gg
    b_even = g1 / gg
    cosh_s = jnp.cosh(sigma)
    sinhc_s = _sinhc(sigma, unroll)
    f = (cosh_s * g1 + sinhc_s * log_2_over_x * g2) / _sinc_pi(mu, unroll)
    s = a_even * cosh_s + mu2 * log_2_over_x * b_even * sinhc_s
    b = a_even * log_2_over_x * sinhc_s + b_even * cosh_s
    # p_k, q_k themselves (needed only for K_{1 +- mu}) are carried separately:
    # p = (s + mu b)/2 would cancel catastrophically for mu < 0 and tiny x.
    e_sigma = jnp.exp(sigma)
    p = 0.5 * e_sigma * (a_even + mu * b_even)
    q = 0.5 / e_sigma * (a_even - mu * b_even)
    x2 = 0.25 * x * x

    def term(k, kf, carry):
        f, s, b, p, q, c, sum_f, sum_p, sum_q = carry
        inv = 1.0 / (kf * kf - mu2)
        f = (kf * f + s) * inv
        s, b = (kf * s + mu2 * b) * inv, (kf * b + s) * inv
        p = p * (kf + mu) * inv
        q = q * (kf - mu) * inv
        c = c * x2 * (1.0 / kf)
        cf = c * f
        return f, s, b, p, q, c, sum_f + cf, sum_p + c * p - kf * cf, sum_q + c * q - kf * cf

    carry = (f, s, b, p, q, jnp.ones_like(x), f, p, q)
    *_, sum_f, sum_p, sum_q = fixed_loop(1, _N_TEMME, term, carry, x.dtype, unroll)
    return jnp.log(sum_f), sum_p / sum_f, sum_q / sum_f
