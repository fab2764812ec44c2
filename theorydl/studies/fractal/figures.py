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


#: Bars of the accuracy figure: (column, label); a column absent or all empty is left out.
_BARS = (("accuracy", "end to end"), ("layerwise", "layer by layer"),
         ("published", "published (end to end)"))


def _accuracy(frame, path) -> None:
    fig, ax = figure(height=3.6)
    x = range(len(frame))
    bars = [(c, label) for c, label in _BARS if c in frame and frame[c].notna().any()]
    step = 0.8 / len(bars)
    for k, (column, label) in enumerate(bars):
        offset = (k - (len(bars) - 1) / 2) * step
        ax.bar([i + offset for i in x], frame[column].astype(float).fillna(0), step,
               label=label)
    ax.set_xticks(list(x), [curve_label(p) for p in frame.pdeg])
    ax.set_ylim(0.4, 1.0)
    ax.set_xlabel("approximation curve")
    ax.set_ylabel("test accuracy (fraction)")
    ax.set_title("Figure 5: accuracy per curve (no bar: not run or not published)")
    legend_outside(ax)
    save_figure(fig, path)


def _depth_width(frame, path) -> None:
    fig, ax = figure(height=3.6)
    colours = {}
    style = {"end_to_end": ("o-", "end to end"), "layerwise": ("s--", "layer by layer")}
    for (method, d), g in frame.groupby(["method", "depth"]):
        fmt, name = style[method]
        kw = {"color": colours[d]} if d in colours else {}
        line, = ax.plot(g.width, g.accuracy, fmt, label=f"depth {d}, {name}", **kw)
        colours.setdefault(d, line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("width (hidden units per layer)")
    ax.set_ylabel("test accuracy (fraction)")
    ax.set_title("Depth x width on the grid curve (dashed: layer by layer)")
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
