"""The report: one self-contained HTML page (figures embedded) for every experiment.

It is a view of the analysis outputs: figures, metrics, result tables, the params
section each came from, and the git commit of the code. Nothing in it is computed here.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from datetime import datetime, timezone
from pathlib import Path

import yaml

from theorydl import experiments
from theorydl.config import Params
from theorydl.provenance import git_state
from theorydl.store.store import write_text_atomic

__all__ = ["build_report", "embeds"]

_STYLE = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;
text-align:right}th{background:#f3f3f3}img{max-width:100%}pre{background:#f7f7f7;
padding:.6em;overflow:auto}.meta{color:#666;font-size:90%}"""


def _csv_table(path: Path) -> str:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows[1:])
    return f"<table><tr>{head}</tr>{body}</table>"


def _metrics_table(path: Path) -> str:
    def flat(prefix: str, value, out: list) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                flat(f"{prefix}.{k}" if prefix else str(k), v, out)
        else:
            out.append((prefix, value))
    items: list = []
    flat("", json.loads(path.read_text()), items)
    body = "".join(f"<tr><td style='text-align:left'>{html.escape(k)}</td>"
                   f"<td>{html.escape(str(v))}</td></tr>" for k, v in items)
    return f"<table><tr><th>metric</th><th>value</th></tr>{body}</table>"


def embeds(key: str, path: str | Path) -> bool:
    """Whether the report embeds output ``key``: a figure (PNG, or a folder of them, which
    :meth:`Experiment.outputs` lists), metrics (any JSON) or the results table (``table``)."""
    suffix = Path(path).suffix
    return suffix in (".png", ".json", "") or (suffix == ".csv" and key == "table")


def build_report(params: Params) -> Path:
    """Write ``params.report.path``; experiments without outputs yet are listed as such."""
    sha, dirty = git_state()
    parts = [f"<h1>theorydl report</h1><p class=meta>generated "
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC} from commit "
             f"<code>{sha or 'unknown'}</code>{' (uncommitted changes)' if dirty else ''}</p>"]
    for name in experiments.names():
        exp = experiments.get(name)
        try:
            cfg = exp.config(params)
        except Exception:  # noqa: BLE001 - a section absent from params is simply skipped
            continue
        parts.append(f"<h2>{html.escape(name)}</h2>")
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
