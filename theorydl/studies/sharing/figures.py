"""Figures of the weight-sharing experiment, drawn from its analysis frames."""

from __future__ import annotations

from theorydl.plotting import pyplot, save_figure

__all__ = ["draw", "sharing_curves", "sharing_final"]


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


def draw(result, cfg) -> None:
    """The training curves and the final loss against C."""
    sharing_curves(result.frames["curves"], cfg.paths.figure_curves)
    sharing_final(result.frames["mixed"], cfg.paths.figure_final)
