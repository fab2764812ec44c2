"""The Parquet store: atomic appends, latest attempt per trial, readable by DuckDB."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from theorydl.spine.spec import TrialSpec
from theorydl.spine.store.rows import TrialResult, build_table
from theorydl.spine.store.store import Store, write_table_atomic

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
PROV = {"git_sha": "abc", "git_dirty": False, "hostname": "h", "node_id": "n"}


def _table(specs, status="ok", value=1.0, t=T0):
    results = [TrialResult(s.id, status, t, t + timedelta(seconds=1),
                           rows=[] if status == "failed" else [{"loss": value}],
                           error="boom" if status == "failed" else None) for s in specs]
    return build_table(specs, results, PROV)


SPECS = [TrialSpec("exp", 1, {"lr": lr}, swept=("lr",)) for lr in (0.1, 0.2, 0.3)]


def test_append_and_read_round_trip(tmp_path):
    store = Store(str(tmp_path))
    store.append("exp", _table(SPECS[:2]))
    store.append("exp", _table(SPECS[2:]))
    table = store.read("exp")
    assert sorted(table["lr"].to_pylist()) == [0.1, 0.2, 0.3]
    assert store.read("exp", trial_ids=[SPECS[1].id])["lr"].to_pylist() == [0.2]
    assert store.read("other").num_rows == 0
    assert set(store.latest_status("exp").values()) == {"ok"}


def test_latest_attempt_wins_and_old_rows_are_kept(tmp_path):
    store = Store(str(tmp_path))
    store.append("exp", _table(SPECS[:1], status="failed", t=T0))
    store.append("exp", _table(SPECS[:1], value=7.0, t=T0 + timedelta(minutes=1)))
    latest = store.read("exp")
    assert latest["status"].to_pylist() == ["ok"] and latest["loss"].to_pylist() == [7.0]
    assert store.read("exp", latest=False).num_rows == 2  # history is not lost


def test_files_written_by_different_schemas_unify(tmp_path):
    store = Store(str(tmp_path))
    store.append("exp", _table(SPECS[:1], status="failed"))   # no loss column at all
    store.append("exp", _table(SPECS[1:2]))
    table = store.read("exp")
    assert table.num_rows == 2 and None in table["loss"].to_pylist()


def test_unified_column_order_does_not_depend_on_which_file_came_first(tmp_path):
    # Shards of one experiment measure different things (census: one architecture counts
    # candidates, another NPN classes); the table read back must not change with the order
    # in which the units happened to finish.
    def shard(spec, measures):
        result = TrialResult(spec.id, "ok", T0, T0 + timedelta(seconds=1), rows=[measures])
        return build_table([spec], [result], PROV)

    a, b = shard(SPECS[0], {"candidates": 3}), shard(SPECS[1], {"classes": "0 1"})
    together = [pa.concat_tables(pair, promote_options="permissive") for pair in ((a, b), (b, a))]
    orders = []
    for files in ([a, b], [b, a], together[:1], together[1:]):
        store = Store(str(tmp_path / f"{len(orders)}"))
        for table in files:
            store.append("exp", table)
            time.sleep(0.01)  # file names follow time
        orders.append(store.read("exp").column_names)
    assert all(order == orders[0] for order in orders), orders
    assert {"candidates", "classes"} <= set(orders[0])


def test_hidden_temporary_files_are_never_read(tmp_path):
    store = Store(str(tmp_path))
    store.append("exp", _table(SPECS[:1]))
    (tmp_path / "exp" / ".tmp-123-part.parquet").write_bytes(b"PAR1 half a file")
    assert store.read("exp").num_rows == 1


def test_a_crash_while_writing_leaves_no_file(tmp_path, monkeypatch):
    def crash(table, where, **kw):
        with open(where, "wb") as fh:
            fh.write(b"PAR1 partial")
        raise KeyboardInterrupt  # the process dies mid-write
    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(KeyboardInterrupt):
        write_table_atomic(pa.table({"x": [1]}), tmp_path / "out.parquet")
    assert list(tmp_path.iterdir()) == []


def test_file_uri_and_duckdb_query(tmp_path):
    import duckdb

    store = Store(f"file://{tmp_path}")
    store.append("exp", _table(SPECS))
    assert Store(str(tmp_path)).read("exp").num_rows == 3
    rows = duckdb.sql(
        f"SELECT lr, loss, status FROM read_parquet('{tmp_path}/exp/*.parquet', "
        f"union_by_name=true) ORDER BY lr").fetchall()
    assert rows == [(0.1, 1.0, "ok"), (0.2, 1.0, "ok"), (0.3, 1.0, "ok")]


def test_bad_experiment_names_and_empty_tables(tmp_path):
    store = Store(str(tmp_path))
    with pytest.raises(ValueError):
        store.append("../escape", _table(SPECS[:1]))
    with pytest.raises(ValueError, match="empty"):
        store.append("exp", _table(SPECS[:1]).slice(0, 0))
