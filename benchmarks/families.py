"""Benchmark: every model family the studies train, stacked vs the torch.func recipe vs one at a time.

For each family, M models (seeds 0..M-1, the same initialisation every way) train on the
same data with the same optimiser, each model in its own data order
(``theorydl.nn.data_generator(seed)``), three ways, side by side in one run:

  stacked: the models in one ``theorydl.nn`` family trained by the engine
      (``theorydl.nn.train``): ``init_stack`` (the MLP family, its hand-written backward
      pass) where the study trains an MLP, ``init_modules`` (any ``nn.Module`` through
      ``torch.func``; the folded path for a plain ``nn.Sequential`` CNN) otherwise;
  torch.func recipe: PyTorch's model-ensembling tutorial, trained:
      ``torch.func.stack_module_state`` over the M ``nn.Module``s, ``vmap(functional_call)``
      on each model's own minibatch, the sum of the models' mean losses, ``.backward()``,
      one ``torch.optim`` optimiser over the stacked parameters;
  one at a time: ``nn.Module`` + ``torch.optim`` per model, one model after the other.

The families, each built the way its study builds it (module, initialisation, loss,
optimiser and its settings, batch size from ``params.yaml``'s default profile; the data
is the study's where it is cheap to make, else inputs of the study's shape):

  ib                     12-10-7-5-4-3-2 tanh MLP, the 4096 IB patterns, Adam 4e-4, batch 256
  width                  64-256-10 ReLU MLP (one hidden layer), 8x8 digits, SGD 0.1, batch 64
  pooling_convac         ConvAC, 16x16 binary blob images (closedness), Adam 3e-3 (beta2 0.9), batch 64
  pooling_relu_avg/_max  the ReLU nets (average / max pooling), Adam 1e-3, weight decay 1e-4, batch 64
  failures_lines         the line-image tuple CNN (k = 3 images, 8 channels), tuple hinge, Adam, batch 32
  failures_conditioning  the 3-tap convolution on piecewise-linear curves (n = 100), squared, Adam 0.05
  gating_galu            GaLU net (depth 2, k = 48, sigmoid gates, fixed random filters) on
                         32 whitened PCA dims of digits, SGD 0.1, batch 128
  gating_memorise        GaLU net (depth 1, step gates, no bias), 256 random points of 16 dims
                         (k = 16), squared, Adam 0.01, batch 128
  sharing, sharing_shared  the patch net (n = 8, 32 hidden, tanh), unshared and shared
                         first layer, teacher targets (mixed, C = 1), squared, Adam 0.01, batch 128
  learnability           net-3-3 sigmoid on N = 3 inputs, each model its own truth table
                         (per-model targets), full batch, Adam 0.05
  fractal                2-20x5-1 ReLU MLP with the authors' init, Cantor-dust data, hinge,
                         Adam 5e-3, batch 100
  layerwise              the end-to-end conv net (3 stride-3 convolutions of 32 channels) on
                         27x27 images, 4 labels, Adam 3e-3, batch 64

Left out: the DQN's Q-network (``theorydl.rl``): no study stacks it (``train_dqn`` trains
one network per run, against its own environment, replay buffer and target network, with
RMSprop, which the engine does not provide). The studies' sampled streams (pooling,
failures, sharing) are replaced here by a fixed set drawn once from the same sampler and
visited in epochs, so that every way sees the same minibatches by construction.

Measured per family: model-steps/s of each way (a model-step: one model's optimiser step
on one minibatch), the speed ratios stacked/recipe and stacked/one-at-a-time, and the
stacked run's achieved GFLOP/s: the FLOPs of one lone model's training step (forward and
backward, counted by ``torch.utils.flop_counter.FlopCounterMode``: matmuls and
convolutions only, so elementwise work and the optimiser are not counted) times the
model-steps, over the stacked time; and its share of a large-matmul peak measured in the
same run (a 2048x2048 float32 matmul, best of 5, on the same torch threads). As a check
that the work is the same, the largest |weight difference| of stacked and of the recipe
from one at a time (float32 rounding differs between batched and lone kernels, and
training amplifies it; Adam most, where a gradient is near zero and its step is
g / (sqrt(v) + eps) of rounding: the fractal MLP's stacked weights differ by 0.06 after
one epoch of Adam 5e-3 but by 1.5e-8 after one epoch of SGD 5e-3, whose steps are the
gradients themselves). ``--quick`` runs stay within the tolerance; full runs of the
longer Adam families may not, which the check line names.

Threads: stacked and the recipe use ``--threads`` (default per family: 2 for the conv
families, 1 for the rest, as ``stacks.py`` measured on 2 cores); one at a time 1.
Stacked and the recipe are timed ``--repeats`` times in turn (the best counts), one at a
time once; every way is warmed up first. The last line printed is
``families: min stack/recipe <r>x (<family>)``. ``--quick``: a smoke run (3 models, tiny
data, 1 epoch, 1 repeat; a few seconds). From the repository root:

    python benchmarks/families.py [--families ib,width] [--models M] [--threads T] [--quick]
"""

from __future__ import annotations

import argparse
import copy
import functools
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Before torch loads OpenMP: idle threads sleep instead of spinning (see stacks.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torch.func import functional_call, stack_module_state, vmap  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from theorydl.nn import (  # noqa: E402
    SGD,
    Adam,
    Arrays,
    Stack,
    data_generator,
    init_modules,
    init_stack,
    seeded,
    train,
)

State = dict[str, Tensor]  # one model's trainable parameters by name, as its nn.Module names them
WAYS = ("stacked", "recipe", "one at a time")


# ------------------------------------------------------------------------------ losses
# Each engine loss as a PyTorch user writes it: outputs (..., b, C), targets (..., b) or
# (..., b, C); the sum over the leading (model) axes of the batch-mean loss.


def _cross_entropy(out: Tensor, y: Tensor) -> Tensor:
    per = F.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1), reduction="none")
    return per.view(y.shape).mean(-1).sum()


def _squared(out: Tensor, y: Tensor) -> Tensor:
    target = y.unsqueeze(-1) if y.dim() == out.dim() - 1 else y
    return (out - target).square().mean(-1).mean(-1).sum()


def _hinge(out: Tensor, y: Tensor) -> Tensor:
    return (1 - y * out[..., 0]).clamp_min(0).mean(-1).sum()


def _tuple_hinge(weight: float) -> Callable[[Tensor, Tensor], Tensor]:
    """failures' ``TupleHinge(weight)``: the hinge on output 0 plus ``weight`` times the
    mean hinge of outputs 1..k on their bits."""
    def loss(out: Tensor, y: Tensor) -> Tensor:
        k = out.shape[-1] - 1
        w = torch.full((k + 1,), weight / max(k, 1), dtype=out.dtype, device=out.device)
        w[0] = 1.0
        return ((1 - y * out).clamp_min(0) * w).sum(-1).mean(-1).sum()

    return loss


TORCH_LOSSES = {"cross_entropy": _cross_entropy, "squared": _squared, "hinge": _hinge}


# ---------------------------------------------------------------------------- families


@dataclass(frozen=True, eq=False)
class Bench:
    """One family as its study trains it: data, models, loss and optimiser."""

    name: str
    #: What is trained, printed in the family list.
    title: str
    X: Tensor
    #: (N, ...) targets, or (M, N, ...) with ``per_model`` (model i fits ``y[i]``).
    y: Tensor
    #: Minibatch size; None: full batch (every model sees all of X every step).
    batch: int | None
    epochs: int
    #: The engine's loss (a name or a ``theorydl.nn.losses.Loss``) and the same loss in
    #: PyTorch terms (outputs (..., b, C), targets; sum over models of batch means).
    loss: object
    torch_loss: Callable[[Tensor, Tensor], Tensor]
    #: "adam" or "sgd", and its settings (lr, betas, eps, weight_decay, momentum).
    optimizer: str
    settings: dict
    #: Model ``seed`` as a plain ``nn.Module``, initialised as the stack's model is.
    lone: Callable[[int], nn.Module]
    #: The theorydl family of the given seeds.
    stacked: Callable[[Sequence[int]], object]
    #: Each model's trainable parameters from a trained stacked family, named as ``lone``'s.
    states: Callable[[object], list[State]]
    #: Default torch threads for stacked and the recipe.
    threads: int = 1
    per_model: bool = False

    @property
    def steps_per_epoch(self) -> int:
        return 1 if self.batch is None else -(-self.X.shape[0] // self.batch)


def _modules(build: Callable[[], nn.Module]) -> dict:
    """The ``Bench`` fields of a family stacked by ``init_modules(build, seeds)``."""
    def states(fam) -> list[State]:
        return [{k: fam.member(i)[k] for k in fam.names} for i in range(fam.n_models)]

    return dict(lone=lambda seed: seeded(build, seed),
                stacked=lambda seeds: init_modules(build, seeds), states=states)


_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid}


def _mlp(make: Callable[[Sequence[int]], Stack]) -> dict:
    """The ``Bench`` fields of an MLP family (``make(seeds)`` a ``Stack``): the lone model
    is the ``nn.Sequential`` of ``nn.Linear`` and activation layers holding its weights."""
    def lone(seed: int) -> nn.Sequential:
        stack = make([seed])
        layers: list[nn.Module] = []
        for l, (w, b) in enumerate(stack.member(0)):
            lin = nn.Linear(*w.shape)
            with torch.no_grad():
                lin.weight.copy_(w.T)
                lin.bias.copy_(b)
            layers.append(lin)
            if l < stack.n_layers - 1:
                layers.append(_ACTIVATIONS[stack.activation]())
        return nn.Sequential(*layers)

    def states(stack: Stack) -> list[State]:
        return [{k: v.detach().clone() for l, (w, b) in enumerate(stack.member(i))
                 for k, v in ((f"{2 * l}.weight", w.T), (f"{2 * l}.bias", b))}
                for i in range(stack.n_models)]

    return dict(lone=lone, stacked=make, states=states)


def _subset(n: int, small: bool, small_n: int) -> int:
    return small_n if small else n


def ib_bench(models: int, small: bool) -> Bench:
    from theorydl.studies.ib import dataset as ib

    X = torch.from_numpy(ib.all_patterns())
    y = torch.from_numpy(ib.labels(X.numpy())[0])
    n = _subset(len(X), small, 512)
    sizes = (12, 10, 7, 5, 4, 3, 2)
    return Bench("ib", "IB MLP 12-10-7-5-4-3-2 tanh, IB patterns, Adam 4e-4, batch 256",
                 X[:n], y[:n], 256, 1 if small else 5, "cross_entropy", _cross_entropy,
                 "adam", {"lr": 4e-4},
                 **_mlp(lambda seeds: init_stack(sizes, seeds, activation="tanh")))


def width_bench(models: int, small: bool) -> Bench:
    from theorydl.data.vision import load_digits

    d = load_digits(seed=0)
    X, y = torch.from_numpy(d.x_train), torch.from_numpy(d.y_train)
    n = _subset(len(X), small, 128)
    return Bench("width", "width MLP 64-256-10 ReLU, digits, SGD 0.1, batch 64",
                 X[:n], y[:n], 64, 1 if small else 3, "cross_entropy", _cross_entropy,
                 "sgd", {"lr": 0.1},
                 **_mlp(lambda seeds: init_stack((64, 256, 10), seeds, activation="relu")))


@functools.cache
def _blob_task(n: int) -> tuple[Tensor, Tensor]:
    """pooling's closedness task on ``n`` 16x16 blob images (the extreme 40 % of scores
    each side): images (k, 1, 16, 16) float32, labels (k,); made once for the 3 networks."""
    from theorydl.studies.pooling.blobs import extreme_labels, make_blobs

    blobs = make_blobs(n, 16, 0)
    labels = extreme_labels(blobs.closedness, 0.4)
    keep = labels >= 0
    return (torch.from_numpy(blobs.images[keep].astype(np.float32)[:, None]),
            torch.from_numpy(labels[keep]).long())


def pooling_bench(network: str) -> Callable[[int, bool], Bench]:
    def build(models: int, small: bool) -> Bench:
        from theorydl.studies.pooling.networks import build_network

        X, y = _blob_task(128 if small else 1024)
        relu = network != "convac"
        settings = ({"lr": 1e-3, "betas": (0.9, 0.999), "weight_decay": 1e-4} if relu
                    else {"lr": 3e-3, "betas": (0.9, 0.9)})
        return Bench(f"pooling_{network}",
                     f"pooling {network} (16 channels, square), {len(X)} 16x16 blob images, "
                     f"Adam {settings['lr']}, batch 64",
                     X, y, 64, 1 if small else 2, "cross_entropy", _cross_entropy, "adam",
                     settings, threads=2,
                     **_modules(lambda: build_network(network, 16, 16, "square")))

    return build


_FAILURES_ADAM = {"betas": (0.9, 0.99), "eps": 1e-5}  # the authors'


def lines_bench(models: int, small: bool) -> Bench:
    from theorydl.studies.failures import learners, tasks

    k = 3
    X, y = tasks.lines_sampler(k)(torch.Generator().manual_seed(0), 64 if small else 320)
    return Bench("failures_lines",
                 f"failures line-image tuple CNN (k {k}, 8 channels), end to end, tuple hinge, "
                 "Adam 1e-3, batch 32",
                 X, y, 32, 1, learners.TupleHinge(0.0), _tuple_hinge(0.0), "adam",
                 {"lr": 1e-3, **_FAILURES_ADAM}, threads=2, **_modules(learners.lines_module(k, 8)))


def conditioning_bench(models: int, small: bool) -> Bench:
    from theorydl.studies.failures import learners, tasks

    n = 100
    X, y = tasks.pwl_sampler(n)(torch.Generator().manual_seed(0), 200 if small else 1000)
    return Bench("failures_conditioning",
                 f"failures 3-tap convolution on curves (n {n}), squared, Adam 0.05, batch 100",
                 X, y, 100, 1 if small else 5, "squared", _squared, "adam",
                 {"lr": 0.05, **_FAILURES_ADAM},
                 **_modules(learners.conditioning_module("conv", n, None)))


def gating_galu_bench(models: int, small: bool) -> Bench:
    from theorydl.data.vision import load_digits
    from theorydl.studies.gating.experiment import pca_whiten
    from theorydl.studies.gating.galu import GatedNet

    d = load_digits(seed=0)
    (x,) = pca_whiten(d.x_train, [], 32)
    X, y = torch.from_numpy(x), torch.from_numpy(d.y_train)
    n = _subset(len(X), small, 256)
    return Bench("gating_galu",
                 "gating GaLU net (depth 2, k 48, sigmoid gates), 32 PCA dims of digits, "
                 "SGD 0.1, batch 128",
                 X[:n], y[:n], 128, 1 if small else 5, "cross_entropy", _cross_entropy, "sgd",
                 {"lr": 0.1},
                 **_modules(lambda: GatedNet(32, 48, 10, network="galu", depth=2,
                                             gate="sigmoid", alpha=1.0, bias=True)))


def gating_memorise_bench(models: int, small: bool) -> Bench:
    from theorydl.studies.gating.experiment import memorise_data
    from theorydl.studies.gating.galu import GatedNet

    x, y = memorise_data(256, 16, 0)
    return Bench("gating_memorise",
                 "gating GaLU net (depth 1, k 16, step gates), 256 random points in 16 dims, "
                 "squared, Adam 0.01, batch 128",
                 torch.from_numpy(x), torch.from_numpy(y), 128, 1 if small else 50, "squared",
                 _squared, "adam", {"lr": 0.01},
                 **_modules(lambda: GatedNet(16, 16, 1, network="galu", depth=1, gate="step",
                                             bias=False)))


def sharing_bench(shared: bool) -> Callable[[int, bool], Bench]:
    def build(models: int, small: bool) -> Bench:
        from theorydl.studies.sharing.teacher import PatchNet, Teacher

        teacher = Teacher.random(8, 0, "tanh", 4.0)
        X = torch.randn(256 if small else 4096, 8, 8, generator=torch.Generator().manual_seed(0))
        y = teacher.target(X, "mixed", 1.0).float()
        return Bench("sharing_shared" if shared else "sharing",
                     f"sharing patch net (n 8, 32 hidden, tanh, {'shared' if shared else 'unshared'}),"
                     " squared, Adam 0.01, batch 128",
                     X, y, 128, 1 if small else 2, "squared", _squared, "adam", {"lr": 0.01},
                     **_modules(lambda: PatchNet(8, shared=shared, hidden=32, sigma="tanh")))

    return build


def learnability_bench(models: int, small: bool) -> Bench:
    from theorydl.studies.learnability.experiment import inputs_pm1

    n, points = 3, 8
    X = torch.as_tensor(inputs_pm1(n))
    tables = np.arange(models) % 2 ** points  # model i fits truth table i
    y = torch.as_tensor((tables[:, None] >> np.arange(points)) & 1)
    return Bench("learnability",
                 f"learnability net-3-3 sigmoid, N {n}, a truth table per model, full batch, "
                 "Adam 0.05",
                 X, y, None, 10 if small else 300, "cross_entropy", _cross_entropy, "adam",
                 {"lr": 0.05}, per_model=True,
                 **_mlp(lambda seeds: init_stack((n, 3, 3, 2), seeds, activation="sigmoid")))


def fractal_bench(models: int, small: bool) -> Bench:
    from theorydl.studies.fractal.nets import fractal_data, init_fractal_stack

    c = {"fractal": "cantor", "dim": 2, "levels": 5, "pdeg": 0, "negatives": "original",
         "m": 500 if small else 5000, "data_seed": 0}
    x, y, _, _ = fractal_data(c)
    sizes = (2, 20, 20, 20, 20, 20, 1)
    return Bench("fractal", "fractal MLP 2-20x5-1 ReLU (authors' init), Cantor dust, hinge, "
                 "Adam 5e-3, batch 100",
                 torch.from_numpy(x), torch.from_numpy(y), 100, 1 if small else 2, "hinge",
                 _hinge, "adam", {"lr": 5e-3},
                 **_mlp(lambda seeds: init_fractal_stack(sizes, seeds)))


def layerwise_bench(models: int, small: bool) -> Bench:
    from theorydl.studies.layerwise.algorithm import e2e_net

    g = torch.Generator().manual_seed(0)
    n = 128 if small else 1024
    X = torch.randn(n, 1, 27, 27, generator=g)
    y = torch.randint(0, 4, (n,), generator=g)
    return Bench("layerwise", "layerwise end-to-end conv net (3 x stride-3 conv, 32 channels), "
                 "27x27 images, Adam 3e-3, batch 64",
                 X, y, 64, 1 if small else 2, "cross_entropy", _cross_entropy, "adam",
                 {"lr": 3e-3}, threads=2, **_modules(lambda: e2e_net(27, 3, 3, 32, 4)))


FAMILIES: dict[str, Callable[[int, bool], Bench]] = {
    "ib": ib_bench,
    "width": width_bench,
    "pooling_convac": pooling_bench("convac"),
    "pooling_relu_avg": pooling_bench("relu_avg"),
    "pooling_relu_max": pooling_bench("relu_max"),
    "failures_lines": lines_bench,
    "failures_conditioning": conditioning_bench,
    "gating_galu": gating_galu_bench,
    "gating_memorise": gating_memorise_bench,
    "sharing": sharing_bench(False),
    "sharing_shared": sharing_bench(True),
    "learnability": learnability_bench,
    "fractal": fractal_bench,
    "layerwise": layerwise_bench,
}


# -------------------------------------------------------------------------------- ways


def engine_optimizer(bench: Bench):
    return (Adam if bench.optimizer == "adam" else SGD)(**bench.settings)


def torch_optimizer(bench: Bench, params) -> torch.optim.Optimizer:
    return (torch.optim.Adam if bench.optimizer == "adam" else torch.optim.SGD)(
        params, **bench.settings)


def run_stacked(bench: Bench, models: int, epochs: int) -> list[State]:
    family = bench.stacked(range(models))
    y = bench.y[:models] if bench.per_model else bench.y
    train(family, Arrays(bench.X, y, per_model=bench.per_model), engine_optimizer(bench),
          epochs, loss=bench.loss, batch_size=bench.batch)
    return bench.states(family)


def _batches(bench: Bench, generators: list[torch.Generator]):
    """Each epoch's minibatch indices: (M, b) slices of every model's own order (None:
    the full batch)."""
    n = bench.X.shape[0]
    if bench.batch is None:
        yield None
        return
    perm = torch.stack([torch.randperm(n, generator=g) for g in generators])
    for start in range(0, n, bench.batch):
        yield perm[:, start : start + bench.batch]


def run_recipe(bench: Bench, models: int, epochs: int) -> list[State]:
    """The torch.func recipe (PyTorch's model-ensembling tutorial, trained)."""
    X = bench.X
    nets = [bench.lone(seed) for seed in range(models)]
    params, buffers = stack_module_state(nets)  # leaves (M, ...) that require grad
    base = copy.deepcopy(nets[0]).to("meta")
    y_all = bench.y[:models] if bench.per_model else bench.y
    rows = torch.arange(models)[:, None]

    def fmodel(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(base, (p, b), (x,))

    opt = torch_optimizer(bench, params.values())
    generators = [data_generator(seed) for seed in range(models)]
    for _ in range(epochs):
        for idx in _batches(bench, generators):
            if idx is None:  # full batch: every model sees all of X
                out = vmap(fmodel, in_dims=(0, 0, None))(params, buffers, X)
                y = y_all if bench.per_model else y_all.expand(models, *y_all.shape)
            else:
                out = vmap(fmodel)(params, buffers, X[idx])  # (M, b, C): own minibatches
                y = y_all[rows, idx] if bench.per_model else y_all[idx]
            if out.dim() == 2:
                out = out.unsqueeze(-1)
            opt.zero_grad()
            bench.torch_loss(out, y).backward()  # the sum of the models' mean losses
            opt.step()
    return [{k: v[i].detach().clone() for k, v in params.items()} for i in range(models)]


def train_lone(bench: Bench, seed: int, epochs: int) -> State:
    """Model ``seed`` alone, the ordinary way; its final trainable parameters."""
    net = bench.lone(seed)
    opt = torch_optimizer(bench, [p for p in net.parameters() if p.requires_grad])
    gen = [data_generator(seed)]
    y_all = bench.y[seed] if bench.per_model else bench.y
    for _ in range(epochs):
        for idx in _batches(bench, gen):
            x, y = (bench.X, y_all) if idx is None else (bench.X[idx[0]], y_all[idx[0]])
            out = net(x)
            if out.dim() == 1:
                out = out.unsqueeze(-1)
            opt.zero_grad()
            bench.torch_loss(out, y).backward()
            opt.step()
    return {k: v.detach().clone() for k, v in net.named_parameters() if v.requires_grad}


def run_one_at_a_time(bench: Bench, models: int, epochs: int) -> list[State]:
    return [train_lone(bench, seed, epochs) for seed in range(models)]


# ----------------------------------------------------------------------------- measure


def step_flops(bench: Bench) -> float:
    """FLOPs of one lone model's training step on a full minibatch, forward and backward
    (FlopCounterMode: matmuls and convolutions), per sample."""
    net = bench.lone(0)
    b = bench.X.shape[0] if bench.batch is None else min(bench.batch, bench.X.shape[0])
    x = bench.X[:b]
    y = (bench.y[0] if bench.per_model else bench.y)[:b]
    with FlopCounterMode(display=False) as counter:
        out = net(x)
        bench.torch_loss(out.unsqueeze(-1) if out.dim() == 1 else out, y).backward()
    return counter.get_total_flops() / b


def matmul_peak(threads: int, n: int) -> float:
    """GFLOP/s of an n x n float32 matmul on ``threads`` torch threads, best of 5."""
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    torch.mm(a, b)
    best = math.inf
    for _ in range(5):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def max_difference(a: list[State], b: list[State]) -> float:
    return max((x[k] - y[k]).abs().max().item() for x, y in zip(a, b, strict=True) for k in x)


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


@dataclass
class Row:
    """One family's measurements."""

    bench: Bench
    models: int
    threads: int
    seconds: dict[str, float] = field(default_factory=dict)
    diffs: dict[str, float] = field(default_factory=dict)
    flops_per_sample: float = 0.0

    @property
    def model_steps(self) -> int:
        return self.models * self.bench.epochs * self.bench.steps_per_epoch

    def rate(self, way: str) -> float:
        return self.model_steps / self.seconds[way]

    def ratio(self, way: str) -> float:
        """Speed of stacked over ``way``."""
        return self.seconds[way] / self.seconds["stacked"]

    @property
    def gflops(self) -> float:
        samples = self.models * self.bench.epochs * self.bench.X.shape[0]
        return self.flops_per_sample * samples / self.seconds["stacked"] / 1e9


def measure(bench: Bench, models: int, threads: int, repeats: int) -> Row:
    row = Row(bench, models, threads, flops_per_sample=step_flops(bench))
    states: dict[str, list[State]] = {}
    torch.set_num_threads(threads)
    batched = {"stacked": run_stacked, "recipe": run_recipe}
    for fn in batched.values():  # warm-up: first kernels, lazy initialisation
        fn(bench, models, 1)
    for _ in range(repeats):  # in turn; others' work on the cores only slows a run
        for way, fn in batched.items():
            states[way], seconds = _timed(fn, bench, models, bench.epochs)
            row.seconds[way] = min(row.seconds.get(way, math.inf), seconds)
    torch.set_num_threads(1)
    train_lone(bench, 0, 1)
    states["one at a time"], row.seconds["one at a time"] = _timed(
        run_one_at_a_time, bench, models, bench.epochs)
    reference = states["one at a time"]
    row.diffs = {way: max_difference(states[way], reference) for way in batched}
    return row


def print_table(rows: list[Row], peaks: dict[int, float], peak_n: int) -> None:
    head = (f"{'family':22s} {'M':>3s} {'thr':>3s} {'steps':>5s} {'stacked':>9s} {'recipe':>9s} "
            f"{'one-by-1':>9s} {'st/rec':>7s} {'st/one':>7s} {'GFLOP/s':>8s} {'%peak':>6s} "
            f"{'|dw| st':>8s} {'|dw| rec':>8s}")
    print(f"\nmodel-steps/s per way (a model-step: one model's optimiser step on one minibatch); "
          f"steps: per model; GFLOP/s: the stacked run's, of matmuls and convolutions; "
          f"%peak: of a {peak_n}x{peak_n} float32 matmul on the same threads "
          + ", ".join(f"({t} thread{'s' * (t > 1)}: {g:.1f} GFLOP/s)" for t, g in peaks.items())
          + "; |dw|: max |weight difference| from one at a time")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r.bench.name:22s} {r.models:3d} {r.threads:3d} "
              f"{r.bench.epochs * r.bench.steps_per_epoch:5d} "
              + " ".join(f"{r.rate(w):9.1f}" for w in WAYS)
              + f" {r.ratio('recipe'):6.2f}x {r.ratio('one at a time'):6.2f}x"
              f" {r.gflops:8.2f} {100 * r.gflops / peaks[r.threads]:5.1f}%"
              f" {r.diffs['stacked']:8.1e} {r.diffs['recipe']:8.1e}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help="comma-separated, from: " + ", ".join(FAMILIES))
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for stacked and the recipe (default: per family, "
                             "2 for the conv families, 1 for the rest)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="timed runs of stacked and of the recipe (the best counts)")
    parser.add_argument("--tolerance", type=float, default=1e-3,
                        help="largest |weight difference| from one at a time that passes the check")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 3 models, tiny data, 1 epoch, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:  # new defaults; options given explicitly still win
        parser.set_defaults(models=3, repeats=1)
        args = parser.parse_args(argv)
    names = [n for n in args.families.split(",") if n]
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {list(FAMILIES)}")

    load_before = os.getloadavg()
    print(f"{os.cpu_count()} cores; torch {torch.__version__}; {args.models} models per family; "
          f"stacked and recipe best of {args.repeats}, one at a time once on 1 thread")
    benches = [FAMILIES[n](args.models, args.quick) for n in names]
    for b in benches:
        print(f"  {b.name:22s} {b.title}; {b.X.shape[0]} samples, {b.epochs} epochs")
    rows = []
    for b in benches:
        rows.append(measure(b, args.models, args.threads or b.threads, args.repeats))
        print(f"  measured {b.name}", flush=True)
    peak_n = 512 if args.quick else 2048
    peaks = {t: matmul_peak(t, peak_n) for t in sorted({r.threads for r in rows})}
    print_table(rows, peaks, peak_n)
    worst = max(rows, key=lambda r: max(r.diffs.values()))
    over = [r.bench.name for r in rows if max(r.diffs.values()) > args.tolerance]
    print(f"check: stacked and the recipe train the same models as one at a time: "
          f"{'ok' if not over else 'over tolerance in ' + ', '.join(over)} (largest |weight "
          f"difference| {max(worst.diffs.values()):.1e}, {worst.bench.name}; tolerance "
          f"{args.tolerance:g})")
    print("load average (1, 5, 15 min) before / after: " + " / ".join(
        ", ".join(f"{v:.1f}" for v in load) for load in (load_before, os.getloadavg())))
    low = min(rows, key=lambda r: r.ratio("recipe"))
    print(f"families: min stack/recipe {low.ratio('recipe'):.2f}x ({low.bench.name})")


if __name__ == "__main__":
    main()
