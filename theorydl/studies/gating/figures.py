"""Figures of the gating experiment, drawn from its analysis frames."""

from __future__ import annotations

import numpy as np

from theorydl.plotting import figure, legend_outside, save_figure
from theorydl.studies.gating.published import PUBLISHED_MEMORISE, PUBLISHED_RATIOS

__all__ = ["draw", "memorise_figure", "generalise_figure"]

_LABEL = {"galu_ls": "GaLU, least squares", "galu": "GaLU, trained", "relu": "ReLU, trained",
          "linear": "linear, trained"}
_COLOR = {"galu_ls": "tab:purple", "galu": "tab:orange", "relu": "tab:blue",
          "linear": "tab:gray"}


def memorise_figure(mem, path) -> None:
    """Mean training loss (a fraction of the targets' mean square) against kd/m per network (bars: std over settings and seeds),
    the line 1 - kd/m, and the published ReLU and GaLU least-squares points (crosses)."""
    fig, ax = figure(height=3.8)
    top = max([1.5, *mem.ratio]) if len(mem) else 1.5
    r = np.linspace(0, top, 100)
    ax.plot(r, np.clip(1 - r, 0, None), "k--", lw=1, label="1 - kd/m")
    for network, g in mem.groupby("network"):
        c = _COLOR.get(network)
        ax.errorbar(g.ratio, g.loss, yerr=g.loss_std.fillna(0), fmt="-o", ms=3, capsize=2,
                    color=c, label=_LABEL.get(network, network))
        if network in PUBLISHED_MEMORISE:
            ax.plot(PUBLISHED_RATIOS, PUBLISHED_MEMORISE[network], "x", ms=8, color=c,
                    label=f"{_LABEL[network].split(',')[0]}, published")
    ax.set_xlabel("kd/m (width k x input dimension d / points m)")
    ax.set_ylabel("training loss / mean square\nof the targets (ratio)")
    ax.set_title("Memorising m random points (bars: std over settings and seeds)")
    ax.grid(alpha=0.3)
    legend_outside(ax)
    save_figure(fig, path)


def generalise_figure(gen, path) -> None:
    """Test error against k per network (lr, alpha chosen on validation; bars: std over
    seeds)."""
    fig, ax = figure(height=3.8)
    for network, g in gen.groupby("network"):
        ax.errorbar(g.k, g.test_error, yerr=g.test_error_std.fillna(0), fmt="-o", ms=3,
                    capsize=2, color=_COLOR.get(network), label=_LABEL.get(network, network))
    if gen.empty:
        ax.text(0.5, 0.5, "generalisation study not run", ha="center", transform=ax.transAxes)
    ax.set_xlabel("width k (hidden units)")
    ax.set_ylabel("test error (fraction misclassified)")
    ax.set_title("Generalisation (learning rate and alpha chosen on validation; "
                 "bars: std over seeds)")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        legend_outside(ax)
    save_figure(fig, path)


def draw(result, cfg) -> None:
    """The memorisation and generalisation figures."""
    memorise_figure(result.frames["memorise"], cfg.paths.figure_memorise)
    generalise_figure(result.frames["generalise"], cfg.paths.figure_generalise)
