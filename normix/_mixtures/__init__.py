"""Normal variance-mean mixtures: joint laws (exponential families in (x, y)) and the
marginal laws that wrap them."""

from ._families import (
    GeneralizedHyperbolic as GeneralizedHyperbolic,
    Hyperbolic as Hyperbolic,
    NormalInverseGamma as NormalInverseGamma,
    NormalInverseGaussian as NormalInverseGaussian,
    StudentT as StudentT,
    VarianceGamma as VarianceGamma,
)
from ._factor import (
    AbstractFactorNormalMixture as AbstractFactorNormalMixture,
    FactorMixtureStats as FactorMixtureStats,
)
from ._factor_families import (
    FactorGeneralizedHyperbolic as FactorGeneralizedHyperbolic,
    FactorNormalInverseGamma as FactorNormalInverseGamma,
    FactorNormalInverseGaussian as FactorNormalInverseGaussian,
    FactorVarianceGamma as FactorVarianceGamma,
)
from ._joint import (
    AbstractJointNormalMixture as AbstractJointNormalMixture,
    JointGeneralizedHyperbolic as JointGeneralizedHyperbolic,
    JointNormalInverseGamma as JointNormalInverseGamma,
    JointNormalInverseGaussian as JointNormalInverseGaussian,
    JointVarianceGamma as JointVarianceGamma,
)
from ._marginal import AbstractNormalMixture as AbstractNormalMixture
from ._stats import NormalMixtureStats as NormalMixtureStats
