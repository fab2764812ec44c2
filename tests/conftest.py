"""Shared fixtures: a repo-root path, one embedded Ray for the session, the toy experiment,
and a check that the suite leaves no process behind."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOY_DIR = ROOT / "tests" / "spine" / "sweep"
# Helper modules there (toy experiments, process helpers; the dvc workspace helpers in
# tests/pipelines) import by name in tests too.
for _helpers in (TOY_DIR, ROOT / "tests" / "pipelines"):
    if str(_helpers) not in sys.path:
        sys.path.insert(0, str(_helpers))

from procs import kill_and_wait  # noqa: E402 - found through the path just set


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def ray_local():
    """One embedded Ray (2 CPUs, loopback only) shared by the tests that need Ray.

    The toy experiment's folder goes on PYTHONPATH first: Ray workers inherit the
    environment of the processes ray.init starts, and import the toy module by name.
    """
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(TOY_DIR), *filter(None, [os.environ.get("PYTHONPATH")])])
    if str(TOY_DIR) not in sys.path:
        sys.path.insert(0, str(TOY_DIR))
    import ray

    from theorydl.spine.config import RayConfig
    from theorydl.spine.sweep.executor import ensure_ray

    ensure_ray(RayConfig(num_cpus=2))
    yield ray
    ray.shutdown()


@pytest.fixture
def toy(monkeypatch):
    """The toy experiment, registered for this test only."""
    if str(TOY_DIR) not in sys.path:
        sys.path.insert(0, str(TOY_DIR))
    import toy as toy_module

    from theorydl.spine import registry

    exp = toy_module.Toy()
    monkeypatch.setitem(registry._REGISTRY, "toy", exp)
    return exp


# --- no leftovers -------------------------------------------------------------------------
# The suite must leave no process behind (Ray daemons of a killed driver, a server a test
# forgot). This pytest process becomes a "child subreaper" (Linux): a process whose parent
# dies is then re-parented to it instead of to init, so every process the suite started,
# orphaned or not, stays its descendant, and other users of Ray on the machine are never
# counted.


def _become_subreaper() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    pr_set_child_subreaper = 36
    return ctypes.CDLL(None, use_errno=True).prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0


def _live_descendants(ignore: frozenset[int] = frozenset()) -> list[psutil.Process]:
    """The processes this pytest process started, directly or not, that still run."""
    out = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if proc.pid not in ignore and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            pass
    return out


def _reap_zombies() -> None:
    for proc in psutil.Process().children():
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(proc.pid, os.WNOHANG)
        except (psutil.NoSuchProcess, ChildProcessError):
            pass


def _describe(proc: psutil.Process) -> str:
    try:
        return f"{proc.pid} {' '.join(proc.cmdline())[:120] or proc.name()}"
    except psutil.Error:
        return str(proc.pid)


@pytest.fixture(scope="session", autouse=True)
def no_leftover_processes():
    """Fail the run if any process the tests started outlives them (killed afterwards).

    Session-scoped and autouse, so it is torn down last, after ``ray_local``'s
    ``ray.shutdown``; Ray's daemons get a few seconds to exit on their own.
    """
    tracked = _become_subreaper()
    before = frozenset(p.pid for p in _live_descendants())
    yield
    if not tracked:
        return
    deadline = time.monotonic() + 60
    while (left := _live_descendants(before)) and time.monotonic() < deadline:
        time.sleep(0.25)
    names = [_describe(p) for p in left]
    kill_and_wait(left)
    _reap_zombies()
    if left:
        pytest.fail(f"the tests left {len(left)} processes running (now killed): "
                    + "; ".join(names), pytrace=False)


@pytest.fixture
def live_descendants():
    """The leftover check's view: the live processes this pytest process started."""
    return _live_descendants


# --- order ----------------------------------------------------------------------------
# The end-to-end DVC modules take most of the suite's time (each runs the whole test-profile
# pipeline several times), so they are collected first. `make test` runs pytest with
# `-n 2 --dist loadscope --no-loadscope-reorder` (pytest-xdist): each worker then starts
# with one of them, a module's tests stay on one worker (they share a workspace), and
# the other modules fill in around them.
HEAVY_FIRST = ("test_dvc_state.py", "test_dvc_repro.py")


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        name = item.path.name
        return HEAVY_FIRST.index(name) if name in HEAVY_FIRST else len(HEAVY_FIRST)

    items.sort(key=rank)  # stable: the rest keep their order
