"""GPU units on long-lived actors: one per GPU slot, each keeping its device.

A Ray worker that ran a CUDA task keeps the device it initialised first, whatever
``CUDA_VISIBLE_DEVICES`` Ray sets for its next task; so GPU *tasks* need a fresh worker
each (Ray's own default for a function declared with GPUs). A fresh worker costs a
process start and the imports (about 1.4 s here with nothing but Ray and theorydl; more
with torch and a CUDA context), and a unit of ``d`` seconds then keeps its slot busy for
only about ``d / (d + start)`` of the time.

An actor holds its GPU share for its whole life, and Ray sets its ``CUDA_VISIBLE_DEVICES``
once, at its start. So the driver starts one actor per slot the cluster offers (per
resource shape: CPUs and GPU share of a unit) and keeps :data:`DEPTH` units queued on
each ready actor while many wait: the next unit starts the moment the last one ends,
whatever the driver is doing (storing, counting). Over the last few units per slot
(:data:`ENDGAME_PER_SLOT`) an actor gets one unit at a time: a unit queued behind a long
one would start late while slots with nothing left idle.

How many actors (see :meth:`GpuSlots.fill`):

- as many as the cluster's alive nodes can host now, counted node by node, and never
  more than the units still waiting or running;
- on a cluster with an autoscaler, that many more (at least :data:`PENDING_MIN`) as actors
  that wait for a node: they are the GPU demand the autoscaler sees, and get units only
  once placed. As nodes join, the count is recomputed (every :data:`REFRESH_S`), so the
  demand grows with the cluster;
- at least one, so that a busy cluster still queues the sweep.

Actors whose shape has no unit left are killed at once (their GPUs go back to the
cluster, and an autoscaler can scale down); all are killed when the sweep ends or stops.

Failures, as for tasks: a unit that kills its actor's process (or whose node is lost)
runs again on a new actor, up to ``run.ray.max_retries`` times, then is stored as failed;
the unit queued behind it on that actor waits again without being charged. An actor that
cannot start (its constructor fails: say the experiment's module does not import on the
node) charges the next waiting unit instead, so such a sweep fails unit by unit with the
reason, as tasks would.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from theorydl.spine.experiment import Unit

__all__ = ["DEPTH", "ENDGAME_PER_SLOT", "GpuSlots", "PENDING_MIN", "REFRESH_S",
           "node_slots"]

log = logging.getLogger("theorydl")

#: The fewest actors a pool keeps waiting for a node on an autoscaling cluster.
PENDING_MIN = 16
#: Seconds between two counts of the cluster's slots while units wait.
REFRESH_S = 2.0
#: Units queued on one actor while many wait: one running, the next ready to start.
DEPTH = 2
#: Queued that deep only while more than this many units per slot wait. A unit queued
#: behind a long one starts late; once the waiting units are all handed out, slots that
#: have nothing left would idle until it starts. Over the last few units per slot, each
#: slot takes one at a time, so the last units start on whichever slot frees first.
ENDGAME_PER_SLOT = 4

Shape = tuple[float, float]  # (num_cpus, num_gpus) of a unit


class _SlotActor:
    """What one slot runs: the experiment, its config and provenance arrive once."""

    def __init__(self, experiment, cfg, provenance) -> None:
        self.args = experiment, cfg, provenance

    def run(self, unit) -> bytes:
        from theorydl.spine.sweep.worker import run_unit_task

        experiment, cfg, provenance = self.args
        return run_unit_task(experiment, cfg, unit, provenance)


def node_slots(nodes: list[dict], shape: Shape) -> int:
    """How many units of ``shape`` the alive ``nodes`` (``ray.nodes()``) hold at once."""
    need = {"CPU": shape[0], "GPU": shape[1]}
    total = 0
    for node in nodes:
        if not node.get("Alive", node.get("alive", False)):
            continue
        have = node.get("Resources", {})
        total += min(int(math.floor(have.get(k, 0.0) / v + 1e-9)) for k, v in need.items()
                     if v > 0)
    return total


class _Slot:
    __slots__ = ("actor", "shape", "ready", "jobs")

    def __init__(self, actor, shape: Shape) -> None:
        self.actor, self.shape, self.ready = actor, shape, False
        self.jobs: deque[tuple["Unit", Any]] = deque()  # (unit, submitted), oldest first


class GpuSlots:
    """A pool of GPU-slot actors fed from a queue of units (see the module docstring).

    Every future the pool waits on is handed to ``on_done`` when it completes (the
    executor queues it for its loop); the loop gives it back through :meth:`done`.
    """

    def __init__(self, shared: list, max_retries: int, autoscaling: bool,
                 on_done: Callable[[Any], None]) -> None:
        import ray

        self._ray = ray
        self._cls = ray.remote(_SlotActor)
        self._shared, self._max_retries = shared, max_retries
        self._autoscaling, self._on_done = autoscaling, on_done
        self._waiting: dict[Shape, deque[tuple["Unit", Any]]] = {}
        self._slots: dict[Shape, list[_Slot]] = {}
        # Each future the pool waits on: its slot, and the job it runs (None: the start).
        self._futures: dict[Any, tuple[_Slot, tuple["Unit", Any] | None]] = {}
        self._options: dict[Shape, Any] = {}
        self._counted = -math.inf
        self._attempts: dict[int, int] = {}  # actor deaths charged to each unit (by id)

    # -- the driver's side -----------------------------------------------------------------

    def add(self, unit: "Unit", shape: Shape, submitted) -> None:
        self._waiting.setdefault(shape, deque()).append((unit, submitted))
        self._slots.setdefault(shape, [])

    def owns(self, future) -> bool:
        return future in self._futures

    def busy(self) -> bool:
        """Whether units wait or run on the pool."""
        return bool(self._futures) or any(self._waiting.values())

    def fill(self, force: bool = False) -> None:
        """Count the cluster's slots and start actors up to each shape's target: at most
        every REFRESH_S unless forced (a completion never raises a target)."""
        now = time.monotonic()
        if not self._slots or not force and now - self._counted < REFRESH_S:
            return
        self._counted = now
        nodes = self._ray.nodes()
        for shape, slots in self._slots.items():
            here = node_slots(nodes, shape)
            extra = max(here, PENDING_MIN) if self._autoscaling else 0
            working = sum(1 for s in slots if s.jobs)
            target = min(len(self._waiting[shape]) + working, max(1, here + extra))
            for _ in range(target - len(slots)):
                self._start(shape)

    def done(self, future) -> tuple["Unit", Any, Any] | None:
        """Take a completed future of the pool's: the unit it ran with its result (Arrow
        IPC bytes, or the exception), or None when no unit is finished by it (an actor
        became ready, or died and its units wait again)."""
        from ray.exceptions import RayActorError, RayError

        slot, job = self._futures.pop(future)
        try:
            result = future.result()
        except RayActorError as exc:
            return self._lost(slot, exc)
        except RayError as exc:  # the unit raised outside its trials: no retry
            result = exc
        if job is None:  # the actor's start
            slot.ready = True
            self._feed(slot)
            return None
        slot.jobs.remove(job)
        self._feed(slot)
        return job[0], job[1], result

    def close(self) -> None:
        """Kill every actor (cancelling what runs on them)."""
        for slots in self._slots.values():
            for slot in list(slots):
                self._retire(slot)
        self._futures.clear()

    # -- internals -------------------------------------------------------------------------

    def _start(self, shape: Shape) -> None:
        if shape not in self._options:
            self._options[shape] = self._cls.options(
                num_cpus=shape[0], num_gpus=shape[1])  # no restarts: see _lost
        slot = _Slot(self._options[shape].remote(*self._shared), shape)
        self._slots[shape].append(slot)
        self._watch(slot, None, slot.actor.__ray_ready__.remote())

    def _watch(self, slot: _Slot, job, ref) -> None:
        future = ref.future()
        self._futures[future] = (slot, job)
        future.add_done_callback(self._on_done)

    def _feed(self, slot: _Slot) -> None:
        """Queue units on a ready slot: two while many wait (the next one starts the moment
        the last ends, whatever the driver is doing), one near the end (see
        ENDGAME_PER_SLOT); retire it when it has none."""
        queue = self._waiting[slot.shape]
        many = len(queue) >= ENDGAME_PER_SLOT * len(self._slots[slot.shape])
        depth = DEPTH if many else 1
        while queue and len(slot.jobs) < depth:
            job = queue.popleft()
            slot.jobs.append(job)
            self._watch(slot, job, slot.actor.run.remote(job[0]))
        if not slot.jobs:
            self._retire(slot)

    def _lost(self, slot: _Slot, exc: BaseException) -> tuple["Unit", Any, Any] | None:
        """An actor died (or could not start). The unit it was running is charged an
        attempt: it waits again, first in line, or, out of attempts, is returned failed.
        The unit queued behind it was not running: it waits again, uncharged. For an
        actor that never started, the next waiting unit is charged (so an actor that can
        never start fails the units one by one, with its reason). A new actor replaces it.
        """
        queue = self._waiting[slot.shape]
        jobs = list(slot.jobs)
        slot.jobs.clear()
        self._forget(slot)
        self._retire(slot)
        if jobs:
            charged = jobs[0]
            queue.extendleft(reversed(jobs[1:]))
        else:
            charged = queue.popleft() if queue else None
        out = None
        if charged is not None:
            key = id(charged[0])
            self._attempts[key] = self._attempts.get(key, 0) + 1
            if self._attempts[key] > self._max_retries:
                out = (*charged, exc)  # the executor stores it failed, and says so
            else:
                log.info("unit %s: its GPU slot actor died (%s); trying again",
                         charged[0].label, type(getattr(exc, "cause", None) or exc).__name__)
                queue.appendleft(charged)
        self.fill(force=True)
        return out

    def _retire(self, slot: _Slot) -> None:
        slots = self._slots[slot.shape]
        if slot in slots:
            slots.remove(slot)
            self._ray.kill(slot.actor)
        if not self._waiting[slot.shape]:
            # Nothing left for this shape: actors still waiting for a node go too.
            for other in [s for s in slots if not s.ready]:
                slots.remove(other)
                self._ray.kill(other.actor)
                self._forget(other)

    def _forget(self, slot: _Slot) -> None:
        """Stop waiting on a slot's futures (those that still complete are ignored)."""
        self._futures = {f: v for f, v in self._futures.items() if v[0] is not slot}
