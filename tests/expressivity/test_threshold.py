"""Tests for theorydl.expressivity.threshold: exact census of linear-threshold functions.

Reference implementations here (unateness, symmetries, the truth-table convention)
are deliberately written point by point from `input_patterns`, independently of
the module's bit tricks, so that a wrong mask or shift shows up as a mismatch.
"""

from __future__ import annotations

import functools
import itertools
from types import SimpleNamespace

import numpy as np
import pytest

from theorydl.expressivity import (
    ARCHITECTURES,
    KNOWN_COUNTS,
    ThresholdCount,
    count_realizable,
    count_threshold,
    input_patterns,
    is_threshold,
    is_unate,
    n_functions,
    threshold_mask,
    threshold_tables_by_weights,
    truth_tables,
)
from theorydl.expressivity import threshold as threshold_module


def table_of(n: int, f) -> int:
    """Truth table of the Python predicate ``f(x)`` (x a tuple of 0/1), by convention."""
    return sum(1 << j for j, x in enumerate(input_patterns(n).tolist()) if f(tuple(x)))


def value(table: int, n: int, x: tuple[int, ...]) -> int:
    """f(x) read from a truth table: x is point j = sum_i x_i 2^i."""
    return (table >> sum(b << i for i, b in enumerate(x))) & 1


@functools.cache
def lp_realizable(n: int) -> frozenset[int]:
    """Realisable truth tables by the plain per-function LP (no pre-filter)."""
    return frozenset(k for k in range(n_functions(n)) if is_threshold(n, k))


def unate_brute(n: int, table: int) -> bool:
    for i in range(n):
        pairs = [
            (value(table, n, x), value(table, n, x[:i] + (1,) + x[i + 1 :]))
            for x in map(tuple, input_patterns(n).tolist())
            if x[i] == 0
        ]
        if not (all(a <= b for a, b in pairs) or all(a >= b for a, b in pairs)):
            return False
    return True


# --- conventions -------------------------------------------------------------------


def test_input_patterns_counting_order():
    x = input_patterns(3)
    assert x.dtype == np.uint8 and x.shape == (8, 3)
    # row j has bit i of j as input i
    assert x[1].tolist() == [1, 0, 0]
    assert x[6].tolist() == [0, 1, 1]
    assert input_patterns(0).shape == (1, 0)


def test_truth_table_convention_examples():
    assert table_of(2, lambda x: x[0] ^ x[1]) == 6
    assert table_of(2, lambda x: 1 - (x[0] ^ x[1])) == 9
    assert table_of(2, lambda x: x[0] & x[1]) == 8
    assert table_of(2, lambda x: x[0]) == 0b1010


def test_truth_tables_range_and_dtype():
    t = truth_tables(5, 2**32 - 3, 2**32)
    assert t.dtype == np.uint64
    assert t.tolist() == [2**32 - 3, 2**32 - 2, 2**32 - 1]
    assert truth_tables(2, 5, 5).shape == (0,)


def test_known_counts_and_n_functions():
    assert KNOWN_COUNTS["threshold"][:6] == (2, 4, 14, 104, 1882, 94572)
    assert len(KNOWN_COUNTS["threshold"]) == 9
    assert [n_functions(n) for n in range(6)] == [2, 4, 16, 256, 65536, 2**32]


# --- counts ------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4])
def test_full_range_counts_match_oeis_a000609(n):
    result = count_threshold(n, 0, n_functions(n))
    assert result.n_realizable == KNOWN_COUNTS["threshold"][n]
    assert result.n_functions == n_functions(n)
    assert result.n_realizable <= result.n_unate <= result.n_functions


def test_count_realizable_dispatches_to_threshold():
    assert set(ARCHITECTURES) == {"threshold"}
    assert count_realizable("threshold", 3, 10, 200) == count_threshold(3, 10, 200)


@pytest.mark.parametrize(
    ("n", "cuts"),
    [
        (4, [0, 1, 777, 777, 30000, 30001, 65535, 65536]),
        (5, [2**31, 2**31 + 5, 2**31 + 40_000, 2**31 + 40_001, 2**31 + 100_000]),
        (5, [0, 3, 5000, 5001, 70_000]),
    ],
)
def test_sharding_invariance(n, cuts):
    shards = [count_threshold(n, a, b) for a, b in itertools.pairwise(cuts)]
    whole = count_threshold(n, cuts[0], cuts[-1])
    for name in ("n_functions", "n_unate", "n_realizable"):
        assert sum(getattr(s, name) for s in shards) == getattr(whole, name)


def test_chunked_enumeration_matches(monkeypatch):
    # a small chunk forces many chunks (and a ragged last one) through count_threshold
    monkeypatch.setattr(threshold_module, "_CHUNK", 1000)
    result = count_threshold(4, 0, n_functions(4))
    assert result == ThresholdCount(4, 0, 65536, 65536, 2170, 1882)


def test_n2_only_xor_and_xnor_are_not_realizable():
    assert set(range(16)) - lp_realizable(2) == {6, 9}
    mask = threshold_mask(2, np.arange(16))
    assert np.flatnonzero(~mask).tolist() == [6, 9]


# --- exactness and cross-checks ------------------------------------------------------


@pytest.mark.parametrize(("n", "weight"), [(0, 1), (1, 1), (2, 1), (3, 2)])
def test_lp_equals_integer_weight_enumeration(n, weight):
    by_weights = threshold_tables_by_weights(n, weight)
    assert lp_realizable(n) == by_weights
    tables = truth_tables(n, 0, n_functions(n))
    assert set(tables[threshold_mask(n, tables)].tolist()) == by_weights


def test_n4_pipeline_equals_integer_weight_enumeration():
    tables = truth_tables(4, 0, n_functions(4))
    assert set(tables[threshold_mask(4, tables)].tolist()) == threshold_tables_by_weights(4, 3)


def test_weight_cross_check_is_sensitive():
    # weights in {-1, 0, 1} miss e.g. 2*x0 + x1 + x2 >= 2 for n = 3: the cross-check
    # would catch an LP that accepted too little
    assert threshold_tables_by_weights(3, 1) < lp_realizable(3)
    assert table_of(3, lambda x: 2 * x[0] + x[1] + x[2] >= 2) not in threshold_tables_by_weights(
        3, 1
    )


def test_infeasible_answers_carry_an_asummability_certificate():
    sigma, points = threshold_module._signs_and_points(2, 6)  # XOR
    mult = threshold_module._asummability_certificate(sigma, points)
    assert mult is not None and min(mult) >= 0 and sum(mult) > 0
    true_sum = sum(m * points[j] for j, m in enumerate(mult) if sigma[j] > 0)
    false_sum = sum(m * points[j] for j, m in enumerate(mult) if sigma[j] < 0)
    assert np.array_equal(true_sum, false_sum)  # same count (last column) and sum
    # a threshold function has no such certificate
    sigma, points = threshold_module._signs_and_points(2, 8)  # AND
    assert threshold_module._asummability_certificate(sigma, points) is None


def test_unverifiable_solver_answer_raises(monkeypatch):
    # HiGHS claiming "feasible" with weights that do not separate must not be trusted
    fake = SimpleNamespace(status=0, x=np.zeros(3), message="fake")
    monkeypatch.setattr(threshold_module, "linprog", lambda *a, **k: fake)
    with pytest.raises(RuntimeError, match="do not separate"):
        is_threshold(2, 8)


# --- unateness -----------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 2, 3])
def test_unate_filter_matches_brute_force(n):
    tables = truth_tables(n, 0, n_functions(n))
    assert is_unate(n, tables).tolist() == [unate_brute(n, int(k)) for k in tables]


@pytest.mark.parametrize("n", [4, 5])
def test_unate_filter_matches_brute_force_on_samples(n):
    rng = np.random.default_rng(n)
    sample = rng.integers(0, n_functions(n), size=300, dtype=np.uint64)
    # random functions are almost never unate: add known unate ones (threshold
    # functions of n = 4, lifted to n inputs) so both answers are exercised
    unate_ones = np.array(sorted(threshold_tables_by_weights(4, 3)), dtype=np.uint64)[::10]
    if n == 5:
        unate_ones = unate_ones | (unate_ones << np.uint64(16))  # ignores input 4
    tables = np.concatenate([sample, unate_ones])
    expected = [unate_brute(n, int(k)) for k in tables]
    assert any(expected) and not all(expected)
    assert is_unate(n, tables).tolist() == expected
    assert is_unate(n, tables.reshape(-1, 1)).shape == (len(tables), 1)


def test_every_realizable_function_is_unate():
    for n in range(4):
        assert all(unate_brute(n, k) for k in lp_realizable(n))
    assert sum(unate_brute(3, k) for k in range(256)) == 104  # unate == threshold for n <= 3


# --- symmetries (N = 3) --------------------------------------------------------------


def test_realizable_set_closed_under_complement_negation_permutation():
    n = 3
    realizable = lp_realizable(n)
    full = n_functions(n) - 1
    for k in realizable:
        assert full ^ k in realizable
        for i in range(n):
            negated = table_of(n, lambda x, i=i: value(k, n, x[:i] + (1 - x[i],) + x[i + 1 :]))
            assert negated in realizable
        for perm in itertools.permutations(range(n)):
            permuted = table_of(n, lambda x, p=perm: value(k, n, tuple(x[q] for q in p)))
            assert permuted in realizable


# --- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: count_threshold(6, 0, 1), r"n must be in 0\.\.5"),
        (lambda: count_threshold(-1, 0, 1), r"n must be in 0\.\.5"),
        (lambda: count_threshold(3, 10, 5), r"start <= stop"),
        (lambda: count_threshold(3, -1, 5), r"0 <= start"),
        (lambda: truth_tables(2, 0, 17), r"stop <= 2\^\(2\^2\) = 16"),
        (lambda: count_realizable("rbm", 2, 0, 16), r"unknown architecture 'rbm'.*threshold"),
        (lambda: is_threshold(2, 16), r"\[0, 16\)"),
        (lambda: is_unate(3, [1, 256]), r"\[0, 256\)"),
        (lambda: is_unate(3, [1.0]), r"must be integers"),
        (lambda: threshold_tables_by_weights(2, -1), r"max_weight must be >= 0"),
        (lambda: n_functions(-2), r"n must be >= 0"),
    ],
)
def test_bad_inputs_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
