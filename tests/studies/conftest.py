"""Fixtures the studies' tests share: the test profile with changes, and one study run end
to end in a tmp folder (data, trials, units, the analysis written by the spine)."""

from __future__ import annotations

import pytest

from theorydl.params import load_params
from theorydl.spine.config import read_yaml
from theorydl.spine.store.rows import build_table


@pytest.fixture
def study_params(repo_root):
    """``study_params(**sections)``: params.yaml with the test profile, each section
    updated by ``sections`` (a dict value updates that sub-section)."""
    def make(**sections):
        profile = read_yaml(repo_root / "profiles" / "test.yaml")
        for name, change in sections.items():
            for key, value in change.items():
                if isinstance(value, dict):
                    profile[name].setdefault(key, {}).update(value)
                else:
                    profile[name][key] = value
        return load_params(repo_root / "params.yaml", profile)
    return make


@pytest.fixture
def run_study(tmp_path):
    """``run_study(exp, params)``: (cfg, metrics) of the study trained and analysed with
    every path under tmp_path. The analysis must write no file: the spine writes it."""
    def run(exp, params):
        base = getattr(params, exp.name)
        cfg = base.model_copy(update={"paths": base.paths.model_copy(update={
            k: str(tmp_path / v) for k, v in base.paths.model_dump().items()})})
        if "data" in exp.pipeline():
            exp.data(params, cfg)
            exp.check_data(cfg)
        specs = exp.trials(cfg)
        results = [r for u in exp.units(specs, cfg) for r in exp.run_unit(u, cfg)]
        assert all(r.status == "ok" for r in results), [r.error for r in results][:1]
        table = build_table(specs, results, {"git_sha": None})
        before = sorted(tmp_path.rglob("*"))
        result = exp.analyze(table, cfg, params)
        assert sorted(tmp_path.rglob("*")) == before, "the analysis wrote a file"
        metrics = exp.write_analysis(result, cfg)
        for key, path in cfg.paths.model_dump().items():
            assert path.startswith(str(tmp_path)), key
        return cfg, metrics
    return run
