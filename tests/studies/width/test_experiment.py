"""The width experiment: params, stacks per width, the unbalanced init, rows, the Optuna
search over cached trials, and the analysis outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch

from theorydl.spine.claims import as_metrics
from theorydl.nn import init_stack
from theorydl.nn.pathsgd import path_norm
from theorydl.params import load_params
from theorydl.spine.config import ConfigError, read_yaml
from theorydl.spine.experiment import StageError
from theorydl.spine.store.rows import build_table
from theorydl.studies.width.experiment import (
    Width,
    WidthConfig,
    search_scores,
    study_key,
    train_width_stack,
    unbalance_stack,
)


@pytest.fixture
def cfg(repo_root, tmp_path) -> WidthConfig:
    """The test profile's width section, writing into tmp_path (the digits data stage run)."""
    profile = read_yaml(repo_root / "profiles" / "test.yaml")
    base = load_params(repo_root / "params.yaml", profile).width
    paths = {k: str(tmp_path / v) for k, v in base.paths.model_dump().items()}
    search = base.search.model_copy(update={"storage": str(tmp_path / "optuna.journal")})
    cfg = base.model_copy(update={"paths": base.paths.model_copy(update=paths),
                                  "search": search})
    Width().data(None, cfg)
    return cfg


def _params_with(repo_root, **width):
    profile = read_yaml(repo_root / "profiles" / "test.yaml")
    profile["width"].update(width)
    return load_params(repo_root / "params.yaml", profile)


@pytest.mark.parametrize("change, needle", [
    ({"widths": [0, 4]}, "width.widths"),
    ({"widths": [4, 4]}, "repeated"),
    ({"optimizers": ["sgd", "rmsprop"]}, "width.optimizers"),
    ({"n_log_epochs": 50}, "n_log_epochs"),
    ({"label_noise": [1.5]}, "label_noise"),
    ({"search": {"lr_range": {"sgd": [1.0, 0.1]}}}, "sgd"),
    ({"withs": [4]}, "withs"),
])
def test_bad_params_are_named(repo_root, change, needle):
    with pytest.raises(ConfigError, match=needle):
        _params_with(repo_root, **change)


def test_data_stage_writes_digits_and_check_data_guards_it(cfg):
    Width().check_data(cfg)  # the fixture ran the data stage
    other = cfg.model_copy(update={"data": cfg.data.model_copy(update={"train_subset": 100})})
    with pytest.raises(StageError, match="width_data"):
        Width().check_data(other)


@pytest.mark.parametrize("activation", ["relu", "linear"])
def test_unbalanced_init_keeps_the_function_and_changes_the_weights(activation):
    a = init_stack([8, 16, 16, 3], [0, 1], activation=activation, dtype=torch.float64)
    b = init_stack([8, 16, 16, 3], [0, 1], activation=activation, dtype=torch.float64)
    unbalance_stack(b, [0, 1], [False, True], 3.0)
    x = torch.randn(20, 8, dtype=torch.float64)
    torch.testing.assert_close(a(x), b(x), atol=1e-10, rtol=1e-10)
    torch.testing.assert_close(path_norm(a.weights, a.biases), path_norm(b.weights, b.biases))
    assert torch.equal(a.weights[0][0], b.weights[0][0])  # model 0 is balanced
    ratio = (b.weights[0][1] / a.weights[0][1]).abs()
    assert ratio.max() / ratio.min() > 4  # units really rescaled, unevenly


def test_trials_need_the_search_output_or_params_lrs(cfg):
    exp = Width()
    with pytest.raises(StageError, match="width_search"):
        exp.trials(cfg)
    off = cfg.model_copy(update={"search": cfg.search.model_copy(update={"enabled": False})})
    specs = exp.trials(off)
    n = (len(cfg.optimizers) * len(cfg.inits) * len(cfg.depths) * len(cfg.widths)
         * len(cfg.label_noise) * cfg.n_seeds)
    assert len(specs) == n == len({s.id for s in specs})
    assert {s.config["lr"] for s in specs if s.config["optimizer"] == "sgd"} == {cfg.lr.sgd}


def test_one_stack_per_width_largest_first(cfg):
    exp = Width()
    off = cfg.model_copy(update={"search": cfg.search.model_copy(update={"enabled": False})})
    specs = exp.trials(off)
    units = exp.units(specs, off)
    assert sum(len(u.trials) for u in units) == len(specs)
    for u in units:  # seeds, inits (and lrs) share a stack; widths and optimizers do not
        assert len({(t.config["width"], t.config["optimizer"]) for t in u.trials}) == 1
        assert {t.config["init"] for t in u.trials} == set(cfg.inits)
    assert len(units) == len(cfg.widths) * len(cfg.optimizers)
    widths = [u.trials[0].config["width"] for u in units]
    assert widths == sorted(widths, reverse=True)
    many = off.model_copy(update={"n_seeds": 40})
    tight = exp.units(exp.trials(many), many.model_copy(update={"stack_memory_mb": 16}))
    assert len(exp.units(exp.trials(many), many)) == len(units)  # 80 models fit in 2 GB
    assert len(tight) > len(units)  # the stack size adapts to the memory budget


def test_rows_measures_and_stack_equals_alone(cfg):
    off = cfg.model_copy(update={"search": cfg.search.model_copy(update={"enabled": False}),
                                 "max_epochs": 60, "n_log_epochs": 6,
                                 "lr": cfg.lr.model_copy(update={"sgd": 0.5})})
    specs = [s for s in Width().trials(off) if s.config["width"] == 64
             and s.config["optimizer"] == "sgd"]
    together, device = train_width_stack(specs, off)
    assert device == "cpu" and len(together) == len(specs)
    for i, spec in enumerate(specs):
        status, rows = together[i]
        assert status == "ok"
        final = [r for r in rows if r["kind"] == "final"]
        layers = [r for r in rows if r["kind"] == "layer"]
        curve = [r for r in rows if r["kind"] == "epoch"]
        assert len(final) == 1 and len(layers) == 2 and curve[0]["epoch"] == 0
        f = final[0]
        assert f["eval_set"] == "test" and 0 <= f["test_error"] <= 1
        assert f["path_norm"] > 0 and f["spectral_product"] > 0
        if f["stop_reason"] == "fit":  # digits at H = 64 fits within 60 epochs
            assert f["train_error"] == 0 and f["fit_epoch"] == f["epoch"] and f["margin"] > 0
        assert all(r["epoch"] <= f["epoch"] for r in curve)
        (alone,), _ = train_width_stack([spec], off)
        fa = [r for r in alone[1] if r["kind"] == "final"][0]
        assert fa["epoch"] == f["epoch"]
        assert fa["test_error"] == pytest.approx(f["test_error"], abs=2e-3)
    assert any(r["stop_reason"] == "fit" for _, rows in together for r in rows
               if r["kind"] == "final")


def test_pathsgd_does_not_see_the_rescaling_but_sgd_does(cfg):
    """Balanced and unbalanced inits are the same ReLU function: Path-SGD trains both to
    the same network, SGD does not."""
    off = cfg.model_copy(update={"search": cfg.search.model_copy(update={"enabled": False}),
                                 "max_epochs": 3, "n_log_epochs": 2, "stop_error": None})
    finals, rows_of = {}, {}
    for opt in ("sgd", "pathsgd"):
        specs = [s for s in Width().trials(off) if s.config["width"] == 64 and s.seed == 0
                 and s.config["optimizer"] == opt]
        out, _ = train_width_stack(specs, off)
        finals[opt] = [[r for r in rows if r["kind"] == "final"][0]["test_loss"]
                       for _, rows in out]
        rows_of[opt] = [{**spec.config, "seed": spec.seed, "status": status, **r}
                        for spec, (status, rows) in zip(specs, out) for r in rows]
    assert finals["pathsgd"][0] == pytest.approx(finals["pathsgd"][1], rel=1e-4)
    assert abs(finals["sgd"][0] - finals["sgd"][1]) > 1e-3
    # As functions: the probe outputs of the two inits agree to rounding under Path-SGD,
    # at init (same function) and after training; under SGD they drift apart.
    import pandas as pd

    from theorydl.studies.width.analysis import output_gaps
    from theorydl.studies.width.experiment import OUTPUT_GAP_TOLERANCE, PROBE_SAMPLES

    df = pd.DataFrame(rows_of["sgd"] + rows_of["pathsgd"])
    probes = df[df.kind == "epoch"].probe_outputs
    assert all(len(p) == PROBE_SAMPLES * 10 for p in probes)
    gaps = output_gaps(df)
    assert gaps["pathsgd"] <= OUTPUT_GAP_TOLERANCE < 1e-2 < gaps["sgd"]
    at_init = output_gaps(df[df.epoch == 0])
    assert at_init["sgd"] < 1e-5 and at_init["pathsgd"] < 1e-5


def _run_in_process(exp, cfg, calls, cache=None):
    """A runner that trains specs in this process, like the stage does through Ray, with
    a trial cache (``cache``: trial id -> result): ``calls`` gets the number trained by
    each call that trained any."""
    cache = {} if cache is None else cache

    def run(specs):
        todo = [s for s in {s.id: s for s in specs}.values() if s.id not in cache]
        if todo:
            calls.append(len(todo))
            for unit in exp.units(todo, cfg):
                cache.update((r.trial_id, r) for r in exp.run_unit(unit, cfg))
        return build_table(specs, [cache[s.id] for s in specs], {"git_sha": None})
    return run


def test_search_writes_best_lrs_and_resumes_from_its_journal(cfg):
    exp = Width()
    calls: list[int] = []
    out = exp.search(None, cfg, _run_in_process(exp, cfg, calls))
    keys = {study_key(o, d, w, n) for o in cfg.optimizers for d in cfg.depths
            for w in cfg.widths for n in cfg.label_noise}
    assert set(out["best"]) == keys
    lo, hi = cfg.search.lr_range.sgd
    for key, best in out["best"].items():
        assert best["points"] == cfg.search.n_trials
        r = getattr(cfg.search.lr_range, key.split("/")[0])
        assert r[0] <= best["lr"] <= r[1] and 0 <= best["validation_error"] <= 1
    # Points per round: every study's batch at once, so each width's points share a stack.
    assert calls[0] == len(keys) * cfg.search.batch
    written = json.loads((cfg.paths.best_lr and open(cfg.paths.best_lr).read()))
    assert written["best"] == out["best"]
    # The final sweep takes its learning rates from the file.
    lrs = {(s.config["optimizer"], s.config["width"]): s.config["lr"] for s in exp.trials(cfg)}
    for (opt, w), lr in lrs.items():
        assert lr == out["best"][study_key(opt, 1, w, 0.0)]["lr"]
    # A second search finds every study complete: nothing is asked or trained again,
    # and its last call still covers every searched point (the stage's table).
    again: list[int] = []
    cache: dict = {}
    first = _run_in_process(exp, cfg, [], cache)
    assert exp.search(None, cfg, first)["best"] == out["best"]
    searched = set(cache)
    assert len(searched) >= len(keys) and again == []
    last: list[set] = []

    def recording(specs):
        last.append({s.id for s in specs})
        return _run_in_process(exp, cfg, again)(specs)

    # The store lost (a new run.store): the journal's points are trained again, as the
    # same trials, and the best learning rates stay the journal's.
    assert exp.search(None, cfg, recording)["best"] == out["best"]
    assert last == [searched] and again == [len(searched)]


def test_search_scores_rank_by_error_then_loss():
    table = pa.table({"trial_id": ["a", "a", "b", "c", "d", "e"],
                      "status": ["ok", "ok", "diverged", "ok", "ok", "ok"],
                      "kind": ["epoch", "final", "final", "final", "final", "final"],
                      "test_error": [0.9, 0.25, 0.1, float("nan"), 0.25, 0.25 - 1 / 60000],
                      "test_loss": [2.0, 0.9, 0.1, 0.3, 0.4, 1e9]})
    s = search_scores(table)
    assert s["b"] is None and s["c"] is None  # diverged; no finite error
    assert s["a"] == pytest.approx(0.25, abs=1e-6)
    assert s["d"] < s["a"]  # same error, lower loss
    assert s["e"] < s["d"]  # a lower error wins whatever its loss


def test_analysis_outputs(cfg, figures_fit):
    from theorydl.studies.width.analysis import aggregate, final_frame, width_metrics

    exp = Width()
    off = cfg.model_copy(update={"search": cfg.search.model_copy(update={"enabled": False}),
                                 "max_epochs": 40})
    specs = exp.trials(off)
    results = []
    for unit in exp.units(specs, off):
        results += exp.run_unit(unit, off)
    table = build_table(specs, results, {"git_sha": None})
    root = Path(os.path.commonpath(list(off.paths.model_dump().values())))
    before = sorted(root.rglob("*"))
    result = exp.analyze(table, off, None)
    assert sorted(root.rglob("*")) == before  # the analysis is pure: it writes no file
    metrics = exp.write_analysis(result, off)
    assert set(metrics["claims"]) == {c.id for c in exp.claims}
    agg = aggregate(final_frame(table))
    for opt in off.optimizers:
        m = metrics[f"{opt}_balanced_depth1"]
        g = agg[(agg.optimizer == opt) & (agg.init == "balanced")].sort_values("width")
        ok = list(g.fit_fraction == 1.0)
        expect = None
        for k in range(len(ok)):
            if all(ok[k:]):
                expect = int(g.width.iloc[k])
                break
        assert m["interpolation_width"] == expect and m["largest_width"] == 64
        assert m["test_error_at_largest"] == pytest.approx(g.test_error.iloc[-1], abs=1e-6)
    assert "pathsgd_vs_sgd_at_largest_width" in metrics
    assert set(metrics["rescaling_output_gap"]) == set(off.optimizers)
    claim = metrics["claims"]["pathsgd_rescaling_invariance"]
    assert claim["measured"] == metrics["rescaling_output_gap"]["pathsgd"]
    # The rescaling gap: per optimizer, the largest |balanced - unbalanced| test error.
    assert {"balanced", "unbalanced"} <= set(off.inits)
    for opt in off.optimizers:
        g = agg[agg.optimizer == opt]
        by = {init: g[g.init == init].set_index("width").test_error
              for init in ("balanced", "unbalanced")}
        assert metrics["rescaling_gap"][opt] == pytest.approx(
            (by["balanced"] - by["unbalanced"]).abs().max(), abs=1e-6)
    for key in ("figure_error", "figure_epochs", "figure_norms", "figure_optimizers"):
        assert open(getattr(off.paths, key), "rb").read(4) == b"\x89PNG"
    figures_fit(root)
    plot = open(off.paths.curve_plot).read().splitlines()
    assert plot[0].split(",")[0] == "width" and len(plot) == 1 + len(off.widths)
    assert json.loads(open(off.paths.metrics).read()) == json.loads(json.dumps(
        {**metrics, "claims": as_metrics(metrics["claims"])}))
    # A width counts only if every seed fits, and only from where every wider one does.
    synthetic = agg.copy()
    synthetic.loc[:, "fit_fraction"] = [0.5, 1.0] * (len(synthetic) // 2)
    assert width_metrics(synthetic)["sgd_balanced_depth1"]["interpolation_width"] == 64
    synthetic.loc[:, "fit_fraction"] = [1.0, 0.5] * (len(synthetic) // 2)
    assert width_metrics(synthetic)["sgd_balanced_depth1"]["interpolation_width"] is None
    assert np.isfinite(agg.path_norm).all()


def test_a_diverging_learning_rate_gives_diverged_trials_not_errors(cfg):
    off = cfg.model_copy(update={"search": cfg.search.model_copy(update={"enabled": False}),
                                 "lr": cfg.lr.model_copy(update={"sgd": 1e12})})
    specs = [s for s in Width().trials(off) if s.config["optimizer"] == "sgd"
             and s.config["width"] == 64]
    exp = Width()
    (unit,) = exp.units(specs, off)
    results = exp.run_unit(unit, off)
    assert {r.status for r in results} == {"diverged"}
    table = build_table(specs, results, {"git_sha": None})
    assert set(search_scores(table).values()) == {None}  # Optuna is told they failed
    final = [r for res in results for r in res.rows if r["kind"] == "final"]
    assert {r["stop_reason"] for r in final} == {"diverged"}
    assert all(r["epoch"] < off.max_epochs for r in final)


def test_a_search_killed_mid_round_resumes_with_the_same_points(cfg):
    """Points asked but never told (the driver died while they trained) come back first,
    as the same trials, so the trial cache serves whatever had finished."""
    exp = Width()
    asked: list[list[str]] = []

    def crash(specs):
        asked.append(sorted(s.id for s in specs))
        raise KeyboardInterrupt("driver killed")

    with pytest.raises(KeyboardInterrupt):
        exp.search(None, cfg, crash)
    runner = _run_in_process(exp, cfg, [])

    def record(specs):
        asked.append(sorted(s.id for s in specs))
        return runner(specs)

    out = exp.search(None, cfg, record)
    assert asked[1] == asked[0]
    assert all(b["points"] == cfg.search.n_trials for b in out["best"].values())


def test_a_lost_journal_replays_the_same_points_from_the_cache(cfg):
    # The sampler is seeded and the cache answers with the same values, so a new study
    # asks the same points: nothing trains again and the best learning rates agree.
    import os

    exp, cache, trained = Width(), {}, []
    out = exp.search(None, cfg, _run_in_process(exp, cfg, trained, cache))
    first = set(cache)
    os.remove(cfg.search.storage)
    again: list[int] = []
    assert exp.search(None, cfg, _run_in_process(exp, cfg, again, cache))["best"] == out["best"]
    assert again == [] and set(cache) == first
