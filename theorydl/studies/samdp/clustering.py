"""K-means on t-SNE maps: the plain baseline and the spatio-temporal variant.

Conventions (all functions are pure; randomness only through an explicit ``seed``):

* ``features`` are ``(T, F)`` float arrays, one row per recorded time step, in
  trajectory order.  ``episode_end`` is ``(T,)`` bool, True at the last step of an
  episode; a trailing run of steps without a final True is a truncated last episode.
* Cluster labels are ``(T,)`` int64 in ``[0, K)``, renumbered by **first appearance in
  time** (the first step is in cluster 0, the next new cluster met is 1, ...), so results
  do not depend on the arbitrary order in which centres were seeded.  Clusters that
  end up empty (only possible with fewer than K distinct points) get the last numbers.

Spatio-temporal K-means (Zahavy et al. 2016, Sec. "spatio-temporal cluster analysis")
-----------------------------------------------------------------------------------
Every point is replaced, before assignment, by a weighted average of itself and its
temporal neighbours ``t - w .. t + w`` **inside the same episode** (``temporal_smooth``)::

    xs_t = (1 - pull) * x_t + pull * sum_{|k| <= w, ep(t+k) = ep(t)} a_k x_{t+k} / sum a_k

with ``a_k = 1`` (``kernel="uniform"``) or ``a_k = w + 1 - |k|`` (``"triangular"``).
Windows are truncated at episode boundaries and at the ends of the recording, never
wrapped or carried across.  Lloyd iterations then run on ``xs``.  Writing
``xs_t = sum_s A_ts x_s`` (``A`` row-stochastic, non-negative), one has for any centre c

    sum_s A_ts ||x_s - c||^2 = ||xs_t - c||^2 + spread_t,
    spread_t = sum_s A_ts ||x_s - xs_t||^2   (independent of c),

so assigning ``xs_t`` to its nearest centre and moving each centre to the mean of its
members' ``xs`` is *exact* Lloyd descent on the windowed objective

    J(labels, centres) = sum_t sum_s A_ts ||x_s - centre[label_t]||^2,

i.e. a point is charged the distance of its whole temporal neighbourhood to the centre
it is assigned to.  ``window=0`` (or ``pull=0``) is plain K-means.  The returned
``centres`` are in the smoothed space and ``inertia`` is ``J`` (for ``window=0`` the
ordinary within-cluster sum of squares).  For a spatial-only comparison across methods
use ``theorydl.studies.samdp.criteria.inertia(features, labels)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "KMeansResult",
    "KSelection",
    "clustering_features",
    "episode_ids",
    "kmeans",
    "select_k",
    "spatio_temporal_kmeans",
    "temporal_smooth",
]


@dataclass(frozen=True, eq=False)
class KMeansResult:
    """Outcome of one (spatio-temporal) K-means fit.

    labels: ``(T,)`` int64 in ``[0, K)``, numbered by first appearance in time.
    centres: ``(K, F)`` float64, in the space the assignment was made in (the smoothed
        features for spatio-temporal K-means).
    inertia: the objective minimised (within-cluster sum of squares; the windowed ``J``
        for spatio-temporal K-means), in squared feature units.
    n_iter: Lloyd iterations of the best restart.
    """

    labels: np.ndarray
    centres: np.ndarray
    inertia: float
    n_iter: int


@dataclass(frozen=True, eq=False)
class KSelection:
    """``select_k``'s answer: the chosen ``k`` and, per candidate in ``ks`` order, the
    silhouette score, the inertia and the fit itself."""

    k: int
    ks: tuple[int, ...]
    silhouettes: np.ndarray
    inertias: np.ndarray
    results: tuple[KMeansResult, ...]


# --------------------------------------------------------------------------- helpers


def _as_features(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"features must be (T, F), got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("features contain NaN or inf")
    return x


def episode_ids(episode_end: np.ndarray) -> np.ndarray:
    """``(T,)`` int64 episode index of every step: 0 until (and including) the first
    True of ``episode_end``, then 1, and so on."""
    ends = np.asarray(episode_end, dtype=bool)
    if ends.ndim != 1:
        raise ValueError(f"episode_end must be (T,), got shape {ends.shape}")
    ids = np.zeros(ends.shape[0], dtype=np.int64)
    if ends.shape[0] > 1:
        np.cumsum(ends[:-1], out=ids[1:])
    return ids


def clustering_features(
    embedding: np.ndarray, value: np.ndarray, *, value_weight: float = 1.0
) -> np.ndarray:
    """The ``(T, E + 1)`` features ``[embedding, value]`` that are clustered.

    * embedding ``(T, E)``: centred per column and divided by **one** common scale, the
      root-mean-square of the column standard deviations, so the map keeps its shape
      (no axis is stretched relative to another) and has unit typical spread;
    * value ``(T,)``: standardised (zero mean, unit standard deviation) and multiplied
      by ``value_weight``; with 1.0 the value weighs like one embedding axis, with 0 it
      is ignored.

    Constant columns are only centred (a zero scale is replaced by 1).
    """
    e = _as_features(embedding)
    v = np.asarray(value, dtype=np.float64).reshape(-1)
    if v.shape[0] != e.shape[0]:
        raise ValueError(f"value has {v.shape[0]} steps, embedding has {e.shape[0]}")
    if not np.all(np.isfinite(v)):
        raise ValueError("value contains NaN or inf")
    e = e - e.mean(axis=0)
    scale = float(np.sqrt(np.mean(e.var(axis=0))))
    e = e / (scale if scale > 0 else 1.0)
    v = v - v.mean()
    sd = float(v.std())
    v = v / (sd if sd > 0 else 1.0) * float(value_weight)
    return np.column_stack([e, v])


def _kernel_weights(window: int, kernel: str) -> np.ndarray:
    ks = np.arange(-window, window + 1)
    if kernel == "uniform":
        return np.ones(ks.shape, dtype=np.float64)
    if kernel == "triangular":
        return (window + 1 - np.abs(ks)).astype(np.float64)
    raise ValueError(f"kernel must be 'uniform' or 'triangular', got {kernel!r}")


def _smooth(x: np.ndarray, episode_end: np.ndarray, window: int, kernel: str,
            pull: float) -> tuple[np.ndarray, np.ndarray]:
    """Smoothed features and, per step, the windowed spread ``sum_s A_ts ||x_s - xs_t||^2``."""
    t = x.shape[0]
    ep = episode_ids(episode_end)
    if ep.shape[0] != t:
        raise ValueError(f"episode_end has {ep.shape[0]} steps, features have {t}")
    if int(window) != window or window < 0:
        raise ValueError(f"window must be a non-negative integer, got {window}")
    if not 0.0 <= pull <= 1.0:
        raise ValueError(f"pull must be in [0, 1], got {pull}")
    window = int(window)
    weights = _kernel_weights(window, kernel)
    sq = np.einsum("tf,tf->t", x, x)
    num = np.zeros_like(x)
    num_sq = np.zeros(t)
    den = np.zeros(t)
    for k, a in zip(range(-window, window + 1), weights):
        m = abs(k)
        if m >= t:
            continue
        if k == 0:
            num += a * x
            num_sq += a * sq
            den += a
            continue
        s = np.nonzero(ep[m:] == ep[:-m])[0]  # pairs (s, s + m) inside one episode
        if k > 0:  # step s takes its neighbour s + m
            dst, src = s, s + m
        else:  # step s + m takes its neighbour s
            dst, src = s + m, s
        num[dst] += a * x[src]
        num_sq[dst] += a * sq[src]
        den[dst] += a
    # Blend: row t of A is (1 - pull) e_t + pull * (window weights / den).
    mean = num / den[:, None]
    mean_sq = num_sq / den
    xs = (1.0 - pull) * x + pull * mean
    second = (1.0 - pull) * sq + pull * mean_sq  # sum_s A_ts ||x_s||^2
    spread = np.maximum(second - np.einsum("tf,tf->t", xs, xs), 0.0)
    return xs, spread


def temporal_smooth(
    features: np.ndarray,
    episode_end: np.ndarray,
    window: int,
    *,
    kernel: str = "uniform",
    pull: float = 1.0,
) -> np.ndarray:
    """Pull every row of ``features`` ``(T, F)`` towards its temporal neighbours.

    ``xs_t = (1 - pull) x_t + pull * weighted mean of x_{t-w..t+w}`` over the steps of
    the **same episode** only (see the module docstring; ``kernel`` is "uniform" or
    "triangular").  Returns ``(T, F)`` float64.  ``window=0`` returns a copy.
    """
    x = _as_features(features)
    return _smooth(x, episode_end, window, kernel, pull)[0]


def _sqdist(x: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """``(T, K)`` squared Euclidean distances, computed directly (no expansion) in chunks."""
    t, f = x.shape
    k = centres.shape[0]
    out = np.empty((t, k))
    step = max(1, (1 << 22) // max(1, k * f))
    for i in range(0, t, step):
        diff = x[i:i + step, None, :] - centres[None, :, :]
        out[i:i + step] = np.einsum("tkf,tkf->tk", diff, diff)
    return out


def _kmeanspp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): first centre uniform, each next
    one drawn with probability proportional to the squared distance to the nearest
    centre chosen so far."""
    t = x.shape[0]
    centres = np.empty((k, x.shape[1]))
    idx = int(rng.integers(t))
    centres[0] = x[idx]
    d2 = np.einsum("tf,tf->t", x - x[idx], x - x[idx])
    for c in range(1, k):
        cum = np.cumsum(d2)
        total = cum[-1]
        if total > 0:
            idx = int(min(np.searchsorted(cum, rng.random() * total, side="right"), t - 1))
        else:  # every point already coincides with a centre
            idx = int(rng.integers(t))
        centres[c] = x[idx]
        diff = x - x[idx]
        np.minimum(d2, np.einsum("tf,tf->t", diff, diff), out=d2)
    return centres


def _lloyd(x: np.ndarray, centres: np.ndarray, max_iter: int
           ) -> tuple[np.ndarray, np.ndarray, float, int]:
    k = centres.shape[0]
    prev = None
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        d2 = _sqdist(x, centres)
        labels = d2.argmin(axis=1)
        if prev is not None and np.array_equal(labels, prev):
            break
        counts = np.bincount(labels, minlength=k)
        new = np.stack([np.bincount(labels, weights=x[:, j], minlength=k)
                        for j in range(x.shape[1])], axis=1)
        full = counts > 0
        new[full] /= counts[full, None]
        if not full.all():
            # An empty cluster takes the point worst served by its centre (deterministic).
            cost = d2[np.arange(len(labels)), labels].copy()
            for c in np.nonzero(~full)[0]:
                j = int(cost.argmax())
                new[c] = x[j]
                cost[j] = -1.0
        centres = new
        prev = labels
    d2 = _sqdist(x, centres)
    labels = d2.argmin(axis=1)
    inertia = float(d2[np.arange(len(labels)), labels].sum())
    return labels, centres, inertia, n_iter


def _relabel(labels: np.ndarray, centres: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber clusters by first appearance in time (empty ones last, in old order)."""
    k = centres.shape[0]
    _, first = np.unique(labels, return_index=True)
    seen = labels[np.sort(first)]
    order = np.concatenate([seen, np.setdiff1d(np.arange(k), seen)])
    mapping = np.empty(k, dtype=np.int64)
    mapping[order] = np.arange(k)
    return mapping[labels].astype(np.int64), centres[order]


def _fit(x: np.ndarray, k: int, seed: int, n_init: int, max_iter: int,
         offset: np.ndarray | float = 0.0) -> KMeansResult:
    t = x.shape[0]
    if int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k}")
    k = int(k)
    if k > t:
        raise ValueError(f"k={k} exceeds the number of points T={t}")
    if n_init < 1 or max_iter < 1:
        raise ValueError("n_init and max_iter must be >= 1")
    rng = np.random.default_rng(seed)
    best = None
    for _ in range(int(n_init)):
        labels, centres, inertia, n_iter = _lloyd(x, _kmeanspp(x, k, rng), int(max_iter))
        if best is None or inertia < best[2]:
            best = (labels, centres, inertia, n_iter)
    labels, centres, inertia, n_iter = best
    labels, centres = _relabel(labels, centres)
    return KMeansResult(labels=labels, centres=centres,
                        inertia=float(inertia + np.sum(offset)), n_iter=int(n_iter))


# ------------------------------------------------------------------------ public API


def kmeans(
    features: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    n_init: int = 10,
    max_iter: int = 300,
) -> KMeansResult:
    """Plain K-means (the baseline) on ``features`` ``(T, F)``.

    k-means++ seeding from ``numpy.random.default_rng(seed)``, ``n_init`` restarts drawn
    in sequence from that one generator, Lloyd iterations until the assignment stops
    changing (or ``max_iter``); the restart with the lowest within-cluster sum of
    squares wins (first one on ties).  An empty cluster is re-seeded at the point
    farthest from its own centre.  Deterministic given ``seed``.
    """
    x = _as_features(features)
    return _fit(x, k, seed, n_init, max_iter)


def spatio_temporal_kmeans(
    features: np.ndarray,
    k: int,
    episode_end: np.ndarray,
    *,
    window: int = 2,
    kernel: str = "uniform",
    pull: float = 1.0,
    seed: int = 0,
    n_init: int = 10,
    max_iter: int = 300,
) -> KMeansResult:
    """Spatio-temporal K-means: K-means whose points are pulled towards their temporal
    neighbours within ``window`` steps of the same episode before every assignment.

    Exact Lloyd descent on the windowed objective ``J`` of the module docstring, with
    the seeding, restarts and tie rules of ``kmeans``.  ``centres`` ``(K, F)`` are in the
    smoothed space; ``inertia`` is ``J``.  ``window=0`` gives ``kmeans`` exactly.
    """
    x = _as_features(features)
    xs, spread = _smooth(x, episode_end, window, kernel, pull)
    return _fit(xs, k, seed, n_init, max_iter, offset=spread)


def select_k(
    features: np.ndarray,
    ks: Sequence[int],
    seed: int = 0,
    *,
    episode_end: np.ndarray | None = None,
    window: int = 0,
    kernel: str = "uniform",
    pull: float = 1.0,
    sample_size: int = 2000,
    n_init: int = 5,
    max_iter: int = 300,
) -> KSelection:
    """Choose K among ``ks`` by the mean silhouette coefficient.

    For each K, the clustering is ``kmeans`` (or ``spatio_temporal_kmeans`` when
    ``episode_end`` is given and ``window > 0``) with the same ``seed``.  Its silhouette
    (scikit-learn ``silhouette_score``, Euclidean) is computed on the *unsmoothed*
    ``features`` of one subsample of at most ``sample_size`` steps, drawn once without
    replacement from ``default_rng(seed)`` and shared by all K (silhouette costs
    O(n^2)).  A labelling with fewer than two clusters in the sample scores -1.  The K
    with the highest silhouette wins; ties go to the smaller K.  Each K must satisfy
    ``2 <= K < T``.
    """
    from sklearn.metrics import silhouette_score

    x = _as_features(features)
    t = x.shape[0]
    ks = tuple(int(k) for k in ks)
    if not ks:
        raise ValueError("ks is empty")
    if min(ks) < 2 or max(ks) >= t:
        raise ValueError(f"every K must satisfy 2 <= K < T={t}, got {ks}")
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(t, size=min(t, int(sample_size)), replace=False))
    temporal = episode_end is not None and window > 0
    results, sil, inertias = [], [], []
    for k in ks:
        if temporal:
            res = spatio_temporal_kmeans(x, k, episode_end, window=window, kernel=kernel,
                                         pull=pull, seed=seed, n_init=n_init,
                                         max_iter=max_iter)
        else:
            res = kmeans(x, k, seed=seed, n_init=n_init, max_iter=max_iter)
        lab = res.labels[sample]
        n_lab = np.unique(lab).size
        score = (float(silhouette_score(x[sample], lab))
                 if 2 <= n_lab < sample.size else -1.0)
        results.append(res)
        sil.append(score)
        inertias.append(res.inertia)
    sil_arr = np.asarray(sil)
    best = min((i for i in range(len(ks)) if sil_arr[i] == sil_arr.max()),
               key=lambda i: ks[i])
    return KSelection(k=ks[best], ks=ks, silhouettes=sil_arr,
                      inertias=np.asarray(inertias), results=tuple(results))
