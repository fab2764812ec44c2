"""Blob images and their scores: hand-made images with known scores, the labels, the
generator's determinism and the data file."""

from __future__ import annotations

import numpy as np
import pytest

from theorydl.studies.pooling.blobs import (
    closedness,
    extreme_labels,
    load_blobs,
    make_blobs,
    save_blobs,
    symmetry,
)


def _disc(size: int, radius: float, cx: float, cy: float) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size]
    return (rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2


def test_a_full_disc_is_closed():
    assert closedness(_disc(16, 5, 7.5, 7.5)) == 1.0
    assert closedness(_disc(16, 5, 3.0, 9.0)) == 1.0  # off centre too


def test_holes_and_gaps_lower_closedness_by_what_closing_fills():
    disc = _disc(16, 5, 7.5, 7.5)
    holed = disc.copy()
    holed[6, 6] = holed[9, 9] = False  # two isolated holes: closing fills exactly them
    assert closedness(holed) == pytest.approx((disc.sum() - 2) / disc.sum())
    ring = disc & ~_disc(16, 3, 7.5, 7.5)  # a wide hole stays open under a 3x3 closing
    assert closedness(ring) == pytest.approx(1.0)


def test_symmetric_shapes_have_symmetry_one():
    disc = _disc(16, 5, 7.5, 7.5)
    assert symmetry(disc) == 1.0
    shape = np.zeros((8, 8), dtype=bool)
    shape[2, 1:7] = shape[3, 3:5] = shape[5, [0, 7]] = True  # mirror-symmetric by hand
    assert symmetry(shape) == 1.0


def test_asymmetric_shape_scores_its_overlap_with_its_mirror_image():
    tile = np.zeros((4, 4), dtype=bool)
    tile[0, 0] = tile[0, 3] = tile[1, 0] = True  # (1, 0) has no partner at (1, 3)
    assert symmetry(tile) == pytest.approx(2 / 3)
    off = np.zeros((4, 4), dtype=bool)
    off[:, 0] = True  # a bar at the left edge: no pixel has a partner
    assert symmetry(off) == 0.0


def test_empty_images_are_refused():
    with pytest.raises(ValueError, match="empty"):
        closedness(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="empty"):
        symmetry(np.zeros((4, 4)))


def test_extreme_labels_keep_forty_percent_at_each_end():
    scores = np.array([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 1.0])
    labels = extreme_labels(scores, 0.4)
    assert list(labels) == [-1, 0, 1, 0, 1, 0, 1, 0, -1, 1]  # 0.5 and 0.6 dropped
    assert (labels == 0).sum() == (labels == 1).sum() == 4


def test_generator_is_seeded_and_its_scores_are_the_images():
    a, b = make_blobs(30, 16, [3, 0]), make_blobs(30, 16, [3, 0])
    assert np.array_equal(a.images, b.images)
    assert not np.array_equal(a.images, make_blobs(30, 16, [4, 0]).images)
    assert a.images.any(axis=(1, 2)).all()  # no empty image
    assert all(closedness(im) == s for im, s in zip(a.images, a.closedness))
    assert ((a.closedness > 0) & (a.closedness <= 1)).all()
    assert ((a.symmetry >= 0) & (a.symmetry <= 1)).all()
    # both tasks are non-trivial: scores spread, and the two are not the same ranking
    assert a.closedness.std() > 0.02 and a.symmetry.std() > 0.05
    assert abs(np.corrcoef(a.closedness, a.symmetry)[0, 1]) < 0.9


def test_data_file_round_trip(tmp_path):
    path = tmp_path / "blobs.npz"
    save_blobs(path, 8, 12, 6, 0)
    got = load_blobs(path)
    assert got["meta"] == {"size": 8, "n_train": 12, "n_test": 6, "seed": 0}
    assert got["images_train"].shape == (12, 8, 8) and got["images_test"].shape == (6, 8, 8)
    assert np.array_equal(got["images_train"], make_blobs(12, 8, [0, 0]).images)
    assert np.array_equal(got["symmetry_test"], make_blobs(6, 8, [0, 1]).symmetry)
