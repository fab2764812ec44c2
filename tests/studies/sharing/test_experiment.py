"""The weight-sharing study end to end on the test profile, its analysis on a hand-made
table, and its params checks."""

from __future__ import annotations

import pyarrow as pa
import pytest

from theorydl.spine.config import ConfigError
from theorydl.studies.sharing.analysis import analyze
from theorydl.studies.sharing.experiment import Sharing


@pytest.mark.parametrize("sections, needle", [
    ({"sharing": {"log_every": 7}}, "log_every"),
    ({"sharing": {"targets": ["low", "low"]}}, "sharing.targets"),
])
def test_bad_params_are_named(study_params, sections, needle):
    with pytest.raises(ConfigError, match=needle):
        study_params(**sections)


def test_sharing_test_profile_end_to_end(study_params, run_study):
    cfg, metrics = run_study(Sharing(), study_params())
    assert set(metrics) >= {"low", "high", "mixed_c1", "claims"}
    assert metrics["mixed_c1"]["shared_over_unshared"] > 0
    curve = open(cfg.paths.final_plot).read().splitlines()
    assert curve[0] == "c,shared,unshared" and len(curve) == 2


def _row(target, c, shared, loss, kind="final", status="ok", iteration=None):
    return {"status": status, "kind": kind, "target": target, "c": c, "shared": shared,
            "relative_loss": loss, "iteration": iteration}


def test_analysis_of_a_hand_made_table_writes_nothing(study_params, tmp_path):
    base = study_params().sharing
    cfg = base.model_copy(update={"paths": base.paths.model_copy(update={
        k: str(tmp_path / v) for k, v in base.paths.model_dump().items()})})
    table = pa.Table.from_pylist([
        _row("low", None, True, 0.02), _row("low", None, True, 0.04),
        _row("low", None, False, 0.05),
        _row("mixed", 1.0, True, 0.1), _row("mixed", 1.0, False, 0.4),
        _row("mixed", 1.0, False, 0.9, status="failed"),
        _row("mixed", 1.0, True, 0.5, kind="curve", iteration=10),
    ])
    result = analyze(table, cfg)
    assert list(tmp_path.iterdir()) == []  # pure: the spine writes it
    metrics = result.metrics
    assert list(metrics) == ["low", "mixed_c1"]
    assert list(metrics["mixed_c1"]) == ["unshared", "shared", "shared_over_unshared"]
    assert metrics["low"]["shared"] == {"relative_loss": 0.03,
                                        "relative_loss_std": 0.014142, "seeds": 2}
    assert metrics["low"]["unshared"]["relative_loss_std"] is None
    assert metrics["low"]["shared_over_unshared"] == 0.6
    assert metrics["mixed_c1"]["shared_over_unshared"] == 0.25
    assert result.plots["final_plot"].to_csv(index=False) == "c,shared,unshared\n1.0,0.1,0.4\n"
    assert len(result.frames["curves"]) == 1
