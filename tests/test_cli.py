"""The `normix` command end to end (via `normix._cli.main`) on small files in a temporary
folder: fit / select / score / sample / cluster, every bad-file case, and the demo on a
subset."""

import contextlib
import csv
from pathlib import Path

import numpy as np
import pytest
import scipy.stats as st

import normix
from normix import _cli


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    # no persistent cache in the user's home; keep Equinox raising errors, so the jitted
    # programs the CLI traces here are the same ones other tests use
    monkeypatch.setenv("NORMIX_NO_CACHE", "1")
    monkeypatch.setattr(_cli, "_host_checked_errors", contextlib.nullcontext)
    monkeypatch.setenv("MPLBACKEND", "Agg")


def _write(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        w.writerows(rows)
    return str(path)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    cov = np.array([[1.0, 0.6], [0.6, 2.0]])
    # (1000, 2), the shape of the demo test's stock data: the fits share compiled programs
    return rng.multivariate_normal([0.5, -1.0], cov, size=1000)


@pytest.fixture
def csv2(tmp_path, data):
    dates = np.datetime64("2020-01-01") + np.arange(len(data))
    rows = [[str(d), *(repr(float(v)) for v in r)] for d, r in zip(dates, data, strict=True)]
    return _write(tmp_path / "two.csv", ["Date", "a", "b"], rows)


def run(capsys, *argv):
    rc = _cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def test_fit_score_sample_gaussian_against_scipy(tmp_path, capsys, csv2, data):
    model = tmp_path / "g.nx"
    rc, out, _ = run(capsys, "fit", csv2, "--family", "gaussian", "--out", model, "-q")
    assert rc == 0, out
    assert f"model saved to {model}" in out
    m = normix.load(model)
    assert isinstance(m, normix.MultivariateNormal)
    # Gaussian MLE: sample mean and (biased) covariance; compare with scipy
    mu, cov = data.mean(0), np.cov(data.T, bias=True)
    np.testing.assert_allclose(np.asarray(m.mean()), mu, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.asarray(m.cov()), cov, rtol=1e-8, atol=1e-12)
    ref = st.multivariate_normal(mu, cov).logpdf(data)

    per_row = tmp_path / "lp.csv"
    rc, out, _ = run(capsys, "score", csv2, "--model", model, "--out", per_row)
    assert rc == 0
    assert f"total {ref.sum():.6f}" in out
    got = np.loadtxt(per_row, delimiter=",", skiprows=1)
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    k = 5
    assert f"BIC {-2 * ref.sum() + k * np.log(len(data)):.3f}" in out

    draws = tmp_path / "s.csv"
    rc, out, _ = run(capsys, "sample", "--model", model, "-n", 4000, "--seed", 3, "--out", draws)
    assert rc == 0
    s = np.loadtxt(draws, delimiter=",", skiprows=1)
    assert s.shape == (4000, 2)
    se = np.sqrt(np.diag(cov) / 4000)
    assert np.all(np.abs(s.mean(0) - mu) < 5 * se)
    # to stdout when no --out, headed by the fitted file's column names
    rc, out, _ = run(capsys, "sample", "--model", model, "-n", 3)
    assert rc == 0 and out.splitlines()[0] == "a,b" and len(out.splitlines()) == 4


def test_saved_model_remembers_scale_and_columns(tmp_path, capsys, data):
    """`fit --scale` stores the scale and column names with the model; `score` applies
    the stored scale, keeps `--drop-nan` rows aligned and scores any number of rows;
    `sample` uses the names and, with `--original-units`, the scale."""
    rows = [[repr(float(v)) for v in r] for r in data / 100]
    path = _write(tmp_path / "pct.csv", ["u", "v"], rows)
    model = tmp_path / "m.nx"
    rc, out, _ = run(capsys, "fit", path, "-f", "gaussian", "--scale", "100", "-o", model, "-q")
    assert rc == 0, out
    info = normix.describe(model)["info"]
    assert info == {"columns": ["u", "v"], "scale": 100.0, "data": "pct.csv"}
    mu, cov = data.mean(0), np.cov(data.T, bias=True)  # the fitted (scaled) units

    # new data with a missing value and only three usable rows; no --scale given
    new = [rows[0], ["", rows[1][1]], rows[2], rows[3]]
    new_path = _write(tmp_path / "new.csv", ["u", "v"], new)
    per_row = tmp_path / "lp.csv"
    rc, out, _ = run(capsys, "score", new_path, "-m", model, "--drop-nan", "-o", per_row)
    assert rc == 0, out
    assert "--scale 100 taken from the model file" in out
    ref = st.multivariate_normal(mu, cov).logpdf(data[[0, 2, 3]])
    assert f"total {ref.sum():.6f}" in out
    with open(per_row, newline="") as f:
        lines = [r[0] for r in csv.reader(f)]
    assert lines[0] == "log_density" and lines[2] == ""  # the dropped row keeps its place
    got = np.array([float(lines[i]) for i in (1, 3, 4)])
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    # an explicit --scale wins over the stored one
    rc, out, _ = run(capsys, "score", new_path, "-m", model, "--drop-nan", "--scale", "1")
    assert rc == 0 and "taken from the model file" not in out
    assert f"total {st.multivariate_normal(mu, cov).logpdf(data[[0, 2, 3]] / 100).sum():.6f}" in out
    # other column names: scored in file order, with a warning
    renamed = _write(tmp_path / "renamed.csv", ["v", "u"], [rows[0], rows[2]])
    rc, out, _ = run(capsys, "score", renamed, "-m", model)
    assert rc == 0 and "warning: the columns of" in out and "(u, v)" in out

    draws = tmp_path / "d.csv"
    rc, _, err = run(capsys, "sample", "-m", model, "-n", 2000, "--original-units", "-o", draws)
    assert rc == 0 and "fitted units" not in err
    with open(draws) as f:
        assert f.readline().strip() == "u,v"
    s = np.loadtxt(draws, delimiter=",", skiprows=1)
    se = np.sqrt(np.diag(cov) / 2000) / 100
    assert np.all(np.abs(s.mean(0) - mu / 100) < 5 * se)
    rc, _, err = run(capsys, "sample", "-m", model, "-n", 2)
    assert rc == 0 and "draws are in the fitted units (the data times 100)" in err


def test_select_ranks_and_saves_best(tmp_path, capsys, csv2, data):
    best = tmp_path / "best.nx"
    rc, out, _ = run(
        capsys, "select", csv2, "--families", "gaussian,t", "--criterion", "aic", "-o", best, "-q"
    )
    assert rc == 0, out
    lines = [ln for ln in out.splitlines() if ln.startswith(("Gaussian", "Student-t"))]
    assert len(lines) == 2
    aics = [float(ln.split()[3]) for ln in lines]
    assert aics == sorted(aics)  # ranked, best first
    assert f"best by AIC: {lines[0].split()[0]}" in out
    assert best.exists()
    # Gaussian data: the Gaussian is the Student-t's nu -> inf limit, so the two total
    # log-likelihoods differ by a few nats at most (the t fit stops at a large finite nu)
    ll = {ln.split()[0]: float(ln.split()[1]) for ln in lines}
    assert abs(ll["Student-t"] - ll["Gaussian"]) * len(data) < 3.0


def test_cluster_finds_two_groups(tmp_path, capsys):
    rng = np.random.default_rng(5)
    a = rng.normal([0, 0], 0.5, size=(80, 2))
    b = rng.normal([4, 4], 0.5, size=(70, 2))
    rows = np.vstack([a, b]).tolist()
    rows.insert(5, ["nan", 1.0])  # dropped; its label row stays empty
    path = _write(tmp_path / "blobs.csv", ["u", "v"], rows)
    labels = tmp_path / "labels.csv"
    argv = ("cluster", path, "-k", "2..3", "--n-init", 1, "--drop-nan", "-o", labels, "-q")
    rc, out, _ = run(capsys, *argv)
    assert rc == 0, out
    assert "best K = 2" in out
    with open(labels, newline="") as f:
        lines = [r[0] for r in csv.reader(f)][1:]
    assert len(lines) == 151 and lines[5] == ""
    lab = np.array([int(v) for i, v in enumerate(lines) if i != 5])
    truth = np.r_[np.zeros(80, int), np.ones(70, int)]
    agree = max(np.mean(lab == truth), np.mean(lab == 1 - truth))
    assert agree == 1.0
    rc, _, err = run(capsys, "cluster", path, "-k", "5..2")
    assert rc == 2 and "needs A <= B" in err


# ------------------------------------------------------------------------- bad files
def test_missing_file(capsys, tmp_path):
    rc, _, err = run(capsys, "fit", tmp_path / "nope.csv")
    assert rc == 2 and "nope.csv: no such file" in err


def test_non_numeric_column_is_named(capsys, tmp_path):
    rows = [["1.0", "x", "2.0"], ["2.0", "y", "3.0"], ["0.5", "z", "1.0"]]
    path = _write(tmp_path / "bad.csv", ["a", "sector", "b"], rows * 5)
    rc, _, err = run(capsys, "fit", path, "--family", "gaussian")
    assert rc == 2
    assert "non-numeric column 'sector' (line 2: 'x')" in err


def test_nan_rows_counted_and_dropped(capsys, tmp_path, data):
    rows = [[repr(float(v)) for v in r] for r in data]
    rows[3][0] = "NaN"
    rows[10][1] = ""
    rows[20][0] = "inf"
    path = _write(tmp_path / "nan.csv", ["a", "b"], rows)
    rc, _, err = run(capsys, "fit", path, "--family", "gaussian")
    assert rc == 2
    assert "3 rows of 1000 contain missing, NaN or infinite values (lines 5, 12, 22)" in err
    assert "--drop-nan" in err
    out_model = tmp_path / "m.nx"
    rc, out, _ = run(capsys, "fit", path, "-f", "gaussian", "--drop-nan", "-o", out_model, "-q")
    assert rc == 0
    assert "dropped 3 rows" in out
    keep = np.ones(1000, bool)
    keep[[3, 10, 20]] = False
    np.testing.assert_allclose(
        np.asarray(normix.load(out_model).mean()), data[keep].mean(0), rtol=1e-10
    )


def test_too_few_rows_for_dimension(capsys, tmp_path):
    path = _write(tmp_path / "few.csv", ["a", "b", "c"], [[1, 2, 3], [2, 1, 0], [0, 1, 1]])
    rc, _, err = run(capsys, "fit", path)
    assert rc == 2
    assert "3 usable rows for 3 columns" in err and "at least 4 rows" in err


def test_other_bad_inputs(capsys, tmp_path, csv2):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    rc, _, err = run(capsys, "fit", empty)
    assert rc == 2 and "empty" in err
    ragged = _write(tmp_path / "ragged.csv", ["a", "b"], [[1, 2], [3], [4, 5]])
    rc, _, err = run(capsys, "fit", ragged)
    assert rc == 2 and "line 3 has 1 fields" in err
    const = _write(tmp_path / "const.csv", ["a", "b"], [[i, 1.0] for i in range(10)])
    rc, _, err = run(capsys, "fit", const)
    assert rc == 2 and "constant column 'b'" in err
    rc, _, err = run(capsys, "fit", csv2, "--family", "cauchy")
    assert rc == 2 and "unknown family 'cauchy'" in err
    rc, _, err = run(capsys, "cluster", csv2, "-k", "two")
    assert rc == 2 and "-k" in err
    # a model file that is not one
    fake = tmp_path / "fake.nx"
    fake.write_bytes(b"not a model")
    rc, _, err = run(capsys, "score", csv2, "--model", fake)
    assert rc == 2 and "not a normix model file" in err
    rc, _, err = run(capsys, "sample", "--model", tmp_path / "none.nx")
    assert rc == 2 and "no such model file" in err


def test_bad_options_fail_before_fitting(capsys, tmp_path, csv2):
    """Out-of-range numbers are argparse errors and a missing output folder is reported
    before anything is fitted: exit status 2 and one `normix: error` line, no traceback."""
    for argv, words in (
        (("fit", csv2, "--max-steps", "-1"), "--max-steps: must be >= 0"),
        (("cluster", csv2, "-k", "2", "--n-init", "0"), "--n-init: must be >= 1"),
        (("fit", csv2, "--scale", "0"), "--scale: must be finite and non-zero"),
        (("fit", csv2, "--scale", "nan"), "--scale: must be finite and non-zero"),
    ):
        with pytest.raises(SystemExit) as exc:
            run(capsys, *argv)
        assert exc.value.code == 2 and words in capsys.readouterr().err
    missing = tmp_path / "no" / "such" / "m.nx"
    rc, _, err = run(capsys, "fit", csv2, "--out", missing)
    assert rc == 2 and "does not exist" in err and "Traceback" not in err
    rc, _, err = run(capsys, "cluster", csv2, "-k", "2", "--model-out", tmp_path)
    assert rc == 2 and "is a folder" in err


def test_save_info_must_be_json(tmp_path):
    m = normix.MultivariateNormal(np.zeros(2), np.eye(2))
    with pytest.raises(TypeError, match="JSON values"):
        normix.save(tmp_path / "m.nx", m, info={"scale": float("nan")})
    with pytest.raises(TypeError, match="string keys"):
        normix.save(tmp_path / "m.nx", m, info={1: "a"})
    normix.save(tmp_path / "m.nx", m)
    assert normix.describe(tmp_path / "m.nx")["info"] is None


def test_score_dimension_mismatch(capsys, tmp_path, csv2):
    m = normix.MultivariateNormal(np.zeros(3), np.eye(3))
    normix.save(tmp_path / "m3.nx", m)
    rc, _, err = run(capsys, "score", csv2, "--model", tmp_path / "m3.nx")
    assert rc == 2 and "2 numeric columns but the model" in err and "3-dimensional" in err


def test_help_and_version(capsys):
    rc, out, _ = run(capsys)
    assert rc == 0 and "normix demo" in out
    with pytest.raises(SystemExit) as e:
        _cli.main(["--version"])
    assert e.value.code == 0
    assert normix.__version__ in capsys.readouterr().out


def test_demo_on_a_subset(capsys, tmp_path):
    out_dir = tmp_path / "demo"
    rc, out, err = run(
        capsys, "demo", "--quick", "--families", "gaussian,student-t", "--out", out_dir
    )
    assert rc == 0, err
    assert "S&P 500 index, n=1000, d=1:" in out
    assert "2 S&P 500 stocks, n=1000, d=2:" in out
    # progress display: one line per fit, in the order the fits finish
    assert "fitting 4 models" in err and "[4/4] fitted " in err
    for fam in ("Gaussian", "Student-t"):
        for data in ("S&P 500 index", "2 stocks"):
            assert f"fitted {fam} to {data}" in err
    table = [ln for ln in out.splitlines() if ln.startswith(("Gaussian", "Student-t"))]
    assert len(table) == 4
    # fat tails: Student-t beats the Gaussian by a wide margin on both data sets
    ll = [float(ln.split()[1]) for ln in table]
    assert ll[1] > ll[0] + 0.05 and ll[3] > ll[2] + 0.05
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed" in out
        return
    assert f"plots written to {out_dir.resolve()}" in out
    pngs = sorted(p.name for p in Path(out_dir).glob("*.png"))
    assert pngs == [
        "index_density.png",
        "index_em_trace.png",
        "index_qq.png",
        "stocks_contour_JPM_BAC.png",
    ]
    for p in Path(out_dir).glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000
