# ruff: noqa: F722  (jaxtyping shape strings)
"""Finite mixtures: K components of one family (Gaussian or GH), fitted by EM."""

from ._components import AbstractComponents as AbstractComponents
from ._fit import fit_mixture as fit_mixture
from ._fit import initial_mixture as initial_mixture
from ._gaussian import GaussianComponents as GaussianComponents
from ._gaussian import GaussianStats as GaussianStats
from ._init import kmeans_plus_plus as kmeans_plus_plus
from ._mixture import FiniteMixture as FiniteMixture
from ._mixture import MixtureStats as MixtureStats
from ._select import (
    MixtureCandidate as MixtureCandidate,
)
from ._select import (
    MixtureSelection as MixtureSelection,
)
from ._select import (
    select_mixture as select_mixture,
)
from ._solver import MixtureEM as MixtureEM
from ._stacked import StackedComponents as StackedComponents
from ._stacked import stack_components as stack_components
