"""The four families of Shalev-Shwartz, Shamir & Shammah (2017): data, targets and the
exact quantities the paper's arguments rest on.

Every task draws fresh samples from a model's own generator (``theorydl.nn.Stream``).
A task that has a hidden target (the parity's subset v*, the staircase's v* and b*)
draws it first from the same generator: ``draw_*(data_generator(seed))`` gives the
target model ``seed`` trains on, and the sampler re-draws it on its first call with that
model's generator, so the stream and the target always agree (see :class:`_PerModel`).

Shapes: ``b`` samples, ``d`` input dimension, ``n`` curve length, ``k`` tuple length.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "IMAGE_SIZE", "PWL_SLOPES", "STAIR_OFFSETS", "all_signs", "draw_stocks", "draw_staircase",
    "draw_subset", "line_images", "lines_sampler", "parity_grad_variance",
    "parity_grad_variance_enumerated", "parity_jacobian", "parity_labels", "parity_sampler",
    "patches", "pwl_condition", "pwl_matrix", "pwl_sampler", "random_signs", "stair_classes",
    "staircase", "staircase_sampler", "stocks_sampler", "whitening",
]


class _PerModel:
    """A sampler whose target is drawn, once per model, from the head of that model's
    stream: ``draw(g)`` on the first call with generator ``g``, then ``sample(g, b,
    target)`` on every call. The generator is kept so its id is not reused."""

    def __init__(self, draw: Callable[[torch.Generator], object],
                 sample: Callable[[torch.Generator, int, object], tuple[Tensor, Tensor]]):
        self.draw, self.sample = draw, sample
        self._targets: dict[int, tuple[torch.Generator, object]] = {}

    def __call__(self, g: torch.Generator, b: int) -> tuple[Tensor, Tensor]:
        if id(g) not in self._targets:
            self._targets[id(g)] = (g, self.draw(g))
        return self.sample(g, b, self._targets[id(g)][1])


# ------------------------------------------------------------------------ parities


def draw_subset(g: torch.Generator, d: int) -> Tensor:
    """v*: each coordinate in with probability 1/2 (as the authors' code draws its size),
    bool (d,); an empty draw keeps coordinate 0 (the constant target is no parity)."""
    v = torch.rand(d, generator=g) < 0.5
    if not v.any():
        v[0] = True
    return v


def parity_labels(x: Tensor, v: Tensor) -> Tensor:
    """(-1)^<x, v> for x in {±1}^d: the product of the coordinates in v; (b,)."""
    return torch.where(v, x, torch.ones_like(x)).prod(-1)


def random_signs(g: torch.Generator, b: int, d: int) -> Tensor:
    """b inputs uniform on {±1}^d, float32 (b, d)."""
    return torch.randint(0, 2, (b, d), generator=g).mul_(2).sub_(1).float()


def parity_sampler(d: int) -> _PerModel:
    """Fresh (x uniform on {±1}^d, y = parity over the model's v*) minibatches."""
    def sample(g, b, v):
        x = random_signs(g, b, d)
        return x, parity_labels(x, v)

    return _PerModel(lambda g: draw_subset(g, d), sample)


def parity_jacobian(x: Tensor, w1: Tensor, b1: Tensor, w2: Tensor) -> Tensor:
    """Per-sample gradients of p(x) = w2ᵀ relu(w1ᵀx + b1) + b2 with respect to (w1, b1,
    w2, b2), flattened in that order: (b, d h + h + h + 1). ``w1`` (d, h), ``w2`` (h, 1)."""
    z = x @ w1 + b1
    gate = (z > 0).to(x.dtype) * w2[:, 0]  # dp/dz (b, h)
    dw1 = x.unsqueeze(2) * gate.unsqueeze(1)  # (b, d, h)
    return torch.cat([dw1.flatten(1), gate, torch.relu(z), torch.ones_like(x[:, :1])], 1)


def all_signs(d: int, dtype=torch.float64) -> Tensor:
    """Every x in {±1}^d, (2^d, d); row r has x_i = -1 where bit i of r is set."""
    r = torch.arange(2**d).unsqueeze(1)
    bits = (r >> torch.arange(d)) & 1
    return (1 - 2 * bits).to(dtype)


def parity_grad_variance_enumerated(jac: Callable[[Tensor], Tensor], d: int) -> float:
    """Var over all 2^d parities h_S of the gradient of F_S(w) = E_x ½ (p_w(x) - h_S(x))²,
    by enumeration: every x (exact expectation) and every S.

    ``jac(x)`` gives the per-sample gradients of p at x (2^d, P). Since the p² part of
    the loss is the same for every S, ∇F_S = E[p ∇p] - E[h_S ∇p], and the variance is
    that of g_S = E_x[h_S(x) ∇p(x)]: (1/2^d) Σ_S ||g_S - mean||²."""
    x = all_signs(d)
    j = jac(x).double()  # (2^d, P)
    hadamard = all_signs(d)  # rows: subsets S as bit masks; h_S(x) = prod_{i in S} x_i
    h = torch.stack([parity_labels(x, row < 0) for row in hadamard])  # (2^d S, 2^d x)
    g = h @ j / 2**d  # (S, P)
    return float((g - g.mean(0)).square().sum(1).mean())


def parity_grad_variance(w1: Tensor, b1: Tensor, w2: Tensor, *, exact: bool,
                         samples: int = 4096, generator: torch.Generator | None = None
                         ) -> dict[str, float]:
    """The gradient's variance over all 2^d parities at weights (w1, b1, w2) (squared
    loss, the setting of the paper's Theorem 1), in closed form.

    The 2^d parities are an orthonormal basis of functions on {±1}^d, so by Parseval
    Σ_S ||g_S||² = E_x ||∇p(x)||² =: G², and Σ_S h_S(x) = 2^d [x = 1], so the mean of
    g_S is ∇p(1) / 2^d. Hence

        Var = G² / 2^d - ||∇p(1)||² / 4^d   (<= G² / 2^d, Theorem 1's bound).

    G² is exact (all 2^d inputs) with ``exact``, else a mean over ``samples`` uniform
    inputs (unbiased). Returns ``variance``, ``bound`` (G² / 2^d), ``g2`` and
    ``log2_variance``; computed in float64."""
    d = w1.shape[0]
    w1, b1, w2 = w1.double(), b1.double(), w2.double()

    def g2_of(x: Tensor) -> Tensor:
        # ||∇p(x)||² without forming ∇p: ||x||² + 1 times Σ (gate)², plus Σ relu² + 1.
        z = x @ w1 + b1
        gate = (z > 0).double() * w2[:, 0]
        return gate.square().sum(1) * (x.square().sum(1) + 1) + torch.relu(z).square().sum(1) + 1

    if exact:
        total, count = 0.0, 0
        for start in range(0, 2**d, 65536):
            r = torch.arange(start, min(2**d, start + 65536)).unsqueeze(1)
            x = (1 - 2 * ((r >> torch.arange(d)) & 1)).double().to(w1.device)
            total += float(g2_of(x).sum())
            count += x.shape[0]
        g2 = total / count
    else:
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        parts = []
        for start in range(0, samples, 8192):
            x = random_signs(g, min(8192, samples - start), d).double().to(w1.device)
            parts.append(g2_of(x))
        g2 = float(torch.cat(parts).mean())
    ones = torch.ones(1, d, dtype=torch.float64, device=w1.device)
    at_one = float(g2_of(ones)[0])
    log2_bound = math.log2(g2) - d
    # Var = bound * (1 - ||∇p(1)||² / (2^d G²)), in logs so that d = 100 stays finite.
    ratio = at_one / (g2 * 2.0**d)
    log2_var = log2_bound + math.log2(max(1.0 - ratio, 1e-300))
    return {"variance": 2.0**log2_var, "bound": 2.0**log2_bound, "g2": g2,
            "log2_variance": log2_var, "log2_bound": log2_bound}


# -------------------------------------------------------------------- conditioning

#: The slope sequences of the authors' piecewise-linear curves (three pieces).
PWL_SLOPES = ((1, -1, 1), (1, -2, 1), (-2, 1, -1), (1, -1, 2))


def pwl_matrix(n: int, dtype=np.float64) -> np.ndarray:
    """W (n, n) with W_ij = [i - j + 1]_+: column j is a hinge starting at i = j - 1, so
    f = W p is the curve whose slope changes by p_j at point j."""
    i = np.arange(n)[:, None]
    j = np.arange(n)[None, :]
    return np.maximum(0, i - j + 1).astype(dtype)


def pwl_condition(n: int) -> float:
    """cond(W) = σ_max / σ_min of :func:`pwl_matrix` (its square grows about as n⁴)."""
    s = np.linalg.svd(pwl_matrix(n), compute_uv=False)
    return float(s[0] / s[-1])


def pwl_sampler(n: int) -> Callable[[torch.Generator, int], tuple[Tensor, Tensor]]:
    """Fresh (f, p[2:]) pairs: p has three slope changes at distinct random points in
    [3, n - 4], the slopes one of :data:`PWL_SLOPES`; f = W p (the authors' curves).
    Targets are p's last n - 2 entries (every learner predicts those: the 3-tap filter
    needs two points before it; p_0 = p_1 = 0 anyway)."""
    if n < 10:
        raise ValueError(f"piecewise-linear curves need n >= 10, got {n}")
    w_t = torch.as_tensor(pwl_matrix(n).T, dtype=torch.float32)
    slopes = torch.as_tensor(PWL_SLOPES, dtype=torch.float32)
    changes = torch.diff(slopes, dim=1, prepend=torch.zeros(len(PWL_SLOPES), 1))

    def sample(g: torch.Generator, b: int) -> tuple[Tensor, Tensor]:
        where = torch.rand(b, n - 6, generator=g).topk(3, dim=1).indices.sort(1).values + 3
        kind = torch.randint(0, len(PWL_SLOPES), (b,), generator=g)
        p = torch.zeros(b, n).scatter_(1, where, changes[kind])
        return p @ w_t, p[:, 2:]

    return sample


def patches(f: Tensor) -> Tensor:
    """The 3-point windows (f_{i-2}, f_{i-1}, f_i) for i = 2..n-1: (..., n - 2, 3)."""
    return torch.stack([f[..., :-2], f[..., 1:-1], f[..., 2:]], -1)


def whitening(n: int, samples: int, seed: int) -> Tensor:
    """C^{-1/2} for C the second moment of the curves' 3-point windows, estimated on
    ``samples`` curves from ``torch.Generator().manual_seed(seed)`` (as the authors
    estimate it from their training set): (3, 3) float32."""
    f, _ = pwl_sampler(n)(torch.Generator().manual_seed(seed), samples)
    q = patches(f.double()).reshape(-1, 3)
    c = q.T @ q / q.shape[0]
    evals, evecs = torch.linalg.eigh(c)
    return (evecs @ torch.diag(evals.rsqrt()) @ evecs.T).float()


# ----------------------------------------------------------------- flat activations

#: Where the staircase steps, relative to b* (the authors' breakpoints: coarse steps
#: of 5 far out, fine ones near b*, where v*ᵀx + b* mostly lies).
STAIR_OFFSETS = tuple(sorted(set(
    [float(v) for v in range(-100, 100, 5)]
    + [-5.0, -4.0, -3.0, -2.0, -1.0, -0.2, 0.0, 0.1, 0.15, 0.175, 1.0, 2.0, 3.0, 4.0, 5.0])))


def draw_staircase(g: torch.Generator, d: int) -> tuple[Tensor, Tensor, Tensor]:
    """The target of one model: v* (d,) ~ N(0, I), b* ~ N(0, 1), breakpoints Z = b* +
    :data:`STAIR_OFFSETS` (K,)."""
    v = torch.randn(d, generator=g)
    b = torch.randn((), generator=g)
    return v, b, b + torch.as_tensor(STAIR_OFFSETS)


def staircase(r: Tensor, z: Tensor) -> Tensor:
    """u(r) = the largest breakpoint z_k <= r (z sorted; z_0 below r): z_0 + Σ_k
    (z_{k+1} - z_k) [r >= z_{k+1}]; ``r`` (..., 1) against ``z`` (K,)."""
    return z[0] + ((r >= z[1:]).to(r.dtype) * torch.diff(z)).sum(-1, keepdim=True)


def stair_classes(r: Tensor, z: Tensor) -> Tensor:
    """The step index of r: (number of breakpoints <= r) - 1, int64 (...,)."""
    return (r.unsqueeze(-1) >= z).sum(-1).sub(1).clamp_min(0)


def staircase_sampler(d: int, classes: bool = False) -> _PerModel:
    """Fresh (x ~ N(0, I / d²) as the authors scale it, y = u(v*ᵀx + b*)) minibatches;
    ``classes``: y is the step index instead of its value (the multi-class learner)."""
    def sample(g, b, target):
        v, bias, z = target
        x = torch.randn(b, d, generator=g) / d
        r = x @ v + bias
        return x, (stair_classes(r, z) if classes else staircase(r.unsqueeze(-1), z)[:, 0])

    return _PerModel(lambda g: draw_staircase(g, d), sample)


# ------------------------------------------------------------------------- lines

IMAGE_SIZE = 28


def line_images(g: torch.Generator, count: int, size: int = IMAGE_SIZE
                ) -> tuple[Tensor, Tensor, Tensor]:
    """``count`` binary images (count, size, size) each holding one line segment: angle
    θ ~ U(0, π), centre ~ U(0, size)², length ~ U(5, size - 5), drawn point by point
    from the centre outwards as the authors draw it. Returns (images, θ, bit) with bit =
    +1 where θ < π/2, else -1."""
    theta = torch.rand(count, generator=g) * math.pi
    centre = torch.rand(count, 2, generator=g) * size
    length = 5 + torch.rand(count, generator=g) * (size - 10)
    steps = torch.arange(size // 2, dtype=torch.float32)
    unit = torch.stack([theta.cos(), theta.sin()], 1)  # (count, 2)
    keep = steps < (length // 2).unsqueeze(1)  # (count, L)
    pts = []
    for sign in (-1.0, 1.0):
        pts.append((centre.unsqueeze(1) + sign * steps[None, :, None] * unit.unsqueeze(1))
                   .trunc().long())  # (count, L, 2), truncated toward zero like astype(int)
    pts = torch.cat(pts, 1)
    keep = torch.cat([keep, keep], 1) & ((pts >= 0) & (pts < size)).all(2)
    flat = (pts[..., 0] * size + pts[..., 1]).clamp(0, size * size - 1)
    # amax: a dropped (out of the image) point clamped onto a drawn pixel leaves it drawn.
    images = torch.zeros(count, size * size).scatter_reduce_(1, flat, keep.float(), "amax")
    bit = torch.where(theta < math.pi / 2, 1.0, -1.0)
    return images.view(count, size, size), theta, bit


def lines_sampler(k: int) -> Callable[[torch.Generator, int], tuple[Tensor, Tensor]]:
    """Fresh k-tuples: x (b, k, 28, 28); y (b, 1 + k): the tuple's label first (+1 when an
    odd number of its lines have θ < π/2, the authors' parity), then each image's bit."""
    def sample(g: torch.Generator, b: int) -> tuple[Tensor, Tensor]:
        images, _, bits = line_images(g, b * k)
        bits = bits.view(b, k)
        label = torch.where((bits > 0).sum(1) % 2 == 1, 1.0, -1.0)
        return images.view(b, k, IMAGE_SIZE, IMAGE_SIZE), torch.cat([label[:, None], bits], 1)

    return sample


# ------------------------------------------------------------------------ stocks


def draw_stocks(g: torch.Generator, d: int, k: int) -> Tensor:
    """The best of k stocks for each of d one-hot inputs, int64 (d,)."""
    return torch.randint(0, k, (d,), generator=g)


def stocks_sampler(d: int, k: int, decomposition: bool) -> _PerModel:
    """Fresh (x = e_i, i uniform in [d], target) minibatches; the target (b, k) is the
    reward vector z (±1 at random, +1 at the input's best stock) end to end, or the
    one-hot of the best stock (decomposition). E[z | x] = the one-hot, so both losses
    -softmax(w x)·target have the same expected gradient; their second moments differ."""
    def sample(g, b, best):
        i = torch.randint(0, d, (b,), generator=g)
        x = torch.nn.functional.one_hot(i, d).float()
        hot = torch.nn.functional.one_hot(best[i], k).float()
        if decomposition:
            return x, hot
        z = torch.randint(0, 2, (b, k), generator=g).float().mul_(2).sub_(1)
        return x, torch.where(hot > 0, 1.0, z)

    return _PerModel(lambda g: draw_stocks(g, d, k), sample)
