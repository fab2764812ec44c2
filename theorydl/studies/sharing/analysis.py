"""Analysis of the weight-sharing experiment: the held-out loss relative to the target's
variance, per target, C and sharing; pure, it writes no file."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from theorydl.spine.experiment import Analysis, rounded
from theorydl.studies.sharing.teacher import target_label

__all__ = ["analyze", "sharing_metrics"]


def analyze(table: pa.Table, cfg) -> Analysis:
    """Metrics per target label (mean relative loss, shared and not), the final-loss plot
    data of the mixed targets, and the frames of the figures."""
    df = table.to_pandas()
    df = df[df.status != "failed"].copy()
    if df.empty:
        raise ValueError("the sharing table has no finished trial to analyse")
    df["target_label"] = [target_label(t, c) for t, c in zip(df.target, df.c)]
    final = df[df.kind == "final"]
    agg = (final.groupby(["target_label", "target", "c", "shared"], as_index=False,
                         dropna=False)
           .agg(relative_loss=("relative_loss", "mean"),
                relative_loss_std=("relative_loss", "std"), n=("relative_loss", "size")))
    mixed = agg[agg.target == "mixed"]
    plot = mixed.pivot(index="c", columns="shared", values="relative_loss").rename(
        columns={True: "shared", False: "unshared"}).reindex(columns=["shared", "unshared"])
    return Analysis(metrics=sharing_metrics(agg), plots={"final_plot": plot.reset_index()},
                    frames={"curves": df[df.kind == "curve"], "mixed": mixed})


def sharing_metrics(agg: pd.DataFrame) -> dict[str, Any]:
    """Per target label: shared and unshared mean relative held-out loss (and std), and
    shared_over_unshared where both are there (the claims read it for the blends)."""
    out: dict[str, Any] = {}
    for label, g in agg.groupby("target_label"):
        entry: dict[str, Any] = {}
        for row in g.itertuples():
            entry["shared" if row.shared else "unshared"] = {
                "relative_loss": rounded(row.relative_loss),
                "relative_loss_std": rounded(row.relative_loss_std) if row.n > 1 else None,
                "seeds": int(row.n)}
        s = entry.get("shared", {}).get("relative_loss")
        u = entry.get("unshared", {}).get("relative_loss")
        if s is not None and u is not None and u > 0:
            entry["shared_over_unshared"] = rounded(s / u)
        out[label] = entry
    return out
