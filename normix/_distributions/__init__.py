from ._gamma import Gamma as Gamma
from ._inverse_gamma import InverseGamma as InverseGamma
from ._inverse_gaussian import InverseGaussian as InverseGaussian
from ._normal import MultivariateNormal as MultivariateNormal
