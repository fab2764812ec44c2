"""Quality criteria of a clustering / SAMDP (Baram, Zahavy & Mannor), chosen exactly as:

* ``vmse(v_dqn, v_samdp) = ||v_dqn - v_samdp||^2 / ||v_dqn||^2`` over the clusters where
  both are finite (empty clusters have a NaN DQN value and are skipped); 0 when equal.
  If ``||v_dqn|| = 0`` it is 0 when ``v_samdp`` is 0 too and ``inf`` otherwise.
  ``evaluate_samdp``'s ``vmse`` compares the SAMDP values with ``SAMDP.entry_values``
  (the DQN value at the first step of each run, each run once: what the SAMDP value
  estimates); ``vmse_all_steps`` with ``SAMDP.cluster_values`` (the mean over every step
  of the cluster, which weights long runs more and mixes in mid-run steps);
  ``vmse_returns`` with ``SAMDP.entry_returns`` (the returns observed from the same entry
  steps): the abstraction's own error, apart from how well the DQN predicts returns.
* ``inertia(features, labels)``: within-cluster sum of squared Euclidean distances to
  the cluster means (or to given centres), in squared feature units.
* ``intensity_factor(labels, episode_end)``: the paper's ratio of in-cluster to
  out-of-cluster transitions, ``n_in / n_out``, counting consecutive step pairs
  ``(t, t+1)`` of the same episode; ``inf`` when no pair leaves its cluster, NaN when
  there are no pairs.  (``n_in / (n_in + n_out) = IF / (1 + IF)`` if a bounded
  fraction is wanted.)
* ``transition_entropy(P)``: mean over the non-absorbing rows of P (rows with any
  probability) of the row entropy ``-sum_j P_ij log2 P_ij`` in bits; 0 when every row is
  absorbing.  With ``weights`` (e.g. cluster masses) it is the weighted mean over those
  rows.  The terminal column of a ``(K, K + 1)`` P counts as a target like any other.
  Bounds: ``0 <= H <= log2(n - 1)`` for a no-self-loop P with n columns.
* ``greedy_consistency(samdp, reward, episode_end)``: the *greedy skill* from cluster i is
  ``argmax_j (R_ij + Gamma_ij V_j)`` over the skills still in P (``P_ij > 0``; lowest j
  on ties), the terminal state (``j = K``, ``V_K = 0``) among them.  Episodes are
  ranked by their undiscounted return; the top and bottom ``fraction`` of them
  (``max(1, round(fraction * n))`` each, ties broken by episode order) are compared by
  the pooled fraction of their skill instances that took the greedy skill (skills into
  the terminal state included).  Instances leaving a cluster with no skill left in P
  are not counted.  Truncated episodes (the trailing one with no final
  ``episode_end``, and those ``truncated`` marks) are left out of the ranking, their
  returns being cut short, unless no episode is complete.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from theorydl.studies.samdp.clustering import episode_ids
from theorydl.studies.samdp.model import SAMDP, TERMINAL, skill_instances

__all__ = [
    "GreedyConsistency",
    "evaluate_samdp",
    "greedy_consistency",
    "greedy_skills",
    "inertia",
    "intensity_factor",
    "transition_entropy",
    "vmse",
]


@dataclass(frozen=True)
class GreedyConsistency:
    """Fractions of skill instances that were greedy in the top / bottom episodes.

    ``difference = top - bottom``; NaN fractions where a group has no counted skill.
    """

    top: float
    bottom: float
    difference: float
    n_top_episodes: int
    n_bottom_episodes: int


def vmse(v_dqn: np.ndarray, v_samdp: np.ndarray) -> float:
    """Relative squared value gap ``||v_dqn - v_samdp||^2 / ||v_dqn||^2`` (module doc)."""
    a = np.asarray(v_dqn, dtype=np.float64).reshape(-1)
    b = np.asarray(v_samdp, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    num = float(np.sum((a - b) ** 2))
    den = float(np.sum(a ** 2))
    if den == 0.0:
        return 0.0 if num == 0.0 else float("inf")
    return num / den


def inertia(features: np.ndarray, labels: np.ndarray,
            centres: np.ndarray | None = None) -> float:
    """Within-cluster sum of squares of ``features`` ``(T, F)`` under ``labels`` ``(T,)``.

    Distances are to the cluster means, or to ``centres[label]`` when given ``(K, F)``.
    """
    x = np.asarray(features, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    lab = np.asarray(labels).astype(np.int64)
    if x.shape[0] != lab.shape[0]:
        raise ValueError(f"features have {x.shape[0]} rows, labels have {lab.shape[0]}")
    if lab.size == 0:
        return 0.0
    if centres is None:
        k = int(lab.max()) + 1
        counts = np.bincount(lab, minlength=k).astype(np.float64)
        sums = np.stack([np.bincount(lab, weights=x[:, j], minlength=k)
                         for j in range(x.shape[1])], axis=1)
        c = sums / np.maximum(counts, 1.0)[:, None]
    else:
        c = np.asarray(centres, dtype=np.float64).reshape(-1, x.shape[1])
    d = x - c[lab]
    return float(np.einsum("tf,tf->", d, d))


def intensity_factor(labels: np.ndarray, episode_end: np.ndarray) -> float:
    """In-cluster / out-of-cluster transitions within episodes (module doc)."""
    lab = np.asarray(labels).astype(np.int64).reshape(-1)
    ep = episode_ids(episode_end)
    if ep.shape[0] != lab.shape[0]:
        raise ValueError(f"episode_end has {ep.shape[0]} steps, labels have {lab.shape[0]}")
    same_ep = ep[1:] == ep[:-1]
    stay = lab[1:] == lab[:-1]
    n_in = int(np.sum(same_ep & stay))
    n_out = int(np.sum(same_ep & ~stay))
    if n_in + n_out == 0:
        return float("nan")
    if n_out == 0:
        return float("inf")
    return n_in / n_out


def transition_entropy(transition: np.ndarray, weights: np.ndarray | None = None) -> float:
    """Mean row entropy (bits) of a ``(K, K + 1)`` or ``(K, K)`` transition matrix over its
    non-absorbing rows."""
    p = np.asarray(transition, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] not in (p.shape[0], p.shape[0] + 1):
        raise ValueError(f"transition must be (K, K + 1) or (K, K), got shape {p.shape}")
    if np.any(p < 0):
        raise ValueError("transition has negative entries")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(np.where(p > 0, p, 1.0)), 0.0)
    h = terms.sum(axis=1)
    active = p.sum(axis=1) > 0
    if not active.any():
        return 0.0
    w = np.ones(p.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    w = np.where(active, w, 0.0)
    if w.sum() <= 0:
        return 0.0
    return float(max(0.0, np.sum(w * h) / w.sum()))


def greedy_skills(samdp: SAMDP) -> np.ndarray:
    """``(K,)`` greedy target ``argmax_{j: P_ij > 0} R_ij + Gamma_ij V_j``, ``K`` for the
    terminal state (``V_K = 0``); -1 if absorbing."""
    p = samdp.transition
    v = np.append(samdp.samdp_values, 0.0)  # the terminal state's value
    score = samdp.skill_reward + samdp.discount * v[None, :]
    score = np.where(p > 0, score, -np.inf)
    out = score.argmax(axis=1).astype(np.int64)
    out[~np.isfinite(score.max(axis=1))] = -1
    return out


def greedy_consistency(samdp: SAMDP, reward: np.ndarray, episode_end: np.ndarray,
                       *, fraction: float = 0.25,
                       truncated: np.ndarray | None = None) -> GreedyConsistency:
    """Do high-return episodes follow the one-step-greedy SAMDP skill more often?

    ``reward``, ``episode_end`` and ``truncated`` are the ``(T,)`` arrays the SAMDP was
    built from (its ``labels`` are reused).  See the module docstring for the exact rule.
    """
    if not 0.0 < fraction <= 0.5:
        raise ValueError(f"fraction must be in (0, 0.5], got {fraction}")
    rew = np.asarray(reward, dtype=np.float64).reshape(-1)
    ends = np.asarray(episode_end, dtype=bool).reshape(-1)
    if rew.shape[0] != samdp.labels.shape[0] or ends.shape[0] != rew.shape[0]:
        raise ValueError("reward and episode_end must match the SAMDP's labels (T,)")
    ep = episode_ids(ends)
    n_ep = int(ep[-1]) + 1 if ep.size else 0
    returns = np.bincount(ep, weights=rew, minlength=n_ep)
    cut = np.zeros(n_ep, dtype=bool)  # episodes whose return was cut short
    if ep.size and not ends[-1]:
        cut[-1] = True  # the recording stopped in it
    if truncated is not None:
        cut[ep[np.asarray(truncated, dtype=bool).reshape(-1) & ends]] = True
    complete = np.flatnonzero(~cut) if (~cut).any() else np.arange(n_ep)
    n_group = min(len(complete), max(1, int(round(fraction * len(complete)))))
    order = complete[np.argsort(returns[complete], kind="stable")]
    bottom, top = order[:n_group], order[len(order) - n_group:]

    sk = skill_instances(samdp.labels, rew, ends, samdp.gamma, truncated=truncated)
    target = np.where(sk.target == TERMINAL, samdp.terminal, sk.target)
    greedy = greedy_skills(samdp)
    g = greedy[sk.source]
    counted = g >= 0
    hit = counted & (target == g)

    def frac(eps: np.ndarray) -> float:
        sel = np.isin(sk.episode, eps) & counted
        return float(hit[sel].sum() / sel.sum()) if sel.any() else float("nan")

    f_top, f_bottom = frac(top), frac(bottom)
    return GreedyConsistency(top=f_top, bottom=f_bottom, difference=f_top - f_bottom,
                             n_top_episodes=int(len(top)), n_bottom_episodes=int(len(bottom)))


def evaluate_samdp(samdp: SAMDP, features: np.ndarray, reward: np.ndarray,
                   episode_end: np.ndarray, *, fraction: float = 0.25,
                   truncated: np.ndarray | None = None) -> dict[str, float]:
    """All criteria of one SAMDP as a flat dict (for criteria-vs-K tables and plots).

    Keys: ``vmse`` (against the DQN's entry values), ``vmse_all_steps`` (against its
    all-step cluster means), ``vmse_returns`` (against the observed returns from the
    entry steps), ``inertia`` (of ``features`` under ``samdp.labels``),
    ``intensity_factor``, ``entropy``, ``greedy_top``, ``greedy_bottom``,
    ``greedy_difference``.
    """
    gc = greedy_consistency(samdp, reward, episode_end, fraction=fraction,
                            truncated=truncated)
    return {
        "vmse": vmse(samdp.entry_values, samdp.samdp_values),
        "vmse_all_steps": vmse(samdp.cluster_values, samdp.samdp_values),
        "vmse_returns": vmse(samdp.entry_returns, samdp.samdp_values),
        "inertia": inertia(features, samdp.labels),
        "intensity_factor": intensity_factor(samdp.labels, episode_end),
        "entropy": transition_entropy(samdp.transition),
        "greedy_top": gc.top,
        "greedy_bottom": gc.bottom,
        "greedy_difference": gc.difference,
    }
