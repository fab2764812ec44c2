"""Two-dimensional maps of recorded DQN activations: PCA, then t-SNE.

Zahavy, Ben-Zrihem & Mannor (2016) reduce the last hidden layer of a playing DQN with
PCA to a few tens of dimensions and then map it with t-SNE; the map is what gets
clustered.  This module is a pure function of the activation array and a seed.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings

import numpy as np

__all__ = ["effective_perplexity", "embed"]


def _thread_cap(n_threads: int | None):
    if n_threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=int(n_threads))


def effective_perplexity(perplexity: float, n_samples: int) -> float:
    """The perplexity ``embed`` actually uses for ``n_samples`` points.

    ``min(perplexity, (n_samples - 1) / 3)``.  scikit-learn requires perplexity <
    n_samples, and the Barnes-Hut neighbour graph uses ``3 * perplexity`` neighbours, so
    the usable ceiling is ``(n_samples - 1) / 3`` (for example 30 -> 3.0 at T = 10).  The
    clamp is strictly below ``n_samples`` for every ``n_samples >= 2``.
    """
    if not perplexity > 0:
        raise ValueError(f"perplexity must be > 0, got {perplexity}")
    if n_samples < 2:
        raise ValueError(f"need at least 2 samples, got {n_samples}")
    return float(min(float(perplexity), (n_samples - 1) / 3.0))


def embed(
    activations: np.ndarray,
    *,
    pca_dims: int = 50,
    tsne_dims: int = 2,
    perplexity: float = 30.0,
    seed: int = 0,
    max_iter: int = 1000,
    n_threads: int | None = None,
) -> np.ndarray:
    """Embed activations ``(T, D)`` into a ``(T, tsne_dims)`` float64 t-SNE map.

    Steps:

    1. PCA to ``min(pca_dims, T)`` components (exact SVD, so deterministic) when
       ``D > pca_dims``; skipped when ``D <= pca_dims``.
    2. scikit-learn ``TSNE(n_components=tsne_dims, init="pca", random_state=seed)``.
       Barnes-Hut is used for ``tsne_dims < 4`` and the exact method otherwise (the
       Barnes-Hut tree only supports up to 3 output dimensions).  When PCA
       initialisation is impossible (``tsne_dims > min(T, D)``) the init falls back to
       ``"random"`` (still seeded).

    Small T: the perplexity is clamped to ``effective_perplexity(perplexity, T) =
    min(perplexity, (T - 1) / 3)`` (always < T, as scikit-learn requires), silently.
    ``T >= 2`` is required.

    Units: the output coordinates are t-SNE's (arbitrary scale; only neighbourhoods are
    meaningful).  The result is deterministic for a given seed on a given machine and
    library build.  ``max_iter`` (>= 250) is scikit-learn's iteration budget; lower it
    only for quick checks.  ``n_threads`` caps the OpenMP/BLAS threads for the duration
    of the call (threadpoolctl); ``None`` keeps the process setting.  On an
    oversubscribed machine (more busy threads than cores) t-SNE's OpenMP gradient loop
    slows down by an order of magnitude, so pass 1 when running many embeddings side by
    side.
    """
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(activations, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"activations must be (T, D), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("activations contain NaN or inf")
    t, d = x.shape
    if t < 2:
        raise ValueError(f"need at least 2 time steps, got T={t}")
    if tsne_dims < 1:
        raise ValueError(f"tsne_dims must be >= 1, got {tsne_dims}")
    if pca_dims < 1:
        raise ValueError(f"pca_dims must be >= 1, got {pca_dims}")
    if max_iter < 250:
        raise ValueError(f"max_iter must be >= 250 (scikit-learn's minimum), got {max_iter}")
    if n_threads is not None and int(n_threads) < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")

    if d > pca_dims:
        with _thread_cap(n_threads):
            x = PCA(n_components=min(pca_dims, t), svd_solver="full").fit_transform(x)

    init = "pca" if tsne_dims <= min(x.shape) else "random"
    kwargs = dict(
        n_components=tsne_dims,
        perplexity=effective_perplexity(perplexity, t),
        init=init,
        learning_rate="auto",
        method="barnes_hut" if tsne_dims < 4 else "exact",
        random_state=int(seed),
    )
    # scikit-learn renamed n_iter -> max_iter in 1.5; the project allows >= 1.3.
    iter_name = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"
    kwargs[iter_name] = int(max_iter)
    with warnings.catch_warnings(), _thread_cap(n_threads):
        # Old scikit-learn versions announce default changes with FutureWarnings.
        warnings.simplefilter("ignore", category=FutureWarning)
        y = TSNE(**kwargs).fit_transform(x)
    return np.ascontiguousarray(y, dtype=np.float64)
