"""The trained census: of the functions a network can express, which does gradient descent find?

The census (:mod:`theorydl.studies.census.experiment`) counts, exactly, the Boolean functions an
N-k-1 network of threshold units expresses. Xiong ("What Really is Deep Learning
Doing?") reads learning as moving between the regions of parameter space that compute
each function; this experiment measures which regions training reaches. Every Boolean
function of N inputs is a target: a small MLP (``init_stack``; sigmoid, tanh or ReLU
hidden units; ``depth`` hidden layers of ``width`` units; two outputs, softmax
cross-entropy) trains on the function's full truth table, inputs coded as +-1, for a
fixed number of full-batch Adam steps, from ``n_seeds`` initialisations. The models of
many functions and seeds train in one stack (``Arrays(per_model=True)``: each model its
own targets, same inputs), so N = 4 (65,536 functions) is tens of thousands of models a
stack.

**Learned** (`learned`): at least one seed classifies every one of the 2^N inputs right
(argmax of the two outputs) at the end of the budget.

The analysis sets this beside **expressible**, the exact census of the N-k-...-k-1
threshold network of the same widths (:func:`theorydl.expressivity.networks.count_network`,
recomputed here: it is cheap next to training), and reports per architecture: expressible
against learned, the functions expressible but never learned, the learned ones a threshold
network of that shape cannot express (sigmoid and ReLU units are not threshold units, so
there can be some), and the fraction of seeds that succeed per NPN class (functions equal
up to permuting and negating inputs and negating the output).

Proxies, said plainly: the step budget, learning rate and the +-1 input coding are ours
(no published setting exists for this question); they are fixed in params before
measuring, and there is no held-out data (the full truth table is the task).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from theorydl.spine.config import Paths, figure_file, plot_file, result_file
from theorydl.spine.experiment import Claim, Plot, Stage
from theorydl.spine.spec import TrialSpec
from theorydl.spine.stacked import StackedExperiment, StackResources, StackRows
from theorydl.studies.learnability.architectures import architecture_name

__all__ = ["Learnability", "LearnabilityConfig", "learned", "architecture_name"]


class LearnabilityPaths(Paths):
    table: str = result_file("{name}.csv")
    """One row per (activation, architecture, N): expressible, learned and their overlap."""
    classes: str = result_file("classes.csv")
    """Seed success fraction per NPN class, per (activation, architecture, N)."""
    hardest: str = result_file("hardest.csv")
    """The functions with the lowest seed success, per (activation, architecture, N)."""
    plot: str = plot_file()
    """Plot data: expressible and learned counts per architecture."""
    figure: str = figure_file()
    """Expressible against learned, per width and depth."""
    figure_classes: str = figure_file("classes")
    """Seed success fraction against NPN class."""
    figure_hardest: str = figure_file("hardest")
    """The hardest functions, drawn as truth tables."""


class LearnabilityConfig(StackResources):
    """The ``learnability`` section (with ``device``, ``gpus_per_stack``, ``stack_memory_mb``)."""

    n_inputs: list[int] = Field(min_length=1)
    """Values of N; each 1..4 (N = 4: all 65,536 functions)."""
    widths: list[int] = Field(min_length=1)
    """Hidden units per layer, k."""
    depths: list[int] = Field(default_factory=lambda: [1], min_length=1)
    """Hidden layers, each of k units (1: the N-k-1 network)."""
    activations: list[Literal["sigmoid", "relu", "tanh"]] = Field(
        default_factory=lambda: ["sigmoid", "relu"], min_length=1)
    """Hidden activations to train."""
    n_seeds: int = Field(default=4, ge=1, le=64)
    """Initialisations per function (seeds 0..n_seeds-1, the same for every function)."""
    steps: int = Field(default=2000, ge=1, le=1_000_000)
    """Full-batch Adam steps per model (the fixed budget)."""
    lr: float = Field(default=0.05, gt=0.0, le=10.0)
    """Adam learning rate (our proxy; fixed before measuring)."""
    functions_per_trial: int = Field(default=256, ge=1, le=65536)
    """Truth tables per trial; trials of one architecture share stacks up to the memory
    budget."""
    n_hardest: int = Field(default=16, ge=1, le=256)
    """Functions drawn in the hardest-functions figure, per architecture."""
    paths: LearnabilityPaths = LearnabilityPaths()
    """Where the stages write: each path defaults from the name (theorydl.spine.config.Paths)."""

    @field_validator("n_inputs")
    @classmethod
    def _n_range(cls, values: list[int]) -> list[int]:
        if any(not 1 <= n <= 4 for n in values) or len(set(values)) != len(values):
            raise ValueError(f"n_inputs must be distinct values in 1..4, got {values}")
        return values

    @field_validator("widths", "depths")
    @classmethod
    def _small_positive(cls, values: list[int]) -> list[int]:
        if any(not 1 <= v <= 16 for v in values) or len(set(values)) != len(values):
            raise ValueError(f"must be distinct values in 1..16, got {values}")
        return values

    @field_validator("activations")
    @classmethod
    def _unique(cls, values: list[str]) -> list[str]:
        if len(set(values)) != len(values):
            raise ValueError(f"repeated values in {values}")
        return values


def learned(correct: np.ndarray) -> np.ndarray:
    """The learned rule: ``correct`` (F, S, P) says whether seed s of function f gets
    input point p right; a function is learned when at least one seed gets every point
    right. Returns (F,) bool."""
    correct = np.asarray(correct, dtype=bool)
    if correct.ndim != 3:
        raise ValueError(f"correct must be (functions, seeds, points), got {correct.shape}")
    return correct.all(axis=2).any(axis=1)


#: A width-1 network of monotone units computes only threshold functions
#: (out = a * act(w.x + b) + c is monotone in w.x), so what it learns is bounded by
#: A000609.
CLAIMS = (
    Claim("width1_learned_within_threshold_n3",
          "a network with one hidden unit (monotone activation) computes only threshold "
          "functions: at most 104 of the 256 functions of 3 inputs",
          "Minsky & Papert 1969 (one unit, linear separability); OEIS A000609 (104 at n = 3)",
          "learned.*.net-1.3", "<=", 104, profile="default",
          note="every activation swept (the worst one); a bound, not a count: training "
               "may find fewer"),
)


class Learnability(StackedExperiment):
    name = "learnability"
    version = 1
    section = LearnabilityConfig
    per_model_keys = ("start", "stop")
    stages = {
        "train": Stage(reads=("n_inputs", "widths", "depths", "activations", "n_seeds",
                              "steps", "lr", "functions_per_trial", "device",
                              "gpus_per_stack", "stack_memory_mb")),
        "analyze": Stage(reads=("n_hardest", "n_seeds")),
    }
    claims = CLAIMS
    figure_claims = {"figure": ("*",)}
    plots = {"learnability": Plot(
        "plot", x="learned_per_expressible", y=("architecture",), template="bar_horizontal",
        title="Functions training finds, per function the architecture expresses",
        x_label="learned / expressible", y_label="activation / architecture / N",
        about="Per activation, N and architecture (one bar each): the functions some seed "
              "fits exactly over the functions the threshold network of that shape "
              "expresses (exact counts in the same CSV).")}

    _SWEPT = ("n_inputs", "activation", "depth", "width", "start", "stop")

    def trials(self, cfg: LearnabilityConfig) -> list[TrialSpec]:
        specs = []
        for n in cfg.n_inputs:
            total = 2 ** 2**n
            for act in cfg.activations:
                for depth in cfg.depths:
                    for width in cfg.widths:
                        for start in range(0, total, cfg.functions_per_trial):
                            stop = min(start + cfg.functions_per_trial, total)
                            specs.append(TrialSpec(self.name, self.version, {
                                "n_inputs": n, "activation": act, "depth": depth,
                                "width": width, "start": start, "stop": stop,
                                "n_seeds": cfg.n_seeds, "steps": cfg.steps, "lr": cfg.lr},
                                seed=0, swept=self._SWEPT))
        return specs

    def model_bytes(self, trial: TrialSpec, cfg: LearnabilityConfig) -> int:
        c = trial.config
        n, k, d = c["n_inputs"], c["width"], c["depth"]
        params = (n + 1) * k + (d - 1) * (k + 1) * k + (k + 1) * 2
        # parameters, gradients, Adam's two moments, the flat copies; activations of the
        # 2^N points (forward and backward)
        per_model = 4 * (8 * params + 6 * 2**n * (d * k + 2))
        return per_model * c["n_seeds"] * (c["stop"] - c["start"])

    def stack_cost(self, trial: TrialSpec, cfg: LearnabilityConfig) -> float:
        c = trial.config
        return float(2 ** c["n_inputs"] * c["width"] * c["depth"] * c["steps"])

    def trial_cost(self, trial: TrialSpec, cfg: LearnabilityConfig) -> float:
        """2^N points x width x depth x steps, times the functions of the trial."""
        c = trial.config
        return self.stack_cost(trial, cfg) * (c["stop"] - c["start"]) * c["n_seeds"]

    def stack_label(self, trial: TrialSpec) -> str:
        c = trial.config
        return f"{c['activation']}-{architecture_name(c['width'], c['depth'])}-N{c['n_inputs']}"

    def run_stack(self, trials: Sequence[TrialSpec], cfg: LearnabilityConfig, device
                  ) -> StackRows:
        return train_functions(trials, device)


def inputs_pm1(n: int) -> np.ndarray:
    """The 2^N input points in truth-table order, coded as -1/+1 (float32, (2^N, N))."""
    from theorydl.expressivity import input_patterns

    return input_patterns(n).astype(np.float32) * 2.0 - 1.0


def train_functions(trials: Sequence[TrialSpec], device) -> StackRows:
    """Train every (function, seed) of ``trials`` (same shape, ranges of truth tables) in
    one stack; one row per function: seeds that fit it exactly, and the mean final loss."""
    import torch

    from theorydl.nn import Adam, init_stack, train
    from theorydl.nn.engine import Arrays
    from theorydl.nn.stack import Stack

    c = trials[0].config
    n, seeds = c["n_inputs"], list(range(c["n_seeds"]))
    tables = np.concatenate([np.arange(t.config["start"], t.config["stop"], dtype=np.int64)
                             for t in trials])
    points = 2**n
    bits = (tables[:, None] >> np.arange(points)) & 1  # (F, P)
    f, s = len(tables), len(seeds)
    sizes = [n, *[c["width"]] * c["depth"], 2]
    # Seed s's initialisation is the same for every function: build S models, repeat.
    base = init_stack(sizes, seeds, activation=c["activation"], device=device)
    weights = tuple(w.detach().repeat(f, 1, 1).requires_grad_() for w in base.weights)
    biases = tuple(b.detach().repeat(f, 1).requires_grad_() for b in base.biases)
    stack = Stack(tuple(sizes), tuple(seeds) * f, c["activation"], weights, biases)
    X = torch.as_tensor(inputs_pm1(n), device=device)
    y = torch.as_tensor(np.repeat(bits, s, axis=0), device=device)  # (F * S, P)
    run = train(stack, Arrays(X, y, per_model=True), Adam(c["lr"]), c["steps"],
                loss="cross_entropy")
    with torch.no_grad():
        z = stack.outputs_t(X)  # (M, 2, P)
        correct = (z.argmax(1) == y).view(f, s, points).cpu().numpy()
        final = run.loss[:, -1].view(f, s).double().cpu().numpy() if c["steps"] else \
            np.full((f, s), math.nan)
    ok = correct.all(axis=2)  # (F, S)
    fit = learned(correct)
    rows_of: dict[str, list[dict[str, Any]]] = {t.id: [] for t in trials}
    owner = np.concatenate([[i] * (t.config["stop"] - t.config["start"])
                            for i, t in enumerate(trials)])
    for j in range(f):
        loss = float(np.nanmean(final[j])) if np.isfinite(final[j]).any() else None
        rows_of[trials[owner[j]].id].append({
            "table": int(tables[j]), "n_success": int(ok[j].sum()),
            "seeds_ok": int(sum(1 << i for i in range(s) if ok[j, i])),
            "learned": bool(fit[j]), "final_loss": loss})
    return [("ok", rows_of[t.id]) for t in trials]
