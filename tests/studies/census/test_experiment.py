"""The census experiment: shards cover every function once; the table refuses partial
counts; the analysis returns its outputs and the spine writes them."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from theorydl.spine.claims import as_metrics
from theorydl.expressivity import n_functions
from theorydl.spine.experiment import Unit
from theorydl.studies.census.analysis import CensusIncomplete, census_table
from theorydl.studies.census.experiment import Census, CensusConfig


def _cfg(tmp_path, **kw):
    paths = {k: str(tmp_path / f"{k}.out") for k in ("domains", "trials", "table", "metrics",
                                                     "claims", "plot", "figure")}
    paths["figure"] = str(tmp_path / "census.png")
    paths["formula_figure"] = str(tmp_path / "formulas.png")
    return CensusConfig(**{"n_inputs": [0, 2, 3], "architectures": ["threshold"],
                           "functions_per_unit": 40, "paths": paths, **kw})


def test_networks_without_any_n_are_rejected_not_dropped(study_params):
    from theorydl.spine.config import ConfigError

    with pytest.raises(ConfigError, match="network_n_inputs.*net-3"):
        study_params(census={"architectures": ["threshold", "net-3"], "network_n_inputs": []})
    study_params(census={"architectures": ["threshold"], "network_n_inputs": []})  # fine


def test_shards_tile_each_range_exactly(tmp_path):
    specs = Census().trials(_cfg(tmp_path))
    for n in (0, 2, 3):
        mine = sorted((s.config["start"], s.config["stop"]) for s in specs
                      if s.config["n_inputs"] == n)
        assert mine[0][0] == 0 and mine[-1][1] == n_functions(n)
        assert all(a[1] == b[0] for a, b in zip(mine, mine[1:]))
    assert specs[0].config["n_inputs"] == 3  # the slowest N is scheduled first
    assert len({s.id for s in specs}) == len(specs)


def _run_all(cfg) -> pa.Table:
    from theorydl.spine.store.rows import build_table

    exp = Census()
    specs = exp.trials(cfg)
    results = [r for u in exp.units(specs, cfg) for r in exp.run_unit(u, cfg)]
    assert all(isinstance(u, Unit) for u in exp.units(specs, cfg))
    return build_table(specs, results, {})


def test_analysis_writes_counts_metrics_plot_and_figure(tmp_path, figures_fit):
    cfg = _cfg(tmp_path)
    table = _run_all(cfg)
    exp = Census()
    metrics = exp.write_analysis(exp.analyze(table, cfg, params=None), cfg)
    assert json.loads((tmp_path / "metrics.out").read_text()) == {
        **metrics, "claims": as_metrics(metrics["claims"])}
    assert metrics["threshold"]["n_realizable"] == {"0": 2, "2": 14, "3": 104}
    assert metrics["threshold"]["matches_published"] is True
    claims = Census().record_claims(metrics, cfg)["claims"]
    assert claims == metrics["claims"]
    assert {k: e["verdict"] for k, e in claims.items() if k.startswith("threshold")} == {
        "threshold_n0": "reproduced", "threshold_n1": "not checkable at this scale",
        "threshold_n2": "reproduced", "threshold_n3": "reproduced",
        "threshold_n4": "not checkable at this scale",
        "threshold_n5": "not checkable at this scale"}
    assert claims["threshold_n3"]["measured"] == claims["threshold_n3"]["published"] == 104
    assert (tmp_path / "census.png").read_bytes()[:4] == b"\x89PNG"
    figures_fit(tmp_path)
    plot = (tmp_path / "plot.out").read_text().splitlines()
    assert plot[0] == "n_inputs,log2_all_functions,log2_threshold" and len(plot) == 4
    counts = (tmp_path / "table.out").read_text().splitlines()
    assert counts[0] == ("architecture,n_inputs,n_functions,n_realizable,published,"
                         "matches_published")  # the columns the learnability study reads
    assert counts[1:] == ["threshold,0,2,2,2,True", "threshold,2,16,14,14,True",
                          "threshold,3,256,104,104,True"]


def test_the_analysis_writes_nothing(tmp_path):
    """``analysis.analyze`` returns the table and plot as CSV text; it writes no file."""
    from theorydl.studies.census import analysis

    table = _run_all(_cfg(tmp_path / "run"))
    out = tmp_path / "out"
    out.mkdir()
    result = analysis.analyze(table, _cfg(out))
    assert list(out.iterdir()) == []
    assert set(result.plots) == {"table", "plot"}
    assert result.plots["plot"].splitlines()[0] == "n_inputs,log2_all_functions,log2_threshold"
    assert result.metrics["threshold"]["n_realizable"] == {"0": 2, "2": 14, "3": 104}


def test_a_failed_or_missing_shard_refuses_to_count(tmp_path):
    cfg = _cfg(tmp_path)
    table = _run_all(cfg)
    status = table["status"].to_pylist()
    status[0] = "failed"
    broken = table.set_column(table.schema.get_field_index("status"), "status",
                              pa.array(status))
    with pytest.raises(CensusIncomplete, match="not ok"):
        census_table(broken)
    with pytest.raises(CensusIncomplete, match="cover"):
        census_table(table.slice(1))


def test_data_stage_domains_are_checked_by_train(tmp_path):
    from theorydl.spine.experiment import StageError

    cfg = _cfg(tmp_path)
    with pytest.raises(StageError, match="run the data stage"):
        Census().check_data(cfg)
    Census().data(None, cfg)
    Census().check_data(cfg)
    with pytest.raises(StageError, match="N=4 domain"):
        Census().check_data(cfg.model_copy(update={"n_inputs": [4]}))


def test_networks_and_formulas_are_rows_of_the_same_table(tmp_path, figures_fit):
    cfg = _cfg(tmp_path, n_inputs=[2], network_n_inputs=[2, 3],
               architectures=["threshold", "net-1", "net-2", "net-2-2", "formulas"])
    specs = Census().trials(cfg)
    assert sum(s.config["architecture"] == "net-2" for s in specs) == 2 + 5  # N=2, N=3 shards
    table = _run_all(cfg)
    rows = census_table(table)
    count = {(r["architecture"], r["n_inputs"]): r["n_realizable"] for r in rows}
    assert count["net-1", 3] == count["threshold", 2] + 90 == 104
    assert count["net-2", 2] == 16 and count["net-2", 3] == count["net-2-2", 3] == 254
    assert [count[f"formulas<={s}", 2] for s in range(4)] == [6, 14, 14, 16]
    assert set(rows[0]) == {"architecture", "n_inputs", "n_functions", "n_realizable",
                            "published", "matches_published"}
    exp = Census()
    metrics = exp.write_analysis(exp.analyze(table, cfg, params=None), cfg)
    assert metrics["net-1"]["matches_published"] is True
    assert metrics["formulas"]["size_to_reach_all"] == {"2": 3, "3": 9}
    assert metrics["symmetry"]["npn_classes"] == {"2": 4, "3": 14}
    claims = Census().record_claims(metrics, cfg)["claims"]
    assert claims["net1_threshold_n3"]["verdict"] == "reproduced"
    assert (tmp_path / "formulas.png").read_bytes()[:4] == b"\x89PNG"
    figures_fit(tmp_path)
    # a missing network shard is refused, not counted as fewer functions
    keep = [i for i, (a, st) in enumerate(zip(table["architecture"].to_pylist(),
                                              table["start"].to_pylist()))
            if not (a == "net-2" and st == 1)]
    with pytest.raises(CensusIncomplete, match="first units"):
        census_table(table.take(keep))


def test_unknown_network_names_and_large_n_are_refused(tmp_path):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="net-k1"):
        _cfg(tmp_path, architectures=["net-0"])
    with pytest.raises(ValidationError, match="network_n_inputs"):
        _cfg(tmp_path, architectures=["net-2"], network_n_inputs=[5])
