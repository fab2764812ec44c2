"""The learners of the four families, each trained by the engine (``theorydl.nn.train``):
MLP stacks (``init_stack``) where the learner is an MLP, module stacks
(``init_modules``) for the convolutions, the staircase learners and the CNN.

Each ``train_<family>`` trains one stack (trials differing only in seed) and returns one
list of rows per trial: ``kind == "curve"`` rows (iteration, the family's measure on a
fixed set of fresh evaluation samples, and the mean training loss of the last period),
plus the family's extras (``filter``, ``fit``, ``snr``, ``gradvar``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from theorydl.nn import SGD, Adam, Hook, Period, Stream, init_modules, init_stack, train
from theorydl.nn.engine import data_generator
from theorydl.nn.losses import Loss
from theorydl.nn.modules import straight_through
from theorydl.spine.stacked import finite_or_none, log_spaced
from theorydl.studies.failures import tasks

__all__ = ["Record", "TupleHinge", "train_parity", "parity_variance", "train_conditioning",
           "train_flat", "train_lines", "train_stocks", "ExpectedReward", "EVAL_SEED",
           "status_of"]

#: Seed of the generator that draws a stack's evaluation samples (shared by its models;
#: distinct from every model's data stream, whose seeds are offset by 2**31).
EVAL_SEED = 12345


class Record(Hook):
    """At the chosen periods, ``measure(family, models)`` -> {name: (k,) tensor} on the
    active models; kept per original model index as ``rows[i] = [{...}, ...]``."""

    def __init__(self, chosen: Sequence[int], measure, m: int, steps_per_period: int = 1):
        self.chosen = set(chosen)
        self.measure = measure
        self.steps = steps_per_period
        self.rows: list[list[dict[str, Any]]] = [[] for _ in range(m)]

    def at(self, t: int, periods: int) -> bool:
        return t in self.chosen

    def __call__(self, period: Period) -> None:
        values = self.measure(period.family, period.models)
        loss = None if period.loss is None else period.loss.double().cpu().numpy()
        host = {k: v.double().cpu().numpy() for k, v in values.items()}
        for j, i in enumerate(period.models):
            self.rows[i].append({"kind": "curve", "iteration": period.t * self.steps,
                                 "train_loss": None if loss is None else finite_or_none(loss[j]),
                                 **{k: finite_or_none(v[j]) for k, v in host.items()}})


def _eval_generator() -> torch.Generator:
    return torch.Generator().manual_seed(EVAL_SEED)


def status_of(rows: list[dict[str, Any]]) -> str:
    """diverged when the last period's training loss is not finite, else ok."""
    last = [r for r in rows if r["kind"] == "curve"][-1:]
    return "diverged" if last and last[0]["train_loss"] is None else "ok"


# ------------------------------------------------------------------------ parities


def train_parity(c: dict[str, Any], seeds: Sequence[int], device) -> list[list[dict]]:
    """SGD on the hinge loss of a one-hidden-layer ReLU network of ``hidden_factor * d``
    units, fresh minibatches; accuracy on ``eval_samples`` fresh inputs at log-spaced
    iterations."""
    d, iters = c["size"], c["iterations"]
    stack = init_stack([d, c["hidden_factor"] * d, 1], seeds, activation="relu", device=device)
    subsets = torch.stack([tasks.draw_subset(data_generator(s), d) for s in seeds])
    x_eval = tasks.random_signs(_eval_generator(), c["eval_samples"], d).to(device)
    y_eval = torch.stack([tasks.parity_labels(x_eval.cpu(), v) for v in subsets]).to(device)

    def measure(family, models):
        z = family.outputs_t(x_eval)[:, 0]  # (k, b)
        y = y_eval[torch.as_tensor(models, device=device)]
        return {"accuracy": (z * y > 0).double().mean(1)}

    rec = Record(log_spaced(iters, c["n_log"]), measure, len(seeds))
    train(stack, Stream(tasks.parity_sampler(d)), SGD([c["lr"]] * len(seeds)), iters,
          loss="hinge", batch_size=c["batch_size"], hooks=[rec])
    return rec.rows


def parity_variance(c: dict[str, Any], seeds: Sequence[int], device) -> list[list[dict]]:
    """The gradient variance over all 2^d parities at each model's initialisation
    (:func:`theorydl.studies.failures.tasks.parity_grad_variance`): exact for d <= exact_max_d."""
    d = c["size"]
    stack = init_stack([d, c["hidden_factor"] * d, 1], seeds, activation="relu", device=device)
    exact = d <= c["exact_max_d"]
    out = []
    for i, s in enumerate(seeds):
        v = tasks.parity_grad_variance(
            stack.weights[0][i].detach(), stack.biases[0][i].detach(),
            stack.weights[1][i].detach(), exact=exact, samples=c["variance_samples"],
            generator=torch.Generator().manual_seed(int(s)))
        out.append([{"kind": "gradvar", "exact": exact, **v}])
    return out


# -------------------------------------------------------------------- conditioning


class _Windows(nn.Module):
    """The 3-point windows of a curve (b, n) -> (b, n - 2, 3), times a fixed (3, 3)
    matrix (the whitening) when given."""

    def __init__(self, mix: Tensor | None = None):
        super().__init__()
        if mix is not None:
            self.register_buffer("mix", mix.clone())
        else:
            self.mix = None

    def forward(self, f: Tensor) -> Tensor:
        q = tasks.patches(f)
        return q if self.mix is None else q @ self.mix


def conditioning_module(method: str, n: int, mix: Tensor | None) -> Callable[[], nn.Module]:
    """The learner (zero-initialised, as the authors'): ``dense`` a linear map of the whole
    curve to p[2:]; ``conv`` a 3-tap filter; ``whitened`` the filter on whitened windows."""
    def build() -> nn.Module:
        if method == "dense":
            module = nn.Sequential(nn.Linear(n, n - 2, bias=False))
        else:
            module = nn.Sequential(_Windows(mix if method == "whitened" else None),
                                   nn.Linear(3, 1, bias=False), nn.Flatten(1))
        for p in module.parameters():
            nn.init.zeros_(p)
        return module

    return build


def train_conditioning(c: dict[str, Any], seeds: Sequence[int], device) -> list[list[dict]]:
    """Adam on the squared error of recovering p from f = W p; the relative error
    ||p̂ - p||² / ||p||² on fresh curves at log-spaced iterations; the learned filter (in
    the coordinates of the raw windows) at the end."""
    n, iters, method = c["size"], c["iterations"], c["method"]
    mix = (tasks.whitening(n, c["whitening_samples"], EVAL_SEED + 1) if method == "whitened"
           else None)
    stack = init_modules(conditioning_module(method, n, mix), seeds, device=device)
    f_eval, p_eval = tasks.pwl_sampler(n)(_eval_generator(), c["eval_samples"])
    f_eval, p_eval = f_eval.to(device), p_eval.to(device)
    scale = p_eval.square().sum()

    def measure(family, models):
        z = family.outputs_t(f_eval)  # (k, n - 2, b)
        return {"eval_error": (z - p_eval.T).square().sum((1, 2)) / scale}

    rec = Record(log_spaced(iters, c["n_log"]), measure, len(seeds))
    train(stack, Stream(tasks.pwl_sampler(n)), Adam([c["lr"]] * len(seeds)), iters,
          loss="squared", batch_size=c["batch_size"], hooks=[rec])
    if method != "dense":
        w = stack.tensors[0].detach()[:, 0, :]  # (M, 3) on the windows the module sees
        if mix is not None:
            w = w @ mix.to(device).T  # back to raw windows: (q C^-1/2) w = q (C^-1/2 w)
        taps = w.double().cpu().numpy()
        for i in range(len(seeds)):
            rec.rows[i].append({"kind": "filter", **{f"tap{j}": finite_or_none(taps[i, j])
                                                     for j in range(3)}})
    return rec.rows


# ----------------------------------------------------------------- flat activations


class _StepNet(nn.Module):
    """A linear score r = wᵀx + b through the staircase u with breakpoints ``z`` (a
    per-model buffer): ``forward_only`` computes u(r) and back-propagates as if u' = 1
    (straight-through); ``surrogate`` replaces each step by a sigmoid (the authors'
    smooth approximation: centred ``1/(2L)`` of a step below it, width ``step / L``,
    sharpness 5)."""

    def __init__(self, d: int, n_steps: int, mode: str, sharpness: float, l_factor: float):
        super().__init__()
        self.lin = nn.Linear(d, 1)
        self.register_buffer("z", torch.zeros(n_steps))
        self.mode, self.sharpness, self.l_factor = mode, sharpness, l_factor

    def forward(self, x: Tensor) -> Tensor:
        r = self.lin(x)  # (b, 1)
        z = self.z
        if self.mode == "forward_only":
            return straight_through(lambda t: tasks.staircase(t, z), r)
        step = torch.diff(z)
        middle = z[1:] - step / (2 * self.l_factor)
        s = torch.sigmoid(self.sharpness * (r - middle) / (step / self.l_factor))
        return z[0] + (s * step).sum(-1, keepdim=True)


def train_flat(c: dict[str, Any], seeds: Sequence[int], device) -> list[list[dict]]:
    """Adam on y = u(v*ᵀx + b*); the squared error of each learner's prediction on fresh
    samples at log-spaced iterations, and a sample of (r*, y, prediction) at the end."""
    d, iters, method = c["size"], c["iterations"], c["method"]
    targets = [tasks.draw_staircase(data_generator(s), d) for s in seeds]
    z_all = torch.stack([t[2] for t in targets]).to(device)  # (M, K)
    n_steps = z_all.shape[1]
    if method in ("surrogate", "forward_only"):
        stack = init_modules(lambda: _StepNet(d, n_steps, method, c["sharpness"], c["l_factor"]),
                             seeds, device=device)
        stack.constants["z"] = z_all.clone()
        sampler, loss = tasks.staircase_sampler(d), "squared"
    elif method == "end_to_end":
        stack = init_stack([d, *[c["hidden"]] * 3, 1], seeds, activation="relu", device=device)
        sampler, loss = tasks.staircase_sampler(d), "squared"
    elif method == "multiclass":
        stack = init_stack([d, c["hidden"], c["hidden"], n_steps], seeds, activation="relu",
                           device=device)
        sampler, loss = tasks.staircase_sampler(d, classes=True), "cross_entropy"
    else:
        raise ValueError(f"unknown flat-activation learner {method!r}")
    x_eval = (torch.randn(c["eval_samples"], d, generator=_eval_generator()) / d)
    r_eval = torch.stack([x_eval @ v + b for v, b, _ in targets]).to(device)  # (M, b)
    y_eval = torch.stack([tasks.staircase(r_eval[i].unsqueeze(-1), z_all[i])[:, 0]
                          for i in range(len(seeds))])
    x_eval = x_eval.to(device)

    def predict(family, models):
        idx = torch.as_tensor(models, device=device)
        z = family.outputs_t(x_eval)  # (k, C, b)
        if method == "multiclass":
            return z_all[idx].gather(1, z.argmax(1))  # (k, b)
        return z[:, 0]

    def measure(family, models):
        idx = torch.as_tensor(models, device=device)
        return {"eval_error": (predict(family, models) - y_eval[idx]).square().mean(1)}

    rec = Record(log_spaced(iters, c["n_log"]), measure, len(seeds))
    adam = Adam([c["lr"]] * len(seeds), betas=(0.9, 0.99), eps=1e-5)  # the authors'
    trained = train(stack, Stream(sampler), adam, iters, loss=loss, batch_size=c["batch_size"],
                    hooks=[rec])
    with torch.no_grad():
        pred = predict(trained.family, list(range(len(seeds)))).double().cpu().numpy()
    r, y = r_eval.double().cpu().numpy(), y_eval.double().cpu().numpy()
    for i in range(len(seeds)):
        rec.rows[i] += [{"kind": "fit", "r": float(r[i, j]), "y": float(y[i, j]),
                         "prediction": finite_or_none(pred[i, j])}
                        for j in range(min(c["fit_points"], r.shape[1]))]
    return rec.rows


# -------------------------------------------------------------------------- lines


class TupleHinge(Loss):
    """Hinge on the tuple's label (output 0), plus ``weight`` times the mean hinge of the
    per-image scores on their bits (outputs 1..k): end to end with ``weight = 0``, the
    decomposition with 1. Targets (M, b, 1 + k) as :func:`tasks.lines_sampler` gives."""

    name = "tuple_hinge"
    integer_targets = False

    def __init__(self, weight: float):
        self.weight = float(weight)

    def __call__(self, z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        yt = y.transpose(1, 2)  # (M, 1 + k, b)
        slack = 1 - yt * z
        k = z.shape[1] - 1
        w = torch.full_like(z[:, :, :1], self.weight / max(k, 1))
        w[:, 0] = 1.0
        loss = (slack.clamp_min(0) * w).sum(1)
        dz = torch.where(slack > 0, -yt, torch.zeros_like(z)) * w
        return loss, dz

    def errors(self, z: Tensor, y: Tensor) -> Tensor:
        return (z[:, 0] * y[..., 0] <= 0).to(z.dtype)


class _TupleNet(nn.Module):
    """The authors' network: a CNN (two 5x5 convolutions of ``channels`` maps, each then
    2x2 max-pooled, then 50 and 100 ReLU units) scores each image; a head (100 ReLU
    units) maps the k sigmoids of the scores to the tuple's score. Outputs (b, 1 + k):
    the tuple's score, then the k image scores."""

    def __init__(self, k: int, channels: int):
        super().__init__()
        side = tasks.IMAGE_SIZE // 4
        self.cnn = nn.Sequential(
            nn.Conv2d(1, channels, 5, padding=2), nn.MaxPool2d(2),
            nn.Conv2d(channels, channels, 5, padding=2), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(channels * side * side, 50), nn.ReLU(), nn.Linear(50, 100), nn.ReLU(),
            nn.Linear(100, 1))
        self.head = nn.Sequential(nn.Linear(k, 100), nn.ReLU(), nn.Linear(100, 1))
        self.k = k

    def forward(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        scores = self.cnn(x.reshape(b * self.k, 1, *x.shape[2:])).view(b, self.k)
        return torch.cat([self.head(torch.sigmoid(scores)), scores], 1)


def lines_module(k: int, channels: int) -> Callable[[], nn.Module]:
    return lambda: _TupleNet(k, channels)


class _GradSNR(Hook):
    """At period 1 (learning rate 0: the initialisation), the per-sample signal-to-noise
    ratio ||E g||² / E||g - E g||² of one tracked parameter's gradient (``position`` in
    ``family.stat_params``), from the period's S minibatch gradients of b samples each.

    With m² and s² the squared norms of their mean and (ddof 0) spread: the per-sample
    trace of the covariance is b s² S / (S - 1), and m² - s² / (S - 1) is an unbiased
    estimate of ||E g||²; the ratio is their quotient (a value below ``floor`` = 1 / (b
    (S - 1)), or negative, is below the estimate's resolution)."""

    grad_stats = True

    def __init__(self, position: int, batch: int, steps: int):
        self.position, self.batch, self.steps = position, batch, steps
        self.snr: np.ndarray | None = None
        self.floor = 1.0 / (batch * (steps - 1))

    def at(self, t: int, periods: int) -> bool:
        return t == 1

    def __call__(self, period: Period) -> None:
        m2 = period.grad_mean_norm[self.position].double().square()
        s2 = period.grad_std_norm[self.position].double().square()
        s = self.steps
        signal = m2 - s2 / (s - 1)
        noise = self.batch * s2 * s / (s - 1)
        self.snr = (signal / noise).cpu().numpy()


def train_lines(c: dict[str, Any], seeds: Sequence[int], device) -> list[list[dict]]:
    """Adam on k-tuples of line images, end to end or with the per-image loss added;
    accuracy of the tuple's label on fresh tuples at log-spaced iterations, and the
    gradient's signal-to-noise ratio at initialisation as the authors measure it: for the
    weights of the CNN's score layer, ||E g||² / E||g - E g||² per tuple, from
    ``snr_steps`` minibatch gradients of the method's loss (the engine's gradient
    statistics, with the learning rate 0; :class:`_GradSNR`); ``log10_snr`` is clipped
    at the estimate's resolution ``snr_floor``."""
    k, iters, method = c["size"], c["iterations"], c["method"]
    build = lines_module(k, c["channels"])
    loss = TupleHinge(1.0 if method == "decomposition" else 0.0)
    sampler = tasks.lines_sampler(k)
    probe = init_modules(build, seeds, device=device)
    tracked = [probe.names[i] for i in probe.stat_params]
    # The CNN's score layer (its last linear map), as the authors measure it.
    score = [j for j, name in enumerate(tracked) if name.startswith("cnn.")][-1]
    snr_hook = _GradSNR(score, c["batch_size"], c["snr_steps"])
    train(probe, Stream(sampler, steps_per_period=c["snr_steps"]), SGD([0.0] * len(seeds)), 1,
          loss=loss, batch_size=c["batch_size"], hooks=[snr_hook])
    stack = init_modules(build, seeds, device=device)
    x_eval, y_eval = sampler(_eval_generator(), c["eval_samples"])
    x_eval, y_eval = x_eval.to(device), y_eval.to(device)

    def measure(family, models):
        z = family.outputs_t(x_eval)  # (k, 1 + k, b)
        bits = (z[:, 1:] * y_eval[:, 1:].T > 0).double().mean((1, 2))
        return {"accuracy": (z[:, 0] * y_eval[:, 0] > 0).double().mean(1),
                "bit_accuracy": bits}

    rec = Record(log_spaced(iters, c["n_log"]), measure, len(seeds))
    train(stack, Stream(sampler), Adam([c["lr"]] * len(seeds), betas=(0.9, 0.99), eps=1e-5),
          iters, loss=loss,
          batch_size=c["batch_size"], hooks=[rec])
    for i in range(len(seeds)):
        snr = float(snr_hook.snr[i])
        rec.rows[i].append({"kind": "snr", "snr": finite_or_none(snr),
                            "snr_floor": snr_hook.floor,
                            "log10_snr": math.log10(max(snr, snr_hook.floor))})
    return rec.rows


# ------------------------------------------------------------------------- stocks


class ExpectedReward(Loss):
    """Minus the expected reward of a softmax choice: -Σ_j softmax(z)_j y_j, with y (M, b,
    C) a reward vector; dz = -p ⊙ (y - p·y)."""

    name = "expected_reward"
    integer_targets = False

    def __call__(self, z: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        p = torch.softmax(z, 1)
        yt = y.transpose(1, 2)
        reward = (p * yt).sum(1, keepdim=True)
        return -reward[:, 0], -p * (yt - reward)

    def errors(self, z: Tensor, y: Tensor) -> Tensor:
        return (z.argmax(1) != y.argmax(2)).to(z.dtype)


class _SecondMoment(Hook):
    """E||g||² of the minibatch gradients of period 1 (learning rate 0: at init), all
    parameters: ||mean||² + ||std||²."""

    grad_stats = True

    def __init__(self):
        self.value: np.ndarray | None = None

    def at(self, t: int, periods: int) -> bool:
        return t == 1

    def __call__(self, period: Period) -> None:
        m = period.grad_mean_norm.double().square().sum(0)
        s = period.grad_std_norm.double().square().sum(0)
        self.value = (m + s).cpu().numpy()


def train_stocks(c: dict[str, Any], seeds: Sequence[int], device) -> list[list[dict]]:
    """The stocks variant: a linear softmax over k stocks from one-hot inputs, Adam on
    the end-to-end reward or on the best stock's probability (decomposition); the
    end-to-end loss (minus the expected reward) on fresh samples at log-spaced
    iterations; and (end-to-end trials), at initialisation, the second moment of both
    gradient estimators (single-sample gradients, ``probe_steps`` of them) from the
    engine's statistics."""
    d, k, iters, method = c["d"], c["size"], c["iterations"], c["method"]
    loss = ExpectedReward()
    moments = {}
    # Both estimators are probed once per (k, seed): in the end-to-end trial.
    for name, dec in (("end_to_end", False), ("decomposition", True)) * (method == "end_to_end"):
        hook = _SecondMoment()
        probe = init_stack([d, k], seeds, activation="linear", device=device)
        train(probe, Stream(tasks.stocks_sampler(d, k, dec), steps_per_period=c["probe_steps"]),
              SGD([0.0] * len(seeds)), 1, loss=loss, batch_size=1, hooks=[hook])
        moments[name] = hook.value
    stack = init_stack([d, k], seeds, activation="linear", device=device)
    best = torch.stack([tasks.draw_stocks(data_generator(s), d, k) for s in seeds]).to(device)
    g = _eval_generator()
    i_eval = torch.randint(0, d, (c["eval_samples"],), generator=g)
    x_eval = torch.nn.functional.one_hot(i_eval, d).float().to(device)
    z_eval = (torch.randint(0, 2, (len(seeds), c["eval_samples"], k), generator=g).float() * 2
              - 1).to(device)
    hot = torch.nn.functional.one_hot(best[:, i_eval.to(device)], k).float()  # (M, b, k)
    z_eval = torch.where(hot > 0, 1.0, z_eval)

    def measure(family, models):
        idx = torch.as_tensor(models, device=device)
        z = family.outputs_t(x_eval)  # (k_models, C, b)
        p = torch.softmax(z, 1)
        reward = (p * z_eval[idx].transpose(1, 2)).sum(1).mean(1)
        right = (z.argmax(1) == hot[idx].argmax(2)).double().mean(1)
        return {"eval_loss": -reward, "accuracy": right}

    rec = Record(log_spaced(iters, c["n_log"]), measure, len(seeds))
    dec = method == "decomposition"
    train(stack, Stream(tasks.stocks_sampler(d, k, dec)),
          Adam([c["lr"]] * len(seeds), betas=(0.9, 0.99), eps=1e-5), iters, loss=loss,
          batch_size=c["batch_size"], hooks=[rec])
    for i in range(len(seeds) if moments else 0):
        e2e, dm = float(moments["end_to_end"][i]), float(moments["decomposition"][i])
        rec.rows[i].append({"kind": "moments", "second_moment_end_to_end": finite_or_none(e2e),
                            "second_moment_decomposition": finite_or_none(dm),
                            "moment_ratio": finite_or_none(e2e / dm) if dm > 0 else None})
    return rec.rows
