"""Bundled S&P 500 data: exact agreement with the source CSVs, shapes, dates, errors."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

import normix
from normix import datasets

SHARED = Path(
    os.environ.get("NORMIX_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
if not SHARED.exists():
    SHARED = Path("/work/shared/data")


def _csv(name):
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} not available")
    with open(path) as f:
        header = f.readline().strip().split(",")
    raw = np.loadtxt(path, delimiter=",", skiprows=1, dtype=str, ndmin=2)
    return header, raw


@pytest.mark.parametrize(
    "kind,name,d",
    [("index", "sp500_index_log_returns.csv", 1), ("stocks", "sp500_20_log_returns.csv", 20)],
)
def test_bundled_data_equal_source(kind, name, d):
    header, raw = _csv(name)
    table = datasets.sp500(kind, scale=1.0)
    assert table.values.shape == (8312, d)
    assert table.values.dtype == np.float64
    assert table.columns == tuple(header[1:])
    np.testing.assert_array_equal(table.values, raw[:, 1:].astype(np.float64))
    np.testing.assert_array_equal(table.dates, raw[:, 0].astype("datetime64[D]"))


def test_scale_units_and_helpers():
    idx = datasets.sp500_index()
    raw = datasets.sp500("index", scale=1.0)
    np.testing.assert_allclose(idx.values, 100.0 * raw.values, rtol=0, atol=0)
    assert idx.scale == 100.0 and np.asarray(idx).shape == (8312, 1)
    stocks = datasets.sp500_stocks()
    assert stocks.shape == (8312, 20)
    assert stocks.columns[0] == "AAPL" and stocks.columns[-1] == "XOM"
    assert str(stocks.dates[0]) == "1990-01-03" and str(stocks.dates[-1]) == "2022-12-28"
    assert np.all(np.diff(stocks.dates).astype(int) > 0)
    assert np.all(np.isfinite(stocks.values))
    # fat tails are real: one stock has a daily log return above 1 (100 %)
    assert np.max(np.abs(raw_stocks := datasets.sp500("stocks", scale=1.0).values)) > 1.0
    assert raw_stocks.shape == (8312, 20)
    assert normix.datasets is datasets


def test_package_file_is_gzip_and_errors():
    with gzip.open(datasets.data_path("index"), "rt") as f:
        assert f.readline().strip() == "Date,SP500"
    with pytest.raises(ValueError, match="'index' or 'stocks'"):
        datasets.sp500("bonds")
    with pytest.raises(ValueError, match="positive"):
        datasets.sp500("index", scale=-1.0)
