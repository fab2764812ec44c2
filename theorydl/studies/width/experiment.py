"""Width and depth sweeps of implicit regularization, with Path-SGD and an Optuna lr search.

Neyshabur, Tomioka & Srebro ("In Search of the Real Inductive Bias", 2015) trained
one-hidden-layer networks of growing width H to zero training error and saw the test
error keep falling long after the training error reached zero: the size of the network
does not control generalization, the optimizer's implicit regularization does. Path-SGD
(Neyshabur, Salakhutdinov & Srebro 2015), steepest descent for the rescaling-invariant
path norm, generalizes better than SGD and does not care how a ReLU network's weights
are balanced between layers.

A trial is (optimizer, init, depth, width, label noise, learning rate, seed). Every seed
and learning rate of one (optimizer, depth, width, ...) trains in one stack
(:func:`theorydl.nn.fit.fit_stack`), each model stopping at zero training error (or a
loss threshold, or ``max_epochs``); different widths are different stacks, the largest
scheduled first. ``unbalanced`` initialisation rescales each hidden unit (incoming
weights and bias times c, outgoing weights times 1/c, log2 c uniform in
[-unbalance, unbalance]): the ReLU network computes the same function, so any change in
what training finds is the optimizer's doing.

The learning rate of each (optimizer, depth, width, label noise) comes from an Optuna
study (:meth:`Width.search`, the ``width_search`` stage): the study asks points, each
becomes an ordinary trial (``split: search``: trained on the training set minus a
stratified validation split, scored by its validation error at the stop), run in stacks
through the trial cache; the best learning rates land in ``paths.best_lr``, which the
final sweep (``width_train``) reads. With ``search.enabled: false`` the sweep uses
``lr`` from params.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, field_validator, model_validator

from theorydl.spine.config import (
    Params,
    Paths,
    Section,
    data_file,
    figure_file,
    plot_file,
    result_file,
)
from theorydl.spine.experiment import Claim, Plot, Stage, StageError
from theorydl.spine.spec import TrialSpec, canonical_json
from theorydl.spine.stacked import (
    StackedExperiment,
    StackResources,
    finite_or_none,
    log_spaced,
    worker_device,
)
from theorydl.spine.store.store import write_text_atomic

__all__ = ["Width", "WidthConfig", "unbalance_stack", "study_key"]

log = logging.getLogger("theorydl")

OPTIMIZERS = ("sgd", "pathsgd", "adam")
Optimizer = Literal["sgd", "pathsgd", "adam"]


class WidthDataConfig(Section):
    dataset: Literal["digits", "mnist", "fashion_mnist", "cifar10"] = "digits"
    """digits ships with scikit-learn; the others are downloaded by the data stage."""
    root: str = "data/vision"
    """Folder of the downloaded files (root/<dataset>/...); not used by digits."""
    train_subset: int | None = Field(default=None, ge=10)
    """Training samples kept (a stratified subset); null keeps all."""
    seed: int = Field(default=0, ge=0)
    """Seed of the digits train/test split, the subset, the label noise and the
    search's validation split."""


class PerOptimizer(Section):
    sgd: float = Field(default=0.1, gt=0.0)
    pathsgd: float = Field(default=0.01, gt=0.0)
    adam: float = Field(default=0.001, gt=0.0)


class LrRanges(Section):
    sgd: list[float] = Field(default_factory=lambda: [1e-3, 1.0], min_length=2, max_length=2)
    pathsgd: list[float] = Field(default_factory=lambda: [1e-5, 0.1], min_length=2,
                                 max_length=2)
    adam: list[float] = Field(default_factory=lambda: [1e-5, 0.03], min_length=2,
                              max_length=2)

    @model_validator(mode="after")
    def _ordered(self) -> "LrRanges":
        for name in OPTIMIZERS:
            lo, hi = getattr(self, name)
            if not 0 < lo < hi:
                raise ValueError(f"{name}: need 0 < low < high, got [{lo}, {hi}]")
        return self


class WidthSearchConfig(Section):
    enabled: bool = True
    """Search the learning rate per (optimizer, depth, width, label noise) with Optuna."""
    n_trials: int = Field(default=6, ge=1, le=10_000)
    """Points each study evaluates."""
    batch: int = Field(default=3, ge=1, le=1000)
    """Points asked per round and study; a round's points of one width train in one stack."""
    lr_range: LrRanges = LrRanges()
    """Log-uniform search range of the learning rate, per optimizer."""
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    """Share of the training set held out to score a point (stratified)."""
    max_epochs: int | None = Field(default=None, ge=1)
    """Epoch limit of search trials (null: the sweep's max_epochs)."""
    startup: int = Field(default=3, ge=1)
    """Random points before the TPE sampler models the rest."""
    seed: int = Field(default=0, ge=0)
    """Seed of the sampler (TPE) and of the search trials' networks."""
    storage: str = ".theorydl/optuna/width.journal"
    """Optuna storage: a journal file, or a database URL (sqlite:///..., postgresql://...).
    Open it with `optuna-dashboard <storage>`."""


class WidthPaths(Paths):
    data: str = data_file("dataset.npz")
    """Data stage output: the prepared train/test arrays."""
    best_lr: str = result_file("best_lr.json")
    """Search stage output: the best learning rate per study; the sweep reads it."""
    search_trials: str = result_file("search_trials.parquet")
    """Search stage output: the rows of every searched point."""
    curve_plot: str = plot_file("curve")
    """Plot data: train and test error against width, per optimizer (balanced init)."""
    figure_error: str = figure_file("error")
    """Train and test error against width (log axis)."""
    figure_epochs: str = figure_file("epochs")
    """Train and test error against epoch, one curve per width."""
    figure_norms: str = figure_file("norms")
    """Norms and margin against width."""
    figure_optimizers: str = figure_file("optimizers")
    """SGD, Path-SGD and Adam under balanced and unbalanced initialisation."""
    figure_search: str = figure_file("search")
    """Searched learning rates against validation error, per width."""


class WidthConfig(StackResources):
    """The ``width`` section (with ``device``, ``gpus_per_stack``, ``stack_memory_mb``)."""

    data: WidthDataConfig = WidthDataConfig()
    """The dataset and what is done to it."""
    widths: list[int] = Field(min_length=1)
    """Hidden widths H (paper scale: 2^2 ... 2^13)."""
    depths: list[int] = Field(default_factory=lambda: [1], min_length=1)
    """Numbers of hidden layers, each of width H (1: the paper's networks)."""
    activation: Literal["relu", "tanh", "sigmoid", "elu", "gelu", "linear"] = "relu"
    """Hidden activation (Path-SGD's invariance holds for ReLU and linear)."""
    optimizers: list[Optimizer] = Field(default_factory=lambda: ["sgd"], min_length=1)
    """sgd (with optional momentum), pathsgd, adam."""
    inits: list[Literal["balanced", "unbalanced"]] = Field(
        default_factory=lambda: ["balanced"], min_length=1)
    """balanced: PyTorch's default init; unbalanced: the same function, units rescaled."""
    unbalance: float = Field(default=3.0, gt=0.0, le=20.0)
    """Unbalanced init: log2 of each hidden unit's scale is uniform in [-u, u]."""
    n_seeds: int = Field(default=3, ge=1, le=10_000)
    """Networks per point of the grid: seeds 0..n_seeds-1."""
    lr: PerOptimizer = PerOptimizer()
    """Learning rates used when search.enabled is false."""
    momentum: float = Field(default=0.0, ge=0.0, lt=1.0)
    """SGD momentum (sgd only)."""
    batch_size: int | None = Field(default=64, ge=1)
    """Minibatch size; null for full batch."""
    max_epochs: int = Field(default=200, ge=1, le=1_000_000)
    """Epoch limit of a model that never meets the stopping rule."""
    stop_error: float | None = Field(default=0.0, ge=0.0, le=1.0)
    """Stop a model when its training error is at most this (0: zero training error);
    null: off."""
    stop_loss: float | None = Field(default=None, gt=0.0)
    """Stop a model when its training loss is at most this; null: off."""
    check_every: int = Field(default=1, ge=1)
    """Epochs between checks of the stopping rule (each costs a pass over the data)."""
    weight_decay: float = Field(default=0.0, ge=0.0)
    """L2 penalty added to every gradient (0: no explicit regularization)."""
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Dropout probability of hidden units during training (0: off)."""
    label_noise: list[float] = Field(default_factory=lambda: [0.0], min_length=1)
    """Fractions of training labels re-drawn at random (Zhang et al. 2017), a grid."""
    n_log_epochs: int = Field(default=20, ge=2)
    """Epochs (log-spaced in [0, max_epochs]) at which train and test error are recorded."""
    search: WidthSearchConfig = WidthSearchConfig()
    """The learning-rate search."""
    paths: WidthPaths = WidthPaths()
    """Where the stages write: each path defaults from the name (theorydl.spine.config.Paths)."""

    @field_validator("widths", "depths")
    @classmethod
    def _positive_unique(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value):
            raise ValueError(f"must be >= 1, got {value}")
        if any(v > 1_000_000 for v in value):
            raise ValueError(f"a width or depth above 10^6 is not a network this trains: {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"repeated values in {value}")
        return value

    @field_validator("optimizers", "inits")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"repeated values in {value}")
        return value

    @field_validator("label_noise")
    @classmethod
    def _fractions(cls, value: list[float]) -> list[float]:
        if any(not 0.0 <= v <= 1.0 for v in value) or len(set(value)) != len(value):
            raise ValueError(f"label_noise must be distinct fractions in [0, 1], got {value}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "WidthConfig":
        if self.n_log_epochs > self.max_epochs + 1:
            raise ValueError(f"n_log_epochs ({self.n_log_epochs}) cannot exceed max_epochs + 1 "
                             f"({self.max_epochs + 1})")
        return self


# ------------------------------------------------------------------------ helpers


def study_key(optimizer: str, depth: int, width: int, noise: float) -> str:
    """The key of a learning-rate study (and of its entry in best_lr.json)."""
    return f"{optimizer}/d{depth}/w{width}/noise{noise:g}"


def unbalance_stack(stack, seeds: Sequence[int], which: Sequence[bool], spread: float) -> None:
    """Rescale the hidden units of the models flagged in ``which``, in place.

    Unit u of hidden layer l: incoming weights W_l[:, u] and bias b_l[u] times c_u,
    outgoing weights W_{l+1}[u, :] times 1 / c_u, with log2 c_u uniform in
    [-spread, spread] from ``numpy.random.default_rng([seed, 7])``. For ReLU (and any
    positively homogeneous activation) the network computes the same function.
    """
    import torch

    with torch.no_grad():
        for i, (seed, flag) in enumerate(zip(seeds, which)):
            if not flag:
                continue
            rng = np.random.default_rng([int(seed), 7])
            for l in range(stack.n_layers - 1):
                width = stack.weights[l].shape[2]
                c = torch.as_tensor(2.0 ** rng.uniform(-spread, spread, size=width),
                                    dtype=stack.dtype, device=stack.device)
                stack.weights[l][i].mul_(c)
                stack.biases[l][i].mul_(c)
                stack.weights[l + 1][i].div_(c.unsqueeze(1))


def make_optimizer(name: str, lrs: Sequence[float], momentum: float):
    from theorydl.nn import SGD, Adam, PathSGD

    if name == "sgd":
        return SGD(list(lrs), momentum=momentum)
    if name == "pathsgd":
        return PathSGD(list(lrs))
    if name == "adam":
        return Adam(list(lrs))
    raise ValueError(f"unknown optimizer {name!r}")


_DATA_CACHE: dict[tuple, Any] = {}


def load_width_data(cfg: WidthConfig):
    """The data stage's arrays (``VisionData``), read once per worker process.

    Workers read ``paths.data`` from their own disk: on a cluster without a shared disk,
    run the data stage on each node (or point ``paths.data`` at a shared folder). The
    digits dataset is rebuilt from params where the file is missing.
    """
    from theorydl.data.vision import load_digits, load_npz, prepare

    path = Path(cfg.paths.data)
    if path.exists():
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
        if key not in _DATA_CACHE:
            _DATA_CACHE.clear()
            _DATA_CACHE[key] = load_npz(path)
        return _DATA_CACHE[key]
    if cfg.data.dataset == "digits":
        data = load_digits(cfg.data.seed)
        return prepare(data, train_subset=cfg.data.train_subset, random_label_fraction=0.0,
                       seed=cfg.data.seed)
    raise StageError(f"{path} is not on this machine ({os.uname().nodename}): run the data "
                     f"stage (`dvc repro width_data`) here, or put paths.data on a disk "
                     f"every worker reads")


def trial_arrays(data, config: dict[str, Any]) -> tuple[np.ndarray, ...]:
    """(x_fit, y_fit, x_eval, y_eval) of a trial: the training set with its label noise,
    and the test set (final trials) or a stratified validation split carved out of the
    noisy training set (search trials)."""
    from theorydl.data.vision import prepare, stratified_choice

    noisy = prepare(data, train_subset=None, random_label_fraction=config["label_noise"],
                    seed=config["data_seed"])
    x, y = noisy.x_train, noisy.y_train
    if config["split"] == "final":
        return x, y, noisy.x_test, noisy.y_test
    rng = np.random.default_rng([config["data_seed"], 1])
    val = stratified_choice(y, round(config["validation_fraction"] * y.size), rng)
    fit = np.setdiff1d(np.arange(y.size), val)
    return x[fit], y[fit], x[val], y[val]


# ------------------------------------------------------------------------ experiment


# What a width network's training reads, in the search and in the final sweep alike.
_TRAINING_KEYS = ("data.dataset", "data.train_subset", "data.seed", "widths", "depths",
                  "activation", "optimizers", "unbalance", "momentum", "batch_size",
                  "max_epochs", "stop_error", "stop_loss", "check_every", "weight_decay",
                  "dropout", "label_noise", "n_log_epochs", "device", "gpus_per_stack",
                  "stack_memory_mb")


#: Evaluation samples on which every recorded epoch stores each model's outputs.
PROBE_SAMPLES = 32
#: Relative output distance below which two runs count as the same function in float32:
#: sqrt(machine epsilon), i.e. agreement in half the digits.
OUTPUT_GAP_TOLERANCE = round(math.sqrt(float(np.finfo(np.float32).eps)), 6)

#: The scale of the published width sweeps (profiles/paper.yaml: MNIST, H up to 8192, 5
#: seeds, up to 500 epochs): below it the width claims are not checkable.
_PAPER_SCALE = {"data.dataset": "mnist", "widths": [8192], "n_seeds": 5, "max_epochs": 500}
_PAPER_NEEDS = ("MNIST, a download (these machines reach no internet), and stacks to "
                "H = 8192 for up to 500 epochs: a GPU")
_PATHSGD = "Neyshabur, Salakhutdinov & Srebro 2015 (NeurIPS), Path-SGD"

CLAIMS = (
    Claim("test_error_no_rise_after_interpolation",
          "once every width fits the training set, test error does not rise with width",
          "Neyshabur, Tomioka & Srebro 2015 (ICLR workshop, 'In search of the real "
          "inductive bias'), test error against hidden units",
          "sgd_*.test_error_drop_after_interpolation", ">=", 0.0, tolerance=0.005,
          scale=_PAPER_SCALE, needs=_PAPER_NEEDS,
          note="SGD, every init, depth and label noise swept (the worst one); measured: "
               "test error at the interpolation width minus at the largest width; the "
               "paper: MNIST and CIFAR-10, the paper profile MNIST only, the default "
               "profile scikit-learn's digits (a proxy); tolerance set before measuring"),
    Claim("pathsgd_rescaling_invariance",
          "Path-SGD is invariant to rescaling hidden units: a network and its rescaled "
          "copy (the same function) stay the same function through training",
          _PATHSGD + ", invariance to node-wise rescaling", "rescaling_output_gap.pathsgd",
          "<=", 0.0, tolerance=OUTPUT_GAP_TOLERANCE, profile="test",
          note="measured: the largest relative distance |f_b - f_u| / |f_b|, over every "
               "recorded epoch, width, depth, noise level and seed, between the outputs of "
               "the balanced and the rescaled (unbalanced) network on the first "
               f"{PROBE_SAMPLES} evaluation samples; exact in exact arithmetic, so the "
               "tolerance is float32's sqrt(eps) = 3.5e-4 (half its digits, room for "
               "rounding that accumulates over training); SGD's gap, which is not "
               "invariant, is reported beside it (rescaling_output_gap.sgd)"),
    Claim("pathsgd_generalises_better_than_sgd",
          "Path-SGD reaches a lower test error than SGD",
          _PATHSGD + ", test error of Path-SGD and SGD (balanced and unbalanced inits)",
          "pathsgd_vs_sgd_at_largest_width.*.pathsgd_minus_sgd", "<=", 0.0,
          scale=_PAPER_SCALE, needs=_PAPER_NEEDS,
          note="at the largest width, every init and depth swept (the worst one); the "
               "paper: 2 hidden layers of 4000 units on MNIST, CIFAR-10, CIFAR-100 and "
               "SVHN; here the sweep's depths and widths on the configured dataset, each "
               "optimizer at its searched learning rate"),
)


class Width(StackedExperiment):
    name = "width"
    # 2: epoch rows carry each model's outputs on the first evaluation samples (the
    # rescaling-invariance claim compares them across inits).
    version = 2
    section = WidthConfig
    stages = {
        "data": Stage(reads=("data",), writes=("data",)),
        "search": Stage(reads=(*_TRAINING_KEYS, "search.n_trials", "search.batch",
                               "search.lr_range", "search.validation_fraction",
                               "search.max_epochs", "search.startup", "search.seed",
                               "search.storage"),
                        needs=("data",), writes=("best_lr", "search_trials")),
        "train": Stage(reads=(*_TRAINING_KEYS, "inits", "n_seeds", "lr", "search.enabled"),
                       needs=("data", "best_lr")),
        "analyze": Stage(needs=("search_trials",)),
    }
    claims = CLAIMS
    figure_claims = {"figure_error": ("test_error_*", "pathsgd_generalises_*"),
                     "figure_optimizers": ("pathsgd_*",)}
    plots = {"width_curve": Plot(
        "curve_plot", x="width",
        y=tuple(f"{split}_error_{o}" for split in ("test", "train") for o in OPTIMIZERS),
        title="Error against hidden units H", x_label="H (hidden units)", y_label="error",
        about="Train and test error against width, per optimizer (the first init of the "
              "sweep).")}

    _SWEPT = ("split", "optimizer", "init", "depth", "width", "label_noise", "lr")

    # ------------------------------------------------------------------ trials
    def _shared(self, cfg: WidthConfig, split: str) -> dict[str, Any]:
        shared = {
            "dataset": cfg.data.dataset, "train_subset": cfg.data.train_subset,
            "data_seed": cfg.data.seed, "split": split, "activation": cfg.activation,
            "momentum": cfg.momentum, "batch_size": cfg.batch_size,
            "max_epochs": cfg.max_epochs, "stop_error": cfg.stop_error,
            "stop_loss": cfg.stop_loss, "check_every": cfg.check_every,
            "weight_decay": cfg.weight_decay, "dropout": cfg.dropout,
            "n_log_epochs": cfg.n_log_epochs, "unbalance": cfg.unbalance,
        }
        if split == "search":
            shared["validation_fraction"] = cfg.search.validation_fraction
            shared["max_epochs"] = cfg.search.max_epochs or cfg.max_epochs
            shared["n_log_epochs"] = min(cfg.n_log_epochs, shared["max_epochs"] + 1)
        return shared

    def _spec(self, shared: dict[str, Any], *, optimizer: str, init: str, depth: int,
              width: int, noise: float, lr: float, seed: int) -> TrialSpec:
        config = {**shared, "optimizer": optimizer, "init": init, "depth": depth,
                  "width": width, "label_noise": noise, "lr": float(lr)}
        return TrialSpec(self.name, self.version, config, seed=seed, swept=self._SWEPT)

    def best_lrs(self, cfg: WidthConfig) -> dict[str, float]:
        """The learning rate of every study key: from the search output, or params."""
        keys = [study_key(o, d, w, n) for o in cfg.optimizers for d in cfg.depths
                for w in cfg.widths for n in cfg.label_noise]
        if not cfg.search.enabled:
            return {k: getattr(cfg.lr, k.split("/")[0]) for k in keys}
        path = Path(cfg.paths.best_lr)
        if not path.exists():
            raise StageError(f"{path} is missing: run the learning-rate search first "
                             f"(`dvc repro width_search`), or set width.search.enabled: false")
        best = json.loads(path.read_text())["best"]
        missing = [k for k in keys if k not in best]
        if missing:
            raise StageError(f"{path} has no learning rate for {', '.join(missing[:5])}"
                             f"{' ...' if len(missing) > 5 else ''}: re-run the search "
                             f"(`dvc repro width_search`)")
        return {k: float(best[k]["lr"]) for k in keys}

    def trials(self, cfg: WidthConfig) -> list[TrialSpec]:
        lrs = self.best_lrs(cfg)
        shared = self._shared(cfg, "final")
        specs = []
        for optimizer in cfg.optimizers:
            for init in cfg.inits:
                for depth in cfg.depths:
                    for width in cfg.widths:
                        for noise in cfg.label_noise:
                            lr = lrs[study_key(optimizer, depth, width, noise)]
                            specs += [self._spec(shared, optimizer=optimizer, init=init,
                                                 depth=depth, width=width, noise=noise,
                                                 lr=lr, seed=s) for s in range(cfg.n_seeds)]
        return specs

    # One stack per (everything but seed, lr and init), the largest networks first.
    per_model_keys = ("lr", "init")

    def _sizes(self, trial: TrialSpec, cfg: WidthConfig) -> tuple[list[int], Any]:
        data = load_width_data(cfg)
        c = trial.config
        return [data.x_train.shape[1], *[c["width"]] * c["depth"], data.n_classes], data

    def model_bytes(self, trial: TrialSpec, cfg: WidthConfig) -> int:
        from theorydl.nn import mlp_bytes

        sizes, data = self._sizes(trial, cfg)
        n = min(data.x_train.shape[0], 8192)
        return mlp_bytes(sizes, n, trial.config["batch_size"])[0]

    def shared_bytes(self, trial: TrialSpec, cfg: WidthConfig) -> int:
        from theorydl.nn import mlp_bytes

        sizes, data = self._sizes(trial, cfg)
        n = min(data.x_train.shape[0], 8192)
        return (4 * data.x_train.size + 4 * data.x_test.size
                + mlp_bytes(sizes, n, trial.config["batch_size"])[1])

    def stack_cost(self, trial: TrialSpec, cfg: WidthConfig) -> float:
        sizes, _ = self._sizes(trial, cfg)
        return sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))

    def trial_cost(self, trial: TrialSpec, cfg: WidthConfig) -> float:
        """max_epochs x training samples x weights (an upper bound: trials stop at fit)."""
        sizes, data = self._sizes(trial, cfg)
        weights = sum(i * o for i, o in zip(sizes[:-1], sizes[1:]))
        return float(trial.config["max_epochs"] * data.x_train.shape[0] * weights)

    def stack_label(self, trial: TrialSpec) -> str:
        c = trial.config
        return f"{c['split']}-{c['optimizer']}-d{c['depth']}-w{c['width']}"

    # ------------------------------------------------------------------ data
    def data(self, params: Params, cfg: WidthConfig) -> None:
        from theorydl.data.vision import download, load, prepare, save_npz

        d = cfg.data
        if d.dataset != "digits":
            log.info("width: fetching %s into %s (kept files are checked, not re-fetched)",
                     d.dataset, d.root)
            download(d.dataset, d.root)
        data = prepare(load(d.dataset, d.root, seed=d.seed), train_subset=d.train_subset,
                       random_label_fraction=0.0, seed=d.seed)
        save_npz(data, cfg.paths.data)
        log.info("width: %s: %d training and %d test samples of %d features -> %s",
                 d.dataset, data.y_train.size, data.y_test.size, data.x_train.shape[1],
                 cfg.paths.data)

    def check_data(self, cfg: WidthConfig) -> None:
        path = Path(cfg.paths.data)
        if not path.exists():
            raise StageError(f"{path} is missing: run the data stage first "
                             f"(`dvc repro width_data` or `theorydl data width`)")
        data = load_width_data(cfg)  # read once: units() on the driver reuses it
        d = cfg.data
        if data.name != d.dataset or (d.train_subset is not None
                                      and data.y_train.size != d.train_subset):
            raise StageError(f"{path} holds {data.name} with {data.y_train.size} training "
                             f"samples, not what width.data asks for; re-run "
                             f"`dvc repro width_data`")

    # ------------------------------------------------------------------ training
    def run_stack(self, trials, cfg: WidthConfig, device):
        return train_width_stack(trials, cfg, device)[0]

    # ------------------------------------------------------------------ search
    def search(self, params: Params, cfg: WidthConfig,
               run: Callable[[list[TrialSpec]], pa.Table]) -> dict[str, Any]:
        """Optuna ask-and-tell per study; ``run(specs)`` runs trials through the cache and
        returns their stored rows. Writes ``paths.best_lr``; returns its content."""
        from theorydl.spine.sweep.search import AskTellSearch, FloatRange, open_study

        s = cfg.search
        shared = self._shared(cfg, "search")
        # The study name carries a digest of everything that changes a point's value, so a
        # changed search opens a new study instead of mixing incomparable values.
        digest = hashlib.sha256(canonical_json(
            [self.version, "error+loss tie-break", shared,
             s.model_dump(exclude={"storage", "enabled"})]
        ).encode()).hexdigest()[:10]
        studies: dict[str, tuple[AskTellSearch, dict[str, Any]]] = {}
        for optimizer in cfg.optimizers:
            lo, hi = getattr(s.lr_range, optimizer)
            for depth in cfg.depths:
                for width in cfg.widths:
                    for noise in cfg.label_noise:
                        key = study_key(optimizer, depth, width, noise)
                        study = open_study(f"width/{key}/{digest}", s.storage, seed=s.seed,
                                           n_startup_trials=s.startup)
                        studies[key] = (AskTellSearch(study, {"lr": FloatRange(lo, hi, log=True)}),
                                        {"optimizer": optimizer, "depth": depth, "width": width,
                                         "noise": noise})
        rounds = 0
        while True:
            asked: list[tuple[str, int, TrialSpec]] = []
            for key, (search, point) in studies.items():
                left = s.n_trials - search.finished()
                if left <= 0:
                    continue
                for number, p in search.ask(min(s.batch, left)):
                    asked.append((key, number, self._spec(
                        shared, init="balanced", lr=p["lr"], seed=s.seed, **point)))
            if not asked:
                break
            rounds += 1
            log.info("width search: round %d, %d points over %d studies", rounds, len(asked),
                     len({k for k, _, _ in asked}))
            unique = {spec.id: spec for _, _, spec in asked}  # TPE may repeat a point
            table = run(list(unique.values()))
            scores = search_scores(table)
            for key, number, spec in asked:
                studies[key][0].tell(number, scores.get(spec.id))
        # Every searched point's rows, from the parameters the journal recorded: served by
        # the trial cache, trained again where the store lost them. So the stage writes
        # its table whenever it succeeds, whatever state the journal and the store are
        # in (a complete journal asks nothing; a forced re-run has had its outputs deleted).
        searched: dict[str, TrialSpec] = {}
        for key, (search, point) in studies.items():
            for p in search.told():
                spec = self._spec(shared, init="balanced", lr=p["lr"], seed=s.seed, **point)
                searched[spec.id] = spec
        run(list(searched.values()))
        best = {}
        for key, (search, _) in studies.items():
            found = search.best()
            if found is None:
                raise StageError(f"width search: every point of {key} failed or diverged; "
                                 f"see {cfg.paths.search_trials} for their errors, and "
                                 f"narrow width.search.lr_range.{key.split('/')[0]}")
            params_, value = found
            best[key] = {"lr": params_["lr"], "validation_error": round(value, 6),
                         "points": search.finished()}
        out = {"storage": s.storage, "digest": digest, "best": best}
        write_text_atomic(Path(cfg.paths.best_lr),
                          json.dumps(out, indent=2, sort_keys=True) + "\n")
        return out


#: Weight of the validation loss in a search score: small enough that it only breaks ties
#: of the validation error (whose steps are >= 1 / N_val > 1e-6 for any dataset here).
_LOSS_TIE_BREAK = 1e-9


def search_scores(table: pa.Table) -> dict[str, float | None]:
    """A search trial's value: its validation error at the stop, ties broken by its
    validation loss (error + 1e-9 * min(loss, 100)); None for a failed or diverged trial."""
    scores: dict[str, float | None] = {}
    if table.num_rows == 0:
        return scores
    rows = table.select([c for c in ("trial_id", "status", "kind", "test_error", "test_loss")
                         if c in table.column_names]).to_pylist()
    for r in rows:
        scores.setdefault(r["trial_id"], None)
        if r.get("status") == "ok" and r.get("kind") == "final":
            err, loss = r.get("test_error"), r.get("test_loss")
            if err is None or not math.isfinite(err):
                continue
            tie = min(loss, 100.0) if loss is not None and math.isfinite(loss) else 100.0
            scores[r["trial_id"]] = float(err) + _LOSS_TIE_BREAK * tie
    return scores


def train_width_stack(trials: Sequence[TrialSpec], cfg: WidthConfig, device=None
                      ) -> tuple[list[tuple[str, list[dict]]], str]:
    """Train one stack (trials that differ only in seed, lr and init); rows per trial."""
    import torch

    from theorydl.nn import init_stack
    from theorydl.nn.fit import fit_stack
    from theorydl.nn.norms import frobenius_norms, l2_path_norm, margin, spectral_norms
    from theorydl.studies.width.probes import ProbeOutputs

    c = trials[0].config
    device = worker_device(cfg.device) if device is None else device
    data = load_width_data(cfg)
    x_fit, y_fit, x_eval, y_eval = trial_arrays(data, c)
    X = torch.as_tensor(x_fit, device=device)
    y = torch.as_tensor(y_fit, device=device)
    Xe = torch.as_tensor(x_eval, device=device)
    ye = torch.as_tensor(y_eval, device=device)
    sizes = [X.shape[1], *[c["width"]] * c["depth"], data.n_classes]
    seeds = [t.seed for t in trials]
    stack = init_stack(sizes, seeds, activation=c["activation"], device=device)
    unbalance_stack(stack, seeds, [t.config["init"] == "unbalanced" for t in trials],
                    c["unbalance"])
    opt = make_optimizer(c["optimizer"], [t.config["lr"] for t in trials], c["momentum"])
    epochs = log_spaced(c["max_epochs"], c["n_log_epochs"])
    probe = ProbeOutputs(Xe[:PROBE_SAMPLES], epochs)
    res, fitted = fit_stack(
        stack, X, y, opt, c["max_epochs"], batch_size=c["batch_size"], X_test=Xe, y_test=ye,
        record_epochs=epochs, stop_error=c["stop_error"], stop_loss=c["stop_loss"],
        check_every=c["check_every"], weight_decay=c["weight_decay"], dropout=c["dropout"],
        dropout_seed=seeds[0], hooks=[probe])
    with torch.no_grad():
        # A diverged model's non-finite weights would break the SVD of its stack-mates:
        # measure it on zeros, then report its measures as missing.
        finite = torch.stack([p.flatten(1).isfinite().all(1) for p in fitted.params]).all(0)
        weights = [torch.where(finite[:, None, None], w.detach(), 0) for w in fitted.weights]
        biases = [torch.where(finite[:, None], b.detach(), 0) for b in fitted.biases]
        frob = frobenius_norms(weights).double().cpu().numpy()  # (M, L)
        spec = spectral_norms(weights).double().cpu().numpy()
        path = l2_path_norm(weights, biases).double().cpu().numpy()  # (M,)
        logits = torch.cat([fitted(X[i:i + 8192]) for i in range(0, X.shape[0], 8192)], dim=1)
        marg = margin(logits, y).double().cpu().numpy()
        bad = ~finite.cpu().numpy()
        frob[bad], spec[bad], path[bad], marg[bad] = np.nan, np.nan, np.nan, np.nan
    eval_set = "test" if c["split"] == "final" else "validation"
    out = []
    for i, t in enumerate(trials):
        stop = int(res.epochs_run[i])
        rows = []
        for k, e in enumerate(res.record_epochs):
            if e > stop:
                break
            rows.append({"kind": "epoch", "epoch": e, "eval_set": eval_set,
                         **{m: finite_or_none(res.curves[m][k, i]) for m in res.curves},
                         "probe_outputs": probe.outputs.get((e, i))})
        final = {"kind": "final", "epoch": stop, "eval_set": eval_set,
                 **{m: finite_or_none(res.final[m][i]) for m in res.final},
                 "fit_epoch": int(res.fit_epoch[i]) if res.fit_epoch[i] >= 0 else None,
                 "stop_reason": str(res.status[i]),
                 "path_norm": finite_or_none(path[i]), "margin": finite_or_none(marg[i]),
                 "frobenius_product": finite_or_none(np.prod(frob[i])),
                 "spectral_product": finite_or_none(np.prod(spec[i])),
                 "frobenius_sum_sq": finite_or_none(np.sum(frob[i] ** 2))}
        rows.append(final)
        for l in range(frob.shape[1]):
            rows.append({"kind": "layer", "epoch": stop, "layer": l + 1,
                         "frobenius": finite_or_none(frob[i, l]), "spectral": finite_or_none(spec[i, l])})
        status = "diverged" if res.status[i] == "diverged" else "ok"
        out.append((status, rows))
    return out, str(device)

