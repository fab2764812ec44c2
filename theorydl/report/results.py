"""The results page: every declared claim with its verdict, scale and provenance.

``theorydl claims --markdown -o docs/results.md`` writes it from what a run left behind:

- each study's metrics file (``paths.metrics``: the ``claims`` entries the analyze stage
  wrote) for the published and measured values and the verdict;
- its train table (``paths.trials``) for the trials, their compute time (the summed run
  time of the units they ran in) and their provenance (git commits, hosts, devices, the
  date of the last trial);
- the run records of the trial store (:mod:`theorydl.spine.forecast`) for the wall time
  of the run that trained them and the forecast made before it;
- the params: which profile the study's section matches (``profiles/<name>.yaml`` sets
  all its keys to their values there, unless it is params.yaml's section as committed:
  ``default``; else ``custom``), and the values of the keys each claim's scale names.

A claim whose study has not been analysed is listed with verdict "not run": a claim never
drops from the page. For a claim that is not checkable, the page says what it needs (its
``needs``, the scale keys it falls short of), the command that checks it, and the forecast
of that run on this machine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from theorydl.spine import registry
from theorydl.spine.claims import NOT_CHECKABLE, NOT_REPRODUCED, REPRODUCED
from theorydl.spine.forecast import format_seconds, machine

__all__ = ["StudyResult", "collect", "results_markdown", "counts", "profile_of",
           "NOT_RUN", "COUNTS_BEGIN", "COUNTS_END", "update_counts_block"]

NOT_RUN = "not run"
COUNTS_BEGIN = "<!-- claims-counts: written by `theorydl claims --markdown` -->"
COUNTS_END = "<!-- /claims-counts -->"


@dataclass
class StudyResult:
    """One study's part of the page."""

    study: str
    profile: str
    claims: list[tuple[Any, dict | None]]
    """(declared claim, its entry in the metrics file, or None when not analysed)."""
    settings: dict[str, Any] = field(default_factory=dict)
    """The current value of every section key a claim's scale names."""
    trials: int = 0
    compute_s: float | None = None
    wall_s: float | None = None
    forecast_s: float | None = None
    commits: list[str] = field(default_factory=list)
    dirty: bool = False
    hosts: list[str] = field(default_factory=list)
    devices: list[str] = field(default_factory=list)
    date: str = ""
    machine: dict[str, Any] = field(default_factory=dict)
    paper_forecast: str = ""
    """How long the paper profile's train stage would take here, or why unknown."""


def _subset(patch: Any, value: Any) -> bool:
    """Whether every key ``patch`` sets has that value in ``value``."""
    if isinstance(patch, Mapping):
        return isinstance(value, Mapping) and all(
            k in value and _subset(v, value[k]) for k, v in patch.items())
    if isinstance(patch, (list, tuple)) and isinstance(value, (list, tuple)):
        return len(patch) == len(value) and all(_subset(a, b) for a, b in zip(patch, value))
    return patch == value


def profile_of(study: str, section: Mapping[str, Any], profiles: Mapping[str, Mapping],
               default: Mapping[str, Any] | None) -> str:
    """The name of the profile ``section`` (a study's resolved params, as a dict) is at:
    ``default`` when it equals ``default`` (params.yaml's section as committed), else a
    profile of ``profiles`` whose keys for the study all have their values there (paper
    first), else ``custom``."""
    if default is not None and dict(default) == dict(section):
        return "default"
    for name in ("paper", *sorted(p for p in profiles if p != "paper")):
        patch = (profiles.get(name) or {}).get(study)
        if patch and _subset(patch, section):
            return name
    return "custom"


def _train_summary(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    cols = ["trial_id", "started_at", "ended_at", "hostname", "device", "git_sha", "git_dirty"]
    table = pq.read_table(path, columns=[c for c in cols if c in pq.read_schema(path).names])
    rows = table.to_pylist()
    trials = {r["trial_id"] for r in rows}
    units = {(r.get("started_at"), r.get("ended_at"), r.get("hostname")) for r in rows
             if r.get("started_at") is not None}
    ends = [r["ended_at"] for r in rows if r.get("ended_at") is not None]
    return {"trials": len(trials),
            "compute_s": sum((e - s).total_seconds() for s, e, _ in units) if units else None,
            "commits": sorted({r["git_sha"][:10] for r in rows if r.get("git_sha")}),
            "dirty": any(bool(r.get("git_dirty")) for r in rows),
            "hosts": sorted({r["hostname"] for r in rows if r.get("hostname")}),
            "devices": sorted({str(r["device"]) for r in rows if r.get("device")}),
            "date": f"{max(ends):%Y-%m-%d}" if ends else "", "trial_ids": trials}


def _paper_forecast(fc) -> str:
    if fc.wall_s is not None:
        return (f"{format_seconds(fc.wall_s)} on {fc.slots} x {fc.device} "
                f"({fc.to_run} trials to run)")
    if fc.compute_s is not None:
        return f"{format_seconds(fc.compute_s)} of compute ({fc.why})"
    return f"unknown ({fc.why})"


def collect(params, profiles: Mapping[str, Mapping], default=None,
            paper_plan: Callable[[str], Any] | None = None) -> list[StudyResult]:
    """Every registered study's claims, entries, scale and provenance (module docstring).

    ``params``: the params the outputs were made from; ``profiles``: profile name ->
    its content; ``default``: params.yaml as committed (parsed), or None;
    ``paper_plan(study)``: the forecast of the study's train stage at the paper profile
    (a :class:`~theorydl.spine.forecast.Forecast`), asked for where a claim is not
    checked yet."""
    from theorydl.spine.store.store import Store

    store = Store(params.run.store)
    out = []
    for name in registry.names():
        exp = registry.get(name)
        cfg = exp.config(params)
        written = exp.written_claims(cfg)
        settings: dict[str, Any] = {}
        for claim in exp.claims:
            for key in claim.scale:
                value: Any = cfg
                for part in key.split("."):
                    value = getattr(value, part)
                settings[key] = value
        summary = _train_summary(exp.trials_path(cfg)) if written else {}
        runs = store.runs(name) if written else []
        run = runs[-1] if runs else None
        default_section = default.section(name).model_dump() if default is not None else None
        result = StudyResult(
            study=name, profile=profile_of(name, cfg.model_dump(), profiles, default_section),
            claims=[(c, written.get(c.id)) for c in exp.claims], settings=settings,
            trials=summary.get("trials", 0), compute_s=summary.get("compute_s"),
            commits=summary.get("commits", []), dirty=summary.get("dirty", False),
            hosts=summary.get("hosts", []), devices=summary.get("devices", []),
            date=summary.get("date", ""),
            wall_s=run.get("wall_s") if run else None,
            forecast_s=(run.get("forecast") or {}).get("wall_s") if run else None,
            machine=(run or {}).get("machine") or (machine() if written else {}))
        pending = any((e or {}).get("verdict") in (NOT_CHECKABLE, None)
                      for _, e in result.claims)
        if paper_plan is not None and pending and result.profile != "paper":
            if (profiles.get("paper") or {}).get(name):
                try:
                    result.paper_forecast = _paper_forecast(paper_plan(name))
                except Exception as exc:  # noqa: BLE001 - say why instead of failing the page
                    result.paper_forecast = f"unknown ({exc})"
            else:
                result.paper_forecast = "the paper profile has no section for it"
        out.append(result)
    return out


def counts(results: Sequence[StudyResult]) -> dict[str, int]:
    """Claims by verdict (``not run`` for studies without metrics), and the total."""
    out = {REPRODUCED: 0, NOT_REPRODUCED: 0, NOT_CHECKABLE: 0, NOT_RUN: 0}
    for r in results:
        for _, entry in r.claims:
            out[(entry or {}).get("verdict") or NOT_RUN] += 1
    out["total"] = sum(out.values())
    return out


def counts_line(c: Mapping[str, int]) -> str:
    line = (f"**{c['total']} claims: {c[REPRODUCED]} reproduced, {c[NOT_REPRODUCED]} not "
            f"reproduced, {c[NOT_CHECKABLE]} not checkable at the scale run**")
    return line[:-2] + f", {c[NOT_RUN]} not run**" if c[NOT_RUN] else line


def _cell(x: Any) -> str:
    return str(x).replace("|", "\\|").replace("\n", " ")


def _num(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, float):
        return f"{x:.4g}"
    return str(x)


def _published(claim) -> str:
    op = {"<=": "≤ ", ">=": "≥ ", "==": ""}[claim.op]
    tol = f" ± {claim.tolerance:g}" if claim.tolerance else ""
    return f"{op}{claim.published:g}{tol}"


def _scale(r: StudyResult, claim) -> str:
    keys = ", ".join(f"{k} = {_num(r.settings[k]) if not isinstance(r.settings[k], list) else r.settings[k]}"
                     for k in claim.scale)
    return f"{r.profile}" + (f": {keys}" if keys else "")


def _command(study: str) -> str:
    return f"`theorydl profile paper --only {study} && dvc repro {study}_analyze`"


def results_markdown(results: Sequence[StudyResult], generated: str = "") -> str:
    """The page's Markdown (see the module docstring)."""
    c = counts(results)
    lines = ["# Results", "",
             "Every claim the studies declare, re-measured by the pipeline, with the scale it "
             "was measured at and where. Generated by `theorydl claims --markdown -o "
             "docs/results.md` from the metrics files, the train tables and the trial "
             f"store{generated}; do not edit by hand.", "", counts_line(c), "",
             "## Runs", "",
             "| study | profile | trials | compute | wall (forecast) | commit | machine | "
             "device | date |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        if not r.trials:
            lines.append(f"| [{r.study}](studies/{r.study}.md) | {r.profile} | not run | | | "
                         f"| | | |")
            continue
        wall = format_seconds(r.wall_s) if r.wall_s is not None else "—"
        if r.forecast_s is not None:
            wall += f" ({format_seconds(r.forecast_s)})"
        m = r.machine
        where = _cell(f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores") if m else "—"
        commit = ", ".join(f"`{s}`" for s in r.commits) + (" (dirty)" if r.dirty else "")
        lines.append(f"| [{r.study}](studies/{r.study}.md) | {r.profile} | {r.trials} | "
                     f"{format_seconds(r.compute_s)} | {wall} | {commit or '—'} | {where} | "
                     f"{', '.join(r.devices) or '—'} | {r.date or '—'} |")
    lines += ["", "Compute: the summed run time of the units the trials ran in (units run "
              "in parallel); wall: the train stage's last run that trained trials, beside "
              "the forecast it made before starting (`theorydl plan`).", "",
              "## Claims", "",
              "| study | claim | paper | measured | verdict | scale | source |",
              "| --- | --- | --- | --- | --- | --- | --- |"]
    pending = []
    for r in results:
        for claim, entry in r.claims:
            verdict = (entry or {}).get("verdict") or NOT_RUN
            measured = _num((entry or {}).get("measured"))
            lines.append(f"| {r.study} | `{claim.id}`: {_cell(claim.claim)} | "
                         f"{_cell(_published(claim))} | {measured} | {verdict} | "
                         f"{_cell(_scale(r, claim))} | {_cell(claim.source)} |")
            if verdict in (NOT_CHECKABLE, NOT_RUN):
                pending.append((r, claim, entry))
    if pending:
        lines += ["", "## What the other claims need", "",
                  "| study | claim | needs | run it with | forecast here |",
                  "| --- | --- | --- | --- | --- |"]
        for r, claim, entry in pending:
            why = (entry or {}).get("why") or "the study's analysis has not run"
            needs = "; ".join(x for x in (why, claim.needs) if x)
            lines.append(f"| {r.study} | `{claim.id}` | {_cell(needs)} | {_command(r.study)} "
                         f"| {_cell(r.paper_forecast or '—')} |")
    notes = [(r, c) for r in results for c, _ in r.claims if c.note]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- {r.study} `{c.id}`: {_cell(c.note)}" for r, c in notes]
    return "\n".join(lines) + "\n"


def update_counts_block(text: str, c: Mapping[str, int]) -> str:
    """``text`` (the README) with its counts block replaced by the counts ``c``."""
    begin, end = text.find(COUNTS_BEGIN), text.find(COUNTS_END)
    if begin < 0 or end < begin:
        raise ValueError(f"no counts block ({COUNTS_BEGIN} ... {COUNTS_END}) to update")
    return (text[:begin + len(COUNTS_BEGIN)] + "\n" + counts_line(c) + "\n"
            + text[end:])
