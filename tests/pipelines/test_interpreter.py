"""``pipelines/python``: every stage's command runs under the project's interpreter,
whatever PATH ``dvc repro`` was started with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "pipelines" / "python"
BARE = {"PATH": "/usr/bin:/bin"}


def _fake_python(path: Path, name: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {name} \"$@\"\n")
    path.chmod(0o755)
    return path


def _picked(cwd: Path, **env) -> str:
    out = subprocess.run(["sh", str(SCRIPT), "stage.py", "ib"], cwd=cwd, env={**BARE, **env},
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_the_order_is_override_then_active_venv_then_the_repository_venv(tmp_path):
    _fake_python(tmp_path / ".venv" / "bin" / "python", "repo-venv")
    active = tmp_path / "active"
    _fake_python(active / "bin" / "python", "active-venv")
    override = _fake_python(tmp_path / "override", "override")
    assert _picked(tmp_path) == "repo-venv stage.py ib"
    assert _picked(tmp_path, VIRTUAL_ENV=str(active)) == "active-venv stage.py ib"
    assert _picked(tmp_path, VIRTUAL_ENV=str(active),
                   THEORYDL_PYTHON=str(override)) == "override stage.py ib"
    # a VIRTUAL_ENV with no interpreter in it (a removed venv) falls through
    assert _picked(tmp_path, VIRTUAL_ENV=str(tmp_path / "gone")) == "repo-venv stage.py ib"


def test_a_bare_path_still_runs_this_interpreter():
    out = subprocess.run(["sh", str(SCRIPT), "-c", "import theorydl, sys; print(sys.executable)"],
                         cwd=ROOT, env={**BARE, "THEORYDL_PYTHON": sys.executable},
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == sys.executable


def test_every_stage_command_goes_through_it():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stages and all(s["cmd"].startswith("sh pipelines/python pipelines/")
                          for s in stages.values())
