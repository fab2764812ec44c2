"""Figures of the failures experiment: one PNG per family, drawn from its analysis
(:func:`theorydl.studies.failures.analysis.analyze`); a family without rows gets a
figure that says so."""

from __future__ import annotations

import math

import numpy as np

from theorydl.plotting import figure, pyplot, save_figure

__all__ = ["draw"]

#: Learners in words (the frames hold their keys).
_METHOD = {"end_to_end": "end to end", "forward_only": "forward only",
           "decomposition": "decomposition", "multiclass": "multiclass",
           "surrogate": "surrogate", "conv": "convolution", "dense": "dense",
           "whitened": "whitened"}


def _method(key: str) -> str:
    return _METHOD.get(key, key.replace("_", " "))


def _not_run(path: str, family: str) -> None:
    fig, (a,) = _axes(1)
    a.text(0.5, 0.5, f"no rows of family {family!r}: not in failures.families, or every "
           "trial failed", ha="center", transform=a.transAxes)
    a.axis("off")
    _save(fig, path)


def _save(fig, path: str) -> None:
    save_figure(fig, path)


def _axes(n: int):
    fig, axes = figure(1, n, height=3.6)
    return fig, np.atleast_1d(axes)


# ------------------------------------------------------------------------ parity


def _parity_figure(plot, vplot, path: str) -> None:
    fig, (a, b) = _axes(2)
    for d, g in plot.groupby("d"):
        a.plot(g.iteration.clip(lower=1), g.accuracy_mean, marker="o", ms=3, label=f"d = {d}")
        a.fill_between(g.iteration.clip(lower=1), g.accuracy_mean - g.accuracy_std.fillna(0),
                       g.accuracy_mean + g.accuracy_std.fillna(0), alpha=0.2)
    a.set_xscale("log")
    a.set(xlabel="SGD iteration", ylabel="accuracy on fresh samples (fraction)",
          title="Learning parities of d bits", ylim=(0.4, 1.02))
    a.legend(loc="best")
    if len(vplot):
        b.plot(vplot.d, vplot.log2_variance, "o-", label="variance over all parities")
        b.plot(vplot.d, vplot.log2_bound, "k--", label="Theorem 1 bound G²/2^d")
        b.legend(loc="best")
    b.xaxis.get_major_locator().set_params(integer=True)
    b.set(xlabel="d (input bits)", ylabel="log2 of the gradient variance\n(squared gradient units)",
          title="Gradient variance at initialisation")
    _save(fig, path)


# ------------------------------------------------------------------ conditioning


def _conditioning_figure(plot, extra, threshold: float, path: str) -> None:
    fig, (a, b, c) = _axes(3)
    for method, g in plot.groupby("method"):
        a.plot(g.iteration.clip(lower=1), g.error_mean, marker="o", ms=3, label=_method(method))
    a.axhline(threshold, color="grey", ls=":", lw=1, label=f"threshold {threshold:g}")
    a.set(xscale="log", yscale="log", xlabel="Adam iteration",
          ylabel="relative error ||p̂ - p||² / ||p||²", title="Recovering p from f = W p")
    a.legend(loc="best")
    x = np.arange(3)
    b.bar(x - 0.3, [1, -2, 1], width=0.2, color="k", label="[1, -2, 1]")
    for i, (method, t) in enumerate(sorted(extra["taps"].items())):
        b.bar(x - 0.1 + 0.2 * i, t, width=0.2, label=_method(method))
    b.set(xticks=x, xlabel="filter tap", ylabel="tap weight (unitless)",
          title="Learned filter (raw windows)")
    b.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)  # off the bars
    c.loglog(extra["ns"], np.square(extra["conds"]), "o-", label="cond(W)²")
    ns = np.asarray(extra["ns"], dtype=float)
    c.loglog(ns, np.square(extra["conds"][0]) * (ns / ns[0]) ** 4, "k--", label="∝ n⁴")
    c.set_xticks(ns, [f"{n:g}" for n in ns])
    c.xaxis.set_minor_formatter(pyplot().NullFormatter())  # the ns are the ticks
    c.set(xlabel="n (W is n x n)", ylabel="cond(W)² (ratio, unitless)",
          title="Conditioning of W")
    c.legend(loc="best")
    _save(fig, path)


# -------------------------------------------------------------------------- flat


def _flat_figure(plot, fits, path: str) -> None:
    fig, (a, b) = _axes(2)
    for method, g in plot.groupby("method"):
        a.plot(g.iteration.clip(lower=1), g.error_mean, marker="o", ms=3, label=_method(method))
    a.set(xscale="log", yscale="log", xlabel="Adam iteration",
          ylabel="squared error (target units²)", title="Flat activations: learners")
    a.legend(loc="best")
    if len(fits):
        d0 = fits["size"].min()
        f = fits[fits["size"] == d0]
        first = f[f.method == f.method.iloc[0]].sort_values("r")
        b.plot(first.r, first.y, "k-", lw=2, label="target u(v*ᵀx + b*)")
        for method, g in f.groupby("method"):
            g = g.sort_values("r")
            b.plot(g.r, g.prediction, lw=1, label=_method(method))
        b.legend(loc="best")
    b.set(xlabel="pre-activation v*ᵀx + b*", ylabel="output y (target units)",
          title="Staircase fits (seed 0, end of training)")
    _save(fig, path)


# ------------------------------------------------------------------------- lines


def _methods_by_k(ax, plot, column: str) -> None:
    """``column`` against Adam iteration (log axis), a line per (k, method): decomposition
    solid, end to end dashed."""
    for (k, method), g in plot.groupby(["k", "method"]):
        ax.plot(g.iteration.clip(lower=1), g[column], marker="o", ms=3,
                ls="-" if method == "decomposition" else "--", label=f"{_method(method)}, k = {k}")
    ax.set(xscale="log", xlabel="Adam iteration")
    ax.legend(loc="best")


def _lines_figure(plot, splot, path: str) -> None:
    fig, (a, b) = _axes(2)
    _methods_by_k(a, plot, "accuracy_mean")
    a.set(ylabel="accuracy on fresh tuples (fraction)",
          title="Lines: decomposition against end to end", ylim=(0.4, 1.02))
    for method, g in splot.groupby("method"):
        b.plot(g.k, g.log10_snr, "o-", label=_method(method))
    if len(splot):
        _snr_floor(b, splot)
    b.xaxis.get_major_locator().set_params(integer=True)
    b.set(xlabel="k (images per tuple)", ylabel="log10 SNR (score layer, per tuple)",
          title="Gradient SNR at initialisation")
    b.legend(loc="best")
    _save(fig, path)


def _snr_floor(ax, splot) -> None:
    """The estimator's floor 1/(b (S-1)) as a dashed line, and at each k where learners
    sit on it a note saying so: an SNR below the floor is not resolved and is drawn at
    the floor, so equal points there are no measured tie."""
    floor = math.log10(float(splot.snr_floor.iloc[0]))
    ax.axhline(floor, color="grey", ls="--", lw=1,
               label="estimator's floor 1/(b (S-1)):\nSNR below it is drawn on it")
    methods, ks = splot.method.nunique(), sorted(splot.k.unique())
    for k, g in splot[np.isclose(splot.log10_snr.astype(float), floor)].groupby("k"):
        who = ("both at" if methods == 2 else "all at") if g.method.nunique() == methods > 1 \
            else " and ".join(_method(m) for m in g.method) + " at"
        # Inward from the panel's edges, so that the note stays inside the axes.
        ha = "left" if k == ks[0] and len(ks) > 1 else "right" if k == ks[-1] else "center"
        ax.annotate(f"{who} the\nestimator's floor", (k, floor), xytext=(0, 8),
                    textcoords="offset points", ha=ha, va="bottom", color="0.25",
                    bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8))


# ------------------------------------------------------------------------ stocks


def _stocks_figure(plot, mplot, path: str) -> None:
    fig, (a, b) = _axes(2)
    _methods_by_k(a, plot, "eval_loss")
    a.set(ylabel="minus expected reward (reward units)",
          title="Stocks: end-to-end loss on evaluation inputs")
    if len(mplot):
        b.loglog(mplot.k, mplot.moment_ratio, "o-", label="measured")
        b.loglog(mplot.k, mplot.k, "k--", label="k")
        b.legend(loc="best")
    b.set(xlabel="k (stocks)", ylabel="E||g_e2e||² / E||g_dec||² (ratio)",
          title="Gradient second moments at initialisation")
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
