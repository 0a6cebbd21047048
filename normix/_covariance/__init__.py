"""Covariance operators: structured symmetric positive-definite matrices."""

from ._abstract import AbstractCovariance as AbstractCovariance
from ._dense import DenseCovariance as DenseCovariance
from ._low_rank import LowRankPlusDiagonal as LowRankPlusDiagonal
