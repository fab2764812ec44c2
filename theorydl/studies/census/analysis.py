"""Analysis of the census: the shard trials summed into one row per (architecture, N),
compared with the published counts; pure, it writes no file.

:func:`analyze` returns the census table (``paths.table``: the CSV the trained census,
:mod:`theorydl.studies.learnability`, reads by path), the plot data (``paths.plot``: log2
counts against N), the metrics the claims read, and the rows the figures
(:mod:`theorydl.studies.census.figures`) draw.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa

from theorydl.spine.experiment import Analysis, StageError
from theorydl.spine.store.store import csv_text
from theorydl.studies.census.machines import FORMULAS

__all__ = ["CensusIncomplete", "analyze", "census_table"]


def analyze(table: pa.Table, cfg) -> Analysis:
    """The census table, plot data, metrics and figure rows of the train table; raises
    :class:`CensusIncomplete` if some (architecture, N) is not fully counted."""
    rows = census_table(table)
    archs = sorted({r["architecture"] for r in rows})
    machines = [r for r in rows if not r["architecture"].startswith(FORMULAS)]
    plot_rows = []
    for n in sorted({r["n_inputs"] for r in machines}):
        point = {"n_inputs": n, "log2_all_functions": 2.0 ** n}
        for r in machines:
            if r["n_inputs"] == n:
                point[f"log2_{r['architecture']}"] = round(math.log2(r["n_realizable"]), 6)
        plot_rows.append(point)
    metrics = {
        arch: {
            "n_realizable": {str(r["n_inputs"]): r["n_realizable"]
                             for r in rows if r["architecture"] == arch},
            "matches_published": all(r["matches_published"] is not False
                                     for r in rows if r["architecture"] == arch),
        }
        for arch in archs
    }
    from theorydl.expressivity.networks import npn_classes

    if len(machines) < len(rows) or any(r["architecture"].startswith("net-")
                                        for r in rows):
        metrics["symmetry"] = {"npn_classes": {str(n): len(npn_classes(n)[1])
                                               for n in cfg.network_n_inputs}}
    formulas = [r for r in rows if r["architecture"].startswith(FORMULAS)]
    if formulas:
        metrics[FORMULAS] = {"size_to_reach_all": {
            str(n): max(int(r["architecture"].split("<=")[1]) for r in formulas
                        if r["n_inputs"] == n)
            for n in sorted({r["n_inputs"] for r in formulas})}}
    return Analysis(metrics=metrics,
                    plots={"table": csv_text(rows), "plot": csv_text(plot_rows)},
                    frames={"machines": machines, "formulas": formulas})


class CensusIncomplete(StageError):
    """Some shard of some N has no ok result, so its count would be wrong."""


def census_table(trials: pa.Table) -> list[dict[str, Any]]:
    """Combine shard trials into one row per (architecture, N), checking full coverage.

    Threshold shards (ranges of truth tables) add up; network shards (ranges of first
    units) are united by NPN class; a formulas trial expands into one row per size bound
    (``formulas<=s``). Raises :class:`CensusIncomplete` naming the (architecture, N)
    whose shards failed or do not cover the whole range.
    """
    from theorydl.expressivity import KNOWN_COUNTS, n_functions
    from theorydl.expressivity.networks import network_shards, parse_network, realized_count

    wanted = ["architecture", "n_inputs", "start", "stop", "status", "error", "n_functions",
              "n_realizable", "classes", "formula_size"]
    cols = trials.select([c for c in wanted if c in trials.column_names]).to_pylist()
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in cols:
        groups.setdefault((r["architecture"], r["n_inputs"]), []).append(r)
    out = []

    def row(arch: str, n: int, realizable: int) -> dict[str, Any]:
        known = KNOWN_COUNTS.get("threshold" if arch == "net-1" else arch, ())
        published = known[n] if n < len(known) else None
        return {"architecture": arch, "n_inputs": n, "n_functions": n_functions(n),
                "n_realizable": realizable, "published": published,
                "matches_published": None if published is None else realizable == published}

    for (arch, n), shards in sorted(groups.items()):
        bad = [s for s in shards if s["status"] != "ok"]
        if bad:
            first = (bad[0]["error"] or "").strip().splitlines()[-1:] or [""]
            raise CensusIncomplete(
                f"census {arch} N={n}: {len(bad)} of {len(shards)} shards are not ok "
                f"(first error: {first[0]}); re-run with `dvc repro -f census_train` "
                f"(failed trials are retried, finished ones are kept)")
        spans = {(s["start"], s["stop"]) for s in shards}
        covered = sum(b - a for a, b in spans)
        if arch == FORMULAS:
            if covered != 1:
                raise CensusIncomplete(f"census {arch} N={n}: no complete formula count")
            for s in sorted(shards, key=lambda s: s["formula_size"]):
                out.append(row(f"{FORMULAS}<={s['formula_size']}", n, s["n_realizable"]))
            continue
        if parse_network(arch) is not None:
            if covered != network_shards(n):
                raise CensusIncomplete(f"census {arch} N={n}: shards cover {covered} of "
                                       f"{network_shards(n)} first units")
            classes = {int(c) for s in shards for c in (s["classes"] or "").split()}
            out.append(row(arch, n, realized_count(n, classes)))
            continue
        total = sum(s["n_functions"] for s in shards)
        if covered != n_functions(n) or total != n_functions(n):
            raise CensusIncomplete(f"census {arch} N={n}: shards cover {covered} of "
                                   f"{n_functions(n)} functions")
        out.append(row(arch, n, sum(s["n_realizable"] for s in shards)))
    return out
