"""Cost before compute: what a train stage will run, and how long it should take.

A study declares a cost model, :meth:`Experiment.trial_cost` (epochs x samples x
parameters, or whatever fits it), optionally split into classes of trials that run
different code (:meth:`Experiment.cost_class`). The forecast times that model against
the study's trials already in the store:

- the stored trials are grouped into the units they ran in (the rows of one unit share
  their start and end times and host); a unit's time is ``ended_at - started_at``, its
  cost the sum of its trials' costs;
- per (class, device kind) a unit's time is fitted as ``overhead + rate * cost`` (least
  squares over the stored units; through the origin, ``sum of times / sum of costs``,
  when fewer than three units or the line would need a negative term): the overhead is
  what a unit costs whatever its size (a worker's imports, data loading);
- the trials still to run are grouped into units as the train stage will group them;
  each unit's forecast time is its class's overhead plus its cost times the rate, and the wall time the
  longest-first schedule of those units over the slots the embedded Ray will have
  (``run.ray.num_cpus``, else every CPU, divided by a unit's CPUs).

Where a class has no stored unit on the device kind, or the study declares no cost
model, the forecast is unknown, with the reason. On a cluster (``run.ray.address`` or
``RAY_ADDRESS``) only the compute time is forecast: the slots are the cluster's.

The train stage records each run that trained something beside its trials in the store
(:func:`run_record`): the forecast it made before starting, and the wall time it took.
"""

from __future__ import annotations

import heapq
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from theorydl.spine.spec import TrialSpec

__all__ = ["Forecast", "Rate", "fit_rate", "forecast", "measured_rates", "schedule", "machine", "run_record",
           "format_seconds"]


@dataclass
class Forecast:
    """A train stage's plan and forecast (times in seconds; None where unknown)."""

    study: str
    asked: int
    cached: int
    to_run: int
    units: int = 0
    compute_s: float | None = None
    """Summed forecast time of the units to run (core-seconds for one-CPU units)."""
    wall_s: float | None = None
    """Forecast wall time of the run on ``slots`` parallel units."""
    slots: int | None = None
    device: str = "cpu"
    why: str = ""
    """Why the forecast is unknown (empty when known, or when nothing is to run)."""
    rates: dict[str, float] = field(default_factory=dict)
    """Seconds per cost unit, by cost class, from ``basis`` stored units."""
    basis: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def format_seconds(s: float | None) -> str:
    """``95`` -> ``1.6 min``; None -> ``unknown``."""
    if s is None:
        return "unknown"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _device_kind(device: str | None) -> str:
    return "cuda" if str(device or "cpu").startswith("cuda") else "cpu"


@lru_cache(maxsize=1)
def _local_gpus() -> int:
    """GPUs nvidia-smi lists on this machine (0 without it): no torch import."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                             timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


@dataclass(frozen=True)
class Rate:
    """How long a unit of a cost class takes: ``overhead + per_cost * cost`` seconds."""

    per_cost: float
    overhead: float
    units: int
    """Stored units it was fitted on."""

    def seconds(self, cost: float) -> float:
        return self.overhead + self.per_cost * cost


def fit_rate(points: Sequence[tuple[float, float]]) -> Rate:
    """``Rate`` from (cost, seconds) of stored units: a least-squares line when three or
    more units of different costs give a positive slope and overhead, else a line
    through the origin (summed seconds over summed cost)."""
    n = len(points)
    costs = [c for c, _ in points]
    secs = [t for _, t in points]
    through_origin = Rate(sum(secs) / sum(costs), 0.0, n)
    if n < 3 or len(set(costs)) < 2:
        return through_origin
    mc, mt = sum(costs) / n, sum(secs) / n
    var = sum((c - mc) ** 2 for c in costs)
    slope = sum((c - mc) * (t - mt) for c, t in points) / var
    overhead = mt - slope * mc
    if slope <= 0 or overhead < 0:
        return through_origin
    return Rate(slope, overhead, n)


def measured_rates(exp, cfg, rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], Rate]:
    """``{(cost class, device kind): Rate}`` from stored rows (one per trial:
    ``config_json``, ``seed``, ``status``, ``started_at``, ``ended_at``, ``hostname``,
    ``device``). A unit's time is its rows' span, its cost its trials' summed cost.
    Failed trials, and trials whose config the cost model cannot read (an older
    version's), are left out."""
    units: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r.get("status") == "failed" or r.get("started_at") is None:
            continue
        units.setdefault((r["started_at"], r["ended_at"], r.get("hostname")), []).append(r)
    points: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for (start, end, _), members in units.items():
        total, classes = 0.0, set()
        try:
            for r in members:
                spec = TrialSpec(exp.name, exp.version, json.loads(r["config_json"]),
                                 int(r["seed"]))
                cost = exp.trial_cost(spec, cfg)
                if cost is None:
                    raise ValueError("no cost model")
                total += float(cost)
                classes.add(exp.cost_class(spec))
        except (KeyError, TypeError, ValueError):
            continue
        if len(classes) != 1 or total <= 0:
            continue
        key = (classes.pop(), _device_kind(members[0].get("device")))
        points.setdefault(key, []).append((total, (end - start).total_seconds()))
    return {k: fit_rate(v) for k, v in points.items()}


def schedule(times: Sequence[float], slots: int) -> float:
    """Makespan of running ``times`` on ``slots`` parallel slots, longest first, each
    to the least loaded slot (what Ray's queue does with equal-sized tasks)."""
    if not times:
        return 0.0
    loads = [0.0] * max(1, min(slots, len(times)))
    heapq.heapify(loads)
    for t in sorted(times, reverse=True):
        heapq.heappush(loads, heapq.heappop(loads) + t)
    return max(loads)


def _target_device(cfg) -> str:
    wanted = str(getattr(cfg, "device", "cpu"))
    return "cuda" if wanted != "cpu" and _local_gpus() > 0 else "cpu"


def forecast(exp, cfg, plan, rows: Sequence[Mapping[str, Any]], ray_cfg) -> Forecast:
    """The forecast of running ``plan.todo`` (a :class:`~theorydl.spine.sweep.planner.Plan`),
    timed on the stored ``rows`` (see :func:`measured_rates`)."""
    out = Forecast(exp.name, len(plan.trials), plan.cached, len(plan.todo),
                   device=_target_device(cfg))
    if not plan.todo:
        out.compute_s = out.wall_s = 0.0
        return out
    units = exp.units(plan.todo, cfg)
    out.units = len(units)
    try:
        costs = [[exp.trial_cost(t, cfg) for t in u.trials] for u in units]
    except Exception as exc:  # noqa: BLE001 - a cost model that cannot read the params
        out.why = f"{exp.name}'s cost model failed: {exc}"
        return out
    if any(c is None for cs in costs for c in cs):
        out.why = f"{exp.name} declares no cost model (Experiment.trial_cost)"
        return out
    rates = measured_rates(exp, cfg, rows)
    times = []
    for unit, cs in zip(units, costs):
        cls = exp.cost_class(unit.trials[0])
        rate = rates.get((cls, out.device))
        if rate is None:
            what = f"class {cls!r} of " if cls else ""
            out.why = (f"no stored trial of {what}{exp.name} on {out.device} to time its cost "
                       f"model against: run a smaller profile first")
            return out
        out.rates[cls] = rate.per_cost
        times.append(rate.seconds(sum(cs)))
    out.basis = sum(r.units for (cls, dev), r in rates.items()
                    if dev == out.device and cls in out.rates)
    out.compute_s = sum(times)
    if getattr(ray_cfg, "address", None) or os.environ.get("RAY_ADDRESS"):
        out.why = "a cluster: the wall time depends on its size (compute time given)"
        return out
    cpus = getattr(ray_cfg, "num_cpus", None) or os.cpu_count() or 1
    per_unit = max(u.num_cpus for u in units) or 1
    out.slots = max(1, int(cpus // per_unit))
    out.wall_s = schedule(times, out.slots)
    return out


@lru_cache(maxsize=1)
def machine() -> dict[str, Any]:
    """This machine, as the results page names it: CPU model, cores, GPUs, OS."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gpus = _local_gpus()
    return {"cpu": model, "cores": os.cpu_count(), "gpus": gpus,
            "os": f"{platform.system()} {platform.release()}"}


def run_record(fc: Forecast, started: datetime, ended: datetime, ran: int,
               provenance: Mapping[str, Any]) -> dict[str, Any]:
    """What the train stage stores about one run that trained something: the forecast it
    made first, and what happened (no secret: git state, versions, machine)."""
    return {"study": fc.study, "started_at": started.isoformat(),
            "ended_at": ended.isoformat(), "wall_s": round((ended - started).total_seconds(), 3),
            "trials_ran": ran, "forecast": fc.as_dict(), "machine": machine(),
            "git_sha": provenance.get("git_sha"), "git_dirty": provenance.get("git_dirty"),
            "recorded_at": datetime.now(timezone.utc).isoformat()}
