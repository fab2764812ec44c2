"""VMSE, inertia, intensity factor, transition entropy and greedy consistency."""

from __future__ import annotations

import math

import numpy as np
import pytest

from theorydl.studies.samdp.criteria import (
    evaluate_samdp,
    greedy_consistency,
    greedy_skills,
    inertia,
    intensity_factor,
    transition_entropy,
    vmse,
)
from theorydl.studies.samdp.model import build_samdp, transition_matrix


def test_vmse():
    assert vmse([1.0, 2.0, -3.0], [1.0, 2.0, -3.0]) == 0.0
    assert vmse([1.0, 2.0], [1.0, 0.0]) == pytest.approx(4 / 5)
    assert vmse([1.0, 2.0], [1.1, 2.0]) > 0
    assert vmse([1.0, np.nan, 2.0], [1.0, 5.0, 0.0]) == pytest.approx(4 / 5)  # empty skipped
    assert vmse([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert vmse([0.0, 0.0], [1.0, 0.0]) == math.inf


def test_vmse_zero_when_dqn_values_match_samdp():
    labels = np.array([0, 0, 1, 1, 1, 2] * 3 + [0])
    reward = np.array([1.0, 0, 0, 0, 2, 3] * 3 + [0.0])
    ends = np.zeros(labels.size, dtype=bool)
    ends[-1] = True
    v = build_samdp(labels, np.zeros(labels.size), reward, ends, 0.5).samdp_values
    s = build_samdp(labels, v[labels], reward, ends, 0.5)  # DQN value = SAMDP value
    assert vmse(s.entry_values, s.samdp_values) == pytest.approx(0.0, abs=1e-24)
    assert vmse(s.cluster_values, s.samdp_values) == pytest.approx(0.0, abs=1e-24)
    s2 = build_samdp(labels, v[labels] + 0.1, reward, ends, 0.5)
    assert vmse(s2.entry_values, s2.samdp_values) > 0


def test_inertia_by_hand():
    assert inertia(np.array([[0.0], [2.0], [10.0]]), np.array([0, 0, 1])) == pytest.approx(2.0)
    assert inertia(np.array([[0.0], [2.0], [10.0]]), np.array([0, 0, 1]),
                   centres=np.array([[0.0], [9.0]])) == pytest.approx(5.0)


def test_intensity_factor_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 1, 2])
    ends = np.array([0, 0, 0, 0, 1, 0, 1], dtype=bool)
    # Pairs inside episodes: 00 00 01 11 | 12 -> 3 in, 2 out; the 1|1 across the
    # boundary does not count.
    assert intensity_factor(labels, ends) == pytest.approx(1.5)
    assert intensity_factor(np.zeros(4, int), np.zeros(4, bool)) == math.inf
    assert math.isnan(intensity_factor(np.array([0, 1]), np.array([True, True])))


@pytest.mark.parametrize("k", [2, 3, 5, 8])
def test_entropy_extremes(k):
    perm = np.roll(np.eye(k), 1, axis=1)  # deterministic cycle, no self-loops
    assert transition_entropy(perm) == 0.0
    uniform = (np.ones((k, k)) - np.eye(k)) / (k - 1)
    assert transition_entropy(uniform) == pytest.approx(math.log2(k - 1))
    # With the terminal column: k targets besides the cluster itself.
    uniform_t = (np.ones((k, k + 1)) - np.eye(k, k + 1)) / k
    assert transition_entropy(uniform_t) == pytest.approx(math.log2(k))


def test_entropy_bounds_on_random_p():
    rng = np.random.default_rng(0)
    for _ in range(50):
        k = int(rng.integers(2, 10))
        counts = rng.integers(0, 5, size=(k, k + 1)) * (rng.random((k, k + 1)) < 0.7)
        p = transition_matrix(counts, prune=float(rng.choice([0.0, 0.1])))
        h = transition_entropy(p)
        assert 0.0 <= h <= math.log2(k) + 1e-12
        square = transition_matrix(counts[:, :k])  # a chain without the terminal state
        assert 0.0 <= transition_entropy(square) <= math.log2(k - 1) + 1e-12


def test_entropy_skips_absorbing_rows_and_weights():
    p = np.array([[0, 0.5, 0.5], [0, 0, 0], [1.0, 0, 0]])
    assert transition_entropy(p) == pytest.approx(0.5)  # mean of 1 bit and 0 bits
    assert transition_entropy(p, weights=[3, 100, 1]) == pytest.approx(0.75)
    assert transition_entropy(np.zeros((3, 3))) == 0.0


def _greedy_world():
    """Good episodes: 0 0 -> 1 1 (rewards 5, 5) -> 3 -> end.  Bad ones: 0 0 -> 2 2 (0, 0)
    -> 3 -> end.

    V3 = 0 (its only skill, into the terminal state, pays 0), V1 = 5 + 5 g, V2 = 0, so
    the greedy skill from 0 is 0 -> 1; from 1 and 2 the only skill (-> 3) is greedy, and
    from 3 the terminal one (index 4).  Good episodes take 3/3 greedy skills, bad ones 2/3.
    """
    good, bad = [0, 0, 1, 1, 3], [0, 0, 2, 2, 3]
    r_good, r_bad = [0, 0, 5, 5, 0], [0, 0, 0, 0, 0]
    labels = np.array(good + bad + good + bad)
    reward = np.array(r_good + r_bad + r_good + r_bad, dtype=float)
    ends = np.zeros(labels.size, dtype=bool)
    ends[4::5] = True
    return labels, reward, ends


def test_greedy_consistency_by_hand():
    labels, reward, ends = _greedy_world()
    s = build_samdp(labels, np.zeros(labels.size), reward, ends, 0.9)
    np.testing.assert_allclose(s.samdp_values, [0.81 * 9.5 / 2, 9.5, 0.0, 0.0])
    np.testing.assert_array_equal(greedy_skills(s), [1, 3, 3, 4])
    gc = greedy_consistency(s, reward, ends, fraction=0.5)
    assert (gc.n_top_episodes, gc.n_bottom_episodes) == (2, 2)
    assert (gc.top, gc.bottom) == pytest.approx((1.0, 2 / 3))
    assert gc.difference == pytest.approx(1 / 3)


def test_greedy_skill_may_be_the_terminal_one():
    # From 0: either end the episode paying 4, or go to 1 (paying 1) where ending pays 2:
    # 1 + g * 2 = 2.8 < 4 at g = 0.9, so ending is greedy.
    labels = np.array([0, 0, 1, 0])
    reward = np.array([0, 1.0, 2.0, 4.0])
    ends = np.array([0, 0, 1, 1], dtype=bool)
    s = build_samdp(labels, np.zeros(4), reward, ends, 0.9)
    np.testing.assert_array_equal(greedy_skills(s), [2, 2])


def test_greedy_consistency_ignores_truncated_last_episode():
    labels, reward, ends = _greedy_world()
    # Append a truncated, high-return episode that takes the non-greedy skill.
    labels = np.r_[labels, 0, 0, 2, 2]
    reward = np.r_[reward, 0, 0, 0, 100.0]
    ends = np.r_[ends, False, False, False, False]
    s = build_samdp(labels, np.zeros(labels.size), reward, ends, 0.9)
    gc = greedy_consistency(s, reward, ends, fraction=0.5)
    assert (gc.top, gc.bottom) == pytest.approx((1.0, 2 / 3))
    # Marked as a time limit (an episode_end that is a truncation), it is left out too.
    ends2 = ends.copy()
    ends2[-1] = True
    cut = np.zeros(ends.size, dtype=bool)
    cut[-1] = True
    s2 = build_samdp(labels, np.zeros(labels.size), reward, ends2, 0.9, truncated=cut)
    gc2 = greedy_consistency(s2, reward, ends2, fraction=0.5, truncated=cut)
    assert (gc2.top, gc2.bottom) == pytest.approx((1.0, 2 / 3))


def test_evaluate_samdp_keys():
    labels, reward, ends = _greedy_world()
    s = build_samdp(labels, np.arange(labels.size, dtype=float), reward, ends, 0.9)
    out = evaluate_samdp(s, np.c_[labels, labels].astype(float), reward, ends, fraction=0.5)
    assert set(out) == {"vmse", "vmse_all_steps", "vmse_returns", "inertia",
                        "intensity_factor", "entropy", "greedy_top", "greedy_bottom",
                        "greedy_difference"}
    # Rows 0 (1 bit), 1, 2 and 3 (0 bits: 3's only skill is into the terminal state).
    assert out["inertia"] == 0.0 and out["entropy"] == pytest.approx(1 / 4)
    assert out["vmse"] == vmse(s.entry_values, s.samdp_values)
    assert out["vmse_all_steps"] == vmse(s.cluster_values, s.samdp_values)
    # Deterministic episodes: the SAMDP values are the observed returns.
    assert out["vmse_returns"] == pytest.approx(0.0, abs=1e-24)
