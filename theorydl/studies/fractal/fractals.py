"""Fractal distributions of Malach & Shalev-Shwartz (2019): an iterated function system
(IFS) on the cube K_0 = [-1, 1]^d, its approximations K_j, and the labelled
distributions D_n whose difficulty is set by an *approximation curve* P(j).

An IFS here is r affine maps F_i(x) = x / s + b_i with disjoint images (subcubes of K_0
touching at most on their boundaries); K_j = union_i F_i(K_{j-1}) is the union of r^j
cells of half-width s^-j. D_n puts mass 1/2 on positives, uniform on K_n, and 1/2 on
negatives, a mixture over levels l = 1..n of uniform draws from the gaps of level l
(points of K_{l-1} outside K_l). The curve P(j) = 1 - Pr[x in K_j and y = -1] rises from
P(0) = 1/2 to P(n) = 1: a coarse curve puts the negative mass at coarse levels, a fine
curve at fine ones.

The sampler follows the authors' generator (descend from the top; at level l stop with
probability q_l and draw a negative in the current cell's gap, else move to a random
child cell; at the bottom draw a positive), with stop probabilities from a *curve
degree* ``pdeg`` (see :func:`stop_probabilities`). Where their 2-D Cantor generator
draws negatives from the central subcube only, ``negatives="original"`` does the same and
``"complement"`` draws from the whole gap, as the paper defines D_n (the two agree in
1-D and for the other fractals, whose original generator already uses the complement).

Everything is numpy, seeded by an explicit ``numpy.random.Generator``; exact in the sense
that the sampled law is the stated one (no rejection bias: rejection sampling of a gap
is exact), and the analytic curve (:func:`analytic_curve`) is the sampler's own law.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["FRACTALS", "IFS", "analytic_curve", "curve_label", "empirical_curve", "get_ifs",
           "level_of", "member", "place", "sample", "stop_probabilities",
           "theorem_level"]


@dataclass(frozen=True)
class IFS:
    """r maps F_i(x) = x / scale + shifts[i] on [-1, 1]^d; ``central`` says the gap of a
    cell contains its central subcube of the same size (true of the Cantor dust: the
    original generator's negatives come from there)."""

    name: str
    scale: float
    shifts: np.ndarray  # (r, d)
    central: bool = False

    @property
    def d(self) -> int:
        return int(self.shifts.shape[1])

    @property
    def r(self) -> int:
        return int(self.shifts.shape[0])


def _cantor(d: int) -> IFS:
    corners = np.array(np.meshgrid(*[[-2 / 3, 2 / 3]] * d, indexing="ij")).reshape(d, -1).T
    return IFS(f"cantor{d}d", 3.0, corners, central=True)


FRACTALS = ("cantor", "sierpinski", "vicsek", "pentaflake")


def get_ifs(name: str, d: int = 2) -> IFS:
    """The IFS by name: ``cantor`` in any dimension d (2^d corner maps, ratio 1/3; d = 1 is
    the Cantor set on [-1, 1]); ``sierpinski`` (3 maps of ratio 1/2 on the square),
    ``vicsek`` (4 corners and the centre, 1/3) and ``pentaflake`` (5 cells, 1/3) in 2-D,
    as in the authors' ``ifs.py``."""
    if name == "cantor":
        return _cantor(d)
    if d != 2:
        raise ValueError(f"{name} is defined in 2-D only, got d = {d}")
    if name == "sierpinski":
        return IFS(name, 2.0, np.array([[0.0, 0.5], [-0.5, -0.5], [0.5, -0.5]]))
    if name == "vicsek":
        t = 2 / 3
        return IFS(name, 3.0, np.array([[-t, -t], [-t, t], [t, -t], [t, t], [0.0, 0.0]]))
    if name == "pentaflake":
        t = 2 / 3
        return IFS(name, 3.0, np.array([[-t, 0.0], [t, 0.0], [0.0, t], [-1 / 3, -t],
                                         [1 / 3, -t]]))
    raise ValueError(f"unknown fractal {name!r}; expected one of {FRACTALS}")


def stop_probabilities(levels: int, pdeg: int) -> np.ndarray:
    """Stop probabilities q_l, l = 1 (coarsest) .. ``levels`` (finest), of the curve of
    degree ``pdeg``, as in the authors' code.

    Level l gets weight w_l = l^pdeg for pdeg < 10 (0: every level alike; larger: the
    mass moves to finer levels), and for pdeg >= 10 weight 1 on the pdeg - 9 finest
    levels and 0 elsewhere (10: the finest level only). Then q_l = 1 - 2^(-w_l / sum w),
    so prod (1 - q_l) = 1/2: the classes are balanced.
    """
    if levels < 1 or pdeg < 0:
        raise ValueError("need levels >= 1 and pdeg >= 0")
    if pdeg < 10:
        w = np.arange(1, levels + 1, dtype=np.float64) ** pdeg
    else:
        w = np.zeros(levels)
        w[-min(levels, pdeg - 9):] = 1.0
    return 1.0 - 0.5 ** (w / w.sum())


def analytic_curve(levels: int, pdeg: int) -> np.ndarray:
    """P(j), j = 0..levels, of the sampler's law: 1/2 + sum_{l <= j} Pr[stop at l]."""
    q = stop_probabilities(levels, pdeg)
    reach = np.concatenate([[1.0], np.cumprod(1.0 - q)[:-1]])
    return np.concatenate([[0.5], 0.5 + np.cumsum(reach * q)])


def curve_label(pdeg: int) -> str:
    """The metrics key of a curve: ``pdeg<k>``."""
    return f"pdeg{pdeg}"


def _gap(ifs: IFS, n: int, rng: np.random.Generator, negatives: str) -> np.ndarray:
    """n points uniform on the gap of K_0 (K_0 minus the r child cells), or on its
    central subcube (``negatives="original"`` for the Cantor dust)."""
    half = 1.0 / ifs.scale
    if negatives == "original" and ifs.central:
        return rng.uniform(-half, half, size=(n, ifs.d))
    out = np.empty((0, ifs.d))
    while len(out) < n:  # rejection: exact uniform on the gap
        u = rng.uniform(-1.0, 1.0, size=(2 * (n - len(out)) + 16, ifs.d))
        inside = np.zeros(len(u), dtype=bool)
        for b in ifs.shifts:
            inside |= np.all(np.abs(u - b) <= half, axis=1)
        out = np.concatenate([out, u[~inside]])
    return out[:n]


def sample(ifs: IFS, levels: int, pdeg: int, n: int, rng: np.random.Generator, *,
           negatives: Literal["original", "complement"] = "original"
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n labelled points of D_levels with the curve of degree ``pdeg``.

    Returns x (n, d) float64, y (n,) in {-1, +1} and the stop level (n,) int64: l in
    1..levels for a negative drawn from a level-l gap, 0 for a positive.
    """
    q = stop_probabilities(levels, pdeg)
    stop = np.zeros(n, dtype=np.int64)
    for l in range(1, levels + 1):  # the first level where each point stops, if any
        fresh = (stop == 0) & (rng.random(n) < q[l - 1])
        stop[fresh] = l
    x = place(ifs, levels, stop, rng, negatives=negatives)
    return x, np.where(stop == 0, 1, -1), stop


def place(ifs: IFS, levels: int, stop: np.ndarray, rng: np.random.Generator, *,
          negatives: Literal["original", "complement"] = "original") -> np.ndarray:
    """Points (n, d) with given stop levels (n,): 0 a positive, uniform on K_levels;
    l >= 1 a negative, uniform on the level-l gaps. The child cell at each level above the
    stop is uniform (a positive descends all the way)."""
    n = len(stop)
    depth = np.where(stop == 0, levels, stop - 1)
    path = rng.integers(0, ifs.r, size=(n, levels))
    x = np.empty((n, ifs.d))
    pos = stop == 0
    x[pos] = rng.uniform(-1.0, 1.0, size=(int(pos.sum()), ifs.d))
    x[~pos] = _gap(ifs, int((~pos).sum()), rng, negatives)
    for l in range(levels - 1, -1, -1):  # apply F_{i_1} o ... o F_{i_depth}, innermost first
        act = depth > l
        x[act] = x[act] / ifs.scale + ifs.shifts[path[act, l]]
    return x


def level_of(ifs: IFS, x: np.ndarray, levels: int) -> np.ndarray:
    """For points x (n, d): the largest j <= ``levels`` with x in K_j (-1 outside K_0).
    Cells are closed, so a point on a cell's boundary counts as inside."""
    z = np.array(x, dtype=np.float64)
    half = 1.0 / ifs.scale
    out = np.where(np.all(np.abs(z) <= 1.0, axis=1), 0, -1)
    alive = out == 0
    for j in range(1, levels + 1):
        found = np.zeros(len(z), dtype=bool)
        for b in ifs.shifts:
            hit = alive & ~found & np.all(np.abs(z - b) <= half * (1 + 1e-12), axis=1)
            z[hit] = (z[hit] - b) * ifs.scale
            found |= hit
        alive &= found
        out[alive] = j
    return out


def member(ifs: IFS, x: np.ndarray, j: int) -> np.ndarray:
    """Whether each point of x (n, d) lies in K_j."""
    return level_of(ifs, x, j) >= j


def empirical_curve(ifs: IFS, x: np.ndarray, y: np.ndarray, levels: int) -> np.ndarray:
    """P(j), j = 0..levels, of a labelled sample: 1 - frac(x in K_j and y = -1), with
    membership tested geometrically (not read from the sampler's stop levels)."""
    lev = level_of(ifs, x, levels)
    neg = y < 0
    return np.array([1.0 - float(np.mean(neg & (lev >= j))) for j in range(levels + 1)])


def theorem_level(depth: int, width: int, delta: float) -> int:
    """The level j of the gradient bound (Theorem 5's condition): the least integer above
    log(4 t k^2 / delta) / log(3/2) for depth t, width k and failure probability delta."""
    return math.ceil(math.log(4 * depth * width**2 / delta) / math.log(1.5))
