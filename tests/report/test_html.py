"""The report opens with one table of every claim of every experiment."""

from __future__ import annotations

import json
import re

from theorydl.params import load_params
from theorydl.report.html import build_report, cite, claims_table, summary
from theorydl.spine import registry

FAKE = [
    ("census", "threshold_n4", {
        "claim": "one unit realises 1882 functions of 4 inputs", "source": "OEIS A000609",
        "metric": "threshold.n_realizable.4", "op": "==", "published": 1882,
        "tolerance": 0.0, "measured": 1882, "verdict": "reproduced", "profile": "default",
        "why": "", "note": ""}),
    ("ib", "relu_does_not_compress_bin", {
        "claim": "ReLU layers do not compress <bin>", "source": "Saxe et al. 2018",
        "metric": "relu.bin.max_hidden_compression_bits", "op": "<=", "published": 0.0,
        "tolerance": 0.1, "measured": 1.4, "verdict": "not reproduced", "profile": "paper",
        "why": "", "note": "fixed bins"}),
    ("ib", "tanh_snr_drift_to_diffusion", {
        "claim": "SNR drops", "source": "Shwartz-Ziv & Tishby 2017",
        "metric": "tanh.snr_transition_fraction", "op": ">=", "published": 1.0,
        "tolerance": 0.0, "measured": 0.8, "verdict": "not checkable at this scale",
        "profile": "paper", "why": "n_seeds = 4, needs 50", "note": ""}),
    ("samdp", "greedy_consistency_top_over_bottom", None),
]


def _rows(page: str) -> list[list[str]]:
    start = page.index("<table class=claims>")
    table = page[start:page.index("</table>", start)]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table)
    return [[re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", r)]
            for r in rows[1:]]


def test_claims_table_shows_published_measured_and_verdict():
    rows = _rows(claims_table(FAKE))
    assert len(rows) == 4
    # not reproduced first, then reproduced, not checkable, not analysed
    assert [r[5] for r in rows] == ["not reproduced", "reproduced",
                                    "not checkable at this scale", "not analysed yet"]
    assert rows[1][0] == "census" and rows[1][3] == "1882" and rows[1][4] == "1882"
    assert rows[1][6] == "default profile" and rows[1][2] == "OEIS A000609"
    assert rows[0][3] == "≤ 0 ± 0.1" and rows[0][4] == "1.4"
    assert rows[0][7] == "1fixed bins"  # folded: the count, then the notes
    assert "&lt;bin&gt;" in claims_table(FAKE)  # escaped
    assert rows[2][3] == "≥ 1" and rows[2][7] == "1n_seeds = 4, needs 50"
    assert rows[3][0] == "samdp" and rows[3][4] == "" and rows[3][7] == ""
    assert "<a href='https://oeis.org/A000609'>" in claims_table(FAKE)


def test_citations_are_short_and_linked():
    assert cite("OEIS A000370 (Boolean functions of n variables up to NPN)").count(
        ">OEIS A000370</a>") == 1
    short = cite("Malach & Shalev-Shwartz 2019 (arXiv:1903.03488), Figure 5 (curve #1)")
    assert ">Malach &amp; Shalev-Shwartz 2019 (arXiv:1903.03488)</a>" in short
    assert "href='https://arxiv.org/abs/1903.03488'" in short and "Figure 5" in short  # title
    assert "<a " not in cite("Minsky & Papert 1969 (one unit)")  # nothing known to link


def test_summary_counts_by_verdict_and_study():
    counts = summary(FAKE)
    assert counts["all"] == {"not reproduced": 1, "reproduced": 1,
                             "not checkable at this scale": 1, "not analysed yet": 1}
    assert counts["ib"]["not reproduced"] == 1 and counts["ib"]["reproduced"] == 0


def test_the_report_opens_with_every_claim_of_every_experiment(repo_root, tmp_path,
                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative output paths: nothing analysed here but census
    params = load_params(repo_root / "params.yaml", {"report": {"path": "report.html"},
                                                      "run": {"store": "store"}})
    from theorydl.spine.store.store import Store

    Store("store").write_run("census", {
        "trials_ran": 7, "wall_s": 125.0, "forecast": {"wall_s": 100.0, "why": ""},
        "started_at": "2026-12-01T10:00:00+00:00", "git_sha": "abcdef0123456",
        "machine": {"cpu": "Test CPU", "cores": 2}})
    census = registry.get("census")
    metrics = {"threshold": {"n_realizable": {"4": 1882}},
               "claims": {"threshold_n4": FAKE[0][2]}}
    paths = census.config(params).paths
    for file, content in ((paths.metrics, metrics), (paths.claims, metrics["claims"])):
        (tmp_path / file).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / file).write_text(json.dumps(content))
    from PIL import Image

    (tmp_path / paths.figure).parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), "white").save(tmp_path / paths.figure)
    page = build_report(params).read_text()
    assert page.index("<h2 id=claims>Claims</h2>") < page.index("<h2 id='census'>census</h2>")
    n = len([c for name in registry.names() for c in registry.get(name).claims])
    assert f"<b>{n} claims: 1 reproduced, 0 not reproduced" not in page  # order: disagreeing first
    assert f"<b>{n} claims: 0 not reproduced, 1 reproduced, 0 not checkable at this scale, "\
           f"{n - 1} not analysed yet.</b>" in page
    assert "profiles: params.yaml: census" in page  # the test's params are no profile's
    rows = _rows(page[page.index("<h2 id=claims>Claims</h2>"):])
    declared = [(n, c.id) for n in registry.names() for c in registry.get(n).claims]
    assert len(rows) == len(declared)
    by_claim = {(r[0], r[1].rsplit("(", 1)[-1].rstrip(")")): r for r in rows}
    assert set(by_claim) == set(declared)
    assert by_claim["census", "threshold_n4"][5] == "reproduced"
    assert by_claim["census", "threshold_n3"][5] == "not analysed yet"
    # The census metrics table below does not repeat the claims.
    census_part = page[page.index("<h2 id='census'>census</h2>"):]
    assert "claims.threshold" not in census_part and "threshold.n_realizable.4" in census_part
    # Forecast beside actual, for the study whose train stage left a run record.
    assert ("last training run: 7 trials in 2.1 min (forecast 1.7 min), 2026-12-01T10:00 UTC, "
            "commit <code>abcdef0123</code>, Test CPU, 2 cores") in census_part
    assert "last training run" not in page[page.index("<h2 id='ib'>"):page.index("<h2 id='learn")]
    assert "<i>how many Boolean functions of N inputs does a machine express?</i>" in census_part
    assert "Claims it supports: <a href='#claim-census-threshold_n0'>threshold_n0</a>" in census_part
    assert "<tr class=reproduced id='claim-census-threshold_n4'>" in page


def test_every_figure_names_claims_that_exist():
    from fnmatch import fnmatchcase

    for name in registry.names():
        exp = registry.get(name)
        fields = set(exp.paths_model().model_fields)
        for key, patterns in exp.figure_claims.items():
            assert any(fnmatchcase(f, key) for f in fields) or "*" in key, (name, key)
            for pattern in patterns:
                assert any(fnmatchcase(c.id, pattern) for c in exp.claims), (name, pattern)
    assert registry.get("failures").claims_of_figure("figure_parity") == [
        "parity_d30_fails", "parity_d5_solved", "parity_d10_solved",
        "parity_variance_one_bit_per_dimension"]
    assert registry.get("failures").claims_of_figure("figure_flat") == []
