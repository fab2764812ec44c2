"""`dvc repro` end to end, in a temporary copy of the repository, on the test profile."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dvcwork import FAKE_KEY, make_workspace
from dvcwork import all_content as _all_content
from dvcwork import content as _content
from dvcwork import differences as _differences
from dvcwork import explain as _explain
from dvcwork import sh as _sh
from dvcwork import stages as _stages

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(repo_root, tmp_path_factory):
    """A git + DVC repository holding the project's files, on the test profile."""
    return make_workspace(repo_root, tmp_path_factory.mktemp("repo"))


def test_repro_then_nothing_then_only_new_trials(workspace):
    work, env = workspace
    out = _sh(["dvc", "repro"], work, env)
    assert re.search(r"census: (\d+) trials asked for, 0 cached, \1 to run", out), out
    assert "ib: 8 trials asked for, 0 cached, 8 to run" in out, out
    for rel in ("data/census/domains.parquet", "results/census/trials.parquet",
                "results/census/census.csv", "figures/census.png", "plots/census.csv",
                "report/index.html", "data/ib/dataset.parquet", "results/ib/trials.parquet",
                "figures/ib_plane.png", "figures/ib_snr.png", "figures/ib_depth.png",
                "figures/ib_epochs.png", "plots/ib_plane_tanh.csv", "plots/ib_plane_relu.csv",
                "plots/ib_depth.csv",
                "results/samdp/trials.parquet", "plots/samdp_criteria.csv",
                "figures/samdp/breakout_seed0_samdp.png", "metrics/samdp.json",
                "data/width/dataset.npz", "results/width/best_lr.json",
                "results/width/search_trials.parquet", "results/width/trials.parquet",
                "plots/width_curve.csv", "figures/width_error.png", "figures/width_search.png"):
        assert (work / rel).stat().st_size > 0, rel
    metrics = json.loads((work / "metrics/census.json").read_text())
    assert metrics["threshold"]["n_realizable"] == {"0": 2, "1": 4, "2": 14}
    assert metrics["threshold"]["matches_published"] is True
    report = (work / "report/index.html").read_text()
    figures = [p for p in (work / "figures").rglob("*.png")]
    assert report.count("<img") >= 14 and len(figures) >= 14
    assert report.index("<h2 id=claims>Claims</h2>") < report.index("<h2 id='census'>census</h2>")
    from theorydl.spine import registry

    for name in registry.names():
        assert f"<h2 id='{name}'>{name}</h2>" in report, name
    # The width search: 2 optimizers x 2 widths, 2 points each; then the final sweep
    # (2 optimizers x 2 inits x 2 widths x 2 seeds) at the learning rates it found.
    assert "width: 8 trials asked for, 0 cached, 8 to run" in out, out
    assert "width: 16 trials asked for, 0 cached, 16 to run" in out, out
    best = json.loads((work / "results/width/best_lr.json").read_text())["best"]
    assert set(best) == {f"{o}/d1/w{w}/noise0" for o in ("sgd", "pathsgd") for w in (4, 64)}
    width = json.loads((work / "metrics/width.json").read_text())
    assert {"sgd_balanced_depth1", "pathsgd_unbalanced_depth1"} <= set(width)
    ib = json.loads((work / "metrics/ib.json").read_text())
    assert ib["trials"] == {"ok": 8} and set(ib) == {"trials", "tanh", "relu", "claims"}
    # Every declared claim has its entry; those meaningful at the test profile have a
    # verdict (their metric paths exist), the others at least their measured value
    # where the test profile measures them.
    from theorydl.spine import registry

    for name in registry.names():
        claims = json.loads((work / f"results/{name}/claims.json").read_text())
        numbers = json.loads((work / f"metrics/{name}.json").read_text())["claims"]
        assert set(numbers) == set(claims), name
        assert set(claims) == {c.id for c in registry.get(name).claims}, name
        for claim in registry.get(name).claims:
            if claim.profile == "test":
                assert claims[claim.id]["verdict"] != "not checkable at this scale", claim.id
                assert numbers[claim.id]["reproduced"] in (0, 1), claim.id
    assert json.loads((work / "results/census/claims.json").read_text())[
        "threshold_n2"]["verdict"] == "reproduced"
    assert ib["claims"]["relu_does_not_compress_kde_upper"]["measured"] is not None

    shown = _sh(["dvc", "metrics", "show", "--json"], work, env)
    assert '"n_realizable"' in shown and "14" in shown
    assert '"reproduced": 1' in shown

    def strings(value, path=""):
        if isinstance(value, dict):
            return [s for k, v in value.items() for s in strings(v, f"{path}.{k}")]
        if isinstance(value, list):
            return [s for i, v in enumerate(value) for s in strings(v, f"{path}[{i}]")]
        return [f"{path} = {value!r}"] if isinstance(value, str) else []

    assert strings(json.loads(shown)) == []  # numbers only: `dvc metrics diff` diffs no prose
    plots = _sh(["dvc", "plots", "show", "--json"], work, env)
    assert "log2_threshold" in plots and "learned_per_expressible" in plots
    assert "test_error_pathsgd" in plots

    again = _sh(["dvc", "repro"], work, env)
    assert "Data and pipelines are up to date" in again, again
    assert "to run" not in again

    # One census key changed: only the trials it adds run (N = 3: 256 functions / 64).
    _sh(["git", "add", "-A"], work, env)
    _sh(["git", "commit", "-qm", "first run"], work, env)
    exp = _sh(["dvc", "exp", "run", "-S", "census.n_inputs=[0,1,2,3]"], work, env)
    counts = re.search(r"census: (\d+) trials asked for, (\d+) cached, (\d+) to run", exp)
    assert counts and int(counts[2]) > 0 and int(counts[3]) == 4, exp  # N = 3's 4 shards
    assert "Stage 'ib_train' didn't change" in exp and "ib: " not in exp
    assert "Stage 'samdp_train' didn't change" in exp
    assert "Stage 'width_search' didn't change" in exp and "width: " not in exp
    metrics = json.loads((work / "metrics/census.json").read_text())
    assert metrics["threshold"]["n_realizable"]["3"] == 104


def test_push_then_pull_gives_a_colleague_every_output_without_training(workspace, tmp_path):
    work, env = workspace
    _sh(["dvc", "repro"], work, env)  # no-op when the first test ran; else the whole run
    _sh(["dvc", "remote", "add", "-d", "shared", str(tmp_path / "remote")], work, env)
    _sh(["git", "add", "-A"], work, env)
    _sh(["git", "commit", "-qm", "results and remote", "--allow-empty"], work, env)
    _sh(["dvc", "push"], work, env)

    colleague = tmp_path / "colleague"
    _sh(["git", "clone", "-q", str(work), str(colleague)], tmp_path, env)
    assert not (colleague / "figures").exists()
    _sh(["dvc", "pull"], colleague, env)
    for rel in ("figures/census.png", "figures/ib_plane.png", "metrics/ib.json",
                "plots/census.csv", "results/samdp/trials.parquet", "report/index.html"):
        assert (colleague / rel).read_bytes() == (work / rel).read_bytes(), rel
    status = _sh(["dvc", "status"], colleague, env)
    assert "up to date" in status, status  # nothing to train: every stage is current
    assert "log2_threshold" in _sh(["dvc", "plots", "show", "--json"], colleague, env)


def test_no_secret_lands_in_the_store_outputs_or_logs(workspace):
    work, env = workspace
    log = _sh(["dvc", "repro", "-f", "census_train"], work, env)
    assert FAKE_KEY not in log
    needle = FAKE_KEY.encode()
    scanned = 0
    for path in work.rglob("*"):
        if path.is_file() and ".git" not in path.parts:
            assert needle not in path.read_bytes(), path
            scanned += 1
    assert scanned > 20 and any((work / ".theorydl" / "store").rglob("*.parquet"))


#: Malformed params files (a change to the test profile's params.yaml) and what the
#: error must name. Each kind: an unknown section, an unknown key in a section whose
#: stages read only some keys (report) or none of the changed one, a wrong type, a value
#: out of range, a bad nested key, an impossible width, broken YAML.
MALFORMED = [
    ("\ncensus:\n", "\nwidht: {}\ncensus:\n", "widht"),
    ("  path: report/index.html", "  path: report/index.html\n  pth: x", "report.pth"),
    ("functions_per_unit: 64", "functions_per_unit: -64", "census.functions_per_unit"),
    ("activations: [tanh, relu]", "activations: [tanh, swish]", "ib.activations"),
    ("  lr: 0.0004", "  lr: fast", "ib.lr"),
    ("  n_log_epochs: 8", "  n_log_epochs: 8\n  epoch: 3", "ib.epoch"),
    ("rerun: failed", "rerun: sometimes", "run.rerun"),
    ("widths: [4, 64]", "widths: [0, 64]", "width.widths"),
    ("    total_steps: 400", "    total_steps: 0", "samdp.dqn.total_steps"),
    ("  n_seeds: 2\n  # Learning rates", "  n_seeds: [2\n  # Learning rates", "params.yaml"),
]


def _outputs(work: Path) -> dict[str, bytes]:
    """Every file the stages wrote, and dvc.lock, by content."""
    import hashlib

    found = {}
    for folder in ("data", "results", "metrics", "figures", "plots", "report"):
        for path in sorted((work / folder).rglob("*")):
            if path.is_file():
                found[str(path.relative_to(work))] = hashlib.sha256(path.read_bytes()).digest()
    found["dvc.lock"] = hashlib.sha256((work / "dvc.lock").read_bytes()).digest()
    return found


def test_malformed_params_stop_dvc_repro_before_any_output_changes(workspace):
    # A `validate` stage over the whole file runs first (every stage depends on its
    # output, which persists): whatever the mistake, no stage deletes or writes anything.
    work, env = workspace
    # The test profile as written (`dvc exp run -S` of an earlier test rewrites the file
    # in its own YAML style), then up to date.
    first = _sh(["git", "rev-list", "--max-parents=0", "HEAD"], work, env).strip()
    (work / "params.yaml").write_text(_sh(["git", "show", f"{first}:params.yaml"], work, env))
    _sh(["dvc", "repro"], work, env)
    before = _outputs(work)
    assert "results/params.valid" in before and len(before) > 20
    params = (work / "params.yaml").read_text()
    try:
        for old, new, needle in MALFORMED:
            assert params.count(old) == 1, old
            (work / "params.yaml").write_text(params.replace(old, new))
            proc = subprocess.run(["dvc", "repro"], cwd=work, env=env, capture_output=True,
                                  text=True, timeout=1800)
            said = proc.stdout + proc.stderr
            assert proc.returncode != 0, (needle, said)
            assert needle in said, (needle, said)
            assert "Running stage 'validate'" in said or needle == "params.yaml", said
            assert _outputs(work) == before, needle
    finally:
        (work / "params.yaml").write_text(params)
    # Valid again: the validation re-runs, its output is the same, nothing else runs.
    out = _sh(["dvc", "repro"], work, env)
    assert _outputs(work) == before
    assert "Running stage" not in out.replace("Running stage 'validate'", ""), out


def _changed(work, env) -> set[str]:
    return set(json.loads(_sh(["dvc", "status", "--json"], work, env)))


def test_caches_rerun_nothing_and_a_key_reruns_only_its_readers(workspace):
    work, env = workspace
    _sh(["dvc", "repro"], work, env)  # no-op when the first test ran; else the whole run
    # What `make test` leaves next to the code (.dvcignore keeps it out of every dep).
    for folder in ("theorydl", "theorydl/nn", "pipelines"):
        (work / folder / "__pycache__").mkdir(exist_ok=True)
        (work / folder / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0cache")
    (work / "theorydl" / ".pytest_cache").mkdir(exist_ok=True)
    assert _changed(work, env) == set()

    params, dvc_yaml = (work / "params.yaml").read_text(), (work / "dvc.yaml").read_text()
    try:
        # A figure moved: dvc.yaml regenerated names it; only its writer and the report.
        (work / "params.yaml").write_text(params.replace(
            "\nib:\n", "\nib:\n  paths:\n    figure_plane: figures/moved/ib_plane.png\n", 1))
        _sh([sys.executable, "-m", "theorydl.dvcgen"], work, env)
        assert _changed(work, env) == {"validate", "ib_analyze", "report"}
        # An analysis-only key: the analysis and the report, never the training.
        (work / "params.yaml").write_text(params.replace("label_info_fraction: 0.95",
                                                         "label_info_fraction: 0.9"))
        _sh([sys.executable, "-m", "theorydl.dvcgen"], work, env)
        assert _changed(work, env) == {"validate", "ib_analyze", "report"}
    finally:
        (work / "params.yaml").write_text(params)
        (work / "dvc.yaml").write_text(dvc_yaml)
    assert _changed(work, env) == set()
    # Code: a figure edit re-runs its study's analysis only, never a training; an engine
    # edit re-runs trainings (served from the trial cache), never the IB analysis.
    for path, check in (
            ("theorydl/studies/ib/figures.py", lambda c: c == {"ib_analyze"}),
            ("theorydl/nn/stack.py", lambda c: "ib_train" in c and "ib_analyze" not in c)):
        code = (work / path).read_text()
        try:
            (work / path).write_text(code + "\n# an edit\n")
            changed = _changed(work, env)
            assert check(changed), (path, changed)
        finally:
            (work / path).write_text(code)




# ------------------------------------------------ state outside DVC: forced, lost, killed
# (The trial store lost, and both kinds of state lost with dvc repro killed on the way:
# test_dvc_state.py, in a workspace of its own.)


def test_a_forced_search_and_a_lost_store_still_write_the_search_table(workspace, tmp_path):
    # DVC deletes a stage's outputs before running it, and the journal says the search
    # is complete: the stage must write its table anyway (from the journal and the
    # store), and when the store is lost too, train the journal's points again.
    work, env = workspace
    _sh(["dvc", "repro"], work, env)
    search = work / "results" / "width" / "search_trials.parquet"
    before = _content(search)
    _sh(["dvc", "repro", "-f", "-s", "width_search"], work, env)
    assert _content(search) == before
    store, kept = work / ".theorydl" / "store", tmp_path / "store"
    shutil.move(store, kept)
    try:
        out = _sh(["dvc", "repro", "-f", "-s", "width_search"], work, env)
        assert re.search(r"width: \d+ trials asked for, 0 cached", out), out
        assert _content(search) == before
        _sh(["dvc", "repro"], work, env)
    finally:
        shutil.rmtree(store, ignore_errors=True)
        shutil.move(kept, store)


def test_every_stage_survives_a_forced_rerun_and_lost_journals(workspace):
    # Each stage, its outputs deleted by DVC and run again over the full trial cache:
    # same outputs, and the pipeline is up to date after (the stages come from dvc.yaml,
    # so a new stage is covered without editing this test). One `dvc repro -f -s` names
    # them all: DVC forces each one alone, in pipeline order. The search journals are
    # deleted first (the search stage is their only reader): the search replays its
    # points from the cache, and its table and best rates come out the same.
    work, env = workspace
    _sh(["dvc", "repro"], work, env)
    before = _all_content(work)
    stages = _stages(work)
    assert {"validate", "report", "width_search", "census_train"} <= set(stages)
    shutil.rmtree(work / ".theorydl" / "optuna")
    out = _sh(["dvc", "repro", "-f", "-s", *stages], work, env, timeout=1800)
    assert "to run" in out and not re.search(r": \d+ trials asked for, \d+ cached, [1-9]", out)
    after = _all_content(work)
    assert _differences(after, before) == [], _explain(after, before)
    again = _sh(["dvc", "repro"], work, env)
    assert "Data and pipelines are up to date" in again, again
