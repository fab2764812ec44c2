"""Exact census of threshold networks and of AND/OR/NOT formulas (N <= 4).

Same truth-table convention as :mod:`theorydl.expressivity.threshold` (bit j of a
table is f(x_j), input i = bit i of j). Nothing here trains: every count is an exact
enumeration on truth tables held as integers (bitsets of 2^N bits).

Threshold networks
------------------
An architecture ``net-k1-...-kL`` is the N-k1-...-kL-1 network of linear-threshold
units: layer 1 has k1 units, each a threshold function of the N inputs; every later
unit (and the single output) is a threshold function of the previous layer's outputs.
The functions it computes are compositions ``g(u_1(x), ..., u_k(x))``: for a tuple of
unit tables the hidden code of point j is ``c_j = sum_i u_i(x_j) 2^i`` and the output
table has bit j equal to bit ``c_j`` of g's table, so one tuple and all g in T_k (the
threshold functions of k inputs, from the exact LP census) give all their outputs at
once, vectorised.

Symmetry cuts the enumeration, without changing the count:

* a unit and its negation are interchangeable (the next layer negates its weight), and
  constant units add nothing (the next layer's bias absorbs them): the units of a
  layer range over the non-constant tables with f(x_0) = 0, as a set (unordered,
  distinct; a smaller set is covered since a unit can be ignored);
* the set of computed functions is closed under the hypercube's symmetries (permuting
  and negating inputs) and under output negation, so it is a union of NPN classes:
  the first unit of layer 1 is taken as one representative per NPN class of threshold
  functions, and the reached classes are tracked. The count is the sum of the reached
  classes' sizes. Enumeration stops early once every class is reached.

The work splits over the first unit's representatives (``start``, ``stop`` index them),
so a cluster runs one shard per Ray task; shards return reached class ids, whose
union is the answer.

X-forms (formulas)
------------------
Xiong's X-forms, read operationally: formulas over the inputs with binary AND and OR
gates and NOT. **Size** is the number of binary (AND/OR) gates; NOT gates are free
(by De Morgan any formula is one of the same size with NOT only on leaves), and the
leaves are the inputs x_i and the constants 0 and 1 (size 0: 0, 1, x_i, not x_i).
A child of a smallest formula is itself smallest for its function (else the whole
would shrink), so the functions of least size s are ``op(g, h)`` (op in AND, OR,
NAND, NOR) over g of least size a and h of least size s - 1 - a, not reached before.
"""

from __future__ import annotations

import functools
import itertools
import operator
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from theorydl.expressivity.threshold import n_functions, threshold_mask, truth_tables

__all__ = ["NET_MAX_N", "NetworkCount", "count_formulas", "count_network", "formula_layers",
           "network_shards", "npn_classes", "parse_network", "realized_count",
           "threshold_tables"]

#: Networks and formulas are counted for N up to this (a class id per function: 2^16).
NET_MAX_N = 4

_NET = re.compile(r"^net(-[1-9][0-9]*)+$")


def parse_network(name: str) -> tuple[int, ...] | None:
    """The hidden widths of a network architecture name (``net-3-2`` -> (3, 2)), or None."""
    if not _NET.match(name):
        return None
    return tuple(int(k) for k in name.split("-")[1:])


def _check_net_n(n: int) -> int:
    n = operator.index(n)
    if not 0 <= n <= NET_MAX_N:
        raise ValueError(f"networks and formulas are counted for N in 0..{NET_MAX_N}, got {n}")
    return n


@functools.lru_cache(maxsize=None)
def threshold_tables(n: int) -> np.ndarray:
    """The truth tables of all threshold functions of n inputs (sorted uint64), n <= 4."""
    n = _check_net_n(n)
    tables = truth_tables(n, 0, n_functions(n))
    return tables[threshold_mask(n, tables)]


def _point_images(n: int) -> list[np.ndarray]:
    """For every input permutation and negation, where each point j goes (2^n each)."""
    points = np.arange(2**n)
    images = []
    for perm in itertools.permutations(range(n)):
        for neg in range(2**n):
            flipped = points ^ neg
            image = np.zeros(2**n, dtype=np.int64)
            for i, p in enumerate(perm):
                image |= ((flipped >> i) & 1) << p
            images.append(image)
    return images


def _bits(n: int, tables: np.ndarray) -> np.ndarray:
    return ((tables[:, None] >> np.arange(2**n, dtype=np.uint64)) & np.uint64(1)).astype(np.uint64)


def _pack(bits: np.ndarray) -> np.ndarray:
    """(m, P) 0/1 uint64 -> tables (m,): bit j from column j."""
    return (bits << np.arange(bits.shape[1], dtype=np.uint64)).sum(axis=1, dtype=np.uint64)


@functools.lru_cache(maxsize=None)
def npn_classes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(class_of, sizes): the NPN class id of every table of n inputs (ids 0.. in the
    order of their smallest member) and the number of tables in each class.

    NPN: input permutation, input negation and output negation (2^(n+1) n! maps).
    """
    n = _check_net_n(n)
    tables = np.arange(n_functions(n), dtype=np.int64)
    bits = ((tables[:, None] >> np.arange(2**n)) & 1).astype(np.float64)
    full = n_functions(n) - 1
    smallest = tables.copy()
    for image in _point_images(n):
        # bit j moves to position image[j]: the packed value weighs bit j by 2^image[j]
        t = (bits @ (2.0 ** image)).astype(np.int64)
        np.minimum(smallest, t, out=smallest)
        np.minimum(smallest, t ^ full, out=smallest)
    reps, class_of = np.unique(smallest, return_inverse=True)
    return class_of.reshape(-1).astype(np.int64), np.bincount(class_of.reshape(-1))


def _unit_choices(n_points: int, tables: np.ndarray) -> np.ndarray:
    """Non-constant tables with f(x_0) = 0 (one of each pair {t, not t}), distinct."""
    full = np.uint64(2**n_points - 1)  # n_points <= 16 here
    t = np.unique(np.where(tables & np.uint64(1), tables ^ full, tables))
    return t[(t != 0) & (t != full)]


def _compose(n_points: int, units: np.ndarray, outer_bits: np.ndarray) -> np.ndarray:
    """Outputs g(u_1, ..., u_k) for a batch of unit tuples and every outer table g.

    ``units`` (B, k) tables over ``n_points`` points; ``outer_bits`` (G, 2^k) 0/1 bits of
    the outer functions. Returns (B, G) tables over the points.
    """
    b, k = units.shape
    j = np.arange(n_points, dtype=np.uint64)
    codes = np.zeros((b, n_points), dtype=np.int64)
    for i in range(k):
        codes |= (((units[:, i:i + 1] >> j) & np.uint64(1)).astype(np.int64) << i)
    out = np.zeros((b, outer_bits.shape[0]), dtype=np.uint64)
    for p in range(n_points):
        out |= outer_bits[:, codes[:, p]].T << np.uint64(p)
    return out


@dataclass
class _Search:
    """Reached NPN classes of one count, with the early exit."""

    class_of: np.ndarray
    seen: np.ndarray
    compositions: int = 0

    def mark(self, tables: np.ndarray) -> bool:
        self.compositions += tables.size
        self.seen[self.class_of[tables.reshape(-1).astype(np.int64)]] = True
        return bool(self.seen.all())


_BATCH = 1 << 14


def _tuples(first: np.ndarray | None, choices: np.ndarray, k: int, batch: int = _BATCH
            ) -> Iterator[np.ndarray]:
    """Batches (B, k) of unit sets: ``first`` fixed (if given) plus k - 1 (else k) distinct
    members of ``choices``; fewer when there are not enough choices (a set can only
    shrink: a unit may be ignored)."""
    rest = k - (first is not None)
    rest = min(rest, len(choices))
    combos = itertools.combinations(range(len(choices)), rest)
    while True:
        chunk = list(itertools.islice(combos, batch))
        if not chunk:
            return
        idx = np.array(chunk, dtype=np.int64).reshape(len(chunk), rest)
        block = choices[idx]
        if first is not None:
            block = np.hstack([np.full((len(chunk), 1), first, dtype=np.uint64), block])
        yield block


def _reach(n_points: int, choices: np.ndarray, widths: Sequence[int], search: _Search,
           first: np.ndarray | None = None) -> bool:
    """Mark every function of a network whose next layer picks units from ``choices``
    and has the given widths (then the output); True once every class is reached."""
    k = widths[0]
    kk = min(k, len(choices) + (first is not None))
    outer_bits = _bits(kk, threshold_tables(kk))
    # Batches of about 2^22 compositions: early exit is checked once a batch.
    for block in _tuples(first, choices, k, max(1, (1 << 22) // len(outer_bits))):
        composed = _compose(n_points, block, outer_bits)
        if len(widths) == 1:
            if search.mark(composed):
                return True
            continue
        for row in composed:
            if _reach(n_points, _unit_choices(n_points, row), widths[1:], search):
                return True
    return False


def network_shards(n: int) -> int:
    """How many shards a network count of n inputs splits into: one per NPN class of
    non-constant threshold functions (the first unit's representatives); N = 0 has none
    (only the constants) and one, empty, shard."""
    return max(1, len(_first_units(_check_net_n(n))))


@functools.lru_cache(maxsize=None)
def _first_units(n: int) -> np.ndarray:
    class_of, _ = npn_classes(n)
    choices = _unit_choices(2**n, threshold_tables(n))
    _, first = np.unique(class_of[choices.astype(np.int64)], return_index=True)
    return choices[np.sort(first)]


@dataclass(frozen=True)
class NetworkCount:
    """Reached NPN classes of one shard; ``n_realizable`` is exact only for a full range
    or as the union of every shard's ``classes``."""

    n: int
    widths: tuple[int, ...]
    start: int
    stop: int
    classes: tuple[int, ...]
    n_realizable: int
    early_exit: bool = field(default=False, compare=False)
    compositions: int = field(default=0, compare=False)
    seconds: float = field(default=0.0, compare=False)


def count_network(n: int, widths: Sequence[int], start: int = 0, stop: int | None = None
                  ) -> NetworkCount:
    """The functions of n inputs an N-k1-...-kL-1 threshold network computes, exactly.

    Shard ``[start, stop)`` of the first unit's representatives (see `network_shards`;
    default: all). N = 0: the two constants.
    """
    began = time.perf_counter()
    n = _check_net_n(n)
    widths = tuple(operator.index(w) for w in widths)
    if not widths or min(widths) < 1:
        raise ValueError(f"hidden widths must be >= 1, got {widths}")
    firsts = _first_units(n)
    stop = network_shards(n) if stop is None else stop
    if not 0 <= start <= stop <= network_shards(n):
        raise ValueError(f"need 0 <= start <= stop <= {network_shards(n)} (shards of N={n}), "
                         f"got {start}, {stop}")
    class_of, sizes = npn_classes(n)
    search = _Search(class_of, np.zeros(len(sizes), dtype=bool))
    search.mark(np.array([0], dtype=np.uint64))  # constants: a network can ignore its input
    choices = _unit_choices(2**n, threshold_tables(n))
    done = search.seen.all()
    for f in firsts[start:stop]:
        if done:
            break
        done = _reach(2**n, choices, widths, search, first=np.uint64(f))
    classes = tuple(int(c) for c in np.flatnonzero(search.seen))
    return NetworkCount(n, widths, start, stop, classes, int(sizes[list(classes)].sum()),
                        early_exit=bool(done), compositions=search.compositions,
                        seconds=time.perf_counter() - began)


def realized_count(n: int, classes) -> int:
    """Number of functions in the union of NPN classes ``classes`` (ids of `npn_classes`)."""
    _, sizes = npn_classes(n)
    return int(sizes[sorted(set(int(c) for c in classes))].sum())


# ---------------------------------------------------------------------------- formulas


def formula_layers(n: int) -> list[np.ndarray]:
    """Tables of least formula size 0, 1, 2, ... (see the module docstring) until every
    function of n inputs is reached; layer s holds the functions of least size s."""
    n = _check_net_n(n)
    total = n_functions(n)
    full = np.uint64(total - 1)
    j = np.arange(2**n)
    leaves = [0, total - 1] + [int(_pack(((j >> i) & 1)[None, :].astype(np.uint64))[0])
                               for i in range(n)]
    base = np.unique(np.array(leaves + [t ^ (total - 1) for t in leaves], dtype=np.uint64))
    reached = np.zeros(total, dtype=bool)
    reached[base.astype(np.int64)] = True
    layers = [base]
    while not reached.all():
        s = len(layers)
        new = []
        for a in range(0, (s - 1) // 2 + 1):
            left, right = layers[a], layers[s - 1 - a]
            for lo in range(0, len(left), 256):
                g = left[lo:lo + 256, None]
                both = g & right[None, :]
                either = g | right[None, :]
                cand = np.concatenate([both.ravel(), either.ravel()])
                cand = np.concatenate([cand, cand ^ full])
                fresh = np.unique(cand[~reached[cand.astype(np.int64)]])
                reached[fresh.astype(np.int64)] = True
                new.append(fresh)
        layers.append(np.unique(np.concatenate(new)) if new else np.zeros(0, dtype=np.uint64))
    return layers


def count_formulas(n: int) -> list[int]:
    """Number of functions of n inputs with a formula of size <= s, for s = 0, 1, ...
    up to the first s that reaches all 2^(2^n)."""
    return list(np.cumsum([len(layer) for layer in formula_layers(n)]).tolist())
