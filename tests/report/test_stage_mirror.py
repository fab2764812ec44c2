"""The stages mirror to W&B only when params say so; offline runs land under wandb.dir."""

from __future__ import annotations

import pytest

from theorydl.params import load_params

pytestmark = pytest.mark.slow


def test_train_and_analyze_write_offline_runs_when_enabled(ray_local, repo_root, tmp_path,
                                                          monkeypatch):
    from theorydl import stages

    for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR",
                "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home"))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.chdir(tmp_path)  # every output left at its default path lands here too
    paths = {k: str(tmp_path / f"{k}.out") for k in ("domains", "trials", "table", "metrics",
                                                     "plot")}
    paths["figure"] = str(tmp_path / "census.png")
    params = load_params(repo_root / "params.yaml", {
        "run": {"store": str(tmp_path / "store"), "progress": "off"},
        "census": {"n_inputs": [0, 1, 2], "paths": paths},
        "wandb": {"enabled": True, "mode": "offline", "dir": str(tmp_path / "wb")}})
    stages.data(params, "census")
    stages.train(params, "census")
    stages.analyze(params, "census")
    runs = sorted((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2  # one run per stage
    assert any((run / "files" / "media" / "images").rglob("*.png") for run in runs)
    assert all(any(run.glob("run-*.wandb")) for run in runs)
