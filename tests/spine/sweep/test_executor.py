"""The Ray executor: failures become rows, dead workers are retried, Ray stays on loopback."""

from __future__ import annotations

import psutil
import pytest

from theorydl.spine.config import RayConfig
from theorydl.spine.provenance import driver_provenance
from theorydl.spine.store.store import Store
from theorydl.spine.sweep.executor import execute_units

pytestmark = pytest.mark.slow


def _run(toy, cfg, store, max_retries=2):
    units = toy.units(toy.trials(cfg), cfg)
    prov = {**driver_provenance(), "git_sha": "abc", "git_dirty": False}
    return execute_units(toy, cfg, units, store, prov, RayConfig(max_retries=max_retries),
                         progress="off")


def _status(store):
    return {r["value"]: r["status"] for r in store.read("toy").select(
        ["value", "status"]).to_pylist()}


def test_exception_in_trial_fails_that_trial_only(ray_local, toy, tmp_path):
    cfg = toy.section(values=[1, 2, 3, 4], fail_on=[3], trials_per_unit=2)
    store = Store(str(tmp_path / "store"))
    summary = _run(toy, cfg, store)
    assert (summary.ok, summary.failed) == (3, 1)
    assert _status(store) == {1: "ok", 2: "ok", 3: "failed", 4: "ok"}
    table = store.read("toy")
    errors = [e for e in table["error"].to_pylist() if e]
    assert len(errors) == 1 and "toy failure on 3" in errors[0]
    ok_rows = table.filter(pa_equal(table["value"], 2))
    assert sorted(ok_rows["y"].to_pylist()) == [4.0, 5.0, 6.0]


def test_unit_whose_worker_dies_once_is_retried(ray_local, toy, tmp_path):
    cfg = toy.section(values=[5, 6], die_once_on=[5], marker_dir=str(tmp_path))
    store = Store(str(tmp_path / "store"))
    summary = _run(toy, cfg, store, max_retries=1)
    assert (tmp_path / "died-5").exists(), "the first attempt did not die"
    assert summary.failed == 0
    assert _status(store) == {5: "ok", 6: "ok"}
    # One stored attempt per trial: the dead attempt left nothing behind.
    assert len(set(store.read("toy", latest=False)["attempt_id"].to_pylist())) == 2


def test_worker_that_always_dies_becomes_failed_rows(ray_local, toy, tmp_path):
    cfg = toy.section(values=[7, 8], die_always_on=[7])
    store = Store(str(tmp_path / "store"))
    summary = _run(toy, cfg, store, max_retries=1)
    assert (summary.ok, summary.failed) == (1, 1)
    table = store.read("toy")
    err = table.filter(pa_equal(table["value"], 7))["error"][0].as_py()
    assert "died" in err.lower() or "crash" in err.lower() or "exit" in err.lower(), err


def test_rows_carry_identity_and_provenance(ray_local, toy, tmp_path):
    cfg = toy.section(values=[1], seeds=[0, 1])
    store = Store(str(tmp_path / "store"))
    _run(toy, cfg, store)
    table = store.read("toy")
    assert table.num_rows == 6  # 2 trials x 3 long-form rows
    rows = table.to_pylist()
    for r in rows:
        assert r["experiment"] == "toy" and len(r["trial_id"]) == 20
        assert r["git_sha"] == "abc" and r["git_dirty"] is False
        assert r["node_id"] and r["hostname"]
        assert r["ended_at"] >= r["started_at"] and r["duration_s"] >= 0
        assert r["config_json"] == '{"value":1}'
        assert r["theorydl_version"] and r["ray_version"] and r["torch_version"]
    assert {r["seed"] for r in rows} == {0, 1}


def test_embedded_ray_listens_on_loopback_only(ray_local):
    """Every listening socket of this session's Ray processes is on 127.0.0.1 (or ::1)."""
    ctx = ray_local.get_runtime_context()
    assert ray_local._private.worker.global_worker.node.node_ip_address == "127.0.0.1"
    session = ray_local._private.worker.global_worker.node.get_session_dir_path()
    assert ctx.gcs_address.startswith("127.0.0.1:")
    ray_pids = [p for p in psutil.process_iter(["cmdline"])
                if any(session in (a or "") for a in (p.info["cmdline"] or []))]
    assert ray_pids, "no Ray processes found for this session"
    addrs = []
    for proc in ray_pids:
        try:
            conns = proc.net_connections(kind="inet")
        except (psutil.AccessDenied, psutil.NoSuchProcess):
            continue
        addrs += [c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN]
    assert addrs, "found no listening sockets"
    assert all(ip in ("127.0.0.1", "::1", "::ffff:127.0.0.1") for ip in addrs), addrs


def pa_equal(column, value):
    import pyarrow.compute as pc

    return pc.equal(column, value)
