"""The base of experiments whose trials train in stacks (``theorydl.nn.engine``).

A stacked experiment says what is its science: its trials, which config keys may differ
inside one stack (``per_model_keys``: the seed always may), how much memory one model
needs, and how to train one stack and turn it into rows (``run_stack``). This base does
the rest, the same way for every such experiment:

* grouping: trials whose configs agree outside ``per_model_keys`` share a stack;
* sizing: a stack holds as many models as ``stack_memory_mb`` allows, by the
  experiment's estimate of one model's bytes (and the bytes every model shares);
* scheduling: the costliest stacks are submitted first (they finish last otherwise);
* resources: one CPU and ``gpus_per_stack`` of a GPU per stack (asked only where the
  cluster has GPUs), the device chosen on the worker (``device``: auto, cpu, cuda);
* failure: an exception in a stack fails its trials (rows with the error) and nothing
  else; a model whose loss stopped being finite is ``diverged``, its stack-mates are not.

The resource fields are declared once, in :class:`StackResources`, which every stacked
experiment's params section extends.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from theorydl.spine.config import Section
from theorydl.spine.experiment import Experiment, Unit, error_text, utcnow
from theorydl.spine.spec import TrialSpec, canonical_json
from theorydl.spine.store.rows import TrialResult

__all__ = ["StackResources", "StackedExperiment", "finite_or_none", "log_spaced",
           "worker_device"]


class StackResources(Section):
    """Where and how big the stacks of a stacked experiment are (every such section
    extends this)."""

    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where stacks train: auto = CUDA when the worker has a GPU."""
    gpus_per_stack: float = Field(default=0.25, ge=0.0, le=8.0)
    """GPU share a stack asks Ray for (asked only where the cluster has GPUs)."""
    stack_memory_mb: int = Field(default=2048, ge=16)
    """Memory budget of one stack: the number of models per stack adapts to it."""


def finite_or_none(x: Any) -> float | None:
    """A measurement for a row: the float, or None (a missing value) when not finite."""
    x = float(x)
    return x if math.isfinite(x) else None


def log_spaced(epochs: int, count: int) -> list[int]:
    """``count`` distinct epochs in [0, epochs], as evenly spaced in log(1 + e) as integers allow.

    Targets are ``expm1(linspace(0, log1p(epochs), count))``; where rounding would repeat
    an epoch (early, where targets are closer than 1 apart) the next free epoch is taken.
    Always includes 0 (the initialisation) and ``epochs`` (the end).
    """
    if not 2 <= count <= epochs + 1:
        raise ValueError(f"need 2 <= count <= epochs + 1, got count={count}, epochs={epochs}")
    targets = np.expm1(np.linspace(0.0, math.log1p(epochs), count))
    chosen: list[int] = []
    for i, t in enumerate(targets):
        left = count - 1 - i  # epochs still to place after this one
        e = max(int(round(t)), chosen[-1] + 1 if chosen else 0)
        chosen.append(min(e, epochs - left))
    return chosen


def worker_device(name: str):
    """The torch device a unit runs on: "cpu", "cuda", or "auto" = CUDA exactly when Ray
    gave this task a GPU (outside Ray: when one is visible).

    A task that Ray gave a GPU never falls back to the CPU in silence: when torch cannot
    use CUDA there (a CPU-only build, a driver mismatch), this raises, and the unit's
    trials are stored as ``failed`` with the reason.
    """
    import torch

    from theorydl.nn import resolve_device

    granted = _ray_gpu_ids()
    if granted and name != "cpu" and not torch.cuda.is_available():
        raise RuntimeError(
            f"Ray gave this unit GPU {', '.join(map(str, granted))} but torch "
            f"{torch.__version__} cannot use CUDA (built with CUDA "
            f"{torch.version.cuda or 'none: a CPU-only build'}): install a CUDA build of "
            f"torch on the GPU workers, or set the experiment's device to cpu")
    if name != "auto":
        return resolve_device(name)
    if granted is None:  # outside Ray
        return resolve_device("auto")
    return torch.device("cuda") if granted else torch.device("cpu")


def _ray_gpu_ids() -> list | None:
    """The GPUs Ray assigned to the running task ([] for none), or None outside Ray."""
    import ray

    if not ray.is_initialized():
        return None
    return list(ray.get_gpu_ids())


#: What ``run_stack`` returns: one (status, rows) per trial, status "ok" or "diverged".
StackRows = list[tuple[str, list[dict[str, Any]]]]


class StackedExperiment(Experiment):
    """An experiment whose trials train M at a time in one batched computation."""

    #: Config keys whose values may differ between the models of one stack (the seed
    #: always may): everything else must agree, since it fixes the computation's shape.
    per_model_keys: ClassVar[tuple[str, ...]] = ()

    # ------------------------------------------------------------ what a study says
    @abc.abstractmethod
    def model_bytes(self, trial: TrialSpec, cfg: StackResources) -> int:
        """Estimated bytes one model of ``trial``'s stack needs on its device."""

    def shared_bytes(self, trial: TrialSpec, cfg: StackResources) -> int:
        """Bytes a stack pays once, whatever its size (its data); 0 by default."""
        return 0

    def stack_cost(self, trial: TrialSpec, cfg: StackResources) -> float:
        """A number that orders stacks by their expected run time (largest first)."""
        return 0.0

    def stack_label(self, trial: TrialSpec) -> str:
        """A short name of a stack for logs and progress (its index is appended)."""
        return self.name

    @abc.abstractmethod
    def run_stack(self, trials: Sequence[TrialSpec], cfg: StackResources, device
                  ) -> StackRows:
        """Train one stack of ``trials`` on ``device``; one (status, rows) per trial."""

    # ------------------------------------------------------------ what the base does
    def stack_key(self, trial: TrialSpec) -> str:
        """Trials with the same key may share a stack."""
        skip = set(self.per_model_keys)
        return canonical_json({k: v for k, v in trial.config.items() if k not in skip})

    def units(self, trials: Sequence[TrialSpec], cfg: StackResources) -> list[Unit]:
        groups: dict[str, list[TrialSpec]] = {}
        for t in trials:
            groups.setdefault(self.stack_key(t), []).append(t)
        budget = cfg.stack_memory_mb * 2**20
        # The GPU share follows the device: none for CPU stacks (a GPU share would only
        # keep them waiting for GPU slots); see the executor for "auto".
        gpus = 0.0 if cfg.device == "cpu" else cfg.gpus_per_stack
        units = []
        for members in groups.values():
            first = members[0]
            free = budget - self.shared_bytes(first, cfg)
            size = max(1, int(free // max(1, self.model_bytes(first, cfg))))
            cost, label = self.stack_cost(first, cfg), self.stack_label(first)
            for i in range(0, len(members), size):
                units.append(Unit(tuple(members[i:i + size]), num_cpus=1,
                                  num_gpus=gpus, label=f"{label}-{i}",
                                  extra={"cost": cost}))
        return sorted(units, key=lambda u: -u.extra["cost"])

    def run_unit(self, unit: Unit, cfg: StackResources) -> list[TrialResult]:
        start = utcnow()
        try:
            device = worker_device(cfg.device)
            measured = self.run_stack(unit.trials, cfg, device)
        except Exception as exc:  # noqa: BLE001 - a broken stack fails its trials only
            return [TrialResult(t.id, "failed", start, utcnow(), error=error_text(exc))
                    for t in unit.trials]
        end = utcnow()
        return [TrialResult(t.id, status, start, end, rows=rows, device=str(device))
                for t, (status, rows) in zip(unit.trials, measured, strict=True)]
