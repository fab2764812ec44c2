"""The results page: it lists exactly the registry's claims, and a small store and metrics
file render to the expected rows."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import pytest

from theorydl.params import load_params
from theorydl.report.results import (
    COUNTS_BEGIN,
    COUNTS_END,
    collect,
    counts,
    results_markdown,
    update_counts_block,
)
from theorydl.spine import registry
from theorydl.spine.config import read_yaml
from theorydl.spine.experiment import TrialResult
from theorydl.spine.store.rows import build_table
from theorydl.spine.store.store import Store, write_table_atomic


def _claim_rows(text: str) -> list[tuple[str, str]]:
    section = text.split("## Claims", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| (\w+) \| `([^`]+)`:", section, flags=re.M)


def test_the_committed_page_lists_exactly_the_registry_claims(repo_root):
    text = (repo_root / "docs" / "results.md").read_text()
    listed = _claim_rows(text)
    declared = [(name, c.id) for name in registry.names() for c in registry.get(name).claims]
    assert sorted(listed) == sorted(declared)  # none dropped, none doubled, none stale
    # The README's counts are the page's.
    readme = (repo_root / "README.md").read_text()
    block = readme.split(COUNTS_BEGIN, 1)[1].split(COUNTS_END, 1)[0].strip()
    assert block in text


def test_a_small_store_renders_to_the_expected_rows(repo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    profiles = {name: read_yaml(repo_root / "profiles" / f"{name}.yaml")
                for name in ("test", "paper")}
    default = load_params(repo_root / "params.yaml")
    params = load_params(repo_root / "params.yaml",
                         {"run": {"store": str(tmp_path / "store")},
                          "census": profiles["test"]["census"]})
    census = registry.get("census")
    cfg = census.config(params)
    specs = census.trials(cfg)[:3]
    t0 = datetime(2026, 12, 1, 10, tzinfo=timezone.utc)
    results = [TrialResult(s.id, "ok", t0, t0 + timedelta(seconds=10)) for s in specs]
    table = build_table(specs, results, {"git_sha": "abcdef0123456789", "git_dirty": False,
                                         "hostname": "box"})
    write_table_atomic(table, census.trials_path(cfg))
    first, second = census.claims[3], census.claims[4]
    entries = {first.id: {"verdict": "reproduced", "measured": first.published, "why": ""},
               second.id: {"verdict": "not checkable at this scale", "measured": None,
                           "why": "census.n_inputs = [0, 1, 2], needs [4]"}}
    written = tmp_path / cfg.paths.claims
    written.parent.mkdir(parents=True, exist_ok=True)
    written.write_text(json.dumps(entries))
    Store(params.run.store).write_run("census", {
        "wall_s": 12.0, "forecast": {"wall_s": 20.0},
        "machine": {"cpu": "Test CPU", "cores": 2, "gpus": 0}})

    asked = []
    out = collect(params, profiles, default, paper_plan=lambda s: asked.append(s) or
                  _Unknown())
    page = results_markdown(out)
    c = counts(out)
    total = sum(len(registry.get(n).claims) for n in registry.names())
    assert c == {"reproduced": 1, "not reproduced": 0, "not checkable at this scale": 1,
                 "not run": total - 2, "total": total}
    assert ("| [census](studies/census.md) | test | 3 | 10 s | 12 s (20 s) | `abcdef0123` "
            "| Test CPU, 2 cores | cpu | 2026-12-01 |") in page
    assert (f"| census | `{first.id}`: {first.claim} | {first.published:g} | "
            f"{first.published:g} | reproduced | test") in page
    assert f"| census | `{second.id}`: {second.claim} | {second.published:g} | — | " \
           f"not checkable at this scale | test" in page
    assert "| [ib](studies/ib.md) | default | not run |" in page
    # The unchecked census claim says what it needs, how to run it, and the forecast.
    needs = [line for line in page.splitlines() if line.startswith(f"| census | `{second.id}` |")]
    assert len(needs) == 1 and "needs [4]" in needs[0]
    assert "theorydl profile paper --only census && dvc repro census_analyze" in needs[0]
    assert "unknown (nothing timed)" in needs[0] and "census" in asked
    assert sorted(_claim_rows(page)) == sorted(
        (n, cl.id) for n in registry.names() for cl in registry.get(n).claims)


class _Unknown:
    wall_s = compute_s = None
    why = "nothing timed"


def test_the_counts_block_is_replaced_in_place():
    text = f"intro\n{COUNTS_BEGIN}\nold\n{COUNTS_END}\nrest\n"
    c = {"reproduced": 2, "not reproduced": 1, "not checkable at this scale": 3,
         "not run": 0, "total": 6}
    new = update_counts_block(text, c)
    assert new.startswith("intro\n") and new.endswith(f"{COUNTS_END}\nrest\n")
    assert "**6 claims: 2 reproduced, 1 not reproduced, 3 not checkable" in new
    with pytest.raises(ValueError, match="no counts block"):
        update_counts_block("no block here", c)
