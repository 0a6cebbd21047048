r"""Mixing laws for normal variance-mean mixtures.

In $X \mid Y \sim N(\mu + \gamma Y, \Sigma Y)$ the mixing law of $Y > 0$ is a special case
of the generalized inverse Gaussian $\mathrm{GIG}(p, a, b)$, density
$\propto y^{p-1} e^{-(a y + b / y)/2}$:

| family | GIG form |
|---|---|
| `Gamma(shape, rate)` | $\mathrm{GIG}(\text{shape}, 2\,\text{rate}, 0)$ |
| `InverseGamma(shape, rate)` | $\mathrm{GIG}(-\text{shape}, 0, 2\,\text{rate})$ |
| `InverseGaussian(mean, shape)` | $\mathrm{GIG}(-1/2, \text{shape}/\text{mean}^2, \text{shape})$ |
| `GIG(p, a, b)` | itself |

The posterior $Y \mid x$ is always a GIG, so the mixture E-step produces the three GIG
statistics $(\mathbb{E}\log Y, \mathbb{E}\,Y^{-1}, \mathbb{E}\,Y)$ and each subordinator
takes from them the ones its own M-step needs.
"""

from __future__ import annotations

import abc
from typing import ClassVar, Self

from jaxtyping import Array, Float

from ._exponential_family import AbstractExponentialFamily


class AbstractSubordinator(AbstractExponentialFamily):
    """A positive exponential family that is a (limit) case of the GIG."""

    event_ndim: ClassVar[int] = 0
    uses_log_statistic: ClassVar[bool] = True
    r"""Whether $\log y$ is among the sufficient statistics (so the mixture E-step must
    compute $\mathbb{E}[\log Y \mid x]$, which costs a $\partial_p$ of $\log K_p$)."""
    fixed_p: ClassVar[float | None] = None
    r"""The GIG $p$ when it is a constant of the family ($-1/2$ for the inverse Gaussian),
    else `None`. Then the posterior order $p - d/2$ is known at trace time and, when it is
    an integer or half-integer, the E-step uses the closed-form/series Bessel path
    (`log_kv_fixed_order`)."""

    @abc.abstractmethod
    def gig_params(self) -> tuple[Float[Array, ""], Float[Array, ""], Float[Array, ""]]:
        """$(p, a, b)$ of the equal GIG law; $a = 0$ or $b = 0$ at the limits."""

    @abc.abstractmethod
    def log_gig_normalizer(self) -> Float[Array, ""]:
        r"""$\log Z(p, a, b) = \log\int_0^\infty y^{p-1} e^{-(ay + b/y)/2}\,dy$ at this law's
        `gig_params()`: the normalizer of its GIG form (the term a mixture density divides
        by). Closed form for Gamma and InverseGamma, the fixed-order Bessel path for the
        inverse Gaussian, the general one for the GIG."""

    @abc.abstractmethod
    def cumulants(self) -> tuple[Array, Array, Array, Array]:
        r"""The cumulants $\kappa_1, \dots, \kappa_4$ of $Y$ ($\kappa_1$ the mean,
        $\kappa_2$ the variance, $\kappa_3$ the third central moment, $\kappa_4 =
        \mu_4 - 3\kappa_2^2$), $+\infty$ where $\mathbb{E}Y^n$ is infinite.

        The normal-mixture moments are built from these. Gamma, InverseGamma and
        InverseGaussian give closed forms, free of cancellation for nearly degenerate
        laws (large shapes: the Gaussian limit); the GIG takes them from its raw moments
        $\mathbb{E}Y^n$ (`gig_cumulants`), and near its degenerate limit ($\sqrt{ab}$
        large), where those cancel, from Hankel's expansion of $K_p$."""

    @classmethod
    @abc.abstractmethod
    def from_gig_expectation(
        cls, eta_gig: Float[Array, " 3"], theta0: Float[Array, " k"] | None = None
    ) -> Self:
        r"""The M-step given $(\mathbb{E}\log Y, \mathbb{E}\,Y^{-1}, \mathbb{E}\,Y)$.

        Uses the statistics that are sufficient for this family and ignores the others.
        `theta0` (this family's natural parameters) is a warm start for iterative solves.
        """
