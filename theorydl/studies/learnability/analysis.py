"""Analysis of the trained census: expressible against learned, per architecture.

Reads the train stage's rows (one per trained function: ``n_success`` seeds fit it,
``learned``), checks that every function of every (activation, architecture, N) was
trained exactly once, recomputes the exact expressible set of the threshold network of
the same shape, and returns the metrics, the CSV text of the ``table``, ``classes``,
``hardest`` and ``plot`` paths, and the rows the figures draw; pure, it writes no file
(the spine's ``Experiment.write_analysis`` does).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from theorydl.spine.experiment import Analysis, StageError
from theorydl.spine.store.store import csv_text
from theorydl.studies.learnability.architectures import architecture_name

__all__ = ["LearnabilityIncomplete", "analyze", "group_results"]


class LearnabilityIncomplete(StageError):
    """Some function of some architecture has no ok result."""


def group_results(table: pa.Table) -> dict[tuple[str, int, int, int], dict[str, np.ndarray]]:
    """Per (activation, depth, width, N): arrays over all 2^(2^N) truth tables of
    ``n_success`` and ``final_loss``, checked complete. Raises
    :class:`LearnabilityIncomplete` naming the first gap or failure."""
    cols = ["activation", "depth", "width", "n_inputs", "status", "error", "table",
            "n_success", "final_loss", "n_seeds"]
    rows = table.select([c for c in cols if c in table.column_names]).to_pylist()
    out: dict[tuple[str, int, int, int], dict[str, np.ndarray]] = {}
    for r in rows:
        key = (r["activation"], r["depth"], r["width"], r["n_inputs"])
        if r["status"] != "ok":
            last = (r.get("error") or "").strip().splitlines()[-1:] or [""]
            raise LearnabilityIncomplete(
                f"learnability {key}: a trial is {r['status']} ({last[0]}); re-run "
                f"`dvc repro learnability_train` (finished trials are kept)")
        g = out.get(key)
        if g is None:
            total = 2 ** 2 ** r["n_inputs"]
            g = out[key] = {"n_success": np.full(total, -1, dtype=np.int64),
                            "final_loss": np.full(total, np.nan)}
        g["n_success"][r["table"]] = r["n_success"]
        g["final_loss"][r["table"]] = np.nan if r["final_loss"] is None else r["final_loss"]
    for key, g in out.items():
        missing = np.flatnonzero(g["n_success"] < 0)
        if missing.size:
            raise LearnabilityIncomplete(
                f"learnability {key}: {missing.size} functions have no result (first: "
                f"truth table {missing[0]}); re-run `dvc repro learnability_train`")
    return out


def analyze(table: pa.Table, cfg) -> Analysis:
    """Expressible against learned per architecture: tables, metrics and figure rows."""
    from theorydl.expressivity.networks import count_network, npn_classes

    groups = group_results(table)
    seeds = cfg.n_seeds
    summary, class_rows, hardest, plot = [], [], [], []
    metrics: dict[str, Any] = {k: {} for k in (
        "expressible", "learned", "expressible_not_learned", "learned_not_expressible",
        "mean_seed_success")}
    expressible_cache: dict[tuple[str, int], np.ndarray] = {}
    for (act, depth, width, n), g in sorted(groups.items()):
        arch = architecture_name(width, depth)
        class_of, sizes = npn_classes(n)
        if (arch, n) not in expressible_cache:
            reached = count_network(n, [width] * depth).classes
            expressible_cache[arch, n] = np.isin(class_of, reached)
        expressible = expressible_cache[arch, n]
        success = g["n_success"] / seeds
        learned = g["n_success"] > 0
        row = {"activation": act, "architecture": arch, "depth": depth, "width": width,
               "n_inputs": n, "n_functions": int(learned.size),
               "expressible": int(expressible.sum()), "learned": int(learned.sum()),
               "learned_and_expressible": int((learned & expressible).sum()),
               "expressible_not_learned": int((expressible & ~learned).sum()),
               "learned_not_expressible": int((learned & ~expressible).sum()),
               "mean_seed_success": round(float(success.mean()), 6),
               "mean_seed_success_expressible": round(float(success[expressible].mean()), 6)}
        summary.append(row)
        plot.append({"architecture": f"{act}/{arch}/N{n}", "expressible": row["expressible"],
                     "learned": row["learned"],
                     "learned_per_expressible": round(row["learned"] / row["expressible"], 6)
                     if row["expressible"] else None})
        for key in ("learned", "expressible_not_learned", "learned_not_expressible",
                    "mean_seed_success"):
            metrics[key].setdefault(act, {}).setdefault(arch, {})[str(n)] = row[key]
        metrics["expressible"].setdefault(arch, {})[str(n)] = row["expressible"]
        per_class = np.bincount(class_of, weights=success, minlength=len(sizes)) / sizes
        learned_in = np.bincount(class_of, weights=learned, minlength=len(sizes))
        for c in range(len(sizes)):
            member = int(np.flatnonzero(class_of == c)[0])
            class_rows.append({"activation": act, "architecture": arch, "n_inputs": n,
                               "npn_class": c, "representative": member,
                               "class_size": int(sizes[c]),
                               "expressible": bool(expressible[member]),
                               "seed_success": round(float(per_class[c]), 6),
                               "learned": int(learned_in[c])})
        # hardest: lowest success, then highest final loss; the never-learned expressible
        # ones all listed
        loss = np.nan_to_num(g["final_loss"], nan=np.inf)
        order = np.lexsort((-loss, success))
        pick = set(order[:cfg.n_hardest].tolist()) | set(
            np.flatnonzero(expressible & ~learned).tolist())
        for t in sorted(pick, key=lambda t: (success[t], -loss[t])):
            hardest.append({"activation": act, "architecture": arch, "n_inputs": n,
                            "table": int(t), "npn_class": int(class_of[t]),
                            "seed_success": float(success[t]),
                            "final_loss": None if np.isinf(loss[t]) else float(loss[t]),
                            "expressible": bool(expressible[t]), "learned": bool(learned[t])})
    return Analysis(
        metrics=metrics,
        plots={"table": csv_text(summary), "classes": csv_text(class_rows),
               "hardest": csv_text(hardest), "plot": csv_text(plot)},
        frames={"summary": summary, "classes": class_rows, "hardest": hardest})
