"""A toy experiment for the executor tests: trials that compute, fail, sleep or die on demand.

Workers import this module by name (the test fixtures put this folder on PYTHONPATH
before Ray starts), so it is no stub inside the package.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pyarrow as pa
from pydantic import Field

from theorydl.spine.config import Section
from theorydl.spine.experiment import Experiment, Unit, run_each
from theorydl.spine.spec import TrialSpec


class ToyConfig(Section):
    values: list[int] = Field(default_factory=lambda: [1, 2, 3, 4])
    seeds: list[int] = Field(default_factory=lambda: [0])
    trials_per_unit: int = 1
    fail_on: list[int] = Field(default_factory=list)
    """Values whose trial raises."""
    die_once_on: list[int] = Field(default_factory=list)
    """Values whose worker process exits on the first attempt (marker files in marker_dir)."""
    die_always_on: list[int] = Field(default_factory=list)
    sleep: float = 0.0
    marker_dir: str = ""
    runs_dir: str = ""
    """Where each execution of a trial leaves a file named after the trial (empty: nowhere)."""
    trials_path: str = "toy.parquet"


class Toy(Experiment):
    name = "toy"
    version = 1
    section = ToyConfig

    def trials(self, cfg: ToyConfig) -> list[TrialSpec]:
        return [TrialSpec(self.name, self.version, {"value": v}, seed=s, swept=("value",))
                for v in cfg.values for s in cfg.seeds]

    def units(self, trials, cfg: ToyConfig) -> list[Unit]:
        k = cfg.trials_per_unit
        return [Unit(tuple(trials[i:i + k]), num_cpus=1, label=str(i))
                for i in range(0, len(trials), k)]

    def trial_cost(self, trial: TrialSpec, cfg: ToyConfig) -> float:
        """The forecast's cost model: a trial's value (its run time with ``sleep``)."""
        return float(trial.config["value"])

    def run_unit(self, unit: Unit, cfg: ToyConfig):
        for spec in unit.trials:
            v = spec.config["value"]
            if v in cfg.die_always_on:
                os._exit(3)
            if v in cfg.die_once_on:
                marker = Path(cfg.marker_dir) / f"died-{v}"
                if not marker.exists():
                    marker.write_text("1")
                    os._exit(3)

        def one(spec: TrialSpec):
            v = spec.config["value"]
            if cfg.runs_dir:
                (Path(cfg.runs_dir) / f"{spec.id}-{uuid.uuid4().hex}").touch()
            time.sleep(cfg.sleep)
            if v in cfg.fail_on:
                raise ValueError(f"toy failure on {v}")
            return [{"step": i, "y": float(v * v + spec.seed + i)} for i in range(3)]

        return run_each(unit, one)

    def trials_path(self, cfg: ToyConfig) -> Path:
        return Path(cfg.trials_path)

    def analyze(self, table: pa.Table, cfg: ToyConfig, params) -> dict:
        return {"rows": table.num_rows}
