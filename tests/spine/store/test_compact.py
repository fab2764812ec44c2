"""Lookups and compaction: the vectorised latest attempt, and `Store.compact`'s guarantees
(every attempt kept, safe beside appends, a kill at any point loses nothing)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from theorydl.spine.spec import TrialSpec
from theorydl.spine.store.rows import TrialResult, build_table
from theorydl.spine.store.store import Store

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
PROV = {"git_sha": "abc", "git_dirty": False, "hostname": "h", "node_id": "n"}
SPECS = [TrialSpec("exp", 1, {"k": k}, swept=("k",)) for k in range(40)]


def _table(specs, status="ok", t=T0, steps=2):
    results = [TrialResult(s.id, status, t, t + timedelta(seconds=1),
                           rows=[] if status == "failed" else
                           [{"step": i, "loss": float(s.config["k"] + i)} for i in range(steps)],
                           error="boom" if status == "failed" else None) for s in specs]
    return build_table(specs, results, PROV)


def _rows(store: Store, latest: bool = False) -> list[tuple]:
    """Every stored row, as sortable tuples of the columns every file has."""
    table = store.read("exp", latest=latest)
    if table.num_rows == 0:
        return []
    cols = ["trial_id", "attempt_id", "status", "ended_at", "step", "loss"]
    return sorted(zip(*(table[c].to_pylist() if c in table.column_names
                        else [None] * table.num_rows for c in cols)),
                  key=repr)


def _fill(store: Store, rng: random.Random, n_files: int = 12) -> None:
    """Files of random trials, some re-run (failed first, or twice ok), one without the
    measurement columns (a failed-only unit: another schema)."""
    for f in range(n_files):
        specs = rng.sample(SPECS, 4)
        status = "failed" if f == 3 else rng.choice(["ok", "ok", "failed", "diverged"])
        store.append("exp", _table(specs, status, T0 + timedelta(minutes=rng.randrange(30))))


def _reference_latest(store: Store) -> dict[str, str]:
    """Latest attempt per trial, the plain way: a loop over every row of every file."""
    best: dict[str, tuple] = {}
    for path in store.files("exp"):
        t = pq.read_table(path, columns=["trial_id", "attempt_id", "status", "ended_at"])
        for tid, att, status, ended in zip(*(t[c].to_pylist() for c in t.column_names)):
            if tid not in best or (ended, att) > best[tid][:2]:
                best[tid] = (ended, att, status)
    return {tid: v[2] for tid, v in best.items()}


@pytest.mark.parametrize("seed", range(5))
def test_latest_status_matches_a_plain_loop(tmp_path, seed):
    store = Store(str(tmp_path))
    _fill(store, random.Random(seed))
    assert store.latest_status("exp") == _reference_latest(store)
    latest = store.read("exp")
    assert {(t, s) for t, s in zip(latest["trial_id"].to_pylist(), latest["status"].to_pylist())} \
        == set(_reference_latest(store).items())


def test_compaction_keeps_every_attempt_and_the_latest_view(tmp_path):
    store = Store(str(tmp_path))
    _fill(store, random.Random(0), n_files=30)
    before, status = _rows(store), store.latest_status("exp")
    summary = store.compact("exp")
    assert (summary.files_before, summary.files_after, summary.rows) == (30, 1, len(before))
    assert _rows(store) == before and store.latest_status("exp") == status
    assert store.compact("exp").files_after == 1  # nothing left to merge: a no-op
    # Files above the size threshold stay as they are.
    store.append("exp", _table(SPECS[:2]))
    assert store.compact("exp", small_bytes=1).files_after == 2


def test_an_attempt_in_two_files_is_read_once_and_compacted_once(tmp_path):
    """What a compaction killed between its write and its deletes leaves behind."""
    store = Store(str(tmp_path))
    _fill(store, random.Random(1), n_files=4)
    before, latest = _rows(store), _rows(store, latest=True)
    for path in store.files("exp")[:2]:
        Path(path).with_name("part-copy-" + Path(path).name).write_bytes(Path(path).read_bytes())
    assert len(store.files("exp")) == 6
    assert _rows(store) == before and _rows(store, latest=True) == latest
    assert store.compact("exp").files_after == 1
    assert _rows(store) == before


KILLER = textwrap.dedent("""
    import os, signal, sys
    import theorydl.spine.store.store as st

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    point = sys.argv[2]
    if point == "before-rename":  # the merged file is written under its hidden name
        st.os.replace = die
    elif point == "before-deletes":  # the merged file is in place, every source too
        st._fsync_dir = die
    elif point == "mid-deletes":  # two sources deleted, the others not
        real, calls = st._delete, []

        def delete(fs, path):
            calls.append(path)
            if len(calls) == 3:
                die()
            real(fs, path)

        st._delete = delete
    st.Store(sys.argv[1]).compact("exp")
""")



@pytest.mark.parametrize("point", ["before-rename", "before-deletes", "mid-deletes"])
def test_a_compaction_killed_anywhere_loses_no_row_and_exposes_no_partial_file(tmp_path, point):
    store = Store(str(tmp_path / "s"))
    _fill(store, random.Random(2), n_files=8)
    before, status = _rows(store), store.latest_status("exp")
    script = tmp_path / "kill.py"
    script.write_text(KILLER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(  # this checkout's theorydl
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "s"), point],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == -9, proc.stderr  # it died at the chosen point
    for path in store.files("exp"):  # every visible file is whole
        pq.read_table(path)
    assert _rows(store) == before and store.latest_status("exp") == status
    assert store.compact("exp").files_after == 1  # the next compaction finishes the job
    assert _rows(store) == before


def test_compaction_beside_an_appending_driver_and_a_reader(tmp_path):
    """A driver appends while compactions run and lookups read: nothing lost or doubled."""
    store = Store(str(tmp_path))
    n = len(SPECS)
    errors: list[BaseException] = []

    def append():
        try:
            for spec in SPECS:
                store.append("exp", _table([spec]))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    writer = threading.Thread(target=append)
    writer.start()
    seen = 0
    while writer.is_alive() or seen < n:
        store.compact("exp")
        seen = len(store.latest_status("exp"))
        assert seen <= n
        if not writer.is_alive() and seen < n:
            break
    writer.join()
    assert not errors
    rows = _rows(store)
    assert len(rows) == 2 * n and len({r[1] for r in rows}) == n  # each attempt once
    assert len(store.latest_status("exp")) == n


def test_the_store_compact_command(repo_root, tmp_path, capsys):
    import json

    import yaml

    from theorydl.cli import main

    data = yaml.safe_load((repo_root / "params.yaml").read_text())
    data["run"]["store"] = str(tmp_path / "store")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(data))
    store = Store(str(tmp_path / "store"))
    census = [TrialSpec("census", 1, {"k": k}, swept=("k",)) for k in range(3)]
    for spec in census:
        store.append("census", _table([spec]))
    before = store.read("census", latest=False).num_rows
    assert main(["-p", str(params), "store", "compact", "census"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["census"]["files_before"] == 3 and out["census"]["files_after"] == 1
    assert store.read("census", latest=False).num_rows == before
    assert main(["-p", str(params), "store", "compact", "nope"]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("most", [0, 2])
def test_a_stage_compacts_the_store_once_it_holds_many_files(ray_local, toy, tmp_path, most):
    # Three stages, each appending a file; with run.compact_files = 2 the third leaves one
    # merged file (every row kept), with 0 (never) the three files stay.
    from theorydl import stages
    from theorydl.params import parse_params

    store_dir = tmp_path / "store"
    for values in ([1], [1, 2], [1, 2, 3]):
        params = parse_params({"run": {"store": str(store_dir), "progress": "off",
                                       "compact_files": most},
                               "toy": {"values": values,
                                       "trials_path": str(tmp_path / "t.parquet")}})
        assert stages.train(params, "toy")["ran"] == 1
    files = Store(str(store_dir)).files("toy")
    assert len(files) == (3 if most == 0 else 1)
    table = Store(str(store_dir)).read("toy", latest=False)
    assert sorted(set(table["trial_id"].to_pylist())) == sorted(
        s.id for s in toy.trials(toy.config(params)))
