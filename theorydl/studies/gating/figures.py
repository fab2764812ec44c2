"""Figures of the gating and sharing experiments, drawn from their analysis frames."""

from __future__ import annotations

import numpy as np

from theorydl.plotting import pyplot, save_figure

__all__ = ["memorise_figure", "generalise_figure", "sharing_curves", "sharing_final"]

_LABEL = {"galu_ls": "GaLU, least squares", "galu": "GaLU, trained", "relu": "ReLU, trained",
          "linear": "linear, trained"}
_COLOR = {"galu_ls": "tab:purple", "galu": "tab:orange", "relu": "tab:blue",
          "linear": "tab:gray"}


def memorise_figure(mem, path) -> None:
    """Mean training loss against kd/m per network (bars: std over settings and seeds),
    the line 1 - kd/m, and the published ReLU and GaLU least-squares points (crosses)."""
    from theorydl.studies.gating.experiment import PUBLISHED_MEMORISE, PUBLISHED_RATIOS

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
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
    ax.set_xlabel("kd/m")
    ax.set_ylabel("training loss (mean squared error)")
    ax.set_title("Memorising m random points")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)
    plt.close(fig)


def generalise_figure(gen, path) -> None:
    """Test error against k per network (lr, alpha chosen on validation; bars: std over
    seeds)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for network, g in gen.groupby("network"):
        ax.errorbar(g.k, g.test_error, yerr=g.test_error_std.fillna(0), fmt="-o", ms=3,
                    capsize=2, color=_COLOR.get(network), label=network)
    if gen.empty:
        ax.text(0.5, 0.5, "generalisation study not run", ha="center", transform=ax.transAxes)
    ax.set_xlabel("width k")
    ax.set_ylabel("test error")
    ax.set_title("Generalisation (lr, alpha chosen on validation)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)
    plt.close(fig)


def sharing_curves(curves, path) -> None:
    """Training loss (relative to the target's variance) against iterations, one panel per
    target, shared (solid) and unshared (dashed), mean over seeds."""
    plt = pyplot()
    order = {"low": 0, "high": 1, "mixed": 2}
    first = curves.drop_duplicates("target_label")
    targets = [t for _, _, t in sorted(zip(first.target.map(order), first.c.fillna(0.0),
                                           first.target_label))]
    fig, axes = plt.subplots(1, len(targets), figsize=(4 * len(targets), 3.3), squeeze=False)
    for ax, label in zip(axes.ravel(), targets):
        g = curves[curves.target_label == label]
        for shared, h in g.groupby("shared"):
            m = h.groupby("iteration").relative_loss.mean()
            ax.plot(m.index, m.values, "-" if shared else "--",
                    color="tab:green" if shared else "tab:red",
                    label="shared" if shared else "unshared")
        ax.set_yscale("log")
        ax.set_title(label)
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    axes.ravel()[0].set_ylabel("training loss / Var(y)")
    save_figure(fig, path)
    plt.close(fig)


def sharing_final(final, path) -> None:
    """Final held-out loss (relative) against the blend weight C, shared and unshared."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.8))
    for shared, g in final.groupby("shared"):
        ax.errorbar(g.c, g.relative_loss, yerr=g.relative_loss_std.fillna(0), fmt="-o",
                    ms=3, capsize=2, color="tab:green" if shared else "tab:red",
                    label="shared" if shared else "unshared")
    ax.set_xlabel("C (mixed target: high + C low)")
    ax.set_ylabel("final loss / Var(y)")
    ax.set_title("Weight sharing: final loss against C")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)
    plt.close(fig)
