"""Pooling geometry and inductive bias: separation ranks and the blob tasks.

Cohen & Shashua ("Inductive Bias of Deep Convolutional Networks through Pooling
Geometry", ICLR 2017) show that the pooling windows of a convolutional arithmetic circuit
(ConvAC) decide which partitions of the input it can model with high separation rank:
contiguous ("square") windows favour interleaved partitions and cap coarse ones
(left/right) at the top level's width; "mirror" windows, which pool each position with
its reflections, favour symmetric ones. Their experiment: on binary blob images, square
pooling wins the "closedness" task and mirror pooling the "symmetry" task, for ConvACs
and for ReLU networks with average or max pooling.

* Separation ranks (analyze stage, no training): exact ranks of random ConvACs' grid
  tensors on a 4x4 grid (:mod:`theorydl.studies.pooling.ranks`).
* Data stage: seeded blob images and their two scores (:mod:`theorydl.studies.pooling.blobs`).
* Train stage: a trial is (task, network, pooling geometry, channels, seed); the seeds of
  one (task, network, geometry, channels) train in one stack of ``init_modules``
  (:mod:`theorydl.studies.pooling.networks`), Adam, cross-entropy, fresh minibatches drawn from
  the training set each step (``Stream``), test accuracy recorded every ``eval_every``
  iterations.

Run it: ``dvc repro pooling_analyze``; paper scale: ``theorydl profile paper`` first.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
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
from theorydl.spine.spec import TrialSpec
from theorydl.spine.stacked import StackedExperiment, StackResources, finite_or_none

__all__ = ["Pooling", "PoolingConfig", "train_pooling_stack"]

TASKS = ("closedness", "symmetry")
NETWORKS = ("convac", "relu_avg", "relu_max")
GEOMETRIES = ("square", "mirror")


class PoolingDataConfig(Section):
    size: int = Field(default=16, ge=4, le=64)
    """Image side, a power of 2 (paper: 32); the networks pool it down to 1 in 2x2 steps."""
    n_train: int = Field(default=4000, ge=10, le=1_000_000)
    """Training images generated (paper: 25,000); 80 % of them get a label per task."""
    n_test: int = Field(default=1000, ge=10, le=1_000_000)
    """Test images generated (paper: 5,000)."""
    seed: int = Field(default=0, ge=0)
    """Seed of the generator (training images: [seed, 0], test images: [seed, 1])."""

    @field_validator("size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if 2 ** int(round(math.log2(value))) != value:
            raise ValueError(f"must be a power of 2, got {value}")
        return value


class PoolingRanksConfig(Section):
    grid: Literal[2, 4] = 4
    """Side of the pixel grid of the rank computation (4: 16 pixels)."""
    templates: Literal[2, 3] = 2
    """Representation functions (templates) per pixel, M; the grid tensor has
    M^(grid^2) entries (3 on a 4x4 grid: 43 million, about 0.7 GB: slow)."""
    channels: list[int] = Field(default_factory=lambda: [1, 2, 3, 4], min_length=1)
    """Channels r of every level of the random ConvACs."""
    n_seeds: int = Field(default=3, ge=1, le=1000)
    """Random networks per (depth, geometry, channels)."""
    tolerance: float = Field(default=1e-9, gt=0.0, lt=1e-3)
    """Rank = singular values above tolerance x the largest (float64)."""

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: list[int]) -> list[int]:
        if any(not 1 <= v <= 64 for v in value) or len(set(value)) != len(value):
            raise ValueError(f"channels must be distinct, in [1, 64], got {value}")
        return value


class PerNetworkLr(Section):
    convac: float = Field(gt=0.0)
    """For the ConvAC."""
    relu: float = Field(gt=0.0)
    """For both ReLU networks (average and max pooling)."""


class PerNetworkBeta2(Section):
    convac: float = Field(ge=0.0, lt=1.0)
    """For the ConvAC."""
    relu: float = Field(ge=0.0, lt=1.0)
    """For both ReLU networks (average and max pooling)."""


class PerNetworkDecay(Section):
    convac: float = Field(ge=0.0)
    """For the ConvAC."""
    relu: float = Field(ge=0.0)
    """For both ReLU networks (average and max pooling)."""


class PoolingPaths(Paths):
    data: str = data_file("blobs.npz")
    """Data stage output: blob images and their scores, train and test."""
    ranks: str = result_file("ranks.csv")
    """Separation ranks, one row per network, partition and seed."""
    accuracy_plot: str = plot_file("accuracy")
    """Plot data: seed-mean final test accuracy (and its spread) per configuration."""
    figure_accuracy: str = figure_file("accuracy")
    """Test accuracy per task, network and pooling geometry, every seed shown."""
    figure_curves: str = figure_file("curves")
    """Test accuracy against iteration, seed mean and range."""
    figure_ranks: str = figure_file("ranks")
    """The separation-rank table as a figure."""
    figure_blobs: str = figure_file("blobs")
    """Example blob images with their scores and labels."""


class PoolingConfig(StackResources):
    """The ``pooling`` section (with ``device``, ``gpus_per_stack``, ``stack_memory_mb``)."""

    data: PoolingDataConfig = PoolingDataConfig()
    """The blob images."""
    ranks: PoolingRanksConfig = PoolingRanksConfig()
    """The exact separation-rank computation (analyze stage)."""
    label_fraction: float = Field(default=0.4, gt=0.0, le=0.5)
    """Per task and split, the lowest this fraction of scores is class 0, the highest
    class 1; the rest is dropped (paper: 0.4)."""
    tasks: list[Literal["closedness", "symmetry"]] = Field(
        default_factory=lambda: list(TASKS), min_length=1)
    """Which score the labels come from."""
    networks: list[Literal["convac", "relu_avg", "relu_max"]] = Field(
        default_factory=lambda: list(NETWORKS), min_length=1)
    """ConvAC (log space, product pooling), ReLU nets with average or max pooling."""
    geometries: list[Literal["square", "mirror"]] = Field(
        default_factory=lambda: list(GEOMETRIES), min_length=1)
    """Pooling windows: contiguous 2x2 squares, or each position with its reflections."""
    channels: list[int] = Field(default_factory=lambda: [16], min_length=1)
    """Channels of every hidden level (paper: 16); several values make a sweep."""
    n_seeds: int = Field(default=3, ge=1, le=10_000)
    """Networks per configuration, seeds 0..n_seeds-1 (the claim needs >= 3)."""
    iterations: int = Field(default=2000, ge=1, le=10_000_000)
    """Adam steps (paper: 15,000)."""
    eval_every: int = Field(default=200, ge=1)
    """Iterations between test-accuracy records (iterations must be a multiple)."""
    batch_size: int = Field(default=64, ge=1)
    """Minibatch size (paper: 64), drawn with replacement from the training set."""
    lr: PerNetworkLr = PerNetworkLr(convac=3e-3, relu=1e-3)
    """Adam learning rate (paper: 3e-3 for the ConvAC, 1e-3 for the ReLU nets)."""
    beta2: PerNetworkBeta2 = PerNetworkBeta2(convac=0.9, relu=0.999)
    """Adam's second-moment decay (the original's momentum2)."""
    weight_decay: PerNetworkDecay = PerNetworkDecay(convac=0.0, relu=1e-4)
    """L2 weight decay (the original's)."""
    paths: PoolingPaths = PoolingPaths()
    """Where the stages write: each path defaults from the name (theorydl.spine.config.Paths)."""

    @field_validator("tasks", "networks", "geometries", "channels")
    @classmethod
    def _unique(cls, value: list) -> list:
        if len(set(value)) != len(value):
            raise ValueError(f"repeated values in {value}")
        return value

    @field_validator("channels")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(not 1 <= v <= 4096 for v in value):
            raise ValueError(f"channels must lie in [1, 4096], got {value}")
        return value

    @model_validator(mode="after")
    def _periods(self) -> "PoolingConfig":
        if self.iterations % self.eval_every:
            raise ValueError(f"iterations ({self.iterations}) must be a multiple of "
                             f"eval_every ({self.eval_every})")
        return self


def _per_network(values: Section, network: str) -> float:
    return values.convac if network == "convac" else values.relu


#: The claim needs every network and both tasks and geometries, over >= 3 seeds.
_SCALE = {"n_seeds": 3, "tasks": list(TASKS), "geometries": list(GEOMETRIES),
          "networks": list(NETWORKS)}
#: "Beats": a seed-mean test accuracy at least this much higher (set before measuring).
BEATS_BY = 0.01
_SOURCE = ("Cohen & Shashua 2017 (ICLR), Inductive Bias of Deep Convolutional Networks "
           "through Pooling Geometry")


class Pooling(StackedExperiment):
    name = "pooling"
    version = 1
    section = PoolingConfig
    stages = {
        "data": Stage(reads=("data",), writes=("data",)),
        "train": Stage(reads=("data", "label_fraction", "tasks", "networks", "geometries",
                              "channels", "n_seeds", "iterations", "eval_every", "batch_size",
                              "lr", "beta2", "weight_decay", "device", "gpus_per_stack",
                              "stack_memory_mb"), needs=("data",)),
        "analyze": Stage(reads=("ranks", "label_fraction"), needs=("data",)),
    }
    claims = (
        Claim("pooling_geometry_bias",
              "square pooling beats mirror pooling on closedness and mirror beats square on "
              "symmetry, for the ConvAC and for ReLU nets with average and max pooling",
              _SOURCE + ", Sec. 6, Fig. 4 (blob tasks)",
              "geometry_advantage.*.*", ">=", BEATS_BY, scale=_SCALE, profile="default",
              note=f"measured: per network and task, the seed-mean test accuracy of the "
                   f"favoured geometry minus the other's (square - mirror on closedness, "
                   f"mirror - square on symmetry), the worst case; 'beats' means by at least "
                   f"{BEATS_BY} (set before measuring); constant learning rate (the "
                   f"original divides it by 10 at 80 % of the iterations); minibatches drawn "
                   f"with replacement"),
        Claim("square_left_right_rank_capped",
              "a deep ConvAC with square pooling has left/right separation rank at most its "
              "top level's width",
              _SOURCE + ", Sec. 5 (Claim 1 and its discussion)",
              "ranks.deep_square_left_right_excess", "<=", 0.0, profile="test",
              scale={"ranks.grid": 4},
              note="measured: the largest (rank - channels) over random networks on the "
                   "rank grid; exact ranks (tolerance in ranks.tolerance)"),
        Claim("mirror_left_right_rank_high",
              "with mirror pooling the left/right rank is not capped by the top width",
              _SOURCE + ", Sec. 5",
              "ranks.deep_mirror_left_right_excess", ">=", 1.0, profile="test",
              scale={"ranks.grid": 4},
              note="measured: the smallest (rank - channels) over random networks with >= 2 "
                   "channels on the rank grid"),
    )
    figure_claims = {"figure_accuracy": ("pooling_geometry_bias",), "figure_ranks": ("*_rank_*",)}
    plots = {
        "pooling_accuracy": Plot("accuracy_plot", x="test_accuracy", y=("config",),
                                 template="bar_horizontal",
                                 title="Blob tasks: final test accuracy (mean over seeds)",
                                 x_label="test accuracy", y_label="task / network / pooling",
                                 about="Seed-mean final test accuracy per task, network, "
                                       "pooling geometry and width."),
    }

    # ------------------------------------------------------------------ trials, units
    def trials(self, cfg: PoolingConfig) -> list[TrialSpec]:
        specs = []
        for task in cfg.tasks:
            for network in cfg.networks:
                for geometry in cfg.geometries:
                    for channels in cfg.channels:
                        config = {
                            "task": task, "network": network, "geometry": geometry,
                            "channels": channels, "size": cfg.data.size,
                            "n_train": cfg.data.n_train, "n_test": cfg.data.n_test,
                            "data_seed": cfg.data.seed, "label_fraction": cfg.label_fraction,
                            "iterations": cfg.iterations, "eval_every": cfg.eval_every,
                            "batch_size": cfg.batch_size, "lr": _per_network(cfg.lr, network),
                            "beta2": _per_network(cfg.beta2, network),
                            "weight_decay": _per_network(cfg.weight_decay, network)}
                        specs += [TrialSpec(self.name, self.version, config, seed=seed,
                                            swept=("task", "network", "geometry", "channels"))
                                  for seed in range(cfg.n_seeds)]
        return specs

    def model_bytes(self, trial: TrialSpec, cfg: PoolingConfig) -> int:
        from theorydl.nn import module_bytes
        from theorydl.studies.pooling.networks import build_network

        c = trial.config
        n_eval = min(c["n_test"], 8192)
        estimate = module_bytes(lambda: build_network(c["network"], c["size"], c["channels"],
                                                      c["geometry"]),
                                (1, c["size"], c["size"]), c["batch_size"], n_eval)
        if c["network"] == "convac":
            # Its levels are functions, not submodules, so module_bytes sees only the
            # output: add about 4 tensors (exp, conv, log, pooled) per level, kept for
            # the backward pass (x3) of a batch and for one evaluation chunk.
            per_sample = 4 * c["channels"] * c["size"] ** 2 * 4 / 3
            estimate += int(4 * (3 * c["batch_size"] + n_eval) * per_sample * 1.5)
        return estimate

    def stack_cost(self, trial: TrialSpec, cfg: PoolingConfig) -> float:
        c = trial.config
        return c["iterations"] * c["channels"] ** 2 * (2.0 if c["network"] == "convac" else 1.0)

    def trial_cost(self, trial: TrialSpec, cfg: PoolingConfig) -> float:
        """Iterations x batch x pixels x channels^2 (convac's product pooling: twice)."""
        c = trial.config
        return self.stack_cost(trial, cfg) * c["batch_size"] * c["size"] ** 2

    def stack_label(self, trial: TrialSpec) -> str:
        c = trial.config
        return f"{c['task']}-{c['network']}-{c['geometry']}-{c['channels']}"

    # ------------------------------------------------------------------ data
    def data(self, params: Params, cfg: PoolingConfig) -> None:
        from theorydl.studies.pooling.blobs import save_blobs

        d = cfg.data
        save_blobs(cfg.paths.data, d.size, d.n_train, d.n_test, d.seed)

    def check_data(self, cfg: PoolingConfig) -> None:
        from theorydl.studies.pooling.blobs import load_blobs

        path = Path(cfg.paths.data)
        if not path.exists():
            raise StageError(f"{path} is missing: run the data stage first "
                             f"(`dvc repro pooling_data`)")
        d = cfg.data
        meta = load_blobs(path)["meta"]
        want = {"size": d.size, "n_train": d.n_train, "n_test": d.n_test, "seed": d.seed}
        if meta != want:
            raise StageError(f"{path} holds blobs {meta}, the params ask for {want}; re-run "
                             f"`dvc repro pooling_data`")

    # ------------------------------------------------------------------ training
    def run_stack(self, trials, cfg: PoolingConfig, device):
        return train_pooling_stack(trials, cfg, device)


def task_arrays(blobs: dict, task: str, split: str, fraction: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, 1, H, W) float32 in {0, 1}, labels (n,)) of one task and split: the
    extreme ``fraction`` of each end of the task's scores, the middle dropped."""
    from theorydl.studies.pooling.blobs import extreme_labels

    labels = extreme_labels(blobs[f"{task}_{split}"], fraction)
    keep = labels >= 0
    images = blobs[f"images_{split}"][keep].astype(np.float32)[:, None]
    return images, labels[keep]


def train_pooling_stack(trials, cfg: PoolingConfig, device) -> list[tuple[str, list[dict]]]:
    """Train one stack (the seeds of one task, network, geometry and width); rows per
    trial: one ``curve`` row per record (iteration, test accuracy and loss, the mean
    training loss since the last record) and a ``final`` row (train and test accuracy)."""
    import torch

    from theorydl.nn import Adam, Hook, Stream, evaluate, init_modules, train
    from theorydl.studies.pooling.blobs import load_blobs
    from theorydl.studies.pooling.networks import build_network

    c = trials[0].config
    blobs = load_blobs(cfg.paths.data)
    x_train, y_train = task_arrays(blobs, c["task"], "train", c["label_fraction"])
    x_test, y_test = task_arrays(blobs, c["task"], "test", c["label_fraction"])
    X, y = torch.as_tensor(x_train), torch.as_tensor(y_train)  # CPU: the sampler's side
    Xt = torch.as_tensor(x_test, device=device)
    yt = torch.as_tensor(y_test, device=device)
    seeds = [t.seed for t in trials]
    stack = init_modules(lambda: build_network(c["network"], c["size"], c["channels"],
                                               c["geometry"]), seeds, device=device)

    def sample(g: torch.Generator, b: int):
        idx = torch.randint(X.shape[0], (b,), generator=g)
        return X[idx], y[idx]

    periods = c["iterations"] // c["eval_every"]
    m = len(trials)
    test_err = torch.full((periods + 1, m), math.nan, dtype=torch.float64, device=device)
    test_loss = torch.full_like(test_err, math.nan)

    class Record(Hook):
        def at(self, t: int, periods: int) -> bool:
            return True

        def __call__(self, period) -> None:
            err, loss = evaluate(period.family, Xt, yt)
            idx = torch.as_tensor(period.models, device=device)
            test_err[period.t].index_copy_(0, idx, err)
            test_loss[period.t].index_copy_(0, idx, loss)

    opt = Adam([t.config["lr"] for t in trials], betas=(0.9, c["beta2"]),
               weight_decay=c["weight_decay"])
    result = train(stack, Stream(sample, steps_per_period=c["eval_every"]), opt, periods,
                   batch_size=c["batch_size"], hooks=[Record()])
    train_err, _ = evaluate(result.family, X.to(device), y.to(device))
    err_np, loss_np = test_err.cpu().numpy(), test_loss.cpu().numpy()
    train_loss = result.loss.double().cpu().numpy()  # (M, periods)
    train_err_np = train_err.cpu().numpy()
    out = []
    for i in range(m):
        finite = np.isfinite(train_loss[i]).all()
        rows = []
        for t in range(periods + 1):
            rows.append({"kind": "curve", "iteration": t * c["eval_every"],
                         "test_accuracy": finite_or_none(1.0 - err_np[t, i]),
                         "test_loss": finite_or_none(loss_np[t, i]),
                         "train_loss": finite_or_none(train_loss[i, t - 1]) if t else None})
        rows.append({"kind": "final", "iteration": c["iterations"],
                     "test_accuracy": finite_or_none(1.0 - err_np[-1, i]),
                     "test_loss": finite_or_none(loss_np[-1, i]),
                     "train_accuracy": finite_or_none(1.0 - train_err_np[i]),
                     "n_train": int(len(y_train)), "n_test": int(len(y_test))})
        out.append(("ok" if finite else "diverged", rows))
    return out
