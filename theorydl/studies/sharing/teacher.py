"""The weight-sharing proxy: patch networks with and without tied first-layer weights.

Shalev-Shwartz, Shamir & Shammah ("Weight Sharing is Crucial to Successful
Optimization", 2017) prove that gradient training of a convolution-like network without
weight sharing only learns a target's low-frequency part, while with sharing the
low-frequency part leads it to the rest. Their exact families and targets are not
published as code; this module is a proxy built on the abstract's claims:

* input: n patches of n values, x (n, n) with N(0, 1) entries (patch i is row i);
* first layer: h_i = sum_j sigma(W_ij x_ij), with W_ij = w_j shared across patches (n
  parameters) or W free (n^2 parameters);
* then a small learned network: y_hat = b + a . h + sum_i g(h_i), g a one-hidden-layer
  ReLU net R -> R applied to every patch feature (:class:`PatchNet`);
* a teacher of the same family (:class:`Teacher`): shared weights w* with N(0, 1)
  entries, patch features f_i = sum_j sigma(w*_j x_ij), standardised to
  z_i = (f_i - mu) / s with the exact mean and std of f_i under the input law
  (:func:`feature_moments`);
* targets: **low** = z_1 (one patch feature: a low-frequency function of x);
  **high** = sqrt(2 / n) sum_i cos(beta z_i) (every patch, at frequency beta: its
  correlation with any function of features whose weights are not w* falls like
  exp(-beta^2 (1 - rho^2) / 2)); **mixed** = high + C low.

Without sharing, the low part teaches the first patch's weights only, so at best one of
the n cosines becomes learnable; with sharing it teaches w for every patch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["PatchNet", "Teacher", "blend_key", "feature_moments", "target_label", "SIGMAS"]

SIGMAS = {"tanh": torch.tanh, "relu": torch.relu}
_NP_SIGMAS = {"tanh": np.tanh, "relu": lambda t: np.maximum(t, 0.0)}


@lru_cache(maxsize=8)
def _hermite(nodes: int) -> tuple[np.ndarray, np.ndarray]:
    t, weights = np.polynomial.hermite_e.hermegauss(nodes)
    return t, weights / weights.sum()


def feature_moments(w: np.ndarray, sigma: str, nodes: int = 200) -> tuple[float, float]:
    """(mean, std) of f = sum_j sigma(w_j x_j) for independent x_j ~ N(0, 1). ReLU in
    closed form: mean sum |w_j| / sqrt(2 pi), variance sum w_j^2 (1/2 - 1/(2 pi)); tanh
    by Gauss-Hermite quadrature with ``nodes`` points (tanh is smooth: the error is far
    below float32 rounding; the ReLU kink would not be)."""
    w = np.asarray(w, dtype=np.float64)
    if sigma == "relu":
        return (float(np.abs(w).sum() / math.sqrt(2 * math.pi)),
                float(math.sqrt((w ** 2).sum() * (0.5 - 0.5 / math.pi))))
    t, weights = _hermite(nodes)
    f = _NP_SIGMAS[sigma](np.outer(w, t))  # (n, nodes)
    mean = f @ weights
    var = (f ** 2) @ weights - mean ** 2
    return float(mean.sum()), float(math.sqrt(var.sum()))


@dataclass(frozen=True, eq=False)
class Teacher:
    """The target's source: shared weights ``w`` (n,), ``sigma``, frequency ``beta``."""

    w: np.ndarray
    sigma: Literal["tanh", "relu"] = "tanh"
    beta: float = 4.0
    moments: tuple[float, float] = field(init=False, repr=False)
    """(mean, std) of a patch feature (:func:`feature_moments`), computed once."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "moments", feature_moments(self.w, self.sigma))

    @classmethod
    def random(cls, n: int, seed: int, sigma: str = "tanh", beta: float = 4.0) -> "Teacher":
        """w with N(0, 1) entries from ``numpy.random.default_rng(seed)``."""
        return cls(np.random.default_rng(seed).standard_normal(n), sigma, beta)

    def features(self, x: Tensor) -> Tensor:
        """Standardised patch features z (b, n) of inputs x (b, n, n)."""
        mean, std = self.moments
        w = torch.as_tensor(self.w, dtype=x.dtype, device=x.device)
        return (SIGMAS[self.sigma](x * w).sum(-1) - mean) / std

    def target(self, x: Tensor, kind: Literal["low", "high", "mixed"], c: float = 0.0
               ) -> Tensor:
        """The target (b,) of inputs x (b, n, n): low = z_1; high = sqrt(2/n) sum_i
        cos(beta z_i); mixed = high + c low."""
        z = self.features(x)
        low = z[:, 0]
        if kind == "low":
            return low
        high = math.sqrt(2.0 / z.shape[1]) * torch.cos(self.beta * z).sum(1)
        if kind == "high":
            return high
        if kind == "mixed":
            return high + c * low
        raise ValueError(f"unknown target {kind!r}")


class PatchNet(nn.Module):
    """x (b, n, n) -> (b, 1): h_i = sum_j sigma(W_ij x_ij), then b + a . h + sum_i g(h_i).

    ``shared``: one weight per position j, tied across the n patches (parameter
    ``first`` (n,)); else ``first`` (n, n). First-layer weights start N(0, 1) (the
    teacher's law); g: R -> ``hidden`` ReLU units -> R, PyTorch's default init."""

    def __init__(self, n: int, *, shared: bool, hidden: int = 32,
                 sigma: Literal["tanh", "relu"] = "tanh") -> None:
        super().__init__()
        self.shared, self.sigma = shared, sigma
        self.first = nn.Parameter(torch.randn(n) if shared else torch.randn(n, n))
        self.linear = nn.Linear(n, 1)
        self.g_in = nn.Linear(1, hidden)
        self.g_out = nn.Linear(hidden, 1, bias=False)

    def patch_features(self, x: Tensor) -> Tensor:
        """h (b, n): h_i = sum_j sigma(W_ij x_ij), W_ij = w_j when shared."""
        return SIGMAS[self.sigma](x * self.first).sum(-1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.patch_features(x)
        g = self.g_out(torch.relu(self.g_in(h.unsqueeze(-1)))).squeeze(-1)  # (b, n)
        return self.linear(h) + g.sum(-1, keepdim=True)


def blend_key(c: float) -> str:
    """The metrics key of the mixed target with weight c: 1.0 -> "mixed_c1", 0.5 -> "mixed_c0_5"."""
    return "mixed_c" + f"{c:g}".replace(".", "_")


def target_label(target: str, c: float | None) -> str:
    """The metrics key of a target: its name, or the blend's :func:`blend_key`."""
    return blend_key(c) if target == "mixed" else target
