"""Analysis of the failures experiment: metrics and plot data from its train table.

Pure: :func:`analyze` returns an :class:`~theorydl.spine.experiment.Analysis` and writes
no file; the figures are :mod:`theorydl.studies.failures.figures`.

Definitions:

- **final accuracy / error**: the measure at the last logged iteration, per seed;
- **iterations to solve** (parity): the first logged iteration at which accuracy reaches
  ``analysis.solved_accuracy`` (median over seeds; null when a seed never does);
- **iterations to threshold** (conditioning): the first logged iteration at which the
  relative error is at most ``analysis.error_threshold``; the dense-over-whitened ratio
  uses the dense layer's whole budget when it never gets there (so it is a lower bound);
- **variance slope**: least-squares slope of log2 Var against d over the swept d >= 8
  (all of them when fewer than two are), one value per seed averaged first;
- **cond(W) slope**: slope of log cond(W)² against log n over ``analysis.cond_ns``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from theorydl.spine.experiment import Analysis, rounded
from theorydl.studies.failures import tasks

__all__ = ["analyze"]


def _frame(table: pa.Table):
    df = table.to_pandas()
    return df[df.status != "failed"].copy()


def _curves(df, family: str):
    cols = df.columns
    c = df[(df.family == family) & (df.kind == "curve")]
    keep = [k for k in ("size", "method", "seed", "iteration", "accuracy", "eval_error",
                        "eval_loss", "bit_accuracy", "train_loss") if k in cols]
    return c[keep].sort_values(["size", "method", "seed", "iteration"])


def _first_reach(g, column: str, target: float, above: bool) -> float | None:
    hit = g[g[column] >= target] if above else g[g[column] <= target]
    return None if hit.empty else float(hit.iteration.min())


def _median_or_none(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return float(np.median(values))


def _wide(frame, index: str, column: str, value: str, names, prefix: str):
    """One column ``<prefix><name>`` per name (the sweep's or not: then empty), for
    `dvc plots`, which draws one series per column."""
    import pandas as pd

    if frame.empty:
        return pd.DataFrame(columns=[index, *(prefix + n for n in names)])
    wide = frame.pivot_table(index=index, columns=column, values=value).reset_index()
    wide.columns = [index, *(f"{prefix}{c}" for c in wide.columns[1:])]
    for n in names:
        if prefix + n not in wide.columns:
            wide[prefix + n] = np.nan
    return wide[[index, *(prefix + n for n in names)]]


# ------------------------------------------------------------------------ parity


def _parity(df, cfg) -> tuple[dict[str, Any], Any, Any]:
    import pandas as pd

    curves = _curves(df, "parity")
    curves = curves[curves.method == "sgd_hinge"]
    out: dict[str, Any] = {"final_accuracy": {}, "final_accuracy_mean": {},
                           "iterations_to_solve": {}}
    for d, g in curves.groupby("size"):
        last = g[g.iteration == g.iteration.max()]
        out["final_accuracy"][f"d{d}"] = {f"seed{int(r.seed)}": rounded(r.accuracy)
                                          for r in last.itertuples()}
        out["final_accuracy_mean"][f"d{d}"] = rounded(last.accuracy.mean())
        out["iterations_to_solve"][f"d{d}"] = _median_or_none(
            [_first_reach(s, "accuracy", cfg.analysis.solved_accuracy, True)
             for _, s in g.groupby("seed")])
    plot = (curves.groupby(["size", "iteration"], as_index=False)
            .agg(accuracy_mean=("accuracy", "mean"), accuracy_std=("accuracy", "std"))
            .rename(columns={"size": "d"}))
    var = df[(df.family == "parity") & (df.kind == "gradvar")]
    vplot = pd.DataFrame(columns=["d", "log2_variance", "log2_bound", "exact"])
    if not var.empty:
        vplot = (var.groupby("size", as_index=False)
                 .agg(log2_variance=("log2_variance", "mean"), log2_bound=("log2_bound", "mean"),
                      exact=("exact", "all")).rename(columns={"size": "d"}))
        big = vplot[vplot.d >= 8]
        fit = big if len(big) >= 2 else vplot
        if len(fit) >= 2:
            out["variance_log2_slope_per_d"] = rounded(
                np.polyfit(fit.d, fit.log2_variance, 1)[0])
        out["variance_log2"] = {f"d{int(r.d)}": rounded(r.log2_variance)
                                for r in vplot.itertuples()}
        out["variance_within_bound"] = bool((var.variance <= var.bound * (1 + 1e-9)).all())
    return out, plot, vplot


def _parity_plot(plot):
    """Final accuracy (mean over seeds) against d."""
    last = plot[plot.iteration == plot.iteration.max()]
    return last[["d", "accuracy_mean"]].rename(columns={"accuracy_mean": "final_accuracy"})


# ------------------------------------------------------------------ conditioning


def _conditioning(df, cfg) -> tuple[dict[str, Any], Any, dict]:
    curves = _curves(df, "conditioning")
    out: dict[str, Any] = {"final_error": {}, "iterations_to_threshold": {}, "filter": {},
                           "cond": {}}
    thr = cfg.analysis.error_threshold
    budget: dict[str, float] = {}
    for (n, method), g in curves.groupby(["size", "method"]):
        last = g[g.iteration == g.iteration.max()]
        out["final_error"].setdefault(method, {})[f"n{n}"] = rounded(last.eval_error.median())
        reach = [_first_reach(s, "eval_error", thr, False) for _, s in g.groupby("seed")]
        out["iterations_to_threshold"].setdefault(method, {})[f"n{n}"] = _median_or_none(reach)
        budget[method] = float(g.iteration.max())
    filt = df[(df.family == "conditioning") & (df.kind == "filter")]
    taps = {}
    for method, g in filt.groupby("method"):
        t = [float(g[f"tap{j}"].mean()) for j in range(3)]
        taps[method] = t
        out["filter"][method] = {f"tap{j}": rounded(v) for j, v in enumerate(t)}
        out["filter"][method]["distance_to_second_difference"] = rounded(
            math.dist(t, (1.0, -2.0, 1.0)))
    ns = list(cfg.analysis.cond_ns)
    conds = [tasks.pwl_condition(n) for n in ns]
    out["cond"] = {f"n{n}": rounded(c) for n, c in zip(ns, conds)}
    out["cond_squared_loglog_slope"] = rounded(np.polyfit(np.log(ns), 2 * np.log(conds), 1)[0])
    # The ratio of the first n both learners were trained at.
    its = out["iterations_to_threshold"]
    if "dense" in its and "whitened" in its:
        n = sorted(set(its["dense"]) & set(its["whitened"]), key=lambda k: int(k[1:]))
        if n:
            w = its["whitened"][n[0]]
            dense = its["dense"][n[0]]
            dense = budget["dense"] if dense is None else dense
            out["iterations_ratio_dense_over_whitened"] = rounded(dense / max(w, 1.0)) \
                if w is not None else None
            out["dense_reached_threshold"] = its["dense"][n[0]] is not None
    plot = (curves.groupby(["method", "iteration"], as_index=False)
            .agg(error_mean=("eval_error", "mean")))
    return out, plot, {"taps": taps, "ns": ns, "conds": conds}


# -------------------------------------------------------------------------- flat


def _flat(df, cfg):
    curves = _curves(df, "flat")
    out: dict[str, Any] = {"final_error": {}}
    for (d, method), g in curves.groupby(["size", "method"]):
        last = g[g.iteration == g.iteration.max()]
        out["final_error"].setdefault(method, {})[f"d{d}"] = rounded(last.eval_error.mean())
    plot = (curves.groupby(["method", "iteration"], as_index=False)
            .agg(error_mean=("eval_error", "mean")))
    fits = df[(df.family == "flat") & (df.kind == "fit")]
    fits = fits[fits.seed == fits.seed.min()] if len(fits) else fits
    return out, plot, fits


# ------------------------------------------------------------------------- lines


def _lines(df, cfg):
    import pandas as pd

    curves = _curves(df, "lines")
    out: dict[str, Any] = {"final_accuracy": {}, "final_accuracy_mean": {}, "log10_snr": {}}
    for (k, method), g in curves.groupby(["size", "method"]):
        last = g[g.iteration == g.iteration.max()]
        out["final_accuracy"].setdefault(method, {})[f"k{k}"] = {
            f"seed{int(r.seed)}": rounded(r.accuracy) for r in last.itertuples()}
        out["final_accuracy_mean"].setdefault(method, {})[f"k{k}"] = rounded(last.accuracy.mean())
    snr = df[(df.family == "lines") & (df.kind == "snr")]
    splot = pd.DataFrame(columns=["k", "method", "log10_snr"])
    if len(snr):
        splot = (snr.groupby(["size", "method"], as_index=False)
                 .agg(log10_snr=("log10_snr", "mean"), snr=("snr", "mean"),
                      snr_floor=("snr_floor", "first")).rename(columns={"size": "k"}))
        for r in splot.itertuples():
            out["log10_snr"].setdefault(r.method, {})[f"k{r.k}"] = rounded(r.log10_snr)
            out.setdefault("snr", {}).setdefault(r.method, {})[f"k{r.k}"] = rounded(r.snr)
        out["log10_snr_floor"] = rounded(math.log10(float(splot.snr_floor.iloc[0])))
    plot = (curves.groupby(["size", "method", "iteration"], as_index=False)
            .agg(accuracy_mean=("accuracy", "mean")).rename(columns={"size": "k"}))
    return out, plot, splot


# ------------------------------------------------------------------------ stocks


def _stocks(df, cfg):
    import pandas as pd

    curves = df[(df.family == "stocks") & (df.kind == "curve")]
    out: dict[str, Any] = {"final_loss": {}, "moment_ratio": {}}
    for (k, method), g in curves.groupby(["size", "method"]):
        last = g[g.iteration == g.iteration.max()]
        out["final_loss"].setdefault(method, {})[f"k{k}"] = rounded(last.eval_loss.mean())
    mom = df[(df.family == "stocks") & (df.kind == "moments")]
    mplot = pd.DataFrame(columns=["k", "moment_ratio"])
    if len(mom):
        mplot = (mom.groupby("size", as_index=False).agg(moment_ratio=("moment_ratio", "mean"))
                 .rename(columns={"size": "k"}))
        out["moment_ratio"] = {f"k{int(r.k)}": rounded(r.moment_ratio) for r in mplot.itertuples()}
        if len(mplot) >= 2:
            out["moment_ratio_loglog_slope"] = rounded(np.polyfit(
                np.log(mplot.k.astype(float)), np.log(mplot.moment_ratio.astype(float)), 1)[0])
    plot = (curves.groupby(["size", "method", "iteration"], as_index=False)
            .agg(eval_loss=("eval_loss", "mean")).rename(columns={"size": "k"}))
    return out, plot, mplot


# --------------------------------------------------------------------------- all


def analyze(table: pa.Table, cfg) -> Analysis:
    """The metrics and plot data of every family run, and what the figures draw
    (``frames``: one entry per family that has rows)."""
    import pandas as pd

    df = _frame(table)
    # A family asked for but without rows (every trial failed) is reported as not run.
    families = [f for f in cfg.families if f in set(df.family.unique())]
    metrics: dict[str, Any] = {"families": families}
    plots: dict[str, Any] = {}
    frames: dict[str, Any] = {}
    empty = pd.DataFrame()
    if "parity" in families:
        m, plot, vplot = _parity(df, cfg)
        metrics["parity"] = m
        plots["parity_plot"] = _parity_plot(plot)
        plots["variance_plot"] = vplot
        frames["parity"] = {"plot": plot, "vplot": vplot}
    else:
        plots["parity_plot"] = plots["variance_plot"] = empty
    if "conditioning" in families:
        m, plot, extra = _conditioning(df, cfg)
        metrics["conditioning"] = m
        plots["conditioning_plot"] = _wide(plot, "iteration", "method", "error_mean",
                                           ("dense", "conv", "whitened"), "error_")
        frames["conditioning"] = {"plot": plot, "extra": extra}
    else:
        plots["conditioning_plot"] = empty
    if "flat" in families:
        m, plot, fits = _flat(df, cfg)
        metrics["flat"] = m
        plots["flat_plot"] = _wide(plot, "iteration", "method", "error_mean",
                                   ("surrogate", "end_to_end", "multiclass", "forward_only"),
                                   "error_")
        frames["flat"] = {"plot": plot, "fits": fits}
    else:
        plots["flat_plot"] = empty
    if "lines" in families:
        m, plot, splot = _lines(df, cfg)
        metrics["lines"] = m
        plots["lines_plot"] = _wide(splot, "k", "method", "log10_snr",
                                    ("end_to_end", "decomposition"), "log10_snr_")
        frames["lines"] = {"plot": plot, "splot": splot}
    else:
        plots["lines_plot"] = empty
    if "stocks" in families:
        m, plot, mplot = _stocks(df, cfg)
        metrics["stocks"] = m
        plots["stocks_plot"] = mplot
        frames["stocks"] = {"plot": plot, "mplot": mplot}
    else:
        plots["stocks_plot"] = empty
    return Analysis(metrics=metrics, plots=plots, frames=frames)
