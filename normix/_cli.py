"""The `normix` command line: fit, compare, score, sample and cluster data in CSV files.

    normix demo                                   # bundled S&P 500 data, no arguments
    normix fit FILE.csv --family gh --out model.nx
    normix select FILE.csv
    normix score FILE.csv --model model.nx
    normix sample --model model.nx -n 1000
    normix cluster FILE.csv -k 2..8

CSV files: one observation per row, one numeric column per dimension, an optional header
row; a first column of dates (or named date/time/index) is read as row labels.
"""

import argparse
import concurrent.futures
import contextlib
import contextvars
import csv
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ._version import __version__

FAMILIES: dict[str, str] = {
    "gaussian": "MultivariateNormal",
    "student-t": "StudentT",
    "skew-t": "NormalInverseGamma",
    "nig": "NormalInverseGaussian",
    "vg": "VarianceGamma",
    "hyperbolic": "Hyperbolic",
    "gh": "GeneralizedHyperbolic",
}
_ALIASES = {
    "normal": "gaussian",
    "mvn": "gaussian",
    "t": "student-t",
    "studentt": "student-t",
    "skewt": "skew-t",
    "ninvg": "skew-t",
    "normal-inverse-gamma": "skew-t",
    "normal-inverse-gaussian": "nig",
    "variance-gamma": "vg",
    "generalized-hyperbolic": "gh",
}
LABELS = {
    "gaussian": "Gaussian",
    "student-t": "Student-t",
    "skew-t": "skew-t",
    "nig": "NIG",
    "vg": "VG",
    "hyperbolic": "hyperbolic",
    "gh": "GH",
}
DEMO_FAMILIES = ("gaussian", "student-t", "skew-t", "nig", "vg", "gh")
_LABEL_HEADERS = {"", "date", "time", "datetime", "timestamp", "index", "id"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T].*)?$")
_MISSING = {"", "na", "nan", "n/a", "null", "none", "-"}


class CLIError(Exception):
    """A user-facing error: printed as `normix: error: ...`, exit status 2."""


# ---------------------------------------------------------------------------- helpers
def _int_at_least(low: int):
    """An argparse type: an int >= `low` (argparse reports anything else, exit status 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def _scale(text: str) -> float:
    """An argparse type: a finite, non-zero float."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value == 0:
        raise argparse.ArgumentTypeError(f"must be finite and non-zero, got {text}")
    return value


def _check_output_paths(args: argparse.Namespace) -> None:
    """Fail before any fitting if an output file cannot be created (missing folder)."""
    if args.command == "demo":
        return
    for name in ("out", "model_out"):
        path = getattr(args, name, None)
        if path is None:
            continue
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise CLIError(f"cannot write {path}: the folder {folder} does not exist.")
        if os.path.isdir(path):
            raise CLIError(f"cannot write {path}: it is a folder; give a file name.")


def _family(name: str) -> str:
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in FAMILIES:
        raise CLIError(f"unknown family {name!r}; choose from {', '.join(FAMILIES)}.")
    return key


def _family_list(text: str) -> list[str]:
    out = [_family(s) for s in text.split(",") if s.strip()]
    if not out:
        raise CLIError("--families is empty.")
    return list(dict.fromkeys(out))


_FAST_COMPILE_FLAG = "--xla_cpu_use_fusion_emitters=false"


def _prefer_fast_compilation() -> None:
    """Ask XLA:CPU for its older loop-fusion code generator, which compiles the EM programs
    about 30-45% faster and runs them about 1.7x slower: the right trade for a command whose
    fits are compile-bound (seconds of EM, tens of seconds of compiling). Effective only
    before JAX's backend starts; the user's `XLA_FLAGS` win, and `NORMIX_XLA_DEFAULTS=1`
    keeps XLA's defaults. With the flag global, normix's two code-generation tiers would
    compile the same code, so the library is told to stay on the first
    (`NORMIX_CPU_CODEGEN=fast_compile`, unless the user set it)."""
    if os.environ.get("NORMIX_XLA_DEFAULTS", "0") == "1":
        return
    os.environ.setdefault("NORMIX_CPU_CODEGEN", "fast_compile")
    flags = os.environ.get("XLA_FLAGS", "")
    if _FAST_COMPILE_FLAG.split("=")[0] not in flags:
        os.environ["XLA_FLAGS"] = (flags + " " + _FAST_COMPILE_FLAG).strip()


def _setup_jax(cache: bool = True) -> Any:
    """float64 JAX, compile-time-favouring XLA flags (`_prefer_fast_compilation`) and a
    persistent compilation cache (see `_cache_dir`) unless disabled."""
    _prefer_fast_compilation()
    import jax

    jax.config.update("jax_enable_x64", True)
    if cache and os.environ.get("NORMIX_NO_CACHE", "") in ("", "0"):
        d = _cache_dir()
        try:
            d.mkdir(parents=True, exist_ok=True)
            jax.config.update("jax_compilation_cache_dir", str(d))
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
        except OSError:
            pass  # read-only home: run without the cache
    return jax


def _cache_dir() -> Path:
    """`$NORMIX_CACHE_DIR`, else `$XDG_CACHE_HOME/normix/jax`, else `~/.cache/normix/jax`."""
    if os.environ.get("NORMIX_CACHE_DIR"):
        return Path(os.environ["NORMIX_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "normix" / "jax"


@contextlib.contextmanager
def _host_checked_errors() -> Iterator[None]:
    """Inside: normix's run-time checks return NaN instead of raising through a host
    callback (`normix._errors.checks_as_nan`). The CLI checks its data on the host first
    (finite, enough rows) and fits with `throw=False`, reading the result code; without
    host callbacks its compiled programs (fits, densities, samplers) can be stored in JAX's
    persistent compilation cache, so a second run does not recompile. A NaN produced this
    way ends a fit with the `nonfinite` code, which the CLI reports."""
    from ._errors import checks_as_nan

    with checks_as_nan():
        yield


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


class CSVData(NamedTuple):
    """The numeric part of a CSV file: `X` (kept rows, times `scale`), the column `names`,
    whether the file has a `header` row, and `kept`, one flag per data row of the file
    (False for a row dropped by `--drop-nan`), so per-row outputs can be written back
    aligned with the file."""

    X: np.ndarray
    names: list[str]
    has_header: bool
    kept: np.ndarray

    @property
    def n_dropped(self) -> int:
        return int(np.sum(~self.kept))

    def aligned(self, values: np.ndarray) -> list[list[Any]]:
        """Rows for a CSV with one row per data row of the file: `values` (one per kept
        row) in place, an empty field for a dropped row."""
        out: list[list[Any]] = [[""] for _ in range(len(self.kept))]
        for i, v in zip(np.flatnonzero(self.kept), values, strict=True):
            out[i] = [v.item() if isinstance(v, np.generic) else v]
        return out


def read_csv(
    path: str | os.PathLike, *, drop_nan: bool = False, scale: float = 1.0, for_fit: bool = True
) -> CSVData:
    """Read a numeric CSV as an `(n, d)` float64 array.

    Raises `CLIError` naming the problem: missing or empty file, non-numeric columns
    (named, with the first bad row), rows with missing values (counted; dropped when
    `drop_nan`), and, when the data are to be fitted (`for_fit`), too few rows for the
    dimension or a constant column. Scoring data (`for_fit=False`) may have any number
    of rows.
    """
    p = Path(path)
    if not p.exists():
        raise CLIError(f"{path}: no such file.")
    if p.is_dir():
        raise CLIError(f"{path}: is a directory, not a CSV file.")
    try:
        with open(p, newline="", encoding="utf-8-sig") as f:
            sample = f.read(65536)
            f.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t ")
                delim = dialect.delimiter
            except csv.Error:
                delim = ","
            rows = [r for r in csv.reader(f, delimiter=delim) if any(c.strip() for c in r)]
    except UnicodeDecodeError as e:
        raise CLIError(f"{path}: not a text CSV file ({e.reason}).") from e
    if not rows:
        raise CLIError(f"{path}: the file is empty.")
    first = [c.strip() for c in rows[0]]
    has_header = not all(_is_number(c) or c.lower() in _MISSING for c in first)
    header = first if has_header else [f"x{i + 1}" for i in range(len(first))]
    body = rows[1:] if has_header else rows
    if not body:
        raise CLIError(f"{path}: no data rows after the header.")
    width = len(header)
    for i, r in enumerate(body):
        if len(r) != width:
            line = i + 1 + has_header
            raise CLIError(f"{path}: line {line} has {len(r)} fields, the header has {width}.")
    cols = list(range(width))
    # a first column of dates / labels is the row index, not data
    first_col = [r[0].strip() for r in body]
    if width > 1 and (
        (has_header and header[0].lower() in _LABEL_HEADERS)
        or all(_DATE.match(v) for v in first_col[:20])
    ):
        cols = cols[1:]
    bad = []
    for j in cols:
        for i, r in enumerate(body):
            v = r[j].strip()
            if not (_is_number(v) or v.lower() in _MISSING):
                bad.append((header[j], i + 1 + has_header, v))
                break
    if bad:
        desc = "; ".join(f"{name!r} (line {line}: {v!r})" for name, line, v in bad)
        raise CLIError(
            f"{path}: non-numeric column{'s' if len(bad) > 1 else ''} {desc}. normix needs "
            "numeric columns (a first column of dates is skipped automatically)."
        )
    X = np.array(
        [
            [float(r[j]) if r[j].strip().lower() not in _MISSING else np.nan for j in cols]
            for r in body
        ],
        dtype=np.float64,
    ).reshape(len(body), len(cols))
    names = [header[j] for j in cols]
    bad_rows = ~np.all(np.isfinite(X), axis=1)
    n_bad = int(bad_rows.sum())
    if n_bad:
        lines = (np.flatnonzero(bad_rows)[:5] + 1 + has_header).tolist()
        if not drop_nan:
            raise CLIError(
                f"{path}: {n_bad} row{'s' if n_bad > 1 else ''} of {len(X)} contain missing, NaN "
                f"or infinite values (lines {', '.join(map(str, lines))}"
                f"{', ...' if n_bad > 5 else ''}). Pass --drop-nan to drop them."
            )
        X = X[~bad_rows]
    n, d = X.shape
    if n == 0:
        raise CLIError(f"{path}: no rows left after dropping the rows with missing values.")
    data = CSVData(X * scale, names, has_header, ~bad_rows)
    if not for_fit:
        return data
    if n < d + 1:
        raise CLIError(
            f"{path}: {n} usable row{'s' if n != 1 else ''} for {d} column"
            f"{'s' if d != 1 else ''}; fitting a {d}-dimensional model needs at least "
            f"{d + 1} rows (and many more for reliable heavy-tailed fits)."
        )
    const = [names[j] for j in range(d) if n > 0 and np.all(X[:, j] == X[0, j])]
    if const:
        raise CLIError(
            f"{path}: constant column{'s' if len(const) > 1 else ''} "
            f"{', '.join(map(repr, const))}: a constant has no distribution to fit; drop it."
        )
    return data


def _data_info(args: argparse.Namespace, data: CSVData) -> dict[str, Any]:
    """What `normix.save` keeps beside a model fitted by the command: the data's columns,
    the `--scale` applied to them and the file's name (`normix score` / `sample` read
    them back)."""
    return {"columns": list(data.names), "scale": float(args.scale), "data": Path(args.file).name}


def _write_csv(path: str | None, header: Sequence[str], rows: np.ndarray) -> None:
    f = sys.stdout if path in (None, "-") else open(path, "w", newline="")
    try:
        w = csv.writer(f)
        w.writerow(header)
        for r in rows:
            w.writerow([repr(float(v)) if isinstance(v, float | np.floating) else v for v in r])
    finally:
        if f is not sys.stdout:
            f.close()


class _Progress:
    """Line-based progress on stderr: `[i/n] label ... done (1.2 s)`; on a terminal the
    pending line is rewritten in place."""

    def __init__(self, total: int, stream: Any = None, quiet: bool = False) -> None:
        self.total = total
        self.i = 0
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()

    def start(self, label: str) -> None:
        self.i += 1
        if self.quiet:
            return
        head = f"[{self.i}/{self.total}] {label} ..."
        if self.tty:
            self.stream.write("\r\033[K" + head)
        else:
            self.stream.write(head)
        self.stream.flush()
        self._label = label

    def done(self, note: str) -> None:
        if self.quiet:
            return
        total = time.perf_counter() - self.t0
        self.stream.write(f" {note}  [elapsed {total:.1f} s]\n")
        self.stream.flush()


def _fit_one(
    cls: Any, X: np.ndarray, max_steps: int, compiled: bool = False
) -> tuple[Any, float, float]:
    """Fit twice: the first call includes compilation (or loading it from the cache); the
    second, identical call times EM alone. Returns `(result, first_s, em_s)`. With
    `compiled=True` (the program was already called) only the timed call runs
    (`first_s` is NaN)."""
    import jax

    import normix

    times = [math.nan] if compiled else []
    while len(times) < 2:
        t = time.perf_counter()
        r = normix.fit(cls, X, max_steps=max_steps, solver=normix.SQUAREM(), throw=False)
        jax.block_until_ready(r)
        times.append(time.perf_counter() - t)
    return r, times[0], times[1]


def _result_name(result: Any) -> str:
    import normix

    for name in ("successful", "max_steps_reached", "nonfinite", "decreased"):
        if bool(result.result == getattr(normix.EMResults, name)):
            return name
    return "unknown"  # pragma: no cover


def _row(family: str, result: Any, n: int, seconds: float) -> dict[str, Any]:
    ll = float(result.log_likelihood)
    k = int(result.model.n_parameters())
    total = n * ll
    return {
        "family": family,
        "label": LABELS[family],
        "loglik": ll,
        "k": k,
        "aic": -2.0 * total + 2.0 * k,
        "bic": -2.0 * total + k * math.log(n),
        "steps": int(result.n_steps),
        "seconds": seconds,
        "status": _result_name(result),
        "result": result,
    }


def _table(rows: list[dict[str, Any]], title: str) -> str:
    head = (
        f"{'family':<11}{'loglik/obs':>12}{'k':>5}{'AIC':>13}{'BIC':>13}{'iter':>6}"
        f"{'EM s':>7}  note"
    )
    best_aic = min((r["aic"] for r in rows if math.isfinite(r["aic"])), default=math.nan)
    best_bic = min((r["bic"] for r in rows if math.isfinite(r["bic"])), default=math.nan)
    out = [title, head, "-" * len(head)]
    for r in rows:
        notes = []
        if r["aic"] == best_aic:
            notes.append("best AIC")
        if r["bic"] == best_bic:
            notes.append("best BIC")
        if r["status"] not in ("successful",):
            notes.append(r["status"].replace("_", " "))
        out.append(
            f"{r['label']:<11}{r['loglik']:>12.5f}{r['k']:>5d}{r['aic']:>13.1f}"
            f"{r['bic']:>13.1f}{r['steps']:>6d}{r['seconds']:>7.2f}  {', '.join(notes)}"
        )
    return "\n".join(out)


def _fit_families(
    datasets: list[tuple[str, str, np.ndarray]],
    families: list[str],
    max_steps: int,
    quiet: bool = False,
    after_first: Callable[[str, str, Any], None] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Fit each family to each dataset; rows for `_table`. `after_first(key, family,
    result)`, if given, runs in the same worker thread right after a first fit (the demo
    uses it to compile its plotting programs while other fits still compile)."""
    import jax

    import normix

    progress = _Progress(len(datasets) * len(families), quiet=quiet)
    jobs = [(key, label, X, fam) for key, label, X in datasets for fam in families]

    def first_fit(job):
        # the first call of each program: tracing, compilation (or a cache load), EM
        key, _, X, fam = job
        t = time.perf_counter()
        r = jax.block_until_ready(
            normix.fit(
                getattr(normix, FAMILIES[fam]),
                X,
                max_steps=max_steps,
                solver=normix.SQUAREM(),
                throw=False,
            )
        )
        elapsed = time.perf_counter() - t
        if after_first is not None:
            after_first(key, fam, r)
        return r, elapsed

    # Compilation dominates a first run and XLA compiles with the GIL released, so the
    # first calls run in a few threads, the costliest programs submitted early (so none
    # of them is left compiling alone at the end); the EM timings (second calls) run alone
    # afterwards.
    workers = max(1, min(_compile_workers(), len(jobs)))
    if not quiet and len(jobs) > 1:
        print(f"fitting {len(jobs)} models, {workers} at a time:", file=sys.stderr, flush=True)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        # the cheapest (Gaussian: closed form) first, for an early first progress line
        by_cost = sorted(
            range(len(jobs)),
            key=lambda k: (jobs[k][3] != "gaussian", -_COMPILE_COST.get(jobs[k][3], 1)),
        )
        futures: list[Any] = [None] * len(jobs)
        for k in by_cost:
            # in this thread's context: the run-time check mode (`_host_checked_errors`)
            # is a context variable, which new threads would not inherit
            futures[k] = pool.submit(contextvars.copy_context().run, first_fit, jobs[k])
        index = {id(f): k for k, f in enumerate(futures)}
        for fut in concurrent.futures.as_completed(futures):  # report in finishing order
            _, label, X, fam = jobs[index[id(fut)]]
            progress.start(f"fitted {LABELS[fam]} to {label} (n={len(X)}, d={X.shape[1]})")
            result, first = fut.result()
            progress.done(f"{int(result.n_steps)} it, {first:.1f} s with compilation")
    out: dict[str, list[dict[str, Any]]] = {key: [] for key, _, _ in datasets}
    for key, _, X, fam in jobs:
        result, _, em = _fit_one(getattr(normix, FAMILIES[fam]), X, max_steps, compiled=True)
        out[key].append(_row(fam, result, len(X), em))
    return out


# relative compile cost of each family's EM program (GH: the GIG eta -> theta solver)
_COMPILE_COST = {"gh": 4, "skew-t": 2, "vg": 2, "nig": 2, "student-t": 2, "gaussian": 1}


def _compile_workers() -> int:
    """Threads for first (compiling) fits: `$NORMIX_COMPILE_THREADS`, else the CPU count
    (at most 4)."""
    env = os.environ.get("NORMIX_COMPILE_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    return max(1, min(4, os.cpu_count() or 1))


# ---------------------------------------------------------------------------- commands
def _cmd_demo(args: argparse.Namespace) -> int:
    t_start = time.perf_counter()
    jax = _setup_jax(cache=not args.no_cache)
    from . import datasets

    families = _family_list(args.families) if args.families else list(DEMO_FAMILIES)
    index = datasets.sp500_index()
    stocks = datasets.sp500_stocks()
    Xi, Xs, cols = index.values, stocks.values, list(stocks.columns)
    if args.quick:  # the last 1000 days, 2 stocks: a smoke test of the whole pipeline
        pick = [cols.index("JPM"), cols.index("BAC")]
        Xi, Xs = Xi[-1000:], Xs[-1000:][:, pick]
        cols = [cols[k] for k in pick]
    print(
        f"normix {__version__} demo: S&P 500 daily log returns (percent), "
        f"{str(index.dates[-len(Xi)])} to {str(index.dates[-1])}:"
    )
    print(f"the index (n={len(Xi)}, d=1) and {Xs.shape[1]} stocks (n={len(Xs)}, d={Xs.shape[1]}).")
    if not args.no_cache:
        print(f"compiled programs are cached in {_cache_dir()} (later runs start faster)")
    print(flush=True)
    plots = not args.no_plots and _have_matplotlib()
    with _host_checked_errors():
        fits = _fit_families(
            [
                ("index", "S&P 500 index", Xi),
                ("stocks", f"{Xs.shape[1]} stocks", Xs),
            ],
            families,
            args.max_steps,
            after_first=_warm_demo_plot if plots else None,
        )
    print()
    print(_table(fits["index"], f"S&P 500 index, n={len(Xi)}, d=1:"))
    print()
    print(_table(fits["stocks"], f"{Xs.shape[1]} S&P 500 stocks, n={len(Xs)}, d={Xs.shape[1]}:"))
    print()
    print(
        "loglik/obs: mean log-likelihood per day; k: free parameters; AIC = -2 loglik + 2k, "
        "BIC = -2 loglik + k log n (smaller is better); iter: accelerated-EM (SQUAREM) "
        "iterations, 3 E-steps each; EM s: seconds of the compiled fit (compilation, shown "
        "in the progress lines, excluded)."
    )
    if args.no_plots:
        print("plots: skipped (--no-plots).")
    elif not plots:
        print(
            "plots: skipped, matplotlib is not installed "
            "(pip install 'normix[plot]' or pip install matplotlib)."
        )
    else:
        with _host_checked_errors():
            files = _demo_plots(Path(args.out), fits, Xi, Xs, cols)
        print(f"plots written to {Path(args.out).resolve()}/:")
        for f in files:
            print(f"  {f.name}")
    jax.effects_barrier()
    print(f"\ndone in {time.perf_counter() - t_start:.1f} s.")
    return 0


def _have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _warm_demo_plot(key: str, fam: str, result: Any) -> None:
    """Compile the density evaluation the demo's plots will run on this fit (index fits:
    the 1-D density; the GH fit to the stocks: its 2-D marginal for the contour plot), in
    the fitting thread pool, so the plots do not compile after the fits. Values unused."""
    from . import plotting

    if not _finite_model(result.model):
        return
    if key == "index":
        plotting._log_prob(result.model, np.zeros((1, 1)))
    elif key == "stocks" and fam == "gh" and result.model.dim >= 2:
        plotting._log_prob(plotting.marginal_log_prob(result.model, (0, 1)), np.zeros((1, 2)))


def _finite_model(model: Any) -> bool:
    import equinox as eqx
    import jax

    leaves = jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_inexact_array))
    return all(bool(np.isfinite(np.asarray(v)).all()) for v in leaves)


def _demo_plots(
    out: Path, fits: dict[str, list[dict[str, Any]]], Xi: np.ndarray, Xs: np.ndarray, cols: list
) -> list[Path]:
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # files only: no window system needed
    import matplotlib.pyplot as plt

    from . import plotting

    out.mkdir(parents=True, exist_ok=True)
    files = []
    models = {r["label"]: r["result"].model for r in fits["index"] if r["status"] != "nonfinite"}

    fig, ax = plt.subplots(figsize=(8, 5))
    plotting.plot_density(models, Xi[:, 0], ax=ax)
    ax.set_title("S&P 500 daily log returns: fitted densities vs histogram (log scale)")
    ax.set_xlabel("daily log return (%)")
    files.append(_save(fig, out / "index_density.png"))

    # NIG and GH are nearly identical on this data: show one of them
    qq = {k: v for k, v in models.items() if k in ("Gaussian", "Student-t", "NIG")}
    fig, ax = plt.subplots(figsize=(6, 6))
    plotting.plot_qq(qq or models, Xi[:, 0], ax=ax)
    ax.set_title("S&P 500 index: QQ plot")
    files.append(_save(fig, out / "index_qq.png"))

    best = min(fits["index"], key=lambda r: r["aic"] if math.isfinite(r["aic"]) else math.inf)
    fig, ax = plt.subplots(figsize=(7, 4))
    plotting.plot_trace(best["result"], ax=ax, label=best["label"])
    ax.set_title(f"EM log-likelihood trace: {best['label']} on the S&P 500 index")
    files.append(_save(fig, out / "index_em_trace.png"))

    srows = [r for r in fits["stocks"] if r["status"] != "nonfinite"]
    if srows and Xs.shape[1] >= 2:
        pick = next((r for r in srows if r["family"] == "gh"), None) or min(
            srows, key=lambda r: r["aic"]
        )
        i, j = _pair(cols)
        fig, ax = plt.subplots(figsize=(6.5, 6))
        plotting.plot_contours(pick["result"].model, Xs, dims=(i, j), ax=ax, names=cols)
        ax.set_title(f"{pick['label']} fit to {Xs.shape[1]} stocks: {cols[i]} vs {cols[j]}")
        files.append(_save(fig, out / f"stocks_contour_{cols[i]}_{cols[j]}.png"))
    return files


def _pair(cols: list[str]) -> tuple[int, int]:
    for a, b in (("JPM", "BAC"), ("XOM", "CVX"), ("MSFT", "AAPL")):
        if a in cols and b in cols:
            return cols.index(a), cols.index(b)
    return 0, 1


def _save(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _cmd_fit(args: argparse.Namespace) -> int:
    fam = _family(args.family)
    data = read_csv(args.file, drop_nan=args.drop_nan, scale=args.scale)
    X, names = data.X, data.names
    _setup_jax(cache=not args.no_cache)
    import normix

    _note_dropped(data.n_dropped)
    with _host_checked_errors():
        fits = _fit_families([("data", args.file, X)], [fam], args.max_steps, quiet=args.quiet)
    row = fits["data"][0]
    print(_table([row], f"{args.file}: n={len(X)}, d={X.shape[1]} ({', '.join(names)})"))
    if row["status"] == "nonfinite":
        raise CLIError(f"the {LABELS[fam]} fit failed (non-finite iterate); nothing saved.")
    if row["status"] == "max_steps_reached":
        print(f"warning: EM stopped at --max-steps {args.max_steps} before converging.")
    out = args.out or f"{Path(args.file).stem}.{fam}.nx"
    normix.save(out, row["result"].model, info=_data_info(args, data))
    print(f"model saved to {out}")
    return 0


def _cmd_select(args: argparse.Namespace) -> int:
    families = _family_list(args.families) if args.families else list(FAMILIES)
    data = read_csv(args.file, drop_nan=args.drop_nan, scale=args.scale)
    X = data.X
    _setup_jax(cache=not args.no_cache)
    _note_dropped(data.n_dropped)
    with _host_checked_errors():
        rows = _fit_families([("data", args.file, X)], families, args.max_steps, args.quiet)["data"]
    rows.sort(key=lambda r: (not math.isfinite(r[args.criterion]), r[args.criterion]))
    print(_table(rows, f"{args.file}: n={len(X)}, d={X.shape[1]}, ranked by {args.criterion}"))
    print(f"best by {args.criterion.upper()}: {rows[0]['label']}")
    if args.out:
        import normix

        normix.save(args.out, rows[0]["result"].model, info=_data_info(args, data))
        print(f"best model saved to {args.out}")
    return 0


def _load_model(path: str) -> tuple[Any, dict[str, Any]]:
    """The model saved in `path` and the `info` stored with it (`{}` when none)."""
    import normix
    from normix._io import loads, read_header

    if not Path(path).exists():
        raise CLIError(f"{path}: no such model file.")
    data = Path(path).read_bytes()  # read once: model and info from the same bytes
    try:
        model = loads(data, source=repr(path))
        info = read_header(data, repr(path)).get("info")
    except normix.NormixFileError as e:
        raise CLIError(str(e)) from e
    return model, info if isinstance(info, dict) else {}


def _model_dim(model: Any) -> int:
    shape = tuple(getattr(model, "event_shape", ()) or ())
    return int(shape[0]) if shape else 1


def _stored_scale(info: dict[str, Any]) -> float:
    scale = info.get("scale", 1.0)
    return float(scale) if isinstance(scale, int | float) and math.isfinite(scale) else 1.0


def _cmd_score(args: argparse.Namespace) -> int:
    _setup_jax(cache=not args.no_cache)
    import equinox as eqx
    import jax.numpy as jnp

    model, info = _load_model(args.model)
    scale = _stored_scale(info) if args.scale is None else args.scale
    data = read_csv(args.file, drop_nan=args.drop_nan, scale=scale, for_fit=False)
    X = data.X
    _note_dropped(data.n_dropped)
    d = _model_dim(model)
    if X.shape[1] != d:
        raise CLIError(
            f"{args.file} has {X.shape[1]} numeric columns but the model in {args.model} is "
            f"{d}-dimensional."
        )
    columns = info.get("columns")
    if data.has_header and isinstance(columns, list) and columns != data.names:
        print(
            f"warning: the columns of {args.file} ({', '.join(data.names)}) are not those the "
            f"model was fitted to ({', '.join(map(str, columns))}); scoring them in file order."
        )
    with _host_checked_errors():
        lp = np.asarray(eqx.filter_jit(lambda m, x: m.log_prob(x))(model, jnp.asarray(X)))
    n = len(X)
    k = int(model.n_parameters())
    total = float(lp.sum())
    print(f"model: {type(model).__name__} (d={d}, k={k}) from {args.model}")
    print(f"data:  {args.file}, n={n}" + (f", scaled by {scale:g}" if scale != 1.0 else ""))
    if args.scale is None and scale != 1.0:
        print(f"note: --scale {scale:g} taken from the model file (the data it was fitted to).")
    print(f"log-likelihood: total {total:.6f}, mean per row {total / n:.6f}")
    print(f"AIC {-2 * total + 2 * k:.3f}   BIC {-2 * total + k * math.log(n):.3f}")
    if not np.all(np.isfinite(lp)):
        print(f"warning: {int((~np.isfinite(lp)).sum())} rows have a non-finite log-density.")
    if args.out:
        _write_csv(args.out, ["log_density"], data.aligned(lp))
        print(f"per-row log-densities written to {args.out} (one row per data row of {args.file})")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    _setup_jax(cache=not args.no_cache)
    import equinox as eqx
    import jax

    if args.n < 1:
        raise CLIError(f"-n must be >= 1, got {args.n}.")
    model, info = _load_model(args.model)
    with _host_checked_errors():
        draw = eqx.filter_jit(lambda m, k: m.sample(k, (args.n,)))
        x = np.asarray(draw(model, jax.random.key(args.seed)))
    x = x.reshape(args.n, -1)
    columns = info.get("columns")
    if not (isinstance(columns, list) and len(columns) == x.shape[1]):
        columns = [f"x{i + 1}" for i in range(x.shape[1])]
    scale = _stored_scale(info)
    if args.original_units:
        x = x / scale
    _write_csv(args.out, columns, x)
    if scale != 1.0 and not args.original_units:
        print(
            f"note: draws are in the fitted units (the data times {scale:g}); "
            "--original-units divides them by it.",
            file=sys.stderr,
        )
    if args.out not in (None, "-"):
        print(f"{args.n} draws from {type(model).__name__} written to {args.out}")
    return 0


def _k_range(text: str) -> list[int]:
    try:
        if ".." in text:
            a, b = (int(v) for v in text.split(".."))
            if a > b:
                raise CLIError(f"-k {text}: a range A..B needs A <= B (e.g. 2..8).")
            ks = list(range(a, b + 1))
        else:
            ks = [int(s) for s in text.split(",") if s.strip()]
    except ValueError as e:
        raise CLIError(f"-k: expected K, K1,K2,... or A..B, got {text!r}.") from e
    if not ks or min(ks) < 1:
        raise CLIError(f"-k: numbers of clusters must be >= 1, got {text!r}.")
    return sorted(set(ks))


def _cmd_cluster(args: argparse.Namespace) -> int:
    ks = _k_range(args.k)
    data = read_csv(args.file, drop_nan=args.drop_nan, scale=args.scale)
    X = data.X
    jax = _setup_jax(cache=not args.no_cache)
    import normix

    if not hasattr(normix, "fit_mixture"):  # pragma: no cover - finite mixtures not built
        raise CLIError("`normix cluster` needs normix.fit_mixture, not available yet.")
    _note_dropped(data.n_dropped)
    n, d = X.shape
    if max(ks) > n:
        raise CLIError(f"-k {max(ks)} exceeds the {n} rows of {args.file}.")
    component = (
        normix.MultivariateNormal
        if args.component == "gaussian"
        else getattr(normix, FAMILIES[_family(args.component)])
    )
    progress = _Progress(len(ks), quiet=args.quiet)
    rows = []
    with _host_checked_errors():
        for k in ks:
            progress.start(f"fitting a {k}-component {args.component} mixture")
            t = time.perf_counter()
            r = normix.fit_mixture(
                X,
                k,
                component=component,
                n_init=args.n_init,
                key=jax.random.key(args.seed),
                max_steps=args.max_steps,
            )
            jax.block_until_ready(r)
            sec = time.perf_counter() - t
            m = r.model
            rows.append(
                {
                    "k": k,
                    "loglik": float(r.log_likelihood),
                    "bic": float(m.bic(X)),
                    "aic": float(m.aic(X)),
                    "steps": int(r.n_steps),
                    "sec": sec,
                    "result": r,
                }
            )
            progress.done(f"{int(r.n_steps)} it, {sec:.1f} s")
    best = min(rows, key=lambda r: r[args.criterion] if math.isfinite(r[args.criterion]) else 1e300)
    print(f"{args.file}: n={n}, d={d}, {args.component} components")
    head = f"{'K':>3}{'loglik/obs':>13}{'AIC':>14}{'BIC':>14}{'iter':>6}{'sec':>7}"
    print(head)
    print("-" * len(head))
    for r in rows:
        mark = f"  <- best {args.criterion.upper()}" if r is best else ""
        print(
            f"{r['k']:>3d}{r['loglik']:>13.5f}{r['aic']:>14.2f}{r['bic']:>14.2f}"
            f"{r['steps']:>6d}{r['sec']:>7.2f}{mark}"
        )
    model = best["result"].model
    with _host_checked_errors():
        labels = np.asarray(model.predict(X))
    sizes = np.bincount(labels, minlength=best["k"])
    print(f"best K = {best['k']}; cluster sizes: {', '.join(map(str, sizes.tolist()))}")
    if args.out:
        _write_csv(args.out, ["label"], data.aligned(labels))
        print(f"labels written to {args.out} (one row per data row of {args.file})")
    if args.model_out:
        normix.save(args.model_out, model, info=_data_info(args, data))
        print(f"model saved to {args.model_out}")
    return 0


def _note_dropped(n: int) -> None:
    if n:
        print(f"note: dropped {n} row{'s' if n > 1 else ''} with missing values (--drop-nan).")


# ---------------------------------------------------------------------------- parser
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="normix",
        description="Fit heavy-tailed, skewed laws (Gaussian ... generalized hyperbolic) and "
        "their mixtures to the numeric columns of a CSV file. `normix demo` runs on bundled "
        "S&P 500 data.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"families: {', '.join(FAMILIES)}",
    )
    parser.add_argument("--version", action="version", version=f"normix {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(
        p: argparse.ArgumentParser, data: bool = True, scale_from_model: bool = False
    ) -> None:
        if data:
            p.add_argument(
                "--drop-nan", action="store_true", help="drop rows with missing/NaN values"
            )
            p.add_argument(
                "--scale",
                type=_scale,
                default=None if scale_from_model else 1.0,
                help="multiply the data by this (default: the scale stored with the model)"
                if scale_from_model
                else "multiply the data by this (e.g. 100); stored with the saved model",
            )
        p.add_argument("--no-cache", action="store_true", help="no persistent compilation cache")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress display")

    demo = sub.add_parser("demo", help="fit six families to bundled S&P 500 returns, plot")
    demo.add_argument("--out", default="normix-demo", help="folder for the plots")
    demo.add_argument("--quick", action="store_true", help="last 1000 days, 2 stocks (smoke test)")
    demo.add_argument("--families", help=f"comma list (default {','.join(DEMO_FAMILIES)})")
    demo.add_argument("--max-steps", type=_int_at_least(0), default=500)
    demo.add_argument("--no-plots", action="store_true")
    common(demo, data=False)
    demo.set_defaults(func=_cmd_demo)

    fit = sub.add_parser("fit", help="fit one family to a CSV file and save the model")
    fit.add_argument("file", help="CSV file")
    fit.add_argument("--family", "-f", default="gh", help="family (default gh)")
    fit.add_argument("--out", "-o", help="model file (default FILE.FAMILY.nx)")
    fit.add_argument("--max-steps", type=_int_at_least(0), default=500)
    common(fit)
    fit.set_defaults(func=_cmd_fit)

    sel = sub.add_parser("select", help="fit several families, rank by AIC/BIC")
    sel.add_argument("file")
    sel.add_argument("--families", help="comma list (default: all)")
    sel.add_argument(
        "--criterion", choices=("aic", "bic"), default="aic", help="default aic, as normix.select"
    )
    sel.add_argument("--out", "-o", help="save the best model here")
    sel.add_argument("--max-steps", type=_int_at_least(0), default=500)
    common(sel)
    sel.set_defaults(func=_cmd_select)

    score = sub.add_parser("score", help="log-likelihood of a CSV file under a saved model")
    score.add_argument("file")
    score.add_argument("--model", "-m", required=True)
    score.add_argument("--out", "-o", help="write per-row log-densities (CSV)")
    common(score, scale_from_model=True)
    score.set_defaults(func=_cmd_score)

    sample = sub.add_parser("sample", help="draw from a saved model (CSV to stdout or --out)")
    sample.add_argument("--model", "-m", required=True)
    sample.add_argument("-n", type=int, default=1000)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--out", "-o")
    sample.add_argument(
        "--original-units",
        action="store_true",
        help="divide the draws by the --scale the model was fitted with",
    )
    common(sample, data=False)
    sample.set_defaults(func=_cmd_sample)

    cl = sub.add_parser("cluster", help="finite mixtures for a range of K, pick K by BIC")
    cl.add_argument("file")
    cl.add_argument("-k", default="2..8", help="K, K1,K2,... or A..B (default 2..8)")
    cl.add_argument("--component", default="gaussian", help="gaussian (default) or a family")
    cl.add_argument("--criterion", choices=("aic", "bic"), default="bic")
    cl.add_argument("--n-init", type=_int_at_least(1), default=3)
    cl.add_argument("--seed", type=int, default=0)
    cl.add_argument("--max-steps", type=_int_at_least(0), default=200)
    cl.add_argument("--out", "-o", help="write the cluster labels (CSV)")
    cl.add_argument("--model-out", help="save the best mixture")
    common(cl)
    cl.set_defaults(func=_cmd_cluster)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        print("\nStart with: normix demo")
        return 0
    try:
        _check_output_paths(args)
        return int(args.func(args))
    except CLIError as e:
        print(f"normix: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file that could not be read or written
        print(f"normix: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("normix: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
