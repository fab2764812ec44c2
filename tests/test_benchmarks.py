"""Smoke tests of the benchmark scripts: they run end to end on tiny settings."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_stacks_compares_every_way_on_both_families(capsys):
    load_script("stacks").main(["--quick", "--models", "3", "--epochs", "1", "--cnn-epochs", "1"])
    out = capsys.readouterr().out
    assert out.count("torch.func recipe") >= 2 and "small CNNs" in out and "IB networks" in out
    # Every way trained the same models: weights agree with the lone runs' to rounding.
    for line in out.splitlines():
        if line.startswith("max |weight difference|"):
            values = [float(part.split()[-1]) for part in line.split(": ", 1)[1].split(", ")]
            assert max(values) < 1e-5, line
    assert out.strip().splitlines()[-1].startswith("speedup: ")


def test_families_tables_every_family_and_ends_with_the_min_ratio(capsys):
    import re

    script = load_script("families")
    script.main(["--quick"])
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("family "))
    check = next(i for i, line in enumerate(lines) if line.startswith("check: "))
    # The table (after its header and rule, up to the check) has every family once.
    assert sorted(line.split()[0] for line in lines[header + 2 : check]) == sorted(script.FAMILIES)
    # Stacked and the recipe trained the same models as one at a time.
    assert ": ok (" in lines[check], lines[check]
    match = re.fullmatch(r"families: min stack/recipe (\d+\.\d+)x \((\w+)\)", lines[-1])
    assert match and match.group(2) in script.FAMILIES, lines[-1]


def test_gpu_check_smoke_runs_every_section_and_writes_json(tmp_path, capsys):
    import json

    out = tmp_path / "gpu_check.json"
    load_script("gpu_check").main(["--smoke", "--out", str(out)])
    results = json.loads(out.read_text())
    sections = ("environment", "parity", "host_syncs", "ib_scaling", "ib_paper", "width", "dqn")
    assert all(name in results for name in sections)
    assert results["host_syncs"]["per_training_step"] == 0
    # Same device on both sides in the smoke run: parity must be exact.
    assert results["parity"]["binning_max_diff_bits"] == 0.0
    assert results["parity"]["max_weight_diff_after_1_epochs"] == 0.0
    assert [r["models"] for r in results["ib_scaling"]["rows"]] == [1, 3]
    assert {r["optimizer"] for r in results["width"]["rows"]} == {"sgd", "pathsgd", "adam"}
    assert results["dqn"]["counts"]["updates"] > 0
def test_spine_smoke_prints_each_measure_beside_its_reference():
    """In a process of its own: the benchmark starts (and stops) Rays of its own."""
    import subprocess

    proc = subprocess.run([sys.executable, str(BENCHMARKS / "spine.py"), "--smoke"],
                          capture_output=True, text=True, timeout=1200,
                          cwd=BENCHMARKS.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "lookup: 1000 trials in 20 files" in out and "lookup after compaction (1 files" in out
    assert "bare Ray tasks" in out and "simulated GPUs" in out and "slots busy" in out
    assert "(bare Ray actors" in out and "until all 2 slot workers ran one" in out
