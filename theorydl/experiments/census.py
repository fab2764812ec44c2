"""The census: how many Boolean functions of N inputs does a machine express?

For each architecture and each N, all 2^(2^N) truth tables are enumerated in shards
(one trial = one shard, so the work for one N runs on many Ray workers) and each
function is decided exactly (for the linear-threshold unit: a unateness filter, then a
verified linear program). The analysis sums the shards into one row per
(architecture, N) and compares with the published counts (OEIS A000609 for one
threshold unit). New machines (trained networks of width k and depth d, Xiong's
stacked RBM-style machines) are new architecture names in
:mod:`theorydl.expressivity`, and so new rows of the same table.

Run it: ``dvc repro census_analyze`` or ``python pipelines/train.py census``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
from pydantic import Field, field_validator

from theorydl.config import Params, Paths, Section, data_file, figure_file, plot_file, result_file
from theorydl.experiments.base import (Claim, Experiment, Plot, Stage, StageError, Unit,
                                       run_each)
from theorydl.expressivity import KNOWN_COUNTS, MAX_N
from theorydl.store.store import write_table_atomic, write_text_atomic
from theorydl.sweep.spec import TrialSpec

__all__ = ["Census", "CensusConfig", "census_table"]


class CensusPaths(Paths):
    domains: str = data_file("domains.parquet")
    """Data stage output: the input patterns of {0,1}^N, in the truth-table bit order."""
    table: str = result_file("{name}.csv")
    """One row per (architecture, N): n_functions, n_realizable, and the published count."""
    plot: str = plot_file()
    """Plot data for `dvc plots show`: log2 counts against N."""
    figure: str = figure_file()
    """The census figure: log2 of the count against N beside 2^N."""


class CensusConfig(Section):
    n_inputs: list[int] = Field(min_length=1)
    """Values of N to enumerate; each 0..5 (N = 5 means 2^32 functions: cluster scale)."""
    architectures: list[str] = Field(min_length=1)
    """Machines to count for; known: see theorydl.expressivity.ARCHITECTURES."""
    functions_per_unit: int = Field(default=16384, ge=1, le=2**32)
    """Truth tables per trial (shard); each shard is one Ray task."""
    paths: CensusPaths = CensusPaths()
    """Where the stages write: each path defaults from the name (theorydl.config.Paths)."""

    @field_validator("n_inputs")
    @classmethod
    def _n_range(cls, values: list[int]) -> list[int]:
        from theorydl.expressivity import MAX_N

        for n in values:
            if not 0 <= n <= MAX_N:
                raise ValueError(f"N = {n} cannot be enumerated: N must be in 0..{MAX_N} "
                                 f"(2^(2^N) functions)")
        if len(set(values)) != len(values):
            raise ValueError(f"repeated values in {values}")
        return values

    @field_validator("architectures")
    @classmethod
    def _known_architectures(cls, values: list[str]) -> list[str]:
        from theorydl.expressivity import ARCHITECTURES

        for name in values:
            if name not in ARCHITECTURES:
                raise ValueError(f"unknown architecture {name!r}; known: "
                                 f"{', '.join(sorted(ARCHITECTURES))}")
        if len(set(values)) != len(values):
            raise ValueError(f"repeated values in {values}")
        return values


def _profile(n: int) -> str:
    """The smallest profile that counts N (test: N <= 2, default: N <= 4)."""
    return "test" if n <= 2 else "default" if n <= 4 else "paper"


#: One claim per N of the published sequence that can be enumerated: exact counts, so
#: no tolerance.
CLAIMS = tuple(
    Claim(f"threshold_n{n}",
          f"one linear-threshold unit realises {count} Boolean functions of {n} inputs",
          "OEIS A000609 (threshold functions of n or fewer variables)",
          f"threshold.n_realizable.{n}", "==", count, profile=_profile(n))
    for n, count in enumerate(KNOWN_COUNTS["threshold"][:MAX_N + 1]))


class Census(Experiment):
    name = "census"
    version = 1
    section = CensusConfig
    stages = {
        "data": Stage(reads=("n_inputs",), writes=("domains",)),
        "train": Stage(reads=("n_inputs", "architectures", "functions_per_unit"),
                       needs=("domains",)),
    }
    claims = CLAIMS
    plots = {"census": Plot(
        "plot", x="n_inputs", y=("log2_threshold", "log2_all_functions"),
        title="Boolean functions an N-input machine expresses", x_label="N (inputs)",
        y_label="log2(count)",
        about="log2 of the number of realizable functions against N, beside 2^N "
              "(all functions).")}

    def trials(self, cfg: CensusConfig) -> list[TrialSpec]:
        from theorydl.expressivity import n_functions

        specs = []
        for arch in cfg.architectures:
            for n in cfg.n_inputs:
                total = n_functions(n)
                for start in range(0, total, cfg.functions_per_unit):
                    stop = min(start + cfg.functions_per_unit, total)
                    specs.append(TrialSpec(
                        self.name, self.version,
                        {"architecture": arch, "n_inputs": n, "start": start, "stop": stop},
                        seed=0, swept=("architecture", "n_inputs", "start", "stop")))
        # Largest N first: its shards are the slowest, so they should start first.
        return sorted(specs, key=lambda s: -s.config["n_inputs"])

    def units(self, trials, cfg: CensusConfig) -> list[Unit]:
        return [Unit((t,), num_cpus=1,
                     label=f"{t.config['architecture']}-N{t.config['n_inputs']}-{t.config['start']}")
                for t in trials]

    def run_unit(self, unit: Unit, cfg: CensusConfig):
        from theorydl.expressivity import count_realizable

        def one(spec: TrialSpec) -> list[dict[str, Any]]:
            c = spec.config
            count = count_realizable(c["architecture"], c["n_inputs"], c["start"], c["stop"])
            return [{"n_functions": count.n_functions, "n_candidates": count.n_unate,
                     "n_realizable": count.n_realizable}]

        return run_each(unit, one)

    def data(self, params: Params, cfg: CensusConfig) -> None:
        """The input domains {0,1}^N, one row per (N, pattern), in truth-table bit order."""
        from theorydl.expressivity import input_patterns

        rows: dict[str, list] = {"n_inputs": [], "pattern_index": [], "x": []}
        for n in sorted(cfg.n_inputs):
            for j, x in enumerate(input_patterns(n).tolist()):
                rows["n_inputs"].append(n)
                rows["pattern_index"].append(j)
                rows["x"].append(x)
        table = pa.table({"n_inputs": pa.array(rows["n_inputs"], pa.int64()),
                          "pattern_index": pa.array(rows["pattern_index"], pa.int64()),
                          "x": pa.array(rows["x"], pa.list_(pa.uint8()))})
        write_table_atomic(table, cfg.paths.domains)

    def check_data(self, cfg: CensusConfig) -> None:
        """The domains file must hold, for every N asked for, exactly the input patterns
        the deciders use: the bit order is the contract between truth tables and inputs."""
        import pyarrow.parquet as pq

        from theorydl.expressivity import input_patterns

        path = Path(cfg.paths.domains)
        if not path.exists():
            raise StageError(f"{path} is missing: run the data stage first "
                                    f"(`dvc repro census_data`)")
        table = pq.read_table(path)
        for n in cfg.n_inputs:
            rows = table.filter(pa.compute.equal(table["n_inputs"], n))
            if rows["x"].to_pylist() != input_patterns(n).tolist():
                raise StageError(f"{path}: the N={n} domain differs from the one the "
                                 f"census decides over; re-run `dvc repro census_data`")

    def analyze(self, table: pa.Table, cfg: CensusConfig, params: Params) -> dict[str, Any]:
        rows = census_table(table)
        paths = cfg.paths
        _write_csv(rows, paths.table)
        archs = sorted({r["architecture"] for r in rows})
        plot_rows = []
        for n in sorted({r["n_inputs"] for r in rows}):
            point = {"n_inputs": n, "log2_all_functions": 2.0 ** n}
            for r in rows:
                if r["n_inputs"] == n:
                    point[f"log2_{r['architecture']}"] = round(math.log2(r["n_realizable"]), 6)
            plot_rows.append(point)
        _write_csv(plot_rows, paths.plot)
        metrics = {
            arch: {
                "n_realizable": {str(r["n_inputs"]): r["n_realizable"]
                                 for r in rows if r["architecture"] == arch},
                "matches_published": all(r["matches_published"] is not False
                                         for r in rows if r["architecture"] == arch),
            }
            for arch in archs
        }
        write_text_atomic(paths.metrics, json.dumps(metrics, indent=2) + "\n")
        from theorydl.report.figures import census_figure

        census_figure(rows, paths.figure)
        return metrics


class CensusIncomplete(StageError):
    """Some shard of some N has no ok result, so its count would be wrong."""


def census_table(trials: pa.Table) -> list[dict[str, Any]]:
    """Sum shard trials into one row per (architecture, N), checking full coverage.

    Raises :class:`CensusIncomplete` naming the (architecture, N) whose shards failed or
    do not cover all 2^(2^N) functions.
    """
    from theorydl.expressivity import KNOWN_COUNTS, MAX_N, n_functions

    cols = trials.select(["architecture", "n_inputs", "start", "stop", "status", "error",
                          "n_functions", "n_realizable"]).to_pylist()
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in cols:
        groups.setdefault((r["architecture"], r["n_inputs"]), []).append(r)
    out = []
    for (arch, n), shards in sorted(groups.items()):
        bad = [s for s in shards if s["status"] != "ok"]
        if bad:
            first = (bad[0]["error"] or "").strip().splitlines()[-1:] or [""]
            raise CensusIncomplete(
                f"census {arch} N={n}: {len(bad)} of {len(shards)} shards are not ok "
                f"(first error: {first[0]}); re-run with `dvc repro -f census_train` "
                f"(failed trials are retried, finished ones are kept)")
        covered = sum(s["stop"] - s["start"] for s in shards)
        total = sum(s["n_functions"] for s in shards)
        if covered != n_functions(n) or total != n_functions(n):
            raise CensusIncomplete(f"census {arch} N={n}: shards cover {covered} of "
                                   f"{n_functions(n)} functions")
        realizable = sum(s["n_realizable"] for s in shards)
        known = KNOWN_COUNTS.get(arch, ())
        published = known[n] if n < len(known) else None
        out.append({
            "architecture": arch, "n_inputs": n, "n_functions": total,
            "n_realizable": realizable, "published": published,
            "matches_published": None if published is None else realizable == published,
        })
    return out


def _write_csv(rows: list[dict[str, Any]], path: str) -> None:
    import csv
    import io

    fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())
