"""K-means baseline, spatio-temporal K-means, temporal windows and K selection."""

from __future__ import annotations

import numpy as np
import pytest

from theorydl.studies.samdp.clustering import (
    clustering_features,
    episode_ids,
    kmeans,
    select_k,
    spatio_temporal_kmeans,
    temporal_smooth,
)
from theorydl.studies.samdp.criteria import inertia

CENTRES = np.array([[0.0, 0.0], [4.0, 0.0], [2.0, 3.5]])


def planted(seed: int, noise: float, seg: int = 40, n_seg: int = 12, n_ep: int = 3):
    """Blobs visited in time segments of ``seg`` steps (never the same blob twice in a
    row), ``n_ep`` episodes.  Returns features (T, 2), true labels, episode_end."""
    rng = np.random.default_rng(seed)
    truth, ends = [], []
    for _ in range(n_ep):
        segs = [int(rng.integers(3))]
        while len(segs) < n_seg:
            nxt = int(rng.integers(3))
            if nxt != segs[-1]:
                segs.append(nxt)
        lab = np.repeat(segs, seg)
        truth.append(lab)
        e = np.zeros(lab.size, dtype=bool)
        e[-1] = True
        ends.append(e)
    truth, ends = np.concatenate(truth), np.concatenate(ends)
    x = CENTRES[truth] + noise * rng.standard_normal((truth.size, 2))
    return x, truth, ends


def switches(labels, ends):
    ep = episode_ids(ends)
    return int(np.sum((labels[1:] != labels[:-1]) & (ep[1:] == ep[:-1])))


def same_partition(a, b) -> bool:
    """Equal up to a permutation of the label names."""
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


def test_episode_ids():
    ends = np.array([False, True, False, False, True, False])
    np.testing.assert_array_equal(episode_ids(ends), [0, 0, 1, 1, 1, 2])


def test_temporal_smooth_by_hand():
    x = np.array([0.0, 1, 2, 3, 10, 11])[:, None]
    ends = np.array([0, 0, 0, 1, 0, 1], dtype=bool)
    # Uniform, w = 1, truncated at the ends of each episode.
    np.testing.assert_allclose(temporal_smooth(x, ends, 1)[:, 0],
                               [0.5, 1, 2, 2.5, 10.5, 10.5])
    # Triangular weights (1, 2, 1).
    np.testing.assert_allclose(temporal_smooth(x, ends, 1, kernel="triangular")[:, 0],
                               [1 / 3, 1, 2, 8 / 3, 31 / 3, 32 / 3])
    # pull = 1/2: half-way between the point and its window mean.
    np.testing.assert_allclose(temporal_smooth(x, ends, 1, pull=0.5)[:, 0],
                               [0.25, 1, 2, 2.75, 10.25, 10.75])
    np.testing.assert_array_equal(temporal_smooth(x, ends, 0), x)


@pytest.mark.parametrize("window", [1, 3, 50])
def test_temporal_windows_never_cross_episodes(window):
    rng = np.random.default_rng(0)
    lengths = [7, 1, 12, 5]
    ends = np.concatenate([np.eye(n, dtype=bool)[-1] for n in lengths])
    level = np.repeat(np.arange(len(lengths)) * 100.0, lengths)
    x = np.c_[level, level] + rng.uniform(-1, 1, size=(level.size, 2))
    xs = temporal_smooth(x, ends, window, kernel="triangular")
    # Each smoothed point stays within its own episode's range.
    assert np.all(np.abs(xs - level[:, None]) <= 1.0 + 1e-12)
    # Constant within each episode -> unchanged.
    np.testing.assert_allclose(temporal_smooth(np.c_[level], ends, window)[:, 0], level)


def test_kmeans_recovers_blobs_and_is_deterministic():
    x, truth, _ = planted(seed=1, noise=0.3)
    a = kmeans(x, 3, seed=7)
    b = kmeans(x, 3, seed=7)
    assert same_partition(a.labels, truth)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.centres, b.centres)
    assert a.labels[0] == 0  # numbered by first appearance
    assert a.inertia == pytest.approx(inertia(x, a.labels), rel=1e-9)
    assert a.centres.shape == (3, 2)


def test_spatio_temporal_recovers_planted_clusters():
    # A step at a segment boundary is averaged 3:2 with the next blob (window 2), so
    # its smoothed point lies 40% of the way across; noise 0.15 keeps it on its side.
    x, truth, ends = planted(seed=2, noise=0.15)
    res = spatio_temporal_kmeans(x, 3, ends, window=2, seed=0)
    assert res.labels.shape == truth.shape and res.labels.dtype == np.int64
    assert same_partition(res.labels, truth)
    order = [truth[res.labels == c][0] for c in range(3)]
    np.testing.assert_allclose(res.centres, CENTRES[order], atol=0.2)


def test_temporal_pull_reduces_label_switching():
    x, truth, ends = planted(seed=0, noise=1.3)
    plain = kmeans(x, 3, seed=0)
    st = spatio_temporal_kmeans(x, 3, ends, window=4, seed=0)
    n_true, n_plain, n_st = switches(truth, ends), switches(plain.labels, ends), \
        switches(st.labels, ends)
    # Observed: 33 true, ~300 plain, ~33 spatio-temporal. Margins are wide.
    assert n_st < 0.5 * n_plain
    assert n_st <= 2 * n_true

    def accuracy(lab):  # best match over the 6 permutations
        from itertools import permutations
        return max(np.mean(np.array(p)[lab] == truth) for p in permutations(range(3)))

    assert accuracy(st.labels) > accuracy(plain.labels) + 0.05


def test_window_zero_is_plain_kmeans():
    x, _, ends = planted(seed=3, noise=1.0)
    a = kmeans(x, 3, seed=5, n_init=3)
    b = spatio_temporal_kmeans(x, 3, ends, window=0, seed=5, n_init=3)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.inertia == pytest.approx(b.inertia)


@pytest.mark.parametrize("kernel, pull", [("uniform", 1.0), ("triangular", 1.0),
                                          ("uniform", 0.5)])
def test_spatio_temporal_inertia_is_windowed_objective(kernel, pull):
    # J = sum_t sum_s A_ts ||x_s - c_{label t}||^2, A the (row-stochastic) window weights.
    rng = np.random.default_rng(4)
    x = rng.normal(size=(25, 2))
    ends = np.zeros(25, dtype=bool)
    ends[[9, 24]] = True
    w = 2
    res = spatio_temporal_kmeans(x, 3, ends, window=w, kernel=kernel, pull=pull, seed=1,
                                 n_init=2)
    ep = episode_ids(ends)
    brute = 0.0
    for t in range(25):
        nb = [s for s in range(t - w, t + w + 1) if 0 <= s < 25 and ep[s] == ep[t]]
        a = np.array([1.0 if kernel == "uniform" else w + 1 - abs(s - t) for s in nb])
        a = pull * a / a.sum() + (1 - pull) * (np.array(nb) == t)
        brute += sum(a_s * np.sum((x[s] - res.centres[res.labels[t]]) ** 2)
                     for a_s, s in zip(a, nb))
    assert res.inertia == pytest.approx(brute, rel=1e-10)
    # Lloyd's fixed point: every centre is the mean of its members' smoothed features.
    xs = temporal_smooth(x, ends, w, kernel=kernel, pull=pull)
    for c in np.unique(res.labels):
        np.testing.assert_allclose(res.centres[c], xs[res.labels == c].mean(axis=0))


def test_kmeans_copes_with_duplicate_points():
    x = np.array([[0.0, 0.0]] * 5 + [[1.0, 1.0]] * 5)
    res = kmeans(x, 3, seed=0, n_init=2)
    assert res.labels.shape == (10,) and res.inertia == pytest.approx(0.0)


def test_select_k_finds_three_blobs():
    x, _, ends = planted(seed=5, noise=0.3, n_ep=2, n_seg=6, seg=20)
    sel = select_k(x, [2, 3, 4, 5], seed=0, sample_size=150, n_init=2)
    assert sel.k == 3
    assert sel.silhouettes.shape == (4,) and sel.ks == (2, 3, 4, 5)
    assert np.all(np.diff(sel.inertias) < 0)
    sel_st = select_k(x, [2, 3, 4], seed=0, episode_end=ends, window=2, n_init=2)
    assert sel_st.k == 3


def test_clustering_features_scaling():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(100, 2)) * [10.0, 1.0] + 5.0
    val = rng.normal(size=100) * 3 + 7
    f = clustering_features(emb, val, value_weight=2.0)
    assert f.shape == (100, 3)
    np.testing.assert_allclose(f.mean(axis=0), 0.0, atol=1e-12)
    assert np.mean(f[:, :2].var(axis=0)) == pytest.approx(1.0)
    # The map keeps its aspect ratio.
    assert f[:, 0].std() / f[:, 1].std() == pytest.approx(emb[:, 0].std() / emb[:, 1].std())
    assert f[:, 2].std() == pytest.approx(2.0)
