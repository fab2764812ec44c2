"""Figures of the failures experiment: one PNG per family, drawn from its analysis
(:func:`theorydl.studies.failures.analysis.analyze`); a family without rows gets a
figure that says so."""

from __future__ import annotations

import math

import numpy as np

from theorydl.plotting import pyplot, save_figure

__all__ = ["draw"]


def _not_run(path: str, family: str) -> None:
    fig, (a,) = _axes(1)
    a.text(0.5, 0.5, f"no rows of family {family!r}: not in failures.families, or every "
           "trial failed", ha="center")
    a.axis("off")
    _save(fig, path)


def _save(fig, path: str) -> None:
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def _axes(n: int):
    fig, axes = pyplot().subplots(1, n, figsize=(5 * n, 3.8))
    return fig, np.atleast_1d(axes)


# ------------------------------------------------------------------------ parity


def _parity_figure(plot, vplot, path: str) -> None:
    fig, (a, b) = _axes(2)
    for d, g in plot.groupby("d"):
        a.plot(g.iteration.clip(lower=1), g.accuracy_mean, marker="o", ms=3, label=f"d = {d}")
        a.fill_between(g.iteration.clip(lower=1), g.accuracy_mean - g.accuracy_std.fillna(0),
                       g.accuracy_mean + g.accuracy_std.fillna(0), alpha=0.2)
    a.set_xscale("log")
    a.set(xlabel="SGD iteration", ylabel="accuracy (fresh samples)", title="Parities",
          ylim=(0.4, 1.02))
    a.legend(fontsize=8)
    if len(vplot):
        b.plot(vplot.d, vplot.log2_variance, "o-", label="Var over all parities")
        b.plot(vplot.d, vplot.log2_bound, "k--", label="Theorem 1 bound G²/2^d")
        b.legend(fontsize=8)
    b.set(xlabel="d", ylabel="log2", title="Gradient variance at initialisation")
    _save(fig, path)


# ------------------------------------------------------------------ conditioning


def _conditioning_figure(plot, extra, threshold: float, path: str) -> None:
    fig, (a, b, c) = _axes(3)
    for method, g in plot.groupby("method"):
        a.plot(g.iteration.clip(lower=1), g.error_mean, marker="o", ms=3, label=method)
    a.axhline(threshold, color="grey", ls=":", lw=1)
    a.set(xscale="log", yscale="log", xlabel="Adam iteration", ylabel="relative error",
          title="Recovering p from f = W p")
    a.legend(fontsize=8)
    x = np.arange(3)
    b.bar(x - 0.3, [1, -2, 1], width=0.2, color="k", label="[1, -2, 1]")
    for i, (method, t) in enumerate(sorted(extra["taps"].items())):
        b.bar(x - 0.1 + 0.2 * i, t, width=0.2, label=method)
    b.set(xticks=x, xlabel="tap", title="Learned filter (raw windows)")
    b.legend(fontsize=8)
    c.loglog(extra["ns"], np.square(extra["conds"]), "o-", label="cond(W)²")
    ns = np.asarray(extra["ns"], dtype=float)
    c.loglog(ns, np.square(extra["conds"][0]) * (ns / ns[0]) ** 4, "k--", label="∝ n⁴")
    c.set(xlabel="n", title="Conditioning of W")
    c.legend(fontsize=8)
    _save(fig, path)


# -------------------------------------------------------------------------- flat


def _flat_figure(plot, fits, path: str) -> None:
    fig, (a, b) = _axes(2)
    for method, g in plot.groupby("method"):
        a.plot(g.iteration.clip(lower=1), g.error_mean, marker="o", ms=3, label=method)
    a.set(xscale="log", yscale="log", xlabel="Adam iteration", ylabel="squared error",
          title="Flat activations: learners")
    a.legend(fontsize=8)
    if len(fits):
        d0 = fits["size"].min()
        f = fits[fits["size"] == d0]
        first = f[f.method == f.method.iloc[0]].sort_values("r")
        b.plot(first.r, first.y, "k-", lw=2, label="target u(v*ᵀx + b*)")
        for method, g in f.groupby("method"):
            g = g.sort_values("r")
            b.plot(g.r, g.prediction, lw=1, label=method)
        b.legend(fontsize=7)
    b.set(xlabel="v*ᵀx + b*", ylabel="y", title="Staircase fits (seed 0, end of training)")
    _save(fig, path)


# ------------------------------------------------------------------------- lines


def _methods_by_k(ax, plot, column: str) -> None:
    """``column`` against Adam iteration (log axis), a line per (k, method): decomposition
    solid, end to end dashed."""
    for (k, method), g in plot.groupby(["k", "method"]):
        ax.plot(g.iteration.clip(lower=1), g[column], marker="o", ms=3,
                ls="-" if method == "decomposition" else "--", label=f"{method}, k = {k}")
    ax.set(xscale="log", xlabel="Adam iteration")
    ax.legend(fontsize=7)


def _lines_figure(plot, splot, path: str) -> None:
    fig, (a, b) = _axes(2)
    _methods_by_k(a, plot, "accuracy_mean")
    a.set(ylabel="accuracy (fresh tuples)", title="Lines: decomposition against end to end",
          ylim=(0.4, 1.02))
    for method, g in splot.groupby("method"):
        b.plot(g.k, g.log10_snr, "o-", label=method)
    if len(splot):
        b.axhline(math.log10(float(splot.snr_floor.iloc[0])), color="grey", ls=":",
                  label="resolution 1/(b (S-1))")
    b.set(xlabel="k", ylabel="log10 SNR (score layer, per tuple)",
          title="Gradient SNR at initialisation")
    b.legend(fontsize=8)
    _save(fig, path)


# ------------------------------------------------------------------------ stocks


def _stocks_figure(plot, mplot, path: str) -> None:
    fig, (a, b) = _axes(2)
    _methods_by_k(a, plot, "eval_loss")
    a.set(ylabel="minus expected reward", title="Stocks: end-to-end loss")
    if len(mplot):
        b.loglog(mplot.k, mplot.moment_ratio, "o-", label="measured")
        b.loglog(mplot.k, mplot.k, "k--", label="k")
        b.legend(fontsize=8)
    b.set(xlabel="k", ylabel="E||g_e2e||² / E||g_dec||²", title="Second moments at init")
    _save(fig, path)


# --------------------------------------------------------------------------- all


def draw(result, cfg) -> None:
    """Every family's figure to its ``paths.figure_<family>`` key."""
    paths, frames = cfg.paths, result.frames
    if "parity" in frames:
        _parity_figure(frames["parity"]["plot"], frames["parity"]["vplot"], paths.figure_parity)
    else:
        _not_run(paths.figure_parity, "parity")
    if "conditioning" in frames:
        _conditioning_figure(frames["conditioning"]["plot"], frames["conditioning"]["extra"],
                             cfg.analysis.error_threshold, paths.figure_conditioning)
    else:
        _not_run(paths.figure_conditioning, "conditioning")
    if "flat" in frames:
        _flat_figure(frames["flat"]["plot"], frames["flat"]["fits"], paths.figure_flat)
    else:
        _not_run(paths.figure_flat, "flat")
    if "lines" in frames:
        _lines_figure(frames["lines"]["plot"], frames["lines"]["splot"], paths.figure_lines)
    else:
        _not_run(paths.figure_lines, "lines")
    if "stocks" in frames:
        _stocks_figure(frames["stocks"]["plot"], frames["stocks"]["mplot"], paths.figure_stocks)
    else:
        _not_run(paths.figure_stocks, "stocks")
