"""Special functions in log space."""

from ._bessel import (
    LogKvParts as LogKvParts,
    log_kv as log_kv,
    log_kv_fused as log_kv_fused,
    log_kv_ratio as log_kv_ratio,
)
