"""The theorydl command: validate, profile, status, exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import yaml

from theorydl.cli import main


def test_validate_ok_and_errors(repo_root, tmp_path, capsys):
    assert main(["-p", str(repo_root / "params.yaml"), "validate"]) == 0
    assert "ok" in capsys.readouterr().out
    bad = tmp_path / "params.yaml"
    bad.write_text("census: [")
    assert main(["-p", str(bad), "validate"]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_unknown_experiment_is_a_clear_error(repo_root, capsys):
    assert main(["-p", str(repo_root / "params.yaml"), "train", "nope"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err and "'census'" in err
    assert main(["plan", "nope", "-p", str(repo_root / "params.yaml")]) == 2
    assert "unknown experiment 'nope'" in capsys.readouterr().err


def test_version_help_and_options_after_the_subcommand(repo_root, capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("theorydl 0.")
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "one of: census" in out and "--rerun" in out and "-p PARAMS" in out
    assert main(["--help"]) == 0
    assert "theorydl plan" in capsys.readouterr().out  # the usage examples
    assert main(["validate", "-q", "-p", str(repo_root / "params.yaml")]) == 0


def test_status_without_a_study_is_one_table_of_every_study(repo_root, tmp_path, capsys,
                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)  # no study's outputs here, whatever the checkout holds
    data = yaml.safe_load((repo_root / "params.yaml").read_text())
    data["run"]["store"] = str(tmp_path / "store")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["status", "-p", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["study", "asked", "cached", "failed", "to"]
    from theorydl.spine import registry

    assert [ln.split()[0] for ln in lines[1:1 + len(registry.names())]] == registry.names()
    assert main(["status", "--json", "-p", str(path)]) == 0
    rows = {r["study"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["census"]["to_run"] == rows["census"]["asked"] > 0
    assert rows["census"]["why"] == "not analysed yet"


def test_profile_keeps_comments_and_validates(repo_root, tmp_path):
    shutil.copy(repo_root / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(repo_root / "profiles", tmp_path / "profiles")
    (tmp_path / "profiles" / "bad.yaml").write_text("census:\n  n_inputs: [7]\n")
    run = lambda *a: subprocess.run([sys.executable, "-m", "theorydl", *a], cwd=tmp_path,  # noqa: E731
                                    capture_output=True, text=True, timeout=60)
    before = (tmp_path / "params.yaml").read_text()
    assert run("profile", "bad").returncode == 2
    assert (tmp_path / "params.yaml").read_text() == before
    assert run("profile", "test").returncode == 0
    after = (tmp_path / "params.yaml").read_text()
    assert "# Trial cache" in after
    expected = yaml.safe_load((repo_root / "profiles" / "test.yaml").read_text())
    assert yaml.safe_load(after)["census"]["n_inputs"] == expected["census"]["n_inputs"]


def test_profile_only_merges_the_named_sections(repo_root, tmp_path):
    shutil.copy(repo_root / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(repo_root / "profiles", tmp_path / "profiles")
    run = lambda *a: subprocess.run([sys.executable, "-m", "theorydl", *a], cwd=tmp_path,  # noqa: E731
                                    capture_output=True, text=True, timeout=60)
    before = yaml.safe_load((tmp_path / "params.yaml").read_text())
    paper = yaml.safe_load((repo_root / "profiles" / "paper.yaml").read_text())
    done = run("profile", "paper", "--only", "census")
    assert done.returncode == 0, done.stderr
    after = yaml.safe_load((tmp_path / "params.yaml").read_text())
    assert after["census"] == {**before["census"], **paper["census"]} != before["census"]
    assert {k: v for k, v in after.items() if k != "census"} == {
        k: v for k, v in before.items() if k != "census"}
    # A section the profile lacks is an error, and nothing is written.
    text = (tmp_path / "params.yaml").read_text()
    done = run("profile", "paper", "--only", "census", "nosuch")
    assert done.returncode == 2 and "'nosuch'" in done.stderr
    assert (tmp_path / "params.yaml").read_text() == text


def test_status_counts_the_cache(repo_root, tmp_path, capsys):
    data = yaml.safe_load((repo_root / "params.yaml").read_text())
    data["run"]["store"] = str(tmp_path / "store")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["-p", str(path), "status", "census"]) == 0
    out = capsys.readouterr().out
    from theorydl.params import load_params
    from theorydl.spine import registry

    census = registry.get("census")
    asked = len(census.trials(census.config(load_params(path))))
    assert asked > 12  # the threshold unit's 12 shards, and the networks' and formulas'
    assert f'"missing": {asked}' in out and f'"would_run": {asked}' in out


def test_plan_prints_each_study_and_why_its_forecast_is_unknown(repo_root, tmp_path, capsys):
    data = yaml.safe_load((repo_root / "params.yaml").read_text())
    data["run"]["store"] = str(tmp_path / "store")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["-p", str(path), "plan", "census", "ib"]) == 0
    out = capsys.readouterr().out
    head, census, ib = out.splitlines()[:3]
    assert head.split()[:4] == ["study", "asked", "cached", "to"]
    assert census.startswith("census") and "unknown" in census
    assert ib.startswith("ib") and "ib: no stored trial of ib on cpu" in out
    assert main(["-p", str(path), "plan", "--json", "census"]) == 0
    fc = json.loads(capsys.readouterr().out)["census"]
    assert fc["to_run"] == fc["asked"] > 0 and fc["wall_s"] is None
    assert main(["-p", str(path), "plan", "nosuch"]) == 2
