"""The census: how many Boolean functions of N inputs does a machine express?

For each architecture and each N, all 2^(2^N) truth tables are enumerated in shards
(one trial = one shard, so the work for one N runs on many Ray workers) and each
function is decided exactly (for the linear-threshold unit: a unateness filter, then a
verified linear program). The analysis (:mod:`theorydl.studies.census.analysis`) sums
the shards into one row per (architecture, N) and compares with the published counts
(OEIS A000609 for one threshold unit). Further machines are further architecture names
(:mod:`theorydl.studies.census.machines`), and so new rows of the same table:

* ``net-k1-...-kL``: the N-k1-...-kL-1 network of linear-threshold units, counted
  exactly by composing truth tables (:mod:`theorydl.expressivity.networks`); its shards
  split the first hidden unit's NPN representatives and return the NPN classes they
  reach, whose union is the count (``net-1`` is one unit again: a second, independent
  check of A000609);
* ``formulas``: Xiong's X-forms read as AND/OR/NOT formulas; one row per size bound s,
  named ``formulas<=s``, for s = 0, 1, ... until every function is reached.

Which functions gradient descent actually finds is the trained census
(:mod:`theorydl.studies.learnability.experiment`), which reads this table.

Run it: ``dvc repro census_analyze`` or ``python pipelines/train.py census``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
from pydantic import Field, field_validator, model_validator

from theorydl.expressivity import KNOWN_COUNTS, MAX_N
from theorydl.spine.config import (
    Params,
    Paths,
    Section,
    data_file,
    figure_file,
    plot_file,
    result_file,
)
from theorydl.spine.experiment import Claim, Experiment, Plot, Stage, StageError, Unit, run_each
from theorydl.spine.spec import TrialSpec
from theorydl.spine.store.store import write_table_atomic
from theorydl.studies.census.machines import FORMULAS

__all__ = ["Census", "CensusConfig"]


class CensusPaths(Paths):
    domains: str = data_file("domains.parquet")
    """Data stage output: the input patterns of {0,1}^N, in the truth-table bit order."""
    table: str = result_file("{name}.csv")
    """One row per (architecture, N): n_functions, n_realizable, and the published count."""
    formula_figure: str = figure_file("formulas")
    """Functions reached by formulas of size <= s, against s, per N."""
    plot: str = plot_file()
    """Plot data for `dvc plots show`: log2 counts against N."""
    figure: str = figure_file()
    """The census figure: log2 of the count against N, beside log2 of all 2^(2^N) functions
    (that is, 2^N)."""


class CensusConfig(Section):
    n_inputs: list[int] = Field(min_length=1)
    """Values of N to enumerate; each 0..5 (N = 5 means 2^32 functions: cluster scale)."""
    architectures: list[str] = Field(min_length=1)
    """Machines to count for: threshold (one unit), net-k1-...-kL (an N-k1-...-kL-1
    threshold network, e.g. net-3 or net-2-2), formulas (AND/OR/NOT by size)."""
    network_n_inputs: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    """Values of N for the net-* and formulas architectures; each 0..4."""
    functions_per_unit: int = Field(default=16384, ge=1, le=2**32)
    """Truth tables per trial (shard); each shard is one Ray task."""
    paths: CensusPaths = CensusPaths()
    """Where the stages write: each path defaults from the name (theorydl.spine.config.Paths)."""

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

    @field_validator("network_n_inputs")
    @classmethod
    def _net_n_range(cls, values: list[int]) -> list[int]:
        from theorydl.expressivity.networks import NET_MAX_N

        for n in values:
            if not 0 <= n <= NET_MAX_N:
                raise ValueError(f"N = {n}: networks and formulas are counted for N in "
                                 f"0..{NET_MAX_N}")
        if len(set(values)) != len(values):
            raise ValueError(f"repeated values in {values}")
        return values

    @field_validator("architectures")
    @classmethod
    def _known_architectures(cls, values: list[str]) -> list[str]:
        from theorydl.expressivity import ARCHITECTURES
        from theorydl.expressivity.networks import parse_network

        for name in values:
            if name not in ARCHITECTURES and name != FORMULAS and parse_network(name) is None:
                raise ValueError(f"unknown architecture {name!r}; known: "
                                 f"{', '.join(sorted(ARCHITECTURES))}, {FORMULAS}, or "
                                 f"net-k1-...-kL (hidden widths >= 1, e.g. net-3, net-2-2)")
        if len(set(values)) != len(values):
            raise ValueError(f"repeated values in {values}")
        return values

    @model_validator(mode="after")
    def _nothing_silently_dropped(self) -> "CensusConfig":
        counted = [a for a in self.architectures if a == FORMULAS or a.startswith("net-")]
        if counted and not self.network_n_inputs:
            raise ValueError(f"network_n_inputs is empty, so {', '.join(counted)} would count "
                             f"nothing: give it values of N (0..4), or drop them from "
                             f"architectures")
        return self


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
    for n, count in enumerate(KNOWN_COUNTS["threshold"][:MAX_N + 1])) + tuple(
    Claim(f"net1_threshold_n{n}",
          f"one linear-threshold unit realises {count} Boolean functions of {n} inputs "
          f"(counted by the network enumeration, net-1)",
          "OEIS A000609 (threshold functions of n or fewer variables)",
          f"net-1.n_realizable.{n}", "==", count, profile=_profile(n),
          note="the same count by a second, independent method (composition of truth "
               "tables with NPN symmetry instead of the unateness filter and LPs)")
    for n, count in enumerate(KNOWN_COUNTS["threshold"][:5])) + (
    Claim("npn_classes_n4", "the 65,536 Boolean functions of 4 inputs fall into 222 NPN "
          "classes", "OEIS A000370 (Boolean functions of n variables up to NPN)",
          "symmetry.npn_classes.4", "==", 222, profile="default",
          note="the symmetry the network census and the trained census group by"),
)


#: Unate Boolean functions of N = 0, 1, ... variables (OEIS A003183): the threshold
#: screen's candidates, for the cost model.
_UNATE = (2, 4, 14, 104, 2470, 1579888)


class Census(Experiment):
    name = "census"
    version = 1
    section = CensusConfig
    stages = {
        "data": Stage(reads=("n_inputs", "architectures", "network_n_inputs"),
                      writes=("domains",)),
        "train": Stage(reads=("n_inputs", "architectures", "functions_per_unit",
                              "network_n_inputs"), needs=("domains",)),
    }
    stages = {**stages, "analyze": Stage(reads=("network_n_inputs",))}
    claims = CLAIMS
    figure_claims = {"figure": ("*",)}
    plots = {"census": Plot(
        "plot", x="n_inputs", y=("log2_threshold", "log2_all_functions"),
        title="Boolean functions an N-input machine expresses", x_label="N (inputs)",
        y_label="log2(count)",
        about="log2 of the number of realizable functions against N, beside 2^N "
              "(log2 of all 2^(2^N) functions).")}

    def trials(self, cfg: CensusConfig) -> list[TrialSpec]:
        from theorydl.expressivity import n_functions
        from theorydl.expressivity.networks import network_shards, parse_network

        specs = []
        for arch in cfg.architectures:
            if arch == FORMULAS or parse_network(arch) is not None:
                for n in cfg.network_n_inputs:
                    shards = 1 if arch == FORMULAS else network_shards(n)
                    for start in range(shards):
                        specs.append(TrialSpec(
                            self.name, self.version,
                            {"architecture": arch, "n_inputs": n, "start": start,
                             "stop": start + 1},
                            seed=0, swept=("architecture", "n_inputs", "start", "stop")))
                continue
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

    def trial_cost(self, trial: TrialSpec, cfg: CensusConfig) -> float:
        """Threshold shards: a cheap vectorised screen of every function (2^N bits each,
        64 to a word) plus a linear programme (2^N constraints) per unate candidate, the
        candidates taken at their average density (OEIS A003183 counts the unate
        functions of N variables). Other architectures: functions x 2^N."""
        c = trial.config
        n, functions = c["n_inputs"], c["stop"] - c["start"]
        points = 2 ** n
        if c["architecture"] != "threshold" or n >= len(_UNATE):
            return float(functions * points)
        candidates = functions * _UNATE[n] / 2 ** points
        return float(functions * points / 64 + candidates * points * 64)

    def cost_class(self, trial: TrialSpec) -> str:
        return trial.config["architecture"]

    def run_unit(self, unit: Unit, cfg: CensusConfig):
        from theorydl.expressivity import count_realizable, n_functions
        from theorydl.expressivity.networks import count_formulas, count_network, parse_network

        def one(spec: TrialSpec) -> list[dict[str, Any]]:
            c = spec.config
            n = c["n_inputs"]
            if c["architecture"] == FORMULAS:
                return [{"n_functions": n_functions(n), "formula_size": s, "n_realizable": k}
                        for s, k in enumerate(count_formulas(n))]
            widths = parse_network(c["architecture"])
            if widths is not None:
                got = count_network(n, widths, c["start"], c["stop"])
                return [{"n_functions": n_functions(n), "n_realizable": got.n_realizable,
                         "classes": " ".join(map(str, got.classes)),
                         "early_exit": got.early_exit}]
            count = count_realizable(c["architecture"], c["n_inputs"], c["start"], c["stop"])
            return [{"n_functions": count.n_functions, "n_candidates": count.n_unate,
                     "n_realizable": count.n_realizable}]

        return run_each(unit, one)

    def data(self, params: Params, cfg: CensusConfig) -> None:
        """The input domains {0,1}^N, one row per (N, pattern), in truth-table bit order."""
        from theorydl.expressivity import input_patterns

        rows: dict[str, list] = {"n_inputs": [], "pattern_index": [], "x": []}
        for n in _all_n(cfg):
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
        for n in _all_n(cfg):
            rows = table.filter(pa.compute.equal(table["n_inputs"], n))
            if rows["x"].to_pylist() != input_patterns(n).tolist():
                raise StageError(f"{path}: the N={n} domain differs from the one the "
                                 f"census decides over; re-run `dvc repro census_data`")


def _all_n(cfg: CensusConfig) -> list[int]:
    """Every N some architecture of the config counts."""
    from theorydl.expressivity.networks import parse_network

    nets = any(a == FORMULAS or parse_network(a) is not None for a in cfg.architectures)
    plain = any(a != FORMULAS and parse_network(a) is None for a in cfg.architectures)
    return sorted(set(cfg.n_inputs if plain else []) | set(cfg.network_n_inputs if nets else []))
