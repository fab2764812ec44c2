"""The suite's leftover-process check sees what a test orphans (see conftest.py)."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="child subreapers are Linux's")
def test_an_orphaned_grandchild_is_still_ours(live_descendants):
    # The shell starts a sleep in the background and exits: the sleep is orphaned.
    out = subprocess.run(["sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!"],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    pid = int(out)
    try:
        assert pid in {p.pid for p in live_descendants()}
        assert psutil.Process(pid).ppid() != 1  # not re-parented to init
    finally:
        psutil.Process(pid).kill()
        psutil.Process(pid).wait(timeout=10)
    assert pid not in {p.pid for p in live_descendants()}
