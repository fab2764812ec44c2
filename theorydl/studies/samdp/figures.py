"""Figures of the SAMDP analysis (matplotlib, Agg backend, PNG files only).

:func:`draw` writes every figure of an analysis
(:func:`theorydl.studies.samdp.analysis.analyze`) into the ``paths.figures`` folder.
Every ``plot_*`` function takes arrays and an output ``path``, writes one PNG
atomically (:func:`theorydl.plotting.save_figure`), closes the figure and returns the
``Path`` written.  Parent folders are created.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from theorydl.plotting import pyplot, save_figure
from theorydl.studies.samdp.model import SAMDP, cluster_means

__all__ = [
    "draw",
    "plot_cluster_frames",
    "plot_criteria",
    "plot_embedding",
    "plot_samdp_graph",
]


def _xy(embedding: np.ndarray) -> np.ndarray:
    e = np.asarray(embedding, dtype=np.float64)
    if e.ndim != 2 or e.shape[1] < 2:
        raise ValueError(f"embedding must be (T, >=2), got shape {e.shape}")
    return e[:, :2]


def plot_embedding(embedding: np.ndarray, value: np.ndarray, labels: np.ndarray,
                   path: str | os.PathLike, *, title: str | None = None,
                   point_size: float = 4.0) -> Path:
    """Two panels of the t-SNE map ``(T, 2)``: coloured by DQN value ``(T,)`` (with a
    colourbar) and by cluster label ``(T,)`` (cluster numbers at the cluster means)."""
    plt = pyplot()
    e = _xy(embedding)
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    lab = np.asarray(labels).astype(np.int64).reshape(-1)
    if not (e.shape[0] == v.shape[0] == lab.shape[0]):
        raise ValueError("embedding, value and labels must have the same T")
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    sc = axes[0].scatter(e[:, 0], e[:, 1], c=v, s=point_size, cmap="viridis", linewidths=0)
    fig.colorbar(sc, ax=axes[0], label="DQN value  max_a Q")
    axes[0].set_title("t-SNE map: value")
    k = int(lab.max()) + 1 if lab.size else 0
    cmap = plt.get_cmap("tab20" if k > 10 else "tab10")
    axes[1].scatter(e[:, 0], e[:, 1], c=[cmap(c % cmap.N) for c in lab], s=point_size,
                    linewidths=0)
    centres = cluster_means(e, lab, k) if k else np.zeros((0, 2))
    for c, (x, y) in enumerate(centres):
        if np.isfinite(x):
            axes[1].annotate(str(c), (x, y), ha="center", va="center", fontsize=9,
                             fontweight="bold",
                             bbox=dict(boxstyle="round,pad=0.2", fc="white", alpha=0.7))
    axes[1].set_title(f"t-SNE map: {k} clusters")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def plot_samdp_graph(embedding: np.ndarray, samdp: SAMDP, path: str | os.PathLike, *,
                     title: str | None = None, min_probability: float = 0.0) -> Path:
    """The SAMDP drawn on the t-SNE map ``(T, 2)`` (steps in light grey).

    Nodes sit at the cluster means of the embedding under ``samdp.labels``; node area
    is proportional to the cluster mass; an arrow i -> j is drawn for every
    ``P_ij > min_probability`` with width proportional to ``P_ij`` and colour by the
    skill reward ``R_ij`` (colourbar).  Skills into the terminal state (the last column
    of ``P``) have no position on the map and are not drawn.  Arrows are slightly
    curved so that i -> j and j -> i stay apart.
    """
    plt = pyplot()
    from matplotlib.colors import Normalize
    from matplotlib.patches import FancyArrowPatch

    e = _xy(embedding)
    if e.shape[0] != samdp.labels.shape[0]:
        raise ValueError("embedding and samdp.labels must have the same T")
    k = samdp.n_clusters
    pos = cluster_means(e, samdp.labels, k)
    p, r = samdp.transition, samdp.skill_reward
    edges = [(i, j) for i in range(k) for j in range(k)
             if p[i, j] > min_probability and np.all(np.isfinite(pos[[i, j]]))]
    rewards = np.array([r[i, j] for i, j in edges]) if edges else np.zeros(1)
    lo, hi = float(rewards.min()), float(rewards.max())
    norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1.0)
    cmap = plt.get_cmap("coolwarm")

    fig, ax = plt.subplots(figsize=(7, 6))
    ax.scatter(e[:, 0], e[:, 1], s=2, c="0.85", linewidths=0, zorder=0)
    mass = samdp.masses.astype(np.float64)
    sizes = 40 + 700 * mass / max(mass.max(), 1.0)
    ok = np.isfinite(pos[:, 0])
    ax.scatter(pos[ok, 0], pos[ok, 1], s=sizes[ok], c="white", edgecolors="k", alpha=0.85,
               zorder=3)
    for c in np.nonzero(ok)[0]:
        ax.annotate(str(c), pos[c], ha="center", va="center", fontsize=9, zorder=4)
    for i, j in edges:
        arrow = FancyArrowPatch(
            pos[i], pos[j], arrowstyle="-|>", mutation_scale=12,
            connectionstyle="arc3,rad=0.15", lw=0.5 + 4.5 * p[i, j],
            color=cmap(norm(r[i, j])), shrinkA=10, shrinkB=10, zorder=2)
        ax.add_patch(arrow)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    sm.set_array([])
    fig.colorbar(sm, ax=ax, label="skill reward  R_ij (discounted)")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title or f"SAMDP: {k} clusters, {len(edges)} skills")
    return save_figure(fig, path)


def plot_criteria(ks: Sequence[int], criteria: Mapping[str, Sequence[float]],
                  path: str | os.PathLike, *, title: str | None = None) -> Path:
    """One small panel per criterion (``criteria[name]`` aligned with ``ks``) against K.

    Non-finite values (e.g. an infinite intensity factor) are left out of the lines.
    """
    plt = pyplot()
    ks = np.asarray(list(ks))
    names = list(criteria)
    if not names:
        raise ValueError("criteria is empty")
    ncol = min(3, len(names))
    nrow = -(-len(names) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.8 * nrow), squeeze=False)
    for ax, name in zip(axes.flat, names):
        y = np.asarray(criteria[name], dtype=np.float64)
        if y.shape != ks.shape:
            raise ValueError(f"criterion {name!r} has {y.size} values for {ks.size} ks")
        ok = np.isfinite(y)
        ax.plot(ks[ok], y[ok], marker="o")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("K")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def _frame_to_image(frame: np.ndarray) -> tuple[np.ndarray, str | None]:
    """An image for ``imshow``: (H, W) grey, (H, W, 1) grey, (H, W, 3) RGB; any other
    channel count, and 3-channel frames that are bool or 0/1 integers (MinAtar-style
    object channels), are drawn as one colour per channel on black, the highest active
    channel on top."""
    f = np.asarray(frame)
    if f.ndim == 2:
        return f.astype(np.float64), "gray"
    if f.ndim != 3:
        raise ValueError(f"a frame must be (H, W) or (H, W, C), got shape {f.shape}")
    c = f.shape[2]
    if c == 1:
        return f[..., 0].astype(np.float64), "gray"
    if c == 3 and f.dtype != bool and not (np.issubdtype(f.dtype, np.integer) and f.max() <= 1):
        scale = 255.0 if np.issubdtype(f.dtype, np.integer) else 1.0
        return np.clip(f.astype(np.float64) / scale, 0.0, 1.0), None
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if c <= 10 else "tab20"]
    rgb = np.zeros(f.shape[:2] + (3,))
    for ch in range(c):
        rgb[f[..., ch] > 0] = cmap(ch % cmap.N)[:3]
    return rgb, None


def plot_cluster_frames(frames: np.ndarray, embedding: np.ndarray, labels: np.ndarray,
                        path: str | os.PathLike, *, n_per_cluster: int = 5) -> Path:
    """A grid: one row per cluster, the ``n_per_cluster`` recorded frames whose embedding
    points lie nearest to that cluster's mean in the map (members of the cluster only).

    ``frames``: ``(T, H, W, C)`` or ``(T, H, W)``, bool or uint8 (or floats in [0, 1]);
    see ``_frame_to_image`` for how channels are drawn.  ``embedding``: ``(T, 2)``;
    ``labels``: ``(T,)``.
    """
    plt = pyplot()
    fr = np.asarray(frames)
    e = _xy(embedding)
    lab = np.asarray(labels).astype(np.int64).reshape(-1)
    if not (fr.shape[0] == e.shape[0] == lab.shape[0]):
        raise ValueError("frames, embedding and labels must have the same T")
    if fr.ndim not in (3, 4):
        raise ValueError(f"frames must be (T, H, W[, C]), got shape {fr.shape}")
    n = int(n_per_cluster)
    if n < 1:
        raise ValueError("n_per_cluster must be >= 1")
    k = int(lab.max()) + 1 if lab.size else 0
    centres = cluster_means(e, lab, k)
    fig, axes = plt.subplots(max(k, 1), n, figsize=(1.6 * n, 1.6 * max(k, 1)),
                             squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
    for c in range(k):
        members = np.nonzero(lab == c)[0]
        axes[c, 0].set_ylabel(f"cluster {c}\n(n={members.size})", fontsize=8)
        if members.size == 0:
            continue
        d = np.sum((e[members] - centres[c]) ** 2, axis=1)
        nearest = members[np.argsort(d, kind="stable")[:n]]
        for col, t in enumerate(nearest):
            img, cmap = _frame_to_image(fr[t])
            axes[c, col].imshow(img, cmap=cmap, interpolation="nearest")
            axes[c, col].set_title(f"t={t}", fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def draw(result, cfg) -> None:
    """Every figure of an analysis, per (game, seed) analysed: the t-SNE map, the SAMDP
    graph, the criteria against K and (when frames were recorded) the nearest frames,
    in the ``paths.figures`` folder, emptied first (the folder is one DVC output: no
    stale figures in it)."""
    figures = Path(cfg.paths.figures)
    if figures.exists():
        shutil.rmtree(figures)
    figures.mkdir(parents=True)
    for t in result.frames["trials"]:
        game, seed, k = t["game"], t["seed"], t["k"]
        name = f"{game}_seed{seed}"
        emb, chosen = t["embedding"], t["samdp"]
        plot_embedding(emb, t["value"], chosen.labels, figures / f"{name}_tsne.png",
                       title=f"{game}, seed {seed}: t-SNE of the last hidden layer")
        plot_samdp_graph(emb, chosen, figures / f"{name}_samdp.png",
                         title=f"{game}, seed {seed}: SAMDP, K = {k}")
        st = t["criteria"]
        plot_criteria([r["k"] for r in st],
                      {c: [np.nan if r[c] is None else r[c] for r in st]
                       for c in ("vmse", "inertia", "intensity_factor", "entropy",
                                 "greedy_difference")},
                      figures / f"{name}_criteria.png",
                      title=f"{game}, seed {seed}: criteria against K")
        if t["frames"] is not None:
            plot_cluster_frames(t["frames"], emb, chosen.labels, figures / f"{name}_frames.png")
