"""Exact network and formula counts against brute force (integer weights, explicit trees)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from theorydl.expressivity import KNOWN_COUNTS, input_patterns
from theorydl.expressivity.networks import (
    count_formulas,
    count_network,
    formula_layers,
    network_shards,
    npn_classes,
    parse_network,
    realized_count,
)


def _integer_units(n_in: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """All integer weight vectors in [-w, w]^n_in and half-integer thresholds."""
    weights = np.array(list(itertools.product(range(-w, w + 1), repeat=n_in)),
                       dtype=np.int64).reshape(-1, n_in)
    thetas = np.arange(-n_in * w - 0.5, n_in * w + 1.0)
    return weights, thetas


def _layer(values: np.ndarray, w: int) -> np.ndarray:
    """Outputs of every integer-weight threshold unit on the rows of ``values`` (P, k):
    (P, units) 0/1, distinct columns."""
    weights, thetas = _integer_units(values.shape[1], w)
    sums = values @ weights.T  # (P, n_weights)
    fires = (sums[:, :, None] >= thetas[None, None, :]).reshape(values.shape[0], -1)
    return np.unique(fires.astype(np.int64), axis=1)


def _tables(columns: np.ndarray) -> set[int]:
    place = 1 << np.arange(columns.shape[0], dtype=np.int64)
    return set((place @ columns).tolist())


def brute_network(n: int, widths: tuple[int, ...], w: int) -> set[int]:
    """Evaluate N-k1-...-1 networks with integer weights in [-w, w], layer by layer: every
    choice of k units (with repetition) among the distinct unit outputs of the layer."""
    out: set[int] = set()

    def grow(values: np.ndarray, left: tuple[int, ...]) -> None:
        units = _layer(values, w)  # (P, u)
        k = left[0] if left else 1
        if not left:
            out.update(_tables(units))
            return
        for combo in itertools.combinations_with_replacement(range(units.shape[1]), k):
            grow(units[:, combo], left[1:])

    grow(input_patterns(n).astype(np.int64), widths)
    return out


@pytest.mark.parametrize("n,widths,w", [(2, (1,), 2), (2, (2,), 2), (2, (2, 2), 1),
                                        (3, (1,), 2), (3, (2,), 2)])
def test_network_counts_equal_brute_force_over_integer_weights(n, widths, w):
    assert count_network(n, widths).n_realizable == len(brute_network(n, widths, w))


def test_one_unit_network_is_the_threshold_census_and_shards_union_to_the_whole():
    for n in range(5):
        assert count_network(n, (1,)).n_realizable == KNOWN_COUNTS["threshold"][n]
    assert network_shards(0) == 1 and count_network(0, (2,), 0, 1).n_realizable == 2
    whole = count_network(3, (2,))
    parts = [count_network(3, (2,), i, i + 1) for i in range(network_shards(3))]
    union = set().union(*(p.classes for p in parts))
    assert realized_count(3, union) == whole.n_realizable == 254  # all but parity and its negation
    assert max(p.n_realizable for p in parts) < 256


def test_npn_classes_are_the_known_numbers():
    # OEIS A000370: NPN classes of Boolean functions of n variables: 1 (n=0 gives 1),
    # 2, 4, 14, 222.
    assert [len(npn_classes(n)[1]) for n in range(5)] == [1, 2, 4, 14, 222]
    assert [int(npn_classes(n)[1].sum()) for n in range(5)] == [2, 4, 16, 256, 65536]


def test_network_names():
    assert parse_network("net-3-2") == (3, 2) and parse_network("net-1") == (1,)
    assert parse_network("threshold") is None and parse_network("net-0") is None
    with pytest.raises(ValueError, match="0..4"):
        count_network(5, (2,))


def _nnf_trees(leaves: list[int], size: int, full: int):
    """Every formula tree with ``size`` AND/OR gates over literal/constant leaves, as its
    table, evaluated gate by gate (not memoised by function: the trees themselves)."""
    if size == 0:
        yield from leaves
        return
    for a in range(size):
        for left in _nnf_trees(leaves, a, full):
            for right in _nnf_trees(leaves, size - 1 - a, full):
                yield left & right
                yield left | right


@pytest.mark.parametrize("n", [0, 1, 2])
def test_formula_counts_equal_direct_tree_enumeration(n):
    full = 2 ** 2**n - 1
    x = [sum(((j >> i) & 1) << j for j in range(2**n)) for i in range(n)]
    # NOT only on leaves (De Morgan: the same functions and sizes as NOT anywhere)
    leaves = [0, full, *x, *(t ^ full for t in x)]
    counts = count_formulas(n)
    seen: set[int] = set()
    for s, expected in enumerate(counts):
        seen.update(_nnf_trees(leaves, s, full))
        assert len(seen) == expected, s
    assert counts[-1] == 2 ** 2**n and (len(counts) < 2 or counts[-2] < counts[-1])
    if n == 2:
        assert counts == [6, 14, 14, 16]  # XOR and XNOR need three gates
    assert [len(layer) for layer in formula_layers(n)][0] == len(set(leaves))
