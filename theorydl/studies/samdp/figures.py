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

from theorydl.plotting import FULL_WIDTH, figure, legend_below, save_figure
from theorydl.studies.samdp.model import SAMDP, cluster_means

__all__ = [
    "draw",
    "plot_cluster_frames",
    "plot_criteria",
    "plot_embedding",
    "plot_greedy",
    "plot_samdp_graph",
]


def _xy(embedding: np.ndarray) -> np.ndarray:
    e = np.asarray(embedding, dtype=np.float64)
    if e.ndim != 2 or e.shape[1] < 2:
        raise ValueError(f"embedding must be (T, >=2), got shape {e.shape}")
    return e[:, :2]


def _cluster_colour(c: int, k: int):
    """Cluster ``c``'s colour, the same in the map, the graph and the frames."""
    import matplotlib

    cmap = matplotlib.colormaps["tab20" if k > 10 else "tab10"]
    return cmap(c % cmap.N)


def plot_embedding(embedding: np.ndarray, value: np.ndarray, labels: np.ndarray,
                   path: str | os.PathLike, *, title: str | None = None,
                   point_size: float = 4.0) -> Path:
    """Two panels of the t-SNE map ``(T, 2)``: coloured by DQN value ``(T,)`` (with a
    colourbar) and by cluster label ``(T,)`` (cluster numbers at the cluster means)."""
    e = _xy(embedding)
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    lab = np.asarray(labels).astype(np.int64).reshape(-1)
    if not (e.shape[0] == v.shape[0] == lab.shape[0]):
        raise ValueError("embedding, value and labels must have the same T")
    fig, axes = figure(1, 2, height=4.2)
    sc = axes[0].scatter(e[:, 0], e[:, 1], c=v, s=point_size, cmap="viridis", linewidths=0)
    fig.colorbar(sc, ax=axes[0], label="DQN value max_a Q (discounted return)")
    axes[0].set_title("t-SNE map coloured by value")
    k = int(lab.max()) + 1 if lab.size else 0
    axes[1].scatter(e[:, 0], e[:, 1], c=[_cluster_colour(c, k) for c in lab], s=point_size,
                    linewidths=0)
    centres = cluster_means(e, lab, k) if k else np.zeros((0, 2))
    for c, (x, y) in enumerate(centres):
        if np.isfinite(x):
            axes[1].annotate(str(c), (x, y), ha="center", va="center", fontweight="bold",
                             bbox=dict(boxstyle="round,pad=0.2", fc="white", alpha=0.7))
    axes[1].set_title(f"t-SNE map coloured by cluster ({k} clusters)")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("t-SNE 1 (arbitrary units)")
        ax.set_ylabel("t-SNE 2 (arbitrary units)")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def _circle_layout(centres: np.ndarray) -> np.ndarray:
    """``(K, 2)`` node positions on the unit circle, evenly spaced, in the angular order
    of the clusters' t-SNE centres around their mean (neighbours on the map stay
    neighbours on the circle; an empty cluster, NaN centre, goes last), the cluster of
    largest angle at the top."""
    k = centres.shape[0]
    ok = np.isfinite(centres[:, 0])
    mid = centres[ok].mean(axis=0) if ok.any() else np.zeros(2)
    angle = np.where(ok, np.arctan2(centres[:, 1] - mid[1], centres[:, 0] - mid[0]), -np.inf)
    order = np.argsort(-angle, kind="stable")  # clockwise from the largest angle
    slots = np.pi / 2 - 2 * np.pi * np.arange(k) / max(k, 1)
    pos = np.zeros((k, 2))
    pos[order] = np.stack([np.cos(slots), np.sin(slots)], axis=1)
    return pos


def plot_samdp_graph(embedding: np.ndarray, samdp: SAMDP, path: str | os.PathLike, *,
                     title: str | None = None, min_probability: float = 0.0) -> Path:
    """The SAMDP as a graph a reader can follow, beside the t-SNE map it came from.

    Left: the map ``(T, 2)`` coloured by cluster (``samdp.labels``), numbers at the
    cluster means. Right: the graph, each cluster a node in its map colour, laid out on
    a circle in the angular order of the cluster means (:func:`_circle_layout`), the
    terminal state (episode end) at the centre; node area proportional to the cluster
    mass, the SAMDP value ``V`` under its number. An arrow i -> j for every
    ``P_ij > min_probability``, curved (i -> j and j -> i stay apart), its width
    proportional to ``P_ij``, labelled with ``P_ij`` and coloured by the skill reward
    ``R_ij`` (colourbar).
    """
    import matplotlib
    from matplotlib.colors import Normalize
    from matplotlib.patches import FancyArrowPatch

    e = _xy(embedding)
    if e.shape[0] != samdp.labels.shape[0]:
        raise ValueError("embedding and samdp.labels must have the same T")
    k = samdp.n_clusters
    centres = cluster_means(e, samdp.labels, k)
    pos = np.vstack([_circle_layout(centres), [[0.0, 0.0]]])  # row K: the terminal state
    p, r = samdp.transition, samdp.skill_reward
    edges = [(i, j) for i in range(k) for j in range(k + 1) if p[i, j] > min_probability]
    rewards = np.array([r[i, j] for i, j in edges]) if edges else np.zeros(1)
    lo, hi = float(rewards.min()), float(rewards.max())
    norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1.0)
    cmap = matplotlib.colormaps["coolwarm"]

    fig, (m, ax) = figure(1, 2, height=4.6, width_ratios=(1.0, 1.25))
    m.scatter(e[:, 0], e[:, 1], s=3, c=[_cluster_colour(c, k) for c in samdp.labels],
              linewidths=0)
    for c, (x, y) in enumerate(centres):
        if np.isfinite(x):
            m.annotate(str(c), (x, y), ha="center", va="center", fontweight="bold",
                       bbox=dict(boxstyle="round,pad=0.2", fc="white", alpha=0.7))
    m.set(xticks=[], yticks=[], xlabel="t-SNE 1 (arbitrary units)",
          ylabel="t-SNE 2 (arbitrary units)", title="Clusters on the t-SNE map")

    mass = samdp.masses.astype(np.float64)
    radius = 0.09 + 0.13 * np.sqrt(mass / max(mass.max(), 1.0))  # area ∝ mass
    values = samdp.samdp_values
    for c in range(k):
        ax.add_patch(matplotlib.patches.Circle(pos[c], radius[c], fc=_cluster_colour(c, k),
                                               ec="k", alpha=0.9, zorder=3))
        v = "" if not np.isfinite(values[c]) else f"\nV = {values[c]:.2g}"
        ax.annotate(f"{c}{v}", pos[c], ha="center", va="center", zorder=4,
                    fontsize="small")
    end = 0.1
    ax.add_patch(matplotlib.patches.Circle(pos[k], end, fc="0.85", ec="k", zorder=3))
    ax.annotate("end", pos[k], ha="center", va="center", zorder=4, fontsize="small")
    rad = 0.18
    scale = ax.transData
    for i, j in edges:
        a, b = pos[i], pos[j]
        ra, rb = radius[i], end if j == k else radius[j]
        d = (b - a) / max(np.linalg.norm(b - a), 1e-9)
        a2, b2 = a + d * ra, b - d * rb  # from rim to rim
        arrow = FancyArrowPatch(a2, b2, arrowstyle="-|>", mutation_scale=14,
                                connectionstyle=f"arc3,rad={rad}", lw=0.8 + 5.0 * p[i, j],
                                color=cmap(norm(r[i, j])), zorder=2, transform=scale)
        ax.add_patch(arrow)
        # The label at the curve's middle: arc3's control point is the chord's middle
        # shifted by rad * (dy, -dx); a quadratic Bezier passes halfway to it.
        mid = (a2 + b2) / 2 + 0.5 * rad * np.array([b2[1] - a2[1], a2[0] - b2[0]])
        ax.annotate(f"{p[i, j]:.2f}", mid, ha="center", va="center", fontsize="small",
                    zorder=5, bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="0.6",
                                        alpha=0.9))
    ax.set_xlim(-1.45, 1.45)
    ax.set_ylim(-1.4, 1.4)
    ax.set_aspect("equal")  # arc3 bends in display space: equal axes keep labels on arcs
    ax.axis("off")
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=ax, shrink=0.8, label="skill reward R_ij (discounted, reward units)")
    ax.set_title("Skills: arrow width and label = transition probability P_ij")
    fig.suptitle(title or f"SAMDP: {k} clusters, {len(edges)} skills")
    return save_figure(fig, path)


#: Each criterion's title and y label (quantity and unit) in the criteria figure.
_CRITERIA = {
    "vmse": ("value error of the SAMDP", "VMSE (relative, unitless)"),
    "inertia": ("within-cluster inertia", "sum of squares (feature units²)"),
    "intensity_factor": ("intensity factor", "in- / out-of-cluster steps (ratio)"),
    "entropy": ("transition entropy", "mean row entropy (bits)"),
    "greedy_difference": ("greedy consistency", "top - bottom quarter (fraction)"),
}


def plot_criteria(ks: Sequence[int], criteria: Mapping[str, Sequence[float]],
                  path: str | os.PathLike, *, title: str | None = None) -> Path:
    """One small panel per criterion (``criteria[name]`` aligned with ``ks``) against K.

    Non-finite values (e.g. an infinite intensity factor) are left out of the lines.
    """
    ks = np.asarray(list(ks))
    names = list(criteria)
    if not names:
        raise ValueError("criteria is empty")
    ncol = min(3, len(names))
    nrow = -(-len(names) // ncol)
    fig, axes = figure(nrow, ncol, height=2.9 * nrow, squeeze=False)
    for ax, name in zip(axes.flat, names):
        y = np.asarray(criteria[name], dtype=np.float64)
        if y.shape != ks.shape:
            raise ValueError(f"criterion {name!r} has {y.size} values for {ks.size} ks")
        ok = np.isfinite(y)
        ax.plot(ks[ok], y[ok], marker="o")
        words, unit = _CRITERIA.get(name, (name.replace("_", " "), name.replace("_", " ")))
        ax.set_title(words)
        ax.set_ylabel(unit)
        ax.set_xlabel("K (clusters)")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def _greedy_claim():
    """The greedy-consistency claim of the study (its metric's comparison and bound)."""
    from theorydl.studies.samdp.claims import CLAIMS

    return next(c for c in CLAIMS if c.metric.endswith("greedy_difference"))


def plot_greedy(trials: Sequence[Mapping], path: str | os.PathLike) -> Path:
    """Greedy consistency, the claim's measure, per (game, seed) analysed.

    ``trials``: ``{"game", "seed", "k", "criteria"}`` per (game, seed), ``criteria`` a row
    per K with ``greedy_top``, ``greedy_bottom`` and ``greedy_difference`` (None where a
    group counted no skill). Left: at the figures' K, the fraction of skill instances
    that took the greedy skill in the top and bottom quarters of the recorded episodes
    by return, and their difference (the claim's metric) with the claim's bound as a
    dashed line. Right: the difference against K, the figures' K marked.
    """
    claim = _greedy_claim()
    fig, (a, b) = figure(1, 2, height=3.8, width_ratios=(1.2, 1.0))
    trials = list(trials)
    names = [f"{t['game']}\nseed {t['seed']}" for t in trials]

    def at(t, key):
        row = next((r for r in t["criteria"] if r["k"] == t["k"]), {})
        v = row.get(key)
        return np.nan if v is None else float(v)

    x = np.arange(len(trials))
    w = 0.27
    diff = [at(t, "greedy_difference") for t in trials]
    for dx, key, colour, label, fmt in (
            (-w, "greedy_top", "tab:green", "top quarter of episodes", "{:.2f}"),
            (0.0, "greedy_bottom", "tab:red", "bottom quarter of episodes", "{:.2f}"),
            (w, "greedy_difference", "tab:blue", "difference top - bottom (the claim's)",
             "{:+.2f}")):
        bars = a.bar(x + dx, [at(t, key) for t in trials], w, color=colour, label=label)
        a.bar_label(bars, fmt=fmt, padding=2, fontsize="small")  # a 0 bar still reads
    op = {">=": "≥", "<=": "≤", "==": "="}[claim.op]
    a.axhline(claim.published, color="k", ls="--", lw=1,
              label=f"claim: difference {op} {claim.published:g}")
    a.set_xticks(x, names)
    low = min((d for d in diff if np.isfinite(d)), default=0.0)
    a.set_ylim(min(-0.1, low - 0.15), 1.15)
    a.set_ylabel("greedy skills taken (fraction)")
    a.set_title("At the figures' K")
    for t in trials:
        ks = [r["k"] for r in t["criteria"]]
        d = [np.nan if r["greedy_difference"] is None else r["greedy_difference"]
             for r in t["criteria"]]
        line, = b.plot(ks, d, "o-", label=f"{t['game']}, seed {t['seed']}")
        if t["k"] in ks:
            b.plot([t["k"]], [d[ks.index(t["k"])]], "*", ms=14, color=line.get_color(),
                   mec="k")
    b.axhline(claim.published, color="k", ls="--", lw=1)
    b.xaxis.get_major_locator().set_params(integer=True)
    b.set(xlabel="K (clusters; star: the figures' K)",
          ylabel="difference top - bottom (fraction)", title="Against K")
    b.grid(alpha=0.3)
    if not trials:
        for ax in (a, b):
            ax.text(0.5, 0.5, "no (game, seed) analysed", ha="center",
                    transform=ax.transAxes)
    if trials:
        legend_below(fig, [a, b], ncols=3)
    fig.suptitle("Greedy consistency: do high-return episodes follow the SAMDP's\n"
                 "greedy skills more often than low-return ones?")
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
    # Square frames as wide as the one figure width allows (the row labels take a share).
    cell = 0.8 * FULL_WIDTH / n
    fig, axes = figure(max(k, 1), n, height=(cell + 0.3) * max(k, 1) + 0.4, squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
    for c in range(k):
        members = np.nonzero(lab == c)[0]
        axes[c, 0].set_ylabel(f"cluster {c}\n({members.size} steps)",
                              color=_cluster_colour(c, k))
        if members.size == 0:
            continue
        d = np.sum((e[members] - centres[c]) ** 2, axis=1)
        nearest = members[np.argsort(d, kind="stable")[:n]]
        for col, t in enumerate(nearest):
            img, cmap = _frame_to_image(fr[t])
            axes[c, col].imshow(img, cmap=cmap, interpolation="nearest")
            axes[c, col].set_title(f"step {t}", fontsize="small")
    fig.suptitle("Recorded frames nearest each cluster's mean on the t-SNE map")
    return save_figure(fig, path)


def draw(result, cfg) -> None:
    """Every figure of an analysis, per (game, seed) analysed: the t-SNE map, the SAMDP
    graph, the criteria against K and (when frames were recorded) the nearest frames,
    in the ``paths.figures`` folder, emptied first (the folder is one DVC output: no
    stale figures in it); and greedy consistency of every (game, seed), the claim's
    measure, to ``paths.figure_greedy``."""
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
    plot_greedy(result.frames["trials"], cfg.paths.figure_greedy)
