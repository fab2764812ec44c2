"""Analysis of the failures experiment: metrics from its train table, plot data, figures.

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

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from theorydl.studies.failures import tasks
from theorydl.spine.store.store import write_text_atomic

__all__ = ["analyze_failures"]


def _num(x) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else round(float(x), 6)


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


def _write_csv(frame, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(path), frame.to_csv(index=False))


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


def _not_run(path: str, family: str) -> None:
    fig, (a,) = _axes(1)
    a.text(0.5, 0.5, f"no rows of family {family!r}: not in failures.families, or every "
           "trial failed", ha="center")
    a.axis("off")
    _save(fig, path)


def _save(fig, path: str) -> None:
    import matplotlib.pyplot as plt

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _axes(n: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(5 * n, 3.8))
    return fig, np.atleast_1d(axes)


# ------------------------------------------------------------------------ parity


def _parity(df, cfg) -> tuple[dict[str, Any], Any, Any]:
    import pandas as pd

    curves = _curves(df, "parity")
    curves = curves[curves.method == "sgd_hinge"]
    out: dict[str, Any] = {"final_accuracy": {}, "final_accuracy_mean": {},
                           "iterations_to_solve": {}}
    for d, g in curves.groupby("size"):
        last = g[g.iteration == g.iteration.max()]
        out["final_accuracy"][f"d{d}"] = {f"seed{int(r.seed)}": _num(r.accuracy)
                                          for r in last.itertuples()}
        out["final_accuracy_mean"][f"d{d}"] = _num(last.accuracy.mean())
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
            out["variance_log2_slope_per_d"] = _num(np.polyfit(fit.d, fit.log2_variance, 1)[0])
        out["variance_log2"] = {f"d{int(r.d)}": _num(r.log2_variance) for r in vplot.itertuples()}
        out["variance_within_bound"] = bool((var.variance <= var.bound * (1 + 1e-9)).all())
    return out, plot, vplot


def _parity_plot(plot):
    """Final accuracy (mean over seeds) against d."""
    last = plot[plot.iteration == plot.iteration.max()]
    return last[["d", "accuracy_mean"]].rename(columns={"accuracy_mean": "final_accuracy"})


def _parity_figure(plot, vplot, path: str) -> None:
    fig, (a, b) = _axes(2)
    for d, g in plot.groupby("d"):
        a.plot(g.iteration.clip(lower=1), g.accuracy_mean, marker="o", ms=3, label=f"d = {d}")
        a.fill_between(g.iteration.clip(lower=1), g.accuracy_mean - g.accuracy_std.fillna(0),
                       g.accuracy_mean + g.accuracy_std.fillna(0), alpha=0.2)
    a.set_xscale("log")
    a.set(xlabel="SGD iteration", ylabel="accuracy (fresh samples)", title="Parities",
          ylim=(0.4, 1.02))
    a.legend(fontsize=8)
    if len(vplot):
        b.plot(vplot.d, vplot.log2_variance, "o-", label="Var over all parities")
        b.plot(vplot.d, vplot.log2_bound, "k--", label="Theorem 1 bound G²/2^d")
        b.legend(fontsize=8)
    b.set(xlabel="d", ylabel="log2", title="Gradient variance at initialisation")
    _save(fig, path)


# ------------------------------------------------------------------ conditioning


def _conditioning(df, cfg) -> tuple[dict[str, Any], Any, dict]:
    curves = _curves(df, "conditioning")
    out: dict[str, Any] = {"final_error": {}, "iterations_to_threshold": {}, "filter": {},
                           "cond": {}}
    thr = cfg.analysis.error_threshold
    budget: dict[str, float] = {}
    for (n, method), g in curves.groupby(["size", "method"]):
        last = g[g.iteration == g.iteration.max()]
        out["final_error"].setdefault(method, {})[f"n{n}"] = _num(last.eval_error.median())
        reach = [_first_reach(s, "eval_error", thr, False) for _, s in g.groupby("seed")]
        out["iterations_to_threshold"].setdefault(method, {})[f"n{n}"] = _median_or_none(reach)
        budget[method] = float(g.iteration.max())
    filt = df[(df.family == "conditioning") & (df.kind == "filter")]
    taps = {}
    for method, g in filt.groupby("method"):
        t = [float(g[f"tap{j}"].mean()) for j in range(3)]
        taps[method] = t
        out["filter"][method] = {f"tap{j}": _num(v) for j, v in enumerate(t)}
        out["filter"][method]["distance_to_second_difference"] = _num(
            math.dist(t, (1.0, -2.0, 1.0)))
    ns = list(cfg.analysis.cond_ns)
    conds = [tasks.pwl_condition(n) for n in ns]
    out["cond"] = {f"n{n}": _num(c) for n, c in zip(ns, conds)}
    out["cond_squared_loglog_slope"] = _num(np.polyfit(np.log(ns), 2 * np.log(conds), 1)[0])
    # The ratio of the first n both learners were trained at.
    its = out["iterations_to_threshold"]
    if "dense" in its and "whitened" in its:
        n = sorted(set(its["dense"]) & set(its["whitened"]), key=lambda k: int(k[1:]))
        if n:
            w = its["whitened"][n[0]]
            dense = its["dense"][n[0]]
            dense = budget["dense"] if dense is None else dense
            out["iterations_ratio_dense_over_whitened"] = _num(dense / max(w, 1.0)) \
                if w is not None else None
            out["dense_reached_threshold"] = its["dense"][n[0]] is not None
    plot = (curves.groupby(["method", "iteration"], as_index=False)
            .agg(error_mean=("eval_error", "mean")))
    return out, plot, {"taps": taps, "ns": ns, "conds": conds}


def _conditioning_figure(plot, extra, threshold: float, path: str) -> None:
    fig, (a, b, c) = _axes(3)
    for method, g in plot.groupby("method"):
        a.plot(g.iteration.clip(lower=1), g.error_mean, marker="o", ms=3, label=method)
    a.axhline(threshold, color="grey", ls=":", lw=1)
    a.set(xscale="log", yscale="log", xlabel="Adam iteration", ylabel="relative error",
          title="Recovering p from f = W p")
    a.legend(fontsize=8)
    x = np.arange(3)
    b.bar(x - 0.3, [1, -2, 1], width=0.2, color="k", label="[1, -2, 1]")
    for i, (method, t) in enumerate(sorted(extra["taps"].items())):
        b.bar(x - 0.1 + 0.2 * i, t, width=0.2, label=method)
    b.set(xticks=x, xlabel="tap", title="Learned filter (raw windows)")
    b.legend(fontsize=8)
    c.loglog(extra["ns"], np.square(extra["conds"]), "o-", label="cond(W)²")
    ns = np.asarray(extra["ns"], dtype=float)
    c.loglog(ns, np.square(extra["conds"][0]) * (ns / ns[0]) ** 4, "k--", label="∝ n⁴")
    c.set(xlabel="n", title="Conditioning of W")
    c.legend(fontsize=8)
    _save(fig, path)


# -------------------------------------------------------------------------- flat


def _flat(df, cfg):
    curves = _curves(df, "flat")
    out: dict[str, Any] = {"final_error": {}}
    for (d, method), g in curves.groupby(["size", "method"]):
        last = g[g.iteration == g.iteration.max()]
        out["final_error"].setdefault(method, {})[f"d{d}"] = _num(last.eval_error.mean())
    plot = (curves.groupby(["method", "iteration"], as_index=False)
            .agg(error_mean=("eval_error", "mean")))
    fits = df[(df.family == "flat") & (df.kind == "fit")]
    fits = fits[fits.seed == fits.seed.min()] if len(fits) else fits
    return out, plot, fits


def _flat_figure(plot, fits, path: str) -> None:
    fig, (a, b) = _axes(2)
    for method, g in plot.groupby("method"):
        a.plot(g.iteration.clip(lower=1), g.error_mean, marker="o", ms=3, label=method)
    a.set(xscale="log", yscale="log", xlabel="Adam iteration", ylabel="squared error",
          title="Flat activations: learners")
    a.legend(fontsize=8)
    if len(fits):
        d0 = fits["size"].min()
        f = fits[fits["size"] == d0]
        first = f[f.method == f.method.iloc[0]].sort_values("r")
        b.plot(first.r, first.y, "k-", lw=2, label="target u(v*ᵀx + b*)")
        for method, g in f.groupby("method"):
            g = g.sort_values("r")
            b.plot(g.r, g.prediction, lw=1, label=method)
        b.legend(fontsize=7)
    b.set(xlabel="v*ᵀx + b*", ylabel="y", title="Staircase fits (seed 0, end of training)")
    _save(fig, path)


# ------------------------------------------------------------------------- lines


def _lines(df, cfg):
    import pandas as pd

    curves = _curves(df, "lines")
    out: dict[str, Any] = {"final_accuracy": {}, "final_accuracy_mean": {}, "log10_snr": {}}
    for (k, method), g in curves.groupby(["size", "method"]):
        last = g[g.iteration == g.iteration.max()]
        out["final_accuracy"].setdefault(method, {})[f"k{k}"] = {
            f"seed{int(r.seed)}": _num(r.accuracy) for r in last.itertuples()}
        out["final_accuracy_mean"].setdefault(method, {})[f"k{k}"] = _num(last.accuracy.mean())
    snr = df[(df.family == "lines") & (df.kind == "snr")]
    splot = pd.DataFrame(columns=["k", "method", "log10_snr"])
    if len(snr):
        splot = (snr.groupby(["size", "method"], as_index=False)
                 .agg(log10_snr=("log10_snr", "mean"), snr=("snr", "mean"),
                      snr_floor=("snr_floor", "first")).rename(columns={"size": "k"}))
        for r in splot.itertuples():
            out["log10_snr"].setdefault(r.method, {})[f"k{r.k}"] = _num(r.log10_snr)
            out.setdefault("snr", {}).setdefault(r.method, {})[f"k{r.k}"] = _num(r.snr)
        out["log10_snr_floor"] = _num(math.log10(float(splot.snr_floor.iloc[0])))
    plot = (curves.groupby(["size", "method", "iteration"], as_index=False)
            .agg(accuracy_mean=("accuracy", "mean")).rename(columns={"size": "k"}))
    return out, plot, splot


def _methods_by_k(ax, plot, column: str) -> None:
    """``column`` against Adam iteration (log axis), a line per (k, method): decomposition
    solid, end to end dashed."""
    for (k, method), g in plot.groupby(["k", "method"]):
        ax.plot(g.iteration.clip(lower=1), g[column], marker="o", ms=3,
                ls="-" if method == "decomposition" else "--", label=f"{method}, k = {k}")
    ax.set(xscale="log", xlabel="Adam iteration")
    ax.legend(fontsize=7)


def _lines_figure(plot, splot, path: str) -> None:
    fig, (a, b) = _axes(2)
    _methods_by_k(a, plot, "accuracy_mean")
    a.set(ylabel="accuracy (fresh tuples)", title="Lines: decomposition against end to end",
          ylim=(0.4, 1.02))
    for method, g in splot.groupby("method"):
        b.plot(g.k, g.log10_snr, "o-", label=method)
    if len(splot):
        b.axhline(math.log10(float(splot.snr_floor.iloc[0])), color="grey", ls=":",
                  label="resolution 1/(b (S-1))")
    b.set(xlabel="k", ylabel="log10 SNR (score layer, per tuple)",
          title="Gradient SNR at initialisation")
    b.legend(fontsize=8)
    _save(fig, path)


# ------------------------------------------------------------------------ stocks


def _stocks(df, cfg):
    import pandas as pd

    curves = df[(df.family == "stocks") & (df.kind == "curve")]
    out: dict[str, Any] = {"final_loss": {}, "moment_ratio": {}}
    for (k, method), g in curves.groupby(["size", "method"]):
        last = g[g.iteration == g.iteration.max()]
        out["final_loss"].setdefault(method, {})[f"k{k}"] = _num(last.eval_loss.mean())
    mom = df[(df.family == "stocks") & (df.kind == "moments")]
    mplot = pd.DataFrame(columns=["k", "moment_ratio"])
    if len(mom):
        mplot = (mom.groupby("size", as_index=False).agg(moment_ratio=("moment_ratio", "mean"))
                 .rename(columns={"size": "k"}))
        out["moment_ratio"] = {f"k{int(r.k)}": _num(r.moment_ratio) for r in mplot.itertuples()}
        if len(mplot) >= 2:
            out["moment_ratio_loglog_slope"] = _num(np.polyfit(
                np.log(mplot.k.astype(float)), np.log(mplot.moment_ratio.astype(float)), 1)[0])
    plot = (curves.groupby(["size", "method", "iteration"], as_index=False)
            .agg(eval_loss=("eval_loss", "mean")).rename(columns={"size": "k"}))
    return out, plot, mplot


def _stocks_figure(plot, mplot, path: str) -> None:
    fig, (a, b) = _axes(2)
    _methods_by_k(a, plot, "eval_loss")
    a.set(ylabel="minus expected reward", title="Stocks: end-to-end loss")
    if len(mplot):
        b.loglog(mplot.k, mplot.moment_ratio, "o-", label="measured")
        b.loglog(mplot.k, mplot.k, "k--", label="k")
        b.legend(fontsize=8)
    b.set(xlabel="k", ylabel="E||g_e2e||² / E||g_dec||²", title="Second moments at init")
    _save(fig, path)


# --------------------------------------------------------------------------- all


def analyze_failures(table: pa.Table, cfg) -> dict[str, Any]:
    """Write the metrics, plot data and figures of every family run; return the metrics."""
    import pandas as pd

    df = _frame(table)
    paths = cfg.paths
    # A family asked for but without rows (every trial failed) is reported as not run.
    families = [f for f in cfg.families if f in set(df.family.unique())]
    metrics: dict[str, Any] = {"families": families}
    empty = pd.DataFrame()
    if "parity" in families:
        m, plot, vplot = _parity(df, cfg)
        metrics["parity"] = m
        _write_csv(_parity_plot(plot), paths.parity_plot)
        _write_csv(vplot, paths.variance_plot)
        _parity_figure(plot, vplot, paths.figure_parity)
    else:
        for p in (paths.parity_plot, paths.variance_plot):
            _write_csv(empty, p)
        _not_run(paths.figure_parity, "parity")
    if "conditioning" in families:
        m, plot, extra = _conditioning(df, cfg)
        metrics["conditioning"] = m
        _write_csv(_wide(plot, "iteration", "method", "error_mean", ("dense", "conv", "whitened"),
                         "error_"), paths.conditioning_plot)
        _conditioning_figure(plot, extra, cfg.analysis.error_threshold,
                             paths.figure_conditioning)
    else:
        _write_csv(empty, paths.conditioning_plot)
        _not_run(paths.figure_conditioning, "conditioning")
    if "flat" in families:
        m, plot, fits = _flat(df, cfg)
        metrics["flat"] = m
        _write_csv(_wide(plot, "iteration", "method", "error_mean",
                         ("surrogate", "end_to_end", "multiclass", "forward_only"), "error_"),
                   paths.flat_plot)
        _flat_figure(plot, fits, paths.figure_flat)
    else:
        _write_csv(empty, paths.flat_plot)
        _not_run(paths.figure_flat, "flat")
    if "lines" in families:
        m, plot, splot = _lines(df, cfg)
        metrics["lines"] = m
        _write_csv(_wide(splot, "k", "method", "log10_snr", ("end_to_end", "decomposition"),
                         "log10_snr_"), paths.lines_plot)
        _lines_figure(plot, splot, paths.figure_lines)
    else:
        _write_csv(empty, paths.lines_plot)
        _not_run(paths.figure_lines, "lines")
    if "stocks" in families:
        m, plot, mplot = _stocks(df, cfg)
        metrics["stocks"] = m
        _write_csv(mplot, paths.stocks_plot)
        _stocks_figure(plot, mplot, paths.figure_stocks)
    else:
        _write_csv(empty, paths.stocks_plot)
        _not_run(paths.figure_stocks, "stocks")
    Path(paths.metrics).parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(paths.metrics), json.dumps(metrics, indent=2) + "\n")
    return metrics
