"""The driver's writer thread: units that finish close together share one file, and a
trial is counted only once its rows are stored."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from theorydl.spine.spec import TrialSpec
from theorydl.spine.store.rows import TrialResult, build_table
from theorydl.spine.store.store import Store
from theorydl.spine.sweep.executor import _Writer
from theorydl.spine.sweep.progress import SweepProgress

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _unit_table(k: int, status: str = "ok"):
    spec = TrialSpec("exp", 1, {"k": k}, swept=("k",))
    rows = [] if status == "failed" else [{"y": float(k)}]
    return build_table([spec], [TrialResult(spec.id, status, T0, T0, rows=rows)], {})


class GatedStore(Store):
    """A store whose appends wait for a gate, and that records each append's size."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.gate, self.entered, self.sizes = threading.Event(), threading.Event(), []

    def append(self, experiment, table):
        self.entered.set()
        assert self.gate.wait(30)
        self.sizes.append(table.num_rows)
        return super().append(experiment, table)


def test_units_finishing_during_a_write_share_the_next_file(tmp_path):
    store = GatedStore(str(tmp_path))
    writer = _Writer(store, "exp", SweepProgress("exp", 6, mode="off"))
    writer.put(_unit_table(0))
    assert store.entered.wait(30)  # the first write has started and is held
    for k in range(1, 5):
        writer.put(_unit_table(k))
    writer.put(_unit_table(5, "failed"))  # another schema: no measurement column
    assert writer.ok == writer.failed == 0  # nothing counted before it is stored
    store.gate.set()
    writer.close()
    assert store.sizes == [1, 5] and len(store.files("exp")) == 2
    assert (writer.ok, writer.failed, writer.diverged) == (5, 1, 0)
    assert sorted(store.read("exp")["k"].to_pylist()) == list(range(6))


def test_a_failed_write_reaches_the_driver(tmp_path):
    class Broken(Store):
        def append(self, experiment, table):
            raise OSError("disk full")

    writer = _Writer(Broken(str(tmp_path)), "exp", SweepProgress("exp", 1, mode="off"))
    writer.put(_unit_table(0))
    with pytest.raises(OSError, match="disk full"):
        writer.close()
    assert writer.ok == 0
