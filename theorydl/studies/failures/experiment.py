"""Failures of gradient-based deep learning: the four families, as one experiment.

Shalev-Shwartz, Shamir & Shammah ("Failures of Gradient-Based Deep Learning", ICML 2017;
code: shakedshammah/failures_of_DL) show simple problems on which gradient training
fails or crawls, not by overfitting or bad local minima but because the gradient
carries too little information, has a poor signal-to-noise ratio or is badly
conditioned:

* ``parity``: y = (-1)^<x, v*> on {±1}^d, a ReLU layer of 10 d units, hinge loss, SGD;
  accuracy on fresh samples against iterations per d, and the gradient's variance over
  all 2^d parities at initialisation against Theorem 1's bound (method
  ``gradient_variance``);
* ``conditioning``: recover the slope changes p of a piecewise-linear curve f = W p with a
  dense layer, a 3-tap convolution, or that convolution on whitened windows; relative
  error against iterations, the learned filter, cond(W) against n;
* ``flat``: y = u(v*ᵀx + b*) with a staircase u; a smooth surrogate, an end-to-end MLP,
  a classifier over the steps, and forward-only (straight-through) training;
* ``lines``: k-tuples of line images labelled by the parity of their lines' angle bits;
  end to end, or with the per-image loss added (decomposition); accuracy against
  iterations and the gradient's SNR at initialisation against k;
* ``stocks``: the same contrast on one-hot inputs and a softmax over k stocks; loss
  curves, and the ratio of the two gradient estimators' second moments against k.

A trial is (family, size, method, seed): size is d, n, d, k or k. The seeds of one (family,
size, method) train in one stack; every family draws fresh samples each step (no data
stage: nothing is stored).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, field_validator, model_validator

from theorydl.spine.config import Paths, Section, figure_file, plot_file
from theorydl.spine.experiment import Claim, Plot, Stage
from theorydl.spine.spec import TrialSpec
from theorydl.spine.stacked import StackedExperiment, StackResources

__all__ = ["Failures", "FailuresConfig", "FAMILIES"]

log = logging.getLogger("theorydl")

FAMILIES = ("parity", "conditioning", "flat", "lines", "stocks")


def _distinct_positive(value: list[int]) -> list[int]:
    if any(v < 1 for v in value) or len(set(value)) != len(value):
        raise ValueError(f"must be distinct positive integers, got {value}")
    return value


class ParityConfig(Section):
    dims: list[int] = Field(default_factory=lambda: [5, 10, 20], min_length=1)
    """Input dimensions d trained (the paper: 5 to 30)."""
    hidden_factor: int = Field(default=10, ge=1, le=1000)
    """Hidden ReLU units per input dimension (the paper: 10 d)."""
    lr: float = Field(default=0.01, gt=0.0)
    """SGD learning rate (the authors' code: 0.01)."""
    batch_size: int = Field(default=128, ge=1)
    """Fresh samples per step (the authors: 128)."""
    iterations: int = Field(default=10000, ge=1)
    """SGD steps (the authors: 50 000)."""
    n_log: int = Field(default=12, ge=2)
    """Log-spaced iterations at which accuracy is measured."""
    eval_samples: int = Field(default=1000, ge=1)
    """Fresh samples the accuracy is measured on (the authors: 500)."""
    variance_dims: list[int] = Field(default_factory=lambda: [2, 4, 6, 8, 10, 12, 16, 20, 30],
                                     min_length=2)
    """d at which the gradient variance over all 2^d parities is computed at init."""
    exact_max_d: int = Field(default=16, ge=1, le=24)
    """Up to this d, E_x is exact (all 2^d inputs); beyond, over variance_samples inputs."""
    variance_samples: int = Field(default=8192, ge=16)
    """Uniform inputs of the sampled E_x ||∇p(x)||² (d > exact_max_d)."""

    @field_validator("dims", "variance_dims")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        return _distinct_positive(value)

    @model_validator(mode="after")
    def _consistent(self) -> "ParityConfig":
        if self.n_log > self.iterations + 1:
            raise ValueError(f"n_log ({self.n_log}) cannot exceed iterations + 1")
        return self


class ConditioningLr(Section):
    dense: float = Field(default=1e-4, gt=0.0)
    """Adam learning rate of the dense layer (the authors: 1e-4)."""
    conv: float = Field(default=0.05, gt=0.0)
    """Of the 3-tap convolution (the authors: 0.05)."""
    whitened: float = Field(default=0.01, gt=0.0)
    """Of the convolution on whitened windows (the authors' default: 0.01)."""


class ConditioningConfig(Section):
    ns: list[int] = Field(default_factory=lambda: [100], min_length=1)
    """Curve lengths n trained (the authors: 100)."""
    methods: list[Literal["dense", "conv", "whitened"]] = Field(
        default_factory=lambda: ["dense", "conv", "whitened"], min_length=1)
    """The learners."""
    lr: ConditioningLr = ConditioningLr()
    """Adam learning rates per learner."""
    batch_size: int = Field(default=100, ge=1)
    """Fresh curves per step (the authors: 100)."""
    iterations: int = Field(default=5000, ge=1)
    """Adam steps (the authors: 50 000 for dense and conv)."""
    n_log: int = Field(default=12, ge=2)
    """Log-spaced iterations at which the error is measured."""
    eval_samples: int = Field(default=1000, ge=1)
    """Fresh curves the error is measured on (the authors' validation set: 1000)."""
    whitening_samples: int = Field(default=10000, ge=10)
    """Curves the windows' second moment is estimated from (the authors: 10 000)."""

    @field_validator("ns")
    @classmethod
    def _long_enough(cls, value: list[int]) -> list[int]:
        if min(value) < 10:
            raise ValueError(f"curves need n >= 10, got {value}")
        return _distinct_positive(value)


class FlatLr(Section):
    surrogate: float = Field(default=0.01, gt=0.0)
    """Adam learning rate of the smooth surrogate (the authors: 0.01)."""
    end_to_end: float = Field(default=0.001, gt=0.0)
    """Of the end-to-end MLP (the authors: 0.001)."""
    multiclass: float = Field(default=0.001, gt=0.0)
    """Of the classifier over steps (the authors: 0.001)."""
    forward_only: float = Field(default=0.001, gt=0.0)
    """Of forward-only (straight-through) training (the authors: 0.001)."""


class FlatConfig(Section):
    dims: list[int] = Field(default_factory=lambda: [100], min_length=1)
    """Input dimensions d (the authors: 100)."""
    methods: list[Literal["surrogate", "end_to_end", "multiclass", "forward_only"]] = Field(
        default_factory=lambda: ["surrogate", "end_to_end", "multiclass", "forward_only"],
        min_length=1)
    """The learners."""
    lr: FlatLr = FlatLr()
    """Adam learning rates per learner."""
    hidden: int = Field(default=100, ge=1)
    """Units of each hidden layer of the MLP learners (the authors: 100)."""
    sharpness: float = Field(default=5.0, gt=0.0)
    """Sigmoid sharpness of the surrogate (the authors: 5)."""
    l_factor: float = Field(default=10.0, gt=0.0)
    """L of the surrogate: a sigmoid's width is step / L (the authors: 10)."""
    batch_size: int = Field(default=256, ge=1)
    """Fresh samples per step (the authors: 256)."""
    iterations: int = Field(default=2000, ge=1)
    """Adam steps (the authors: 10 000; forward-only 5000)."""
    n_log: int = Field(default=12, ge=2)
    """Log-spaced iterations at which the error is measured."""
    eval_samples: int = Field(default=2000, ge=1)
    """Fresh samples the error is measured on."""
    fit_points: int = Field(default=200, ge=1)
    """Evaluation points kept (r*, y, prediction) for the staircase-fit figure."""

    @field_validator("dims")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        return _distinct_positive(value)


class LinesConfig(Section):
    ks: list[int] = Field(default_factory=lambda: [1, 2, 3, 4], min_length=1)
    """Tuple lengths k (the paper: 1 to 4)."""
    methods: list[Literal["end_to_end", "decomposition"]] = Field(
        default_factory=lambda: ["end_to_end", "decomposition"], min_length=1)
    """End to end, or with the per-image hinge added."""
    channels: int = Field(default=16, ge=1)
    """Feature maps of each convolution (the authors: 16)."""
    lr: float = Field(default=0.001, gt=0.0)
    """Adam learning rate (the authors: 0.001)."""
    batch_size: int = Field(default=200, ge=1)
    """Fresh tuples per step (the authors: 200)."""
    iterations: int = Field(default=20000, ge=1)
    """Adam steps (the authors: 20 000)."""
    n_log: int = Field(default=10, ge=2)
    """Log-spaced iterations at which accuracy is measured."""
    eval_samples: int = Field(default=1000, ge=1)
    """Fresh tuples the accuracy is measured on (the authors: 2000)."""
    snr_steps: int = Field(default=100, ge=2)
    """Minibatch gradients at initialisation the SNR is estimated from (its resolution:
    1 / (batch_size (snr_steps - 1)))."""

    @field_validator("ks")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        return _distinct_positive(value)


class StocksConfig(Section):
    ks: list[int] = Field(default_factory=lambda: [2, 10, 100], min_length=1)
    """Numbers of stocks k, the softmax's outputs (the authors: 100)."""
    methods: list[Literal["end_to_end", "decomposition"]] = Field(
        default_factory=lambda: ["end_to_end", "decomposition"], min_length=1)
    """End to end (the expected reward) or decomposition (the best stock's probability)."""
    d: int = Field(default=1000, ge=1)
    """One-hot inputs (the authors: 1000)."""
    lr: float = Field(default=0.1, gt=0.0)
    """Adam learning rate (the authors: 0.1)."""
    batch_size: int = Field(default=100, ge=1)
    """Fresh samples per step (the authors: 100)."""
    iterations: int = Field(default=1000, ge=1)
    """Adam steps (the authors: 2500)."""
    n_log: int = Field(default=10, ge=2)
    """Log-spaced iterations at which the end-to-end loss is measured."""
    eval_samples: int = Field(default=500, ge=1)
    """Fresh samples the loss is measured on (the authors: 500)."""
    probe_steps: int = Field(default=200, ge=2)
    """Single-sample gradients at init whose second moments are compared."""

    @field_validator("ks")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if min(value) < 2:
            raise ValueError(f"k must be >= 2, got {value}")
        return _distinct_positive(value)


class FailuresAnalysis(Section):
    cond_ns: list[int] = Field(default_factory=lambda: [10, 20, 50, 100, 200, 500],
                               min_length=2)
    """n at which cond(W) is computed (its square grows about as n⁴)."""
    error_threshold: float = Field(default=0.01, gt=0.0)
    """Relative reconstruction error a conditioning learner must reach: the iterations
    to reach it compare the learners."""
    solved_accuracy: float = Field(default=0.99, gt=0.5, le=1.0)
    """Accuracy from which a parity counts as solved (iterations to solve per d)."""


class FailuresPaths(Paths):
    parity_plot: str = plot_file("parity")
    """Plot data: final parity accuracy (mean over seeds) against d."""
    variance_plot: str = plot_file("variance")
    """Plot data: log2 of the gradient variance and its bound against d."""
    conditioning_plot: str = plot_file("conditioning")
    """Plot data: relative error against iteration, one column per learner."""
    flat_plot: str = plot_file("flat")
    """Plot data: squared error against iteration, one column per learner."""
    lines_plot: str = plot_file("lines")
    """Plot data: log10 SNR at initialisation against k, per method."""
    stocks_plot: str = plot_file("stocks")
    """Plot data: the second-moment ratio (end to end / decomposition) against k."""
    figure_parity: str = figure_file("parity")
    """Parity accuracy against iterations per d, and the variance against d."""
    figure_conditioning: str = figure_file("conditioning")
    """Error against iterations, learned filters, cond(W) against n."""
    figure_flat: str = figure_file("flat")
    """Error against iterations per learner, and the staircase fits."""
    figure_lines: str = figure_file("lines")
    """Accuracy against iterations per k and method, and the SNR against k (the estimator's
    floor dashed: an SNR below it is drawn on it)."""
    figure_stocks: str = figure_file("stocks")
    """Stocks: loss curves per k and method, and the second-moment ratio against k."""


class FailuresConfig(StackResources):
    """The ``failures`` section (with ``device``, ``gpus_per_stack``, ``stack_memory_mb``)."""

    families: list[Literal["parity", "conditioning", "flat", "lines", "stocks"]] = Field(
        default_factory=lambda: list(FAMILIES), min_length=1)
    """The families run."""
    n_seeds: int = Field(default=3, ge=1, le=1000)
    """Models per (family, size, method): seeds 0..n_seeds-1, one stack."""
    parity: ParityConfig = ParityConfig()
    """Parities (section 2.1 of the paper)."""
    conditioning: ConditioningConfig = ConditioningConfig()
    """Piecewise-linear curves (section 4)."""
    flat: FlatConfig = FlatConfig()
    """Flat activations (section 5)."""
    lines: LinesConfig = LinesConfig()
    """Decomposition against end to end (section 3)."""
    stocks: StocksConfig = StocksConfig()
    """Decomposition against end to end, the stocks variant (section 3)."""
    analysis: FailuresAnalysis = FailuresAnalysis()
    """What the analysis computes beyond the trials."""
    paths: FailuresPaths = FailuresPaths()
    """Where the stages write."""

    @field_validator("families")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"repeated families in {value}")
        return value


#: The scale of the paper's parity run (profiles/paper.yaml).
_PARITY_SCALE = {"families": ["parity"], "parity.dims": [5, 10, 30],
                 "parity.iterations": 50000, "n_seeds": 3}
_LINES_SCALE = {"families": ["lines"], "lines.ks": [1, 2, 3, 4], "lines.iterations": 20000,
                "lines.batch_size": 200}
_LINES_NEEDS = ("20 000 Adam steps of the line-image CNN per trial, about 1.5 h on one CPU "
                "core (24 trials): a GPU")
_PAPER = "Shalev-Shwartz, Shamir & Shammah 2017 (ICML), 'Failures of gradient-based deep learning'"

CLAIMS = (
    Claim("parity_d30_fails",
          "a parity over d = 30 bits stays at chance (0.50) after 50 000 SGD iterations",
          _PAPER + ", section 2.1, figure 1", "parity.final_accuracy.d30.*", "==", 0.5,
          tolerance=0.07, scale=_PARITY_SCALE,
          note="worst seed; our init is PyTorch's uniform one (the authors: truncated "
               "normal), v* drawn per seed"),
    *(Claim(f"parity_d{d}_solved",
            f"a parity over d = {d} bits is learned (accuracy >= 0.99)",
            _PAPER + ", section 2.1, figure 1", f"parity.final_accuracy.d{d}.*", ">=", 0.99,
            scale={**_PARITY_SCALE, "parity.dims": [d], "parity.iterations": iterations},
            profile=profile,
            note="every seed (the worst); d = 5 is solved within the default profile's "
                 "10 000 steps, d = 10 needs about the paper's budget (measured once at "
                 "10 000 steps: 1.0, 0.985, 0.973)")
      for d, iterations, profile in ((5, 3000, "default"), (10, 50000, "paper"))),
    Claim("parity_variance_one_bit_per_dimension",
          "the gradient's variance across parities shrinks exponentially in d: about a "
          "bit per extra dimension (log2 slope -1)",
          _PAPER + ", Theorem 1", "parity.variance_log2_slope_per_d", "==", -1.0,
          tolerance=0.25, profile="test", scale={"families": ["parity"]},
          note="slope of log2 Var against d over the variance_dims above 8 (squared "
               "loss, the theorem's setting); log2 G² grows like log2 d, which bends the "
               "slope slightly above -1"),
    Claim("lines_end_to_end_fails_k3",
          "for k >= 3, end-to-end training stays at or below 0.55 accuracy",
          _PAPER + ", section 3, figure 3", "lines.final_accuracy.end_to_end.k[3-9].*", "<=",
          0.55, scale=_LINES_SCALE, needs=_LINES_NEEDS, note="worst seed (the highest accuracy)"),
    Claim("lines_decomposition_solves_k3",
          "for k >= 3, training with the per-image loss reaches above 0.8 accuracy",
          _PAPER + ", section 3, figure 3", "lines.final_accuracy.decomposition.k[3-9].*", ">=",
          0.8, scale=_LINES_SCALE, needs=_LINES_NEEDS, note="worst seed"),
    Claim("lines_small_k_both_solve",
          "for k <= 2 both end to end and decomposition solve the task (accuracy > 0.8)",
          _PAPER + ", section 3, figure 3", "lines.final_accuracy.*.k[12].*", ">=", 0.8,
          scale=_LINES_SCALE, needs=_LINES_NEEDS, note="worst seed and method"),
    Claim("stocks_moment_ratio_grows_like_k",
          "the end-to-end gradient estimator's second moment exceeds the decomposition's "
          "by a factor that grows like k (log-log slope 1)",
          _PAPER + ", section 3 (the stocks example)", "stocks.moment_ratio_loglog_slope",
          "==", 1.0, tolerance=0.2, profile="test", scale={"families": ["stocks"]},
          note="single-sample gradients at initialisation, over the swept k; PyTorch's "
               "uniform init (the authors: truncated normal)"),
    Claim("whitened_conv_orders_faster",
          "the convolution on whitened windows reaches the error threshold orders of "
          "magnitude (>= 100x) sooner than the dense layer",
          _PAPER + ", section 4, figure 5",
          "conditioning.iterations_ratio_dense_over_whitened", ">=", 100.0,
          profile="default", scale={"families": ["conditioning"],
                                    "conditioning.methods": ["dense", "whitened"],
                                    "conditioning.iterations": 5000},
          note="iterations to a relative error of analysis.error_threshold, seed medians; "
               "a dense layer that never reaches it counts its whole budget (a lower "
               "bound of the ratio)"),
)


class Failures(StackedExperiment):
    name = "failures"
    version = 1
    section = FailuresConfig
    stages = {
        "train": Stage(reads=("families", "n_seeds", "parity", "conditioning", "flat", "lines",
                              "stocks", "device", "gpus_per_stack", "stack_memory_mb")),
        "analyze": Stage(reads=("analysis", "families")),
    }
    claims = CLAIMS
    figure_claims = {"figure_parity": ("parity_*",), "figure_conditioning": ("whitened_*",),
                     "figure_lines": ("lines_*",), "figure_stocks": ("stocks_*",)}
    plots = {
        "failures_parity": Plot("parity_plot", x="d", y=("final_accuracy",),
                                title="Parity: final accuracy on fresh samples against d",
                                x_label="d", y_label="accuracy",
                                about="Accuracy after the last SGD step (mean over seeds)."),
        "failures_variance": Plot("variance_plot", x="d", y=("log2_variance", "log2_bound"),
                                  title="Gradient variance over all 2^d parities at init",
                                  x_label="d", y_label="log2 variance",
                                  about="Theorem 1: Var <= G^2 / 2^d."),
        "failures_conditioning": Plot("conditioning_plot", x="iteration",
                                      y=("error_dense", "error_conv", "error_whitened"),
                                      title="Relative error of recovering p from f = W p",
                                      x_label="Adam iteration", y_label="relative error",
                                      about="Per learner (dense, conv, whitened)."),
        "failures_flat": Plot("flat_plot", x="iteration",
                              y=("error_surrogate", "error_end_to_end", "error_multiclass",
                                 "error_forward_only"),
                              title="Staircase: squared error per learner",
                              x_label="Adam iteration", y_label="squared error"),
        "failures_stocks": Plot("stocks_plot", x="k", y=("moment_ratio",), template="scatter",
                                title="Stocks: second-moment ratio of the gradient estimators",
                                x_label="k", y_label="E||g_e2e||^2 / E||g_dec||^2"),
        "failures_lines": Plot("lines_plot", x="k",
                               y=("log10_snr_end_to_end", "log10_snr_decomposition"),
                               title="Gradient SNR at initialisation against k",
                               x_label="k", y_label="log10 SNR"),
    }

    _SWEPT = ("family", "size", "method")

    # ------------------------------------------------------------------ trials
    def _grid(self, cfg: FailuresConfig, family: str) -> tuple[list[int], list[str], dict]:
        section = getattr(cfg, family)
        shared = section.model_dump()
        if family == "parity":
            del shared["dims"], shared["variance_dims"]
            return section.dims, ["sgd_hinge"], shared
        if family == "conditioning":
            del shared["ns"], shared["methods"]
            return section.ns, section.methods, shared
        if family == "flat":
            del shared["dims"], shared["methods"]
            return section.dims, section.methods, shared
        del shared["ks"], shared["methods"]  # lines, stocks
        return section.ks, section.methods, shared

    def trials(self, cfg: FailuresConfig) -> list[TrialSpec]:
        specs = []
        seeds = range(cfg.n_seeds)
        for family in cfg.families:
            sizes, methods, shared = self._grid(cfg, family)
            points = [(s, m) for s in sizes for m in methods]
            if family == "parity":
                points += [(d, "gradient_variance") for d in cfg.parity.variance_dims]
            for size, method in points:
                config = {**shared, "family": family, "size": size, "method": method}
                if isinstance(shared.get("lr"), dict):  # per learner: a trial holds its own
                    config["lr"] = shared["lr"][method]
                specs += [TrialSpec(self.name, self.version, config, seed=s, swept=self._SWEPT)
                          for s in seeds]
        return specs

    def _params(self, trial: TrialSpec) -> tuple[int, int]:
        """(parameters of one model, activations per sample), roughly."""
        c = trial.config
        size = c["size"]
        if c["family"] == "parity":
            h = c["hidden_factor"] * size
            return size * h + 2 * h + 1, 2 * h
        if c["family"] == "conditioning":
            return size * size, 4 * size
        if c["family"] == "flat":
            return size * c["hidden"] + 3 * c["hidden"] ** 2, 4 * c["hidden"] + 60
        if c["family"] == "stocks":
            return (c["d"] + 1) * size, c["d"] + 3 * size
        maps = c["channels"] * 28 * 28
        return 50 * c["channels"] * 49 + 10 * c["channels"] ** 2, size * 4 * maps

    def model_bytes(self, trial: TrialSpec, cfg: FailuresConfig) -> int:
        params, per_sample = self._params(trial)
        batch = max(trial.config.get("batch_size", 1), trial.config.get("eval_samples", 1))
        return int(4 * (8 * params + 3 * batch * per_sample) * 1.5)

    def stack_cost(self, trial: TrialSpec, cfg: FailuresConfig) -> float:
        params, per_sample = self._params(trial)
        c = trial.config
        if c["method"] == "gradient_variance":
            return float(params)
        return float(c["iterations"]) * c["batch_size"] * (params + per_sample)

    def trial_cost(self, trial: TrialSpec, cfg: FailuresConfig) -> float:
        """Iterations x batch x (parameters + activations): the stacks' order, per trial."""
        return self.stack_cost(trial, cfg)

    def cost_class(self, trial: TrialSpec) -> str:
        return f"{trial.config['family']}/{trial.config['method']}"

    def stack_label(self, trial: TrialSpec) -> str:
        c = trial.config
        return f"{c['family']}-{c['method']}-{c['size']}"

    # ------------------------------------------------------------------ training
    def run_stack(self, trials: Sequence[TrialSpec], cfg: FailuresConfig, device):
        from theorydl.studies.failures import learners

        c = trials[0].config
        seeds = [t.seed for t in trials]
        if c["family"] == "parity":
            fn = learners.parity_variance if c["method"] == "gradient_variance" \
                else learners.train_parity
        else:
            fn = {"conditioning": learners.train_conditioning, "flat": learners.train_flat,
                  "lines": learners.train_lines, "stocks": learners.train_stocks}[c["family"]]
        rows = fn(c, seeds, device)
        return [(learners.status_of(r), r) for r in rows]
