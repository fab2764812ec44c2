"""The W&B mirror, offline only: what the offline run directory holds, ids, secrets.

How the tests read a run back (wandb 0.31): the offline run directory
``<dir>/wandb/offline-run-<time>-<id>/`` holds ``run-<id>.wandb`` (the transaction log),
``files/media/`` (logged images and ``*.table.json`` tables) and ``logs/``. In 0.31 an offline
run writes no ``files/wandb-summary.json`` or ``files/config.yaml`` (those are made on
``wandb sync``), and ``wandb.sdk.internal.datastore`` is gone, so the tests parse the
``.wandb`` log themselves (:func:`read_records`): it is a LevelDB-style log (a 7-byte file
header ``":W&B" 0xBEE1 0``, then 32 KiB blocks of records, each with a 7-byte header
``crc32 u32, length u16, type u8``, FULL/FIRST/MIDDLE/LAST fragments) of
``wandb.proto.wandb_internal_pb2.Record`` messages: ``run`` (id, config, job type, group),
``history``, ``summary``, ``artifact``, ... .
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("wandb")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from theorydl.report.wandb_mirror import (
    WandbSettings,
    mirror_stage,
    mirror_trials,
    redact,
    stage_run_id,
    trial_run_id,
)

FAKE_KEY = "x" * 40

# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """Offline, silent W&B with every directory it writes under tmp_path, and a fake key."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    for var, sub in [("WANDB_DIR", "wb"), ("WANDB_DATA_DIR", "wbdata"),
                     ("WANDB_CACHE_DIR", "wbcache"), ("WANDB_CONFIG_DIR", "wbconfig"),
                     ("WANDB_ARTIFACT_DIR", "wbartifacts")]:
        (tmp_path / sub).mkdir()
        monkeypatch.setenv(var, str(tmp_path / sub))
    return tmp_path


@pytest.fixture
def results(tmp_path):
    """A small results table (3 trials x 3 epochs), a metrics dict and a tiny PNG."""
    rows = []
    for t, (trial, lr) in enumerate([("t-a", 0.1), ("t-b", 0.01), ("t-c", 0.001)]):
        for epoch in range(3):
            rows.append({
                "experiment": "toy", "trial_id": trial, "seed": t,
                "status": "ok" if trial != "t-c" else "failed",
                "config_json": json.dumps({"lr": lr, "width": 8}),
                "epoch": epoch, "loss": 1.0 / (epoch + 1 + t), "acc": 0.5 + 0.1 * epoch,
                "weights": [0.1, 0.2],  # list column: not in the W&B table
                "blob": b"\x00\x01",  # binary column: not in the W&B table
            })
    table = pa.Table.from_pylist(rows)
    table_path = tmp_path / "results.parquet"
    pq.write_table(table, table_path)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [1, 0])
    png = tmp_path / "loss.png"
    fig.savefig(png, dpi=20)
    plt.close(fig)
    metrics = {"final_acc": 0.7, "by_width": {"8": {"loss": 0.25}}, "n_trials": 3}
    return {"table_path": str(table_path), "metrics": metrics, "figures": {"loss": str(png)}}


# --------------------------------------------------------------------------- reading back

_BLOCK = 32768
_HEADER = struct.Struct("<4sHB")
_REC = struct.Struct("<IHB")


def read_records(path: Path) -> list:
    """The ``Record`` protos in a ``.wandb`` transaction log (see the module docstring)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    ident, magic, version = _HEADER.unpack_from(data, 0)
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0)
    pos, buf, out = _HEADER.size, b"", []
    while pos + _REC.size <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _REC.size:  # block trailer: zero padding
            pos += left
            continue
        _crc, length, kind = _REC.unpack_from(data, pos)
        if kind == 0 and length == 0:  # padding at the end of a block
            pos += left
            continue
        pos += _REC.size
        chunk = data[pos:pos + length]
        pos += length
        if kind == 1:  # FULL
            buf = chunk
        elif kind == 2:  # FIRST
            buf = chunk
            continue
        elif kind == 3:  # MIDDLE
            buf += chunk
            continue
        else:  # LAST
            buf += chunk
        rec = pb.Record()
        rec.ParseFromString(buf)
        out.append(rec)
        buf = b""
    return out


def run_dirs(base: Path, run_id: str) -> list[Path]:
    return sorted((base / "wandb").glob(f"offline-run-*-{run_id}"))


def read_run(run_dir: Path) -> dict:
    """The run record, the merged config/summary, history rows and artifacts of one run."""
    (log,) = run_dir.glob("run-*.wandb")
    recs = read_records(log)
    out = {"run": None, "config": {}, "summary": {}, "history": [], "artifacts": []}
    for r in recs:
        kind = r.WhichOneof("record_type")
        if kind == "run":
            out["run"] = r.run
            for item in r.run.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "config":
            for item in r.config.update:
                out["config"][item.key] = json.loads(item.value_json)
        elif kind == "summary":
            for item in r.summary.update:
                key = "/".join(item.nested_key) if item.nested_key else item.key
                out["summary"][key] = json.loads(item.value_json)
        elif kind == "history":
            out["history"].append({
                ("/".join(i.nested_key) if i.nested_key else i.key): json.loads(i.value_json)
                for i in r.history.item})
        elif kind == "artifact":
            out["artifacts"].append(r.artifact)
    return out


def assert_no_key(root: Path) -> None:
    for p in root.rglob("*"):
        if p.is_file():
            assert FAKE_KEY.encode() not in p.read_bytes(), f"API key leaked into {p}"


# --------------------------------------------------------------------------- stage runs


def test_mirror_stage_offline_run(wandb_env, results):
    base = wandb_env / "runs"
    s = WandbSettings(enabled=True, mode="offline", project="p", dir=str(base))
    rid = mirror_stage(s, experiment="toy", stage="analyze", config={"lr": 0.1, "opt": {"m": 0.9}},
                       run_key="hash1", **results)
    assert rid == stage_run_id("toy", "analyze", "hash1")
    (rd,) = run_dirs(base, rid)
    (log,) = rd.glob("run-*.wandb")
    assert log.name == f"run-{rid}.wandb"

    got = read_run(rd)
    run = got["run"]
    assert run.run_id == rid and run.job_type == "analyze" and run.run_group == "toy"
    assert run.project == "p"
    assert got["config"]["lr"] == 0.1 and got["config"]["opt"] == {"m": 0.9}
    # metrics flattened into the summary
    summ = got["summary"]
    assert summ["final_acc"] == 0.7 and summ["n_trials"] == 3
    assert summ["by_width/8/loss"] == 0.25
    assert summ["results_table_rows"] == 9
    assert "results_table_truncated" not in summ
    # table and image: logged as history values and written under files/media
    # (read_run joins nested keys with "/": a logged media value becomes "<key>/_type" etc.)
    (row,) = [h for h in got["history"] if "results/_type" in h]
    assert row["results/_type"] == "table-file" and row["results/nrows"] == 9
    assert row["figures/loss/_type"] == "image-file"
    assert (rd / "files" / row["figures/loss/path"]).is_file()
    (table_json,) = (rd / "files" / "media" / "table").glob("results_*.table.json")
    tj = json.loads(table_json.read_text())
    assert len(tj["data"]) == 9
    assert {"trial_id", "epoch", "loss", "config_json", "status"} <= set(tj["columns"])
    assert "weights" not in tj["columns"] and "blob" not in tj["columns"]
    assert list((rd / "files" / "media" / "images").rglob("loss_*.png"))
    # the Parquet file as an artifact
    # (the wandb.Table itself is also backed by a "run-<id>-results" artifact of W&B's own)
    (art,) = [a for a in got["artifacts"] if a.type == "results"]
    assert art.name == "toy-analyze" and art.type == "results"
    assert [e.path for e in art.manifest.contents] == ["results.parquet"]

    # a second call with the same key: the same id; another key: another id
    rid2 = mirror_stage(s, experiment="toy", stage="analyze", config={}, run_key="hash1",
                        table_path=None, metrics=None, figures={})
    rid3 = mirror_stage(s, experiment="toy", stage="analyze", config={}, run_key="hash2",
                        table_path=None, metrics=None, figures={})
    assert rid2 == rid and rid3 != rid
    assert len(run_dirs(base, rid3)) == 1

    # no secret anywhere W&B wrote, nor in what came back
    assert FAKE_KEY not in rid + rid2 + rid3
    assert_no_key(wandb_env)


def test_group_and_row_cap(wandb_env, results, monkeypatch):
    import theorydl.report.wandb_mirror as wm

    monkeypatch.setattr(wm, "MAX_TABLE_ROWS", 4)
    base = wandb_env / "runs"
    s = WandbSettings(enabled=True, dir=str(base), group="g1")
    rid = mirror_stage(s, experiment="toy", stage="train", config={}, run_key="k",
                       table_path=results["table_path"], metrics=None, figures={})
    (rd,) = run_dirs(base, rid)
    got = read_run(rd)
    assert got["run"].run_group == "g1" and got["run"].job_type == "train"
    assert got["summary"]["results_table_truncated"] == 9
    (table_json,) = (rd / "files" / "media" / "table").glob("*.table.json")
    assert len(json.loads(table_json.read_text())["data"]) == 4


# --------------------------------------------------------------------------- per-trial runs


def test_mirror_trials(wandb_env, results):
    base = wandb_env / "runs"
    s = WandbSettings(enabled=True, dir=str(base), per_trial_runs=True)
    ids = mirror_trials(s, experiment="toy", table_path=results["table_path"])
    assert ids == [trial_run_id("toy", t) for t in ("t-a", "t-b", "t-c")]
    assert len(set(ids)) == 3
    assert mirror_trials(s, experiment="toy", table_path=results["table_path"]) == ids
    assert mirror_trials(s, experiment="toy", table_path=results["table_path"], max_runs=1) \
        == ids[:1]

    first = run_dirs(base, ids[0])
    assert len(first) >= 1
    got = read_run(first[0])
    assert got["run"].run_id == ids[0] and got["run"].job_type == "trial"
    assert got["config"]["lr"] == 0.1 and got["config"]["trial_id"] == "t-a"
    assert got["config"]["seed"] == 0
    hist = [h for h in got["history"] if "loss" in h]
    assert [h["_step"] for h in hist] == [0, 1, 2]
    assert [h["epoch"] for h in hist] == [0, 1, 2]
    assert hist[0]["loss"] == pytest.approx(1.0)
    assert all("weights" not in h and "blob" not in h for h in hist)
    assert got["summary"]["status"] == "ok"
    assert read_run(run_dirs(base, ids[2])[0])["summary"]["status"] == "failed"
    assert_no_key(wandb_env)


def test_mirror_trials_off(results, tmp_path):
    s = WandbSettings(enabled=True, dir=str(tmp_path / "runs"))  # per_trial_runs False
    assert mirror_trials(s, experiment="toy", table_path=results["table_path"]) == []
    assert mirror_trials(WandbSettings(per_trial_runs=True), experiment="toy",
                         table_path=results["table_path"]) == []
    assert not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------- disabled


def test_disabled_does_not_import_wandb(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        from theorydl.report.wandb_mirror import WandbSettings, mirror_stage, mirror_trials
        r = mirror_stage(WandbSettings(), experiment="e", stage="s", config={{"a": 1}},
                         table_path=None, metrics={{"m": 1}}, figures={{}}, run_key="k")
        assert r is None, r
        assert mirror_trials(WandbSettings(), experiment="e",
                             table_path={str(tmp_path / "missing.parquet")!r}) == []
        assert "wandb" not in sys.modules, "wandb was imported"
        print("ok")
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
    assert not (tmp_path / ".wandb").exists()


# --------------------------------------------------------------------------- secrets


def test_redact(monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    text = f"login with {FAKE_KEY} then {FAKE_KEY}!"
    assert redact(text) == "login with *** then ***!"
    assert FAKE_KEY not in redact(text)
    assert redact("nothing here") == "nothing here"
    monkeypatch.delenv("WANDB_API_KEY")
    assert redact(text) == text
    monkeypatch.setenv("WANDB_API_KEY", "")
    assert redact("abc") == "abc"


def test_ids_are_deterministic():
    assert stage_run_id("e", "s", "k") == stage_run_id("e", "s", "k")
    assert len({stage_run_id("e", "s", "k"), stage_run_id("e", "s", "k2"),
                stage_run_id("e", "s2", "k"), stage_run_id("e2", "s", "k")}) == 4
    assert trial_run_id("e", 3) == trial_run_id("e", "3") != trial_run_id("f", 3)
    rid = stage_run_id("e", "s", "k")
    assert len(rid) == 32 and all(c in "0123456789abcdef" for c in rid)


def test_settings_frozen_defaults():
    s = WandbSettings()
    assert (s.enabled, s.mode, s.project, s.entity, s.group, s.per_trial_runs, s.dir) == (
        False, "offline", "theorydl", None, None, False, ".wandb")
    with pytest.raises(AttributeError):
        s.enabled = True  # type: ignore[misc]
