"""A toy experiment whose units ask for GPUs, for the GPU-request tests: each trial
records the GPUs Ray gave its task and the node it ran on (no CUDA needed).

Workers import this module by name (the tests put this folder on PYTHONPATH)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from theorydl.config import Section
from theorydl.experiments.base import Experiment, Unit, run_each
from theorydl.sweep.spec import TrialSpec


class GpuToyConfig(Section):
    values: list[int] = Field(default_factory=lambda: [1, 2])
    device: Literal["auto", "cpu", "cuda"] = "cuda"
    gpus_per_unit: float = 1.0
    trials_path: str = "gpu_toy.parquet"


class GpuToy(Experiment):
    name = "gpu_toy"
    version = 1
    section = GpuToyConfig

    def trials(self, cfg: GpuToyConfig) -> list[TrialSpec]:
        return [TrialSpec(self.name, self.version, {"value": v}, seed=0, swept=("value",))
                for v in cfg.values]

    def units(self, trials, cfg: GpuToyConfig) -> list[Unit]:
        gpus = 0.0 if cfg.device == "cpu" else cfg.gpus_per_unit
        return [Unit((t,), num_cpus=1, num_gpus=gpus, label=str(t.config["value"]))
                for t in trials]

    def run_unit(self, unit: Unit, cfg: GpuToyConfig):
        import os

        import ray

        def one(spec: TrialSpec):
            return [{"gpu_ids": ",".join(map(str, ray.get_gpu_ids())),
                     "visible": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
                     "pid": os.getpid()}]

        return run_each(unit, one)

    def trials_path(self, cfg: GpuToyConfig):
        from pathlib import Path

        return Path(cfg.trials_path)

    def analyze(self, table, cfg, params):
        return {}
