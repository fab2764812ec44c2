"""The Information Bottleneck experiment: the information plane of small networks.

Shwartz-Ziv & Tishby (2017) trained 12-10-7-5-4-3-2 networks on a 12-bit task and saw,
in the plane of I(X;T) against I(T;Y), a fitting phase followed by a compression phase,
which they tied to a drop of the gradients' signal-to-noise ratio (drift, then diffusion).
Saxe et al. (ICLR 2018) answered that compression is a property of saturating (tanh)
units and of the binning estimator, and does not happen with ReLU. This experiment runs
both sides from the same trainings: tanh and ReLU stacks, fixed and adaptive binning,
Kolchinsky-Tracey KDE bounds, gradient SNR per layer, and a sweep over depth.

A trial is (activation, hidden widths, seed); every trial of one (activation, widths)
pair trains in one stack, and estimates are computed on the device during training at
log-spaced epochs, for every layer of every model, without storing activations.

Run it: ``dvc repro ib_analyze``; paper scale: ``theorydl profile paper`` first.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from theorydl.spine.config import Params, Paths, Section, data_file, figure_file, plot_file
from theorydl.spine.experiment import Claim, Plot, Stage, StageError
from theorydl.spine.spec import TrialSpec
from theorydl.spine.stacked import (
    StackedExperiment,
    StackResources,
    finite_or_none,
    log_spaced,
    worker_device,
)

__all__ = ["IB", "IBConfig", "log_epochs"]

#: The estimate epochs: ``count`` log-spaced epochs in [0, epochs] (``log_spaced``).
log_epochs = log_spaced

ESTIMATORS = ("bin", "bin_adaptive", "kde_upper", "kde_lower")


class IBDataConfig(Section):
    train_fraction: float = Field(default=0.85, gt=0.0, lt=1.0)
    """Fraction of the 4096 patterns in the (stratified, shuffled) training set."""
    split_seed: int = Field(default=0, ge=0)
    """Seed of the train/test split."""
    label_degree: int = Field(default=1, ge=1, le=6)
    """Spherical-harmonic degree of the rotation-invariant label rule (1: H(Y) = 0.99998)."""


class IBEstimatorConfig(Section):
    bins: int = Field(default=30, ge=2, le=1000)
    """Fixed binning: categories per unit (the original: 30, its ``num_of_bins``); how
    they cover bin_range is bin_convention's."""
    bin_convention: Literal["idnns", "clip"] = "idnns"
    """How the fixed bins cover bin_range [lo, hi] (edges: np.linspace in float64, cast
    to the activations' float32; a value t is in bin k when e_k <= t < e_{k+1}).
    ``idnns``, the original code's (ravidziv/IDNNs, get_information): edges
    np.linspace(lo, hi, bins), so bins - 1 equal bins of width (hi - lo) / (bins - 1),
    and every value below lo or at or above hi in one extra category of its own (its
    ``bins[np.digitize(t, bins) - 1]`` maps both to the last edge's value): a tanh unit
    at exactly 1.0 is set apart from the bin below, one at exactly -1.0 opens the first
    bin, and a ReLU unit's values >= hi are one category.  ``clip`` (theorydl's before
    IB version 3): edges np.linspace(lo, hi, bins + 1), so bins equal bins of width
    (hi - lo) / bins; values below lo go to the first bin, values at or above hi to the
    last.  Adaptive bins are unaffected."""
    bin_range: list[float] = Field(default_factory=lambda: [-1.0, 1.0], min_length=2,
                                   max_length=2)
    """Range [lo, hi] of the fixed bins; where values outside go: bin_convention."""
    adaptive_bins: int = Field(default=30, ge=2, le=1000)
    """Adaptive binning: equal bins between each layer's min and max (Saxe et al.)."""
    kde_noise_variance: float = Field(default=0.1, gt=0.0)
    """Variance of the Gaussian noise the KDE bounds assume on each layer."""
    kde_samples: int = Field(default=1024, ge=2, le=4096)
    """Inputs the KDE bounds use (a fixed stratified subset; its cost grows as its square).
    Binning always uses all 4096 patterns."""

    @field_validator("bin_range")
    @classmethod
    def _ordered(cls, value: list[float]) -> list[float]:
        if not value[1] > value[0]:
            raise ValueError(f"bin_range must be increasing, got {list(value)}")
        return value


class IBPaths(Paths):
    data: str = data_file("dataset.parquet")
    """Data stage output: the 4096 patterns, labels and split."""
    depth_plot: str = plot_file("depth")
    """Plot data: depth against epochs to reach label information, a column per
    activation (tanh, relu)."""
    plane_tanh_plot: str = plot_file("plane_tanh")
    """Plot data: seed-averaged information-plane trajectories of the tanh network."""
    plane_relu_plot: str = plot_file("plane_relu")
    """Plot data: the same for the ReLU network (its own file: DVC colours by file)."""
    figure_plane: str = figure_file("plane")
    """Information plane per activation and estimator, layers coloured by epoch."""
    figure_epochs: str = figure_file("epochs")
    """I(X;T) and I(T;Y) against epoch per layer."""
    figure_snr: str = figure_file("snr")
    """Gradient mean, std and SNR against epoch, with the detected transition."""
    figure_depth: str = figure_file("depth")
    """Number of hidden layers against epochs to reach label information."""


class IBConfig(StackResources):
    """The ``ib`` section (with ``device``, ``gpus_per_stack``, ``stack_memory_mb``)."""

    data: IBDataConfig = IBDataConfig()
    """The 12-bit task."""
    hidden: list[list[int]] = Field(min_length=1)
    """Hidden-layer widths of each architecture; several entries make the depth sweep
    (the paper's network: [10, 7, 5, 4, 3])."""
    activations: list[Literal["tanh", "relu", "sigmoid", "elu", "gelu", "linear"]] = Field(
        min_length=1)
    """Hidden-layer activations to compare (tanh and ReLU: the two sides of the dispute)."""
    optimizer: Literal["sgd", "adam"] = "adam"
    """Paper: SGD; original code: Adam."""
    lr: float = Field(default=4e-4, gt=0.0)
    """Learning rate (original code: Adam 4e-4)."""
    momentum: float = Field(default=0.0, ge=0.0, lt=1.0)
    """SGD momentum (ignored by Adam)."""
    batch_size: int | None = Field(default=256, ge=1)
    """Minibatch size (original: 256); null for full batch."""
    epochs: int = Field(ge=1, le=1_000_000)
    """Training epochs (paper scale: 8000-10000)."""
    n_log_epochs: int = Field(default=60, ge=2)
    """Epochs at which information is estimated, log-spaced in [0, epochs] (paper ~270)."""
    n_seeds: int = Field(default=4, ge=1, le=10_000)
    """Models per (activation, architecture), seeds 0..n_seeds-1 (paper: 50)."""
    estimators: IBEstimatorConfig = IBEstimatorConfig()
    """Information estimators and their settings."""
    fast_tanh: bool = True
    """CPU only: tanh as 2 sigmoid(2z) - 1, about twice as fast as torch.tanh and equal to
    float rounding, which compounds over long runs (weights 2.35 apart after 3,000
    epochs); false = torch.tanh as on CUDA, so CPU and GPU train the same network. Each
    row's `fast_tanh` says whether the shortcut was used."""
    label_info_fraction: float = Field(default=0.95, gt=0.0, le=1.0)
    """The depth claim's target: the last hidden layer's I(T;Y) >= this fraction of H(Y)."""
    label_info_estimator: Literal["bin", "bin_adaptive", "kde_upper", "kde_lower"] = "bin"
    """The estimator whose I(T;Y) the depth claim is measured with."""
    paths: IBPaths = IBPaths()
    """Where the stages write: each path defaults from the name (theorydl.spine.config.Paths)."""

    @field_validator("hidden")
    @classmethod
    def _widths(cls, value: list[list[int]]) -> list[list[int]]:
        for widths in value:
            if not widths or any(w < 1 for w in widths):
                raise ValueError(f"each architecture needs >= 1 hidden layer of width >= 1, "
                                 f"got {widths}")
        if len({tuple(w) for w in value}) != len(value):
            raise ValueError("repeated architectures")
        return value

    @model_validator(mode="after")
    def _sampling(self) -> "IBConfig":
        if self.n_log_epochs > self.epochs + 1:
            raise ValueError(f"n_log_epochs ({self.n_log_epochs}) cannot exceed epochs + 1 "
                             f"({self.epochs + 1})")
        return self


#: The scale of Shwartz-Ziv & Tishby's runs (profiles/paper.yaml): below it the IB
#: claims are not checkable.
_PAPER_SCALE = {"n_seeds": 50, "epochs": 8000, "n_log_epochs": 270}
#: A layer compresses when its I(X;T) ends at least this far (bits) below its peak; set
#: before measuring, not fitted to any result.
COMPRESSION_BITS = 0.1
_PLANES = ("Saxe et al. 2018 (ICLR), information planes of tanh and ReLU networks on "
           "the 12-bit task (binning and KDE)")
_ESTIMATOR_NOTES = {
    "bin": "fixed bins by ib.estimators.bin_convention (the original's: idnns)",
    "bin_adaptive": "bins between each layer's min and max: Saxe et al.'s ReLU setting, "
                    "applied to tanh layers too",
    "kde_upper": "KDE upper bound, noise variance kde_noise_variance, on kde_samples "
                 "inputs (paper profile: all 4096)",
    "kde_lower": "KDE lower bound, noise variance kde_noise_variance, on kde_samples "
                 "inputs (paper profile: all 4096)",
}


def _ib_claims() -> tuple[Claim, ...]:
    claims = []
    figure_claims = {"figure_plane": ("*_compress*",), "figure_epochs": ("*_compress*",),
                     "figure_snr": ("*_snr_*",), "figure_depth": ("*_depth_*",)}
    for est in ESTIMATORS:
        scale = {**_PAPER_SCALE, **({"estimators.bin_convention": "idnns"}
                                    if est == "bin" else {})}
        metric = "{}." + est + ".max_hidden_compression_bits"
        claims += [
            Claim(f"tanh_compresses_{est}",
                  f"tanh hidden layers compress after fitting: I(X;T) falls from its peak "
                  f"({est})",
                  ("Shwartz-Ziv & Tishby 2017 (arXiv:1703.00810); " if est == "bin" else "")
                  + _PLANES, metric.format("tanh"), ">=", COMPRESSION_BITS, scale=scale,
                  note=_ESTIMATOR_NOTES[est] + f"; compression counted from "
                  f"{COMPRESSION_BITS} bits in the layer that compresses most"),
            Claim(f"relu_does_not_compress_{est}",
                  f"ReLU hidden layers do not compress ({est})", _PLANES,
                  metric.format("relu"), "<=", 0.0, tolerance=COMPRESSION_BITS, scale=scale,
                  note=_ESTIMATOR_NOTES[est]),
        ]
    claims += [
        Claim("tanh_snr_drift_to_diffusion",
              "the gradient SNR of every hidden layer drops from drift (high SNR) to "
              "diffusion (low SNR)",
              "Shwartz-Ziv & Tishby 2017 (arXiv:1703.00810), the two phases of SGD",
              "tanh.snr_transition_fraction", ">=", 1.0, scale=_PAPER_SCALE,
              note="transition found by theorydl.studies.ib.snr.drift_diffusion_epoch (a two-segment "
                   "fit of log SNR) where the paper saw it in the plots; SNR of the weight "
                   "gradient over an epoch's minibatches"),
        Claim("relu_snr_drift_to_diffusion",
              "ReLU networks show the same drift-to-diffusion drop without compressing",
              "Saxe et al. 2018 (ICLR), gradient SNR of ReLU networks",
              "relu.snr_transition_fraction", ">=", 1.0, scale=_PAPER_SCALE,
              note="transition found by theorydl.studies.ib.snr.drift_diffusion_epoch"),
        Claim("tanh_depth_fewer_epochs",
              "networks with more hidden layers reach the label information in fewer "
              "epochs",
              "Shwartz-Ziv & Tishby 2017 (arXiv:1703.00810), networks of 1 to 6 hidden "
              "layers", "tanh.depth_epochs_spearman", "<=", -1.0, tolerance=0.5,
              scale=_PAPER_SCALE,
              note="measured: Spearman's correlation of depth and epochs until the last "
                   "hidden layer's I(T;Y) reaches label_info_fraction x H(Y) (a proxy for "
                   "the paper's convergence; every network here ends in the same 3-unit "
                   "layer); a depth no seed brings there is left out of the correlation; "
                   "ib.hidden must hold the depth sweep (the paper profile's does)"),
    ]
    return tuple(claims)


def _kde_subset(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """A fixed, stratified subset of the inputs (all of them when size >= N)."""
    if size >= len(y):
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    picks = []
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        k = max(1, round(size * len(idx) / len(y)))
        picks.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(picks))


class IB(StackedExperiment):
    name = "ib"
    # 2: log-spaced sampling of estimate epochs fixed; 3: fixed bins by bin_convention
    # (default: the original's), their edges computed in float64
    version = 3
    section = IBConfig
    stages = {
        "data": Stage(reads=("data",), writes=("data",)),
        "train": Stage(reads=("data", "hidden", "activations", "optimizer", "lr", "momentum",
                              "batch_size", "epochs", "n_log_epochs", "n_seeds", "estimators",
                              "fast_tanh", "device", "gpus_per_stack", "stack_memory_mb"),
                       needs=("data",)),
        "analyze": Stage(reads=("hidden", "label_info_fraction", "label_info_estimator")),
    }
    claims = _ib_claims()
    plots = {
        "ib_plane": Plot(("plane_tanh_plot", "plane_relu_plot"), x="i_xt", y=("i_ty",),
                         template="scatter",
                         title="Information plane, tanh against ReLU (binning, mean over seeds)",
                         x_label="I(X;T) [bits]", y_label="I(T;Y) [bits]",
                         about="The information plane of the paper's network (binning), "
                               "every layer and sampled epoch; one colour per activation."),
        "ib_depth": Plot("depth_plot", x="depth", y=("tanh", "relu"),
                         title="Epochs to label information against depth, per activation",
                         x_label="hidden layers", y_label="epochs",
                         about="Depth against the epochs the last hidden layer needs to carry "
                               "the label information."),
    }

    # ------------------------------------------------------------------ trials, units
    def trials(self, cfg: IBConfig) -> list[TrialSpec]:
        shared = {
            "optimizer": cfg.optimizer, "lr": cfg.lr, "momentum": cfg.momentum,
            "batch_size": cfg.batch_size, "epochs": cfg.epochs, "n_log_epochs": cfg.n_log_epochs,
            "train_fraction": cfg.data.train_fraction, "split_seed": cfg.data.split_seed,
            "label_degree": cfg.data.label_degree, "fast_tanh": cfg.fast_tanh, **{
                f"est_{k}": v for k, v in cfg.estimators.model_dump().items()},
        }
        specs = []
        for activation in cfg.activations:
            for widths in cfg.hidden:
                for seed in range(cfg.n_seeds):
                    config = {"activation": activation, "hidden": list(widths),
                              "depth": len(widths), **shared}
                    specs.append(TrialSpec(self.name, self.version, config, seed=seed,
                                           swept=("activation", "hidden", "depth")))
        return specs

    # Every trial of one (activation, widths) trains in one stack (only seeds differ).
    def model_bytes(self, trial: TrialSpec, cfg: IBConfig) -> int:
        from theorydl.nn import mlp_bytes

        return mlp_bytes(_sizes(trial), 4096, cfg.batch_size)[0]

    def shared_bytes(self, trial: TrialSpec, cfg: IBConfig) -> int:
        from theorydl.nn import mlp_bytes

        return mlp_bytes(_sizes(trial), 4096, cfg.batch_size)[1]

    def stack_cost(self, trial: TrialSpec, cfg: IBConfig) -> float:
        return len(trial.config["hidden"])  # the deepest stacks are the slowest

    def trial_cost(self, trial: TrialSpec, cfg: IBConfig) -> float:
        """Training (6 flops per weight per sample and epoch, on the training split) plus
        the information estimates at the recorded epochs (pairwise KDE on kde_samples
        inputs, per hidden unit), in one flop-like unit."""
        c = trial.config
        sizes = _sizes(trial)
        weights = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
        train = 6.0 * c["epochs"] * 4096 * c["train_fraction"] * weights
        n = c.get("est_kde_samples", 0)
        estimate = c["n_log_epochs"] * (n * n * sum(c["hidden"]) + 4096 * sum(c["hidden"]))
        return train + estimate

    def stack_label(self, trial: TrialSpec) -> str:
        return f"{trial.config['activation']}-{'-'.join(map(str, trial.config['hidden']))}"

    # ------------------------------------------------------------------ data
    def data(self, params: Params, cfg: IBConfig) -> None:
        from theorydl.studies.ib.dataset import make_ib_dataset, save_ib_dataset

        d = cfg.data
        save_ib_dataset(make_ib_dataset(d.train_fraction, d.split_seed, d.label_degree),
                        cfg.paths.data)

    def check_data(self, cfg: IBConfig) -> None:
        """Workers rebuild the dataset from its params (a cluster shares no disk); the data
        stage's file must be that same dataset."""
        from theorydl.studies.ib.dataset import load_ib_dataset, make_ib_dataset

        path = Path(cfg.paths.data)
        if not path.exists():
            raise StageError(f"{path} is missing: run the data stage first (`dvc repro ib_data`)")
        stored = load_ib_dataset(path)
        d = cfg.data
        fresh = make_ib_dataset(d.train_fraction, d.split_seed, d.label_degree)
        if not (np.array_equal(stored.y, fresh.y) and np.array_equal(stored.train_idx,
                                                                     fresh.train_idx)):
            raise StageError(f"{path} differs from the dataset the params describe; "
                             f"re-run `dvc repro ib_data`")

    # ------------------------------------------------------------------ training
    def run_stack(self, trials, cfg: IBConfig, device):
        return train_ib_stack(trials, cfg, device)[0]

    # ------------------------------------------------------------------ analysis

def _sizes(trial: TrialSpec) -> list[int]:
    return [12, *trial.config["hidden"], 2]


def train_ib_stack(trials, cfg: IBConfig, device=None) -> tuple[list[tuple[str, list[dict]]], str]:
    """Train one stack (trials that share activation and widths); rows per trial.

    Returns ``([(status, rows) per trial], device)``. A model whose loss becomes
    non-finite is ``diverged``; its rows are kept up to the last finite estimate.
    """
    import torch

    from theorydl.nn import SGD, Adam, init_stack, train_stack
    from theorydl.studies.ib import binning
    from theorydl.studies.ib.binning import adaptive_edges, binned_information, fixed_edges
    from theorydl.studies.ib.dataset import make_ib_dataset
    from theorydl.studies.ib.kde import kde_information

    first = trials[0].config
    device = worker_device(cfg.device) if device is None else device
    d = cfg.data
    ds = make_ib_dataset(d.train_fraction, d.split_seed, d.label_degree)
    # Copies: the dataset's arrays are read-only, which torch tensors cannot share.
    X = torch.tensor(ds.X, device=device)
    y = torch.tensor(ds.y, device=device)
    train_idx = torch.tensor(ds.train_idx, device=device)
    test_idx = torch.tensor(ds.test_idx, device=device)
    kde_idx = torch.as_tensor(_kde_subset(ds.y, cfg.estimators.kde_samples, d.split_seed),
                              device=device)
    sizes = [X.shape[1], *first["hidden"], 2]
    stack = init_stack(sizes, [t.seed for t in trials], activation=first["activation"],
                       device=device, fast_tanh=cfg.fast_tanh)
    # Whether the CPU tanh shortcut computed this stack (recorded in every row).
    fast_tanh = bool(cfg.fast_tanh and device.type == "cpu" and first["activation"] == "tanh")
    opt = (Adam(cfg.lr) if cfg.optimizer == "adam"
           else SGD(cfg.lr, momentum=cfg.momentum))
    epochs = log_spaced(cfg.epochs, cfg.n_log_epochs)
    n_layers = len(sizes) - 1
    m = len(trials)
    # est[k, estimator, layer, model, (i_xt, i_ty)], filled on device by the callback.
    est = torch.full((len(epochs), len(ESTIMATORS), n_layers, m, 2), math.nan,
                     dtype=torch.float64, device=device)
    test_acc = torch.full((len(epochs), m), math.nan, dtype=torch.float64, device=device)
    convention = cfg.estimators.bin_convention
    # idnns: `bins` categories are bins - 1 bins plus the overflow (see IBEstimatorConfig).
    edges = fixed_edges(cfg.estimators.bins - (convention == "idnns"),
                        *cfg.estimators.bin_range, device=device)
    slot = {e: k for k, e in enumerate(epochs)}

    def estimate(e: int, st) -> None:
        k = slot[e]
        # st(X, return_hidden=True) without its final transposes: the estimators take
        # the (M, N, units) transposed views of the feature-major layers as they are
        # (copying them to contiguous cost as much as the forward pass itself).
        logits, hidden = st.forward_t(X, return_hidden=True)  # (M, C, N), [(M, units, N)]
        logits = logits.transpose(1, 2)
        # The output layer enters the plane as class probabilities, as in the paper.
        layers = [*(h.transpose(1, 2) for h in hidden), torch.softmax(logits, dim=-1)]
        for l, acts in enumerate(layers):
            # A diverged model's NaN activations have no bin: estimate on zeros, then
            # mark its estimates NaN, so one bad model does not break its stack.  The
            # adaptive edges span each model's min and max, which propagate NaN and inf,
            # so their end points are the check (no pass of its own; a range too wide
            # for the float, whose edges are not finite either, is flagged as well); a
            # zeroed model's edges are all 0.  On CPU, where reading the flag costs no
            # sync, the copy is made only if needed.
            adaptive = adaptive_edges(acts, cfg.estimators.adaptive_bins)
            finite = torch.isfinite(adaptive[:, 0]) & torch.isfinite(adaptive[:, -1])  # (M,)
            if not binning._on_host(device) or not bool(finite.all()):
                acts = torch.where(finite[:, None, None], acts, torch.zeros_like(acts))
                adaptive = adaptive.masked_fill(~finite[:, None], 0.0)
            est[k, 0, l] = torch.stack(binned_information(acts, y, edges,
                                                          convention=convention), dim=-1)
            est[k, 1, l] = torch.stack(binned_information(acts, y, adaptive), dim=-1)
            # (Advanced indexing gathers from the transposed views about three times
            # faster than index_select.)
            bounds = kde_information(acts[:, kde_idx], y[kde_idx],
                                     cfg.estimators.kde_noise_variance)
            est[k, 2, l] = torch.stack([bounds.i_xt_upper, bounds.i_ty_upper], dim=-1)
            est[k, 3, l] = torch.stack([bounds.i_xt_lower, bounds.i_ty_lower], dim=-1)
            est[k, :, l] = est[k, :, l].masked_fill(~finite[None, :, None], math.nan)
        pred = logits.index_select(1, test_idx).argmax(-1)
        test_acc[k] = (pred == y[test_idx]).double().mean(-1)

    result = train_stack(stack, X[train_idx], y[train_idx], opt, cfg.epochs,
                         batch_size=cfg.batch_size, callback=estimate, callback_epochs=epochs,
                         grad_stats=True)
    # One transfer to the host at the end: the training loop never synchronises.
    est_np = est.cpu().numpy()
    acc_np = test_acc.cpu().numpy()
    loss_np = result.loss.double().cpu().numpy()  # (M, E)
    gmean = result.grad_mean_norm.double().cpu().numpy()  # (K, L, M)
    gstd = result.grad_std_norm.double().cpu().numpy()
    out = []
    for i in range(m):
        finite = np.isfinite(loss_np[i])
        status = "ok" if finite.all() else "diverged"
        rows = []
        for k, e in enumerate(epochs):
            if e > 0 and not finite[:e].all():
                break
            train_loss = float(loss_np[i, e - 1]) if e > 0 else None
            for l in range(n_layers):
                mean, std = gmean[k, l, i], gstd[k, l, i]
                base = {
                    "epoch": e, "layer": l + 1, "train_loss": train_loss,
                    "test_acc": float(acc_np[k, i]), "h_y": ds.h_y_bits,
                    "grad_mean": finite_or_none(mean), "grad_std": finite_or_none(std),
                    "snr": finite_or_none(mean / std) if std > 0 else None,
                    "fast_tanh": fast_tanh,
                }
                for j, name in enumerate(ESTIMATORS):
                    rows.append({**base, "estimator": name,
                                 "i_xt": finite_or_none(est_np[k, j, l, i, 0]),
                                 "i_ty": finite_or_none(est_np[k, j, l, i, 1])})
        out.append((status, rows))
    return out, str(device)

