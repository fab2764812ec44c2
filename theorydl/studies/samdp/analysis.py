"""Analysis of the SAMDP experiment: embed, cluster and model each trial's recording.

Pure: it returns an :class:`~theorydl.spine.experiment.Analysis` (metrics, the
criteria plot data, what the figures draw) and writes no file.

For each (game, seed) trial whose status is ok: PCA + t-SNE of the recorded last hidden
layer; for every K in ``analysis.ks``, spatio-temporal K-means (window
``analysis.window``) and plain K-means on [embedding, value]; an SAMDP per clustering
and its criteria (VMSE, inertia, intensity factor, entropy, greedy consistency). The
figures and the metrics use K = ``analysis.k``, or the K of best silhouette.

Episode ends: the SAMDP's terminal state takes the last run of every episode that the
game ended; the episode the recording stopped in, and any ``truncated`` (time-limit)
episode when the recording has that column, are not terminations.  ``vmse`` compares
the SAMDP values with the DQN's values at the runs' entry steps (what an SAMDP value
estimates); ``vmse_all_steps`` with the DQN's mean over every step of a cluster;
``vmse_returns`` with the returns observed from the entry steps (the abstraction's own
error: ``vmse`` also holds the DQN's error in predicting returns).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from theorydl.spine.experiment import Analysis
from theorydl.studies.samdp.recording import recording_from_rows

__all__ = ["analyze", "criteria_by_k"]

METHODS = ("spatiotemporal", "plain")


def criteria_by_k(rec: dict[str, np.ndarray], features: np.ndarray, cfg, gamma: float,
                  seed: int) -> tuple[list[dict[str, Any]], dict]:
    """Criteria rows (method, k, criteria...) and the fitted SAMDPs keyed (method, k)."""
    from theorydl.studies.samdp.clustering import kmeans, spatio_temporal_kmeans
    from theorydl.studies.samdp.criteria import evaluate_samdp
    from theorydl.studies.samdp.model import build_samdp

    a = cfg.analysis
    rows, models = [], {}
    for k in a.ks:
        if k >= len(features):
            continue
        fits = {
            "spatiotemporal": spatio_temporal_kmeans(features, k, rec["episode_end"],
                                                     window=a.window, seed=seed),
            "plain": kmeans(features, k, seed=seed),
        }
        for method, fit in fits.items():
            model = build_samdp(fit.labels, rec["value"], rec["reward"], rec["episode_end"],
                                gamma, n_clusters=k, min_skill_length=a.min_skill_length,
                                prune=a.prune, truncated=rec.get("truncated"))
            crit = evaluate_samdp(model, features, rec["reward"], rec["episode_end"],
                                  truncated=rec.get("truncated"))
            rows.append({"method": method, "k": k,
                         **{n: (None if not np.isfinite(v) else float(v))
                            for n, v in crit.items()}})
            models[(method, k)] = model
    return rows, models


def _episode_returns(rec: dict[str, np.ndarray]) -> list[float]:
    """Returns of the recorded episodes that finished."""
    ends = np.flatnonzero(rec["episode_end"])
    starts = np.concatenate([[0], ends[:-1] + 1]) if len(ends) else []
    return [float(rec["reward"][s:e + 1].sum()) for s, e in zip(starts, ends)]


def analyze(table: pa.Table, cfg) -> Analysis:
    """The SAMDP metrics, criteria plot data and, per trial analysed, what its figures
    draw (``frames["trials"]``: :func:`theorydl.studies.samdp.figures.draw`)."""
    import pyarrow.compute as pc

    from theorydl.studies.samdp.clustering import clustering_features, select_k
    from theorydl.studies.samdp.embedding import embed

    a = cfg.analysis
    metrics: dict[str, Any] = {}
    criteria_rows: list[dict[str, Any]] = []
    drawn: list[dict[str, Any]] = []
    keys = sorted(set(zip(table["game"].to_pylist(), table["seed"].to_pylist(),
                          table["status"].to_pylist())))
    for game, seed, status in keys:
        if status != "ok":
            metrics.setdefault(game, {})[f"seed_{seed}"] = {"status": status}
            continue
        rows = table.filter(pc.and_(pc.equal(table["game"], game),
                                    pc.equal(table["seed"], seed)))
        rec = recording_from_rows(rows)
        gamma = json.loads(rows["config_json"][0].as_py())["dqn"]["gamma"]
        train = rows.filter(pc.equal(rows["kind"], "train_episode"))
        train_returns = train.take(pc.sort_indices(train, [("episode", "ascending")])
                                   )["episode_return"].to_pylist()
        emb = embed(rec["hidden"], pca_dims=a.pca_dims, perplexity=a.perplexity, seed=seed,
                    n_threads=1)
        features = clustering_features(emb, rec["value"], value_weight=a.value_weight)
        rows_k, models = criteria_by_k(rec, features, cfg, gamma, seed)
        criteria_rows += [{"game": game, "seed": seed, **r} for r in rows_k]
        ks = sorted({r["k"] for r in rows_k})
        if not ks:
            metrics.setdefault(game, {})[f"seed_{seed}"] = {"status": "too few steps"}
            continue
        k = a.k if a.k in ks else select_k(features, ks, seed, episode_end=rec["episode_end"],
                                           window=a.window).k
        chosen = models[("spatiotemporal", k)]
        by = {(r["method"], r["k"]): r for r in rows_k}
        recorded = _episode_returns(rec)
        metrics.setdefault(game, {})[f"seed_{seed}"] = {
            "train_episodes": len(train_returns),
            "train_return_last10": (float(np.mean(train_returns[-10:]))
                                    if train_returns else None),
            "record_episodes": len(recorded),
            "record_return_mean": float(np.mean(recorded)) if recorded else None,
            "k": k,
            **{f"{c}": by[("spatiotemporal", k)][c] for c in
               ("vmse", "entropy", "intensity_factor", "greedy_difference")},
            "vmse_plain_kmeans": by[("plain", k)]["vmse"],
            "vmse_all_steps": by[("spatiotemporal", k)]["vmse_all_steps"],
            "vmse_returns": by[("spatiotemporal", k)]["vmse_returns"],
        }
        drawn.append({"game": game, "seed": seed, "k": k, "embedding": emb,
                      "value": rec["value"], "samdp": chosen,
                      "criteria": [r for r in rows_k if r["method"] == "spatiotemporal"],
                      "frames": rec.get("frames")})
    return Analysis(metrics=metrics, plots={"criteria": _criteria_csv(criteria_rows)},
                    frames={"trials": drawn})


def _criteria_csv(rows: list[dict[str, Any]]) -> str:
    """Wide form for `dvc plots`: one line per (game, seed, k), one column per criterion
    and method."""
    wide: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        line = wide.setdefault((r["game"], r["seed"], r["k"]),
                               {"game": r["game"], "seed": r["seed"], "k": r["k"]})
        for c, v in r.items():
            if c not in ("game", "seed", "k", "method"):
                line[f"{c}_{r['method']}"] = "" if v is None else f"{v:.6g}"
    lines = list(wide.values())
    cols = list(dict.fromkeys(c for line in lines for c in line))
    out = [",".join(cols)] + [",".join(str(line.get(c, "")) for c in cols) for line in lines]
    return "\n".join(out) + "\n"
