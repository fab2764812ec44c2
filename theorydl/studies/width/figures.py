"""Figures of the width sweep, drawn from its per-trial frames (pandas)."""

from __future__ import annotations

import math

import numpy as np

from theorydl.plotting import figure, legend_below, pyplot, save_figure

__all__ = ["draw", "error_vs_width", "error_vs_epoch", "norms_vs_width", "optimizers", "search_figure"]

_LABEL = {"sgd": "SGD", "pathsgd": "Path-SGD", "adam": "Adam"}
_COLOR = {"sgd": "tab:blue", "pathsgd": "tab:red", "adam": "tab:green"}


def _panels(n: int, h: float = 3.3, rows: int = 1):
    cols = math.ceil(n / rows)
    fig, axes = figure(rows, cols, height=h * rows, squeeze=False)
    return fig, axes.ravel()


def _log2_width_axis(ax) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xlabel("hidden units H (log2 axis)")
    ax.grid(alpha=0.3, which="both")


def _first(agg, column: str):
    return agg[column].iloc[0]


def error_vs_width(agg, path) -> None:
    """One panel per depth: test (solid) and train (dashed) error against H, per optimizer,
    for the first init and noise level; bands are one standard deviation over seeds."""
    a = agg[(agg.init == _first(agg, "init")) & (agg.label_noise == _first(agg, "label_noise"))]
    depths = sorted(a.depth.unique())
    fig, axes = _panels(len(depths))
    for ax, depth in zip(axes, depths):
        for opt, g in a[a.depth == depth].groupby("optimizer"):
            g = g.sort_values("width")
            c = _COLOR.get(opt)
            ax.plot(g.width, g.test_error, "-o", ms=3, color=c, label=f"{_LABEL.get(opt, opt)} test")
            ax.fill_between(g.width, g.test_error - g.test_error_std.fillna(0),
                            g.test_error + g.test_error_std.fillna(0), color=c, alpha=0.15)
            ax.plot(g.width, g.train_error, "--", color=c, label=f"{_LABEL.get(opt, opt)} train")
        _log2_width_axis(ax)
        ax.set_ylabel("error (fraction misclassified)")
        ax.set_title(f"{depth} hidden layer{'s' if depth > 1 else ''} "
                     f"({_first(a, 'init')} initialisation)")
    legend_below(fig)
    save_figure(fig, path)


def error_vs_epoch(epochs, path) -> None:
    """One panel per optimizer (first init, depth and noise): mean test error (solid) and
    train error (dashed) against epoch, one colour per width."""
    plt = pyplot()
    e = epochs[(epochs.init == _first(epochs, "init")) & (epochs.depth == _first(epochs, "depth"))
               & (epochs.label_noise == _first(epochs, "label_noise"))]
    mean = e.groupby(["optimizer", "width", "epoch"], as_index=False)[
        ["train_error", "test_error"]].mean()
    opts = sorted(mean.optimizer.unique())
    fig, axes = _panels(len(opts))
    widths = sorted(mean.width.unique())
    cmap = plt.get_cmap("viridis")
    for ax, opt in zip(axes, opts):
        for k, width in enumerate(widths):
            g = mean[(mean.optimizer == opt) & (mean.width == width)].sort_values("epoch")
            if g.empty:
                continue
            c = cmap(k / max(1, len(widths) - 1))
            ax.plot(g.epoch + 1, g.test_error, "-", color=c, label=f"H = {width}")
            ax.plot(g.epoch + 1, g.train_error, "--", color=c, lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("epoch + 1 (log axis)")
        ax.set_ylabel("error, fraction misclassified\n(test solid, train dashed)")
        ax.set_title(_LABEL.get(opt, opt))
        ax.grid(alpha=0.3)
    legend_below(fig, ncols=8)
    save_figure(fig, path)


def norms_vs_width(agg, path) -> None:
    """Path norm, product of spectral norms, product of Frobenius norms and the training
    margin against H, per optimizer and init (first depth and noise level)."""
    a = agg[(agg.depth == _first(agg, "depth")) & (agg.label_noise == _first(agg, "label_noise"))]
    measures = [("path_norm", "l2 path norm"), ("spectral_product", "product of spectral norms"),
                ("frobenius_product", "product of Frobenius norms"), ("margin", "training margin")]
    fig, axes = _panels(len(measures), rows=2)
    for ax, (col, title) in zip(axes, measures):
        for (opt, init), g in a.groupby(["optimizer", "init"]):
            g = g.sort_values("width")
            ax.plot(g.width, g[col], "-o" if init == "balanced" else ":s", ms=3,
                    color=_COLOR.get(opt), label=f"{_LABEL.get(opt, opt)}, {init}")
        _log2_width_axis(ax)
        if col != "margin":
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_ylabel("margin (logit units)" if col == "margin" else "norm (log axis)")
    legend_below(fig)
    save_figure(fig, path)


def optimizers(agg, path) -> None:
    """Top: test error against H per optimizer, one panel per init (balanced against
    unbalanced, where the ReLU function at initialisation is the same). Bottom: epochs to
    zero training error (median over seeds)."""
    a = agg[(agg.depth == _first(agg, "depth")) & (agg.label_noise == _first(agg, "label_noise"))]
    inits = sorted(a.init.unique())
    fig, axes = figure(2, len(inits), height=6.2, squeeze=False)
    for c, init in enumerate(inits):
        for opt, g in a[a.init == init].groupby("optimizer"):
            g = g.sort_values("width")
            axes[0][c].plot(g.width, g.test_error, "-o", ms=3, color=_COLOR.get(opt),
                            label=_LABEL.get(opt, opt))
            axes[1][c].plot(g.width, g.fit_epoch, "-o", ms=3, color=_COLOR.get(opt),
                            label=_LABEL.get(opt, opt))
        if a[a.init == init].fit_epoch.isna().all():
            axes[1][c].text(0.5, 0.5, "no width reached zero training error",
                            transform=axes[1][c].transAxes, ha="center")
        axes[0][c].set_title(f"{init} initialisation")
        axes[0][c].set_ylabel("test error (fraction)")
        axes[1][c].set_ylabel("epochs to zero train error")
        for r in range(2):
            _log2_width_axis(axes[r][c])
    legend_below(fig)
    save_figure(fig, path)


def search_figure(final, path) -> None:
    """Every searched point: learning rate against validation error, one panel per
    optimizer, coloured by width; the best point of each width is circled."""
    plt = pyplot()
    opts = sorted(final.optimizer.unique())
    fig, axes = _panels(len(opts), h=3.6)
    widths = sorted(final.width.unique())
    cmap = plt.get_cmap("viridis")
    norm = plt.matplotlib.colors.LogNorm(vmin=max(1, min(widths)), vmax=max(2, max(widths)))
    for ax, opt in zip(axes, opts):
        g = final[final.optimizer == opt]
        ok = g[g.status == "ok"]
        sc = ax.scatter(ok.lr, ok.test_error, c=ok.width, cmap=cmap, norm=norm, s=14)
        bad = g[g.status != "ok"]
        if len(bad):
            ax.scatter(bad.lr, np.ones(len(bad)), marker="x", color="k", s=14,
                       label="diverged (drawn at error 1)")
            ax.legend(loc="best")
        for _, w in ok.groupby("width"):
            best = w.loc[w.test_error.idxmin()]
            ax.scatter([best.lr], [best.test_error], s=60, facecolors="none",
                       edgecolors="tab:red")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(plt.matplotlib.ticker.NullFormatter())
        ax.set_xlabel("learning rate (log axis)")
        ax.set_ylabel("validation error (fraction)")
        ax.set_title(f"{_LABEL.get(opt, opt)}: searched points (circled: best per H)")
        ax.grid(alpha=0.3)
        fig.colorbar(sc, ax=ax, label="hidden units H")
    save_figure(fig, path)


def draw(result, cfg) -> None:
    """Every figure of the width analysis (the search's only when it ran)."""
    agg, paths = result.frames["agg"], cfg.paths
    error_vs_width(agg, paths.figure_error)
    error_vs_epoch(result.frames["epochs"], paths.figure_epochs)
    norms_vs_width(agg, paths.figure_norms)
    optimizers(agg, paths.figure_optimizers)
    if result.frames["search"] is not None:
        search_figure(result.frames["search"], paths.figure_search)
