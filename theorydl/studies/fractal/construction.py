"""The explicit ReLU network that realises the Cantor dust K_n exactly (Theorem 1's
depth budget: 2n + 1 affine layers; width 4d + 1, inside the theorem's 5dr).

Our construction, not the paper's (whose proof text is not public): the map
g(z) = 3|z| - 2 folds both outer thirds of [-1, 1] onto [-1, 1] and sends the middle
third below -1, so coordinate by coordinate z_j = g^j(x) is x in the frame of its
level-j cell, and x lies in the Cantor dust K_n = C_n^d exactly when |z_j,k| <= 1 and
|z_j,k| is not in the middle third for every level j < n and coordinate k. With
u = |z| the network accumulates the *escape* E = sum_j,k relu(3u - 3) + relu(1 - 3u),
which is 0 on K_n and at least 3 gamma at a point whose L-infinity distance from K_n is
at least gamma (the fold multiplies distances by 3 each level). The output is
f(x) = 1 - E / gamma: exactly 1 on K_n, at most -2 on every negative with margin gamma.

Each level is two hidden layers: (relu(z), relu(-z), E) of width 2d + 1, then
(relu(3u - 3), relu(1 - 3u), relu(3u - 2), relu(2 - 3u), E) of width 4d + 1, from which
the next level's z = relu(3u - 2) - relu(2 - 3u) and E are linear.
"""

from __future__ import annotations

import numpy as np

__all__ = ["cantor_network", "forward", "grid_check", "ternary_grid"]

Layer = tuple[np.ndarray, np.ndarray]  # W (in, out), b (out,)


def cantor_network(levels: int, d: int, margin: float) -> list[Layer]:
    """The layers [(W, b)] of the network for K_levels in [-1, 1]^d (float64): 2 * levels
    ReLU layers and a linear output of one unit, f = 1 - E / margin."""
    if levels < 1 or d < 1 or margin <= 0:
        raise ValueError("need levels >= 1, d >= 1 and margin > 0")
    layers: list[Layer] = []
    wa = 2 * d + 1  # layer A: relu(z) (d), relu(-z) (d), E (1)
    wb = 4 * d + 1  # layer B: relu(3u-3), relu(1-3u), relu(3u-2), relu(2-3u) (d each), E
    # The first layer A reads x = z_0 and starts E at 0.
    w = np.zeros((d, wa))
    w[:, :d], w[:, d:2 * d] = np.eye(d), -np.eye(d)
    layers.append((w, np.zeros(wa)))
    for level in range(levels):
        # layer B from layer A: u = relu(z) + relu(-z)
        w, b = np.zeros((wa, wb)), np.zeros(wb)
        for k in range(d):
            for col, (slope, const) in enumerate([(3, -3), (-3, 1), (3, -2), (-3, 2)]):
                w[k, col * d + k] = w[d + k, col * d + k] = slope
                b[col * d + k] = const
        w[2 * d, 4 * d] = 1.0
        layers.append((w, b))
        if level == levels - 1:
            break
        # the next layer A: z' = relu(3u-2) - relu(2-3u); E' = E + escapes
        w = np.zeros((wb, wa))
        for k in range(d):
            w[2 * d + k, k], w[3 * d + k, k] = 1.0, -1.0
            w[2 * d + k, d + k], w[3 * d + k, d + k] = -1.0, 1.0
        w[:2 * d, 2 * d] = 1.0
        w[4 * d, 2 * d] = 1.0
        layers.append((w, np.zeros(wa)))
    # output: 1 - (E + last escapes) / margin
    w = np.zeros((wb, 1))
    w[:2 * d, 0] = -1.0 / margin
    w[4 * d, 0] = -1.0 / margin
    layers.append((w, np.ones(1)))
    return layers


def forward(layers: list[Layer], x: np.ndarray) -> np.ndarray:
    """f(x) (n,) of the network on points x (n, d): ReLU on every layer but the last."""
    h = np.asarray(x, dtype=np.float64)
    for i, (w, b) in enumerate(layers):
        h = h @ w + b
        if i < len(layers) - 1:
            h = np.maximum(h, 0.0)
    return h[:, 0]


def ternary_grid(levels: int, d: int) -> np.ndarray:
    """The centres of the 3^(levels+1) cells per axis of [-1, 1] (3^((levels+1) d)
    points): each lies in K_levels or at L-infinity distance >= 3^-(levels+1) from it."""
    m = 3 ** (levels + 1)
    axis = -1.0 + (2.0 * np.arange(m) + 1.0) / m
    return np.array(np.meshgrid(*[axis] * d, indexing="ij")).reshape(d, -1).T


def grid_check(levels: int, d: int, member) -> dict[str, float]:
    """Build the network with margin 3^-(levels+1), evaluate it on the ternary grid and
    compare sign(f) with ``member(x)`` (K_levels membership): the counts of grid points,
    of positives, of errors, the depth (affine layers, ``net_depth``) and the largest
    width (``net_width``); and
    whether f is exactly 1 on every positive."""
    margin = 3.0 ** -(levels + 1)
    layers = cantor_network(levels, d, margin)
    x = ternary_grid(levels, d)
    f = forward(layers, x)
    inside = member(x)
    return {"points": int(len(x)), "positives": int(inside.sum()),
            "errors": int(np.sum((f > 0) != inside)),
            "exact_on_positives": bool(np.all(f[inside] == 1.0)),
            "max_negative_output": float(f[~inside].max()) if (~inside).any() else None,
            "net_depth": len(layers), "net_width": max(w.shape[1] for w, _ in layers[:-1])}
