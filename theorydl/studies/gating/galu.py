"""GaLU neurons: a gate chosen apart from the linear part it switches.

A GaLU neuron computes (w . x) * g(u . x) with the gate filter u fixed at random
(Fiat, Malach & Shalev-Shwartz, "Decoupling Gating from Linearity", 2019). With
g(t) = 1[t >= 0] and the gates fixed, a layer of k neurons summed into one output is
linear in its k * d weights: sum_j (w_j . x) g_j(x) = <w, phi(x)> with the gated design
phi(x) = (g_1(x) x, ..., g_k(x) x), so the least-squares fit of m points is a linear
least-squares problem (:func:`galu_least_squares`).

:class:`GatedNet` is the trainable family for the engine (``theorydl.nn.init_modules``):
ReLU, GaLU (gates from the input at every layer, the original's ``GaLU0``; step or
sigmoid gates) and linear networks with the original's Xavier initialisation.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

__all__ = ["GatedNet", "galu_design", "galu_least_squares", "step_gate"]


def step_gate(t: Tensor) -> Tensor:
    """1[t >= 0] in t's dtype (a zero filter opens every gate)."""
    return (t >= 0).to(t.dtype)


def galu_design(X: Tensor, U: Tensor) -> Tensor:
    """The gated design matrix of k step-gated neurons for every model.

    ``X`` (n, d) inputs; ``U`` (M, k, d) gate filters of M models. Returns (M, n, k * d):
    row a of model i is (1[u_1 . x_a >= 0] x_a, ..., 1[u_k . x_a >= 0] x_a)."""
    gates = step_gate(torch.einsum("nd,mkd->mnk", X, U))  # (M, n, k)
    m, n, k = gates.shape
    return (gates.unsqueeze(-1) * X.unsqueeze(1)).reshape(m, n, k * X.shape[1])


def galu_least_squares(X: Tensor, y: Tensor, U: Tensor) -> tuple[Tensor, Tensor]:
    """The least-squares GaLU weights and their training loss, batched over models.

    ``X`` (n, d), ``y`` (n,) or (M, n) targets, ``U`` (M, k, d) gates. Returns
    ``(w (M, k, d), loss (M,))`` with loss = mean_a (<w, phi(x_a)> - y_a)^2, the
    minimum over w; where k d > n (or the design is rank deficient on CPU) w is the
    minimum-norm minimiser. Computed in float64 on X's device: ``torch.linalg.lstsq``
    (driver gelsd on CPU; on CUDA, whose only driver needs full rank, the tall problem
    directly and the wide one through its m x m dual)."""
    dtype = X.dtype
    X64, U64 = X.double(), U.to(X.device, torch.float64)
    phi = galu_design(X64, U64)  # (M, n, p)
    m, n, p = phi.shape
    t = y.to(X.device, torch.float64).expand(m, n).unsqueeze(-1)  # (M, n, 1)
    if X.device.type == "cpu":
        w = torch.linalg.lstsq(phi, t, driver="gelsd").solution
    elif p <= n:
        w = torch.linalg.lstsq(phi, t).solution
    else:  # minimum norm: w = phi^T a with (phi phi^T) a = y
        a = torch.linalg.lstsq(phi @ phi.transpose(1, 2), t).solution
        w = phi.transpose(1, 2) @ a
    loss = (phi @ w - t).square().mean((1, 2))
    return w.reshape(m, U.shape[1], X.shape[1]).to(dtype), loss.to(dtype)


Network = Literal["relu", "galu", "linear"]


class GatedNet(nn.Module):
    """x (b, d) -> (b, out): ``depth`` hidden layers of width k, then a linear readout.

    Hidden layer l computes z_l = A_l h_{l-1} (+ bias) and then
    ``relu``: h_l = relu(z_l); ``linear``: h_l = z_l; ``galu``: h_l = z_l * g(x U_l), the
    gate from the *input* x at every layer (the original's GaLU0; for depth 1 plain
    GaLU), g the step 1[t >= 0] or sigmoid(t). The filters U_l (d, k) are buffers (fixed,
    per model): N(0, 1) entries divided by ``alpha * d`` (the original's scaling: with
    whitened inputs, a sigmoid gate's argument has std 1 / (alpha sqrt(d)); irrelevant for
    the step). Weights: Xavier normal (ReLU gain) for hidden layers, Xavier normal for the
    readout, biases zero, as the original code."""

    def __init__(self, d: int, k: int, out: int = 1, *, network: Network = "relu",
                 depth: int = 1, gate: Literal["step", "sigmoid"] = "step",
                 alpha: float = 1.0, bias: bool = True) -> None:
        super().__init__()
        if network not in ("relu", "galu", "linear"):
            raise ValueError(f"unknown network {network!r}")
        self.network, self.gate = network, gate
        sizes = [d] + [k] * depth
        self.hidden = nn.ModuleList(nn.Linear(a, b, bias=bias)
                                    for a, b in zip(sizes[:-1], sizes[1:]))
        self.readout = nn.Linear(k, out, bias=bias)
        for layer in self.hidden:
            nn.init.xavier_normal_(layer.weight, nn.init.calculate_gain("relu"))
        nn.init.xavier_normal_(self.readout.weight)
        for layer in [*self.hidden, self.readout]:
            if bias:
                nn.init.zeros_(layer.bias)
        if network == "galu":
            self.register_buffer("filters", torch.randn(depth, d, k) / (alpha * d))

    def forward(self, x: Tensor) -> Tensor:
        h = x
        for l, layer in enumerate(self.hidden):
            z = layer(h)
            if self.network == "relu":
                h = torch.relu(z)
            elif self.network == "linear":
                h = z
            else:
                t = x @ self.filters[l]
                h = z * (step_gate(t) if self.gate == "step" else torch.sigmoid(t))
        return self.readout(h)
