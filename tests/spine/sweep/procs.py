"""Process helpers for the tests that start Ray nodes of their own (importable by name:
tests/conftest.py puts this folder on sys.path)."""

from __future__ import annotations

import psutil


def kill_tree_of(tag: str) -> None:
    """Kill every process whose command line names ``tag`` (a node's own temp dir), and
    their descendants: Ray's agents rename themselves (``ray::DashboardAgent``), so only
    their parent, the raylet, still names the folder."""
    doomed: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(tag in (a or "") for a in proc.info["cmdline"] or []):
                doomed[proc.pid] = proc
                doomed.update((c.pid, c) for c in proc.children(recursive=True))
        except psutil.Error:
            pass
    kill_and_wait(list(doomed.values()), timeout=30)


def kill_and_wait(procs: list[psutil.Process], timeout: float = 10) -> None:
    """SIGKILL each of ``procs`` (gone ones are skipped) and wait for them to exit."""
    for proc in procs:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(procs, timeout=timeout)
