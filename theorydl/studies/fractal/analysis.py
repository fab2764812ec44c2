"""Analysis of the fractal study: the curves, the construction check, the gradient
against its bound, accuracy per curve (Figure 5) and per depth x width, end to end and
layer by layer; pure, it writes no file."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pyarrow as pa

from theorydl.spine.experiment import Analysis, rounded
from theorydl.studies.fractal.fractals import curve_label
from theorydl.studies.fractal.published import FIG5, train_key

__all__ = ["analyze"]


def analyze(table: pa.Table, cfg) -> Analysis:
    """Metrics (``curves``, ``construction``, ``gradient``, ``train``, ``cifar``), the plot
    data of the curves and of accuracy per curve, and the figures' frames."""
    df = table.to_pandas()
    df = df[df.status == "ok"]
    if df.empty:
        raise ValueError("the fractal table has no finished trial to analyse")
    metrics: dict[str, Any] = {}
    frames: dict[str, pd.DataFrame] = {}
    plots: dict[str, pd.DataFrame] = {}

    curves = df[df.kind == "curve"][["pdeg", "j", "analytic", "empirical"]]
    curves = curves.astype({"pdeg": int, "j": int}).sort_values(["pdeg", "j"])
    metrics["curves"] = {curve_label(p): {
        "analytic": [rounded(v) for v in g.analytic],
        "empirical": [rounded(v) for v in g.empirical],
        "max_abs_difference": rounded((g.analytic - g.empirical).abs().max())}
        for p, g in curves.groupby("pdeg")}
    plots["curve_plot"] = curves
    frames["curves"] = curves

    cons = df[df.kind == "construction"]
    if len(cons):
        metrics["construction"] = {
            "errors": int(cons.errors.sum()), "points": int(cons.points.sum()),
            "exact_on_positives": bool(cons.exact_on_positives.all()),
            "cases": {f"d{int(r.dim)}_n{int(r.levels)}": {
                "errors": int(r.errors), "depth": int(r.net_depth), "width": int(r.net_width)}
                for r in cons.itertuples()}}

    grad = df[df.kind == "gradient"].copy()
    if len(grad):
        grad["excess"] = grad.max_abs - 3 * grad.se - grad.bound
        entry: dict[str, Any] = {"curves": {}}
        for p, g in grad.groupby("pdeg"):
            entry["curves"][curve_label(int(p))] = {
                "max_abs_mean": rounded(g.max_abs.mean()), "bound": rounded(g.bound.iloc[0]),
                "level": int(g.level.iloc[0]), "excess": rounded(g.excess.max()),
                "seeds": int(len(g))}
        means = grad.groupby("pdeg").max_abs.mean()
        if 0 in means.index and 10 in means.index and means[0] > 0:
            entry["fine_over_coarse"] = rounded(means[10] / means[0])
        metrics["gradient"] = entry
        frames["gradient"] = grad

    nets = df[df.kind == "train"]
    if len(nets):
        metrics["train"], plots["accuracy_plot"], frames["depth_width"] = _train(nets, cfg)
        frames["accuracy"] = plots["accuracy_plot"]

    cifar = df[df.kind == "cifar"]
    if len(cifar):
        acc = cifar.groupby(["depth", "width"]).accuracy.mean()
        entry = {train_key(int(d), int(w)): rounded(a) for (d, w), a in acc.items()}
        widest = int(cifar.width.max())
        lo, hi = int(cifar.depth.min()), int(cifar.depth.max())
        entry["gain_widest"] = rounded(acc[(hi, widest)] - acc[(lo, widest)])
        metrics["cifar"] = entry
    return Analysis(metrics=metrics, plots=plots, frames=frames)


def _means(nets: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy over seeds per (method, pdeg, depth, width). A layer-wise row's
    network is blocks 1..layer (its trial's depth is the deepest layer trained)."""
    nets = nets.copy()
    method = nets["method"] if "method" in nets else pd.Series(None, index=nets.index)
    nets["method"] = method.fillna("end_to_end")  # the e2e trials carry no method key
    lw = nets.method == "layerwise"
    if lw.any():
        nets.loc[lw, "depth"] = nets.loc[lw, "layer"]
    nets = nets.astype({"pdeg": int, "depth": int, "width": int})
    return (nets.groupby(["method", "pdeg", "depth", "width"], as_index=False)
            .agg(accuracy=("accuracy", "mean"), train_accuracy=("train_accuracy", "mean"),
                 seeds=("accuracy", "size")))


def _best(mean: pd.DataFrame, depth: int) -> dict[int, pd.Series]:
    """Per curve, the row of the best width at ``depth``."""
    return {int(p): g.loc[g.accuracy.idxmax()]
            for p, g in mean[mean.depth == depth].groupby("pdeg")}


def _train(nets: pd.DataFrame, cfg):
    """Figure 5 (best width at the Figure 5 depth, per curve, mean over seeds) and the
    depth x width grid on the grid curve, end to end (``accuracy``) and, where run, layer
    by layer (``layerwise``: its best width, accuracy per layer there)."""
    t = cfg.train
    means = _means(nets)
    mean = means[means.method == "end_to_end"].drop(columns="method")
    lw = means[means.method == "layerwise"].drop(columns="method")
    out: dict[str, Any] = {"curves": {}}
    rows = []
    e2e_best, lw_best = _best(mean, t.depth), _best(lw, t.depth)
    for p in sorted(set(e2e_best) | set(lw_best)):
        e: dict[str, Any] = {}
        best = e2e_best.get(p)
        if best is not None:
            e = {"accuracy": rounded(best.accuracy), "width": int(best.width),
                 "train_accuracy": rounded(best.train_accuracy)}
            if p in FIG5:
                e["published"] = FIG5[p]
                e["gap"] = rounded(abs(best.accuracy - FIG5[p]))
        if p in lw_best:
            b = lw_best[p]
            layers = lw[(lw.pdeg == p) & (lw.width == b.width)].sort_values("depth")
            e["layerwise"] = {"accuracy": rounded(b.accuracy), "width": int(b.width),
                              "train_accuracy": rounded(b.train_accuracy),
                              "per_layer": [rounded(a) for a in layers.accuracy]}
        out["curves"][curve_label(p)] = e
        rows.append({"pdeg": p, "accuracy": None if best is None else best.accuracy,
                     "published": FIG5.get(p),
                     "layerwise": lw_best[p].accuracy if p in lw_best else None})
    frame = pd.DataFrame(rows, columns=["pdeg", "accuracy", "published", "layerwise"])
    grid = mean[mean.pdeg == t.grid_curve].sort_values(["depth", "width"])
    grid_lw = lw[(lw.pdeg == t.grid_curve) & lw.depth.isin(grid.depth)
                 & lw.width.isin(grid.width)]
    if grid.depth.nunique() > 1:
        lo, hi = grid.depth.min(), grid.depth.max()
        a = grid[grid.depth == lo].set_index("width").accuracy
        b = grid[grid.depth == hi].set_index("width").accuracy
        both = a.index.intersection(b.index)
        out["depth_width"] = {
            "accuracy": {train_key(int(r.depth), int(r.width)): rounded(r.accuracy)
                         for r in grid.itertuples()},
            "deeper_wins": rounded(float((b[both] > a[both]).mean())),
            "shallowest": int(lo), "deepest": int(hi)}
        if len(grid_lw):
            out["depth_width"]["layerwise"] = {
                train_key(int(r.depth), int(r.width)): rounded(r.accuracy)
                for r in grid_lw.sort_values(["depth", "width"]).itertuples()}
    grid = pd.concat([grid.assign(method="end_to_end"), grid_lw.assign(method="layerwise")],
                     ignore_index=True)
    return out, frame, grid
