"""The Semi-Aggregated MDP (SAMDP) of a clustered DQN trajectory.

Baram, Zahavy & Mannor: the clusters of the activation map are the SAMDP's states and
the *skills* are the persistent moves between them.  Everything here is a pure function
of ``(T,)`` arrays in trajectory order:

* ``labels``: int cluster of every step, in ``[0, K)``;
* ``value``: the DQN's value ``v_t = max_a Q(s_t, a)``;
* ``reward``: the reward ``r_t`` received after the action at step t;
* ``episode_end``: bool, True at the last step of an episode (steps after the last
  True form a truncated episode: the recording stopped in the middle of it);
* ``truncated`` (optional): bool, True at an ``episode_end`` step where the episode was
  cut off (a time limit) rather than terminated by the game;
* ``gamma``: the discount in ``[0, 1]``, per environment step.

An episode is *terminated* when its last step has ``episode_end`` and not
``truncated``; otherwise (the trailing episode of a recording, or a time limit) it is
*truncated*: the game went on after it, unobserved.

Definitions
-----------
Runs.  Inside each episode the label sequence is cut into maximal runs of one cluster.
Runs never span an episode boundary.

Short runs (``min_skill_length = m``).  Repeatedly take the shortest run with fewer than
``m`` steps (earliest on ties) that is not alone in its episode and give its steps to a
neighbouring run of the same episode:

* if both neighbours exist and share a cluster (``A B A``) the three runs fuse into
  one run of that cluster (the blip is erased);
* otherwise it joins the **longer** neighbour (the preceding one on ties), or the only
  neighbour it has.

Merging repeats until every run has at least ``m`` steps or is alone in its episode
(then it stays short).  ``m <= 1`` changes nothing.

The terminal state.  The abstract chain has ``K + 1`` states: the K clusters and one
terminal state (index ``K`` in the SAMDP's matrices, ``TERMINAL = -1`` in
``SkillInstances``) whose value is 0 and which has no skills of its own.

Skills.  A skill instance is a pair of consecutive runs ``(c_i -> c_j)`` of one episode
(``i != j`` by construction), or the last run of a *terminated* episode followed by the
terminal state (``c_i -> terminal``).  Its *length* ``L`` is the number of steps of the
source run (steps spent in ``c_i`` before the move) and its *reward* is the discounted
reward of the source run: ``sum_{k=0}^{n-1} gamma^k r_{s+k}`` for a run of ``n`` steps
starting at ``s``; so the reward that ends an episode reaches the SAMDP through the
skill into the terminal state.  The last run of a *truncated* episode makes no skill:
where it went is unknown, and ending there is not an end of the game.

Transition matrix ``P`` (K x (K + 1), column K = terminal).  From the skill counts
``N_ij``: ``P_ij = N_ij / sum_j N_ij`` (``P_ii = 0``: no self-loops), then every entry
``< prune`` is set to 0 and the row renormalised.  A row without outgoing skills (a
cluster seen only at the end of truncated episodes, or all of whose skills were pruned)
stays all zero: the cluster is **absorbing**, with value 0.

Skill matrices (K x (K + 1)), means over the instances of ``(i, j)`` and 0 where the
pair was never observed: ``R_ij`` the reward, ``L_ij`` the length, and the discount
``Gamma_ij`` = the mean of ``gamma ** L``.  (The mean of ``gamma ** L`` and not
``gamma ** mean(L)``: it is the semi-MDP's discounted transition model, Sutton, Precup &
Singh 1999, under which a cluster whose runs are the visits of one true state, of
varying length, gets that state's value; ``gamma ** mean(L)`` is biased by Jensen's
inequality when lengths vary.  They agree when every instance of a skill has one length.)

SAMDP values.  With ``R_s(i) = sum_j P_ij R_ij`` (over the K + 1 targets, so the
terminal skills' rewards count), solve ``V = R_s + (P o Gamma)[:, :K] V`` (the
terminal state's value is 0), i.e. ``(I - (P o Gamma)[:, :K]) V = R_s``, with
``numpy.linalg.solve``.  ``V_i`` is the expected discounted return from the **first
step** of a run of cluster i, each run weighted equally (``P`` and ``R`` are averages
over runs); ``SAMDP.entry_values`` is the DQN's value measured the same way, the
like-for-like comparison (``cluster_values``, the mean over every step, weights long runs
more and mixes in mid-run steps, whose returns are discounted from later).  For
``gamma < 1`` the system is always non-singular; for ``gamma = 1`` it is too when every
cluster can reach the terminal state, and singular with a closed recurrent set of
clusters: then the minimum-norm least-squares solution is returned with a
``RuntimeWarning``.
"""

from __future__ import annotations

import heapq
import warnings
from dataclasses import dataclass

import numpy as np

from theorydl.studies.samdp.clustering import episode_ids

__all__ = [
    "SAMDP",
    "TERMINAL",
    "Runs",
    "SkillInstances",
    "build_samdp",
    "cluster_means",
    "merge_short_runs",
    "samdp_values",
    "segment_runs",
    "skill_instances",
    "transition_matrix",
]

#: ``SkillInstances.target`` of a skill into the terminal state (the episode ended).
TERMINAL = -1


@dataclass(frozen=True, eq=False)
class Runs:
    """Maximal single-cluster runs, ``R`` of them, in time order.

    start, length, cluster, episode: ``(R,)`` int64 (first step, number of steps,
    cluster label, episode index).
    """

    start: np.ndarray
    length: np.ndarray
    cluster: np.ndarray
    episode: np.ndarray


@dataclass(frozen=True, eq=False)
class SkillInstances:
    """Observed skills, ``S`` of them, in time order.

    source, target: ``(S,)`` int64 clusters (``source != target``; target ``TERMINAL``
    = -1 for the last run of a terminated episode); start: first step of the source
    run; length: steps in the source run; reward: discounted reward of the source run
    (float64); episode: episode index.
    """

    source: np.ndarray
    target: np.ndarray
    start: np.ndarray
    length: np.ndarray
    reward: np.ndarray
    episode: np.ndarray


@dataclass(frozen=True, eq=False)
class SAMDP:
    """An SAMDP over ``K = n_clusters`` clusters and the terminal state (index ``K``).
    Arrays are read-only; the ``(K, K + 1)`` ones have the terminal state as last column.

    transition: ``(K, K + 1)`` P, rows sum to 1 or are all zero, ``P_ii = 0``.
    counts: ``(K, K + 1)`` int64 skill counts ``N_ij`` (before pruning).
    skill_reward: ``(K, K + 1)`` mean discounted skill reward ``R_ij`` (reward units).
    skill_length: ``(K, K + 1)`` mean skill length ``L_ij`` (environment steps).
    skill_discount: ``(K, K + 1)`` mean of ``gamma ** L`` over the instances of each
        skill (0 where never observed).
    cluster_values: ``(K,)`` mean DQN value over all the steps of each cluster (NaN for
        an empty cluster).
    entry_values: ``(K,)`` mean DQN value at the first step of each run that makes a
        skill, each run weighted once: what ``samdp_values`` estimates, so the
        like-for-like comparison (module docstring); NaN where a cluster makes no skill.
    entry_returns: ``(K,)`` the same mean of the *observed* discounted return from each
        such run's first step to its episode's end, over the runs of terminated episodes
        (a truncated episode's return is unknown); NaN where there is none.  Against
        ``samdp_values`` it measures the abstraction alone, whatever the DQN's accuracy.
    samdp_values: ``(K,)`` solution V of the abstract chain (the terminal state's 0 is
        not included).
    masses: ``(K,)`` int64 number of steps in each cluster.
    labels: ``(T,)`` int64 labels after short-run merging (what the SAMDP was built on).
    gamma, prune, min_skill_length: the parameters used.
    """

    n_clusters: int
    transition: np.ndarray
    counts: np.ndarray
    skill_reward: np.ndarray
    skill_length: np.ndarray
    skill_discount: np.ndarray
    cluster_values: np.ndarray
    entry_values: np.ndarray
    entry_returns: np.ndarray
    samdp_values: np.ndarray
    masses: np.ndarray
    labels: np.ndarray
    gamma: float
    prune: float
    min_skill_length: int

    def __post_init__(self):
        for name in ("transition", "counts", "skill_reward", "skill_length",
                     "skill_discount", "cluster_values", "entry_values", "entry_returns",
                     "samdp_values",
                     "masses", "labels"):
            arr = np.array(getattr(self, name))  # private copy, then freeze it
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    @property
    def K(self) -> int:  # noqa: N802 - the paper's name
        return self.n_clusters

    @property
    def P(self) -> np.ndarray:  # noqa: N802 - the paper's name
        return self.transition

    @property
    def terminal(self) -> int:
        """Index of the terminal state: the last column of the ``(K, K + 1)`` matrices."""
        return self.n_clusters

    @property
    def discount(self) -> np.ndarray:
        """``(K, K + 1)`` ``Gamma_ij`` (mean of ``gamma ** L``) where ``P_ij > 0``, else 0."""
        return np.where(self.transition > 0, self.skill_discount, 0.0)


# --------------------------------------------------------------------------- helpers


def _check_labels(labels: np.ndarray, episode_end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab = np.asarray(labels)
    if lab.ndim != 1:
        raise ValueError(f"labels must be (T,), got shape {lab.shape}")
    if lab.size and not np.issubdtype(lab.dtype, np.integer):
        if not np.all(lab == np.round(lab)):
            raise ValueError("labels must be integers")
    lab = lab.astype(np.int64)
    if lab.size and lab.min() < 0:
        raise ValueError("labels must be non-negative")
    ep = episode_ids(episode_end)
    if ep.shape[0] != lab.shape[0]:
        raise ValueError(f"episode_end has {ep.shape[0]} steps, labels have {lab.shape[0]}")
    return lab, ep


def _check_gamma(gamma: float) -> float:
    gamma = float(gamma)
    if not 0.0 <= gamma <= 1.0:
        raise ValueError(f"gamma must be in [0, 1], got {gamma}")
    return gamma


def _discount_matrix(p: np.ndarray, skill_length: np.ndarray, gamma: float) -> np.ndarray:
    return np.where(p > 0, np.power(gamma, np.asarray(skill_length, dtype=np.float64)), 0.0)


def _check_truncated(truncated: np.ndarray | None, episode_end: np.ndarray) -> np.ndarray:
    """``(T,)`` bool: True at the ``episode_end`` steps that are truncations."""
    ends = np.asarray(episode_end, dtype=bool).reshape(-1)
    if truncated is None:
        return np.zeros(ends.shape[0], dtype=bool)
    cut = np.asarray(truncated, dtype=bool).reshape(-1)
    if cut.shape != ends.shape:
        raise ValueError(f"truncated has {cut.shape[0]} steps, episode_end {ends.shape[0]}")
    if np.any(cut & ~ends):
        raise ValueError("truncated is True at a step that is not an episode_end")
    return cut


def _returns_to_go(reward: np.ndarray, episode_end: np.ndarray, truncated: np.ndarray,
                   gamma: float) -> np.ndarray:
    """``(T,)`` discounted return from each step to the end of its episode; NaN in the
    truncated episodes (their returns went on unobserved)."""
    t = reward.shape[0]
    out = np.empty(t)
    acc = np.nan  # the trailing episode, without episode_end, is truncated
    for i in range(t - 1, -1, -1):
        if episode_end[i]:
            acc = np.nan if truncated[i] else 0.0
        acc = reward[i] + gamma * acc
        out[i] = acc
    return out


# ------------------------------------------------------------------------ public API


def segment_runs(labels: np.ndarray, episode_end: np.ndarray) -> Runs:
    """Cut ``labels`` ``(T,)`` into maximal single-cluster runs inside each episode."""
    lab, ep = _check_labels(labels, episode_end)
    t = lab.shape[0]
    if t == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Runs(empty, empty, empty, empty)
    new = np.ones(t, dtype=bool)
    new[1:] = (lab[1:] != lab[:-1]) | (ep[1:] != ep[:-1])
    start = np.nonzero(new)[0].astype(np.int64)
    length = np.diff(np.append(start, t)).astype(np.int64)
    return Runs(start=start, length=length, cluster=lab[start], episode=ep[start])


def merge_short_runs(labels: np.ndarray, episode_end: np.ndarray,
                     min_skill_length: int) -> np.ndarray:
    """Relabel the steps of runs shorter than ``min_skill_length`` (the module's rule).

    Returns new ``(T,)`` int64 labels; the input is not modified.
    """
    lab, _ = _check_labels(labels, episode_end)
    m = int(min_skill_length)
    runs = segment_runs(lab, episode_end)
    r = runs.start.shape[0]
    if m <= 1 or r == 0:
        return lab.copy()
    start = runs.start.copy()
    length = runs.length.copy()
    cluster = runs.cluster.copy()
    same_prev = np.zeros(r, dtype=bool)
    same_prev[1:] = runs.episode[1:] == runs.episode[:-1]
    prev = np.where(same_prev, np.arange(r) - 1, -1)
    nxt = np.full(r, -1)
    nxt[:-1] = np.where(same_prev[1:], np.arange(1, r), -1)
    alive = np.ones(r, dtype=bool)

    heap = [(int(length[i]), int(start[i]), i) for i in range(r) if length[i] < m]
    heapq.heapify(heap)
    while heap:
        n, s, i = heapq.heappop(heap)
        if not alive[i] or n != length[i] or s != start[i] or n >= m:
            continue  # stale entry
        p, q = prev[i], nxt[i]
        if p < 0 and q < 0:
            continue  # alone in its episode: stays short
        if p >= 0 and q >= 0 and cluster[p] == cluster[q]:
            # A B A -> one A run.
            length[p] += length[i] + length[q]
            alive[i] = alive[q] = False
            nxt[p] = nxt[q]
            if nxt[q] >= 0:
                prev[nxt[q]] = p
            target = p
        else:
            if p >= 0 and q >= 0:
                target = p if length[p] >= length[q] else q
            else:
                target = p if p >= 0 else q
            alive[i] = False
            length[target] += length[i]
            if target == p:
                nxt[p] = q
                if q >= 0:
                    prev[q] = p
            else:
                start[q] = start[i]
                prev[q] = p
                if p >= 0:
                    nxt[p] = q
        if length[target] < m:
            heapq.heappush(heap, (int(length[target]), int(start[target]), int(target)))

    out = np.empty_like(lab)
    for i in np.nonzero(alive)[0]:
        out[start[i]:start[i] + length[i]] = cluster[i]
    return out


def skill_instances(labels: np.ndarray, reward: np.ndarray, episode_end: np.ndarray,
                    gamma: float, *, min_skill_length: int = 1,
                    truncated: np.ndarray | None = None) -> SkillInstances:
    """Every observed skill, after short-run merging: consecutive runs of one episode,
    and the last run of each terminated episode into ``TERMINAL`` (module docstring).

    ``truncated`` ``(T,)`` bool marks the ``episode_end`` steps that were truncations
    (no terminal skill there); the trailing episode without ``episode_end`` is always
    truncated.
    """
    gamma = _check_gamma(gamma)
    cut = _check_truncated(truncated, episode_end)
    ends = np.asarray(episode_end, dtype=bool).reshape(-1)
    lab = merge_short_runs(labels, episode_end, min_skill_length)
    rew = np.asarray(reward, dtype=np.float64).reshape(-1)
    if rew.shape[0] != lab.shape[0]:
        raise ValueError(f"reward has {rew.shape[0]} steps, labels have {lab.shape[0]}")
    if not np.all(np.isfinite(rew)):
        raise ValueError("reward contains NaN or inf")
    runs = segment_runs(lab, episode_end)
    r = runs.start.shape[0]
    # Discounted reward of every run: sum_k gamma^k r_{start + k}.
    run_of_step = np.repeat(np.arange(r), runs.length)
    offset = np.arange(lab.shape[0]) - runs.start[run_of_step]
    run_reward = np.bincount(run_of_step, weights=rew * np.power(gamma, offset),
                             minlength=r) if r else np.zeros(0)
    # Run i is followed by run i + 1 of its episode, or by the terminal state when it
    # is the last run of an episode that terminated (its last step ends the episode and
    # was not cut off); the last run of a truncated episode has no successor.
    last = runs.start + runs.length - 1
    same_episode = np.zeros(r, dtype=bool)
    same_episode[:-1] = runs.episode[:-1] == runs.episode[1:]
    terminates = ends[last] & ~cut[last] if r else np.zeros(0, dtype=bool)
    src = np.nonzero(same_episode | terminates)[0]
    nxt = np.minimum(src + 1, max(r - 1, 0))
    target = np.where(same_episode[src], runs.cluster[nxt], TERMINAL)
    return SkillInstances(
        source=runs.cluster[src],
        target=target.astype(np.int64),
        start=runs.start[src],
        length=runs.length[src],
        reward=run_reward[src],
        episode=runs.episode[src],
    )


def transition_matrix(counts: np.ndarray, prune: float = 0.0) -> np.ndarray:
    """``(K, K + 1)`` (or ``(K, K)``) transition probabilities from skill counts ``N_ij``.

    ``counts`` is ``(K, K + 1)`` with the terminal state as last column, or ``(K, K)``
    for a chain without one.  ``N_ii`` is dropped (no self-loops), rows are normalised,
    entries ``< prune`` are zeroed and rows renormalised; rows with nothing left stay
    all zero (absorbing).
    """
    n = np.array(counts, dtype=np.float64)
    if n.ndim != 2 or n.shape[1] not in (n.shape[0], n.shape[0] + 1):
        raise ValueError(f"counts must be (K, K + 1) or (K, K), got shape {n.shape}")
    if np.any(n < 0) or not np.all(np.isfinite(n)):
        raise ValueError("counts must be finite and non-negative")
    if not 0.0 <= prune <= 1.0:
        raise ValueError(f"prune must be in [0, 1], got {prune}")
    n[np.arange(n.shape[0]), np.arange(n.shape[0])] = 0.0

    def normalise(a: np.ndarray) -> np.ndarray:
        tot = a.sum(axis=1, keepdims=True)
        return np.divide(a, tot, out=np.zeros_like(a), where=tot > 0)

    p = normalise(n)
    if prune > 0:
        p = normalise(np.where(p < prune, 0.0, p))
    return p


def samdp_values(transition: np.ndarray, skill_reward: np.ndarray,
                 skill_length: np.ndarray, gamma: float, *,
                 discount: np.ndarray | None = None) -> np.ndarray:
    """Solve ``(I - (P o Gamma)[:, :K]) V = R_s`` for the ``(K,)`` SAMDP values (module
    docstring).

    The matrices are ``(K, K + 1)``, the last column the terminal state (value 0), or
    ``(K, K)`` for a chain without one.  ``Gamma = discount`` where given, else
    ``gamma ** skill_length``, used where ``P_ij > 0``; ``R_s = (P * R).sum(1)`` over all
    columns.  Falls back to ``numpy.linalg.lstsq`` (minimum norm, with a
    ``RuntimeWarning``) when the system is singular or its condition number exceeds 1e12.
    """
    gamma = _check_gamma(gamma)
    p = np.asarray(transition, dtype=np.float64)
    r = np.asarray(skill_reward, dtype=np.float64)
    k = p.shape[0]
    if p.ndim != 2 or p.shape[1] not in (k, k + 1):
        raise ValueError(f"transition must be (K, K + 1) or (K, K), got shape {p.shape}")
    shapes = [r.shape, np.shape(skill_length)] + ([] if discount is None else [np.shape(discount)])
    if any(sh != p.shape for sh in shapes):
        raise ValueError("transition, skill_reward, skill_length (and discount) must have "
                         "one shape")
    if k == 0:
        return np.zeros(0)
    gam = (_discount_matrix(p, skill_length, gamma) if discount is None
           else np.where(p > 0, np.asarray(discount, dtype=np.float64), 0.0))
    r_s = np.where(p > 0, p * r, 0.0).sum(axis=1)
    a = np.eye(k) - (p * gam)[:, :k]
    try:
        if np.linalg.cond(a) > 1e12:
            raise np.linalg.LinAlgError("ill-conditioned")
        return np.linalg.solve(a, r_s)
    except np.linalg.LinAlgError:
        warnings.warn(
            "SAMDP chain (I - P o Gamma) is singular or ill-conditioned (gamma = 1 with a "
            "closed set of clusters that never reaches the terminal state?); returning the "
            "minimum-norm least-squares values",
            RuntimeWarning, stacklevel=2)
        return np.linalg.lstsq(a, r_s, rcond=None)[0]


def _mean_by_cluster(x: np.ndarray, cluster: np.ndarray, k: int) -> np.ndarray:
    """``(K,)`` mean of ``x`` over the entries of each cluster; NaN where there are none."""
    n = np.bincount(cluster, minlength=k)[:k]
    total = np.bincount(cluster, weights=x, minlength=k)[:k]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)


def cluster_means(x: np.ndarray, labels: np.ndarray, n_clusters: int | None = None
                  ) -> np.ndarray:
    """Per-cluster mean of ``x`` (``(T,)`` or ``(T, F)``); NaN rows for empty clusters.

    E.g. node positions of the SAMDP graph: ``cluster_means(embedding, samdp.labels, K)``.
    """
    lab = np.asarray(labels).astype(np.int64)
    arr = np.asarray(x, dtype=np.float64)
    vec = arr.ndim == 1
    arr2 = arr[:, None] if vec else arr
    if arr2.shape[0] != lab.shape[0]:
        raise ValueError(f"x has {arr2.shape[0]} rows, labels have {lab.shape[0]}")
    k = int(lab.max()) + 1 if n_clusters is None else int(n_clusters)
    counts = np.bincount(lab, minlength=k)[:k].astype(np.float64)
    sums = np.stack([np.bincount(lab, weights=arr2[:, j], minlength=k)[:k]
                     for j in range(arr2.shape[1])], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(counts[:, None] > 0, sums / counts[:, None], np.nan)
    return out[:, 0] if vec else out


def build_samdp(
    labels: np.ndarray,
    value: np.ndarray,
    reward: np.ndarray,
    episode_end: np.ndarray,
    gamma: float,
    *,
    n_clusters: int | None = None,
    min_skill_length: int = 1,
    prune: float = 0.0,
    truncated: np.ndarray | None = None,
) -> SAMDP:
    """Build the SAMDP of one recorded trajectory (definitions in the module docstring).

    ``labels``, ``value``, ``reward``, ``episode_end``: ``(T,)``; ``truncated``: ``(T,)``
    bool, the ``episode_end`` steps that were truncations (default none: every
    ``episode_end`` is a termination); ``n_clusters`` defaults to ``labels.max() + 1``.
    Cluster values, entry values and masses are taken over the labels *after* short-run
    merging (``SAMDP.labels``).
    """
    gamma = _check_gamma(gamma)
    lab, _ = _check_labels(labels, episode_end)
    val = np.asarray(value, dtype=np.float64).reshape(-1)
    if val.shape[0] != lab.shape[0]:
        raise ValueError(f"value has {val.shape[0]} steps, labels have {lab.shape[0]}")
    k = (int(lab.max()) + 1 if lab.size else 0) if n_clusters is None else int(n_clusters)
    if lab.size and lab.max() >= k:
        raise ValueError(f"labels reach {lab.max()} but n_clusters={k}")
    merged = merge_short_runs(lab, episode_end, min_skill_length)
    sk = skill_instances(merged, reward, episode_end, gamma, truncated=truncated)
    target = np.where(sk.target == TERMINAL, k, sk.target)  # the terminal column
    length = sk.length.astype(np.float64)
    counts = np.zeros((k, k + 1), dtype=np.int64)
    np.add.at(counts, (sk.source, target), 1)

    def mean_over_instances(x: np.ndarray) -> np.ndarray:
        total = np.zeros((k, k + 1))
        np.add.at(total, (sk.source, target), x)
        return np.where(counts > 0, total / np.maximum(counts, 1), 0.0)

    skill_reward = mean_over_instances(sk.reward)
    skill_length = mean_over_instances(length)
    skill_discount = mean_over_instances(np.power(gamma, length))
    entry_values = _mean_by_cluster(val[sk.start], sk.source, k)
    ends = np.asarray(episode_end, dtype=bool).reshape(-1)
    to_go = _returns_to_go(np.asarray(reward, dtype=np.float64).reshape(-1), ends,
                           _check_truncated(truncated, ends), gamma)[sk.start]
    known = np.isfinite(to_go)
    entry_returns = _mean_by_cluster(to_go[known], sk.source[known], k)
    p = transition_matrix(counts, prune)
    return SAMDP(
        n_clusters=k,
        transition=p,
        counts=counts,
        skill_reward=skill_reward,
        skill_length=skill_length,
        skill_discount=skill_discount,
        cluster_values=cluster_means(val, merged, k) if k else np.zeros(0),
        entry_values=entry_values,
        entry_returns=entry_returns,
        samdp_values=samdp_values(p, skill_reward, skill_length, gamma,
                                  discount=skill_discount),
        masses=np.bincount(merged, minlength=k)[:k].astype(np.int64),
        labels=merged,
        gamma=gamma,
        prune=float(prune),
        min_skill_length=int(min_skill_length),
    )
