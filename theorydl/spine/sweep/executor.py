"""Execution on Ray: each unit a Ray task (CPU units) or a call on a GPU-slot actor (GPU
units, see :mod:`theorydl.spine.sweep.slots`), results streamed back as they finish.

With no address (params ``run.ray.address`` null and no ``RAY_ADDRESS``), Ray starts
embedded on this machine with every server bound to 127.0.0.1; otherwise the driver
joins the named cluster. Either way the same code path submits the units.

Failure semantics:

- an exception inside a trial: the experiment turns it into a ``failed`` row (see
  :func:`theorydl.spine.experiment.run_each`); the other trials go on;
- an exception outside the trials (the unit itself): every trial of the unit is stored
  as ``failed`` with the error text;
- a worker process that dies (killed, out of memory, segfault): the unit runs again, up
  to ``run.ray.max_retries`` times (Ray re-submits a task; the pool gives a GPU unit to a
  new actor); after that its trials are stored as ``failed``.

The driver hands each finished unit's rows to a writer thread, which appends the units
that finished close together as one file and only then counts them: a killed driver
loses at most the units still running and those finished in the last moments (whose
trials were not counted yet); they run again on the next call.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from theorydl.spine.config import RayConfig, Section
from theorydl.spine.store.rows import TrialResult, build_table
from theorydl.spine.store.store import Store
from theorydl.spine.sweep.progress import SweepProgress
from theorydl.spine.sweep.worker import run_unit_task

if TYPE_CHECKING:
    from theorydl.spine.experiment import Experiment, Unit

__all__ = ["ExecutionSummary", "ensure_ray", "execute_units", "init_loopback"]

log = logging.getLogger("theorydl")

LOCALHOST = "127.0.0.1"
# Ray's switch for its single-machine mode, in which every server binds to loopback.
_SINGLE_NODE = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


@dataclass(frozen=True)
class ExecutionSummary:
    units: int
    trials: int
    ok: int
    failed: int
    diverged: int
    seconds: float


def ensure_ray(cfg: RayConfig) -> bool:
    """Connect to Ray if this process is not connected yet; True if this call started it.

    Embedded mode binds every Ray server to 127.0.0.1 (:func:`init_loopback`).
    """
    import ray

    if ray.is_initialized():
        return False
    address = cfg.address or os.environ.get("RAY_ADDRESS") or None
    common: dict[str, Any] = {"log_to_driver": True, "logging_level": logging.WARNING}
    if address:
        log.info("joining Ray cluster at %s", address)
        ray.init(address=address, **common)
    else:
        num_cpus = cfg.num_cpus or os.cpu_count() or 1
        log.info("starting embedded Ray on %s with %d CPUs", LOCALHOST, num_cpus)
        init_loopback(num_cpus=num_cpus, **common)
    return True


def init_loopback(**kwargs: Any) -> None:
    """``ray.init`` of a new single-machine Ray whose every server binds to 127.0.0.1.

    ``_node_ip_address`` alone is not enough: on Linux Ray otherwise listens on the
    machine's address. ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes Ray treat the node as
    a single-machine cluster (its loopback mode); the variable reaches the GCS, raylet and
    workers through the environment they inherit. ``kwargs`` go to ``ray.init`` (the
    benchmarks and tests declare GPUs the machine does not have this way).
    """
    import ray
    from ray._private import ray_constants

    previous, previous_flag = os.environ.get(_SINGLE_NODE), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_SINGLE_NODE] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False  # the module read the variable at import
    try:
        ray.init(address="local", include_dashboard=False, _node_ip_address=LOCALHOST,
                 **kwargs)
    finally:
        # Ray's daemons have the variable now; this process's later children (a
        # `ray start` of a real cluster, say) must not inherit single-node mode.
        ray_constants.ENABLE_RAY_CLUSTER = previous_flag
        if previous is None:
            os.environ.pop(_SINGLE_NODE, None)
        else:
            os.environ[_SINGLE_NODE] = previous


def _failed_table(unit: "Unit", error: str, submitted, provenance: Mapping[str, Any]) -> pa.Table:
    from theorydl.spine.experiment import utcnow

    now = utcnow()
    results = [TrialResult(t.id, "failed", submitted, now, error=error) for t in unit.trials]
    prov = {**provenance, "hostname": socket.gethostname(), "node_id": None}
    return build_table(unit.trials, results, prov)


def _counts(table: pa.Table) -> tuple[int, int, int]:
    """(ok, failed, diverged) trials in a table of one attempt per trial (the driver runs a
    trial once per sweep)."""
    pairs = table.select(["trial_id", "status"]).group_by(["trial_id", "status"]).aggregate([])
    status = pairs["status"].to_pylist()
    return status.count("ok"), status.count("failed"), status.count("diverged")


class _Writer:
    """Appends finished units' tables to the store on a thread of its own, in groups.

    The driver hands each finished unit's table to :meth:`put` and goes back to Ray at
    once. The thread takes every table waiting, writes them as one file, and only then
    counts their trials (progress and summary): a counted trial is durable. While one
    group is being written the next one gathers, so the number of files (and of fsyncs or
    PUTs) adapts to how fast units finish, not to how many there are.
    """

    def __init__(self, store: Store, experiment: str, bar: SweepProgress) -> None:
        self.store, self.experiment, self.bar = store, experiment, bar
        self.ok = self.failed = self.diverged = 0
        self.error: BaseException | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="theorydl-writer", daemon=True)
        self._thread.start()

    def put(self, table: pa.Table | bytes) -> None:
        """Hand over a unit's table (or its Arrow IPC stream bytes) to be stored."""
        if self.error is not None:
            raise self.error
        self._queue.put(table)

    def close(self) -> None:
        """Write everything handed over so far; re-raise a write's error."""
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        done = False
        while not done:
            tables = [self._queue.get()]
            while True:
                try:
                    tables.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if tables[-1] is None:
                tables.pop()
                done = True
            if not tables or self.error is not None:
                continue
            try:
                self._write(tables)
            except BaseException as exc:  # noqa: BLE001 - re-raised by the driver
                self.error = exc

    def _write(self, tables: list[pa.Table | bytes]) -> None:
        tables = [t if isinstance(t, pa.Table) else pa.ipc.open_stream(t).read_all()
                  for t in tables]
        try:
            group = [pa.concat_tables(tables, promote_options="permissive")]
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            group = tables  # columns whose types do not unify: one file per unit
        for table in group:
            self.store.append(self.experiment, table)
        for table in group:
            ok, failed, diverged = _counts(table)
            self.ok, self.failed, self.diverged = (self.ok + ok, self.failed + failed,
                                                   self.diverged + diverged)
            self.bar.update(ok, failed, diverged)


def _store_result(writer: _Writer, provenance: Mapping[str, Any], unit: "Unit", submitted,
                  result: Any) -> None:
    """Hand a finished unit's rows to the writer: its table, or failed rows for a Ray error."""
    from theorydl.spine.experiment import error_text

    if isinstance(result, BaseException):
        cause = getattr(result, "cause", None) or result
        log.warning("unit %s failed: %s", unit.label, type(cause).__name__)
        result = _failed_table(unit, error_text(cause), submitted, provenance)
    writer.put(result)


def execute_units(experiment: "Experiment", cfg: Section, units: Sequence["Unit"],
                  store: Store, provenance: Mapping[str, Any], ray_cfg: RayConfig,
                  progress: str = "auto") -> ExecutionSummary:
    """Run ``units`` on Ray and append the finished units' rows to ``store``.

    Returns once every finished unit is stored. The experiment, its config and the
    provenance go to Ray's object store once, not with every unit.
    """
    import time

    import ray
    from ray.exceptions import RayError

    from theorydl.spine.experiment import utcnow
    from theorydl.spine.sweep import gpus
    from theorydl.spine.sweep.slots import REFRESH_S, GpuSlots

    started_here = ensure_ray(ray_cfg)
    remote = ray.remote(run_unit_task)
    # The GPU share follows the params (the experiment's device), not the cluster's size
    # now: an autoscaler starts GPU nodes only for GPU demand it sees (theorydl.spine.sweep.gpus).
    wants = any(u.num_gpus for u in units)
    try:
        autoscaling = wants and gpus.cluster_autoscales()
        has_gpus = gpus.decide(
            experiment.name, str(getattr(cfg, "device", "auto")), wants,
            ray.cluster_resources().get("GPU", 0), autoscaling)
    except BaseException:
        if started_here:
            ray.shutdown()
        raise
    n_trials = sum(len(u.trials) for u in units)
    bar = SweepProgress(experiment.name, n_trials, mode=progress)
    t0 = time.monotonic()
    # Each unit's result arrives through a future whose callback queues it: the driver
    # wakes once per finished unit, at a cost independent of how many are pending
    # (ray.wait's cost grows with the number of refs it is given).
    pending: dict[Any, tuple["Unit", Any, Any]] = {}
    finished: queue.SimpleQueue = queue.SimpleQueue()
    writer = _Writer(store, experiment.name, bar)
    pool: GpuSlots | None = None
    try:
        shared = [ray.put(experiment), ray.put(cfg), ray.put(dict(provenance))]
        # GPU units go to a pool of actors, one per GPU slot, each keeping its device
        # (theorydl.spine.sweep.slots); CPU units are tasks, on workers Ray reuses.
        # The actors get the objects themselves (small; each actor unpickles them once).
        pool = GpuSlots([experiment, cfg, dict(provenance)], ray_cfg.max_retries,
                        autoscaling, finished.put)
        # One set of task options per resource shape: Ray validates options at every
        # .options() call (~0.2 ms), so units are not named one by one (a failed unit's
        # label is in the driver's log line instead).
        tasks: dict[tuple[float, float], Any] = {}
        for unit in units:
            shape = (unit.num_cpus, unit.num_gpus if has_gpus else 0)
            if shape[1]:
                pool.add(unit, shape, utcnow())
                continue
            if shape not in tasks:
                tasks[shape] = remote.options(
                    num_cpus=shape[0], max_retries=ray_cfg.max_retries,
                    retry_exceptions=False, name=experiment.name[:100])
            ref = tasks[shape].remote(shared[0], shared[1], unit, shared[2])
            future = ref.future()
            pending[future] = (unit, utcnow(), ref)
            future.add_done_callback(finished.put)
        pool.fill(force=True)
        while pending or pool.busy():
            try:
                future = finished.get(timeout=REFRESH_S)
            except queue.Empty:
                pool.fill()
                continue
            if pool.owns(future):
                ran = pool.done(future)
                if ran is not None:
                    _store_result(writer, provenance, *ran)
            elif future in pending:
                unit, submitted, _ = pending.pop(future)
                try:
                    result = future.result()
                except RayError as exc:
                    result = exc
                _store_result(writer, provenance, unit, submitted, result)
            # else: an actor's start that the pool gave up on (killed while it waited)
            pool.fill()
    except BaseException:
        for _, _, ref in pending.values():
            ray.cancel(ref, force=True)
        raise
    finally:
        try:
            if pool is not None:
                pool.close()
            writer.close()  # what finished is stored, even when the sweep stops early
        finally:
            bar.close()
            if started_here:
                ray.shutdown()
    return ExecutionSummary(len(units), n_trials, writer.ok, writer.failed, writer.diverged,
                            time.monotonic() - t0)
