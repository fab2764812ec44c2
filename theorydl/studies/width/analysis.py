"""Analysis of the width sweep: pure functions of its train table (the figures: ``figures``).

Definitions (means and standard deviations are over seeds):

- a configuration (optimizer, init, depth, label noise) **interpolates** at width H when
  every seed of H reached zero training error; the **interpolation width** is the
  smallest H from which on every swept width interpolates (a narrower width that happens
  to fit, between widths that do not, does not count);
- **test error at interpolation** and **at the largest width**: their seed means; their
  difference is how much the test error kept falling after the training error hit zero
  (Neyshabur, Tomioka & Srebro's observation: positive);
- **Path-SGD against SGD**: test error at the largest width of each, per init;
- **rescaling gap** of an optimizer: the largest difference, over widths, depths and
  label noise, between the seed-mean test errors of its balanced and unbalanced runs
  (the unbalanced init is the same function with its units rescaled, so an optimizer
  invariant to rescalings, like Path-SGD, has gap 0 up to a borderline test sample);
- **rescaling output gap** of an optimizer: the largest relative distance
  ``|f_b - f_u| / |f_b|`` between the outputs of a balanced run and its unbalanced twin
  (same optimizer, depth, width, noise, seed, lr) on the probe samples, over every epoch
  both recorded: where invariance is exact, this is rounding only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from theorydl.spine.experiment import Analysis, rounded

__all__ = ["analyze", "final_frame", "aggregate", "width_metrics", "output_gaps"]

GROUP = ["optimizer", "init", "depth", "label_noise"]


def final_frame(table):
    """One row per trial: its final measures (kind == "final"), trials that failed dropped.
    ``table``: an Arrow table or its pandas frame."""
    df = table.to_pandas() if isinstance(table, pa.Table) else table
    return df[(df.kind == "final") & (df.status != "failed")].copy()


def aggregate(final):
    """Per (optimizer, init, depth, label noise, width): seed means and spreads."""
    f = final.assign(fit=final.fit_epoch.notna() & (final.train_error == 0.0))
    keys = [*GROUP, "width"]
    agg = f.groupby(keys, as_index=False).agg(
        n=("seed", "size"), fit_fraction=("fit", "mean"),
        train_error=("train_error", "mean"), train_error_std=("train_error", "std"),
        test_error=("test_error", "mean"), test_error_std=("test_error", "std"),
        test_loss=("test_loss", "mean"), epochs=("epoch", "mean"),
        fit_epoch=("fit_epoch", "median"), path_norm=("path_norm", "mean"),
        spectral_product=("spectral_product", "mean"),
        frobenius_product=("frobenius_product", "mean"), margin=("margin", "mean"),
        lr=("lr", "first"), diverged=("status", lambda s: int((s == "diverged").sum())))
    return agg.sort_values(keys).reset_index(drop=True)


def _name(key: tuple, several_noise: bool) -> str:
    optimizer, init, depth, noise = key
    name = f"{optimizer}_{init}_depth{int(depth)}"
    return f"{name}_noise{noise:g}" if several_noise else name


def width_metrics(agg) -> dict[str, Any]:
    """Summary metrics per configuration, plus Path-SGD against SGD."""
    several_noise = agg.label_noise.nunique() > 1
    out: dict[str, Any] = {}
    for key, g in agg.groupby(GROUP):
        g = g.sort_values("width")
        largest = g.iloc[-1]
        # The widest run of widths that all interpolate, counted from the largest down.
        fitting = (g.fit_fraction == 1.0).to_numpy()
        tail = 0
        while tail < len(fitting) and fitting[len(fitting) - 1 - tail]:
            tail += 1
        fits = g.iloc[len(g) - tail:]
        m = {"largest_width": int(largest.width),
             "test_error_at_largest": rounded(largest.test_error),
             "train_error_at_largest": rounded(largest.train_error),
             "interpolation_width": None, "test_error_at_interpolation": None,
             "test_error_drop_after_interpolation": None, "diverged": int(g.diverged.sum())}
        if len(fits):
            first = fits.iloc[0]
            m["interpolation_width"] = int(first.width)
            m["test_error_at_interpolation"] = rounded(first.test_error)
            m["test_error_drop_after_interpolation"] = rounded(first.test_error
                                                            - largest.test_error)
        out[_name(key, several_noise)] = m
    compare = {}
    for (init, depth, noise), g in agg.groupby(["init", "depth", "label_noise"]):
        at = {o: r.test_error for o, r in g[g.width == g.width.max()].set_index(
            "optimizer").iterrows()}
        if "sgd" in at and "pathsgd" in at:
            label = f"{init}_depth{int(depth)}" + (f"_noise{noise:g}" if several_noise else "")
            compare[label] = {"sgd": rounded(at["sgd"]), "pathsgd": rounded(at["pathsgd"]),
                              "pathsgd_minus_sgd": rounded(at["pathsgd"] - at["sgd"])}
    if compare:
        out["pathsgd_vs_sgd_at_largest_width"] = compare
    gap = {}
    for optimizer, g in agg.groupby("optimizer"):
        inits = g.pivot_table(index=["depth", "label_noise", "width"], columns="init",
                              values="test_error")
        if {"balanced", "unbalanced"} <= set(inits.columns):
            diff = (inits["balanced"] - inits["unbalanced"]).abs().dropna()
            if len(diff):
                gap[optimizer] = rounded(diff.max())
    if gap:
        out["rescaling_gap"] = gap
    return out


def output_gaps(df) -> dict[str, float]:
    """Per optimizer, the rescaling output gap (module docstring) over the epoch rows of
    ``df`` that carry ``probe_outputs``; optimizers without a balanced/unbalanced pair
    are left out."""
    if "probe_outputs" not in df:
        return {}
    rows = df[(df.kind == "epoch") & (df.status != "failed") & df.probe_outputs.notna()]
    keys = ["optimizer", "depth", "width", "label_noise", "seed", "lr", "epoch"]
    pairs = rows[rows.init == "balanced"].merge(
        rows[rows.init == "unbalanced"], on=keys, suffixes=("_b", "_u"))
    gaps: dict[str, float] = {}
    for optimizer, g in pairs.groupby("optimizer"):
        worst = 0.0
        for a, b in zip(g.probe_outputs_b, g.probe_outputs_u):
            a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
            worst = max(worst, float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-300)))
        gaps[optimizer] = float(f"{worst:.6g}")
    return gaps


def curve_plot(agg):
    """dvc plots data: width against train and test error per optimizer (the first init,
    depth and noise level of the sweep), one column per (measure, optimizer)."""
    first = agg.iloc[0]
    g = agg[(agg.init == first.init) & (agg.depth == first.depth)
            & (agg.label_noise == first.label_noise)]
    wide = g.pivot(index="width", columns="optimizer", values=["train_error", "test_error"])
    wide.columns = [f"{measure}_{opt}" for measure, opt in wide.columns]
    return wide.reset_index()


def analyze(table: pa.Table, cfg) -> Analysis:
    """Width metrics, the curve plot data and the figures' frames (the search's table,
    when the search stage wrote one, included); writes nothing."""
    df = table.to_pandas()
    final = final_frame(df)
    if final.empty:
        raise ValueError("the width table has no finished trial to analyse")
    agg = aggregate(final)
    search = Path(cfg.paths.search_trials)
    metrics = width_metrics(agg)
    gaps = output_gaps(df)
    if gaps:
        metrics["rescaling_output_gap"] = gaps
    return Analysis(
        metrics=metrics,
        plots={"curve_plot": curve_plot(agg)},
        frames={"agg": agg, "epochs": df[(df.kind == "epoch") & (df.status != "failed")],
                "search": final_frame(pq.read_table(search)) if search.exists() else None})
