"""The documentation: the site builds with no warning (a broken link or an unrenderable
docstring fails it), the README is a front page with the two-command quick start, and
every study has notes that the README links and the site includes."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import pytest

MAX_README_LINES = 250


def study_names(repo_root) -> list[str]:
    """Every study package under theorydl/studies/ (a folder with an __init__.py)."""
    studies = repo_root / "theorydl" / "studies"
    return sorted(p.name for p in studies.iterdir() if (p / "__init__.py").is_file())


@pytest.mark.skipif(importlib.util.find_spec("mkdocs") is None,
                    reason="mkdocs is not installed (a dev dependency: pip install -e '.[dev]')")
def test_the_site_builds_strict(repo_root, tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
                          cwd=repo_root, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (site / "index.html").is_file()
    for name in study_names(repo_root):
        page = site / "studies" / name / "index.html"
        assert page.is_file(), f"the site has no page for the study {name}"
        # The page includes the notes (pymdownx.snippets), not the include line itself.
        assert "--8&lt;--" not in page.read_text(), name


def test_the_readme_is_a_front_page_with_two_commands(repo_root):
    text = (repo_root / "README.md").read_text()
    assert len(text.splitlines()) <= MAX_README_LINES
    section = re.search(r"^#+ [^\n]*Quick start[^\n]*\n(.*?)(?=^#+ |\Z)", text, re.S | re.M)
    assert section, "README.md has no Quick start section"
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", section.group(1), re.S | re.M)
    assert blocks, "the Quick start section has no code block"
    commands = [line.split("#")[0].strip() for line in blocks[0].splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
    commands = [c for c in commands if not c.startswith(("git clone", "cd "))]
    assert commands == ["make repro", "make test"]


def test_every_study_has_notes_the_readme_links(repo_root):
    text = (repo_root / "README.md").read_text()
    names = study_names(repo_root)
    assert names
    for name in names:
        notes = repo_root / "theorydl" / "studies" / name / "README.md"
        assert notes.is_file(), f"{name} has no README.md"
        assert f"(theorydl/studies/{name}/README.md)" in text, f"README.md does not link {name}"
        page = repo_root / "docs" / "studies" / f"{name}.md"
        assert page.is_file() and f"theorydl/studies/{name}/README.md" in page.read_text(), \
            f"docs/studies/{name}.md does not include the notes of {name}"
