"""Figures of the pooling experiment, drawn from the frames of its analysis (pandas, and
the blob images the analysis loaded: :func:`theorydl.studies.pooling.analysis.analyze`)."""

from __future__ import annotations

import numpy as np

from theorydl.plotting import figure, legend_below, save_figure

__all__ = ["accuracy_figure", "blob_figure", "curve_figure", "draw", "rank_figure"]

_COLOR = {"square": "tab:blue", "mirror": "tab:orange"}
_NETWORK = {"convac": "ConvAC", "relu_avg": "ReLU,\navg pool", "relu_max": "ReLU,\nmax pool"}


def accuracy_figure(final, path) -> None:
    """One panel per task (and width): final test accuracy per network, square and mirror
    side by side; a bar is the seed mean, dots are the seeds."""
    panels = sorted({(t, c) for t, c in zip(final.task, final.channels)})
    fig, axes = figure(1, len(panels), height=3.6, squeeze=False)
    for ax, (task, channels) in zip(axes[0], panels):
        f = final[(final.task == task) & (final.channels == channels)]
        networks = [n for n in _NETWORK if n in set(f.network)]
        for j, network in enumerate(networks):
            for k, geometry in enumerate(("square", "mirror")):
                acc = f[(f.network == network) & (f.geometry == geometry)].test_accuracy
                if acc.empty:
                    continue
                x = j + (k - 0.5) * 0.38
                ax.bar(x, acc.mean(), 0.36, color=_COLOR[geometry], alpha=0.55,
                       label=f"{geometry} pooling (bar: seed mean)" if j == 0 else None)
                ax.plot(np.full(len(acc), x), acc, "k.", ms=5)
        ax.set_xticks(range(len(networks)), [_NETWORK[n] for n in networks])
        lows = f.test_accuracy.min() if len(f) else 0.5
        ax.set_ylim(max(0.0, min(0.5, lows - 0.02)), 1.0)
        ax.set_title(f"{task} task ({channels} channels)")
        ax.set_ylabel("test accuracy (fraction)")
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].plot([], [], "k.", ms=5, label="one seed")
    legend_below(fig)
    save_figure(fig, path)


def curve_figure(curves, path) -> None:
    """Test accuracy against iteration, one panel per (task, network), a line per
    geometry (and width): seed mean, band from the seeds' min to max."""
    panels = sorted({(t, n) for t, n in zip(curves.task, curves.network)})
    tasks = sorted({t for t, _ in panels})
    networks = [n for n in _NETWORK if n in set(curves.network)]
    fig, axes = figure(len(tasks), len(networks), height=3.0 * len(tasks), squeeze=False)
    for i, task in enumerate(tasks):
        for j, network in enumerate(networks):
            ax = axes[i][j]
            c = curves[(curves.task == task) & (curves.network == network)]
            for (geometry, channels), g in c.groupby(["geometry", "channels"]):
                s = g.groupby("iteration").test_accuracy.agg(["mean", "min", "max"])
                ax.plot(s.index, s["mean"], color=_COLOR[geometry],
                        label=f"{geometry} pooling, {channels} channels")
                ax.fill_between(s.index, s["min"], s["max"], color=_COLOR[geometry],
                                alpha=0.2)
            ax.set_title(f"{task} task: {_NETWORK[network]}".replace("\n", " "))
            ax.set_xlabel("training iteration")
            ax.set_ylabel("test accuracy (fraction)")
            ax.grid(alpha=0.3)
    legend_below(fig)
    fig.suptitle("Test accuracy during training (line: seed mean; band: seeds' min to max)")
    save_figure(fig, path)


def rank_figure(ranks, path) -> None:
    """The separation-rank table: one heat map per channel count, rows the networks
    (depth, geometry), columns the partitions, cells the rank (min-max over networks)."""
    channels = sorted(ranks.channels.unique())
    from theorydl.studies.pooling.ranks import PARTITIONS

    present = set(zip(ranks.depth, ranks.geometry))
    rows = [k for k in (("deep", "square"), ("deep", "mirror"), ("shallow", "square"))
            if k in present]
    parts = [p for p in PARTITIONS if p in set(ranks.partition)]
    fig, axes = figure(1, len(channels), height=2.9, squeeze=False, sharey=True)
    full = ranks.full.max()
    for ax, r in zip(axes[0], channels):
        t = ranks[ranks.channels == r].set_index(["depth", "geometry", "partition"])
        grid = np.array([[t.loc[(d, g, p)].rank_max for p in parts] for d, g in rows], float)
        ax.imshow(np.log2(grid), vmin=0, vmax=np.log2(full), cmap="viridis", aspect="auto")
        for a, (d, g) in enumerate(rows):
            for b, p in enumerate(parts):
                lo, hi = int(t.loc[(d, g, p)].rank_min), int(t.loc[(d, g, p)].rank_max)
                ax.text(b, a, str(lo) if lo == hi else f"{lo}-{hi}", ha="center",
                        va="center", color="w" if grid[a, b] < full / 4 else "k")
        ax.set_xticks(range(len(parts)), [p.replace("_", "\n") for p in parts])
        ax.set_yticks(range(len(rows)), [f"{d} {g}" for d, g in rows])
        ax.set_xlabel("partition of the input patches")
        ax.set_title(f"r = {r} channels")
    axes[0][0].set_ylabel("network (depth, pooling)")
    fig.suptitle(f"Separation ranks of random ConvACs (exact; cells: rank, min-max over "
                 f"networks; matricisations {full}x{full})")
    save_figure(fig, path)


def blob_figure(blobs: dict, fraction: float, path, count: int = 8) -> None:
    """The first ``count`` training images side by side (one axes: a mosaic), each with
    its closedness and symmetry score and label (- for dropped)."""
    from theorydl.studies.pooling.blobs import extreme_labels

    images = blobs["images_train"][:count]
    n, size = len(images), images.shape[-1]
    cls, sym = blobs["closedness_train"], blobs["symmetry_train"]
    lab_c, lab_s = extreme_labels(cls, fraction), extreme_labels(sym, fraction)
    name = {-1: "-", 0: "0", 1: "1"}
    gap = max(1, size // 8)
    mosaic = np.full((size, n * (size + gap) - gap), 0.6)  # grey between the images
    for i, image in enumerate(images):
        mosaic[:, i * (size + gap):i * (size + gap) + size] = 1.0 - image
    fig, ax = figure(height=2.4)
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    for i in range(n):
        ax.text(i * (size + gap) + size / 2, -1, f"cls {cls[i]:.2f} ({name[lab_c[i]]})\n"
                f"sym {sym[i]:.2f} ({name[lab_s[i]]})", ha="center", va="bottom",
                fontsize="small")
    ax.axis("off")
    ax.set_title(f"Blob images: closedness (cls) and symmetry (sym) scores, label in "
                 f"brackets (lowest {fraction:.0%}: 0, highest {fraction:.0%}: 1, "
                 f"- dropped)", pad=30)
    save_figure(fig, path)


def draw(result, cfg) -> None:
    """Every pooling figure of an analysis (:func:`theorydl.studies.pooling.analysis.analyze`)."""
    frames, paths = result.frames, cfg.paths
    rank_figure(frames["ranks"], paths.figure_ranks)
    blob_figure(frames["blobs"], cfg.label_fraction, paths.figure_blobs)
    accuracy_figure(frames["final"], paths.figure_accuracy)
    curve_figure(frames["curves"], paths.figure_curves)
