"""Decoupled gating (GaLU): memorisation of random data, and generalisation on images.

Fiat, Malach & Shalev-Shwartz ("Decoupling Gating from Linearity", 2019) split a neuron
into a selector (its gate) and a linear aggregator. A GaLU neuron computes
(w . x) 1[u . x >= 0] with the gate u fixed at random; k of them summed are linear in
their k d weights, so fitting m points is linear least squares, and the fraction of the
targets' variance left unexplained is about 1 - kd/m (the line every figure draws).

Two studies, one train stage (``study`` in each trial's config):

* **memorise**: x ~ N(0, I_d), y ~ N(0, 1), m points, for every (m, d, kd/m) of the grid
  (k = ratio m / d). GaLU least squares in closed form
  (:func:`theorydl.studies.gating.galu.galu_least_squares`, batched over the stack's models), and
  GaLU, ReLU and linear networks (:class:`theorydl.studies.gating.galu.GatedNet`: k hidden units, a
  linear readout, no biases, as the original) trained by the engine on the squared
  loss. The training loss (mean squared error over the m points) against kd/m is
  compared with the published values at kd/m = 0.25, 0.5, 0.75, 1.
* **generalise**: PCA-reduced images (whitened components fitted on the training set),
  networks of width k with ``depth`` hidden layers: ReLU, GaLU with sigmoid gates of
  scale alpha from the input (the original's GaLU0s) and linear, trained with SGD on the
  cross-entropy. Every (lr, alpha) candidate trains on the training set minus a
  stratified validation split; the analysis picks, per (network, k), the candidate with
  the lowest mean validation error and reports its test error. The test set never
  chooses anything (the original chose by test error).

A trial is (study, network, grid point, candidate, seed); everything but the seed (and,
for generalise, the learning rate) fixes a stack.

Run it: ``dvc repro gating_analyze``; paper scale: ``theorydl profile paper`` first.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator, model_validator

from theorydl.spine.config import Params, Paths, Section, data_file, figure_file, plot_file
from theorydl.spine.experiment import Claim, Plot, Stage, StageError
from theorydl.spine.spec import TrialSpec
from theorydl.spine.stacked import StackedExperiment, StackResources, finite_or_none
from theorydl.studies.gating.published import (
    MEMORISE_TOLERANCE,
    MNIST_TOLERANCE,
    PUBLISHED_MEMORISE,
    PUBLISHED_MNIST_K96,
    PUBLISHED_RATIOS,
    ratio_key,
)

__all__ = ["Gating", "GatingConfig", "memorise_data", "pca_whiten", "ratio_key"]

log = logging.getLogger("theorydl")

MemoriseNetwork = Literal["galu_ls", "galu", "relu", "linear"]


class MemoriseConfig(Section):
    points: list[int] = Field(min_length=1)
    """Numbers of points m (paper: 512, 1024, 2048)."""
    dims: list[int] = Field(min_length=1)
    """Input dimensions d (paper: 8, 16, 24, 32)."""
    ratios: list[float] = Field(min_length=1)
    """Values of kd/m; k = ratio m / d must be a whole number for every (m, d)."""
    networks: list[MemoriseNetwork] = Field(
        default_factory=lambda: ["galu_ls", "galu", "relu", "linear"], min_length=1)
    """galu_ls: GaLU least squares in closed form; galu, relu, linear: trained by the engine."""
    optimizer: Literal["sgd", "adam"] = "adam"
    """Optimiser of the trained networks (the original: SGD)."""
    lr: float = Field(default=0.01, gt=0.0)
    """Learning rate of the trained networks (the original: SGD 0.001)."""
    iterations: int = Field(default=2000, ge=1, le=10_000_000)
    """Minibatch steps (rounded up to whole epochs; the original: 100000)."""
    batch_size: int = Field(default=128, ge=1)
    """Minibatch size (the original: 128)."""
    n_datasets: int = Field(default=2, ge=1, le=10_000)
    """Random data sets per (m, d) (the original: 16 repeats)."""
    n_seeds: int = Field(default=2, ge=1, le=10_000)
    """Networks (gates and initialisations) per data set; they share a stack."""

    @field_validator("points", "dims")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value) or len(set(value)) != len(value):
            raise ValueError(f"need distinct values >= 1, got {value}")
        return value

    @model_validator(mode="after")
    def _whole_widths(self) -> "MemoriseConfig":
        if any(r <= 0 for r in self.ratios) or len(set(self.ratios)) != len(self.ratios):
            raise ValueError(f"ratios: need distinct values > 0, got {self.ratios}")
        for m in self.points:
            for d in self.dims:
                for r in self.ratios:
                    k = r * m / d
                    if abs(k - round(k)) > 1e-9 or round(k) < 1:
                        raise ValueError(f"ratios: kd/m = {r} with m = {m}, d = {d} gives "
                                         f"k = {k:g}, not a whole number >= 1")
        return self


class GeneraliseConfig(Section):
    enabled: bool = True
    """Run the generalisation study."""
    dataset: Literal["digits", "mnist", "fashion_mnist"] = "digits"
    """digits ships with scikit-learn; mnist and fashion_mnist are downloaded by the data stage."""
    root: str = "data/vision"
    """Folder of the downloaded files (root/<dataset>/...); not used by digits."""
    seed: int = Field(default=0, ge=0)
    """Seed of the digits train/test split and of the validation split."""
    pca_dims: int = Field(default=32, ge=1)
    """Principal components kept, each scaled to unit variance (the paper: 64)."""
    widths: list[int] = Field(min_length=1)
    """Hidden widths k (the paper: 16, 32, 48, 64, 80, 96)."""
    depth: int = Field(default=2, ge=1, le=8)
    """Hidden layers of width k (the original's T = 2)."""
    networks: list[Literal["relu", "galu", "linear"]] = Field(
        default_factory=lambda: ["relu", "galu", "linear"], min_length=1)
    """relu; galu: sigmoid gates of scale alpha from the input; linear."""
    lrs: list[float] = Field(min_length=1)
    """SGD learning rates, chosen on the validation split (the paper: 1e-3, 5e-4, 1e-4)."""
    alphas: list[float] = Field(min_length=1)
    """GaLU gate scales, chosen on the validation split (the paper: 0.01 ... 10)."""
    iterations: int = Field(default=2000, ge=1, le=10_000_000)
    """SGD steps (rounded up to whole epochs; the original: 100000)."""
    batch_size: int = Field(default=128, ge=1)
    """Minibatch size (the original: 128)."""
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    """Share of the training set held out to choose lr and alpha (stratified)."""
    n_seeds: int = Field(default=2, ge=1, le=10_000)
    """Networks per candidate (the original: 4)."""

    @field_validator("widths")
    @classmethod
    def _widths(cls, value: list[int]) -> list[int]:
        if any(v < 1 for v in value) or len(set(value)) != len(value):
            raise ValueError(f"need distinct widths >= 1, got {value}")
        return value

    @field_validator("lrs", "alphas")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if any(not v > 0 for v in value) or len(set(value)) != len(value):
            raise ValueError(f"need distinct values > 0, got {value}")
        return value


class GatingPaths(Paths):
    data: str = data_file("dataset.npz")
    """Data stage output: the images of the generalisation study (before PCA)."""
    memorise_plot: str = plot_file("memorise")
    """Plot data: mean training loss against kd/m per network, and 1 - kd/m."""
    generalise_plot: str = plot_file("generalise")
    """Plot data: test error against width k per network (validation-chosen lr, alpha)."""
    figure_memorise: str = figure_file("memorise")
    """Training loss against kd/m, the line 1 - kd/m and the published points."""
    figure_generalise: str = figure_file("generalise")
    """Test error against k, ReLU, GaLU and linear."""


class GatingConfig(StackResources):
    """The ``gating`` section (with ``device``, ``gpus_per_stack``, ``stack_memory_mb``)."""

    memorise: MemoriseConfig
    """Memorisation of random Gaussian data."""
    generalise: GeneraliseConfig
    """Generalisation on PCA-reduced images."""
    paths: GatingPaths = GatingPaths()
    """Where the stages write: each path defaults from the name (theorydl.spine.config.Paths)."""


# ------------------------------------------------------------------------ helpers


def memorise_data(m: int, d: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Data set ``index`` of (m, d): X (m, d) and y (m,), float32, N(0, 1) entries from
    ``numpy.random.default_rng([m, d, index])``."""
    rng = np.random.default_rng([m, d, index])
    return (rng.standard_normal((m, d)).astype(np.float32),
            rng.standard_normal(m).astype(np.float32))


def pca_whiten(x_train: np.ndarray, others: list[np.ndarray], dims: int
               ) -> list[np.ndarray]:
    """Project on the top ``dims`` principal components of ``x_train`` (centred on its
    mean) and divide each by its std on ``x_train``, as the original's PCA; returns the
    transformed x_train and others (float32)."""
    mean = x_train.mean(0, dtype=np.float64)
    centred = x_train - mean
    _, _, vt = np.linalg.svd(centred.astype(np.float64), full_matrices=False)
    if dims > vt.shape[0]:
        raise StageError(f"gating.generalise.pca_dims = {dims} exceeds the data's "
                         f"{vt.shape[0]} dimensions")
    r = vt[:dims].T
    z = centred @ r
    std = z.std(0)
    std[std == 0] = 1.0
    return [(z / std).astype(np.float32), *(((o - mean) @ r / std).astype(np.float32)
                                           for o in others)]


_DATA_CACHE: dict[tuple, Any] = {}


def _images(cfg: GatingConfig):
    """The data stage's images, read once per worker (digits rebuilt when missing)."""
    from theorydl.data.vision import load_digits, load_npz

    path = Path(cfg.paths.data)
    if path.exists():
        st = path.stat()
        key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
        if key not in _DATA_CACHE:
            _DATA_CACHE.clear()
            _DATA_CACHE[key] = load_npz(path)
        return _DATA_CACHE[key]
    if cfg.generalise.dataset == "digits":
        return load_digits(cfg.generalise.seed)
    raise StageError(f"{path} is not on this machine ({os.uname().nodename}): run "
                     f"`dvc repro gating_data` here")


def generalise_arrays(cfg: GatingConfig) -> dict[str, np.ndarray]:
    """fit / validation / test arrays of the generalisation study: PCA (whitened, fitted
    on the whole training set: no labels, no test data) to ``pca_dims``, then a
    stratified validation split of the training set."""
    from theorydl.data.vision import stratified_choice

    g = cfg.generalise
    data = _images(cfg)
    x_train, x_test = pca_whiten(data.x_train, [data.x_test], g.pca_dims)
    y = data.y_train
    rng = np.random.default_rng([g.seed, 1])
    val = stratified_choice(y, round(g.validation_fraction * y.size), rng)
    fit = np.setdiff1d(np.arange(y.size), val)
    return {"x_fit": x_train[fit], "y_fit": y[fit], "x_val": x_train[val], "y_val": y[val],
            "x_test": x_test, "y_test": data.y_test, "n_classes": data.n_classes}


def _epochs(iterations: int, n: int, batch_size: int) -> int:
    return max(1, math.ceil(iterations / math.ceil(n / batch_size)))


def _optimizer(name: str, lrs):
    from theorydl.nn import SGD, Adam

    return Adam(list(lrs)) if name == "adam" else SGD(list(lrs))


# ------------------------------------------------------------------------ claims

_FMS = "Fiat, Malach & Shalev-Shwartz 2019 (arXiv:1906.05032)"


def _gating_claims() -> tuple[Claim, ...]:
    claims = []
    figure_claims = {"figure_memorise": ("memorise_*",), "figure_generalise": ("mnist_*",)}
    for network, values in PUBLISHED_MEMORISE.items():
        for r, v, tol in zip(PUBLISHED_RATIOS, values, MEMORISE_TOLERANCE):
            ls = network == "galu_ls"
            claims.append(Claim(
                f"memorise_{network}_{ratio_key(r)}",
                f"{'GaLU least squares' if ls else 'ReLU networks trained by SGD'} leave a "
                f"training loss of {v:g} on random data at kd/m = {r:g}",
                _FMS + ", memorisation of random Gaussian data (mean over (m, d, k))",
                f"memorise.{network}.{ratio_key(r)}", "==", v, tolerance=tol,
                profile="default" if ls else "paper",
                scale={"memorise.n_datasets": 2} if ls else {"memorise.optimizer": "sgd",
                                     "memorise.iterations": 100_000},
                needs="" if ls else ("SGD for 100 000 steps on the original's grid (720 "
                                     "trials per network, about 33 h on one CPU core): a "
                                     "GPU or a cluster"),
                note=("measured and published alike: the loss as a fraction of the "
                      "targets' mean square (the paper's variance; y ~ N(0, 1) has mean 0), "
                      "not the raw MSE; " + (
                          "closed form: its value depends on kd/m, not on the scale of the grid"
                          if ls else "the loss of a trained network depends on its budget: "
                                     "the paper's is SGD, lr 0.001, 100000 steps of 128"))))
    for network, v in PUBLISHED_MNIST_K96.items():
        claims.append(Claim(
            f"mnist_k96_{network}",
            f"{network} network of width 96 reaches {100 * v:.2f} % test error on MNIST",
            _FMS + ", MNIST reduced to 64 principal components",
            f"generalise.{network}.k96.test_error", "==", v, tolerance=MNIST_TOLERANCE,
            scale={"generalise.dataset": "mnist", "generalise.pca_dims": 64,
                   "generalise.widths": [96], "generalise.iterations": 100_000},
            needs="MNIST, a download (these machines reach no internet), and 100 000 SGD "
                  "steps per candidate: a GPU",
            note="lr (and alpha) chosen on a validation split here, by test error in the "
                 "original; two hidden layers"))
    return tuple(claims)


# ------------------------------------------------------------------------ experiment


class Gating(StackedExperiment):
    name = "gating"
    version = 1
    section = GatingConfig
    stages = {
        "data": Stage(reads=("generalise.enabled", "generalise.dataset", "generalise.root",
                             "generalise.seed"), writes=("data",)),
        "train": Stage(reads=("memorise", *(f"generalise.{k}" for k in (
            "enabled", "dataset", "seed", "pca_dims", "widths", "depth", "networks", "lrs",
            "alphas", "iterations", "batch_size", "validation_fraction", "n_seeds")),
            "device", "gpus_per_stack", "stack_memory_mb"), needs=("data",)),
        "analyze": Stage(),
    }
    claims = _gating_claims()
    plots = {
        "gating_memorise": Plot("memorise_plot", x="kd_m",
                                y=("theory", "galu_ls", "galu", "relu", "linear"),
                                title="Memorisation: training loss against kd/m",
                                x_label="kd/m", y_label="mean squared error",
                                about="Training loss of random data against kd/m, with the "
                                      "line 1 - kd/m."),
        "gating_generalise": Plot("generalise_plot", x="k", y=("relu", "galu", "linear"),
                                  title="Test error against width",
                                  x_label="k", y_label="test error",
                                  about="Test error against k, lr and alpha chosen on "
                                        "validation."),
    }
    # Learning rates of one generalise grid point share a stack.
    per_model_keys = ("lr",)

    # ------------------------------------------------------------------ trials
    def trials(self, cfg: GatingConfig) -> list[TrialSpec]:
        mc, specs = cfg.memorise, []
        for network in mc.networks:
            for m in mc.points:
                for d in mc.dims:
                    for r in mc.ratios:
                        for data in range(mc.n_datasets):
                            config = {"study": "memorise", "network": network, "m": m,
                                      "d": d, "k": round(r * m / d), "ratio": r,
                                      "data_index": data}
                            if network != "galu_ls":
                                config.update(optimizer=mc.optimizer, lr=mc.lr,
                                              iterations=mc.iterations,
                                              batch_size=mc.batch_size)
                            specs += [TrialSpec(self.name, self.version, config, seed=s,
                                                swept=("study", "network", "m", "d", "k", "ratio"))
                                      for s in range(mc.n_seeds)]
        g = cfg.generalise
        if not g.enabled:
            return specs
        shared = {"study": "generalise", "dataset": g.dataset, "split_seed": g.seed,
                  "pca_dims": g.pca_dims, "depth": g.depth, "iterations": g.iterations,
                  "batch_size": g.batch_size, "validation_fraction": g.validation_fraction}
        for network in g.networks:
            for k in g.widths:
                for alpha in (g.alphas if network == "galu" else [None]):
                    for lr in g.lrs:
                        config = {**shared, "network": network, "k": k, "alpha": alpha,
                                  "lr": lr}
                        specs += [TrialSpec(self.name, self.version, config, seed=s,
                                            swept=("study", "network", "k", "alpha", "lr"))
                                  for s in range(g.n_seeds)]
        return specs

    def _build(self, c: dict[str, Any], d: int, out: int):
        from theorydl.studies.gating.galu import GatedNet

        if c["study"] == "memorise":
            return lambda: GatedNet(d, c["k"], 1, network=c["network"], depth=1,
                                    gate="step", bias=False)
        return lambda: GatedNet(d, c["k"], out, network=c["network"], depth=c["depth"],
                                gate="sigmoid", alpha=c["alpha"] or 1.0, bias=True)

    def _shape(self, c: dict[str, Any]) -> tuple[int, int, int]:
        """(input dims, outputs, training points) of a trial."""
        if c["study"] == "memorise":
            return c["d"], 1, c["m"]
        n = 70_000 if c["dataset"] != "digits" else 1797
        return c["pca_dims"], 10, n

    def model_bytes(self, trial: TrialSpec, cfg: GatingConfig) -> int:
        from theorydl.nn import module_bytes

        c = trial.config
        d, out, n = self._shape(c)
        if c["network"] == "galu_ls":
            return 8 * 3 * n * c["k"] * d + 8 * (c["k"] * d) ** 2
        return module_bytes(self._build(c, d, out), (d,), c["batch_size"], min(n, 8192))

    def shared_bytes(self, trial: TrialSpec, cfg: GatingConfig) -> int:
        d, _, n = self._shape(trial.config)
        return 8 * n * d

    def stack_cost(self, trial: TrialSpec, cfg: GatingConfig) -> float:
        c = trial.config
        d, _, n = self._shape(c)
        return float(c.get("iterations", 1) * c["k"] * d)

    def trial_cost(self, trial: TrialSpec, cfg: GatingConfig) -> float:
        """Least squares: m (kd)^2 (the normal equations); trained: steps x batch x
        parameters."""
        c = trial.config
        d, out, n = self._shape(c)
        if c["network"] == "galu_ls":
            return float(c["m"] * (c["k"] * c["d"]) ** 2)
        layers = c.get("depth", 1)
        params = d * c["k"] + (layers - 1) * c["k"] ** 2 + c["k"] * out
        return float(c["iterations"] * min(c["batch_size"], n) * params)

    def cost_class(self, trial: TrialSpec) -> str:
        c = trial.config
        return f"{c['study']}/{'ls' if c['network'] == 'galu_ls' else 'trained'}"

    def stack_label(self, trial: TrialSpec) -> str:
        c = trial.config
        if c["study"] == "memorise":
            return f"memorise-{c['network']}-m{c['m']}-d{c['d']}-k{c['k']}-{c['data_index']}"
        return f"generalise-{c['network']}-k{c['k']}-a{c['alpha']}"

    # ------------------------------------------------------------------ data
    def data(self, params: Params, cfg: GatingConfig) -> None:
        from theorydl.data.vision import download, load, save_npz

        g = cfg.generalise
        if g.enabled and g.dataset != "digits":
            download(g.dataset, g.root)
        data = load(g.dataset, g.root, seed=g.seed)
        save_npz(data, cfg.paths.data)

    def check_data(self, cfg: GatingConfig) -> None:
        path = Path(cfg.paths.data)
        if not path.exists():
            raise StageError(f"{path} is missing: run `dvc repro gating_data` first")
        if _images(cfg).name != cfg.generalise.dataset:
            raise StageError(f"{path} holds another dataset than gating.generalise.dataset; "
                             f"re-run `dvc repro gating_data`")

    # ------------------------------------------------------------------ training
    def run_stack(self, trials, cfg: GatingConfig, device):
        c = trials[0].config
        if c["study"] == "memorise":
            return self._memorise(trials, c, device)
        return self._generalise(trials, cfg, c, device)

    def _memorise(self, trials, c, device):
        import torch

        from theorydl.nn import Arrays, evaluate, init_modules, train
        from theorydl.studies.gating.galu import galu_least_squares

        x, y = memorise_data(c["m"], c["d"], c["data_index"])
        X, Y = torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)
        seeds = [t.seed for t in trials]
        if c["network"] == "galu_ls":
            # Model i's gates: N(0, 1) filters from torch.Generator().manual_seed(seed).
            U = torch.stack([torch.randn(c["k"], c["d"], generator=torch.Generator()
                                         .manual_seed(s)) for s in seeds]).to(device)
            _, loss = galu_least_squares(X, Y, U)
        else:
            stack = init_modules(self._build(c, c["d"], 1), seeds, device=device)
            epochs = _epochs(c["iterations"], c["m"], c["batch_size"])
            done = train(stack, Arrays(X, Y), _optimizer(c["optimizer"], [c["lr"]] * len(seeds)),
                         epochs, loss="squared", batch_size=c["batch_size"])
            _, loss = evaluate(done.family, X, Y, "squared")
        loss = loss.double().cpu().numpy()
        var = float(np.mean(y.astype(np.float64) ** 2))
        out = []
        for i in range(len(trials)):
            value = finite_or_none(loss[i])
            out.append(("ok" if value is not None else "diverged",
                        [{"kind": "final", "train_loss": value,
                          "target_mean_square": var}]))
        return out

    def _generalise(self, trials, cfg, c, device):
        import torch

        from theorydl.nn import Arrays, evaluate, init_modules, train

        a = generalise_arrays(cfg)
        t = {k: torch.as_tensor(v, device=device) for k, v in a.items() if k != "n_classes"}
        seeds = [tr.seed for tr in trials]
        stack = init_modules(self._build(c, c["pca_dims"], a["n_classes"]), seeds,
                             device=device)
        epochs = _epochs(c["iterations"], a["y_fit"].size, c["batch_size"])
        done = train(stack, Arrays(t["x_fit"], t["y_fit"]),
                     _optimizer("sgd", [tr.config["lr"] for tr in trials]), epochs,
                     loss="cross_entropy", batch_size=c["batch_size"])
        measured = {split: [v.double().cpu().numpy() for v in
                            evaluate(done.family, t[f"x_{split}"], t[f"y_{split}"])]
                    for split in ("fit", "val", "test")}
        out = []
        for i in range(len(trials)):
            row = {"kind": "final", "epochs": epochs,
                   "train_error": finite_or_none(measured["fit"][0][i]),
                   "train_loss": finite_or_none(measured["fit"][1][i]),
                   "validation_error": finite_or_none(measured["val"][0][i]),
                   "test_error": finite_or_none(measured["test"][0][i]),
                   "test_loss": finite_or_none(measured["test"][1][i])}
            out.append(("ok" if row["train_loss"] is not None else "diverged", [row]))
        return out

