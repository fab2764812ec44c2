"""The layer-wise learner: exact recovery of a noiseless two-level model, where k-means
on the raw patches does not recover level 2 (a class owns several patches)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from theorydl.studies.layerwise.algorithm import (
    Training,
    adjusted_rand,
    cluster_patches,
    fit_e2e,
    fit_layerwise,
    one_hot,
)
from theorydl.studies.layerwise.generative import HierarchicalModel


def test_noiseless_two_level_model_is_recovered_exactly():
    m = HierarchicalModel(s=3, classes=(4, 3), n_labels=3, variants=2, top_noise=0.3,
                          noise=0.0, seed=0)
    train, test = m.sample(200, 1), m.sample(200, 2)
    fits = fit_layerwise(train.x, train.y, test.x, test.y, [0], m.classes, s=3,
                         width=16, n_labels=3, training=Training(epochs=20, lr=0.01),
                         top=Training(epochs=20, lr=0.03), init_scale=0.1,
                         cluster_samples=5000, n_init=2, device=torch.device("cpu"))
    for fit in fits:
        for level in range(2):
            assert adjusted_rand(test.latents[level], fit.codes[level][1]) == 1.0
            assert adjusted_rand(train.latents[level], fit.codes[level][0]) == 1.0
        assert [c[1].shape for c in fit.codes] == [(200, 9, 9), (200, 3, 3)]
        # raw k-means sees the pixels' classes but not level 2's (two patches a class)
        assert adjusted_rand(test.latents[0], fit.raw_codes[0][1]) == 1.0
        assert adjusted_rand(test.latents[1], fit.raw_codes[1][1]) < 0.9
        assert fit.test_accuracy > 0.9 and fit.seconds > 0


def test_e2e_baseline_stacks_its_seeds():
    m = HierarchicalModel(s=3, classes=(4, 3), n_labels=3, noise=0.0, seed=0)
    train, test = m.sample(100, 1), m.sample(50, 2)
    tr, te, seconds = fit_e2e(train.x, train.y, test.x, test.y, [0, 1, 2], s=3, depth=2,
                              width=8, n_labels=3, training=Training(epochs=3),
                              device=torch.device("cpu"))
    assert tr.shape == te.shape == (3,) and seconds > 0
    assert len(set(tr.tolist())) > 1 or len(set(te.tolist())) > 1  # seeds differ


def test_adjusted_rand_and_one_hot():
    classes = np.array([[0, 0], [1, 2]])
    assert adjusted_rand(classes, np.array([[5, 5], [3, 4]])) == 1.0  # names do not matter
    assert adjusted_rand(classes, np.array([[5, 3], [5, 3]])) < 0.5
    codes = np.array([[[2, 0]]])
    assert one_hot(codes, 3).shape == (1, 3, 1, 2)
    assert one_hot(codes, 3)[0, :, 0, 0].tolist() == [0.0, 0.0, 1.0]


def test_clustering_assigns_test_patches_to_the_training_centres():
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [5.0, 5.0]])
    train = centres[rng.integers(2, size=(30, 2, 2))] + rng.normal(0, 0.1, (30, 2, 2, 2))
    test = centres[np.array([[[0, 1]]])]
    ctr, cte = cluster_patches(train, test, 2, seed=0, max_samples=50)
    assert ctr.shape == (30, 2, 2) and cte.shape == (1, 1, 2)
    assert cte[0, 0, 0] != cte[0, 0, 1]
