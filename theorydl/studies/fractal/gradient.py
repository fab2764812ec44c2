"""The population gradient at initialisation on the 1-D Cantor distribution (Theorem 5).

The theorem: for a ReLU network of depth t and width k initialised with small uniform
weights, with probability above 1 - delta every coordinate of the population gradient
of the loss is below 5 (P(j) - 1/2) for the level j of its condition
(:func:`theorydl.studies.fractal.fractals.theorem_level`). Why: with few linear pieces
and a deep enough j, the network is linear on most level-j cells, and inside a cell the
positives (uniform on C_n) and the negatives of levels above j are both symmetric about
the cell's centre, so their gradients cancel up to the mass imbalance, P(j) - 1/2.

The estimator uses that structure to be exact where the network is linear (so a fine
curve's near-zero gradient is not drowned in Monte-Carlo noise): split D_n into the
negatives of levels l <= j (plain sampling) and the rest, which lives in K_j; draw a
level-j cell uniformly, and in it a positive and a negative of level > j, each with its
mirror image about the cell's centre. On a cell where f is linear each mirrored pair's
mean gradient is the gradient at the centre, exactly. Per-coordinate standard errors
come from the spread of the per-draw estimates.

Init (our reading of the theorem's "uniform +-1/(2 n_in)"): every weight and bias of a
layer with n_in inputs uniform on [-1/(2 n_in), 1/(2 n_in)]; the bias clause of the
statement is cut off in the public pages, so the bias law is a proxy.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call, grad, vmap

from theorydl.studies.fractal.fractals import analytic_curve, get_ifs, place, stop_probabilities

__all__ = ["population_gradient", "small_uniform_mlp"]


def small_uniform_mlp(depth: int, width: int, seed: int) -> torch.nn.Sequential:
    """A 1-input ReLU MLP of ``depth`` hidden layers of ``width`` units and one output,
    float64, each layer's weights and biases uniform on +-1/(2 n_in), from ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    sizes = [1] + [width] * depth + [1]
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        lin = torch.nn.Linear(a, b, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_((torch.rand(b, a, generator=gen, dtype=torch.float64) * 2 - 1) / (2 * a))
            lin.bias.copy_((torch.rand(b, generator=gen, dtype=torch.float64) * 2 - 1) / (2 * a))
        layers.append(lin)
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def _per_sample_loss_grads(net: torch.nn.Module, x: np.ndarray, y: float) -> np.ndarray:
    """Gradients (n, P) of the hinge loss max(0, 1 - y f(x)) at each point x (n,)."""
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss(p, xi):
        f = functional_call(net, p, (xi.view(1, 1),))[0, 0]
        return torch.relu(1.0 - y * f)

    g = vmap(grad(loss), in_dims=(None, 0))(params, torch.as_tensor(x, dtype=torch.float64))
    return torch.cat([g[k].reshape(len(x), -1) for k in params], dim=1).numpy()


def population_gradient(levels: int, pdeg: int, depth: int, width: int, seed: int,
                        level: int, draws: int, rng: np.random.Generator) -> dict[str, float]:
    """The population hinge-loss gradient at initialisation (network of ``seed``) on the
    1-D Cantor distribution D_levels with curve ``pdeg``, split at ``level`` j.

    Returns: ``max_abs`` (the largest |coordinate|), ``se`` (its standard error),
    ``bound`` 5 (P(j) - 1/2), ``p_j`` and ``level``.
    """
    ifs = get_ifs("cantor", 1)
    j = min(level, levels)
    net = small_uniform_mlp(depth, width, seed)
    q = stop_probabilities(levels, pdeg)
    reach = np.concatenate([[1.0], np.cumprod(1.0 - q)[:-1]])
    pi = 2.0 * reach * q  # the negatives' mixture weights over levels 1..levels
    p_out = float(pi[:j].sum())
    p_in = 1.0 - p_out
    # a level-j cell's centre, and the offsets of a positive and an inner negative in it
    path = rng.integers(0, 2, size=(draws, j))
    centre = (ifs.shifts[path, 0] * 3.0 ** -np.arange(j)).sum(axis=1) if j else np.zeros(draws)
    cell = 3.0 ** -j
    pos = place(ifs, levels - j, np.zeros(draws, dtype=np.int64), rng)[:, 0] * cell
    total = np.zeros((draws, sum(p.numel() for p in net.parameters())))
    for sign in (1.0, -1.0):
        total += 0.25 * _per_sample_loss_grads(net, centre + sign * pos, 1.0)
    if p_in > 0:
        inner = pi[j:] / pi[j:].sum()
        stops = rng.choice(np.arange(1, levels - j + 1), size=draws, p=inner)
        neg = place(ifs, levels - j, stops, rng)[:, 0] * cell
        for sign in (1.0, -1.0):
            total += 0.25 * p_in * _per_sample_loss_grads(net, centre + sign * neg, -1.0)
    if p_out > 0:
        stops = rng.choice(np.arange(1, j + 1), size=draws, p=pi[:j] / p_out)
        outer = place(ifs, levels, stops, rng)[:, 0]
        total += 0.5 * p_out * _per_sample_loss_grads(net, outer, -1.0)
    mean = total.mean(axis=0)
    se = total.std(axis=0, ddof=1) / np.sqrt(draws)
    top = int(np.argmax(np.abs(mean)))
    p_j = float(analytic_curve(levels, pdeg)[j])
    return {"max_abs": float(abs(mean[top])), "se": float(se[top]),
            "bound": 5.0 * (p_j - 0.5), "p_j": p_j, "level": j}
