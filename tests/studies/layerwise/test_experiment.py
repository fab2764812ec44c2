"""The layer-wise study end to end on the test profile, and its params checks."""

from __future__ import annotations

import pytest

from theorydl.spine.config import ConfigError
from theorydl.studies.layerwise.experiment import Layerwise


@pytest.mark.parametrize("sections, needle", [
    ({"layerwise": {"n_train": [60, 60]}}, "layerwise.n_train"),
    ({"layerwise": {"classes": [3, 1]}}, "layerwise.classes"),
    ({"layerwise": {"methods": ["greedy"]}}, "layerwise.methods"),
])
def test_bad_params_are_named(study_params, sections, needle):
    with pytest.raises(ConfigError, match=needle):
        study_params(**sections)


def test_layerwise_test_profile_end_to_end(study_params, run_study):
    cfg, metrics = run_study(Layerwise(), study_params())
    assert set(metrics) >= {"accuracy", "recovery", "recovery_curve", "competitive", "claims"}
    assert "seconds" not in metrics  # wall time is no metric: reruns must agree byte for byte
    assert set(metrics["recovery"]) == {"level_1", "level_2"}
    for level in metrics["recovery"].values():
        assert -1.0 <= level["ari"] <= 1.0 and level["n_train"] == 60
    competitive = metrics["competitive"]
    assert competitive["gap"] == pytest.approx(competitive["e2e"] - competitive["layerwise"],
                                               abs=1e-6)
    # the test profile is below both claims' scale
    assert {c["verdict"] for c in metrics["claims"].values()} == {"not checkable at this scale"}
    accuracy = open(cfg.paths.accuracy_plot).read().splitlines()
    assert accuracy[0] == "n_train,layerwise,e2e" and len(accuracy) == 2
    assert open(cfg.paths.recovery_plot).read().splitlines()[0] == "n_train,level_1,level_2"


def test_trials_leave_layerwise_keys_out_of_the_baseline(study_params):
    cfg = study_params().layerwise
    specs = Layerwise().trials(cfg)
    assert len(specs) == 2 * len(cfg.n_train) * cfg.n_seeds
    e2e = [s for s in specs if s.config["method"] == "e2e"]
    assert e2e and all("init_scale" not in s.config for s in e2e)
    units = Layerwise().units(specs, cfg)
    assert sorted(len(u.trials) for u in units) == [cfg.n_seeds] * 2  # seeds share a stack
