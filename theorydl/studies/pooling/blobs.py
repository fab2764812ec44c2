"""The blob images of Cohen & Shashua's pooling-geometry experiment, their two scores
and the two binary tasks.

An image (``size`` x ``size``, a power of 2; the paper: 32) shows one blob, drawn as the
original generator (HUJI-Deep/inductive-pooling, ``exp/blob/generate_blob.py``) does:

1. an ellipse centred in the image, as wide as the image, of random height
   2^u / 2 with u uniform in [log2(size) - 1.5, log2(size)];
2. warped: column i is shifted vertically by int(a sin(f i)), a uniform in
   [0, 4 size / 32], f uniform in [0, 3 (2 pi / size)];
3. rotated by an angle uniform in [0, 180) degrees (cubic spline interpolation, as
   scipy.ndimage and the original do by default; so is the shrinking);
4. shrunk to a random tile of side 2^k, k uniform in {log2(size) - 1, log2(size)}, placed
   at a random tile-aligned position;
5. each pixel of the tile dropped with probability p (p uniform in [0.1, 0.33]); with
   probability 1/2 the drop mask is itself left-right symmetric;
6. binarised (> 0.1); an empty image is drawn again.

Scores (Cohen & Shashua 2017, Sec. 6):

* **closedness** = |I| / |closing(I)| (binary closing with the 3x3 cross, the image
  padded by one empty pixel): 1 for a shape without holes or gaps;
* **symmetry** = |T and fliplr(T)| / |T| over the blob's tile T (the original measures
  it on the tile, where the blob's axis lies; on a full-image tile this is the image).

Labels, per split and per score: the lowest 40 % are 0, the highest 40 % are 1, the
middle 20 % are dropped (:func:`extreme_labels`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

__all__ = ["Blobs", "closedness", "extreme_labels", "load_blobs", "make_blobs", "save_blobs",
           "symmetry"]

_CROSS = ndimage.generate_binary_structure(2, 1)


def closedness(image: np.ndarray) -> float:
    """|I| / |closing(I)| of a binary image (padded by one empty pixel so that the
    closing does not reach past the border); 1.0 for a closed shape."""
    image = np.asarray(image, dtype=bool)
    if not image.any():
        raise ValueError("closedness of an empty image is undefined")
    closed = ndimage.binary_closing(np.pad(image, 1), structure=_CROSS)[1:-1, 1:-1]
    return float(image.sum() / closed.sum())


def symmetry(tile: np.ndarray) -> float:
    """|T and fliplr(T)| / |T| of a binary tile T: 1.0 for a left-right symmetric one."""
    tile = np.asarray(tile, dtype=bool)
    if not tile.any():
        raise ValueError("symmetry of an empty image is undefined")
    return float((tile & tile[:, ::-1]).sum() / tile.sum())


def extreme_labels(scores: np.ndarray, fraction: float = 0.4) -> np.ndarray:
    """Labels by rank: the ``floor(fraction n)`` lowest scores 0, as many highest 1, the
    rest -1 (dropped). Ties are broken by position (a stable sort), as the original's
    ``sorted`` does."""
    scores = np.asarray(scores)
    k = int(len(scores) * fraction)
    order = np.argsort(scores, kind="stable")
    labels = np.full(len(scores), -1, dtype=np.int64)
    labels[order[:k]] = 0
    labels[order[len(scores) - k:]] = 1
    return labels


@dataclass(frozen=True)
class Blobs:
    """``images`` (n, size, size) bool; ``closedness`` and ``symmetry`` (n,) scores."""

    images: np.ndarray
    closedness: np.ndarray
    symmetry: np.ndarray


def _one_blob(rng: np.random.Generator, size: int) -> tuple[np.ndarray, tuple[int, int, int]]:
    k = int(round(math.log2(size)))
    yy, xx = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    a = size / 2
    b = int(2 ** rng.uniform(k - 1.5, k) / 2)
    centre = size / 2 - 0.5
    image = (((xx - centre) / a) ** 2 + ((yy - centre) / max(b, 1e-9)) ** 2 < 1).astype(float)
    warp = rng.uniform(0, 4 * size / 32) * np.sin(
        rng.uniform(0, 3 * 2 * np.pi / size) * np.arange(size))
    for i in range(size):
        image[:, i] = np.roll(image[:, i], int(warp[i]))
    image = ndimage.rotate(image, rng.uniform(0, 180.0), reshape=False)
    tile_k = int(rng.integers(k - 1, k + 1))
    side = 2**tile_k
    r0 = side * int(rng.integers(0, 2 ** (k - tile_k)))
    c0 = side * int(rng.integers(0, 2 ** (k - tile_k)))
    small = ndimage.zoom(image, side / size)
    image = np.zeros((size, size))
    image[r0:r0 + side, c0:c0 + side] = small
    p = rng.uniform(0.1, 0.33)
    if rng.random() < 0.5:  # a drop mask that is itself left-right symmetric
        half = rng.random((side, side // 2)) < p
        drop = np.concatenate([half, half[:, ::-1]], axis=1)
    else:
        drop = rng.random((side, side)) < p
    image[r0:r0 + side, c0:c0 + side] *= ~drop
    return image > 0.1, (r0, c0, side)


def make_blobs(n: int, size: int, seed: int | Sequence[int]) -> Blobs:
    """``n`` blob images of side ``size`` and their scores, from
    ``numpy.random.default_rng(seed)`` (deterministic)."""
    if size < 4 or 2 ** int(round(math.log2(size))) != size:
        raise ValueError(f"size must be a power of 2, >= 4; got {size}")
    rng = np.random.default_rng(seed)
    images = np.zeros((n, size, size), dtype=bool)
    cls, sym = np.zeros(n), np.zeros(n)
    i = 0
    while i < n:
        image, (r0, c0, side) = _one_blob(rng, size)
        if not image.any():
            continue
        images[i] = image
        cls[i] = closedness(image)
        sym[i] = symmetry(image[r0:r0 + side, c0:c0 + side])
        i += 1
    return Blobs(images, cls, sym)


def save_blobs(path: str | Path, size: int, n_train: int, n_test: int, seed: int) -> None:
    """Generate the training ([seed, 0]) and test ([seed, 1]) blobs and write them, with
    their scores and the parameters that made them, to ``path`` (compressed npz,
    atomically)."""
    train, test = make_blobs(n_train, size, [seed, 0]), make_blobs(n_test, size, [seed, 1])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(
        tmp, images_train=train.images, images_test=test.images,
        closedness_train=train.closedness, closedness_test=test.closedness,
        symmetry_train=train.symmetry, symmetry_test=test.symmetry,
        meta=np.array(json.dumps({"size": size, "n_train": n_train, "n_test": n_test,
                                  "seed": seed}, sort_keys=True)))
    os.replace(tmp, path)


def load_blobs(path: str | Path) -> dict:
    """What :func:`save_blobs` wrote: arrays by name, and ``meta`` as a dict."""
    with np.load(path) as f:
        out = {k: f[k] for k in f.files if k != "meta"}
        out["meta"] = json.loads(str(f["meta"]))
    return out
