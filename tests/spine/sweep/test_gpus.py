"""GPU requests follow the params: the policy on its own, then a real (fake-multinode)
autoscaling Ray cluster that starts a GPU node when a sweep asks for GPUs."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from procs import kill_tree_of  # the nodes' processes, renamed agents included

from theorydl.spine.sweep.gpus import GpuRequest, decide

TOY_DIR = Path(__file__).resolve().parent
RAY = str(Path(sys.executable).with_name("ray"))


@pytest.mark.parametrize("device", ["cuda", "auto"])
def test_a_cluster_with_gpus_or_an_autoscaler_gets_the_gpu_share(device):
    assert decide("x", device, True, cluster_gpus=4, autoscaling=False)
    assert decide("x", device, True, cluster_gpus=0, autoscaling=True)


def test_cpu_or_no_share_never_asks():
    assert not decide("x", "cpu", True, cluster_gpus=4, autoscaling=True)
    assert not decide("x", "cuda", False, cluster_gpus=4, autoscaling=True)


def test_a_static_cluster_without_gpus_errs_for_cuda_and_warns_for_auto(caplog):
    with pytest.raises(GpuRequest, match="x: device is cuda, but the cluster has no GPU"):
        decide("x", "cuda", True, cluster_gpus=0, autoscaling=False)
    with caplog.at_level(logging.WARNING, logger="theorydl"):
        assert not decide("x", "auto", True, cluster_gpus=0, autoscaling=False)
    assert "runs the units on CPUs" in caplog.text


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DRIVER = """
import json, logging, sys
logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
import gpu_toy
from theorydl import params, stages
from theorydl.spine import registry as experiments
experiments.register(gpu_toy.GpuToy())
print(json.dumps(stages.train(params.parse_params(json.loads(sys.argv[1])), "gpu_toy")))
"""


@pytest.mark.slow
def test_an_autoscaler_starts_a_gpu_node_for_a_cuda_sweep(tmp_path):
    """Ray's fake multi-node provider on this machine: a head with no GPU and a GPU node
    type at 0 workers. The sweep asks for GPUs (device cuda), the autoscaler starts a GPU
    node, the units run there on its GPU slot's actor. What this cannot show: a cloud
    provider's API, a real GPU, or CUDA_VISIBLE_DEVICES reaching a CUDA context."""
    temp = tempfile.mkdtemp(prefix="ra", dir="/tmp")  # short: Ray's socket paths
    port = _free_port()
    config = {
        "cluster_name": "gpu-test", "max_workers": 1, "idle_timeout_minutes": 5,
        "upscaling_speed": 1.0,
        "provider": {"type": "fake_multinode", "gcs_address": f"127.0.0.1:{port}",
                     "use_node_id_as_ip": True, "disable_node_updaters": True,
                     "disable_launch_config_check": True},
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 1}, "node_config": {}, "max_workers": 0},
            "gpu_worker": {"resources": {"CPU": 2, "GPU": 1}, "node_config": {},
                           "min_workers": 0, "max_workers": 1},
        },
        "head_node_type": "ray.head.default", "auth": {"ssh_user": "ray"}, "docker": {},
        "file_mounts": {}, "cluster_synced_files": [], "initialization_commands": [],
        "setup_commands": [], "head_setup_commands": [], "worker_setup_commands": [],
        "head_start_ray_commands": [], "worker_start_ray_commands": [],
    }
    config_path = Path(temp) / "cluster.json"
    config_path.write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    env.update(AUTOSCALER_UPDATE_INTERVAL_S="1", RAY_FAKE_CLUSTER="1", RAY_AUTH_MODE="token",
               RAY_AUTH_TOKEN=secrets.token_hex(32),
               PYTHONPATH=os.pathsep.join([str(TOY_DIR), os.environ.get("PYTHONPATH", "")]))
    try:
        subprocess.run([RAY, "start", "--head", f"--port={port}", f"--temp-dir={temp}",
                        "--num-cpus=1", "--num-gpus=0", "--node-ip-address=127.0.0.1",
                        "--include-dashboard=false", "--disable-usage-stats",
                        f"--autoscaling-config={config_path}"],
                       env=env, check=True, capture_output=True, timeout=120)
        script = tmp_path / "driver.py"
        script.write_text(DRIVER)
        params = json.dumps({"run": {"store": str(tmp_path / "store"), "progress": "log",
                                     "ray": {"address": f"127.0.0.1:{port}"}},
                             "gpu_toy": {"values": [1, 2, 3],
                                         "trials_path": str(tmp_path / "t.parquet")}})
        proc = subprocess.run([sys.executable, str(script), params], env=env, text=True,
                              capture_output=True, timeout=240)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert json.loads(proc.stdout.strip().splitlines()[-1])["ran"] == 3
        import pyarrow.parquet as pq

        rows = pq.read_table(tmp_path / "t.parquet").to_pylist()
        assert all(r["status"] == "ok" for r in rows), [r.get("error") for r in rows]
        assert len(rows) == 3
        assert all(r["gpu_ids"] == "0" and r["visible"] == "0" for r in rows), rows
        # Every unit on the started GPU node (not the head), all on its one GPU slot: the
        # pool's actor there ran them one after another in one worker.
        head = {r["node_id"] for r in rows} & {None}
        assert not head and len({r["node_id"] for r in rows}) == 1
        assert len({r["pid"] for r in rows}) == 1
    finally:
        kill_tree_of(temp)
