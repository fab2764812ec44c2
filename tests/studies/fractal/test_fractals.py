"""The fractal distributions: curves by hand, the sampler's law, membership, and the
explicit network and the gradient bound on small cases."""

from __future__ import annotations

import numpy as np
import pytest

from theorydl.studies.fractal import fractals
from theorydl.studies.fractal.construction import cantor_network, forward, grid_check
from theorydl.studies.fractal.gradient import population_gradient


def test_curves_by_hand():
    # Uniform curve, n = 2: q = 1 - 2^(-1/2) at both levels; P(1) = 1/2 + q.
    q = 1 - 2 ** -0.5
    assert fractals.stop_probabilities(2, 0) == pytest.approx([q, q])
    assert fractals.analytic_curve(2, 0) == pytest.approx([0.5, 0.5 + q, 1.0])
    # Degree 10 puts all the negative mass at the finest level; 11 on the two finest.
    assert fractals.analytic_curve(3, 10) == pytest.approx([0.5, 0.5, 0.5, 1.0])
    assert fractals.stop_probabilities(3, 11)[0] == 0.0
    # Degree 1, n = 2: weights 1, 2 -> q = 1 - 2^(-1/3), 1 - 2^(-2/3).
    q1 = 1 - 2 ** (-1 / 3)
    assert fractals.analytic_curve(2, 1)[1] == pytest.approx(0.5 + q1)
    # The published (P(3), P(4)) of Figure 5's curves #1 and #2 (degrees 0 and 12).
    assert fractals.analytic_curve(5, 0)[3:5] == pytest.approx([0.84, 0.93], abs=0.01)
    assert fractals.analytic_curve(5, 12)[3:5] == pytest.approx([0.71, 0.87], abs=0.01)


def test_one_level_cantor_by_enumeration():
    # n = 1 on [-1, 1]: K_1 = [-1, -1/3] u [1/3, 1]; negatives in (-1/3, 1/3).
    ifs = fractals.get_ifs("cantor", 1)
    x, y, stop = fractals.sample(ifs, 1, 0, 4000, np.random.default_rng(0))
    assert np.all((np.abs(x[:, 0]) >= 1 / 3) == (y > 0))
    assert np.all(np.abs(x) <= 1)
    assert abs(np.mean(y > 0) - 0.5) < 0.03
    assert set(stop[y < 0]) == {1} and set(stop[y > 0]) == {0}
    lev = fractals.level_of(ifs, np.array([[-1.0], [-0.5], [0.0], [0.5], [1.2]]), 1)
    assert list(lev) == [1, 1, 0, 1, -1]


@pytest.mark.parametrize("name", fractals.FRACTALS)
@pytest.mark.parametrize("negatives", ["original", "complement"])
def test_sampler_law(name, negatives):
    ifs = fractals.get_ifs(name, 2)
    x, y, stop = fractals.sample(ifs, 3, 5, 6000, np.random.default_rng(1), negatives=negatives)
    lev = fractals.level_of(ifs, x, 3)
    assert np.all((lev == 3) == (y > 0))  # positives in K_3, negatives outside
    assert np.all(lev[y < 0] == stop[y < 0] - 1)  # a level-l negative lies in K_(l-1) \ K_l
    emp = fractals.empirical_curve(ifs, x, y, 3)
    assert emp == pytest.approx(fractals.analytic_curve(3, 5), abs=0.03)


def test_original_negatives_are_central():
    ifs = fractals.get_ifs("cantor", 2)
    x, y, stop = fractals.sample(ifs, 1, 0, 2000, np.random.default_rng(2))
    assert np.all(np.abs(x[y < 0]) < 1 / 3)  # the central square only
    x, y, _ = fractals.sample(ifs, 1, 0, 2000, np.random.default_rng(2), negatives="complement")
    assert np.any(np.abs(x[y < 0]).max(axis=1) > 1 / 3)  # the cross arms too


@pytest.mark.parametrize("d, n", [(1, 1), (1, 4), (2, 1), (2, 3), (3, 2)])
def test_construction_is_exact_on_the_grid(d, n):
    ifs = fractals.get_ifs("cantor", d)
    out = grid_check(n, d, lambda x: fractals.member(ifs, x, n))
    assert out["errors"] == 0 and out["exact_on_positives"]
    assert out["net_depth"] == 2 * n + 1 and out["net_width"] <= 5 * d * 2**d
    assert out["positives"] == (3 * 2**n) ** d  # 3 grid points per axis in each cell


def test_construction_counts_and_a_broken_network_fails():
    ifs = fractals.get_ifs("cantor", 1)
    out = grid_check(2, 1, lambda x: fractals.member(ifs, x, 2))
    assert out["points"] == 27 and out["positives"] == 12  # 4 cells of 3 grid points
    layers = cantor_network(2, 1, 1 / 27)
    x = np.array([[0.0], [-1.0], [-5 / 9 - 0.01]])  # a gap, a corner, a level-2 gap
    assert list(forward(layers, x) > 0) == [False, True, False]
    # Drop the last level's middle-third unit (column d of layer B): the level-2 gap
    # point -2/3 then passes as a positive.
    w, b = (a.copy() for a in layers[3])
    w[:, 1], b[1] = 0.0, 0.0
    layers[3] = (w, b)
    assert forward(layers, np.array([[-2 / 3]]))[0] > 0


def test_gradient_vanishes_on_the_fine_curve_and_not_on_the_coarse():
    j = fractals.theorem_level(1, 2, 0.5)
    assert j == 9  # ceil(log(4 * 1 * 2^2 / 0.5) / log(3/2)) = ceil(8.55)
    fine = population_gradient(12, 10, 1, 2, 0, j, 400, np.random.default_rng(0))
    coarse = population_gradient(12, 0, 1, 2, 1, j, 400, np.random.default_rng(0))
    assert fine["bound"] == 0.0 and fine["max_abs"] < 1e-12
    assert coarse["max_abs"] > 1e-6
    assert coarse["max_abs"] <= coarse["bound"]
