"""Figures of the weight-sharing experiment, drawn from its analysis frames."""

from __future__ import annotations

import math

from theorydl.plotting import figure, legend_below, save_figure

__all__ = ["draw", "sharing_curves", "sharing_final"]

#: The targets in words (the frames' ``target`` keys).
_TARGET = {"low": "low-frequency target", "high": "high-frequency target",
           "mixed": "mixed target"}


def _title(target: str, c: float | None) -> str:
    """A panel's title: the target in words, with its blend weight C when mixed."""
    words = _TARGET.get(target, target)
    if c is None or (isinstance(c, float) and math.isnan(c)):
        return words
    return f"{words}, C = {c:g}"


def sharing_curves(curves, path) -> None:
    """Training loss (relative to the target's variance) against iterations, one panel per
    target, shared (solid) and unshared (dashed), mean over seeds."""
    order = {"low": 0, "high": 1, "mixed": 2}
    first = curves.drop_duplicates("target_label")
    targets = [(label, target, c) for _, _, label, target, c in sorted(zip(
        first.target.map(order), first.c.fillna(0.0), first.target_label, first.target,
        first.c))]
    fig, axes = figure(1, len(targets), height=3.4, squeeze=False, sharey=True)
    for ax, (label, target, c) in zip(axes.ravel(), targets):
        g = curves[curves.target_label == label]
        for shared, h in g.groupby("shared"):
            m = h.groupby("iteration").relative_loss.mean()
            ax.plot(m.index, m.values, "-" if shared else "--",
                    color="tab:green" if shared else "tab:red",
                    label="shared weights" if shared else "unshared weights")
        ax.set_yscale("log")
        ax.set_title(_title(target, c))
        ax.set_xlabel("training iteration")
        ax.grid(alpha=0.3, which="both")
    axes.ravel()[0].set_ylabel("training loss / Var(y) (ratio)")
    legend_below(fig)
    save_figure(fig, path)


def sharing_final(final, path) -> None:
    """Final held-out loss (relative) against the blend weight C, shared and unshared."""
    fig, ax = figure(height=3.6)
    for shared, g in final.groupby("shared"):
        ax.errorbar(g.c, g.relative_loss, yerr=g.relative_loss_std.fillna(0), fmt="-o",
                    ms=3, capsize=2, color="tab:green" if shared else "tab:red",
                    label="shared weights" if shared else "unshared weights")
    ax.set_xlabel("blend weight C (mixed target: high + C low)")
    ax.set_ylabel("final held-out loss / Var(y) (ratio)")
    ax.set_title("Weight sharing: final loss against C (bars: std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    save_figure(fig, path)


def draw(result, cfg) -> None:
    """The training curves and the final loss against C."""
    sharing_curves(result.frames["curves"], cfg.paths.figure_curves)
    sharing_final(result.frames["mixed"], cfg.paths.figure_final)
