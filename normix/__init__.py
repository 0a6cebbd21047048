"""normix: exponential families, generalized hyperbolic laws and EM in JAX + Equinox."""

from ._distributions import (
    Gamma as Gamma,
    InverseGamma as InverseGamma,
    InverseGaussian as InverseGaussian,
    MultivariateNormal as MultivariateNormal,
)
from ._exponential_family import (
    AbstractExponentialFamily as AbstractExponentialFamily,
    expectation_by_autodiff as expectation_by_autodiff,
)
from ._version import __version__ as __version__
