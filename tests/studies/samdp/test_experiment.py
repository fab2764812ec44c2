"""The SAMDP experiment: one tiny agent, its stored recording and checkpoint, the analysis."""

from __future__ import annotations

import json

import numpy as np
import pytest

from theorydl.params import load_params, parse_params
from theorydl.spine.claims import as_metrics
from theorydl.spine.config import ConfigError, merge, read_yaml
from theorydl.spine.store.rows import build_table
from theorydl.studies.samdp.experiment import SAMDPExperiment
from theorydl.studies.samdp.recording import checkpoint_from_rows, recording_from_rows


@pytest.fixture(scope="module")
def trial(repo_root, tmp_path_factory):
    """The test profile's single (breakout, seed 0) trial, run in-process, as a table."""
    out = tmp_path_factory.mktemp("samdp")
    cfg = load_params(repo_root / "params.yaml",
                      read_yaml(repo_root / "profiles" / "test.yaml")).samdp
    paths = {k: str(out / v.split("/")[-1]) for k, v in cfg.paths.model_dump().items()}
    cfg = cfg.model_copy(update={"paths": cfg.paths.model_copy(update=paths)})
    exp = SAMDPExperiment()
    specs = exp.trials(cfg)
    (result,) = exp.run_unit(exp.units(specs, cfg)[0], cfg)
    assert result.status == "ok", result.error
    return exp, cfg, build_table(specs, [result], {})


def test_rows_hold_checkpoint_episodes_and_steps(trial):
    _, cfg, table = trial
    kinds = table["kind"].to_pylist()
    assert kinds.count("checkpoint") == 1 and kinds.count("step") == cfg.record.steps
    assert kinds.count("train_episode") >= 1
    rec = recording_from_rows(table)
    assert rec["hidden"].shape == (cfg.record.steps, cfg.dqn.hidden)
    assert np.allclose(rec["value"], rec["q_values"].max(axis=1))
    assert rec["frames"].shape[:3] == (cfg.record.steps, 10, 10)


def test_checkpoint_reloads_weights_only_and_reproduces_the_recording(trial):
    import torch

    from theorydl.rl import DQNConfig, build_network

    _, _, table = trial
    state, dqn = checkpoint_from_rows(table)
    rec = recording_from_rows(table)
    net = build_network(DQNConfig.from_dict({**dqn, "conv_channels": tuple(dqn["conv_channels"]),
                                             "conv_kernels": tuple(dqn["conv_kernels"]),
                                             "conv_strides": tuple(dqn["conv_strides"])}),
                        (rec["frames"].shape[3], 10, 10), rec["q_values"].shape[1])
    net.load_state_dict(state)
    obs = torch.as_tensor(rec["frames"][:20], dtype=torch.float32).permute(0, 3, 1, 2)
    with torch.no_grad():
        q, hidden = net(obs, return_hidden=True)
    assert np.allclose(q.numpy(), rec["q_values"][:20], atol=1e-5)
    assert np.allclose(hidden.numpy(), rec["hidden"][:20], atol=1e-5)


def test_analysis_writes_metrics_criteria_and_figures(trial, figures_fit):
    from pathlib import Path

    exp, cfg, table = trial
    metrics = exp.write_analysis(exp.analyze(table, cfg, params=None), cfg)
    m = metrics["breakout"]["seed_0"]
    assert m["k"] in cfg.analysis.ks and m["record_episodes"] >= 1
    assert m["vmse"] is None or m["vmse"] >= 0
    assert json.loads(Path(cfg.paths.claims).read_text()) == metrics["claims"]
    assert json.loads(Path(cfg.paths.metrics).read_text()) == {
        **metrics, "claims": as_metrics(metrics["claims"])}
    header = Path(cfg.paths.criteria).read_text().splitlines()[0].split(",")
    assert {"k", "vmse_spatiotemporal", "vmse_plain", "entropy_spatiotemporal"} <= set(header)
    pngs = sorted(p.name for p in Path(cfg.paths.figures).glob("*.png"))
    assert pngs == [f"breakout_seed0_{n}.png" for n in ("criteria", "frames", "samdp", "tsne")]
    assert Path(cfg.paths.figure_greedy).is_file()
    figures_fit(Path(cfg.paths.figures).parent)  # the folder's PNGs and the greedy figure
    assert set(exp.outputs(cfg)) >= {"metrics", "breakout_seed0_samdp", "figure_greedy"}
    assert set(metrics["claims"]) == {c.id for c in exp.claims}


def test_analysis_writes_nothing(trial, tmp_path):
    """The analysis is pure: the spine writes its plot data, figures and metrics."""
    from theorydl.studies.samdp import analysis

    _, cfg, table = trial
    empty = tmp_path / "out"
    empty.mkdir()
    paths = {k: str(empty / v.split("/")[-1]) for k, v in cfg.paths.model_dump().items()}
    cfg = cfg.model_copy(update={"paths": cfg.paths.model_copy(update=paths)})
    result = analysis.analyze(table, cfg)
    assert list(empty.iterdir()) == []
    assert set(result.plots) == {"criteria"} and "breakout" in result.metrics


@pytest.mark.parametrize("patch, key", [
    ({"games": ["pong"]}, "unknown game 'pong'"), ({"games": []}, "samdp.games"),
    ({"analysis": {"ks": [1, 4]}}, "samdp.analysis.ks"),
    ({"dqn": {"total_steps": 0}}, "samdp.dqn.total_steps"),
    ({"backend": "gym"}, "samdp.backend"),
])
def test_bad_samdp_params(repo_root, patch, key):
    data = merge(read_yaml(repo_root / "params.yaml"), {"samdp": patch})
    with pytest.raises(ConfigError, match=key):
        parse_params(data)
