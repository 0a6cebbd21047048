"""Fits called on concrete data: compiled without host callbacks, checked on the host.

`normix.fit` and `normix.fit_mixture` compile one program per model class and data shape,
and the compile dominates a first fit. JAX's persistent compilation cache can keep that
program across processes, but only if it holds no host callbacks, and Equinox's raising
run-time checks are host callbacks. When the inputs are concrete (no `jit` / `vmap` around
the call) the entry points therefore run [`call_with_host_checks`][]:

1. trace and run the program with checks in NaN mode (`normix._errors.checks_as_nan`) and
   `throw=False`: no host callbacks, so a persistent cache (if the user has one) stores it;
2. read the result code on the host. Every failed check ends a fit `nonfinite` (a NaN in
   the data, the weights, a parameter or the log-likelihood stops the loop), so:
3. if some fit ended `nonfinite`, run the raising program (compiled only now) and return
   its outcome: the same exception a traced call raises, or the same result;
4. if `throw` and the fit hit `max_steps`, raise the same `EquinoxRuntimeError` message.

Under a transformation the raising program runs directly, as before. The host path blocks
until the fit has finished (it reads the result code).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import equinox as eqx
import jax
import numpy as np

from .._errors import checks_as_nan, checks_as_nan_active
from ._results import EMResults

T = TypeVar("T")


def _codes(results: Any) -> Any:
    # the integer code(s) of `results.result` (an `eqx.Enumeration` item, maybe batched);
    # compared on the host, so that no comparison program is compiled
    return results.result._value  # pyright: ignore


def _any_code(results: Any, code: Any) -> bool:
    return bool(np.any(np.asarray(_codes(results)) == np.asarray(code._value)))


def call_with_host_checks(
    call: Callable[[bool], T],
    throw: bool,
    *,
    all_results: Callable[[T], Any] = lambda out: out,
    returned: Callable[[T], Any] = lambda out: out,
) -> T:
    """`call(throw)` (the compiled fit, in the current check mode), run as the module doc
    describes. `all_results(out)` gives every `EMResult` of the call (batched for
    multistart), `returned(out)` the one that `throw` applies to."""
    if checks_as_nan_active():  # the caller asked for NaN-mode checks (the CLI)
        return call(throw)
    with checks_as_nan():
        out = call(False)
    if isinstance(_codes(all_results(out)), jax.core.Tracer):  # inside `jit` after all
        return call(throw)
    if _any_code(all_results(out), EMResults.nonfinite):
        return call(throw)
    if throw and _any_code(returned(out), EMResults.max_steps_reached):
        raise eqx.EquinoxRuntimeError(EMResults[EMResults.max_steps_reached])
    return out
