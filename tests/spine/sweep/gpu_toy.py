"""A toy experiment whose units ask for GPUs, for the GPU tests: each trial records the
GPUs Ray gave its worker, CUDA_VISIBLE_DEVICES and the worker's process (no CUDA needed);
a unit can sleep, or kill its worker once or always.

Workers import this module by name (the tests put this folder on PYTHONPATH)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from theorydl.spine.config import Section
from theorydl.spine.experiment import Experiment, Unit, run_each
from theorydl.spine.spec import TrialSpec


class GpuToyConfig(Section):
    values: list[int] = Field(default_factory=lambda: [1, 2])
    device: Literal["auto", "cpu", "cuda"] = "cuda"
    gpus_per_unit: float = 1.0
    sleep: float = 0.0
    die_always_on: list[int] = Field(default_factory=list)
    """Values whose worker process exits, every attempt."""
    die_once_on: list[int] = Field(default_factory=list)
    """Values whose worker process exits on the first attempt (marker files in marker_dir)."""
    marker_dir: str = ""
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
        import time
        from pathlib import Path

        import ray

        value = unit.trials[0].config["value"]
        if value in cfg.die_always_on:
            os._exit(3)
        marker = Path(cfg.marker_dir or ".") / f"died-{value}"
        if value in cfg.die_once_on and not marker.exists():
            marker.write_text("1")
            os._exit(3)

        def one(spec: TrialSpec):
            time.sleep(cfg.sleep)
            return [{"gpu_ids": ",".join(map(str, ray.get_gpu_ids())),
                     "visible": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
                     "pid": os.getpid()}]

        return run_each(unit, one)

    def trials_path(self, cfg: GpuToyConfig):
        from pathlib import Path

        return Path(cfg.trials_path)

    def analyze(self, table, cfg, params):
        return {}


def refuse_to_load():
    raise RuntimeError("this object cannot be loaded on a worker")


class Unloadable:
    """Pickles fine on the driver and fails to unpickle anywhere: an actor whose
    constructor gets one cannot start."""

    def __reduce__(self):
        return refuse_to_load, ()
