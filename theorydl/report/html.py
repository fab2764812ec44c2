"""The report: one self-contained HTML page (figures embedded) for every experiment.

It is a view of the analysis outputs: figures, metrics, result tables, the params
section each came from, and the git commit of the code. Nothing in it is computed here.
It opens with one table of every published claim of every experiment: measured beside
published, and the verdict the analysis wrote (:mod:`theorydl.spine.claims`).
"""

from __future__ import annotations

import base64
import csv
import html
import json
from datetime import datetime, timezone
from pathlib import Path

import yaml

from theorydl.spine import registry
from theorydl.spine.config import Params
from theorydl.spine.provenance import git_state
from theorydl.spine.store.store import write_text_atomic

__all__ = ["build_report", "claims_table", "embeds"]

_STYLE = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;
text-align:right}th{background:#f3f3f3}img{max-width:100%}pre{background:#f7f7f7;
padding:.6em;overflow:auto}.meta{color:#666;font-size:90%}td.l{text-align:left}
.reproduced{background:#e3f4e3}.not-reproduced{background:#f9e0e0}
.not-checkable{background:#f3f3f3}"""


def _csv_table(path: Path) -> str:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def _published(entry: dict) -> str:
    """The published value or bound as the claim compares with it: "≥ 0.1", "0 ± 1e-06"."""
    value, tol = entry.get("published"), entry.get("tolerance") or 0
    if not isinstance(value, (int, float)):
        return str(value)
    op = {"<=": "≤ ", ">=": "≥ "}.get(entry.get("op"), "")
    return f"{op}{value:g}" + (f" ± {tol:g}" if tol else "")


def claims_table(claims: list[tuple[str, str, dict | None]]) -> str:
    """One HTML table of claims: ``(experiment, claim id, entry)`` per row, the entry as
    the analysis wrote it in the metrics' ``claims`` (None where the experiment has not
    been analysed: the claim is listed, with no verdict yet)."""
    head = ("<tr><th>experiment</th><th>claim</th><th>source</th><th>published</th>"
            "<th>measured</th><th>verdict</th><th>meaningful at</th><th>notes</th></tr>")
    rows = []
    for experiment, claim_id, entry in claims:
        e = entry or {}
        verdict = e.get("verdict") or "not analysed yet"
        css = {"reproduced": "reproduced", "not reproduced": "not-reproduced"}.get(
            verdict, "not-checkable")
        measured = e.get("measured")
        esc = html.escape
        cells = [
            ("l", esc(experiment)),
            ("l", f"{esc(str(e.get('claim', '')))} <span class=meta>({esc(claim_id)})</span>"),
            ("l", esc(str(e.get("source", "")))),
            ("", esc(_published(e)) if entry else ""),
            ("", "" if measured is None else esc(f"{measured:g}")),
            ("", esc(verdict)),
            ("", esc(f"{e['profile']} profile") if entry else ""),
            ("l", esc("; ".join(x for x in (e.get("why"), e.get("note")) if x))),
        ]
        rows.append(f"<tr class={css}>" + "".join(
            f"<td class={c}>{text}</td>" if c else f"<td>{text}</td>" for c, text in cells)
            + "</tr>")
    if not rows:
        return "<p>No experiment declares claims.</p>"
    return f"<table>{head}{''.join(rows)}</table>"


def _claims_of(exp, cfg) -> list[tuple[str, str, dict | None]]:
    """An experiment's claims with the entries its metrics file holds."""
    if not exp.claims:
        return []
    written = exp.written_claims(cfg)
    return [(exp.name, c.id, written.get(c.id)) for c in exp.claims]


def _metrics_table(path: Path) -> str:
    def flat(prefix: str, value, out: list) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                flat(f"{prefix}.{k}" if prefix else str(k), v, out)
        else:
            out.append((prefix, value))
    items: list = []
    metrics = json.loads(path.read_text())
    metrics.pop("claims", None)  # in the claims table at the top
    flat("", metrics, items)
    body = "".join(f"<tr><td style='text-align:left'>{html.escape(k)}</td>"
                   f"<td>{html.escape(str(v))}</td></tr>" for k, v in items)
    return f"<table><tr><th>metric</th><th>value</th></tr>{body}</table>"


def _last_run(store, name: str) -> str:
    """A line on the study's last train run that trained trials: wall time beside the
    forecast made before it (:mod:`theorydl.spine.forecast`); empty without one."""
    from theorydl.spine.forecast import format_seconds

    try:
        runs = store.runs(name)
    except OSError:
        return ""
    if not runs:
        return ""
    r = runs[-1]
    fc = r.get("forecast") or {}
    forecast = format_seconds(fc.get("wall_s"))
    if fc.get("why"):
        forecast += f": {fc['why']}"
    m = r.get("machine") or {}
    return (f"<p class=meta>last training run: {r.get('trials_ran')} trials in "
            f"{html.escape(format_seconds(r.get('wall_s')))} (forecast "
            f"{html.escape(forecast)}), {html.escape(str(r.get('started_at', ''))[:16])} UTC, "
            f"commit <code>{html.escape(str(r.get('git_sha') or '?')[:10])}</code>, "
            f"{html.escape(str(m.get('cpu', '?')))}, {m.get('cores', '?')} cores</p>")


def embeds(key: str, path: str | Path) -> bool:
    """Whether the report embeds output ``key``: a figure (PNG, or a folder of them, which
    :meth:`Experiment.outputs` lists), metrics (any JSON) or the results table (``table``)."""
    suffix = Path(path).suffix
    if key == "claims":
        return False  # the claims table at the top shows them
    return suffix in (".png", ".json", "") or (suffix == ".csv" and key == "table")


def build_report(params: Params) -> Path:
    """Write ``params.report.path``; experiments without outputs yet are listed as such."""
    sha, dirty = git_state()
    parts = [f"<h1>theorydl report</h1><p class=meta>generated "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} from commit "
             f"<code>{sha or 'unknown'}</code>{' (uncommitted changes)' if dirty else ''}</p>"]
    shown_experiments = []
    for name in registry.names():
        exp = registry.get(name)
        try:
            cfg = exp.config(params)
        except Exception:  # noqa: BLE001 - a section absent from params is simply skipped
            continue
        shown_experiments.append((exp, cfg))
    claims = [row for exp, cfg in shown_experiments for row in _claims_of(exp, cfg)]
    parts.append("<h2>Claims</h2><p class=meta>Published claims re-measured; a verdict "
                 "counts only at the scale (profile) where the check is meaningful, and "
                 "the measured value is shown either way.</p>" + claims_table(claims))
    from theorydl.spine.store.store import Store

    store = Store(params.run.store)
    for exp, cfg in shown_experiments:
        name = exp.name
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(_last_run(store, name))
        outputs = {k: Path(v) for k, v in exp.outputs(cfg).items()}
        shown = False
        for key, path in outputs.items():
            if not (path.is_file() and embeds(key, path)):
                continue
            if path.suffix == ".png":
                data = base64.b64encode(path.read_bytes()).decode()
                parts.append(f"<figure><img alt='{html.escape(key)}' "
                             f"src='data:image/png;base64,{data}'></figure>")
                shown = True
            elif path.suffix == ".json":
                parts.append(f"<h3>metrics</h3>{_metrics_table(path)}")
                shown = True
            elif path.suffix == ".csv":
                parts.append(f"<h3>results</h3>{_csv_table(path)}")
                shown = True
        if not shown:
            parts.append("<p>No analysis outputs yet: run <code>dvc repro</code>.</p>")
        section = yaml.safe_dump(cfg.model_dump(), sort_keys=False)
        parts.append(f"<details><summary>params: {html.escape(name)}</summary>"
                     f"<pre>{html.escape(section)}</pre></details>")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>theorydl report</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
    out = Path(params.report.path)
    write_text_atomic(out, page)
    return out
