"""Helpers of the end-to-end `dvc repro` tests: a workspace on the test profile, and
outputs compared by content."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# A secret in the environment, as a user's W&B key would be: it must appear in no output.
FAKE_KEY = "f4k3" * 10


def sh(args, cwd, env, timeout=1800):  # a hang guard, far above any normal run
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def make_workspace(repo_root: Path, work: Path) -> tuple[Path, dict[str, str]]:
    """A git + DVC repository holding the project's files, on the test profile."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard",
                            "-z"], cwd=repo_root, capture_output=True, text=True, check=True)
    for rel in filter(None, files.stdout.split("\0")):
        src = repo_root / rel
        if src.is_file() and not rel.startswith("dvc.lock"):
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, work / rel)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "THEORYDL_PYTHON": sys.executable, "WANDB_API_KEY": FAKE_KEY,
           "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    sh(["git", "init", "-q"], work, env)
    sh([sys.executable, "-m", "theorydl", "profile", "test"], work, env)
    sh(["git", "add", "-A"], work, env)
    sh(["git", "commit", "-qm", "test profile"], work, env)
    return work, env


def content(path: Path):
    """A results table without its provenance columns (and attempt ids), row-sorted."""
    import pyarrow.parquet as pq

    from theorydl.spine.store.rows import PROVENANCE_COLUMNS

    table = pq.read_table(path)
    # (and a trial's own timing: the census shards record their compute seconds)
    drop = (*PROVENANCE_COLUMNS, "attempt_id", "seconds")
    keep = [c for c in table.column_names if c not in drop]
    return sorted(json.dumps(row, default=str) for row in table.select(keep).to_pylist())


def stages(work: Path) -> list[str]:
    import yaml

    return list(yaml.safe_load((work / "dvc.yaml").read_text())["stages"])


def all_content(work: Path) -> dict[str, object]:
    """Every stage output by content: tables without provenance columns, other files by
    bytes (figures, metrics, plot data and the report are made from the tables alone)."""
    found: dict[str, object] = {}
    for folder in ("data", "results", "metrics", "figures", "plots", "report"):
        for path in sorted((work / folder).rglob("*")):
            rel = str(path.relative_to(work))
            if path.suffix == ".parquet" and rel.startswith("results/"):
                found[rel] = content(path)
            elif path.is_file():
                data = path.read_bytes()
                if path.suffix == ".html":  # the report says when, from which commit
                    data = re.sub(rb"<p class=meta>.*?</p>", b"", data, flags=re.S)
                found[rel] = hashlib.sha256(data).hexdigest()
    return found


def differences(a: dict, b: dict) -> list[str]:
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def explain(a: dict, b: dict, most: int = 5) -> str:
    """For a failure message: the first rows that differ in each differing table."""
    lines = []
    for key in differences(a, b):
        left, right = a.get(key), b.get(key)
        if isinstance(left, list) and isinstance(right, list):
            lines.append(f"{key}: {len(left)} rows vs {len(right)} before")
            lines += [f"  now only: {r}" for r in sorted(set(left) - set(right))[:most]]
            lines += [f"  before only: {r}" for r in sorted(set(right) - set(left))[:most]]
        else:
            lines.append(f"{key}: {left!r} vs {right!r} before")
    return "\n".join(lines)


def set_store(work: Path, store: str) -> str:
    params = (work / "params.yaml").read_text()
    assert params.count("store: .theorydl/store\n") == 1
    (work / "params.yaml").write_text(params.replace("store: .theorydl/store\n",
                                                     f"store: {store}\n"))
    return params


def kill_tree(root: int) -> None:
    """SIGKILL a process, everything it started (Ray's daemons included), its group."""
    import signal

    import psutil
    from procs import kill_and_wait

    try:
        tree = [psutil.Process(root), *psutil.Process(root).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    try:
        os.killpg(root, signal.SIGKILL)
    except ProcessLookupError:
        pass
    kill_and_wait(tree)
