"""The networks of the pooling-geometry study: a convolutional arithmetic circuit (ConvAC)
computed in log space, and ReLU networks with average or max pooling, each with square or
mirror pooling windows.

Both follow the networks of Cohen & Shashua's blob experiment (ICLR 2017; the Caffe nets
of HUJI-Deep/inductive-pooling): a binary image enters as M = 2 indicator ("one-hot")
channels; every hidden level is a 1x1 convolution of ``channels`` channels followed by
2x2 pooling with stride 2, down to a single position; a last 1x1 layer gives the two
class scores.

* **ConvAC** (``ConvAC``): every quantity is a logarithm. A 1x1 convolution with
  positive weights exp(W) is ``log sum_c exp(W[g, c] + h_c)`` (a log-sum-exp, computed
  with the channel maximum taken out, so it never overflows), and product pooling is the
  sum of the window's logs. The first level reads the pixel's template index, so the
  log of an indicator (-inf) never appears: its output is ``W1[g, x]``. Every value is a
  finite sum of finite numbers.
* **ReLU network** (``ReLUNet``): 1x1 convolution, ReLU, then average or max pooling.

**Mirror pooling** (:func:`mirror_permute`): before each pooling, the positions of the
map are permuted so that the 2x2 window at (a, b) of the permuted map holds the
original positions (a, b), (a, w-1-b), (h-1-a, b) and (h-1-a, w-1-b): each window joins
a position with its left-right, top-bottom and central reflections (the paper's "mirror"
geometry). Square pooling is the plain contiguous window.

**How the forward pass runs.** A 1x1 convolution and every elementwise step commute
with a permutation of positions, so the permutations of every level compose into one
permutation of the input pixels (:func:`mirror_input_order`): the mirror network is the
square network read on permuted pixels, and both run the same code. Maps are kept
channels-last, (b, H, W, C): a 1x1 convolution is one matmul over the channel axis and a
2x2 sum or mean pooling is three elementwise operations on strided views
(:func:`pool_positions`),
which batch over the stacked models without the copies that ``vmap`` of ``conv2d`` and
``avg_pool2d`` (and the per-level permutations) make on small maps. The channels-first
functions
(:func:`log_conv1x1`, :func:`log_product_pool`, :func:`mirror_permute`) are the
definitions the tests compare the networks against.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ConvAC", "ReLUNet", "build_network", "levels_for", "log_conv1x1",
           "log_product_pool", "mirror_input_order", "mirror_permute", "mirror_windows",
           "pool_positions"]

Geometry = Literal["square", "mirror"]


def levels_for(size: int) -> int:
    """The number of 2x2 pooling levels from a ``size`` x ``size`` image down to 1x1."""
    levels = int(round(math.log2(size))) if size > 0 else -1
    if size < 2 or 2**levels != size:
        raise ValueError(f"the image size must be a power of 2 (>= 2), got {size}")
    return levels


def _mirror_axis(h: Tensor, dim: int) -> Tensor:
    """Reorder ``dim`` (even length n) as 0, n-1, 1, n-2, ...: positions i and n-1-i
    become neighbours 2i and 2i+1."""
    n = h.shape[dim]
    first, second = h.split(n // 2, dim=dim)
    pairs = torch.stack([first, second.flip(dim)], dim=dim + 1)
    return pairs.flatten(dim, dim + 1)


def mirror_permute(h: Tensor) -> Tensor:
    """``h`` (..., H, W) with its rows and columns permuted so that 2x2 pooling windows
    gather reflections: window (a, b) holds original positions (a, b), (a, W-1-b),
    (H-1-a, b), (H-1-a, W-1-b). Views, a flip and a copy; no gather index."""
    return _mirror_axis(_mirror_axis(h, h.dim() - 2), h.dim() - 1)


def mirror_windows(size: int) -> list[set[tuple[int, int]]]:
    """The original positions each 2x2 window of :func:`mirror_permute` gathers on a
    ``size`` x ``size`` map, read off the permutation of a position map (for tests and
    the rank analysis)."""
    index = torch.arange(size * size).view(size, size)
    permuted = mirror_permute(index)
    out = []
    for a in range(size // 2):
        for b in range(size // 2):
            cell = permuted[2 * a:2 * a + 2, 2 * b:2 * b + 2].flatten().tolist()
            out.append({divmod(int(p), size) for p in cell})
    return out


def mirror_input_order(size: int) -> Tensor:
    """The permutation of the ``size`` x ``size`` input pixels (flat, row-major) under
    which square pooling at every level gathers what mirror pooling (:func:`mirror_permute`
    before each pooling) gathers: ``x.flatten(-2)[..., order]`` read as a square image.
    Level 1 permutes pixels; level l permutes the 2^(l-1)-pixel blocks that level l-1
    pooled, so its permutation is :func:`mirror_permute` of the block grid."""
    levels_for(size)
    h = mirror_permute(torch.arange(size * size).view(size, size))
    block = 2
    while block < size:
        n = size // block
        blocks = h.view(n, block, n, block).permute(0, 2, 1, 3)  # (n, n, block, block)
        blocks = _mirror_axis(_mirror_axis(blocks, 0), 1)
        h = blocks.permute(0, 2, 1, 3).reshape(size, size)
        block *= 2
    return h.flatten()


def pool_positions(h: Tensor, reduce: Literal["sum", "mean", "max"] = "sum") -> Tensor:
    """2x2 pooling (stride 2) of a channels-last map ``h`` (b, H, W, C): the sum or mean
    of each window as elementwise additions of two strided halvings, the maximum with
    ``max_pool2d`` on the same memory (its backward gives a window's gradient to one
    maximum, as a lone network's does)."""
    if reduce == "max":  # max_pool2d on the channels-last layout (one index per window)
        return F.max_pool2d(h.permute(0, 3, 1, 2), 2).permute(0, 2, 3, 1)
    b, height, width, c = h.shape
    op = torch.add
    rows = h.reshape(b, height // 2, 2, width * c)
    h = op(rows[:, :, 0], rows[:, :, 1]).reshape(b, height // 2, width // 2, 2 * c)
    out = op(h[..., :c], h[..., c:])
    return out * 0.25 if reduce == "mean" else out


def _log_matmul(h: Tensor, log_weight: Tensor) -> Tensor:
    """:func:`log_conv1x1` on a channels-last map (..., C): the channel maximum out, one
    matmul of the exponentials, the log back."""
    m = h.amax(dim=-1, keepdim=True).detach()
    return m + torch.log(torch.exp(h - m) @ torch.exp(log_weight).T)


def _pixels(x: Tensor, templates: int, geometry: Geometry) -> Tensor:
    """One-hot pixels (b, H, W, templates), permuted for mirror pooling."""
    t = x[:, 0].long()
    if geometry == "mirror":
        size = t.shape[-1]
        t = t.flatten(1)[:, _order(size, t.device)].view(-1, size, size)
    return F.one_hot(t, templates)


_ORDERS: dict[tuple[int, str], Tensor] = {}


def _order(size: int, device: torch.device) -> Tensor:
    key = (size, str(device))
    if key not in _ORDERS:
        _ORDERS[key] = mirror_input_order(size).to(device)
    return _ORDERS[key]


def log_product_pool(h: Tensor) -> Tensor:
    """Product pooling over 2x2 windows (stride 2) of a log-space map ``h`` (..., C, H, W):
    the log of the window's product is the sum of its logs."""
    return F.avg_pool2d(h, 2) * 4.0


def log_conv1x1(h: Tensor, log_weight: Tensor) -> Tensor:
    """A 1x1 convolution with positive weights in log space: out[g] = log sum_c
    exp(log_weight[g, c]) exp(h[c]), for ``h`` (b, C, H, W), ``log_weight`` (G, C).

    The channel maximum m is taken out first: out = m + log sum_c exp(w[g, c]) exp(h[c] - m),
    where every exp(h - m) <= 1 and the channel holding m contributes exp(w) > 0, so the
    log is finite. m is detached: the result does not depend on it (its derivative in m
    is exactly 0)."""
    m = h.amax(dim=1, keepdim=True).detach()
    scaled = F.conv2d(torch.exp(h - m), torch.exp(log_weight)[:, :, None, None])
    return m + torch.log(scaled)


class ConvAC(nn.Module):
    """A ConvAC on ``size`` x ``size`` maps of template indices in {0, ..., templates-1}
    (a binary image: templates = 2). ``depth="deep"``: log2(size) levels of 1x1 conv and
    2x2 product pooling; ``"shallow"``: one 1x1 conv, then one global product pooling.
    Output: log class scores (b, classes). Log-space weights start uniform in [-1, 1]
    (the original's offsets filler)."""

    def __init__(self, size: int, channels: int, geometry: Geometry = "square",
                 depth: Literal["deep", "shallow"] = "deep", templates: int = 2,
                 classes: int = 2) -> None:
        super().__init__()
        self.levels = levels_for(size) if depth == "deep" else 1
        self.geometry, self.depth, self.templates = geometry, depth, templates
        self.first = nn.Parameter(torch.empty(channels, templates).uniform_(-1.0, 1.0))
        self.hidden = nn.ParameterList(
            nn.Parameter(torch.empty(channels, channels).uniform_(-1.0, 1.0))
            for _ in range(self.levels - 1))
        self.out = nn.Parameter(torch.empty(classes, channels).uniform_(-1.0, 1.0))

    def forward(self, x: Tensor) -> Tensor:
        # The first level's log conv of log one-hot inputs is a lookup of its weights;
        # maps are channels-last (b, H, W, C), the mirror windows an order of the pixels.
        geometry = self.geometry if self.depth == "deep" else "square"
        h = _pixels(x, self.templates, geometry).to(self.first.dtype) @ self.first.T
        for level in range(self.levels):
            if level > 0:
                h = _log_matmul(h, self.hidden[level - 1])
            if self.depth == "shallow":
                h = h.sum(dim=(1, 2), keepdim=True)  # product over every position
            else:
                h = pool_positions(h)  # product pooling: the sum of the window's logs
        return _log_matmul(h, self.out).flatten(1)


class ReLUNet(nn.Module):
    """A ReLU network on binary ``size`` x ``size`` images: one-hot input channels, then
    log2(size) levels of 1x1 conv, ReLU and 2x2 average or max pooling (square or mirror
    windows), then a linear layer to ``classes`` scores. Xavier-uniform weights and zero
    biases (the original's fillers)."""

    def __init__(self, size: int, channels: int, geometry: Geometry = "square",
                 pool: Literal["avg", "max"] = "avg", templates: int = 2,
                 classes: int = 2) -> None:
        super().__init__()
        self.levels = levels_for(size)
        self.geometry, self.pool, self.templates = geometry, pool, templates
        widths = [templates, *[channels] * self.levels]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 1) for a, b in zip(widths, widths[1:]))
        self.out = nn.Linear(channels, classes)
        for layer in [*self.convs, self.out]:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor) -> Tensor:
        # channels-last (b, H, W, C): each 1x1 convolution one matmul; the mirror windows
        # an order of the pixels (see the module docstring)
        h = _pixels(x, self.templates, self.geometry).to(self.out.weight.dtype)
        reduce = "mean" if self.pool == "avg" else "max"
        for conv in self.convs:
            h = torch.relu(F.linear(h, conv.weight[:, :, 0, 0], conv.bias))
            h = pool_positions(h, reduce)
        return self.out(h.flatten(1))


def build_network(network: str, size: int, channels: int, geometry: Geometry) -> nn.Module:
    """The trained networks by name: ``convac``, ``relu_avg``, ``relu_max``."""
    if network == "convac":
        return ConvAC(size, channels, geometry)
    if network in ("relu_avg", "relu_max"):
        return ReLUNet(size, channels, geometry, pool=network.removeprefix("relu_"))
    raise ValueError(f"unknown network {network!r}")
