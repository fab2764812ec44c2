"""Analysis of the IB experiment: pure functions of its train table, then the figures.

Definitions (all averages are over seeds, of trials whose status is ok):

- **end of the fitting phase** of a layer: the sampled epoch at which its mean I(X;T)
  peaks; **compression**: that peak minus the final I(X;T) (bits; 0 = none);
- **SNR transition**: per layer, :func:`theorydl.studies.ib.snr.drift_diffusion_epoch` on the mean
  SNR (norm of the mean gradient over the norm of its std, over an epoch's minibatches);
- **epochs to label information**: per seed, the first sampled epoch at which the last
  hidden layer's I(T;Y) (estimator ``label_info_estimator``, binning by default) reaches
  ``label_info_fraction`` x H(Y); averaged over the seeds that reach it (the count that
  never did is reported too).

Summaries for the claims (:attr:`theorydl.studies.ib.experiment.IB.claims`), on the first
architecture of ``hidden`` (the paper's network):

- ``max_hidden_compression_bits`` per activation and estimator: the largest
  compression over the hidden layers (the output's softmax left out);
- ``snr_transition_fraction`` per activation: the fraction of hidden layers whose SNR
  shows a drift-to-diffusion transition;
- ``depth_epochs_spearman`` per activation: Spearman's rank correlation between depth
  and epochs to label information, over the depths whose seeds reach it (null with
  fewer than three such depths, or when the epochs do not vary).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from theorydl.spine.experiment import Analysis

__all__ = ["analyze", "seed_means", "fitting_and_compression", "epochs_to_label_info",
           "snr_transitions", "depth_spearman", "PLOT_ACTIVATIONS"]

#: The activations `dvc plots` contrasts, one series (and one plane file) each, as the
#: paper's claims do; the figures draw every activation the params list.
PLOT_ACTIVATIONS = ("tanh", "relu")


def _frame(table: pa.Table):
    df = table.select(["activation", "hidden", "depth", "seed", "status", "epoch", "layer",
                       "estimator", "i_xt", "i_ty", "test_acc", "h_y", "grad_mean",
                       "grad_std", "snr"]).to_pandas()
    df["arch"] = df["hidden"].map(lambda h: "-".join(str(int(w)) for w in h))
    return df


def seed_means(df):
    """Mean over seeds per (activation, arch, depth, estimator, layer, epoch)."""
    keys = ["activation", "arch", "depth", "estimator", "layer", "epoch"]
    return (df[df.status == "ok"].groupby(keys, as_index=False)
            [["i_xt", "i_ty", "test_acc", "grad_mean", "grad_std", "snr"]].mean())


def fitting_and_compression(curves) -> dict:
    """{(activation, arch, estimator, layer): (epoch of peak I(X;T), peak - final)}."""
    out = {}
    for key, g in curves.groupby(["activation", "arch", "estimator", "layer"]):
        g = g.sort_values("epoch")
        if g.i_xt.isna().all():
            continue
        peak = int(g.i_xt.idxmax())
        out[key] = (int(g.loc[peak, "epoch"]), float(g.i_xt.max() - g.i_xt.iloc[-1]))
    return out


def snr_transitions(curves) -> dict:
    """{(activation, arch, layer): epoch of the drift-to-diffusion drop, or None}."""
    from theorydl.studies.ib.snr import drift_diffusion_epoch

    out = {}
    one = curves[curves.estimator == "bin"]  # SNR is the same on every estimator row
    for key, g in one.groupby(["activation", "arch", "layer"]):
        g = g[(g.epoch > 0) & g.snr.notna() & (g.snr > 0)].sort_values("epoch")
        out[key] = (drift_diffusion_epoch(g.epoch.to_numpy(), g.snr.to_numpy())
                    if len(g) >= 6 else None)
    return out


def epochs_to_label_info(df, fraction: float, estimator: str = "bin") -> dict:
    """{(activation, depth): (mean epoch over the seeds that reach it, n reached, n seeds)}."""
    ok = df[(df.status == "ok") & (df.estimator == estimator)]
    out = {}
    for (activation, depth), g in ok.groupby(["activation", "depth"]):
        last_hidden = g[g.layer == depth]
        reached = []
        seeds = last_hidden.seed.unique()
        for _, s in last_hidden.groupby("seed"):
            hit = s[s.i_ty >= fraction * s.h_y].epoch
            if len(hit):
                reached.append(int(hit.min()))
        mean = float(np.mean(reached)) if reached else None
        out[(activation, int(depth))] = (mean, len(reached), len(seeds))
    return out


def depth_spearman(depth: dict, activation: str) -> float | None:
    """Spearman's rank correlation of depth against mean epochs to label information
    (``depth`` as :func:`epochs_to_label_info` returns it), or None (see the module)."""
    pairs = [(d, mean) for (act, d), (mean, _, _) in sorted(depth.items())
             if act == activation and mean is not None]
    if len(pairs) < 3:
        return None
    frame = pd.DataFrame(pairs, columns=["depth", "epochs"])
    rho = frame.depth.corr(frame.epochs, method="spearman")
    return None if not np.isfinite(rho) else round(float(rho), 4)


def analyze(table: pa.Table, cfg) -> Analysis:
    """The IB metrics, plot data and figure frames of the train table."""
    df = _frame(table)
    curves = seed_means(df)
    main = "-".join(map(str, cfg.hidden[0]))
    fits = fitting_and_compression(curves)
    snr = snr_transitions(curves)
    depth = epochs_to_label_info(df, cfg.label_info_fraction, cfg.label_info_estimator)
    statuses = df.drop_duplicates(["activation", "arch", "seed"]).status.value_counts()

    hidden_layers = len(cfg.hidden[0])
    metrics: dict[str, Any] = {"trials": {k: int(v) for k, v in statuses.items()}}
    for activation in sorted(df.activation.unique()):
        entry: dict[str, Any] = {}
        for (act, arch, estimator, layer), (epoch, comp) in sorted(fits.items()):
            if act == activation and arch == main:
                e = entry.setdefault(estimator, {"fit_end_epoch": {}, "compression_bits": {}})
                e["fit_end_epoch"][str(layer)] = epoch
                e["compression_bits"][str(layer)] = round(comp, 4)
        for e in entry.values():
            hidden = [c for layer, c in e["compression_bits"].items()
                      if int(layer) <= hidden_layers]
            e["max_hidden_compression_bits"] = max(hidden) if hidden else None
        entry["snr_transition_epoch"] = {
            str(layer): ep for (act, arch, layer), ep in sorted(snr.items())
            if act == activation and arch == main}
        found = [ep for layer, ep in entry["snr_transition_epoch"].items()
                 if int(layer) <= hidden_layers]
        entry["snr_transition_fraction"] = (
            round(sum(ep is not None for ep in found) / len(found), 4) if found else None)
        entry["epochs_to_label_info"] = {
            f"depth_{d}": (None if mean is None else round(mean, 1))
            for (act, d), (mean, _, _) in sorted(depth.items()) if act == activation}
        entry["depth_epochs_spearman"] = depth_spearman(depth, activation)
        metrics[activation] = entry
    plane = curves[(curves.arch == main) & (curves.estimator == "bin")]
    plane_cols = ["layer", "epoch", "i_xt", "i_ty"]
    # One column per activation (empty where it did not reach the label information):
    # the two series DVC draws, as the claim contrasts them.
    depth_rows = [{"depth": d, **{a: depth[a, d][0] if (a, d) in depth else None
                                  for a in PLOT_ACTIVATIONS}}
                  for d in sorted({d for _, d in depth})]
    return Analysis(
        metrics=metrics,
        plots={**{f"plane_{a}_plot": plane[plane.activation == a][plane_cols]
                  .to_csv(index=False, float_format="%.6g") for a in PLOT_ACTIVATIONS},
               "depth_plot": pd.DataFrame(depth_rows, columns=["depth", *PLOT_ACTIVATIONS])},
        frames={"curves": curves[curves.arch == main],
                "snr": {(a, l): e for (a, arch, l), e in snr.items() if arch == main},
                "depth": depth})
