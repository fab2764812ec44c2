"""PCA + t-SNE embedding: shapes, perplexity clamping, determinism.

Runs single-threaded (``n_threads=1``): the machine is shared, and t-SNE's OpenMP loop
is many times slower when oversubscribed.  ``max_iter=250`` (scikit-learn's minimum)
keeps every fit well under a second.
"""

from __future__ import annotations

import numpy as np
import pytest

from theorydl.studies.samdp.embedding import effective_perplexity, embed

FAST = dict(max_iter=250, n_threads=1)


def _acts(t: int, d: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(t, d))


def test_shape_with_pca():
    y = embed(_acts(80, 64), pca_dims=10, seed=0, **FAST)
    assert y.shape == (80, 2) and y.dtype == np.float64 and np.all(np.isfinite(y))


def test_shape_without_pca_and_3d():
    y = embed(_acts(40, 8), pca_dims=50, tsne_dims=3, seed=0, **FAST)
    assert y.shape == (40, 3)


def test_effective_perplexity():
    assert effective_perplexity(30.0, 1000) == 30.0
    assert effective_perplexity(30.0, 10) == pytest.approx(3.0)
    for t in range(2, 100):
        assert 0 < effective_perplexity(30.0, t) < t
    with pytest.raises(ValueError):
        effective_perplexity(30.0, 1)


@pytest.mark.parametrize("t", [2, 5, 12])
def test_small_t_clamps_perplexity(t):
    # scikit-learn alone rejects perplexity 30 >= T here.
    y = embed(_acts(t, 20), perplexity=30.0, seed=0, **FAST)
    assert y.shape == (t, 2) and np.all(np.isfinite(y))


def test_deterministic_per_seed():
    x = _acts(60, 32, seed=3)
    a = embed(x, seed=11, **FAST)
    b = embed(x, seed=11, **FAST)
    np.testing.assert_array_equal(a, b)


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        embed(np.zeros(10), **FAST)
    with pytest.raises(ValueError):
        embed(np.zeros((1, 4)), **FAST)
    x = _acts(10, 4)
    x[0, 0] = np.nan
    with pytest.raises(ValueError):
        embed(x, **FAST)
