"""The trained networks of the fractal study, on the engine (``theorydl.nn.train``).

* Fractal MLPs: T hidden ReLU layers of width k and one output, as the authors'
  ``network.py`` (end to end: the last block's readout through every block). Init as
  theirs: weights from a normal of std 1/sqrt(fan_in) truncated at two standard
  deviations (TensorFlow's ``truncated_normal``), biases 0.1. Binary hinge loss, Adam.
* Layer by layer (their ``--opt lbl``): block l (Linear + ReLU) and its own linear
  readout are trained on top of blocks 1..l-1, which stay frozen; then block l freezes
  and its readout is dropped. Each step is one engine run of a :class:`LayerStep`
  module stack, whose frozen blocks are per-model constants (parameters with
  ``requires_grad=False``: each model carries its own trained blocks), with a fresh
  Adam (theirs: one optimiser per layer). The engine, not a second loop, trains it.
* CIFAR-10 CNNs (Figure 6): ``depth`` 5x5 conv + ReLU layers of ``width`` channels
  ("same" padding), a 2x2 max-pool after the first two, and a linear readout.
"""

from __future__ import annotations

import numpy as np
import torch

from theorydl.spine.stacked import finite_or_none
from theorydl.studies.fractal import fractals

__all__ = ["LayerStep", "cifar_cnn", "fractal_data", "init_fractal_stack", "layerwise_init",
           "train_cifar_stack", "train_fractal_stack", "train_layerwise",
           "train_layerwise_stack"]


def _truncated_normal(shape: tuple[int, ...], std: float, gen: torch.Generator) -> torch.Tensor:
    """Normal(0, std) redrawn outside +-2 std, in float64."""
    out = torch.randn(shape, generator=gen, dtype=torch.float64)
    bad = out.abs() > 2
    while bad.any():
        out[bad] = torch.randn(int(bad.sum()), generator=gen, dtype=torch.float64)
        bad = out.abs() > 2
    return out * std


def init_fractal_stack(sizes, seeds, device="cpu"):
    """A ``theorydl.nn.Stack`` of ReLU MLPs with the authors' init, model i from seeds[i]."""
    from theorydl.nn import Stack

    weights, biases = [], []
    members = []
    for s in seeds:
        gen = torch.Generator().manual_seed(int(s))
        members.append([(_truncated_normal((a, b), 1 / np.sqrt(a), gen),
                         torch.full((b,), 0.1, dtype=torch.float64))
                        for a, b in zip(sizes[:-1], sizes[1:])])
    for l in range(len(sizes) - 1):
        weights.append(torch.stack([m[l][0] for m in members]).float().to(device)
                       .requires_grad_())
        biases.append(torch.stack([m[l][1] for m in members]).float().to(device)
                      .requires_grad_())
    return Stack(tuple(sizes), tuple(int(s) for s in seeds), "relu", tuple(weights),
                 tuple(biases))


def layerwise_init(dim: int, width: int, depth: int, seed: int
                   ) -> list[tuple[tuple[torch.Tensor, torch.Tensor], ...]]:
    """The layer-wise nets' start for one seed, per layer l: ((W (in, k), b (k,)) of the
    block, (W (k, 1), b (1,)) of its readout), float64, the authors' init. Drawn in the
    order block 1, readout 1, block 2, ... from one generator seeded ``seed``, so the
    first l layers do not depend on ``depth``: a depth-T run holds the depth-l run of
    every l <= T (a layer never sees the ones above it)."""
    gen = torch.Generator().manual_seed(int(seed))
    out = []
    for fan_in in [dim] + [width] * (depth - 1):
        block = (_truncated_normal((fan_in, width), 1 / np.sqrt(fan_in), gen),
                 torch.full((width,), 0.1, dtype=torch.float64))
        head = (_truncated_normal((width, 1), 1 / np.sqrt(width), gen),
                torch.full((1,), 0.1, dtype=torch.float64))
        out.append((block, head))
    return out


class LayerStep(torch.nn.Module):
    """One step of layer-wise training: ``len(sizes) - 2`` frozen blocks (Linear + ReLU,
    ``requires_grad=False``), the block being trained and its readout to one output.
    ``sizes`` = [d, k, ..., k]: the widths up to the trained block's output."""

    def __init__(self, sizes):
        super().__init__()
        pairs = list(zip(sizes[:-1], sizes[1:]))
        self.frozen = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in pairs[:-1])
        self.frozen.requires_grad_(False)
        self.block = torch.nn.Linear(*pairs[-1])
        self.head = torch.nn.Linear(sizes[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.frozen:
            x = torch.relu(layer(x))
        return self.head(torch.relu(self.block(x)))


def _layer_stack(frozen, block, head, seeds, device):
    """A stack of :class:`LayerStep` models holding the given values: ``frozen`` the
    trained blocks [(W (M, in, k), b (M, k))], ``block`` and ``head`` the new block's and
    readout's start, every tensor with the model axis in front (W as x @ W)."""
    from theorydl.nn import init_modules

    width = block[0].shape[-1]
    sizes = [frozen[0][0].shape[1] if frozen else block[0].shape[1]] + [width] * (len(frozen) + 1)
    stack = init_modules(lambda: LayerStep(sizes), seeds, device=device)
    values = {"block.weight": block[0], "block.bias": block[1],
              "head.weight": head[0], "head.bias": head[1]}
    for j, (w, b) in enumerate(frozen):
        values |= {f"frozen.{j}.weight": w, f"frozen.{j}.bias": b}
    with torch.no_grad():
        for name, t in [*zip(stack.names, stack.tensors), *stack.constants.items()]:
            v = values[name]
            t.copy_(v.transpose(1, 2) if name.endswith("weight") else v)  # torch's (out, in)
    return stack


def train_layerwise(x: torch.Tensor, y: torch.Tensor, width: int, depth: int, seeds, *,
                    lr: float, epochs: int, batch_size: int, device="cpu"):
    """Layer-wise training of ``depth`` blocks of ``width`` units for every seed, on (x
    (N, d), y (N,) in {-1, +1}): yields, after each layer, the trained
    :class:`LayerStep` stack of that layer (its frozen blocks the earlier layers'
    trained ones, copied). Each layer: ``epochs`` epochs of Adam(``lr``) on the hinge
    loss, minibatches of ``batch_size`` in model i's order from the engine
    (``data_generator(seeds[i])``: every layer replays the same order)."""
    from theorydl.nn import Adam, Arrays, train

    inits = [layerwise_init(x.shape[1], width, depth, s) for s in seeds]

    def stacked(l: int, part: int) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(torch.stack([m[l][part][k] for m in inits]).float().to(device)
                     for k in (0, 1))

    frozen: list[tuple[torch.Tensor, torch.Tensor]] = []
    for l in range(depth):
        stack = _layer_stack(frozen, stacked(l, 0), stacked(l, 1), seeds, device)
        train(stack, Arrays(x, y), Adam(lr), epochs, loss="hinge", batch_size=batch_size)
        p = dict(zip(stack.names, stack.tensors))
        frozen.append((p["block.weight"].detach().transpose(1, 2).clone(),
                       p["block.bias"].detach().clone()))
        yield stack


def fractal_data(c: dict) -> tuple[np.ndarray, ...]:
    """The training set (m points) and test set (m/10) of a train trial's curve, seeded
    by ``data_seed`` and the curve: x float32, y in {-1, +1} float32."""
    ifs = fractals.get_ifs(c["fractal"], c["dim"])
    out = []
    for part, n in ((0, c["m"]), (1, max(1, c["m"] // 10))):
        rng = np.random.default_rng([c["data_seed"], c["pdeg"], part])
        x, y, _ = fractals.sample(ifs, c["levels"], c["pdeg"], n, rng, negatives=c["negatives"])
        out += [x.astype(np.float32), y.astype(np.float32)]
    return tuple(out)


def train_fractal_stack(trials, device):
    """Train one stack (the seeds of one curve, depth, width) end to end; one row each:
    train and test accuracy and loss after ``steps`` Adam steps."""
    from theorydl.nn import Adam, Arrays, evaluate, train

    c = trials[0].config
    x, y, xt, yt = (torch.as_tensor(a) for a in fractal_data(c))
    sizes = [c["dim"]] + [c["width"]] * c["depth"] + [1]
    stack = init_fractal_stack(sizes, [t.seed for t in trials], device)
    epochs = c["steps"] // (c["m"] // c["batch_size"])
    done = train(stack, Arrays(x, y), Adam(c["lr"]), epochs, loss="hinge",
                 batch_size=c["batch_size"])
    err, loss = evaluate(done.family, x.to(device), y.to(device), "hinge")
    terr, tloss = evaluate(done.family, xt.to(device), yt.to(device), "hinge")
    out = []
    for i in range(len(trials)):
        row = {"train_accuracy": finite_or_none(1 - err[i]), "train_loss": finite_or_none(loss[i]),
               "accuracy": finite_or_none(1 - terr[i]), "test_loss": finite_or_none(tloss[i])}
        out.append(("ok" if row["train_loss"] is not None else "diverged", [row]))
    return out


def train_layerwise_stack(trials, device):
    """Train one stack (the seeds of one curve, depth, width) layer by layer; per trial
    one row per layer l = 1..depth: the accuracy and loss of blocks 1..l with readout l
    after that layer's ``steps`` Adam steps (the depth-l layer-wise network)."""
    from theorydl.nn import evaluate

    c = trials[0].config
    x, y, xt, yt = (torch.as_tensor(a) for a in fractal_data(c))
    epochs = c["steps"] // (c["m"] // c["batch_size"])
    rows: list[list[dict]] = [[] for _ in trials]
    for layer, stack in enumerate(train_layerwise(
            x, y, c["width"], c["depth"], [t.seed for t in trials], lr=c["lr"],
            epochs=epochs, batch_size=c["batch_size"], device=device), 1):
        err, loss = evaluate(stack, x.to(device), y.to(device), "hinge")
        terr, tloss = evaluate(stack, xt.to(device), yt.to(device), "hinge")
        for i, out in enumerate(rows):
            out.append({"layer": layer, "train_accuracy": finite_or_none(1 - err[i]),
                        "train_loss": finite_or_none(loss[i]),
                        "accuracy": finite_or_none(1 - terr[i]),
                        "test_loss": finite_or_none(tloss[i])})
    return [("ok" if all(r["train_loss"] is not None for r in out) else "diverged", out)
            for out in rows]


def cifar_cnn(depth: int, width: int) -> torch.nn.Sequential:
    """The Figure 6 CNN: ``depth`` conv 5x5 (padding 2) + ReLU layers of ``width``
    channels, max-pool 2x2 after the first two, a linear readout to 10 classes."""
    layers: list[torch.nn.Module] = []
    channels, side = 3, 32
    for i in range(depth):
        layers += [torch.nn.Conv2d(channels, width, 5, padding=2), torch.nn.ReLU()]
        channels = width
        if i < 2:
            layers.append(torch.nn.MaxPool2d(2))
            side //= 2
    layers += [torch.nn.Flatten(), torch.nn.Linear(width * side * side, 10)]
    return torch.nn.Sequential(*layers)


def train_cifar_stack(trials, device):
    """Train the seeds of one (depth, width) CNN on CIFAR-10 (loaded from the data stage's
    download, never fetched here); one row each: test accuracy."""
    from theorydl.data.vision import load
    from theorydl.nn import Adam, Arrays, evaluate, init_modules, train

    c = trials[0].config
    data = load("cifar10", c["root"])
    x = torch.as_tensor(data.x_train).view(-1, 3, 32, 32)
    y = torch.as_tensor(data.y_train)
    xt = torch.as_tensor(data.x_test).view(-1, 3, 32, 32)
    yt = torch.as_tensor(data.y_test)
    stack = init_modules(lambda: cifar_cnn(c["depth"], c["width"]), [t.seed for t in trials],
                         device=device)
    epochs = -(-c["steps"] * c["batch_size"] // len(x))
    train(stack, Arrays(x, y), Adam(c["lr"]), epochs, loss="cross_entropy",
          batch_size=c["batch_size"])
    err, _ = evaluate(stack, xt.to(device), yt.to(device), "cross_entropy")
    return [("ok", [{"accuracy": finite_or_none(1 - err[i])}]) for i in range(len(trials))]
