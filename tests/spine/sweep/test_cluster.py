"""A real multi-node Ray cluster on this machine: a sweep joins it through RAY_ADDRESS,
exactly as a user would, spreads over its nodes, and survives losing a worker node."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from procs import kill_tree_of

from theorydl.spine.store.store import Store

pytestmark = pytest.mark.slow

TOY_DIR = Path(__file__).resolve().parent
RAY = str(Path(sys.executable).with_name("ray"))
DRIVER = """
import json, logging, sys
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
import toy
from theorydl import params, stages
from theorydl.spine import registry as experiments
experiments.register(toy.Toy())
print(json.dumps(stages.train(params.parse_params(json.loads(sys.argv[1])), "toy")))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    """A head and one worker node (1 CPU each) on 127.0.0.1, each with its own temp dir
    (short: Ray's socket paths must fit 107 bytes); both are killed at the end, even
    when the test fails, and nothing else of Ray on this machine is touched."""
    head_dir = tempfile.mkdtemp(prefix="rh", dir="/tmp")
    worker_dir = tempfile.mkdtemp(prefix="rw", dir="/tmp")
    port = _free_port()
    # Ray secures clusters with a token: this cluster gets its own, passed to every
    # process of the test (head, worker, driver) and never written to ~/.ray.
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    env = {**env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
           # the toy module, and this checkout's theorydl (not whichever one is installed)
           "PYTHONPATH": os.pathsep.join([str(TOY_DIR), str(TOY_DIR.parents[1]),
                                          os.environ.get("PYTHONPATH", "")])}
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--disable-usage-stats"]
    try:
        subprocess.run([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false",
                        f"--temp-dir={head_dir}", *common], env=env, check=True,
                       capture_output=True, timeout=600)
        subprocess.run([RAY, "start", f"--address=127.0.0.1:{port}", f"--temp-dir={worker_dir}",
                        *common], env=env, check=True, capture_output=True, timeout=600)
        yield {"address": f"127.0.0.1:{port}", "env": env, "worker_dir": worker_dir,
               "tmp": tmp_path}
    finally:
        kill_tree_of(worker_dir)
        kill_tree_of(head_dir)


def _driver(cluster, store: Path, sleep: float, n: int) -> subprocess.Popen:
    script = cluster["tmp"] / "driver.py"
    script.write_text(DRIVER)
    params = json.dumps({"run": {"store": str(store), "progress": "log"},
                         "toy": {"values": list(range(n)), "sleep": sleep,
                                 "trials_path": str(cluster["tmp"] / "toy.parquet")}})
    env = {**cluster["env"], "RAY_ADDRESS": cluster["address"]}
    return subprocess.Popen([sys.executable, str(script), params], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out
    assert "joining Ray cluster at 127.0.0.1" in out
    return json.loads(out.strip().splitlines()[-1])


def test_sweep_joins_the_cluster_and_uses_every_node(cluster):
    store = cluster["tmp"] / "store"
    assert _result(_driver(cluster, store, sleep=0.5, n=8))["ran"] == 8
    table = Store(str(store)).read("toy")
    assert len(set(table["node_id"].to_pylist())) >= 2
    assert sorted(set(table["value"].to_pylist())) == list(range(8))


def test_losing_a_worker_node_mid_sweep_loses_no_trial(cluster):
    store_path = cluster["tmp"] / "store"
    proc = _driver(cluster, store_path, sleep=1.5, n=8)
    store = Store(str(store_path))
    deadline = time.monotonic() + 600
    while not store.files("toy"):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    kill_tree_of(cluster["worker_dir"])  # the worker node dies, with its running task
    summary = _result(proc)
    assert summary == {"planned": 8, "cached": 0, "ran": 8, "failed": 0}
    table = store.read("toy", latest=False)
    ids = table["trial_id"].to_pylist()
    assert len(set(ids)) == 8 and len(ids) == 8 * 3  # every trial once, three rows each
