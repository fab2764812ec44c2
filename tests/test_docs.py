"""The documentation: the site builds with no warning (a broken link fails), the README is
a front page with the two-command quick start, and every study has notes it links."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest


def test_the_site_builds_strict(repo_root, tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is a dev dependency: pip install -e .[dev]")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d",
                           str(tmp_path / "site")], cwd=repo_root, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "site" / "index.html").is_file()


def test_the_readme_is_a_front_page_with_two_commands(repo_root):
    text = (repo_root / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    block = re.search(r"^## Quick start\n.*?```\w*\n(.*?)```", text, re.S | re.M).group(1)
    commands = [line for line in block.splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    assert [c.split("#")[0].strip() for c in commands] == ["make repro", "make test"]


def test_every_study_has_notes_the_readme_links(repo_root):
    from theorydl.spine import registry

    text = (repo_root / "README.md").read_text()
    for module in registry.study_modules():
        name = module.split(".")[-2]
        notes = repo_root / "theorydl" / "studies" / name / "README.md"
        assert notes.is_file(), name
        assert f"(theorydl/studies/{name}/README.md)" in text, name
