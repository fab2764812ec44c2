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

__all__ = ["build_report", "claims_table", "cite", "embeds", "question", "summary"]

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1240px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.4}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;
text-align:right;vertical-align:top}th{background:#f3f3f3}
table.claims{width:100%;table-layout:fixed;font-size:90%}
table.claims td,table.claims th{overflow-wrap:anywhere}
table.claims col.study{width:7%}table.claims col.claim{width:33%}
table.claims col.source{width:15%}table.claims col.num{width:8%}
table.claims col.verdict{width:10%}table.claims col.scale{width:11%}
img{max-width:100%;height:auto}figure{margin:1em 0}figcaption{color:#444;font-size:90%}
pre{background:#f7f7f7;padding:.6em;overflow:auto;max-width:100%}
.meta{color:#666;font-size:90%}td.l{text-align:left}
.reproduced{background:#e3f4e3}.not-reproduced{background:#f9e0e0}
.not-checkable{background:#f3f3f3}nav ol{columns:3}details>summary{cursor:pointer}
.wide{overflow-x:auto;max-width:100%}"""

#: Verdicts in the order the claims table shows them: what disagrees with the paper first.
_ORDER = ("not reproduced", "reproduced", "not checkable at this scale", "not analysed yet")

#: Where a cited work lives, for sources that name no arXiv id or OEIS sequence.
_LINKS = {
    "Cohen & Shashua 2017": "https://arxiv.org/abs/1605.06743",
    "Neyshabur, Salakhutdinov & Srebro 2015": "https://arxiv.org/abs/1506.02617",
    "Neyshabur, Tomioka & Srebro 2015": "https://arxiv.org/abs/1412.6614",
    "Saxe et al. 2018": "https://openreview.net/forum?id=ry_WPG-A-",
    "Shalev-Shwartz, Shamir & Shammah 2017 (ICML)": "https://arxiv.org/abs/1703.07950",
    "Zahavy, Ben-Zrihem & Mannor 2016": "https://arxiv.org/abs/1602.02658",
}


def cite(source: str) -> str:
    """A claim's source as a short linked citation (authors, year, venue), the whole
    source in its tooltip: "Cohen & Shashua 2017 (ICLR)", "OEIS A000609"."""
    import re

    oeis = re.match(r"OEIS (A\d{6})", source)
    short = re.match(r"[^;]*?\b(?:19|20)\d\d\b(?: \([^)]*\))?", source)
    text = oeis[0] if oeis else (short[0] if short else source.split(",")[0])
    url = None
    arxiv = re.search(r"arXiv:(\d{4}\.\d{4,5})", text)
    if oeis:
        url = f"https://oeis.org/{oeis[1]}"
    elif arxiv:
        url = f"https://arxiv.org/abs/{arxiv[1]}"
    else:
        url = next((u for k, u in _LINKS.items() if text.startswith(k)), None)
    esc = html.escape
    body = f"<a href='{esc(url)}'>{esc(text)}</a>" if url else esc(text)
    return f"<span title='{esc(source)}'>{body}</span>"


def question(exp) -> str:
    """The study's one-line question: the first paragraph of its package docstring."""
    import importlib

    package = type(exp).__module__.rpartition(".")[0]
    doc = (importlib.import_module(package).__doc__ or "").strip()
    first = " ".join(doc.split("\n\n", 1)[0].split())
    return first.split(": ", 1)[1] if first.startswith(f"{exp.name}: ") else first


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
    the analysis wrote it in the study's claims file (None where the experiment has not
    been analysed: the claim is listed, with no verdict yet). Rows not reproduced come
    first, then reproduced, then those not checkable; each claim's reasons and notes are
    folded under it."""
    head = ("<colgroup><col class=study><col class=claim><col class=source><col class=num>"
            "<col class=num><col class=verdict><col class=scale><col class=num></colgroup>"
            "<tr><th>study</th><th>claim</th><th>source</th><th>published</th>"
            "<th>measured</th><th>verdict</th><th>meaningful at</th><th>notes</th></tr>")
    rows = []
    order = sorted(range(len(claims)), key=lambda i: _ORDER.index(
        (claims[i][2] or {}).get("verdict") or "not analysed yet"))
    for i in order:
        experiment, claim_id, entry = claims[i]
        e = entry or {}
        verdict = e.get("verdict") or "not analysed yet"
        css = {"reproduced": "reproduced", "not reproduced": "not-reproduced"}.get(
            verdict, "not-checkable")
        measured = e.get("measured")
        esc = html.escape
        notes = [x for x in (e.get("why"), e.get("note")) if x]
        cells = [
            ("l", f"<a href='#{esc(experiment)}'>{esc(experiment)}</a>"),
            ("l", f"{esc(str(e.get('claim', '')))} <span class=meta>({esc(claim_id)})</span>"),
            ("l", cite(str(e.get("source", ""))) if entry else ""),
            ("", esc(_published(e)) if entry else ""),
            ("", "" if measured is None else esc(f"{measured:g}")),
            ("", esc(verdict)),
            ("", esc(f"{e['profile']} profile") if entry else ""),
            ("l", f"<details><summary>{len(notes)}</summary>{esc('; '.join(notes))}</details>"
             if notes else ""),
        ]
        rows.append(f"<tr class={css} id='claim-{esc(experiment)}-{esc(claim_id)}'>" + "".join(
            f"<td class={c}>{text}</td>" if c else f"<td>{text}</td>" for c, text in cells)
            + "</tr>")
    if not rows:
        return "<p>No experiment declares claims.</p>"
    return f"<table class=claims>{head}{''.join(rows)}</table>"


def summary(claims: list[tuple[str, str, dict | None]]) -> dict[str, dict[str, int]]:
    """Claims counted by verdict, per study and in all (``"all"``)."""
    out: dict[str, dict[str, int]] = {"all": dict.fromkeys(_ORDER, 0)}
    for experiment, _, entry in claims:
        verdict = (entry or {}).get("verdict") or "not analysed yet"
        for key in ("all", experiment):
            out.setdefault(key, dict.fromkeys(_ORDER, 0))[verdict] += 1
    return out


def _summary_html(counts: dict[str, dict[str, int]], questions: dict[str, str]) -> str:
    total = counts["all"]
    line = ", ".join(f"{total[v]} {v}" for v in _ORDER if total[v] or v != _ORDER[-1])
    head = "".join(f"<th>{html.escape(v)}</th>" for v in _ORDER)
    body = "".join(
        f"<tr><td class=l><a href='#{html.escape(n)}'>{html.escape(n)}</a></td>"
        f"<td class=l>{html.escape(questions.get(n, ''))}</td>"
        + "".join(f"<td>{counts[n][v]}</td>" for v in _ORDER) + "</tr>"
        for n in questions if n in counts)
    return (f"<p class=summary><b>{sum(total.values())} claims: {html.escape(line)}.</b></p>"
            f"<div class=wide><table><tr><th>study</th><th>question</th>{head}</tr>{body}"
            "</table></div>")


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


def _embedded(path: Path) -> tuple[str, str]:
    """(MIME type, base64) of a figure as the page embeds it: the PNG re-encoded as
    lossless WebP where that is smaller (about a fifth smaller on these figures; every
    pixel the same), else the PNG's own bytes."""
    import io

    raw = path.read_bytes()
    try:
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as img:
            out = io.BytesIO()
            img.save(out, "WEBP", lossless=True, method=6)
        if out.tell() < len(raw):
            return "image/webp", base64.b64encode(out.getvalue()).decode()
    except (OSError, ValueError, KeyError):  # no WebP encoder here: the PNG as it is
        pass
    return "image/png", base64.b64encode(raw).decode()


def _profiles(root: Path = Path("profiles")) -> dict[str, dict]:
    from theorydl.spine.config import read_yaml

    return {p.stem: read_yaml(p) for p in sorted(root.glob("*.yaml"))}


def _profile(name: str, section: dict, profiles: dict[str, dict]) -> str:
    """The profile a study's params are at: the first of ``paper`` and then the others
    whose keys for the study all hold, else ``params.yaml`` (the default, or edited)."""
    from theorydl.report.results import profile_of

    found = profile_of(name, section, {k: v for k, v in profiles.items() if k != "test"},
                       None)
    return "params.yaml" if found == "custom" else found


def _caption(exp, key: str) -> str:
    """A figure's caption: the docstring of its ``paths`` field (or the file's name)."""
    model = exp.paths_model()
    field_ = model.model_fields.get(key) if model is not None else None
    return (field_.description if field_ is not None and field_.description else key)


def build_report(params: Params) -> Path:
    """Write ``params.report.path``: the summary (claims by verdict, per study), the claims
    table, then per study its question, its last training run, captioned figures and, folded,
    its metrics, results table and params. Experiments without outputs yet are listed."""
    from theorydl.spine.store.store import Store

    sha, dirty = git_state()
    shown_experiments = []
    for name in registry.names():
        exp = registry.get(name)
        try:
            cfg = exp.config(params)
        except Exception:  # noqa: BLE001 - a section absent from params is simply skipped
            continue
        shown_experiments.append((exp, cfg))
    profiles = _profiles()
    at = {exp.name: _profile(exp.name, cfg.model_dump(), profiles)
          for exp, cfg in shown_experiments}
    by_profile: dict[str, list[str]] = {}
    for name, prof in at.items():
        by_profile.setdefault(prof, []).append(name)
    esc = html.escape
    profile_line = "; ".join(f"{esc(p)}: {esc(', '.join(ns))}" for p, ns in by_profile.items())
    claims = [row for exp, cfg in shown_experiments for row in _claims_of(exp, cfg)]
    questions = {exp.name: question(exp) for exp, _ in shown_experiments}
    toc = "".join(f"<li><a href='#{esc(n)}'>{esc(n)}</a>: {esc(q)}</li>"
                  for n, q in questions.items())
    parts = [f"<h1>theorydl report</h1><p class=meta>generated "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} from commit "
             f"<code>{sha or 'unknown'}</code>{' (uncommitted changes)' if dirty else ''}; "
             f"profiles: {profile_line}</p>",
             _summary_html(summary(claims), questions),
             f"<nav><b>Contents</b><ol><li><a href='#claims'>Claims</a></li>{toc}</ol></nav>",
             "<h2 id=claims>Claims</h2><p class=meta>Published claims re-measured; a verdict "
             "counts only at the scale (profile) where the check is meaningful, and the "
             "measured value is shown either way. Not reproduced first.</p>"
             + claims_table(claims)]
    store = Store(params.run.store)
    for exp, cfg in shown_experiments:
        name = exp.name
        parts.append(f"<h2 id='{esc(name)}'>{esc(name)}</h2>"
                     f"<p><i>{esc(questions[name])}</i> <span class=meta>(profile: "
                     f"{esc(at[name])}; notes: <code>theorydl/studies/{esc(name)}/README.md"
                     f"</code>)</span></p>")
        parts.append(_last_run(store, name))
        outputs = {k: Path(v) for k, v in exp.outputs(cfg).items()}
        figures, folded = [], []
        for key, path in outputs.items():
            if not (path.is_file() and embeds(key, path)):
                continue
            if path.suffix == ".png":
                mime, data = _embedded(path)
                supports = ", ".join(f"<a href='#claim-{esc(name)}-{esc(c)}'>{esc(c)}</a>"
                                     for c in exp.claims_of_figure(key))
                figures.append(f"<figure><img alt='{esc(_caption(exp, key))}' "
                               f"src='data:{mime};base64,{data}'><figcaption>"
                               f"<code>{esc(path.name)}</code>: {esc(_caption(exp, key))}"
                               + (f" Claims it supports: {supports}." if supports else "")
                               + "</figcaption></figure>")
            elif path.suffix == ".json":
                folded.append(f"<details><summary>metrics ({esc(str(path))})</summary>"
                              f"<div class=wide>{_metrics_table(path)}</div></details>")
            elif path.suffix == ".csv":
                folded.append(f"<details><summary>results ({esc(str(path))})</summary>"
                              f"<div class=wide>{_csv_table(path)}</div></details>")
        if not figures and not folded:
            parts.append("<p>No analysis outputs yet: run <code>dvc repro</code>.</p>")
        parts.extend(figures + folded)
        section = yaml.safe_dump(cfg.model_dump(), sort_keys=False)
        parts.append(f"<details><summary>params: {esc(name)}</summary>"
                     f"<pre>{esc(section)}</pre></details>")
    page = (f"<!doctype html><html><head><meta charset='utf-8'>"
            f"<meta name=viewport content='width=device-width'><title>theorydl report</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
    out = Path(params.report.path)
    write_text_atomic(out, page)
    return out
