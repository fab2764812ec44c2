"""The trained networks of the fractal study, on the engine (``theorydl.nn.train``).

* Fractal MLPs: T hidden ReLU layers of width k and one output, as the authors'
  ``network.py`` (end to end: the last block's readout through every block). Init as
  theirs: weights from a normal of std 1/sqrt(fan_in) truncated at two standard
  deviations (TensorFlow's ``truncated_normal``), biases 0.1. Binary hinge loss, Adam.
* CIFAR-10 CNNs (Figure 6): ``depth`` 5x5 conv + ReLU layers of ``width`` channels
  ("same" padding), a 2x2 max-pool after the first two, and a linear readout.
"""

from __future__ import annotations

import numpy as np
import torch

from theorydl.spine.stacked import finite_or_none
from theorydl.studies.fractal import fractals

__all__ = ["cifar_cnn", "fractal_data", "init_fractal_stack", "train_cifar_stack",
           "train_fractal_stack"]


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
