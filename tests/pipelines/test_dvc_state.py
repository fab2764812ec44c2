"""`dvc repro` killed, and the state that lives outside DVC (the trial store, the search
journals) lost, in a workspace of its own on the test profile (so that it runs beside
test_dvc_repro.py under `pytest -n 2`).

The first test's killed-then-resumed run is checked against the second's: an undisturbed,
forced run over a new, empty store and no journals. (Every stage forced with the state
intact, the journals alone lost, and the store alone lost under the one stage that reads
both: test_dvc_repro.py.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time

import pyarrow.compute as pc
import pytest
from dvcwork import all_content, differences, explain, kill_tree, make_workspace, set_store, sh

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(repo_root, tmp_path_factory):
    """A git + DVC repository holding the project's files, on the test profile."""
    return make_workspace(repo_root, tmp_path_factory.mktemp("state"))


@pytest.fixture(scope="module")
def killed_run(workspace):
    """The outputs of a `dvc repro` killed at several points and run again each time.

    SIGKILL goes to the process group and to every process dvc started (Ray's daemons
    included), once in a training, once in another, once in the first search round; the
    workspace starts with no trial store, no journals and no dvc.lock. Checked: the last
    run completes, and no trial is stored twice with status ok."""
    from theorydl.spine import registry
    from theorydl.spine.store.store import Store

    work, env = workspace
    kill_points = ["Running stage 'ib_train'", "Running stage 'samdp_train'",
                   "width search: round 1"]
    for point in kill_points:
        proc = subprocess.Popen(["dvc", "repro"], cwd=work, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        seen = threading.Event()

        def watch(proc=proc, point=point, seen=seen):
            for line in proc.stdout:
                if point in line:
                    seen.set()

        threading.Thread(target=watch, daemon=True).start()
        deadline = time.monotonic() + 1500
        try:
            while not seen.wait(timeout=0.5):
                assert proc.poll() is None, f"dvc repro ended before {point!r}"
                assert time.monotonic() < deadline, f"no {point!r} in 1500 s"
            time.sleep(2.0)  # well into the stage: some units stored, some running
        finally:
            kill_tree(proc.pid)
            proc.wait(timeout=60)
    sh(["dvc", "repro"], work, env, timeout=1800)
    store = Store(str(work / ".theorydl" / "store"))
    for name in registry.names():
        rows = store.read(name, columns=["status"], latest=False)
        assert rows.num_rows, name
        ok = rows.filter(pc.equal(rows["status"], "ok"))
        pairs = {(t, a) for t, a in zip(ok["trial_id"].to_pylist(),
                                        ok["attempt_id"].to_pylist())}
        trials = [t for t, _ in pairs]
        assert len(trials) == len(set(trials)), name
    return all_content(work)


def test_a_killed_dvc_repro_resumes_and_is_then_up_to_date(workspace, killed_run):
    work, env = workspace
    assert killed_run["report/index.html"] and "results/width/search_trials.parquet" in killed_run
    again = sh(["dvc", "repro"], work, env)
    assert "Data and pipelines are up to date" in again, again


def test_both_kinds_of_state_lost_between_two_forced_runs(workspace, killed_run):
    # The store moved to a new, empty run.store and the journals deleted: `dvc repro -f`
    # trains every trial again and searches again, undisturbed, and every output equals
    # the killed-and-resumed run's.
    work, env = workspace
    shutil.rmtree(work / ".theorydl" / "optuna")
    params = set_store(work, ".theorydl/moved")
    try:
        out = sh(["dvc", "repro", "-f"], work, env, timeout=1800)
        for name in ("census", "ib", "samdp", "pooling"):
            assert re.search(rf"{name}: (\d+) trials asked for, 0 cached, \1 to run", out), name
        assert "width search: round 1" in out, out
        after = all_content(work)
        assert differences(after, killed_run) == [], explain(after, killed_run)
        again = sh(["dvc", "repro"], work, env)
        assert "Data and pipelines are up to date" in again, again
    finally:
        (work / "params.yaml").write_text(params)
