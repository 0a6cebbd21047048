"""Special functions in log space."""

from ._bessel import (
    LogKvParts as LogKvParts,
)
from ._bessel import (
    log_kv as log_kv,
)
from ._bessel import (
    log_kv_fused as log_kv_fused,
)
from ._bessel import (
    log_kv_ratio as log_kv_ratio,
)
