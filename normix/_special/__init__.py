"""Special functions in log space."""

from ._bessel import log_kv as log_kv, log_kv_ratio as log_kv_ratio
