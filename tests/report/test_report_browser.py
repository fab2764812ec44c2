"""The report in a real headless browser at 1400 px: nothing overflows the page, every
image loads, and the summary line says what the claims files say.

It uses Playwright's Python API with the system's Chromium (Debian's ``chromium``), or
Playwright's own browser where one is installed; with neither it skips, saying so.
"""

from __future__ import annotations

import json
import re
import shutil

import pytest

from theorydl import stages
from theorydl.params import load_params
from theorydl.spine import registry

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

WIDTH = 1400
LONG = "a note that runs on " * 40 + "without_any_space_to_break_it_" * 8


def _launch(p):
    for path in (shutil.which("chromium"), shutil.which("chromium-browser"), None):
        try:
            return p.chromium.launch(executable_path=path, args=["--no-sandbox"])
        except Exception:  # noqa: BLE001 - try the next browser
            continue
    pytest.skip("no Chromium to open the report in: install Debian's `chromium` "
                "(apt-get install chromium) or run `playwright install chromium`")


@pytest.fixture
def report(repo_root, tmp_path, monkeypatch):
    """A report over census trained and analysed on a small grid, and an ib claims file
    with a long unbreakable note and a verdict that disagrees (it comes first)."""
    monkeypatch.chdir(tmp_path)
    params = load_params(repo_root / "params.yaml", {
        "run": {"store": "store", "progress": "off"}, "report": {"path": "report.html"},
        "census": {"n_inputs": [0, 1, 2]}})
    shutil.copytree(repo_root / "profiles", tmp_path / "profiles")
    for kind in ("data", "train", "analyze"):
        getattr(stages, kind)(params, "census")
    ib = registry.get("ib")
    claim = ib.claims[0]
    path = tmp_path / ib.config(params).paths.claims
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({claim.id: {
        "claim": claim.claim, "source": claim.source, "metric": claim.metric, "op": claim.op,
        "published": claim.published, "tolerance": claim.tolerance, "measured": 12.5,
        "verdict": "not reproduced", "profile": "paper", "why": "", "note": LONG}}))
    stages.report(params)
    return tmp_path / "report.html", params


def test_the_report_fits_1400_px_loads_its_images_and_sums_up_its_claims(report):
    path, params = report
    written = {n: registry.get(n).written_claims(registry.get(n).config(params))
               for n in registry.names()}
    verdicts = [written[n].get(c.id, {}).get("verdict", "not analysed yet")
                for n in registry.names() for c in registry.get(n).claims]
    with sync_api.sync_playwright() as p:
        browser = _launch(p)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900})
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            for opened in (False, True):  # as it opens, and with every fold unfolded
                if opened:
                    page.evaluate("document.querySelectorAll('details')"
                                  ".forEach(d => d.open = true)")
                over = page.evaluate("""w => [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > w + 0.5)
                    .map(e => e.tagName + ' ' + (e.textContent || '').slice(0, 40))""", WIDTH)
                assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
                assert over == [], over[:5]
            images = page.evaluate("[...document.images].map(i => [i.complete, i.naturalWidth])")
            assert len(images) >= 2  # census's two figures
            assert all(done and width > 0 for done, width in images), images
            line = page.inner_text(".summary")
            first = page.inner_text("table.claims tr:nth-child(2) td:nth-child(6)")
        finally:
            browser.close()
    total = re.match(r"(\d+) claims: (.*)\.", line)
    assert total and int(total[1]) == len(verdicts)
    said = {v: int(n) for n, v in re.findall(r"(\d+) ([a-z ]+?)(?:,|$)", total[2])}
    assert said == {v: verdicts.count(v) for v in set(verdicts)} | {
        v: 0 for v in said if v not in verdicts}
    assert said["not reproduced"] == 1 and said["reproduced"] >= 3
    assert first == "not reproduced"  # the disagreeing claim leads the table
