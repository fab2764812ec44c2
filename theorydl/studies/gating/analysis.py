"""Analysis of the gating experiment: pure functions of its train table (no file written).

Memorisation: per (network, kd/m), the mean (and std) over every (m, d) of the grid, data
set and seed of the training loss left as a fraction of the targets' mean square
(``train_loss / target_mean_square``): the quantity the paper plots, whose theory for
GaLU least squares is 1 - kd/m (the residual of a projection onto a random kd-dimensional
subspace keeps 1 - kd/m of ``|y|^2`` in expectation). The raw mean squared error is kept
beside it (``memorise_mse``); the two differ by the sample's mean square, which is 1 only
in expectation.

Generalisation: per (network, k, lr, alpha), means over seeds; per (network, k) the
candidate with the lowest mean validation error is chosen (ties: the first in (lr,
alpha) order), and its test error is reported. The test error never chooses.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from theorydl.spine.experiment import Analysis, rounded
from theorydl.studies.gating.published import ratio_key

__all__ = ["analyze", "memorise_table", "generalise_choice"]

MEMORISE_NETWORKS = ("galu_ls", "galu", "relu", "linear")
GENERALISE_NETWORKS = ("relu", "galu", "linear")


def _final(df: pd.DataFrame, study: str) -> pd.DataFrame:
    if "study" not in df:
        return df.iloc[0:0]
    return df[(df.study == study) & (df.kind == "final") & (df.status != "failed")].copy()


def memorise_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per (network, ratio): mean and std of the training loss as a fraction of the
    targets' mean square (``loss``, ``loss_std``), the mean raw MSE (``mse``), and the
    number of runs."""
    f = _final(df, "memorise")
    if f.empty:
        return pd.DataFrame(columns=["network", "ratio", "loss", "loss_std", "mse", "n"])
    f["fraction"] = f.train_loss / f.target_mean_square
    return (f.groupby(["network", "ratio"], as_index=False)
            .agg(loss=("fraction", "mean"), loss_std=("fraction", "std"),
                 mse=("train_loss", "mean"), n=("fraction", "size"))
            .sort_values(["network", "ratio"]))


def generalise_choice(df: pd.DataFrame) -> pd.DataFrame:
    """Per (network, k): the (lr, alpha) of lowest mean validation error, with its means."""
    f = _final(df, "generalise")
    if f.empty:
        return pd.DataFrame(columns=["network", "k", "lr", "alpha", "validation_error",
                                     "test_error", "test_error_std", "train_error", "n"])
    f["alpha"] = f.alpha.fillna(-1.0)  # linear and relu have no alpha: one group
    agg = (f.groupby(["network", "k", "lr", "alpha"], as_index=False)
           .agg(validation_error=("validation_error", "mean"),
                test_error=("test_error", "mean"), test_error_std=("test_error", "std"),
                train_error=("train_error", "mean"), n=("test_error", "size")))
    agg = agg.sort_values(["network", "k", "validation_error", "lr", "alpha"], kind="stable")
    best = agg.groupby(["network", "k"], as_index=False).head(1)
    best["alpha"] = best.alpha.where(best.alpha >= 0)
    return best.sort_values(["network", "k"]).reset_index(drop=True)


def gating_metrics(mem: pd.DataFrame, gen: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {"memorise": {}, "memorise_std": {}, "memorise_mse": {},
                           "theory": {}, "generalise": {}}
    for r in sorted(mem.ratio.unique()) if len(mem) else []:
        out["theory"][ratio_key(r)] = round(max(0.0, 1.0 - r), 6)
    for row in mem.itertuples():
        out["memorise"].setdefault(row.network, {})[ratio_key(row.ratio)] = rounded(row.loss)
        out["memorise_std"].setdefault(row.network, {})[ratio_key(row.ratio)] = rounded(
            row.loss_std) if row.n > 1 else None
        out["memorise_mse"].setdefault(row.network, {})[ratio_key(row.ratio)] = rounded(row.mse)
    for row in gen.itertuples():
        out["generalise"].setdefault(row.network, {})[f"k{int(row.k)}"] = {
            "test_error": rounded(row.test_error),
            "test_error_std": rounded(row.test_error_std) if row.n > 1 else None,
            "validation_error": rounded(row.validation_error),
            "train_error": rounded(row.train_error), "lr": float(row.lr),
            "alpha": None if pd.isna(row.alpha) else float(row.alpha), "seeds": int(row.n)}
    return out


def memorise_plot(mem: pd.DataFrame) -> pd.DataFrame:
    wide = mem.pivot(index="ratio", columns="network", values="loss").reindex(
        columns=list(MEMORISE_NETWORKS))
    wide.index.name = "kd_m"
    wide = wide.reset_index()
    wide.insert(1, "theory", (1.0 - wide.kd_m).clip(lower=0.0))
    return wide


def generalise_plot(gen: pd.DataFrame) -> pd.DataFrame:
    wide = gen.pivot(index="k", columns="network", values="test_error").reindex(
        columns=list(GENERALISE_NETWORKS))
    return wide.reset_index()


def analyze(table: pa.Table, cfg) -> Analysis:
    """The gating metrics, the memorisation and generalisation plot data and frames."""
    df = table.to_pandas()
    mem, gen = memorise_table(df), generalise_choice(df)
    if mem.empty and gen.empty:
        raise ValueError("the gating table has no finished trial to analyse")
    return Analysis(metrics=gating_metrics(mem, gen),
                    plots={"memorise_plot": memorise_plot(mem),
                           "generalise_plot": generalise_plot(gen)},
                    frames={"memorise": mem, "generalise": gen})
