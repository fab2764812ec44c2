"""The 12-bit IB task: geometry, invariant labels, stratified split, Parquet round trip."""

from __future__ import annotations

import numpy as np
import pytest

from theorydl.studies.ib.dataset import (
    N_PATTERNS,
    all_patterns,
    binary_entropy_bits,
    icosahedral_rotations,
    icosahedron_vertices,
    label_invariant,
    labels,
    load_ib_dataset,
    make_ib_dataset,
    pattern_index,
    save_ib_dataset,
    split,
)


def test_vertices_form_a_regular_icosahedron():
    v = icosahedron_vertices()
    assert v.shape == (12, 3)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-12)
    gram = v @ v.T
    off = gram[~np.eye(12, dtype=bool)].reshape(12, 11)
    # Each vertex: 5 neighbours at cos = 1/sqrt5, 5 at -1/sqrt5, 1 antipode.
    for row in off:
        np.testing.assert_allclose(np.sort(row)[[0, 1, 6]], [-1, -(5**-0.5), 5**-0.5], atol=1e-12)
        assert np.sum(np.isclose(row, 5**-0.5)) == 5 and np.sum(np.isclose(row, -(5**-0.5))) == 5


def test_rotations_are_the_60_proper_symmetries():
    v = icosahedron_vertices()
    perms = icosahedral_rotations()
    assert perms.shape == (60, 12)
    assert len({tuple(p) for p in perms}) == 60
    np.testing.assert_array_equal(perms[0], np.arange(12))
    for p in perms:
        # Least-squares orthogonal map taking v to v[p] must be exact and proper.
        rot, *_ = np.linalg.lstsq(v, v[p], rcond=None)
        np.testing.assert_allclose(v @ rot, v[p], atol=1e-10)
        np.testing.assert_allclose(rot.T @ rot, np.eye(3), atol=1e-10)
        assert np.linalg.det(rot) == pytest.approx(1.0)
    # Closed under composition: a group.
    as_set = {tuple(p) for p in perms}
    for a in perms[:10]:
        for b in perms:
            assert tuple(b[a]) in as_set


def test_patterns_are_all_distinct_and_in_counting_order():
    x = all_patterns()
    assert x.shape == (N_PATTERNS, 12) and x.dtype == np.float32
    assert set(np.unique(x)) == {0.0, 1.0}
    assert len(np.unique(x, axis=0)) == N_PATTERNS
    np.testing.assert_array_equal(pattern_index(x), np.arange(N_PATTERNS))
    np.testing.assert_array_equal(x[1], [0] * 11 + [1])  # vertex 11 is the least significant


def test_invariant_matches_dipole_power():
    # For l = 1, sum_{i,j on} v_i . v_j = |sum_{i on} v_i|^2.
    x = all_patterns()
    direct = np.sum((x.astype(np.float64) @ icosahedron_vertices()) ** 2, axis=1)
    np.testing.assert_allclose(label_invariant(x, 1), direct, atol=1e-12)


@pytest.mark.parametrize("degree", [1, 2, 7])
def test_labels_invariant_under_every_rotation(degree):
    x = all_patterns()
    y, _ = labels(x, degree)
    for perm in icosahedral_rotations():
        rotated = np.empty_like(x)
        rotated[:, perm] = x  # vertex i's bit moves to vertex perm[i]
        np.testing.assert_array_equal(y[pattern_index(rotated)], y)


def test_label_entropy_is_one_bit():
    ds = make_ib_dataset(0.8, seed=0)
    assert set(np.unique(ds.y)) == {0, 1}
    p1 = ds.y.mean()
    assert ds.h_y_bits == pytest.approx(binary_entropy_bits(p1))
    assert abs(ds.h_y_bits - 1.0) < 0.01
    assert ds.h_y_bits == pytest.approx(0.9999752, abs=1e-6)  # P(y=1) = 2036/4096


def test_threshold_is_optimal_and_between_values():
    x = all_patterns()
    y, thr = labels(x, 1)
    a = label_invariant(x, 1)
    assert np.min(np.abs(a - thr)) > 1e-3  # no pattern sits at the threshold
    h = binary_entropy_bits(y.mean())
    for c in np.unique(a):
        assert binary_entropy_bits(np.mean(a > c)) <= h + 1e-12


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.8, 0.85, 0.95])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_split_is_stratified_disjoint_and_complete(fraction, seed):
    y = make_ib_dataset(0.5, seed=0).y
    train, test = split(y, fraction, seed)
    assert train.dtype == np.int64 and test.dtype == np.int64
    assert len(train) == round(fraction * len(y))
    assert len(np.intersect1d(train, test)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(len(y)))
    assert abs(y[train].mean() - y[test].mean()) <= 1.0 / min(len(train), len(test))
    assert abs(y[train].mean() - y.mean()) <= 0.5 / len(train) + 1e-12
    assert abs(y[test].mean() - y.mean()) <= 0.5 / len(test) + 1e-12


def test_split_is_shuffled_not_counting_order():
    # The original bug: an unshuffled cut of the counting order.  Train indices must
    # spread over the whole range and not come out sorted.
    y = make_ib_dataset(0.5, seed=0).y
    train, _ = split(y, 0.8, seed=0)
    assert not np.all(np.diff(train) > 0)
    assert train.max() > 0.99 * len(y) and train.min() < 0.01 * len(y)


def test_split_deterministic_per_seed_and_varies_across_seeds():
    y = make_ib_dataset(0.5, seed=0).y
    a_train, a_test = split(y, 0.8, seed=3)
    b_train, b_test = split(y, 0.8, seed=3)
    np.testing.assert_array_equal(a_train, b_train)
    np.testing.assert_array_equal(a_test, b_test)
    c_train, _ = split(y, 0.8, seed=4)
    assert not np.array_equal(np.sort(a_train), np.sort(c_train))


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1e-6, 1.0 - 1e-6])
def test_split_rejects_empty_sides(fraction):
    with pytest.raises(ValueError):
        split(np.array([0, 1] * 50), fraction, seed=0)


def test_dataset_arrays_are_read_only():
    ds = make_ib_dataset(0.8, seed=0)
    with pytest.raises(ValueError):
        ds.y[0] = 1


def test_save_load_round_trip(tmp_path):
    ds = make_ib_dataset(0.8, seed=5)
    path = tmp_path / "ib.parquet"
    save_ib_dataset(ds, path)
    back = load_ib_dataset(path)
    for name in ("X", "y", "train_idx", "test_idx"):
        a, b = getattr(ds, name), getattr(back, name)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)  # order too: the shuffle is preserved
    for name in ("h_y_bits", "degree", "threshold", "train_fraction", "seed"):
        assert getattr(ds, name) == getattr(back, name)
