"""normix: exponential families, generalized hyperbolic laws and EM in JAX + Equinox."""

from ._codegen import cpu_codegen as cpu_codegen, set_cpu_codegen as set_cpu_codegen
from ._covariance import (
    AbstractCovariance as AbstractCovariance,
    DenseCovariance as DenseCovariance,
    LowRankPlusDiagonal as LowRankPlusDiagonal,
)
from ._distributions import (
    GIG as GIG,
    GIGNewtonSolver as GIGNewtonSolver,
    GIGSolverResult as GIGSolverResult,
    Gamma as Gamma,
    InverseGamma as InverseGamma,
    InverseGaussian as InverseGaussian,
    MultivariateNormal as MultivariateNormal,
    gig_expectations as gig_expectations,
    gig_log_normalizer as gig_log_normalizer,
    gig_moment as gig_moment,
    sample_gig as sample_gig,
    solve_gig_natural as solve_gig_natural,
    solve_gig_natural_fixed_p as solve_gig_natural_fixed_p,
)
from ._exponential_family import (
    AbstractExponentialFamily as AbstractExponentialFamily,
    expectation_by_autodiff as expectation_by_autodiff,
)
from ._em_model import (
    AbstractECMModel as AbstractECMModel,
    AbstractEMModel as AbstractEMModel,
    AbstractFusedEMModel as AbstractFusedEMModel,
    AbstractPreparedDataEMModel as AbstractPreparedDataEMModel,
)
from ._fitting import (
    ECM as ECM,
    EM as EM,
    SQUAREM as SQUAREM,
    AbstractEMSolver as AbstractEMSolver,
    EMResult as EMResult,
    EMResults as EMResults,
    aic as aic,
    bic as bic,
    fit as fit,
    fit_multistart as fit_multistart,
)
from ._mixtures import (
    AbstractFactorNormalMixture as AbstractFactorNormalMixture,
    FactorGeneralizedHyperbolic as FactorGeneralizedHyperbolic,
    FactorMixtureStats as FactorMixtureStats,
    FactorNormalInverseGamma as FactorNormalInverseGamma,
    FactorNormalInverseGaussian as FactorNormalInverseGaussian,
    FactorVarianceGamma as FactorVarianceGamma,
)
from ._mixtures import (
    AbstractJointNormalMixture as AbstractJointNormalMixture,
    AbstractNormalMixture as AbstractNormalMixture,
    GeneralizedHyperbolic as GeneralizedHyperbolic,
    Hyperbolic as Hyperbolic,
    JointGeneralizedHyperbolic as JointGeneralizedHyperbolic,
    JointNormalInverseGamma as JointNormalInverseGamma,
    JointNormalInverseGaussian as JointNormalInverseGaussian,
    JointVarianceGamma as JointVarianceGamma,
    NormalInverseGamma as NormalInverseGamma,
    NormalInverseGaussian as NormalInverseGaussian,
    NormalMixtureStats as NormalMixtureStats,
    StudentT as StudentT,
    VarianceGamma as VarianceGamma,
)
from ._finite import (
    AbstractComponents as AbstractComponents,
    FiniteMixture as FiniteMixture,
    GaussianComponents as GaussianComponents,
    MixtureCandidate as MixtureCandidate,
    MixtureEM as MixtureEM,
    MixtureSelection as MixtureSelection,
    StackedComponents as StackedComponents,
    fit_mixture as fit_mixture,
    select_mixture as select_mixture,
)
from ._special import log_kv as log_kv, log_kv_ratio as log_kv_ratio
from ._selection import CandidateFit as CandidateFit, Selection as Selection, select as select
from ._version import __version__ as __version__
from . import datasets as datasets
from ._io import (
    NormixFileError as NormixFileError,
    describe as describe,
    load as load,
    save as save,
)
