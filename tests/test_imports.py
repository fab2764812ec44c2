"""The layout's import contracts (pyproject's [tool.importlinter]), checked by import-linter."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest


def _lint_imports() -> list[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("lint-imports is not installed: `pip install -e .[dev]`")
    return [exe, "--no-logo", "--no-cache"]


def test_the_import_contracts_hold(repo_root):
    done = subprocess.run(_lint_imports(), cwd=repo_root, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout, done.stdout


def test_a_study_importing_another_breaks_a_contract(repo_root, tmp_path):
    # The contracts can fail: a copy of the package where one study imports another.
    shutil.copytree(repo_root / "theorydl", tmp_path / "theorydl",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(repo_root / "pyproject.toml", tmp_path)
    target = tmp_path / "theorydl" / "studies" / "census" / "figures.py"
    target.write_text(target.read_text() + "\nfrom theorydl.studies.ib import snr  # noqa\n")
    done = subprocess.run(_lint_imports(), cwd=tmp_path, capture_output=True, text=True,
                          timeout=1200, env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode != 0
    assert "theorydl.studies.census is not allowed to import theorydl.studies.ib" in done.stdout
