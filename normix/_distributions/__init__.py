from ._gamma import Gamma as Gamma
from ._gig import GIG as GIG
from ._gig_functions import (
    gig_expectations as gig_expectations,
    gig_log_normalizer as gig_log_normalizer,
    gig_moment as gig_moment,
)
from ._gig_sampling import sample_gig as sample_gig
from ._gig_solver import (
    GIGNewtonSolver as GIGNewtonSolver,
    GIGSolution as GIGSolution,
    GIGSolverResult as GIGSolverResult,
    solve_gig_natural as solve_gig_natural,
    solve_gig_natural_fixed_p as solve_gig_natural_fixed_p,
)
from ._inverse_gamma import InverseGamma as InverseGamma
from ._inverse_gaussian import InverseGaussian as InverseGaussian
from ._normal import MultivariateNormal as MultivariateNormal
