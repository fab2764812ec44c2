"""The experiment interface: the seam every experiment plugs into the spine through.

An experiment declares its params section (a :class:`theorydl.config.Section`), expands
it into trial specs, groups trials into units (a unit runs as one Ray task: one trial,
a shard of work, or a stack of models trained together), runs a unit on a worker, and
analyses the stored table. Everything else (trial ids, the cache, Ray, the store,
provenance, progress) is the spine's job.
"""

from __future__ import annotations

import abc
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from theorydl.config import Params, Section
from theorydl.store.rows import TrialResult
from theorydl.sweep.spec import TrialSpec

__all__ = ["Experiment", "StageError", "Unit", "run_each", "utcnow", "error_text",
           "worker_device"]


class StageError(RuntimeError):
    """A stage cannot go on for a reason the user can fix; the message says how."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def error_text(exc: BaseException, limit: int = 4000) -> str:
    """The exception and the tail of its traceback, bounded so rows stay small."""
    text = "".join(traceback.format_exception(exc)).strip()
    return text if len(text) <= limit else "..." + text[-limit:]


@dataclass(frozen=True)
class Unit:
    """Trials that run together as one Ray task, with the resources that task asks for."""

    trials: tuple[TrialSpec, ...]
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    label: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


class Experiment(abc.ABC):
    """Subclass, set ``name``, ``version`` and ``section``, and implement the abstract methods.

    ``version`` is part of every trial id: bump it whenever a change to the code changes
    what a trial measures, so stale cached results are not reused.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    section: ClassVar[type[Section]]

    def config(self, params: Params) -> Section:
        return params.section(self.name)

    @abc.abstractmethod
    def trials(self, cfg: Section) -> list[TrialSpec]:
        """Expand the section into fully resolved trial specs (grid x seeds)."""

    def units(self, trials: Sequence[TrialSpec], cfg: Section) -> list[Unit]:
        """Group trials to run into units; by default one trial per unit on one CPU."""
        return [Unit((t,), label=t.id) for t in trials]

    @abc.abstractmethod
    def run_unit(self, unit: Unit, cfg: Section) -> list[TrialResult]:
        """Run a unit on a worker; one result per trial. Use :func:`run_each` for
        independent trials. An exception here fails every trial of the unit."""

    def data(self, params: Params, cfg: Section) -> None:
        """Write the experiment's data-stage outputs (none by default)."""

    def check_data(self, cfg: Section) -> None:
        """Called by the train stage before planning: raise if the data stage's outputs
        are missing or do not match what the trials will use (nothing by default)."""

    @abc.abstractmethod
    def analyze(self, table: pa.Table, cfg: Section, params: Params) -> dict[str, Any]:
        """Write metrics, plot data and figures from the train stage's table; return metrics."""

    def outputs(self, cfg: Section) -> Mapping[str, str]:
        """Named output paths (from params) that the report may embed."""
        paths = getattr(cfg, "paths", None)
        return {} if paths is None else paths.model_dump()

    def trials_path(self, cfg: Section) -> Path:
        """Where the train stage writes its table (a params key of the section)."""
        return Path(cfg.paths.trials)


def run_each(unit: Unit, fn: Callable[[TrialSpec], TrialResult | list[dict[str, Any]]]
             ) -> list[TrialResult]:
    """Run each trial of a unit in turn; an exception fails that trial only.

    ``fn`` returns measurement rows (status ok) or a full :class:`TrialResult`.
    """
    results = []
    for spec in unit.trials:
        start = utcnow()
        try:
            out = fn(spec)
        except Exception as exc:  # noqa: BLE001 - any trial error becomes a failed row
            results.append(TrialResult(spec.id, "failed", start, utcnow(), error=error_text(exc)))
            continue
        if isinstance(out, TrialResult):
            results.append(out)
        else:
            results.append(TrialResult(spec.id, "ok", start, utcnow(), rows=list(out)))
    return results


def worker_device(name: str):
    """The torch device a unit runs on: "cpu", "cuda", or "auto" = CUDA only when Ray
    gave this task a GPU (outside Ray: when one is visible)."""
    import torch

    from theorydl.nn import resolve_device

    if name != "auto":
        return resolve_device(name)
    if not torch.cuda.is_available():
        return torch.device("cpu")
    import ray

    if ray.is_initialized() and not ray.get_gpu_ids():
        return torch.device("cpu")
    return torch.device("cuda")
