"""Figures of the trained census (expressible against learned), from its result tables."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from theorydl.plotting import (FULL_WIDTH, figure, legend_below, legend_outside, pyplot,
                               save_figure)

__all__ = ["draw", "classes_figure", "expressible_figure", "hardest_figure"]


def expressible_figure(summary: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Per N, a bar group per architecture (width and depth): the functions the threshold
    network of that shape expresses (exact) and those some seed learned, per activation;
    2^(2^N) as a dotted line."""
    ns = sorted({r["n_inputs"] for r in summary})
    acts = sorted({r["activation"] for r in summary})
    fig, axes = figure(1, len(ns), height=3.8, squeeze=False)
    for ax, n in zip(axes[0], ns):
        mine = [r for r in summary if r["n_inputs"] == n]
        archs = sorted({r["architecture"] for r in mine},
                       key=lambda a: (a.count("-"), [int(k) for k in a.split("-")[1:]]))
        x = np.arange(len(archs))
        width = 0.8 / (1 + len(acts))
        expr = [next(r["expressible"] for r in mine if r["architecture"] == a) for a in archs]
        ax.bar(x, expr, width, color="0.75", hatch="//", label="expressible (exact)")
        for i, act in enumerate(acts):
            got = [next((r["learned"] for r in mine if r["architecture"] == a
                         and r["activation"] == act), 0) for a in archs]
            ax.bar(x + (i + 1) * width, got, width, label=f"learned: {act}")
        ax.axhline(2 ** 2 ** n, color="k", ls=":", lw=1, label="all $2^{2^N}$ functions")
        ax.set_xticks(x + width * len(acts) / 2, archs, rotation=30)
        ax.set_ylim(0, 2 ** 2 ** n * 1.05)
        ax.set_title(f"N = {n} inputs")
        ax.set_xlabel("architecture (hidden units per layer)")
        ax.set_ylabel("Boolean functions (count)")
        ax.grid(alpha=0.3, axis="y")
    legend_below(fig)  # the bars reach the top line: a legend inside would cover them
    fig.suptitle("What threshold networks express, and what gradient descent finds")
    save_figure(fig, path)


def classes_figure(class_rows: Sequence[dict[str, Any]], path: str | Path) -> None:
    """Seed success fraction per NPN class (largest N; classes ordered by their mean
    success over every architecture), one line per (activation, architecture): colour the
    architecture, line style the activation; hollow markers: classes the threshold
    network of that shape cannot express."""
    n = max(r["n_inputs"] for r in class_rows)
    mine = [r for r in class_rows if r["n_inputs"] == n]
    classes = sorted({r["npn_class"] for r in mine})
    mean = {c: np.mean([r["seed_success"] for r in mine if r["npn_class"] == c])
            for c in classes}
    order = sorted(classes, key=lambda c: -mean[c])
    pos = {c: i for i, c in enumerate(order)}
    fig, ax = figure(height=4.0)
    styles = ["-", "--", ":", "-."]
    acts = sorted({r["activation"] for r in mine})
    archs = sorted({r["architecture"] for r in mine})
    colors = pyplot().rcParams["axes.prop_cycle"].by_key()["color"]
    for act, arch in sorted({(r["activation"], r["architecture"]) for r in mine}):
        rs = sorted((r for r in mine if r["activation"] == act and r["architecture"] == arch),
                    key=lambda r: pos[r["npn_class"]])
        xs = [pos[r["npn_class"]] for r in rs]
        line, = ax.plot(xs, [r["seed_success"] for r in rs], lw=1, label=f"{act} {arch}",
                        ls=styles[acts.index(act) % len(styles)],
                        color=colors[archs.index(arch) % len(colors)])
        ax.scatter([pos[r["npn_class"]] for r in rs if not r["expressible"]],
                   [r["seed_success"] for r in rs if not r["expressible"]], s=14,
                   facecolors="none", edgecolors=line.get_color())
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel(f"NPN class of the function (N = {n}), ranked easiest first")
    ax.set_ylabel("fraction of seeds that fit it exactly")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("Seed success by symmetry class (hollow: not expressible)")
    ax.grid(alpha=0.3)
    legend_outside(ax, title="activation, architecture")
    save_figure(fig, path)


def _grid(n: int, table: int) -> np.ndarray:
    """A truth table as a Karnaugh-style grid: rows = the high inputs, columns = the low."""
    cols = 2 ** ((n + 1) // 2)
    bits = [(table >> j) & 1 for j in range(2 ** n)]
    return np.array(bits, dtype=float).reshape(-1, cols)


def hardest_figure(hardest: Sequence[dict[str, Any]], count: int, path: str | Path) -> None:
    """The ``count`` lowest-success functions per (activation, architecture) at the largest
    N, each drawn as its truth table (black = 1), titled with its hex table and the
    fraction of seeds that fit it (red title: expressible but never learned)."""
    n = max(r["n_inputs"] for r in hardest)
    keys = sorted({(r["activation"], r["architecture"]) for r in hardest if r["n_inputs"] == n})
    # Cells as wide as the one figure width allows; a row as tall as its truth tables
    # (rows / cols of the grid) plus a two-line title.
    cell = 0.85 * FULL_WIDTH / count
    shape = _grid(n, 0).shape
    fig, axes = figure(len(keys), count, squeeze=False,
                       height=len(keys) * (cell * shape[0] / shape[1] + 0.45) + 0.5)
    for row, (act, arch) in zip(axes, keys):
        mine = [r for r in hardest if r["n_inputs"] == n and r["activation"] == act
                and r["architecture"] == arch][:count]
        row[0].set_ylabel(f"{act}\n{arch}", rotation=0, ha="right", va="center")
        for ax, r in zip(row, mine):
            ax.imshow(_grid(n, r["table"]), cmap="Greys", vmin=0, vmax=1)
            stuck = r["expressible"] and not r["learned"]
            ax.set_title(f"{r['table']:#x}\n{r['seed_success']:.2f}", fontsize="small",
                         color="tab:red" if stuck else "k")
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])
            if not ax.images:
                ax.axis("off")
    fig.suptitle(f"Hardest functions of N = {n} (black = 1)\ntitle: truth table in hex, "
                 f"fraction of seeds that fit it; red: expressible, never learned")
    save_figure(fig, path)


def draw(result, cfg) -> None:
    """Every figure of the trained census's analysis."""
    paths = cfg.paths
    expressible_figure(result.frames["summary"], paths.figure)
    classes_figure(result.frames["classes"], paths.figure_classes)
    hardest_figure(result.frames["hardest"], cfg.n_hardest, paths.figure_hardest)
