"""Provenance: where and with what code a result was produced.

The driver computes the git state and library versions once per sweep (workers on a
cluster may have no git checkout); each worker adds its own hostname and Ray node id.
"""

from __future__ import annotations

import platform
import socket
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path

__all__ = ["driver_provenance", "git_state", "package_version", "worker_provenance"]


def package_version(name: str) -> str | None:
    """The installed version of a distribution, without importing it (torch takes seconds)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_state(cwd: str | Path = ".") -> tuple[str | None, bool | None]:
    """(commit sha, dirty flag) of the git checkout at ``cwd``; (None, None) outside git.

    Dirty means tracked files differ from the commit; untracked files do not count, since
    the trial cache and DVC outputs live untracked in the work tree.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()
    try:
        sha = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None, None
    return sha, dirty


@lru_cache(maxsize=1)
def _versions() -> dict[str, str | None]:
    return {
        "theorydl_version": package_version("theorydl"),
        "torch_version": package_version("torch"),
        "ray_version": package_version("ray"),
        "python_version": platform.python_version(),
    }


def driver_provenance(cwd: str | Path = ".") -> dict[str, object]:
    """Provenance columns known to the driver: git state and library versions."""
    sha, dirty = git_state(cwd)
    return {"git_sha": sha, "git_dirty": dirty, **_versions()}


def worker_provenance() -> dict[str, str | None]:
    """Provenance columns known only where the trial runs: hostname and Ray node id."""
    node_id = None
    try:
        import ray

        if ray.is_initialized():
            node_id = ray.get_runtime_context().get_node_id()
    except ImportError:
        pass
    return {"hostname": socket.gethostname(), "node_id": node_id}
