"""Separation ranks against what theory fixes by hand (Cohen & Shashua 2017)."""

from __future__ import annotations

import numpy as np
import pytest

from theorydl.studies.pooling.ranks import (
    PARTITIONS,
    convac_ranks,
    grid_tensor,
    partition,
    random_weights,
    separation_rank,
)


@pytest.fixture(scope="module")
def ranks():
    """Ranks of random ConvACs on the 4x4 grid, M = 2, r = 1, 2, 3; one network each."""
    rows = convac_ranks(4, 2, [1, 2, 3], [0])
    return {(r["depth"], r["geometry"], r["channels"], r["partition"]): r for r in rows}


def test_partitions_are_balanced_and_as_named():
    for name in PARTITIONS:
        mask = partition(name, 4)
        assert mask.sum() == 8
    assert partition("left_right", 4)[:, :2].all() and not partition("left_right", 4)[:, 2:].any()
    assert partition("checkerboard", 4)[0, 0] and not partition("checkerboard", 4)[0, 1]
    assert partition("odd_even_columns", 4)[:, 0].all() and not partition("odd_even_columns", 4)[:, 1].any()


def test_rank_of_known_matrices():
    # a product function f(x_I) g(x_J) has rank 1; a sum of two independent ones rank 2
    rng = np.random.default_rng(0)
    f, g = rng.standard_normal(4), rng.standard_normal(4)
    mask = np.array([[True, True], [False, False]])  # top row vs bottom row of a 2x2 grid
    one = np.einsum("i,j->ij", f, g).reshape(2, 2, 2, 2)
    assert separation_rank(one, mask).rank == 1
    two = one + np.einsum("i,j->ij", rng.standard_normal(4), rng.standard_normal(4)).reshape(
        2, 2, 2, 2)
    res = separation_rank(two, mask)
    assert res.rank == 2 and res.full == 4 and res.gap > 1e6


def test_one_channel_gives_rank_one_everywhere(ranks):
    for (depth, geometry, r, name), row in ranks.items():
        if r == 1:
            assert row["rank"] == 1, (depth, geometry, name)


def test_shallow_ranks_are_at_most_the_channels_and_reach_them(ranks):
    for (depth, _, r, name), row in ranks.items():
        if depth == "shallow":
            assert row["rank"] == r, name  # <= r by theory; = r for generic weights


def test_deep_square_left_right_is_capped_by_the_top_width_and_mirror_is_not(ranks):
    for r in (2, 3):
        for name in ("left_right", "top_bottom"):
            assert ranks[("deep", "square", r, name)]["rank"] <= r
            assert ranks[("deep", "mirror", r, name)]["rank"] > r
        # interleaved partitions: square windows split them, so square is not capped there
        for name in ("checkerboard", "odd_even_columns"):
            assert ranks[("deep", "square", r, name)]["rank"] > r


def test_ranks_are_well_separated_from_noise(ranks):
    assert min(row["gap"] for row in ranks.values() if row["rank"] < row["full"]) > 1e5


def test_mirror_and_square_agree_on_a_reflection_symmetric_grid_function():
    """A network whose first level is constant over pixels computes a symmetric tensor;
    its grid tensor is the same under every permutation of pixels that the geometry
    respects: a sanity check that the mirror windows really permute positions."""
    w = random_weights(4, 2, 2, "deep", 0)
    sq = grid_tensor(4, 2, w, "square", "deep")
    mi = grid_tensor(4, 2, w, "mirror", "deep")
    # mirror pooling of an image = square pooling of the mirror-permuted image
    order = [0, 3, 1, 2]  # rows/cols 0, 3 then 1, 2 become neighbours (mirror_permute on 4)
    perm = [r * 4 + c for r in order for c in order]
    np.testing.assert_allclose(mi, sq.transpose(np.argsort(perm)))
