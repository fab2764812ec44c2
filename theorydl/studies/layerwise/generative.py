"""The hierarchical generative model of Malach & Shalev-Shwartz (2018), Figure 1.

What the paper says (abstract, introduction, Figure 1): an image is made coarse to fine. A
high-level *semantic image* is drawn given the label; each of its cells (a semantic class)
is refined into an s x s patch of lower-level classes, drawn from a distribution of that
class; the lowest classes become s x s patches of pixels. In Figure 1, a 3 x 3 image of
stroke classes draws a digit, refined to 9 x 9 classes, then to 27 x 27 pixels. The exact
distributions, sizes and noise are not published; everything below the structure is the
project's choice:

* levels ``D`` (top, a grid of side s) down to 1 (side s**D), then pixels (side
  s**(D + 1)); ``classes[i - 1]`` classes at level i;
* the top image given y: a fixed template in C_D^{s x s} per label (distinct for
  distinct labels), each cell replaced by a uniform class with probability ``top_noise``;
* class c of level i >= 2 owns ``variants`` patches in C_{i-1}^{s x s}, one drawn
  uniformly per cell; the patches of all classes are distinct (disjoint supports: each
  coarse image is a function of the fine one);
* class c of level 1 is one binary pixel patch in {0, 1}^{s x s} (the classes' patches
  pairwise at Hamming distance >= 3) plus independent N(0, ``noise``^2) noise on every
  pixel: its patch distribution is that Gaussian (the lowest classes "map to pixel
  vectors, with noise").

All of it is fixed by ``seed`` (``numpy.random.default_rng``); a sample by its own seed.
Every example carries its latent classes at every level (:class:`Sample`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["HierarchicalModel", "Sample"]

#: Examples drawn from one generator (see :meth:`HierarchicalModel.sample`).
BLOCK = 256

#: Least Hamming distance between the pixel patches of two level-1 classes: a noise of a few tenths per pixel then rarely makes one look like another.
MIN_HAMMING = 3


@dataclass(frozen=True)
class Sample:
    """``n`` examples: ``x`` (n, side, side) float32 pixels, ``y`` (n,) int64 labels and
    ``latents[i - 1]`` (n, s**(D - i + 1), s**(D - i + 1)) int64, the classes of level i
    (``latents[-1]`` is the top image)."""

    x: np.ndarray
    y: np.ndarray
    latents: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return len(self.y)

    def take(self, idx) -> "Sample":
        """The examples ``idx`` (an index array or a slice)."""
        return Sample(self.x[idx], self.y[idx], tuple(z[idx] for z in self.latents))


def _refine(grid: np.ndarray, patches: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Replace every cell of ``grid`` (n, g, g) ints by one of its class's patches
    (``patches`` (classes, variants, s, s)), drawn uniformly: (n, g s, g s)."""
    n, g, _ = grid.shape
    _, variants, s, _ = patches.shape
    pick = rng.integers(variants, size=grid.shape)
    blocks = patches[grid, pick]  # (n, g, g, s, s)
    return blocks.transpose(0, 1, 3, 2, 4).reshape(n, g * s, g * s)


@dataclass(frozen=True)
class HierarchicalModel:
    """The model of the module docstring. Construction draws every template and patch."""

    s: int = 3
    """Patch side: every level refines a cell into s x s cells (or pixels)."""
    classes: tuple[int, ...] = (8, 4)
    """Classes per latent level, finest (level 1) first; D = len(classes)."""
    n_labels: int = 4
    """Labels y (one top template each)."""
    variants: int = 2
    """Patches each class of level >= 2 owns (its patch distribution: uniform over them)."""
    top_noise: float = 0.2
    """Probability that a cell of the top image is a uniform class instead of the template's."""
    noise: float = 0.2
    """Standard deviation of the Gaussian pixel noise."""
    seed: int = 0
    """Seed of the templates and patches."""
    templates: np.ndarray = field(init=False, repr=False, compare=False)
    """(n_labels, s, s) top images of the labels."""
    patches: tuple[np.ndarray, ...] = field(init=False, repr=False, compare=False)
    """``patches[0]``: level 1's pixel patches (C_1, 1, s, s) float; ``patches[i -
    1]`` for i >= 2: level i's class patches (C_i, variants, s, s) ints in C_{i-1}."""

    def __post_init__(self) -> None:
        s, classes = self.s, tuple(int(c) for c in self.classes)
        object.__setattr__(self, "classes", classes)
        if s < 2 or not classes or min(classes) < 2 or self.n_labels < 2 or self.variants < 1:
            raise ValueError("need s >= 2, at least one level of >= 2 classes, >= 2 labels "
                             "and >= 1 variant")
        if not 0.0 <= self.top_noise <= 1.0 or self.noise < 0:
            raise ValueError("need 0 <= top_noise <= 1 and noise >= 0")
        rng = np.random.default_rng(self.seed)
        top = classes[-1]
        if self.n_labels > top ** (s * s):
            raise ValueError("more labels than top images")
        templates = _distinct(rng, self.n_labels, s * s, top, 1)
        patches = [_distinct(rng, classes[0], s * s, 2, MIN_HAMMING)
                   .reshape(classes[0], 1, s, s).astype(np.float32)]
        for below, here in zip(classes, classes[1:]):
            patches.append(_distinct(rng, here * self.variants, s * s, below, 1)
                           .reshape(here, self.variants, s, s))
        object.__setattr__(self, "templates", templates.reshape(self.n_labels, s, s))
        object.__setattr__(self, "patches", tuple(patches))

    @property
    def depth(self) -> int:
        """D, the latent levels."""
        return len(self.classes)

    @property
    def side(self) -> int:
        """Pixels per image side, s**(D + 1)."""
        return self.s ** (self.depth + 1)

    def grid(self, level: int) -> int:
        """The side of level ``level``'s grid (0: the pixels), s**(D - level + 1)."""
        return self.s ** (self.depth - level + 1)

    def sample(self, n: int, seed: int) -> Sample:
        """``n`` examples, labels uniform over n_labels, drawn in blocks of ``BLOCK``: block
        b from ``numpy.random.default_rng([seed, b])``. So the same (n, seed) give the same
        arrays, and the first m examples of ``sample(n, seed)`` are ``sample(m, seed)``
        (nested training sets)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        blocks = [self._block(BLOCK, np.random.default_rng([seed, b]))
                  for b in range(max(1, -(-n // BLOCK)))]
        return Sample(np.concatenate([x.x for x in blocks]),
                      np.concatenate([x.y for x in blocks]),
                      tuple(np.concatenate(z) for z in zip(*(x.latents for x in blocks)))
                      ).take(slice(0, n))

    def _block(self, n: int, rng: np.random.Generator) -> Sample:
        y = rng.integers(self.n_labels, size=n)
        top = self.templates[y].copy()
        flip = rng.random(top.shape) < self.top_noise
        top[flip] = rng.integers(self.classes[-1], size=int(flip.sum()))
        latents = [top]
        for patches in self.patches[:0:-1]:  # level D's patches down to level 2's
            latents.append(_refine(latents[-1], patches, rng))
        latents.reverse()  # level 1 first
        x = _refine(latents[0], self.patches[0], rng)
        if self.noise > 0:
            x = x + rng.normal(0.0, self.noise, size=x.shape)
        return Sample(x.astype(np.float32), y.astype(np.int64),
                      tuple(z.astype(np.int64) for z in latents))


def _distinct(rng: np.random.Generator, count: int, length: int, base: int,
              min_distance: int) -> np.ndarray:
    """``count`` vectors (count, length) of ints in [0, base), pairwise at Hamming distance
    >= ``min_distance``, drawn uniformly and kept greedily (rejection)."""
    kept: list[np.ndarray] = []
    for _ in range(10_000 * count):
        v = rng.integers(base, size=length)
        if all(int((v != u).sum()) >= min_distance for u in kept):
            kept.append(v)
            if len(kept) == count:
                return np.stack(kept)
    raise ValueError(f"could not draw {count} vectors of length {length} over {base} symbols "
                     f"at distance >= {min_distance}")
