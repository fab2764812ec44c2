"""The pooling experiment: params, trials and stacks, the data check, and one run of the
test profile through training and analysis (metrics, claims, plot data, figures; the
analysis itself writes nothing)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from theorydl.params import load_params
from theorydl.spine.config import ConfigError, read_yaml
from theorydl.spine.experiment import StageError
from theorydl.spine.store.rows import build_table
from theorydl.studies.pooling.blobs import load_blobs
from theorydl.studies.pooling.experiment import Pooling, PoolingConfig, task_arrays


def _params_with(repo_root, **pooling):
    profile = read_yaml(repo_root / "profiles" / "test.yaml")
    profile["pooling"].update(pooling)
    return load_params(repo_root / "params.yaml", profile)


@pytest.fixture(scope="module")
def cfg(repo_root, tmp_path_factory) -> PoolingConfig:
    """The test profile's section writing into a temporary folder, its data stage run."""
    tmp = tmp_path_factory.mktemp("pooling")
    base = _params_with(repo_root).pooling
    paths = {k: str(tmp / v) for k, v in base.paths.model_dump().items()}
    cfg = base.model_copy(update={"paths": base.paths.model_copy(update=paths)})
    Pooling().data(None, cfg)
    return cfg


@pytest.fixture(scope="module")
def trained(cfg):
    """The test profile's trials, units, results and train table."""
    exp = Pooling()
    trials = exp.trials(cfg)
    units = exp.units(trials, cfg)
    results = [r for u in units for r in exp.run_unit(u, cfg)]
    return trials, units, results, build_table(trials, results, {"git_sha": None})


@pytest.fixture(scope="module")
def run(cfg, trained):
    """The trials, units, results, and the metrics the analysis wrote (claims added)."""
    exp = Pooling()
    *done, table = trained
    return (*done, exp.write_analysis(exp.analyze(table, cfg, None), cfg))


@pytest.mark.parametrize("change, needle", [
    ({"data": {"size": 12}}, "pooling.data.size"),
    ({"networks": ["convac", "tanh"]}, "pooling.networks"),
    ({"geometries": ["square", "square"]}, "repeated"),
    ({"iterations": 25}, "multiple of eval_every"),
    ({"label_fraction": 0.6}, "pooling.label_fraction"),
    ({"ranks": {"channels": [0]}}, "pooling.ranks.channels"),
    ({"lr": {"convac": -0.01}}, "pooling.lr.convac"),
    ({"beta2": {"relu": 1.0}}, "pooling.beta2.relu"),
    ({"chanels": [4]}, "chanels"),
])
def test_bad_params_are_named(repo_root, change, needle):
    with pytest.raises(ConfigError, match=needle):
        _params_with(repo_root, **change)


def test_trials_and_stacks(cfg, run):
    trials, units, results, _ = run
    n_configs = len(cfg.tasks) * len(cfg.networks) * len(cfg.geometries) * len(cfg.channels)
    assert len(trials) == n_configs * cfg.n_seeds
    assert len(units) == n_configs  # the seeds of one configuration share a stack
    for u in units:
        assert len({(t.config["task"], t.config["network"], t.config["geometry"])
                    for t in u.trials}) == 1
    lrs = {t.config["network"]: t.config["lr"] for t in trials}
    assert lrs["convac"] == cfg.lr.convac and lrs["relu_max"] == cfg.lr.relu
    assert all(r.status == "ok" for r in results), [r.error for r in results]


def test_rows_are_the_records_and_the_final_accuracy(cfg, run):
    _, _, results, _ = run
    blobs = load_blobs(cfg.paths.data)
    _, y_test = task_arrays(blobs, "closedness", "test", cfg.label_fraction)
    assert len(y_test) == 2 * int(cfg.data.n_test * cfg.label_fraction)
    for r in results:
        curve = [row for row in r.rows if row["kind"] == "curve"]
        final = [row for row in r.rows if row["kind"] == "final"]
        assert [row["iteration"] for row in curve] == list(range(0, cfg.iterations + 1,
                                                                 cfg.eval_every))
        assert len(final) == 1 and final[0]["test_accuracy"] == curve[-1]["test_accuracy"]
        # accuracies are multiples of 1 / n_test
        n = final[0]["n_test"]
        assert n == len(y_test)
        assert abs(final[0]["test_accuracy"] * n - round(final[0]["test_accuracy"] * n)) < 1e-6


def test_check_data_guards_the_file(cfg, tmp_path):
    Pooling().check_data(cfg)
    other = cfg.model_copy(update={"data": cfg.data.model_copy(update={"n_train": 300})})
    with pytest.raises(StageError, match="pooling_data"):
        Pooling().check_data(other)
    missing = cfg.model_copy(update={"paths": cfg.paths.model_copy(
        update={"data": str(tmp_path / "none.npz")})})
    with pytest.raises(StageError, match="missing"):
        Pooling().check_data(missing)


def test_analysis_outputs_metrics_and_claims(cfg, run, figures_fit):
    *_, metrics = run
    paths = cfg.paths
    for key in ("figure_accuracy", "figure_curves", "figure_ranks", "figure_blobs",
                "accuracy_plot", "ranks", "metrics"):
        assert Path(getattr(paths, key)).stat().st_size > 0, key
    figures_fit(Path(paths.figure_accuracy).parent)
    claims = json.loads(Path(paths.claims).read_text())
    assert claims["pooling_geometry_bias"]["verdict"] == "not checkable at this scale"
    # the rank claims are exact and meaningful on the test profile's 4x4 grid
    assert claims["square_left_right_rank_capped"]["verdict"] == "reproduced"
    assert claims["mirror_left_right_rank_high"]["verdict"] == "reproduced"
    assert metrics["ranks"]["smallest_gap"] > 1e5
    adv = metrics["geometry_advantage"]
    assert set(adv) == set(cfg.networks) and set(adv["convac"]) == set(cfg.tasks)
    acc = metrics["accuracy"]["symmetry"]["convac"]
    assert adv["convac"]["symmetry"] == pytest.approx(
        acc["mirror_c4"]["mean"] - acc["square_c4"]["mean"], abs=1e-5)
    plot = pd.read_csv(paths.accuracy_plot)
    assert list(plot.columns[:2]) == ["config", "test_accuracy"]
    assert len(plot) == len(cfg.tasks) * len(cfg.networks) * len(cfg.geometries)
    ranks = pd.read_csv(paths.ranks)
    assert (ranks[ranks.channels == 1]["rank"] == 1).all()


def test_the_analysis_writes_nothing(cfg, trained, run, tmp_path):
    """``analysis.analyze`` only returns: the spine writes (it reads the blob file)."""
    from theorydl.studies.pooling import analysis

    *_, table = trained
    out = tmp_path / "out"
    out.mkdir()
    paths = {k: str(out / Path(v).name) for k, v in cfg.paths.model_dump().items()
             if k != "data"}
    elsewhere = cfg.model_copy(update={"paths": cfg.paths.model_copy(update=paths)})
    result = analysis.analyze(table, elsewhere)
    assert list(out.iterdir()) == []
    assert result.metrics == {k: v for k, v in run[-1].items() if k != "claims"}
    assert set(result.plots) == {"ranks", "accuracy_plot"}
    assert result.plots["accuracy_plot"].to_csv(index=False) == Path(
        cfg.paths.accuracy_plot).read_text()
