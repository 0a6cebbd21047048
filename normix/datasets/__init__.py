r"""Real data bundled with normix, for examples, the `normix demo` command and tests.

**Provenance.** Daily log returns $r_t = \log P_t - \log P_{t-1}$ computed from the
price tables bundled with the BSD-3-licensed `skfolio` package
(`skfolio/datasets/data/*.csv.gz`, originally public Yahoo Finance quotes), 1990-01-03 to
2022-12-28, 8312 trading days, no missing values:

* `sp500_index()`: the S&P 500 index (one column, `SP500`);
* `sp500_stocks()`: 20 large S&P 500 stocks (AAPL, AMD, BAC, BBY, CVX, GE, HD, JNJ, JPM,
  KO, LLY, MRK, MSFT, PEP, PFE, PG, RRC, UNH, WMT, XOM).

The tails are real: one stock has a single-day log return above 1 (i.e. above +170 %).
The files are gzipped CSVs (`Date` first, one column per series) under
`normix/datasets/data/`; they are read with NumPy (this is I/O glue, not a hot path).
"""

import dataclasses
import gzip
from importlib import resources

import numpy as np

__all__ = ["Returns", "sp500", "sp500_index", "sp500_stocks", "data_path"]

_FILES = {
    "index": "sp500_index_log_returns.csv.gz",
    "stocks": "sp500_20_log_returns.csv.gz",
}


@dataclasses.dataclass(frozen=True)
class Returns:
    """A table of daily log returns.

    * `values`: float64 array of shape `(n, d)` (multiplied by `scale`);
    * `dates`: `numpy.datetime64[D]` array of shape `(n,)`;
    * `columns`: the `d` series names;
    * `scale`: the factor applied to the raw log returns (100 gives percent).
    """

    values: np.ndarray
    dates: np.ndarray
    columns: tuple[str, ...]
    scale: float

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape  # type: ignore[return-value]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.values if dtype is None else self.values.astype(dtype)


def data_path(kind: str) -> str:
    """The file system path of a bundled file (`kind` is `"index"` or `"stocks"`)."""
    if kind not in _FILES:
        raise ValueError(f"normix.datasets: `kind` must be 'index' or 'stocks', got {kind!r}.")
    return str(resources.files(__name__).joinpath("data", _FILES[kind]))


_CACHE: dict[str, tuple[np.ndarray, np.ndarray, tuple[str, ...]]] = {}


def _read(kind: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    if kind not in _CACHE:
        path = data_path(kind)
        with gzip.open(path, "rt", encoding="ascii") as f:
            header = f.readline().strip().split(",")
            raw = np.loadtxt(f, delimiter=",", dtype=str, ndmin=2)
        dates = raw[:, 0].astype("datetime64[D]")
        values = raw[:, 1:].astype(np.float64)
        values.setflags(write=False)
        dates.setflags(write=False)
        _CACHE[kind] = (values, dates, tuple(header[1:]))
    return _CACHE[kind]


def sp500(kind: str = "index", *, scale: float = 100.0) -> Returns:
    """S&P 500 daily log returns, 1990-01-03 to 2022-12-28 (n = 8312).

    **Arguments:**

    - `kind`: `"index"` (the S&P 500 index, d = 1) or `"stocks"` (20 stocks, d = 20).
    - `scale`: multiply the log returns by this (default 100: percent, the units the
      normix benchmarks and reference optima use).

    **Returns:** a `Returns` table (`.values` of shape `(8312, d)`, `.dates`,
    `.columns`); `numpy.asarray(table)` gives the values.
    """
    if not (isinstance(scale, int | float) and np.isfinite(scale) and scale > 0):
        raise ValueError(
            f"normix.datasets.sp500: `scale` must be a positive number, got {scale!r}."
        )
    values, dates, columns = _read(kind)
    return Returns(values=values * float(scale), dates=dates, columns=columns, scale=float(scale))


def sp500_index(*, scale: float = 100.0) -> Returns:
    """The S&P 500 index daily log returns (d = 1); `sp500("index", scale=scale)`."""
    return sp500("index", scale=scale)


def sp500_stocks(*, scale: float = 100.0) -> Returns:
    """Daily log returns of 20 S&P 500 stocks (d = 20); `sp500("stocks", scale=scale)`."""
    return sp500("stocks", scale=scale)
