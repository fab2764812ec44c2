"""The hierarchical generative model: latent classes at every level, checked cell by cell
on tiny models; seeded and nested samples; the noise and the top-image law."""

from __future__ import annotations

import numpy as np
import pytest

from theorydl.studies.layerwise.generative import BLOCK, MIN_HAMMING, HierarchicalModel


def test_every_level_refines_the_one_above_cell_by_cell():
    m = HierarchicalModel(s=2, classes=(2, 3), n_labels=2, variants=2, top_noise=0.0,
                          noise=0.0, seed=5)
    assert (m.depth, m.side, m.grid(0), m.grid(1), m.grid(2)) == (2, 8, 8, 4, 2)
    pixels, level2 = m.patches
    assert pixels.shape == (2, 1, 2, 2) and level2.shape == (3, 2, 2, 2)
    z = m.sample(7, 0)
    assert z.x.shape == (7, 8, 8) and [a.shape for a in z.latents] == [(7, 4, 4), (7, 2, 2)]
    level1, top = z.latents
    for i in range(7):
        assert np.array_equal(top[i], m.templates[z.y[i]])  # no top noise: the template
        for a in range(2):
            for b in range(2):  # a level-2 cell becomes one of its class's two patches
                block = level1[i, 2 * a:2 * a + 2, 2 * b:2 * b + 2]
                assert any(np.array_equal(block, level2[top[i, a, b], v]) for v in range(2))
        for a in range(4):
            for b in range(4):  # a level-1 cell becomes its class's pixel patch
                block = z.x[i, 2 * a:2 * a + 2, 2 * b:2 * b + 2]
                assert np.array_equal(block, pixels[level1[i, a, b], 0])


def test_supports_are_disjoint_and_pixel_patches_far_apart():
    m = HierarchicalModel(s=3, classes=(8, 4), n_labels=4, variants=3, seed=1)
    flat = m.patches[1].reshape(-1, 9)
    assert len({tuple(p) for p in flat}) == len(flat)  # each patch names its class
    pix = m.patches[0].reshape(8, 9)
    dist = (pix[:, None] != pix[None]).sum(-1)
    assert dist[~np.eye(8, dtype=bool)].min() >= MIN_HAMMING
    assert len({tuple(t.ravel()) for t in m.templates}) == 4


def test_a_tiny_model_by_hand():
    """s = 2, one latent level of 2 classes, 2 labels: a 2 x 2 top image over {0, 1} per
    label, each cell a 2 x 2 pixel patch: an image is a 4 x 4 picture of the template."""
    m = HierarchicalModel(s=2, classes=(2,), n_labels=2, variants=1, top_noise=0.0,
                          noise=0.0, seed=0)
    z = m.sample(3, 9)
    p = m.patches[0][:, 0]
    for i in range(3):
        t = m.templates[z.y[i]]
        expected = np.block([[p[t[0, 0]], p[t[0, 1]]], [p[t[1, 0]], p[t[1, 1]]]])
        assert np.array_equal(z.x[i], expected)
        assert np.array_equal(z.latents[0][i], t)


def test_samples_are_seeded_and_nested():
    m = HierarchicalModel(seed=3)
    big, small = m.sample(BLOCK + 50, 4), m.sample(40, 4)
    assert len(big) == BLOCK + 50
    assert np.array_equal(big.x[:40], small.x) and np.array_equal(big.y[:40], small.y)
    assert all(np.array_equal(a[:40], b) for a, b in zip(big.latents, small.latents))
    again = m.sample(BLOCK + 50, 4)
    assert np.array_equal(again.x, big.x)
    assert not np.array_equal(m.sample(40, 5).x, small.x)
    assert not np.array_equal(HierarchicalModel(seed=4).sample(40, 4).x, small.x)


def test_noise_and_top_noise_have_their_laws():
    m = HierarchicalModel(noise=0.3, top_noise=1.0, seed=2)
    z = m.sample(2000, 0)
    clean = m.patches[0][z.latents[0], 0].transpose(0, 1, 3, 2, 4).reshape(z.x.shape)
    assert float((z.x - clean).std()) == pytest.approx(0.3, rel=0.01)
    # top_noise 1: every top cell uniform over the 4 classes, whatever the label
    counts = np.bincount(z.latents[-1].ravel(), minlength=4) / z.latents[-1].size
    assert np.allclose(counts, 0.25, atol=0.01)


def test_bad_models_are_refused():
    with pytest.raises(ValueError):
        HierarchicalModel(classes=(8, 1))
    with pytest.raises(ValueError):
        HierarchicalModel(s=2, classes=(2,), n_labels=17)
