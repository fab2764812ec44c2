"""Shared fixtures: a repo-root path, one embedded Ray for the session, the toy experiment."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOY_DIR = ROOT / "tests" / "sweep"


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

    from theorydl.config import RayConfig
    from theorydl.sweep.executor import ensure_ray

    ensure_ray(RayConfig(num_cpus=2))
    yield ray
    ray.shutdown()


@pytest.fixture
def toy(monkeypatch):
    """The toy experiment, registered for this test only."""
    if str(TOY_DIR) not in sys.path:
        sys.path.insert(0, str(TOY_DIR))
    import toy as toy_module

    from theorydl import experiments

    exp = toy_module.Toy()
    monkeypatch.setitem(experiments._REGISTRY, "toy", exp)
    return exp
