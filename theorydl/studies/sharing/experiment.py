"""Weight sharing: does tying the first layer's weights across patches help optimisation?

Shalev-Shwartz, Shamir & Shammah ("Weight Sharing is Crucial to Successful
Optimization", 2017) show that gradient training without weight sharing learns only the
low frequencies of a target, while with sharing a low-frequency component leads it to
the rest. No code or exact setting was published: this experiment is a proxy built on
the paper's abstract claims (:mod:`theorydl.studies.sharing.teacher` describes the networks and
targets).

A trial is (target, C, shared or unshared, seed); the seeds of one (target, C, sharing)
train in one stack through the engine on a :class:`theorydl.nn.Stream` of fresh Gaussian
inputs (every step a new minibatch per model), with the squared loss. Recorded: the
training loss every ``log_every`` steps and, at the end, the loss on a fixed held-out
set; both divided by the target's variance (1: no better than a constant).

Run it: ``dvc repro sharing_analyze``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from theorydl.spine.config import Paths, figure_file, plot_file
from theorydl.spine.experiment import Claim, Plot, Stage
from theorydl.spine.spec import TrialSpec
from theorydl.spine.stacked import StackedExperiment, StackResources, finite_or_none
from theorydl.studies.sharing.teacher import blend_key, target_label

__all__ = ["Sharing", "SharingConfig"]


class SharingPaths(Paths):
    final_plot: str = plot_file("final")
    """Plot data: final held-out loss (relative) against C, shared and unshared."""
    figure_curves: str = figure_file("curves")
    """Training loss against iterations per target, shared and unshared."""
    figure_final: str = figure_file("final")
    """Final loss against C, shared and unshared."""


class SharingConfig(StackResources):
    """The ``sharing`` section (with ``device``, ``gpus_per_stack``, ``stack_memory_mb``)."""

    n: int = Field(default=8, ge=2, le=256)
    """Patches, and values per patch (inputs are n x n)."""
    sigma: Literal["tanh", "relu"] = "tanh"
    """First-layer nonlinearity of teacher and students."""
    beta: float = Field(default=4.0, gt=0.0)
    """Frequency of the high-frequency target cos(beta z_i)."""
    teacher_seed: int = Field(default=0, ge=0)
    """Seed of the teacher's weights (and of the held-out set)."""
    targets: list[Literal["low", "high", "mixed"]] = Field(
        default_factory=lambda: ["low", "high", "mixed"], min_length=1)
    """low: one patch feature; high: sum of cosines of every patch feature; mixed: high + C low."""
    blend: list[float] = Field(default_factory=lambda: [0.5, 1.0, 2.0], min_length=1)
    """Weights C of the low part in the mixed target (the claim reads C = 1)."""
    hidden: int = Field(default=32, ge=1, le=4096)
    """ReLU units of g, the small net applied to every patch feature."""
    optimizer: Literal["adam", "sgd"] = "adam"
    """Optimiser."""
    lr: float = Field(default=0.01, gt=0.0)
    """Learning rate."""
    batch_size: int = Field(default=128, ge=1)
    """Fresh samples per step and model."""
    iterations: int = Field(default=3000, ge=1, le=100_000_000)
    """Training steps."""
    log_every: int = Field(default=100, ge=1)
    """Steps between recorded training losses (a period of the engine)."""
    eval_size: int = Field(default=4096, ge=16)
    """Held-out samples for the final loss."""
    n_seeds: int = Field(default=3, ge=1, le=10_000)
    """Students per (target, C, sharing): seeds 0..n_seeds-1."""
    paths: SharingPaths = SharingPaths()
    """Where the stages write: each path defaults from the name (theorydl.spine.config.Paths)."""

    @field_validator("targets")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"repeated values in {value}")
        return value

    @field_validator("blend")
    @classmethod
    def _blend(cls, value: list[float]) -> list[float]:
        if any(v < 0 for v in value) or len(set(value)) != len(value):
            raise ValueError(f"need distinct weights >= 0, got {value}")
        return value

    @model_validator(mode="after")
    def _periods(self) -> "SharingConfig":
        if self.iterations % self.log_every:
            raise ValueError(f"iterations ({self.iterations}) must be a multiple of "
                             f"log_every ({self.log_every})")
        return self


#: Thresholds of the claims, set before measuring (losses relative to Var(y)): a target
#: is learnt below 0.1, not learnt above 0.5; sharing "at most half" the unshared loss.
LEARNT, NOT_LEARNT, HALF = 0.1, 0.5, 0.5
_SSS = "Shalev-Shwartz, Shamir & Shammah 2017 (arXiv:1706.00687), abstract"
_PROXY = ("proxy: the paper's families and targets are not published; n x n Gaussian "
          "patches, tanh features, targets from a random teacher of the same family")


class Sharing(StackedExperiment):
    name = "sharing"
    version = 1
    section = SharingConfig
    stages = {
        "train": Stage(reads=("n", "sigma", "beta", "teacher_seed", "targets", "blend",
                              "hidden", "optimizer", "lr", "batch_size", "iterations",
                              "log_every", "eval_size", "n_seeds", "device",
                              "gpus_per_stack", "stack_memory_mb")),
        "analyze": Stage(),
    }
    claims = (
        Claim("low_learnt", "with or without weight sharing, gradient training learns the "
              "low-frequency target", _SSS, "low.*.relative_loss", "<=", LEARNT,
              profile="default", note=_PROXY + f"; learnt: held-out loss below {LEARNT} Var(y)"),
        Claim("high_not_learnt", "with or without weight sharing, gradient training does not "
              "learn the purely high-frequency target", _SSS, "high.*.relative_loss", ">=",
              NOT_LEARNT, profile="default",
              note=_PROXY + f"; not learnt: held-out loss above {NOT_LEARNT} Var(y)"),
        Claim("sharing_helps_blend", "on a blend of low and high frequencies (C = 1), weight "
              "sharing reaches at most half the loss of the unshared network", _SSS,
              f"{blend_key(1.0)}.shared_over_unshared", "<=", HALF, profile="default",
              scale={"blend": [1.0]}, note=_PROXY),
    )
    figure_claims = {"figure_curves": ("low_*", "high_*"), "figure_final": ("*",)}
    plots = {
        "sharing_final": Plot("final_plot", x="c", y=("shared", "unshared"),
                              title="Weight sharing: final loss against C", x_label="C",
                              y_label="loss / Var(y)",
                              about="Final held-out loss of the mixed target (high + C low), "
                                    "shared and unshared."),
    }

    def trials(self, cfg: SharingConfig) -> list[TrialSpec]:
        shared = cfg.model_dump(include={"n", "sigma", "beta", "teacher_seed", "hidden",
                                         "optimizer", "lr", "batch_size", "iterations",
                                         "log_every", "eval_size"})
        specs = []
        for target in cfg.targets:
            for c in (cfg.blend if target == "mixed" else [None]):
                for tied in (True, False):
                    config = {**shared, "target": target, "c": c, "shared": tied}
                    specs += [TrialSpec(self.name, self.version, config, seed=s,
                                        swept=("target", "c", "shared"))
                              for s in range(cfg.n_seeds)]
        return specs

    def _build(self, c: dict[str, Any]):
        from theorydl.studies.sharing.teacher import PatchNet

        return lambda: PatchNet(c["n"], shared=c["shared"], hidden=c["hidden"],
                                sigma=c["sigma"])

    def model_bytes(self, trial: TrialSpec, cfg: SharingConfig) -> int:
        from theorydl.nn import module_bytes

        c = trial.config
        return module_bytes(self._build(c), (c["n"], c["n"]), c["batch_size"],
                            min(c["eval_size"], 8192))

    def shared_bytes(self, trial: TrialSpec, cfg: SharingConfig) -> int:
        c = trial.config
        return 8 * c["eval_size"] * c["n"] ** 2

    def stack_cost(self, trial: TrialSpec, cfg: SharingConfig) -> float:
        c = trial.config
        return float(c["iterations"] * c["n"] ** (2 if not c["shared"] else 1))

    def trial_cost(self, trial: TrialSpec, cfg: SharingConfig) -> float:
        """Iterations x batch x hidden x (n, or n^2 unshared)."""
        c = trial.config
        return self.stack_cost(trial, cfg) * c["batch_size"] * c["hidden"]

    def stack_label(self, trial: TrialSpec) -> str:
        c = trial.config
        return f"{target_label(c['target'], c['c'])}-{'shared' if c['shared'] else 'unshared'}"

    def run_stack(self, trials, cfg: SharingConfig, device):
        import torch

        from theorydl.nn import SGD, Adam, Stream, evaluate, init_modules, train
        from theorydl.studies.sharing.teacher import Teacher

        c = trials[0].config
        teacher = Teacher.random(c["n"], c["teacher_seed"], c["sigma"], c["beta"])
        kind, weight = c["target"], c["c"] or 0.0
        n = c["n"]

        def sample(g: torch.Generator, b: int):
            x = torch.randn(b, n, n, generator=g)
            return x, teacher.target(x, kind, weight)

        held = torch.Generator().manual_seed(10**6 + c["teacher_seed"])
        xe = torch.randn(c["eval_size"], n, n, generator=held)
        ye = teacher.target(xe, kind, weight)
        var = float(ye.double().var())
        seeds = [t.seed for t in trials]
        stack = init_modules(self._build(c), seeds, device=device)
        opt = Adam(c["lr"]) if c["optimizer"] == "adam" else SGD(c["lr"])
        periods = c["iterations"] // c["log_every"]
        done = train(stack, Stream(sample, c["log_every"]), opt, periods, loss="squared",
                     batch_size=c["batch_size"])
        _, loss = evaluate(done.family, xe.to(device), ye.to(device), "squared")
        loss = loss.double().cpu().numpy()
        history = done.loss.double().cpu().numpy()  # (M, periods)
        out = []
        for i in range(len(trials)):
            rows = [{"kind": "curve", "iteration": (t + 1) * c["log_every"],
                     "train_loss": finite_or_none(history[i, t]),
                     "relative_loss": finite_or_none(history[i, t] / var)}
                    for t in range(periods)]
            final = finite_or_none(loss[i])
            rows.append({"kind": "final", "iteration": c["iterations"], "test_loss": final,
                         "target_variance": var,
                         "relative_loss": None if final is None else final / var})
            out.append(("ok" if final is not None else "diverged", rows))
        return out
