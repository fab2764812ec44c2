"""SAMDP construction on hand-built chains, checked against answers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from theorydl.samdp import (
    build_samdp,
    merge_short_runs,
    samdp_values,
    segment_runs,
    skill_instances,
    transition_matrix,
)

GAMMA = 0.5


def _ends(t: int, *last_steps: int) -> np.ndarray:
    e = np.zeros(t, dtype=bool)
    e[list(last_steps)] = True
    return e


@pytest.fixture
def cycle():
    """One episode going round 0 -> 1 -> 2 -> 0 three times, then entering 0 once more.

    Runs: cluster 0 for 2 steps (rewards 1, 0), cluster 1 for 3 steps (0, 0, 2),
    cluster 2 for 1 step (3).  With gamma = 1/2 the discounted run rewards are
    R0 = 1, R1 = 0 + 0 + 2/4 = 0.5, R2 = 3.
    """
    labels = np.array([0, 0, 1, 1, 1, 2] * 3 + [0])
    reward = np.array([1.0, 0, 0, 0, 2, 3] * 3 + [0.0])
    return labels, reward, _ends(labels.size, labels.size - 1)


def test_cycle_matrices_by_hand(cycle):
    labels, reward, ends = cycle
    s = build_samdp(labels, np.zeros(labels.size), reward, ends, GAMMA)
    np.testing.assert_array_equal(s.P, [[0, 1, 0], [0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(s.counts, [[0, 3, 0], [0, 0, 3], [3, 0, 0]])
    np.testing.assert_allclose(s.skill_reward, [[0, 1.0, 0], [0, 0, 0.5], [3.0, 0, 0]])
    np.testing.assert_allclose(s.skill_length, [[0, 2, 0], [0, 0, 3], [1, 0, 0]])
    np.testing.assert_array_equal(s.masses, [7, 9, 3])
    np.testing.assert_allclose(s.discount, [[0, 0.25, 0], [0, 0, 0.125], [0.5, 0, 0]])
    assert s.K == 3 and s.gamma == GAMMA


def test_cycle_values_closed_form(cycle):
    # Around the cycle: V0 = (R0 + g^2 R1 + g^5 R2) / (1 - g^6) = 1.21875 * 64/63 = 78/63,
    # V1 = (R1 + g^3 R2 + g^4 R0) / (1 - g^6) = 60/63, V2 = (R2 + g R0 + g^3 R1)/(...) = 228/63.
    labels, reward, ends = cycle
    s = build_samdp(labels, np.zeros(labels.size), reward, ends, GAMMA)
    np.testing.assert_allclose(s.samdp_values, np.array([78, 60, 228]) / 63, rtol=1e-12)
    # And the general closed form for other gammas.
    for g in (0.0, 0.3, 0.9, 0.99):
        v = build_samdp(labels, np.zeros(labels.size), reward, ends, g).samdp_values
        r0, r1, r2 = 1.0, 2 * g * g, 3.0
        den = 1 - g ** 6
        np.testing.assert_allclose(
            v, [(r0 + g**2 * r1 + g**5 * r2) / den,
                (r1 + g**3 * r2 + g**4 * r0) / den,
                (r2 + g * r0 + g**3 * r1) / den], rtol=1e-10)


def test_cluster_values_are_mean_dqn_value(cycle):
    labels, reward, ends = cycle
    value = np.arange(labels.size, dtype=float)
    s = build_samdp(labels, value, reward, ends, GAMMA)
    for c in range(3):
        assert s.cluster_values[c] == pytest.approx(value[labels == c].mean())


def test_samdp_is_frozen(cycle):
    labels, reward, ends = cycle
    s = build_samdp(labels, np.zeros(labels.size), reward, ends, GAMMA)
    with pytest.raises(AttributeError):
        s.gamma = 0.1
    with pytest.raises(ValueError):
        s.transition[0, 0] = 1.0


def test_rows_stochastic_or_zero_no_self_loops():
    rng = np.random.default_rng(3)
    labels = np.repeat(rng.integers(0, 6, size=200), rng.integers(1, 5, size=200))
    ends = rng.random(labels.size) < 0.02
    s = build_samdp(labels, rng.normal(size=labels.size), rng.normal(size=labels.size),
                    ends, 0.95, n_clusters=7, min_skill_length=2, prune=0.1)
    sums = s.P.sum(axis=1)
    assert np.all(np.isclose(sums, 1.0) | (sums == 0.0))
    assert np.all(np.diag(s.P) == 0)
    assert np.all(s.P[6] == 0) and s.masses[6] == 0 and np.isnan(s.cluster_values[6])
    assert np.all((s.P == 0) | (s.P >= 0.1))
    assert np.all(np.isfinite(s.samdp_values))


def test_pruning_and_renormalisation_by_hand():
    counts = np.array([
        [5, 6, 3, 1],  # diagonal dropped -> (0, .6, .3, .1); prune .15 -> (0, 2/3, 1/3, 0)
        [1, 5, 0, 0],  # -> (1, 0, 0, 0)
        [1, 1, 0, 1],  # thirds, all below .4 -> pruned away: absorbing
        [0, 0, 0, 0],  # never left: absorbing
    ])
    np.testing.assert_allclose(transition_matrix(counts, 0.0)[0], [0, 0.6, 0.3, 0.1])
    np.testing.assert_allclose(transition_matrix(counts, 0.15),
                               [[0, 2 / 3, 1 / 3, 0], [1, 0, 0, 0],
                                [1 / 3, 1 / 3, 0, 1 / 3], [0, 0, 0, 0]])
    np.testing.assert_allclose(transition_matrix(counts, 0.4)[2], [0, 0, 0, 0])
    np.testing.assert_allclose(transition_matrix(counts, 0.4)[0], [0, 1, 0, 0])


def test_pruning_through_build():
    # From 0: to 1 three times, to 2 once (one episode each) -> P0 = (0, .75, .25).
    ep_a = [0, 0, 1, 1]
    ep_b = [0, 0, 2, 2]
    labels = np.array(ep_a * 3 + ep_b)
    ends = np.zeros(labels.size, dtype=bool)
    ends[3::4] = True
    z = np.zeros(labels.size)
    np.testing.assert_allclose(build_samdp(labels, z, z, ends, 0.9).P[0], [0, 0.75, 0.25])
    np.testing.assert_allclose(build_samdp(labels, z, z, ends, 0.9, prune=0.3).P[0], [0, 1, 0])


def test_absorbing_chain_gamma_one_by_hand():
    # 0 (rewards 1, 1) -> 1 (reward 5) -> 2 (reward 7, terminal run: no skill).
    labels = np.array([0, 0, 1, 2])
    reward = np.array([1.0, 1.0, 5.0, 7.0])
    s = build_samdp(labels, np.zeros(4), reward, _ends(4, 3), 1.0)
    np.testing.assert_allclose(s.P, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    np.testing.assert_allclose(s.samdp_values, [7.0, 5.0, 0.0])


def test_singular_chain_falls_back_with_warning(cycle):
    labels, reward, ends = cycle
    with pytest.warns(RuntimeWarning, match="singular"):
        s = build_samdp(labels, np.zeros(labels.size), reward, ends, 1.0)
    assert np.all(np.isfinite(s.samdp_values))


def test_samdp_values_direct():
    p = np.array([[0, 0.5, 0.5], [0, 0, 1.0], [0, 0, 0]])
    r = np.array([[0, 2.0, 4.0], [0, 0, 1.0], [0, 0, 0]])
    length = np.array([[0, 1, 2], [0, 0, 1], [0, 0, 0]])
    g = 0.8
    # V2 = 0, V1 = 1, V0 = .5 (2 + .8 * 1) + .5 (4 + .64 * 0) = 3.4
    np.testing.assert_allclose(samdp_values(p, r, length, g), [3.4, 1.0, 0.0])


def test_skills_and_runs_never_cross_episodes():
    labels = np.array([0, 0, 1, 1, 2, 2, 0, 0])
    ends = _ends(8, 3, 7)
    runs = segment_runs(labels, ends)
    np.testing.assert_array_equal(runs.start, [0, 2, 4, 6])
    np.testing.assert_array_equal(runs.episode, [0, 0, 1, 1])
    sk = skill_instances(labels, np.ones(8), ends, 0.5)
    np.testing.assert_array_equal(np.c_[sk.source, sk.target], [[0, 1], [2, 0]])
    np.testing.assert_allclose(sk.reward, [1.5, 1.5])
    # Same cluster on both sides of a boundary: two runs, not one.
    runs = segment_runs(np.array([1, 1, 1, 1]), _ends(4, 1))
    np.testing.assert_array_equal(runs.length, [2, 2])


@pytest.mark.parametrize("labels, ends, m, expected", [
    # A blip between two runs of one cluster is erased.
    ([0, 0, 0, 1, 0, 0, 0], [], 2, [0] * 7),
    # Between different clusters it joins the longer neighbour ...
    ([0, 0, 1, 2, 2, 2], [], 2, [0, 0, 2, 2, 2, 2]),
    # ... the preceding one on a tie.
    ([0, 0, 0, 1, 2, 2, 2], [], 2, [0, 0, 0, 0, 2, 2, 2]),
    # At the start of an episode it joins its only neighbour.
    ([1, 0, 0, 0], [], 2, [0, 0, 0, 0]),
    # Shortest first: the 1-step run of 2 goes to the longer 0-run (4 > 2), then the
    # 2-step run of 1 sits between two 0 runs and is erased.
    ([0, 0, 0, 1, 1, 2, 0, 0, 0], [], 3, [0] * 9),
    # Never across an episode boundary: the lone 1 at the end of episode 0 joins the 0s
    # even though episode 1 continues in cluster 1.
    ([0, 0, 0, 1, 1, 1, 1], [3], 2, [0, 0, 0, 0, 1, 1, 1]),
    # A short run alone in its episode stays.
    ([0, 0, 0, 1, 2, 2, 2], [2, 3], 2, [0, 0, 0, 1, 2, 2, 2]),
    # m <= 1 changes nothing.
    ([0, 1, 0, 2], [], 1, [0, 1, 0, 2]),
])
def test_min_skill_length_merging(labels, ends, m, expected):
    t = len(labels)
    out = merge_short_runs(np.array(labels), _ends(t, *ends), m)
    np.testing.assert_array_equal(out, expected)


def test_min_skill_length_in_build():
    # 0 0 0 | 1 | 0 0 0 2 2 2: the blip is erased, leaving the single skill 0 -> 2.
    labels = np.array([0, 0, 0, 1, 0, 0, 0, 2, 2, 2])
    reward = np.ones(10)
    s = build_samdp(labels, np.zeros(10), reward, _ends(10, 9), 0.5, min_skill_length=2)
    np.testing.assert_array_equal(s.counts, [[0, 0, 1], [0, 0, 0], [0, 0, 0]])
    assert s.skill_length[0, 2] == 7
    assert s.skill_reward[0, 2] == pytest.approx(sum(0.5 ** k for k in range(7)))
    np.testing.assert_array_equal(s.masses, [7, 0, 3])
    # Without merging there are three skills 0 -> 1 -> 0 -> 2.
    s1 = build_samdp(labels, np.zeros(10), reward, _ends(10, 9), 0.5)
    assert s1.counts.sum() == 3
