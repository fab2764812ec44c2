"""Figures of the IB experiment, drawn from seed-averaged curves (pandas frames)."""

from __future__ import annotations

import math

import numpy as np

from theorydl.plotting import figure, legend_below, legend_outside, pyplot, save_figure

__all__ = ["draw", "information_plane", "information_vs_epoch", "snr_figure", "depth_figure"]

_TITLES = {"bin": "binning (fixed)", "bin_adaptive": "binning (adaptive)",
           "kde_upper": "KDE upper", "kde_lower": "KDE lower"}


def _grid(rows: int, cols: int, h: float = 2.8):
    # Constrained layout (figure's): a row's axis labels and the next row's titles would
    # overlap otherwise.
    return figure(rows, cols, height=h * rows, squeeze=False)


def information_plane(curves, path) -> None:
    """Rows: activations; columns: estimators. Each layer is a trajectory in
    (I(X;T), I(T;Y)), its points coloured by log epoch, averaged over seeds."""
    plt = pyplot()
    acts = sorted(curves.activation.unique())
    ests = [e for e in _TITLES if e in set(curves.estimator)]
    fig, axes = _grid(len(acts), len(ests))
    emax = max(1, int(curves.epoch.max()))
    norm = plt.matplotlib.colors.LogNorm(vmin=1, vmax=emax + 1)
    sc = None
    for r, act in enumerate(acts):
        for c, est in enumerate(ests):
            ax = axes[r][c]
            g = curves[(curves.activation == act) & (curves.estimator == est)]
            for layer, lg in g.groupby("layer"):
                lg = lg.sort_values("epoch")
                ax.plot(lg.i_xt, lg.i_ty, "-", color="0.75", lw=0.8, zorder=1)
                sc = ax.scatter(lg.i_xt, lg.i_ty, c=lg.epoch + 1, cmap="viridis", norm=norm,
                                s=10, zorder=2)
                end = lg.iloc[-1]
                ax.annotate(str(layer), (end.i_xt, end.i_ty), fontsize="small",
                            xytext=(3, -3), textcoords="offset points")
            ax.set_title(f"{act}: {_TITLES[est]}")
            ax.set_xlabel("I(X;T) (bits)")
            ax.set_ylabel("I(T;Y) (bits)")
    if sc is not None:
        fig.colorbar(sc, ax=axes, shrink=0.8, label="epoch + 1 (log axis)")
    fig.suptitle("Information plane (layers numbered at their last epoch; mean over seeds)")
    save_figure(fig, path)


def information_vs_epoch(curves, path) -> None:
    """Rows: (activation, quantity); columns: estimators; one line per layer."""
    acts = sorted(curves.activation.unique())
    ests = [e for e in _TITLES if e in set(curves.estimator)]
    fig, axes = _grid(2 * len(acts), len(ests), h=2.4)
    for r, act in enumerate(acts):
        for c, est in enumerate(ests):
            g = curves[(curves.activation == act) & (curves.estimator == est)]
            for q, quantity in enumerate(("i_xt", "i_ty")):
                ax = axes[2 * r + q][c]
                for layer, lg in g.groupby("layer"):
                    lg = lg.sort_values("epoch")
                    ax.plot(lg.epoch + 1, lg[quantity], label=f"layer {layer}", lw=1)
                ax.set_xscale("log")
                ax.set_title(f"{act}, {_TITLES[est]}")
                ax.set_ylabel(("I(X;T)" if quantity == "i_xt" else "I(T;Y)") + " (bits)")
    for ax in axes[-1]:
        ax.set_xlabel("epoch + 1 (log axis)")
    legend_below(fig, ncols=8)
    fig.suptitle("Mutual information of each layer against epoch (mean over seeds)")
    save_figure(fig, path)


def snr_figure(curves, transitions, path) -> None:
    """Per activation: the norms of the gradient mean (solid) and std (dashed) per layer
    against epoch, log-log, with the detected drift-to-diffusion epoch marked."""
    plt = pyplot()
    acts = sorted(curves.activation.unique())
    fig, axes = _grid(1, len(acts), h=3.4)
    one = curves[(curves.estimator == "bin") & (curves.epoch > 0)]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for c, act in enumerate(acts):
        ax = axes[0][c]
        for i, (layer, lg) in enumerate(one[one.activation == act].groupby("layer")):
            lg = lg.sort_values("epoch")
            color = colors[i % len(colors)]
            ax.plot(lg.epoch, lg.grad_mean, "-", color=color, lw=1, label=f"layer {layer}")
            ax.plot(lg.epoch, lg.grad_std, "--", color=color, lw=1)
            epoch = transitions.get((act, layer))
            if epoch:
                ax.axvline(epoch, color=color, ls=":", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{act}: gradient mean (solid) and std (dashed)")
        ax.set_xlabel("epoch (log axis)")
    axes[0][0].set_ylabel("norm of the gradient's mean or std\n(loss units per weight)")
    legend_below(fig, ncols=8)
    fig.suptitle("Gradient SNR phases (dotted: detected drift-to-diffusion epoch)")
    save_figure(fig, path)


def depth_figure(depth, fraction: float, path) -> None:
    """Number of hidden layers against the epoch at which the last hidden layer first
    carries ``fraction`` of H(Y) (mean over the seeds that reach it)."""
    fig, ax = figure(height=3.6)
    for act in sorted({a for a, _ in depth}):
        pts = sorted((d, m) for (a, d), (m, _, _) in depth.items() if a == act)
        ds = [d for d, _ in pts]
        ms = [np.nan if m is None else m for _, m in pts]
        ax.plot(ds, ms, marker="o", label=act)
        for (d, m), ((_, _), (_, r, n)) in zip(pts, sorted(
                ((a, d), v) for (a, d), v in depth.items() if a == act)):
            if m is None or r < n:
                ax.annotate(f"{r}/{n}", (d, 0 if m is None or math.isnan(m) else m),
                            fontsize="small")
    ax.set_xlabel("hidden layers")
    ax.set_ylabel(f"epochs to I(T;Y) ≥ {fraction:g} H(Y)")
    ax.set_xticks(sorted({d for _, d in depth}))
    ax.set_title("Epochs until the last layer carries the label information "
                 "(r/n: seeds that reach it)")
    ax.grid(alpha=0.3)
    legend_outside(ax, title="activation")
    save_figure(fig, path)


def draw(result, cfg) -> None:
    """Every IB figure of an analysis (:func:`theorydl.studies.ib.analysis.analyze`)."""
    curves, paths = result.frames["curves"], cfg.paths
    information_plane(curves, paths.figure_plane)
    information_vs_epoch(curves, paths.figure_epochs)
    snr_figure(curves, result.frames["snr"], paths.figure_snr)
    depth_figure(result.frames["depth"], cfg.label_info_fraction, paths.figure_depth)
