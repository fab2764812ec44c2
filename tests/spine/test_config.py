"""Params validation: every bad input is an error naming the file and the key path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from theorydl.params import load_params, parse_params
from theorydl.spine.config import ConfigError, merge, read_yaml


@pytest.fixture
def params_data(repo_root) -> dict:
    return read_yaml(repo_root / "params.yaml")


def _error(data: dict) -> str:
    with pytest.raises(ConfigError) as info:
        parse_params(data, source="p.yaml")
    return str(info.value)


def test_repo_params_and_profiles_are_valid(repo_root):
    params = load_params(repo_root / "params.yaml")
    assert params.census.n_inputs == [0, 1, 2, 3, 4]
    for profile in sorted((repo_root / "profiles").glob("*.yaml")):
        load_params(repo_root / "params.yaml", read_yaml(profile))


@pytest.mark.parametrize("patch, expected", [
    ({"census": {"n_inputz": [1]}}, "census.n_inputz"),                   # unknown key
    ({"census": {"n_inputs": "3"}}, "census.n_inputs"),                   # wrong type
    ({"census": {"n_inputs": [1, "2"]}}, "census.n_inputs[1]"),           # wrong item type
    ({"census": {"n_inputs": []}}, "census.n_inputs"),                    # empty grid
    ({"census": {"n_inputs": [3, 6]}}, "N = 6 cannot be enumerated"),     # too large
    ({"census": {"n_inputs": [-1]}}, "census.n_inputs"),                  # negative
    ({"census": {"functions_per_unit": -5}}, "census.functions_per_unit"),
    ({"census": {"architectures": ["perceptron"]}}, "unknown architecture 'perceptron'"),
    ({"run": {"rerun": "sometimes"}}, "run.rerun"),
    ({"run": {"ray": {"num_cpus": 0}}}, "run.ray.num_cpus"),
    ({"run": {"ray": {"max_retries": 1.5}}}, "run.ray.max_retries"),
])
def test_bad_values_name_the_key(params_data, patch, expected):
    message = _error(merge(params_data, patch))
    assert expected in message and "p.yaml" in message


def test_unknown_section_lists_the_known_ones(params_data):
    message = _error({**params_data, "cencus": {}})
    assert "'cencus'" in message and "census" in message


def test_every_error_is_reported_at_once(params_data):
    message = _error(merge(params_data, {"census": {"n_inputs": [], "functions_per_unit": 0}}))
    assert "census.n_inputs" in message and "census.functions_per_unit" in message


def test_unreadable_yaml_names_the_file(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("census:\n  n_inputs: [1, 2\n")
    with pytest.raises(ConfigError, match="params.yaml: not valid YAML"):
        load_params(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_params(tmp_path / "missing.yaml")


def test_duplicate_keys_are_rejected(tmp_path):
    dup = tmp_path / "params.yaml"
    dup.write_text("census:\n  n_inputs: [1]\n  n_inputs: [2]\n  architectures: [threshold]\n")
    with pytest.raises(ConfigError, match="duplicate key 'n_inputs'"):
        load_params(dup)


def test_missing_experiment_section_fails_only_when_used(params_data):
    params = parse_params({k: v for k, v in params_data.items() if k != "census"})
    with pytest.raises(ConfigError, match="no section 'census'"):
        params.section("census")


def test_merge_is_deep_and_does_not_mutate():
    base = {"a": {"b": 1, "c": [1]}, "d": 2}
    out = merge(base, {"a": {"b": 5}})
    assert out == {"a": {"b": 5, "c": [1]}, "d": 2} and base["a"]["b"] == 1


def test_cli_rejects_bad_params_before_any_compute_or_write(tmp_path, repo_root):
    data = read_yaml(repo_root / "params.yaml")
    data = merge(data, {"run": {"store": str(tmp_path / "store")},
                        "census": {"n_inputs": [2, 9]}})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    proc = subprocess.run([sys.executable, "-m", "theorydl", "-p", str(path), "train", "census"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert proc.returncode == 2
    assert f"{path}: census.n_inputs" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "store").exists() and not Path(tmp_path / "results").exists()
