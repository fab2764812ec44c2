"""Claims: the verdict logic, every experiment's declarations, and the metrics entry."""

from __future__ import annotations

import json

import pytest
from pydantic import Field

from theorydl.spine import registry
from theorydl.spine.claims import (
    NOT_CHECKABLE,
    NOT_REPRODUCED,
    REPRODUCED,
    Claim,
    as_metrics,
    check_claims,
    evaluate_claim,
    measure,
)
from theorydl.spine.config import Paths, Section, merge, read_yaml
from theorydl.spine.experiment import Analysis, Experiment


class _Sub(Section):
    size: int = 0
    """A nested key."""


class _Cfg(Section):
    n_seeds: int = 4
    """Seeds."""
    dataset: str = "digits"
    """Dataset."""
    widths: list[int] = Field(default_factory=lambda: [4, 64])
    """Widths."""
    sub: _Sub = _Sub()
    """A sub-section."""


METRICS = {
    "tanh": {"bin": {"compression": {"1": 0.05, "2": 0.8, "3": None}}},
    "relu": {"bin": {"compression": {"1": 0.0, "2": 0.02}}},
    "flag": True,
    "count": 104,
    "gap": 0.0,
}


def _claim(metric, op, published, tolerance=0.0, **kw):
    return Claim("c", "a claim", "a source", metric, op, published, tolerance, **kw)


@pytest.mark.parametrize("metric, op, published, tolerance, verdict", [
    ("count", "==", 104, 0.0, REPRODUCED),
    ("count", "==", 94572, 0.0, NOT_REPRODUCED),
    ("count", "==", 103, 1.0, REPRODUCED),           # within tolerance
    ("count", "==", 102, 1.0, NOT_REPRODUCED),        # just outside it
    ("count", ">=", 104.5, 0.5, REPRODUCED),          # measured >= published - tolerance
    ("count", ">=", 104.6, 0.5, NOT_REPRODUCED),
    ("count", "<=", 103.5, 0.5, REPRODUCED),          # measured <= published + tolerance
    ("count", "<=", 103.4, 0.5, NOT_REPRODUCED),
    ("flag", "==", 1, 0.0, REPRODUCED),               # a flag counts as 0 / 1
    ("gap", "==", 0.0, 1e-6, REPRODUCED),
])
def test_comparisons_and_tolerances(metric, op, published, tolerance, verdict):
    entry = evaluate_claim(_claim(metric, op, published, tolerance), METRICS, _Cfg())
    assert entry["verdict"] == verdict
    assert entry["measured"] == pytest.approx(float(METRICS[metric]))
    assert entry["why"] == ""


def test_globs_reduce_to_the_worst_match_or_the_mean():
    # Nulls are left out; "worst" is the match on the failing side of the comparison.
    assert measure(_claim("tanh.bin.compression.*", ">=", 0.1), METRICS) == 0.05
    assert measure(_claim("*.bin.compression.[1-2]", "<=", 0.0), METRICS) == 0.8
    assert measure(_claim("relu.bin.compression.*", "==", 0.03), METRICS) == 0.0
    assert measure(_claim("tanh.bin.compression.*", ">=", 0.1, reduce="mean"),
                   METRICS) == pytest.approx(0.425)
    tanh = evaluate_claim(_claim("tanh.bin.compression.*", ">=", 0.1), METRICS, _Cfg())
    assert tanh["verdict"] == NOT_REPRODUCED  # layer 1 does not compress
    relu = evaluate_claim(_claim("relu.bin.compression.*", "<=", 0.0, 0.1), METRICS, _Cfg())
    assert relu["verdict"] == REPRODUCED


def test_missing_metric_or_small_scale_is_not_checkable_and_measured_is_kept():
    missing = evaluate_claim(_claim("tanh.kde.compression.*", ">=", 0.1), METRICS, _Cfg())
    assert missing["verdict"] == NOT_CHECKABLE and missing["measured"] is None
    assert "no value of tanh.kde.compression.*" in missing["why"]
    scale = {"n_seeds": 50, "dataset": "mnist", "widths": [8192], "sub.size": 3}
    small = evaluate_claim(_claim("count", "==", 104, scale=scale), METRICS, _Cfg())
    assert small["verdict"] == NOT_CHECKABLE and small["measured"] == 104
    for key in scale:
        assert key in small["why"]
    big = _Cfg(n_seeds=50, dataset="mnist", widths=[4, 8192], sub=_Sub(size=3))
    assert evaluate_claim(_claim("count", "==", 104, scale=scale), METRICS,
                          big)["verdict"] == REPRODUCED
    assert evaluate_claim(_claim("count", "==", 105, scale=scale), METRICS,
                          big)["verdict"] == NOT_REPRODUCED


def test_bad_claims_are_refused():
    with pytest.raises(ValueError, match="op"):
        _claim("count", "<", 1)
    with pytest.raises(ValueError, match="profile"):
        _claim("count", "==", 1, profile="huge")
    with pytest.raises(ValueError, match="tolerance"):
        _claim("count", "==", 1, -1.0)
    with pytest.raises(ValueError, match="repeated claim ids"):
        check_claims([_claim("count", "==", 1), _claim("gap", "==", 0)], METRICS, _Cfg())


# ---------------------------------------------------------------- the experiments' claims

@pytest.mark.parametrize("name", registry.names())
def test_each_claim_is_checkable_at_its_profile(repo_root, name):
    # At the profile a claim names, the params meet its scale (the default profile is
    # params.yaml itself); the ids are unique within the experiment.
    exp = registry.get(name)
    ids = [c.id for c in exp.claims]
    assert len(set(ids)) == len(ids)
    base = read_yaml(repo_root / "params.yaml")
    for claim in exp.claims:
        data = base if claim.profile == "default" else merge(
            base, read_yaml(repo_root / "profiles" / f"{claim.profile}.yaml"))
        section = exp.section.model_validate(data[name])
        entry = evaluate_claim(claim, {}, section)
        short = [w for w in entry["why"].split("; ") if not w.startswith("no value of")]
        assert not short, f"{name}.{claim.id} at the {claim.profile} profile: {short}"


def test_the_issue_s_claims_are_declared():
    ids = {(n, c.id) for n in registry.names() for c in registry.get(n).claims}
    for want in [("census", "threshold_n4"), ("ib", "tanh_compresses_kde_upper"),
                 ("ib", "relu_does_not_compress_bin"), ("ib", "tanh_snr_drift_to_diffusion"),
                 ("ib", "tanh_depth_fewer_epochs"),
                 ("width", "test_error_no_rise_after_interpolation"),
                 ("width", "pathsgd_rescaling_invariance"),
                 ("width", "pathsgd_generalises_better_than_sgd"),
                 ("samdp", "greedy_consistency_top_over_bottom")]:
        assert want in ids
    ib = registry.get("ib")
    for est in ("bin", "bin_adaptive", "kde_upper", "kde_lower"):
        assert {f"tanh_compresses_{est}", f"relu_does_not_compress_{est}"} <= {
            c.id for c in ib.claims}


def test_write_analysis_writes_the_metrics_once_with_the_verdicts(tmp_path):
    class _P(Paths):
        pass

    class _S(Section):
        n_seeds: int = 4
        """Seeds."""
        paths: _P = _P(trials=str(tmp_path / "t.parquet"), metrics=str(tmp_path / "m.json"),
                       claims=str(tmp_path / "c.json"))
        """Paths."""

    class _E(Experiment):
        name, version, section = "claims_toy", 1, _S
        claims = (Claim("count", "c", "s", "count", "==", 104),
                  Claim("big", "c", "s", "count", "==", 104, scale={"n_seeds": 50}))

        def trials(self, cfg):
            return []

        def run_unit(self, unit, cfg):
            return []

    exp, cfg = _E(), _S()
    out = exp.write_analysis(Analysis(metrics={"count": 104}), cfg)
    assert out["count"] == 104
    assert out["claims"]["count"]["verdict"] == REPRODUCED
    assert out["claims"]["big"]["verdict"] == NOT_CHECKABLE
    assert out["claims"]["big"]["measured"] == 104
    # The whole entries go to the claims file, and the metrics file holds numbers only:
    # `dvc metrics show` / `diff` compare verdicts as 1 / 0, never prose.
    assert json.loads((tmp_path / "c.json").read_text()) == out["claims"]
    assert json.loads((tmp_path / "m.json").read_text()) == {
        "count": 104, "claims": {"count": {"measured": 104, "reproduced": 1},
                                 "big": {"measured": 104}}}
    # The claims' scale keys are read by the analyze stage (and so are its params).
    assert "n_seeds" in exp.pipeline()["analyze"].reads


def test_the_metrics_view_of_claims_is_numbers():
    entries = {"a": {"verdict": REPRODUCED, "measured": 0.5, "claim": "words"},
               "b": {"verdict": NOT_REPRODUCED, "measured": 2.0, "note": "prose"},
               "c": {"verdict": NOT_CHECKABLE, "measured": None, "why": "too small"}}
    assert as_metrics(entries) == {"a": {"measured": 0.5, "reproduced": 1},
                                   "b": {"measured": 2.0, "reproduced": 0}, "c": {}}
