"""The trial cache on an S3-compatible object store (moto's server, on 127.0.0.1)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from theorydl.params import parse_params

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def s3_url(monkeypatch):
    """A fresh moto S3 server on loopback with an empty bucket; stopped after the test."""
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    server = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")),
                               "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Credentials come from the environment only, never from params.
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    try:
        client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        while True:
            try:
                client.create_bucket(Bucket="cache")
                break
            except Exception:  # noqa: BLE001 - the server is still starting
                assert time.monotonic() < deadline, "moto server did not start"
                time.sleep(0.2)
        yield (f"s3://cache/theorydl?endpoint_override=127.0.0.1:{port}"
               f"&scheme=http&region=us-east-1"), client
    finally:
        server.kill()
        server.wait(timeout=10)


def test_a_sweep_caches_in_s3_and_a_second_run_runs_nothing(ray_local, toy, s3_url, tmp_path):
    from theorydl import stages

    url, client = s3_url
    params = parse_params({"run": {"store": url, "progress": "off"},
                           "toy": {"values": [1, 2, 3], "trials_path": str(tmp_path / "t.parquet")}})
    assert stages.train(params, "toy") == {"planned": 3, "cached": 0, "ran": 3, "failed": 0}
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="cache")["Contents"]
            if o["Key"].endswith(".parquet")]  # pyarrow also writes folder markers
    # One PUT per group of units that finished together: one to three files.
    assert 1 <= len(keys) <= 3 and all(k.startswith("theorydl/toy/part-") for k in keys)
    # Another driver (a fresh Store from the same URL) sees the cache and runs nothing.
    assert stages.train(params, "toy") == {"planned": 3, "cached": 3, "ran": 0, "failed": 0}
    more = parse_params({"run": {"store": url, "progress": "off"},
                         "toy": {"values": [1, 2, 3, 4], "trials_path": str(tmp_path / "t.parquet")}})
    assert stages.train(more, "toy")["ran"] == 1


def test_compaction_on_s3_keeps_every_row(s3_url):
    from datetime import datetime, timezone

    from theorydl.spine.spec import TrialSpec
    from theorydl.spine.store.rows import TrialResult, build_table
    from theorydl.spine.store.store import Store

    url, client = s3_url
    store = Store(url)
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for k in range(5):
        spec = TrialSpec("exp", 1, {"k": k}, swept=("k",))
        store.append("exp", build_table([spec], [TrialResult(spec.id, "ok", t, t,
                                                             rows=[{"y": 1.0}, {"y": 2.0}])], {}))
    before = sorted(store.read("exp", latest=False)["attempt_id"].to_pylist())
    assert store.compact("exp").files_after == 1
    assert sorted(store.read("exp", latest=False)["attempt_id"].to_pylist()) == before
    keys = [o["Key"] for o in client.list_objects_v2(Bucket="cache")["Contents"]
            if o["Key"].endswith(".parquet")]
    assert len(keys) == 1 and len(store.latest_status("exp")) == 5
