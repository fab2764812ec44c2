"""The forecast: rates timed on stored units, the longest-first schedule, the reasons an
estimate is unknown, and the run records the train stage keeps in the store."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from theorydl.spine.config import RayConfig, RunConfig
from theorydl.spine.forecast import (
    Rate,
    fit_rate,
    forecast,
    format_seconds,
    measured_rates,
    schedule,
)
from theorydl.spine.store.store import Store
from theorydl.spine.sweep.planner import plan_trials

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _row(spec, start, seconds, status="ok", host="a", device="cpu"):
    return {"trial_id": spec.id, "config_json": json.dumps(dict(spec.config)),
            "seed": spec.seed, "status": status, "started_at": T0 + timedelta(seconds=start),
            "ended_at": T0 + timedelta(seconds=start + seconds), "hostname": host,
            "device": device}


def test_schedule_is_longest_first_over_the_slots():
    # Longest first, each to the least loaded slot, as a queue hands out tasks: {3, 2, 2}
    # and {3, 2}, not the optimum {3, 3} and {2, 2, 2}.
    assert schedule([3, 3, 2, 2, 2], 2) == 7
    assert schedule([5, 1, 1], 4) == 5
    assert schedule([2, 2, 2], 1) == 6
    assert schedule([], 3) == 0


def test_rates_are_unit_seconds_over_unit_costs(toy):
    cfg = toy.section(values=[1, 2, 3, 4, 5], trials_per_unit=2)
    s = toy.trials(cfg)  # costs 1 ... 5
    rows = [_row(s[0], 0, 6), _row(s[1], 0, 6),  # one unit of two: cost 3, 6 s
            _row(s[2], 10, 6),  # a unit of one: cost 3, 6 s
            _row(s[3], 20, 99, status="failed"),  # failed: not timed
            _row(s[4], 0, 1, device="cuda:0")]  # another device kind: its own rate
    rates = measured_rates(toy, cfg, rows)
    assert rates[("", "cpu")] == Rate(pytest.approx(12 / 6), 0.0, 2)
    assert rates[("", "cuda")] == Rate(pytest.approx(1 / 5), 0.0, 1)


def test_a_fixed_cost_per_unit_is_fitted_as_an_overhead():
    # 3 s per unit plus 0.5 s per cost unit, measured exactly on four units.
    rate = fit_rate([(c, 3 + 0.5 * c) for c in (1, 2, 10, 40)])
    assert (rate.overhead, rate.per_cost, rate.units) == (pytest.approx(3), pytest.approx(0.5), 4)
    assert rate.seconds(100) == pytest.approx(53)
    # Too few points, or a line that would need a negative overhead: through the origin.
    assert fit_rate([(1, 2), (3, 4)]) == Rate(pytest.approx(6 / 4), 0.0, 2)
    assert fit_rate([(1, 0.1), (2, 1.0), (3, 2.0)]).overhead == 0.0


def test_forecast_times_the_units_to_run_on_the_slots(toy):
    cfg = toy.section(values=[1, 2, 3, 4], trials_per_unit=1)
    s = toy.trials(cfg)
    rows = [_row(s[0], 0, 2.0)]  # 2 s per unit of cost
    plan = plan_trials(s, {s[0].id: "ok"}, "failed")
    fc = forecast(toy, cfg, plan, rows, RayConfig(num_cpus=2))
    assert (fc.asked, fc.cached, fc.to_run, fc.units, fc.slots) == (4, 1, 3, 3, 2)
    assert fc.compute_s == pytest.approx(2 * (2 + 3 + 4))
    assert fc.wall_s == pytest.approx(2 * 5)  # {4} and {3, 2}
    assert fc.why == "" and fc.basis == 1
    # Nothing timed yet: unknown, saying why; nothing to run: zero.
    none = forecast(toy, cfg, plan, [], RayConfig(num_cpus=2))
    assert none.wall_s is None and "no stored trial" in none.why
    done = forecast(toy, cfg, plan_trials(s, {x.id: "ok" for x in s}, "failed"), [],
                    RayConfig())
    assert done.wall_s == 0 and done.to_run == 0


def test_a_study_without_a_cost_model_gets_unknown(toy, monkeypatch):
    cfg = toy.section(values=[1, 2])
    s = toy.trials(cfg)
    monkeypatch.setattr(type(toy), "trial_cost", lambda self, t, c: None)
    fc = forecast(toy, cfg, plan_trials(s, {}, "failed"), [_row(s[0], 0, 1)], RayConfig())
    assert fc.wall_s is None and "declares no cost model" in fc.why


def test_on_a_cluster_only_compute_is_forecast(toy):
    cfg = toy.section(values=[1, 2])
    s = toy.trials(cfg)
    fc = forecast(toy, cfg, plan_trials(s, {}, "failed"), [_row(s[0], 0, 1)],
                  RayConfig(address="ray://head:10001"))
    assert fc.compute_s == pytest.approx(3) and fc.wall_s is None and "cluster" in fc.why


def test_format_seconds():
    assert [format_seconds(x) for x in (None, 5, 600, 7200)] == [
        "unknown", "5 s", "10.0 min", "2.0 h"]


def test_run_records_live_beside_the_rows_and_are_not_rows(tmp_path):
    store = Store(str(tmp_path / "store"))
    store.write_run("toy", {"wall_s": 1.5, "study": "toy"})
    store.write_run("toy", {"wall_s": 2.5, "study": "toy"})
    assert [r["wall_s"] for r in store.runs("toy")] == [1.5, 2.5]
    assert store.files("toy") == [] and store.read("toy").num_rows == 0
    assert store.runs("other") == []


def test_the_train_path_records_forecast_and_wall_time(toy, ray_local, tmp_path):
    from theorydl.stages import run_specs

    params = SimpleNamespace(run=RunConfig(store=str(tmp_path / "store"), progress="off",
                                           ray=RayConfig(num_cpus=2)))
    cfg = toy.section(values=[1, 2], sleep=0.2)
    run_specs(params, toy, cfg, toy.trials(cfg), record=True)
    first, = Store(params.run.store).runs("toy")
    assert first["trials_ran"] == 2 and first["wall_s"] > 0.2
    assert first["forecast"]["wall_s"] is None  # nothing stored to time it on yet
    assert first["machine"]["cores"] >= 1 and "git_sha" in first
    cfg = toy.section(values=[1, 2, 3], sleep=0.2)
    run_specs(params, toy, cfg, toy.trials(cfg), record=True)
    second = Store(params.run.store).runs("toy")[-1]
    assert second["trials_ran"] == 1 and second["forecast"]["to_run"] == 1
    assert second["forecast"]["wall_s"] > 0  # timed on the first run's units
    run_specs(params, toy, cfg, toy.trials(cfg), record=True)  # all cached: no record
    assert len(Store(params.run.store).runs("toy")) == 2
