"""A driver killed with SIGKILL mid-sweep loses nothing stored and re-runs only what is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from theorydl.spine.store.store import Store

pytestmark = pytest.mark.slow

TOY_DIR = Path(__file__).resolve().parent
N_TRIALS = 8

DRIVER = textwrap.dedent("""
    import json, logging, sys
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    import toy
    from theorydl import stages
    from theorydl.spine import registry as experiments
    from theorydl.params import parse_params
    experiments.register(toy.Toy())
    params = parse_params(json.loads(sys.argv[1]))
    print(json.dumps(stages.train(params, "toy")), flush=True)
""")


def _params(store: Path, out: Path) -> str:
    return json.dumps({
        "run": {"store": str(store), "progress": "log", "ray": {"num_cpus": 2}},
        "toy": {"values": list(range(N_TRIALS)), "sleep": 0.6, "trials_path": str(out)},
    })


def _driver(tmp_path: Path, params: str) -> subprocess.Popen:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    # The toy module, and this checkout's theorydl (not whichever one is installed).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(TOY_DIR), str(TOY_DIR.parents[1]), *filter(None, [os.environ.get("PYTHONPATH")])])}
    # A session of its own, so the kill takes the driver and the Ray it embedded.
    return subprocess.Popen([sys.executable, str(script), params], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _finish(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, out
    return json.loads(out.strip().splitlines()[-1])


def _kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL the driver and every process it started (the Ray it embedded), at once."""
    tree = [proc.pid, *(p.pid for p in psutil.Process(proc.pid).children(recursive=True))]
    os.killpg(proc.pid, signal.SIGKILL)
    for pid in tree:  # Ray's daemons leave the driver's process group: kill them by pid
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=30)
    psutil.wait_procs([p for p in map(_process, tree[1:]) if p], timeout=30)


def _process(pid: int) -> psutil.Process | None:
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


def _measurements(store: Store) -> list[tuple]:
    table = store.read("toy", latest=False)
    return sorted(zip(table["trial_id"].to_pylist(), table["value"].to_pylist(),
                      table["step"].to_pylist(), table["y"].to_pylist(),
                      table["status"].to_pylist()))


def test_sigkilled_driver_then_rerun_equals_uninterrupted(tmp_path):
    clean_store, crash_store = tmp_path / "clean", tmp_path / "crash"
    clean = _finish(_driver(tmp_path, _params(clean_store, tmp_path / "clean.parquet")))
    assert clean == {"planned": N_TRIALS, "cached": 0, "ran": N_TRIALS, "failed": 0}

    proc = _driver(tmp_path, _params(crash_store, tmp_path / "crash.parquet"))
    store = Store(str(crash_store))
    deadline = time.monotonic() + 600
    while not store.files("toy"):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "no unit finished in time"
        time.sleep(0.05)
    _kill_session(proc)
    stored_before = {r[0] for r in _measurements(store)}
    assert 0 < len(stored_before) < N_TRIALS, "the kill came too late to test anything"
    # Everything that was stored is whole and readable.
    for path in store.files("toy"):
        assert store.fs.get_file_info(path).size > 0

    rerun = _finish(_driver(tmp_path, _params(crash_store, tmp_path / "crash.parquet")))
    assert rerun["cached"] == len(stored_before)
    assert rerun["ran"] == N_TRIALS - len(stored_before)

    crashed = _measurements(store)
    assert crashed == _measurements(Store(str(clean_store)))
    # No duplicates: one attempt per trial, three long-form rows each.
    assert len(crashed) == 3 * N_TRIALS and len({r[0] for r in crashed}) == N_TRIALS
