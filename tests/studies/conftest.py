"""Fixtures the studies' tests share: the test profile with changes, and one study run end
to end in a tmp folder (data, trials, units, the analysis written by the spine)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from theorydl.params import load_params
from theorydl.plotting import DPI, FULL_WIDTH
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


#: The report's column in pixels (theorydl/report/html.py: max-width 1240px less its padding):
#: a wider PNG is scaled down there, and its text with it.
REPORT_COLUMN_PX = 1200


def check_figures(folder: Path) -> list[Path]:
    """Every PNG under ``folder`` (at least one): mode 0644, and as wide as the report's
    one figure width (FULL_WIDTH at DPI, give or take the saved margin), so that it fits
    the report's column at 90 % of its size or more and shares one font scale."""
    from PIL import Image

    pngs = sorted(Path(folder).rglob("*.png"))
    assert pngs, f"no PNG under {folder}"
    for png in pngs:
        assert stat.S_IMODE(png.stat().st_mode) == 0o644, png.name
        with Image.open(png) as img:
            width = img.size[0]
        assert 0.95 * FULL_WIDTH * DPI <= width <= REPORT_COLUMN_PX / 0.9, (png.name, width)
    return pngs


@pytest.fixture
def figures_fit():
    """:func:`check_figures`: every PNG of a folder fits the report."""
    return check_figures


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
        check_figures(tmp_path)
        return cfg, metrics
    return run
