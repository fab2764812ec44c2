"""The trained census: the learned rule, stacks of many functions, and the analysis."""

from __future__ import annotations

import json

import numpy as np
import pytest

from theorydl.spine.claims import as_metrics
from theorydl.studies.learnability.analysis import LearnabilityIncomplete, group_results
from theorydl.studies.learnability.experiment import Learnability, LearnabilityConfig, learned


def test_learned_needs_one_seed_with_every_input_right():
    correct = np.ones((3, 2, 4), dtype=bool)
    correct[0, 0, 1] = False          # one seed misses one input, the other is perfect
    correct[1, :, 3] = False          # every seed misses input 3
    correct[2, 0, 0] = correct[2, 1, 2] = False  # each seed misses a different input
    assert learned(correct).tolist() == [True, False, False]
    with pytest.raises(ValueError, match="functions, seeds, points"):
        learned(correct[0])


def _cfg(tmp_path, **kw):
    names = ("trials", "metrics", "claims", "table", "classes", "hardest", "plot")
    paths = {k: str(tmp_path / f"{k}.out") for k in names}
    paths.update({k: str(tmp_path / f"{k}.png")
                  for k in ("figure", "figure_classes", "figure_hardest")})
    return LearnabilityConfig(**{"n_inputs": [2], "widths": [1, 2], "activations": ["sigmoid"],
                                 "n_seeds": 3, "steps": 400, "lr": 0.1,
                                 "functions_per_trial": 5, "n_hardest": 4, "device": "cpu",
                                 "paths": paths, **kw})


def _run(cfg):
    from theorydl.spine.store.rows import build_table

    exp = Learnability()
    specs = exp.trials(cfg)
    units = exp.units(specs, cfg)
    # blocks of functions of one shape share a stack; the two widths do not
    assert len(units) == 2 and sorted(len(u.trials) for u in units) == [4, 4]
    results = [r for u in units for r in exp.run_unit(u, cfg)]
    assert all(r.status == "ok" for r in results)
    by_id = {s.id: s for s in specs}
    for r in results:  # each trial's rows are its own range of functions
        c = by_id[r.trial_id].config
        assert [row["table"] for row in r.rows] == list(range(c["start"], c["stop"]))
    return build_table(specs, results, {})


def test_trained_census_of_two_inputs(tmp_path, figures_fit):
    cfg = _cfg(tmp_path)
    table = _run(cfg)
    exp = Learnability()
    # The analysis is pure: everything is written by the spine's write_analysis.
    result = exp.analyze(table, cfg, params=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    metrics = exp.write_analysis(result, cfg)
    assert json.loads((tmp_path / "metrics.out").read_text()) == {
        **metrics, "claims": as_metrics(metrics["claims"])}
    assert metrics["expressible"] == {"net-1": {"2": 14}, "net-2": {"2": 16}}
    # one hidden sigmoid unit computes only threshold functions: never XOR (6) or XNOR (9)
    assert metrics["learned_not_expressible"]["sigmoid"]["net-1"]["2"] == 0
    rows = {(r["width"], r["table"]): r for r in table.to_pylist()}
    assert not rows[1, 6]["learned"] and not rows[1, 9]["learned"]
    assert rows[1, 8]["learned"] and rows[1, 8]["n_success"] == 3  # AND, every seed
    assert 10 <= metrics["learned"]["sigmoid"]["net-1"]["2"] <= 14
    assert metrics["learned"]["sigmoid"]["net-2"]["2"] >= 14
    for name in ("figure", "figure_classes", "figure_hardest"):
        assert (tmp_path / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    figures_fit(tmp_path)
    classes = (tmp_path / "classes.out").read_text().splitlines()
    assert len(classes) == 1 + 2 * 4  # 4 NPN classes of 2 inputs, per width
    claims = Learnability().record_claims(metrics, cfg)["claims"]
    assert set(claims) == {"width1_learned_within_threshold_n3"}


def test_a_missing_function_refuses_to_count(tmp_path):
    cfg = _cfg(tmp_path, widths=[1])
    from theorydl.spine.store.rows import build_table

    exp = Learnability()
    specs = exp.trials(cfg)
    results = [r for u in exp.units(specs, cfg) for r in exp.run_unit(u, cfg)]
    results[0].rows.pop()
    with pytest.raises(LearnabilityIncomplete, match="no result"):
        group_results(build_table(specs, results, {}))


def test_bad_params_name_the_key(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="n_inputs"):
        _cfg(tmp_path, n_inputs=[5])
    with pytest.raises(ValidationError, match="activations"):
        _cfg(tmp_path, activations=["step"])
