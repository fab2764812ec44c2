"""The IB experiment: sampling epochs, stacking, rows, divergence, and the analysis outputs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from theorydl.spine.claims import as_metrics
from theorydl.params import load_params
from theorydl.spine.config import merge, read_yaml
from theorydl.spine.store.rows import TrialResult, build_table
from theorydl.studies.ib.experiment import IB, IBConfig, log_epochs, train_ib_stack


@pytest.fixture
def cfg(repo_root, tmp_path) -> IBConfig:
    """The test profile's IB section, writing into tmp_path."""
    profile = read_yaml(repo_root / "profiles" / "test.yaml")
    base = load_params(repo_root / "params.yaml", profile).ib
    paths = {k: str(tmp_path / v) for k, v in base.paths.model_dump().items()}
    return base.model_copy(update={"paths": base.paths.model_copy(update=paths)})


@pytest.mark.parametrize("epochs, count", [(8000, 270), (30, 8), (5, 6), (1, 2), (100, 101)])
def test_log_epochs(epochs, count):
    e = log_epochs(epochs, count)
    assert len(e) == count == len(set(e)) and e[0] == 0 and e[-1] == epochs
    assert e == sorted(e)
    if count < epochs / 4:  # log spacing: half the samples before sqrt(epochs), and the
        assert e[count // 2] < 2 * math.sqrt(epochs)  # late ones spread to the end
        assert e[-2] > epochs / 2
    gaps = np.diff(np.log1p(e))
    assert gaps.max() < 3 * np.log1p(epochs) / (count - 1) + np.log(2)


def test_trials_and_stacks(cfg):
    exp = IB()
    specs = exp.trials(cfg)
    assert len(specs) == len(cfg.activations) * len(cfg.hidden) * cfg.n_seeds
    units = exp.units(specs, cfg)
    for u in units:  # one stack = one activation and one architecture
        assert len({(t.config["activation"], tuple(t.config["hidden"])) for t in u.trials}) == 1
    assert sum(len(u.trials) for u in units) == len(specs)
    assert len(units[0].trials[0].config["hidden"]) == max(len(h) for h in cfg.hidden)
    many = cfg.model_copy(update={"n_seeds": 64})
    roomy = exp.units(exp.trials(many), many)
    tight = exp.units(exp.trials(many), many.model_copy(update={"stack_memory_mb": 16}))
    assert len(roomy) == len(cfg.activations) * len(cfg.hidden)  # 64 models fit in 2 GB
    assert len(tight) > len(roomy)  # the stack size adapts to the memory budget


def test_stacked_trials_equal_trials_trained_alone(cfg):
    """The same seeds give the same measurements in one stack or each alone."""
    specs = [t for t in IB().trials(cfg) if t.config["activation"] == "tanh"
             and t.config["hidden"] == cfg.hidden[-1]]
    together, _ = train_ib_stack(specs, cfg)
    for i, spec in enumerate(specs):
        (alone,), _ = train_ib_stack([spec], cfg)
        a = {(r["epoch"], r["layer"], r["estimator"]): r for r in together[i][1]}
        b = {(r["epoch"], r["layer"], r["estimator"]): r for r in alone[1]}
        assert a.keys() == b.keys()
        for key in a:
            # A GEMM over 1 or over M models may round differently in the last bit, and
            # binning is discontinuous: one of the 4096 inputs crossing a bin edge moves
            # a binned estimate by up to ~2 log2(4096) / 4096 = 0.006 bits.
            tol = 0.01 if key[2].startswith("bin") else 1e-4
            for col in ("i_xt", "i_ty", "train_loss", "test_acc"):
                x, y = a[key][col], b[key][col]
                assert (x is None and y is None) or x == pytest.approx(y, abs=tol), (key, col)


def test_rows_are_long_form_and_bounded(cfg):
    specs = IB().trials(cfg)[:1]
    ((status, rows),), device = train_ib_stack(specs, cfg)
    assert status == "ok" and device == "cpu"
    n_layers = len(specs[0].config["hidden"]) + 1
    assert len(rows) == cfg.n_log_epochs * n_layers * 4
    h_y = rows[0]["h_y"]
    assert 0.99 < h_y <= 1.0
    for r in rows:
        assert -1e-9 <= r["i_ty"] <= h_y + 1e-9 and -1e-9 <= r["i_xt"] <= 12 + 1e-9
    assert {r["epoch"] for r in rows} == set(log_epochs(cfg.epochs, cfg.n_log_epochs))


def test_an_exploding_learning_rate_is_diverged_not_failed(cfg):
    hot = cfg.model_copy(update={"optimizer": "sgd", "lr": 1e30, "activations": ["relu"],
                                 "n_seeds": 1})
    specs = [t for t in IB().trials(hot) if t.config["hidden"] == hot.hidden[0]]
    ((status, rows),), _ = train_ib_stack(specs, hot)
    assert status == "diverged"
    assert all(r["epoch"] < hot.epochs for r in rows)


def test_analysis_writes_metrics_plots_and_figures(cfg, figures_fit):
    from datetime import datetime, timezone

    exp = IB()
    specs = exp.trials(cfg)
    now = datetime.now(timezone.utc)
    results = []
    for unit in exp.units(specs, cfg):
        measured, device = train_ib_stack(unit.trials, cfg)
        results += [TrialResult(t.id, s, now, now, rows=r, device=device)
                    for t, (s, r) in zip(unit.trials, measured)]
    table = build_table(specs, results, {})
    metrics = exp.write_analysis(exp.analyze(table, cfg, params=None), cfg)
    assert json.loads(open(cfg.paths.metrics).read()) == {
        **metrics, "claims": as_metrics(metrics["claims"])}
    assert metrics["trials"] == {"ok": len(specs)}
    for act in cfg.activations:
        entry = metrics[act]
        assert set(entry["bin"]["compression_bits"]) == {"1", "2", "3", "4"}
        assert all(v >= 0 for v in entry["bin"]["compression_bits"].values())
        assert set(entry["epochs_to_label_info"]) == {f"depth_{len(h)}" for h in cfg.hidden}
        # The claims' summaries: the largest hidden-layer compression (the softmax
        # output, layer 4 here, left out), the share of hidden layers with an SNR
        # transition, and the depth correlation (null: fewer than three depths).
        for est in ("bin", "bin_adaptive", "kde_upper", "kde_lower"):
            hidden = [entry[est]["compression_bits"][str(l)] for l in (1, 2, 3)]
            assert entry[est]["max_hidden_compression_bits"] == max(hidden)
        assert 0 <= entry["snr_transition_fraction"] <= 1
        assert entry["depth_epochs_spearman"] is None
    claims = exp.record_claims(metrics, cfg)["claims"]
    assert set(claims) == {c.id for c in exp.claims}
    # The test profile is far below the paper's scale: measured, not judged.
    assert {e["verdict"] for e in claims.values()} == {"not checkable at this scale"}
    assert claims["tanh_compresses_kde_upper"]["measured"] is not None
    assert "n_seeds" in claims["tanh_compresses_kde_upper"]["why"]
    for key in ("figure_plane", "figure_epochs", "figure_snr", "figure_depth"):
        assert open(getattr(cfg.paths, key), "rb").read(4) == b"\x89PNG"
    figures_fit(Path(cfg.paths.figure_plane).parent)
    for activation in ("tanh", "relu"):  # one plot file each: DVC colours them apart
        plane = np.genfromtxt(getattr(cfg.paths, f"plane_{activation}_plot"), delimiter=",",
                              names=True, dtype=None, encoding=None)
        assert set(plane.dtype.names) == {"i_xt", "i_ty", "epoch", "layer"}
        assert len(plane) > 0, activation
    depth = np.genfromtxt(cfg.paths.depth_plot, delimiter=",", names=True)
    assert depth.dtype.names == ("depth", "tanh", "relu")


def test_data_stage_and_its_check(cfg):
    from theorydl.spine.experiment import StageError

    exp = IB()
    with pytest.raises(StageError, match="run the data stage"):
        exp.check_data(cfg)
    exp.data(None, cfg)
    exp.check_data(cfg)
    other = cfg.model_copy(update={"data": cfg.data.model_copy(update={"split_seed": 5})})
    with pytest.raises(StageError, match="differs"):
        exp.check_data(other)


@pytest.mark.parametrize("patch, key", [
    ({"hidden": [[10, 0]]}, "ib.hidden"), ({"hidden": []}, "ib.hidden"),
    ({"activations": ["swish"]}, "ib.activations[0]"), ({"epochs": 0}, "ib.epochs"),
    ({"n_log_epochs": 500, "epochs": 10}, "n_log_epochs"),
    ({"estimators": {"bin_range": [1.0, -1.0]}}, "ib.estimators.bin_range"),
    ({"data": {"train_fraction": 1.5}}, "ib.data.train_fraction"),
])
def test_bad_ib_params(repo_root, patch, key):
    from theorydl.params import parse_params
    from theorydl.spine.config import ConfigError

    data = merge(read_yaml(repo_root / "params.yaml"), {"ib": patch})
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        parse_params(data)
