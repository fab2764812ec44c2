"""Separation ranks of ConvACs, measured exactly on small grids.

A ConvAC over N = size^2 pixels, each taking one of M templates, is a function of the
template indices (d_1, ..., d_N); its **grid tensor** A[d_1, ..., d_N] is its score on
every one of the M^N images (with one-hot representation functions the grid tensor is
the coefficient tensor itself). For a partition of the pixels into I and J, the
matricisation [A]_{I,J} has the indices of I as rows and those of J as columns; its rank
is the **separation rank** of the function w.r.t. (I, J): the least number of terms
sum_k g_k(x_I) h_k(x_J) it needs. Cohen & Shashua (ICLR 2017) show that the pooling
geometry decides which partitions get a high rank: a deep network's rank on a partition
that its pooling windows never split (left/right under square pooling) is at most the
width of its top level, while partitions split inside the windows (interleaved ones for
square pooling; reflection-symmetric ones for mirror pooling) reach ranks exponential in
the depth.

Numerical care. The grid tensor is computed in float64 on a 4x4 grid with M = 2 (2^16
entries; each matricisation of a balanced partition is 2^8 x 2^8) for a ConvAC in linear
space with signed random weights, every row a random unit vector (see
:func:`random_weights`), and divided by its largest magnitude before the SVD. The rank
counts singular values above ``tolerance`` times the largest (default 1e-9: far above
float64's noise, about 256 x 2.2e-16 relative, and far below the smallest genuine
singular value seen at these sizes). :func:`separation_rank` also returns the gap
s_rank / s_{rank+1}; the analysis reports the smallest gap, and a gap of many orders of
magnitude (at these sizes: > 1e6) says the rank does not depend on where the threshold
sits. The trained ConvAC works in log space with positive weights exp(W); the ranks use
the same architecture in linear space, where its function is the same multilinear form
(a test checks the log-space network against direct products).

Weight sharing caps the ranks below the matrix size: every pixel uses the same 1x1
weights, so a window's tensor is symmetric in its pixels, and on a 4x4 grid with M = 2 a
deep network reaches 3^4 = 81 on the partitions its windows split (each window's two
pixels on one side span the 3 symmetric tensors of R^2 x R^2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from theorydl.studies.pooling.networks import levels_for, mirror_permute

__all__ = ["PARTITIONS", "RankResult", "convac_ranks", "grid_tensor", "partition",
           "random_weights", "separation_rank"]

PARTITIONS = ("left_right", "top_bottom", "checkerboard", "odd_even_columns")


def partition(name: str, size: int) -> np.ndarray:
    """A (size, size) bool mask: True on the pixels of part I."""
    rows, cols = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    if name == "left_right":
        return cols < size // 2
    if name == "top_bottom":
        return rows < size // 2
    if name == "checkerboard":
        return (rows + cols) % 2 == 0
    if name == "odd_even_columns":
        return cols % 2 == 0
    raise ValueError(f"unknown partition {name!r}; known: {', '.join(PARTITIONS)}")


def _window_order(size: int, geometry: str) -> np.ndarray:
    """(size/2)^2 x 4 pixel indices: the positions each 2x2 pooling window gathers, in
    the order of the pooled map's positions (row-major)."""
    index = torch.arange(size * size).view(size, size)
    if geometry == "mirror":
        index = mirror_permute(index)
    blocks = index.view(size // 2, 2, size // 2, 2).permute(0, 2, 1, 3)
    return blocks.reshape(-1, 4).numpy()


def grid_tensor(size: int, templates: int, weights: Sequence[np.ndarray], geometry: str,
                depth: str, normalise: bool = True) -> np.ndarray:
    """The grid tensor of a linear-space ConvAC with one-hot representation functions:
    its score on every one of the templates^(size^2) images, as a tensor with one axis
    of length ``templates`` per pixel (row-major), divided by its largest magnitude
    (``normalise``).

    ``weights``: the 1x1 convolutions in linear space, first (r, templates), then one
    (r, r) per further level, then the output row (r,). ``depth="deep"``: log2(size)
    levels of 2x2 product pooling (square or mirror windows); ``"shallow"``: one level,
    a product over every pixel. Computed in float64 by evaluating the network on all
    images at once (digits: (images, pixels))."""
    n = size * size
    codes = np.arange(templates**n)
    digits = (codes[:, None] // templates ** np.arange(n - 1, -1, -1)) % templates
    h = weights[0][:, digits]  # (r, images, positions)
    level, side = 0, size
    while True:
        if depth == "shallow":
            h = h.prod(axis=2, keepdims=True)
        else:
            h = h[:, :, _window_order(side, geometry)].prod(axis=3)
            side //= 2
        level += 1
        if h.shape[2] == 1:
            break
        h = np.einsum("gc,cip->gip", weights[level], h)
    out = np.einsum("c,ci->i", weights[-1], h[:, :, 0])
    if normalise:
        out = out / np.abs(out).max()
    return out.reshape((templates,) * n)


def random_weights(size: int, templates: int, channels: int, depth: str, seed: int
                   ) -> list[np.ndarray]:
    """Random linear-space weights of a ConvAC (the shapes :func:`grid_tensor` takes),
    from ``numpy.random.default_rng(seed)``: every row a uniformly random unit vector
    (normalised standard normal). Signed and of unit norm, so that no term of the
    decomposition dwarfs another: positive weights (exp of log-space ones) concentrate
    the spectrum on one direction, and unnormalised rows spread the terms' sizes over
    many orders of magnitude; either blurs the rank."""
    rng = np.random.default_rng(seed)
    levels = levels_for(size) if depth == "deep" else 1
    shapes = [(channels, templates), *[(channels, channels)] * (levels - 1), (1, channels)]
    weights = [rng.standard_normal(shape) for shape in shapes]
    weights = [w / np.linalg.norm(w, axis=1, keepdims=True) for w in weights]
    return [*weights[:-1], weights[-1][0]]


@dataclass(frozen=True)
class RankResult:
    rank: int
    """Singular values above tolerance x the largest."""
    full: int
    """The most the matricisation could have: min(rows, columns)."""
    gap: float
    """s_rank / s_{rank+1} (inf when the rank is full)."""


def separation_rank(tensor: np.ndarray, mask: np.ndarray, tolerance: float = 1e-9
                    ) -> RankResult:
    """The rank of the matricisation of ``tensor`` (one axis per pixel, row-major) with
    the pixels where ``mask`` is True as rows."""
    flat = mask.ravel()
    rows = [p for p in range(flat.size) if flat[p]]
    cols = [p for p in range(flat.size) if not flat[p]]
    matrix = tensor.transpose(rows + cols).reshape(int(np.prod([tensor.shape[p] for p in rows])),
                                                   -1)
    s = np.linalg.svd(matrix, compute_uv=False)
    rank = int((s > tolerance * s[0]).sum())
    gap = float(s[rank - 1] / s[rank]) if rank < len(s) and s[rank] > 0 else float("inf")
    return RankResult(rank, len(s), gap)


def convac_ranks(size: int, templates: int, channels: Sequence[int], seeds: Sequence[int],
                 tolerance: float = 1e-9) -> list[dict]:
    """Separation ranks of random ConvACs: one row per (depth, geometry, channels, seed,
    partition) with ``rank``, ``full`` and ``gap``. Shallow networks pool once over the
    whole grid, so their geometry does not matter: only "square" is listed for them."""
    rows = []
    for depth in ("deep", "shallow"):
        for geometry in (("square", "mirror") if depth == "deep" else ("square",)):
            for r in channels:
                for seed in seeds:
                    weights = random_weights(size, templates, r, depth, seed)
                    tensor = grid_tensor(size, templates, weights, geometry, depth)
                    for name in PARTITIONS:
                        res = separation_rank(tensor, partition(name, size), tolerance)
                        rows.append({"depth": depth, "geometry": geometry, "channels": r,
                                     "seed": seed, "partition": name, "rank": res.rank,
                                     "full": res.full, "gap": res.gap})
    return rows
