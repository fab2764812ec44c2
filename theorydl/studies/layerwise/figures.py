"""Figures of the layer-wise study, drawn from its analysis frames."""

from __future__ import annotations

from theorydl.plotting import figure, legend_outside, save_figure

__all__ = ["draw"]

_COLOURS = {"layerwise": "tab:blue", "e2e": "tab:red"}
_METHOD = {"layerwise": "layer-wise", "e2e": "end to end"}


def draw(result, cfg) -> None:
    """Two panels: test accuracy of each method against n_train (mean and std over
    seeds), and the adjusted Rand index of each level (solid: the layer-wise clusters;
    dotted: k-means on the level's raw input)."""
    final, levels = result.frames["final"], result.frames["levels"]
    fig, (left, right) = figure(1, 2, height=3.6)
    for method, g in final.groupby("method"):
        left.errorbar(g.n_train, g.test_accuracy, yerr=g.test_accuracy_std.fillna(0),
                      fmt="-o", ms=3, capsize=2, color=_COLOURS.get(method),
                      label=_METHOD.get(method, method))
    left.set_xscale("log")
    left.set_xlabel("training examples")
    left.set_ylabel("test accuracy (fraction)")
    left.set_title("Accuracy (bars: std over seeds)")
    left.legend(loc="best")
    for level, g in levels.groupby("level"):
        line, = right.plot(g.n_train, g.ari, "-o", ms=3, label=f"level {int(level)}")
        right.plot(g.n_train, g.raw_ari, ":", color=line.get_color(),
                   label=f"level {int(level)}, raw k-means")
    right.set_xscale("log")
    right.set_ylim(-0.05, 1.05)
    right.set_xlabel("training examples")
    right.set_ylabel("adjusted Rand index (1: exact)")
    right.set_title("Recovery of the latent classes")
    legend_outside(right)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    save_figure(fig, cfg.paths.figure)
