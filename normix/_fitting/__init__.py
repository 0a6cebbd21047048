"""Fitting: the generic EM driver, EM solver strategies, information criteria."""

from ._criteria import aic as aic, bic as bic
from ._driver import (
    EMResult as EMResult,
    fit as fit,
    fit_multistart as fit_multistart,
    validate_data as validate_data,
)
from ._results import EMResults as EMResults
from ._squarem import SQUAREM as SQUAREM
from ._solvers import (
    ECM as ECM,
    EM as EM,
    AbstractCauchyEMSolver as AbstractCauchyEMSolver,
    AbstractEMSolver as AbstractEMSolver,
    Termination as Termination,
    e_step_and_log_likelihood as e_step_and_log_likelihood,
)
