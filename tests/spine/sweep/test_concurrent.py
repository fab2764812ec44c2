"""Two drivers sweep overlapping trials into one store at the same time, while a
compaction runs: every trial stored, every file whole, no trial run twice by one driver."""

from __future__ import annotations

import threading
from collections import Counter

import pyarrow.parquet as pq
import pytest

from theorydl import stages
from theorydl.params import parse_params
from theorydl.spine.store.store import Store

pytestmark = pytest.mark.slow


def test_two_drivers_with_overlapping_sweeps_and_a_compaction(ray_local, toy, tmp_path):
    store_root = str(tmp_path / "store")
    sweeps = {"a": list(range(0, 12)), "b": list(range(6, 18))}  # 6 trials in common
    results: dict[str, dict] = {}
    errors: list[BaseException] = []

    def driver(name: str) -> None:
        runs = tmp_path / f"runs-{name}"
        runs.mkdir()
        params = parse_params({
            "run": {"store": store_root, "progress": "off"},
            "toy": {"values": sweeps[name], "sleep": 0.05, "runs_dir": str(runs),
                    "trials_path": str(tmp_path / f"{name}.parquet")}})
        try:
            results[name] = stages.train(params, "toy")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=driver, args=(n,)) for n in sweeps]
    for t in threads:
        t.start()
    store = Store(store_root)
    while any(t.is_alive() for t in threads):
        store.compact("toy")
    for t in threads:
        t.join()
    assert not errors, errors

    every = set(sweeps["a"]) | set(sweeps["b"])
    for path in store.files("toy"):
        pq.read_table(path)  # whole and readable
    latest = store.read("toy")
    assert set(latest["value"].to_pylist()) == every
    assert set(latest["status"].to_pylist()) == {"ok"}
    # Each trial's rows come from one attempt: three long-form rows, no duplicates.
    ids = latest["trial_id"].to_pylist()
    assert Counter(ids) == {t: 3 for t in set(ids)}
    for name, values in sweeps.items():
        runs = Counter(p.name.split("-")[0] for p in (tmp_path / f"runs-{name}").iterdir())
        assert max(runs.values(), default=1) == 1, f"driver {name} ran a trial twice"
        assert results[name]["planned"] == len(values)
        assert results[name]["cached"] + results[name]["ran"] == len(values)
        # Each driver's stage output holds its whole sweep.
        assert sorted(set(pq.read_table(tmp_path / f"{name}.parquet")["value"].to_pylist())) \
            == values
    # Every attempt ever made is stored once: as many attempts as runs, across drivers.
    attempts = store.read("toy", latest=False)
    n_runs = sum(1 for n in sweeps for _ in (tmp_path / f"runs-{n}").iterdir())
    assert len(set(attempts["attempt_id"].to_pylist())) == n_runs
    assert attempts.num_rows == 3 * n_runs
