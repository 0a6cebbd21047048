r"""Plots for fitted normix models (needs matplotlib: `pip install "normix[plot]"`).

* `plot_density`: histogram of 1-D data with fitted densities, log-scale y axis (the tails
  are where families differ);
* `plot_qq`: model quantiles against empirical quantiles;
* `plot_contours`: data scatter with contours of a model's 2-D (marginal) density;
* `plot_trace`: the EM log-likelihood per iteration of an `EMResult`.

Each takes an optional matplotlib `ax` and returns it. matplotlib is imported when a
function is called, never at `import normix`. Model evaluation is jitted once per model
(a host-side glue module: NumPy is used for grids and quantiles).

For $d$-dimensional normal variance-mean mixtures the 2-D marginal of coordinates
$(i, j)$ is the same family with $\mu_{ij}$, $\gamma_{ij}$, $\Sigma_{ij,ij}$ and the same
subordinator, since $X_{ij} \mid Y \sim N(\mu_{ij} + \gamma_{ij}Y, \Sigma_{ij,ij}Y)$; for a
Gaussian it is $N(\mu_{ij}, \Sigma_{ij,ij})$; for a finite mixture it is the mixture of
the components' marginals.
"""

from typing import Any

import numpy as np

__all__ = ["plot_density", "plot_qq", "plot_contours", "plot_trace", "marginal_log_prob"]


def _plt() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "normix.plotting needs matplotlib: pip install 'normix[plot]' (or matplotlib)."
        ) from e
    return plt


def _ax(ax: Any, figsize: tuple[float, float] = (7, 4.5)) -> Any:
    if ax is not None:
        return ax
    _, ax = _plt().subplots(figsize=figsize)
    return ax


def _as_models(models: Any) -> dict[str, Any]:
    if isinstance(models, dict):
        return dict(models)
    if isinstance(models, list | tuple):
        return {type(m).__name__: m for m in models}
    return {type(models).__name__: models}


def _log_prob_fn() -> Any:
    import equinox as eqx

    return eqx.filter_jit(lambda m, x: m.log_prob(x))


_CHUNK = 4096


def _log_prob(model: Any, x: np.ndarray) -> np.ndarray:
    """`model.log_prob` of the rows of `x`, evaluated in fixed-size chunks (the last one
    padded), so each model class and dimension compiles once whatever the grid size."""
    import jax.numpy as jnp

    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n == 0:
        return np.empty((0,))
    m = -(-n // _CHUNK) * _CHUNK
    xp = np.concatenate([x, np.repeat(x[:1], m - n, axis=0)]) if m > n else x
    out = [
        np.asarray(_LOG_PROB(model, jnp.asarray(xp[i : i + _CHUNK]))) for i in range(0, m, _CHUNK)
    ]
    return np.concatenate(out)[:n]


class _Lazy:
    def __init__(self) -> None:
        self.f = None

    def __call__(self, *args: Any) -> Any:
        if self.f is None:
            self.f = _log_prob_fn()
        return self.f(*args)


_LOG_PROB = _Lazy()


def _dim(model: Any) -> int:
    shape = tuple(getattr(model, "event_shape", ()) or ())
    return int(shape[0]) if shape else 1


def _column(x: Any) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 1:
        raise ValueError(f"expected 1-D data (n,) or (n, 1), got shape {x.shape}.")
    return x[np.isfinite(x)]


def _density_1d(model: Any, grid: np.ndarray) -> np.ndarray:
    d = _dim(model)
    if d != 1:
        raise ValueError(f"a univariate model is needed, got a {d}-dimensional one.")
    return np.exp(_log_prob(model, grid.reshape(-1, 1)))


def plot_density(
    models: Any,
    x: Any,
    *,
    ax: Any = None,
    bins: int = 120,
    log: bool = True,
    grid_size: int = 600,
) -> Any:
    """Histogram of 1-D data `x` (as a density) with the density of each model.

    `models`: one model, a list, or a dict `{label: model}` of univariate models.
    With `log=True` the y axis is logarithmic, which shows the tails.
    """
    plt = _plt()
    ax = _ax(ax)
    x = _column(x)
    lo, hi = np.quantile(x, [0.0, 1.0])
    pad = 0.05 * (hi - lo)
    grid = np.linspace(lo - pad, hi + pad, grid_size)
    counts, edges = np.histogram(x, bins=bins, range=(lo - pad, hi + pad), density=True)
    centres = 0.5 * (edges[1:] + edges[:-1])
    keep = counts > 0
    ax.bar(
        centres[keep],
        counts[keep],
        width=np.diff(edges)[keep],
        color="0.82",
        edgecolor="0.6",
        linewidth=0.4,
        label=f"data (n={len(x)})",
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    floor = 0.3 / (len(x) * (edges[1] - edges[0]))
    top = 0.0
    for i, (label, m) in enumerate(_as_models(models).items()):
        dens = _density_1d(m, grid)
        top = max(top, float(np.nanmax(dens)))
        style = ("-", "--", "-.", ":")[i % 4]
        ax.plot(grid, dens, lw=1.6, ls=style, color=colors[i % len(colors)], label=label)
    if log:
        ax.set_yscale("log")
        ax.set_ylim(bottom=floor, top=3.0 * max(counts.max(), top))
    ax.set_ylabel("density")
    ax.legend(frameon=False, fontsize=9)
    return ax


def _model_quantiles(model: Any, probs: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Quantiles of a univariate model by inverting its numerically integrated density
    on a fine grid (works for every family, including the Gaussian)."""
    span = x.max() - x.min()
    grid = np.linspace(x.min() - 2 * span, x.max() + 2 * span, 20001)
    dens = _density_1d(model, grid)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    cdf = cdf / cdf[-1]
    return np.interp(probs, cdf, grid)


def plot_qq(models: Any, x: Any, *, ax: Any = None) -> Any:
    """QQ plot: empirical quantiles of 1-D data `x` (y) against each model's quantiles
    (x axis), with the identity line. Points off the line in the corners are tails the
    model gets wrong."""
    plt = _plt()
    ax = _ax(ax, (6, 6))
    x = np.sort(_column(x))
    n = len(x)
    probs = (np.arange(1, n + 1) - 0.5) / n
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lo, hi = x[0], x[-1]
    for i, (label, m) in enumerate(_as_models(models).items()):
        q = _model_quantiles(m, probs, x)
        ax.plot(q, x, ".", ms=2.5, color=colors[i % len(colors)], label=label)
        lo, hi = min(lo, q[0]), max(hi, q[-1])
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, ls="--")
    ax.set_xlabel("model quantile")
    ax.set_ylabel("empirical quantile")
    ax.legend(frameon=False, fontsize=9, markerscale=4)
    return ax


def marginal_log_prob(model: Any, dims: tuple[int, int]) -> Any:
    """The 2-D marginal law of coordinates `dims` of a d-dimensional model, as a model
    with `log_prob` (see the module docstring for the formulas)."""
    import jax.numpy as jnp

    from ._distributions import MultivariateNormal
    from ._mixtures import AbstractNormalMixture
    from ._mixtures._factor import AbstractFactorNormalMixture

    if isinstance(model, AbstractFactorNormalMixture):
        model = model.mixture  # the same law with Sigma = F F^T + diag(D)
    d = _dim(model)
    i, j = dims
    if not (0 <= i < d and 0 <= j < d and i != j):
        raise ValueError(f"dims must be two different indices in [0, {d}), got {dims}.")
    if d == 2 and (i, j) == (0, 1):
        return model
    idx = jnp.asarray([i, j])
    if isinstance(model, MultivariateNormal):
        cov = model.cov()
        return MultivariateNormal(model.mean()[idx], cov[idx][:, idx])
    if isinstance(model, AbstractNormalMixture):
        joint = model.joint
        sigma = joint.covariance.as_matrix()
        sub = type(joint)(joint.mu[idx], joint.gamma[idx], sigma[idx][:, idx], joint.subordinator)
        return type(model).from_joint(sub)
    raise NotImplementedError(
        f"2-D marginals of {type(model).__name__} are not implemented; pass a 2-D model."
    )


def plot_contours(
    model: Any,
    X: Any,
    *,
    dims: tuple[int, int] = (0, 1),
    ax: Any = None,
    names: Any = None,
    coverage: tuple[float, ...] = (0.25, 0.5, 0.75, 0.9, 0.99, 0.999),
    grid_size: int = 160,
    max_points: int = 4000,
) -> Any:
    """Scatter of columns `dims` of `X` with contours of the model's (marginal) density.

    The contours are highest-density regions: the one labelled `p%` is the level set of
    the model density that encloses a fraction `p` of the data points (`coverage`), so
    the outer ones show how the model handles the tails. A 2-D `FiniteMixture` also
    colours points by predicted component."""
    plt = _plt()
    ax = _ax(ax, (6.5, 6))
    X = np.asarray(X, dtype=np.float64)
    i, j = dims
    xy = X[:, [i, j]]
    m2 = marginal_log_prob(model, dims) if _dim(model) != 2 else model
    lo = np.quantile(xy, 0.001, axis=0)
    hi = np.quantile(xy, 0.999, axis=0)
    pad = 0.15 * (hi - lo)
    gx = np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid_size)
    gy = np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid_size)
    GX, GY = np.meshgrid(gx, gy)
    lp = _log_prob(m2, np.stack([GX.ravel(), GY.ravel()], axis=1)).reshape(GX.shape)
    rng = np.random.default_rng(0)
    pts = xy if len(xy) <= max_points else xy[rng.choice(len(xy), max_points, replace=False)]
    colors = None
    if hasattr(m2, "predict") and _dim(model) == 2:
        import jax.numpy as jnp

        colors = np.asarray(m2.predict(jnp.asarray(pts)))
    ax.scatter(
        pts[:, 0],
        pts[:, 1],
        s=3,
        c="0.45" if colors is None else colors,
        cmap=None if colors is None else "tab10",
        alpha=0.45,
        linewidths=0,
    )
    # highest-density regions: the contour at the q-quantile of the model's log-density
    # over the data points encloses about 1 - q of the data (labelled in percent)
    lp_data = _log_prob(m2, xy)
    fractions = np.asarray(coverage)
    lv = np.quantile(lp_data[np.isfinite(lp_data)], 1.0 - fractions)
    order = np.argsort(lv)
    lv, fractions = lv[order], fractions[order]
    keep = np.concatenate([[True], np.diff(lv) > 0])
    lv, fractions = lv[keep], fractions[keep]
    cs = ax.contour(GX, GY, lp, levels=lv, cmap="viridis_r", linewidths=1.2)
    label = {v: f"{100 * f:g}%" for v, f in zip(cs.levels, fractions, strict=False)}
    ax.clabel(cs, fmt=lambda v: label.get(v, ""), fontsize=7)
    names = list(names) if names is not None else [f"x{k + 1}" for k in range(X.shape[1])]
    ax.set_xlabel(names[i])
    ax.set_ylabel(names[j])
    ax.set_xlim(gx[0], gx[-1])
    ax.set_ylim(gy[0], gy[-1])
    plt.setp(ax.collections, rasterized=True)
    return ax


def plot_trace(result: Any, *, ax: Any = None, label: str | None = None) -> Any:
    """The mean log-likelihood per iteration of an `EMResult` (`result.trace`), and the
    gap to the final value on a log scale (EM's linear convergence shows as a line)."""
    ax = _ax(ax)
    trace = np.asarray(result.trace, dtype=np.float64)
    n = int(result.n_steps)
    tr = trace[: n + 1]
    steps = np.arange(len(tr))
    ax.plot(steps, tr, "-", lw=1.5, label=label or "log-likelihood / obs")
    ax.set_xlabel("EM iteration")
    ax.set_ylabel("mean log-likelihood")
    gap = tr[-1] - tr[:-1]
    if len(gap) > 1 and np.any(gap > 0):
        ax2 = ax.twinx()
        ok = gap > 0
        ax2.semilogy(steps[:-1][ok], gap[ok], color="C3", lw=1.0, ls="--")
        ax2.set_ylabel("gap to final value (log scale)", color="C3")
        ax2.tick_params(axis="y", colors="C3")
    ax.legend(frameon=False, fontsize=9, loc="lower right")
    return ax
