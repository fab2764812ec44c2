"""Figures of the fractal study, drawn from its analysis frames."""

from __future__ import annotations

from theorydl.plotting import figure, legend_outside, save_figure
from theorydl.studies.fractal.fractals import curve_label

__all__ = ["draw"]


def _curves(frame, path) -> None:
    fig, ax = figure(height=3.6)
    for p, g in frame.groupby("pdeg"):
        line, = ax.plot(g.j, g.analytic, "-", label=curve_label(p))
        ax.plot(g.j, g.empirical, "o", ms=3, color=line.get_color())
    ax.set_xlabel("fractal level j")
    ax.set_ylabel("P(j) (probability)")
    ax.set_title("Approximation curves (lines: analytic; points: sampled)")
    ax.grid(alpha=0.3)
    legend_outside(ax)
    save_figure(fig, path)


def _accuracy(frame, path) -> None:
    fig, ax = figure(height=3.6)
    x = range(len(frame))
    ax.bar([i - 0.2 for i in x], frame.accuracy, 0.4, label="measured")
    ax.bar([i + 0.2 for i in x], frame.published.fillna(0), 0.4, label="published")
    ax.set_xticks(list(x), [curve_label(p) for p in frame.pdeg])
    ax.set_ylim(0.4, 1.0)
    ax.set_xlabel("approximation curve")
    ax.set_ylabel("test accuracy (fraction)")
    ax.set_title("Figure 5: accuracy per curve (no bar: not published)")
    legend_outside(ax)
    save_figure(fig, path)


def _depth_width(frame, path) -> None:
    fig, ax = figure(height=3.6)
    for d, g in frame.groupby("depth"):
        ax.plot(g.width, g.accuracy, "o-", label=f"depth {d}")
    ax.set_xscale("log")
    ax.set_xlabel("width (hidden units per layer)")
    ax.set_ylabel("test accuracy (fraction)")
    ax.set_title("Depth x width on the grid curve")
    ax.grid(alpha=0.3)
    legend_outside(ax)
    save_figure(fig, path)


def _gradient(frame, path) -> None:
    fig, ax = figure(height=3.6)
    agg = frame.groupby("pdeg").agg(g=("max_abs", "mean"), bound=("bound", "first"))
    x = range(len(agg))
    ax.bar(list(x), agg.g, 0.5, label="largest entry (mean over seeds)")
    ax.plot(list(x), agg.bound, "k_", ms=20, label="bound 5 (P(j) - 1/2)")
    ax.set_xticks(list(x), [curve_label(p) for p in agg.index])
    ax.set_yscale("symlog", linthresh=1e-6)
    ax.set_ylim(0, 3 * max(float(agg.bound.max()), float(agg.g.max()), 1e-6))  # bound shows
    ax.set_xlabel("approximation curve")
    ax.set_ylabel("largest |gradient entry|\n(loss units per weight)")
    ax.set_title("Population gradient at initialisation (1-D Cantor)")
    legend_outside(ax)
    save_figure(fig, path)


def draw(result, cfg) -> None:
    """The curves, and where measured: accuracy per curve, depth x width, the gradient."""
    p, f = cfg.paths, result.frames
    _curves(f["curves"], p.figure_curves)
    if "accuracy" in f:
        _accuracy(f["accuracy"], p.figure_accuracy)
    if "depth_width" in f and len(f["depth_width"]):
        _depth_width(f["depth_width"], p.figure_depth_width)
    if "gradient" in f:
        _gradient(f["gradient"], p.figure_gradient)
