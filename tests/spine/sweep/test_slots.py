"""GPU units on the pool of GPU-slot actors (theorydl.spine.sweep.slots): an embedded Ray that
advertises GPUs it does not have, in a driver process of its own (one Ray per process, and
the suite's shared Ray has no GPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from procs import kill_tree_of

from theorydl.spine.sweep.slots import node_slots

TOY_DIR = Path(__file__).resolve().parent


def _node(cpus, gpus, alive=True):
    return {"Alive": alive, "Resources": {"CPU": cpus, "GPU": gpus}}


def test_slots_are_counted_node_by_node():
    nodes = [_node(8, 4), _node(2, 4), _node(16, 0), _node(8, 8, alive=False)]
    assert node_slots(nodes, (1, 1)) == 4 + 2
    assert node_slots(nodes, (1, 0.5)) == 8 + 2
    assert node_slots(nodes, (0.5, 0.25)) == 16 + 4
    assert node_slots(nodes, (1, 3)) == 1 + 1
    assert node_slots(nodes, (1, 6)) == 0  # a share never spans two nodes (8 GPUs in all)
    assert node_slots([], (1, 1)) == 0


DRIVER = """
import json, logging, sys, time
logging.basicConfig(level=logging.WARNING)
import ray
import gpu_toy
from theorydl.spine.config import RayConfig
from theorydl.spine.store.store import Store
from theorydl.spine.sweep.executor import execute_units, init_loopback

args = json.loads(sys.argv[1])
init_loopback(num_cpus=4, num_gpus=2, _temp_dir=args["temp"], logging_level="WARNING")
out = {}
for name, case in args["cases"].items():
    exp = gpu_toy.GpuToy()
    if case.pop("poison", False):
        exp.poison = gpu_toy.Unloadable()
    cfg = exp.section(**case)
    store = Store(args["store"] + "/" + name)
    summary = execute_units(exp, cfg, exp.units(exp.trials(cfg), cfg), store, {},
                            RayConfig(max_retries=1), progress="off")
    deadline = time.monotonic() + 60  # the pool's actors are killed: their GPUs come back
    while ray.available_resources().get("GPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    out[name] = {"ok": summary.ok, "failed": summary.failed,
                 "gpus_back": ray.available_resources().get("GPU", 0),
                 "rows": store.read("gpu_toy").to_pylist()}
with open(args["out"], "w") as f:  # not stdout: Ray's workers print there too
    json.dump(out, f, default=str)
"""


@pytest.fixture(scope="module")
def pool_runs(tmp_path_factory):
    """One driver, four sweeps on an embedded Ray with 4 CPUs and 2 fake GPUs."""
    work = tmp_path_factory.mktemp("slots")
    temp = tempfile.mkdtemp(prefix="rs", dir="/tmp")  # short: Ray's socket paths
    cases = {
        "whole": {"values": list(range(8)), "sleep": 0.2},
        "halves": {"values": list(range(8)), "sleep": 0.2, "gpus_per_unit": 0.5},
        "dying": {"values": [1, 2, 3, 4], "die_always_on": [2], "die_once_on": [3],
                  "marker_dir": str(work)},
        "unloadable": {"values": [1, 2, 3], "poison": True},
    }
    env = {**{k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
           "PYTHONPATH": os.pathsep.join([str(TOY_DIR), str(TOY_DIR.parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", DRIVER,
             json.dumps({"temp": temp, "store": str(work / "store"), "cases": cases,
                         "out": str(work / "out.json")})],
            env=env, text=True, capture_output=True, timeout=900)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        yield json.loads((work / "out.json").read_text())
    finally:
        kill_tree_of(temp)


@pytest.mark.slow
@pytest.mark.parametrize("case, slots", [("whole", 2), ("halves", 4)])
def test_gpu_units_share_long_lived_slot_workers_that_keep_their_device(pool_runs, case,
                                                                        slots):
    run = pool_runs[case]
    rows = run["rows"]
    assert run["ok"] == 8 and len(rows) == 8
    by_pid: dict[int, set[str]] = {}
    for r in rows:
        # The worker sees the GPU Ray gave its actor, and nothing else.
        assert r["gpu_ids"] in ("0", "1") and r["visible"] == r["gpu_ids"], r
        by_pid.setdefault(r["pid"], set()).add(r["gpu_ids"])
    # Fewer workers than units (reused), never more than the slots, each on one device.
    assert 1 <= len(by_pid) <= slots and len(by_pid) < len(rows)
    assert all(len(ids) == 1 for ids in by_pid.values()), by_pid
    assert run["gpus_back"] == 2


@pytest.mark.slow
def test_a_unit_that_kills_its_slot_worker_is_retried_then_failed(pool_runs):
    run = pool_runs["dying"]
    status = {r["value"]: r["status"] for r in run["rows"]}
    assert status == {1: "ok", 2: "failed", 3: "ok", 4: "ok"}, run["rows"]
    error = next(r["error"] for r in run["rows"] if r["value"] == 2)
    assert "died" in error.lower() or "exit" in error.lower(), error
    assert (run["ok"], run["failed"]) == (3, 1) and run["gpus_back"] == 2


@pytest.mark.slow
def test_a_slot_actor_that_cannot_start_fails_each_unit_with_the_reason(pool_runs):
    run = pool_runs["unloadable"]
    assert (run["ok"], run["failed"]) == (0, 3)
    for r in run["rows"]:
        assert r["status"] == "failed"
        assert "cannot be loaded on a worker" in r["error"], r["error"]
    assert run["gpus_back"] == 2
