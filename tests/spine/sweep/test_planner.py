"""The trial cache policy: which stored trials run again."""

from __future__ import annotations

import pytest

from theorydl.spine.spec import TrialSpec
from theorydl.spine.sweep.planner import plan_trials

SPECS = [TrialSpec("e", 1, {"x": i}) for i in range(5)]
STORED = {SPECS[0].id: "ok", SPECS[1].id: "failed", SPECS[2].id: "diverged"}


@pytest.mark.parametrize("rerun, expected", [
    ("failed", [1, 3, 4]), ("none", [3, 4]), ("all", [0, 1, 2, 3, 4]),
])
def test_rerun_policies(rerun, expected):
    plan = plan_trials(SPECS, STORED, rerun)
    assert [t.config["x"] for t in plan.todo] == expected
    assert plan.cached == 5 - len(expected)


def test_extending_a_sweep_runs_only_new_points():
    stored = {s.id: "ok" for s in SPECS}
    more = SPECS + [TrialSpec("e", 1, {"x": 9})]
    assert [t.config["x"] for t in plan_trials(more, stored, "failed").todo] == [9]


def test_duplicate_trials_are_an_error():
    with pytest.raises(ValueError, match="same trial twice"):
        plan_trials(SPECS + SPECS[:1], {}, "failed")
    with pytest.raises(ValueError, match="rerun"):
        plan_trials(SPECS, {}, "maybe")
