"""Analysis of the layer-wise study: test accuracy of each method against the
training-set size, the recovery of the latent classes per level (adjusted Rand index)
and the wall time; pure, it writes no file."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from theorydl.spine.experiment import Analysis, rounded

__all__ = ["analyze", "layerwise_metrics"]


def analyze(table: pa.Table, cfg) -> Analysis:
    """Metrics (:func:`layerwise_metrics`), the plot data (accuracy per method and ARI per
    level against n_train, means over seeds) and the frames of the figures."""
    df = table.to_pandas()
    df = df[df.status == "ok"]
    if df.empty:
        raise ValueError("the layerwise table has no finished trial to analyse")
    final = (df[df.kind == "final"]
             .groupby(["method", "n_train"], as_index=False)
             .agg(test_accuracy=("test_accuracy", "mean"),
                  test_accuracy_std=("test_accuracy", "std"),
                  train_accuracy=("train_accuracy", "mean"),
                  seeds=("test_accuracy", "size")))
    levels = df[df.kind == "level"]
    if levels.empty:
        levels = pd.DataFrame(columns=["n_train", "level", "ari", "ari_std", "raw_ari",
                                       "level_accuracy"])
    else:
        levels = (levels.assign(level=levels.level.astype(int))
                  .groupby(["n_train", "level"], as_index=False)
                  .agg(ari=("ari", "mean"), ari_std=("ari", "std"),
                       raw_ari=("raw_ari", "mean"), level_accuracy=("level_accuracy", "mean")))
    accuracy = (final.pivot(index="n_train", columns="method", values="test_accuracy")
                .reindex(columns=["layerwise", "e2e"]).reset_index())
    recovery = levels.pivot(index="n_train", columns="level", values="ari")
    recovery.columns = [f"level_{int(c)}" for c in recovery.columns]
    return Analysis(metrics=layerwise_metrics(final, levels),
                    plots={"accuracy_plot": accuracy, "recovery_plot": recovery.reset_index()},
                    frames={"final": final, "levels": levels})


def layerwise_metrics(final: pd.DataFrame, levels: pd.DataFrame) -> dict[str, Any]:
    """``accuracy[n][method]``: mean test accuracy (and ``gap`` = e2e - layerwise where
    both ran); ``recovery.level_l``: mean ARI and raw-k-means ARI at the largest n_train
    the layer-wise method ran, with ``recovery_curve[n].level_l`` at every n;
    ``competitive``: the accuracies and gap at the largest n both methods ran. The
    seconds per model stay in the train table's ``seconds`` column: a metric must come
    out the same on every rerun of the same trials, and wall time does not."""
    accuracy: dict[str, Any] = {}
    for n, g in final.groupby("n_train"):
        entry = {row.method: rounded(row.test_accuracy) for row in g.itertuples()}
        if {"layerwise", "e2e"} <= set(entry):
            entry["gap"] = rounded(entry["e2e"] - entry["layerwise"])
        accuracy[str(int(n))] = entry
    out: dict[str, Any] = {"accuracy": accuracy}
    if len(levels):
        curve = {str(int(n)): {f"level_{int(r.level)}": rounded(r.ari) for r in g.itertuples()}
                 for n, g in levels.groupby("n_train")}
        top = levels[levels.n_train == levels.n_train.max()]
        out["recovery"] = {f"level_{int(r.level)}": {
            "n_train": int(r.n_train), "ari": rounded(r.ari),
            "ari_std": rounded(r.ari_std) if pd.notna(r.ari_std) else None,
            "raw_kmeans_ari": rounded(r.raw_ari), "level_net_accuracy": rounded(r.level_accuracy)}
            for r in top.itertuples()}
        out["recovery_curve"] = curve
    both = [n for n, e in accuracy.items() if "gap" in e]
    if both:
        n = max(both, key=int)
        out["competitive"] = {"n_train": int(n), **accuracy[n]}
    return out
