"""Analysis of the pooling experiment: pure functions of its train table and of the rank
rows (computed here, no training); it writes no file: :func:`analyze` returns the
metrics, the plot data and the frames the figures (:mod:`theorydl.studies.pooling.figures`)
draw.

Definitions (means and spreads over seeds):

- **accuracy** of a (task, network, geometry, channels): the seed mean of the final test
  accuracy, with its standard deviation, minimum and maximum;
- **geometry advantage** of a network on a task (at each width): the favoured geometry's
  seed-mean accuracy minus the other's, square - mirror on closedness and mirror -
  square on symmetry (the paper's claim: positive everywhere);
- **rank excess** of the deep networks' left/right partition: rank - channels; the
  largest over square-pooling networks (theory: <= 0) and the smallest over
  mirror-pooling networks with >= 2 channels (theory: > 0).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from theorydl.spine.experiment import Analysis, rounded

__all__ = ["accuracy_table", "analyze", "geometry_advantage", "rank_metrics",
           "rank_table"]

CONFIG = ["task", "network", "geometry", "channels"]


def accuracy_table(final: pd.DataFrame) -> pd.DataFrame:
    """Per (task, network, geometry, channels): seeds, mean, std, min and max of the
    final test accuracy, and the mean train accuracy."""
    agg = final.groupby(CONFIG, as_index=False).agg(
        n=("seed", "size"), test_accuracy=("test_accuracy", "mean"),
        test_accuracy_std=("test_accuracy", "std"), test_accuracy_min=("test_accuracy", "min"),
        test_accuracy_max=("test_accuracy", "max"), train_accuracy=("train_accuracy", "mean"))
    return agg.sort_values(CONFIG).reset_index(drop=True)


def geometry_advantage(acc: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    """``{network (with _c<channels> when several widths): {task: advantage}}``, for the
    networks and tasks trained with both geometries."""
    several = acc.channels.nunique() > 1
    out: dict[str, dict[str, float | None]] = {}
    favoured = {"closedness": ("square", "mirror"), "symmetry": ("mirror", "square")}
    for (task, network, channels), g in acc.groupby(["task", "network", "channels"]):
        by = g.set_index("geometry").test_accuracy
        if not {"square", "mirror"} <= set(by.index):
            continue
        good, other = favoured[task]
        name = f"{network}_c{int(channels)}" if several else network
        out.setdefault(name, {})[task] = rounded(by[good] - by[other])
    return out


def rank_table(rows: list[dict]) -> pd.DataFrame:
    """Per (depth, geometry, channels, partition): the smallest and largest rank over the
    random networks, the matrix size, and the smallest gap s_r / s_(r+1)."""
    df = pd.DataFrame(rows)
    return df.groupby(["depth", "geometry", "channels", "partition"], as_index=False).agg(
        rank_min=("rank", "min"), rank_max=("rank", "max"), full=("full", "first"),
        min_gap=("gap", "min"), networks=("seed", "size"))


def rank_metrics(table: pd.DataFrame) -> dict[str, Any]:
    """The rank table as nested metrics, the left/right excesses and the smallest gap."""
    out: dict[str, Any] = {}
    for r in table.itertuples():
        key = f"{r.depth}_{r.geometry}"
        out.setdefault(key, {}).setdefault(f"c{int(r.channels)}", {})[r.partition] = (
            int(r.rank_min) if r.rank_min == r.rank_max else [int(r.rank_min), int(r.rank_max)])
    lr = table[(table.partition == "left_right") & (table.depth == "deep")]
    square = lr[lr.geometry == "square"]
    mirror = lr[(lr.geometry == "mirror") & (lr.channels >= 2)]
    if len(square):
        out["deep_square_left_right_excess"] = int((square.rank_max - square.channels).max())
    if len(mirror):
        out["deep_mirror_left_right_excess"] = int((mirror.rank_min - mirror.channels).min())
    gaps = table.min_gap[table.rank_min < table.full]
    out["smallest_gap"] = rounded(gaps.min()) if len(gaps) else None
    return out


def analyze(table: pa.Table, cfg) -> Analysis:
    """The pooling metrics, the plot data (``ranks``: one row per network, partition and
    seed; ``accuracy_plot``) and the figures' frames, from the train table and the exact
    ranks of ``cfg.ranks``; the figures also get the blob images (``paths.data``)."""
    from theorydl.studies.pooling.blobs import load_blobs
    from theorydl.studies.pooling.ranks import convac_ranks

    rk = cfg.ranks
    rows = convac_ranks(rk.grid, rk.templates, rk.channels, range(rk.n_seeds), rk.tolerance)
    ranks = rank_table(rows)
    paths = cfg.paths

    df = table.to_pandas()
    ok = df[df.status != "failed"]
    final = ok[ok.kind == "final"]
    if final.empty:
        raise ValueError("the pooling table has no finished trial to analyse")
    acc = accuracy_table(final)
    label = acc[CONFIG].astype(str).agg("/".join, axis=1)
    plot = acc.assign(config=label)[["config", "test_accuracy", "test_accuracy_std",
                                     "test_accuracy_min", "test_accuracy_max"]]

    accuracy: dict[str, Any] = {}
    for r in acc.itertuples():
        accuracy.setdefault(r.task, {}).setdefault(r.network, {})[
            f"{r.geometry}_c{int(r.channels)}"] = {
            "mean": rounded(r.test_accuracy), "std": rounded(r.test_accuracy_std),
            "min": rounded(r.test_accuracy_min), "max": rounded(r.test_accuracy_max),
            "seeds": int(r.n), "train_mean": rounded(r.train_accuracy)}
    metrics = {"accuracy": accuracy, "geometry_advantage": geometry_advantage(acc),
               "ranks": rank_metrics(ranks),
               "diverged": int((df[df.kind == "final"].status == "diverged").sum()),
               "failed": int(df[df.status == "failed"].trial_id.nunique())}
    return Analysis(
        metrics=metrics,
        plots={"ranks": pd.DataFrame(rows), "accuracy_plot": plot},
        frames={"ranks": ranks, "blobs": load_blobs(paths.data), "final": final,
                "curves": ok[ok.kind == "curve"]})
