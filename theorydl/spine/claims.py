"""Published claims an experiment re-measures, and their verdicts.

An experiment lists its :class:`Claim` s in ``Experiment.claims``. Each claim reads one
number (or flag) from the metrics dict that the experiment's ``analyze`` returns, by a
dotted key path, and compares it with the published value or direction:

- ``op="=="``: reproduced when ``|measured - published| <= tolerance``;
- ``op=">="``: reproduced when ``measured >= published - tolerance``;
- ``op="<="``: reproduced when ``measured <= published + tolerance``.

A segment of the key path may be a glob (``fnmatch``: ``*``, ``?``, ``[1-5]``) that
matches several keys (seeds, layers, configurations): ``reduce="worst"`` (the default)
keeps the match farthest on the failing side, so every match must hold; ``"mean"``
their mean. Nulls (a layer that never reached a value, say) are left out of the match.

Published numbers decide verdicts; they are never used to tune anything. Each claim also
says the params scale at which the check means something (``scale``: least values of
section keys, the ones its ``profile`` sets): below it, and when the metrics hold no
value for it, the verdict is "not checkable at this scale", with the measured value
still shown beside the published one.

:func:`check_claims` returns one entry per claim id, all scalars, so that
``dvc metrics show`` lists them: ``claim``, ``source``, ``metric``, ``op``,
``published``, ``tolerance``, ``measured``, ``verdict``, ``profile``, ``why`` (why not
checkable, or empty) and ``note`` (where the setting is a proxy).
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Claim", "VERDICTS", "REPRODUCED", "NOT_REPRODUCED", "NOT_CHECKABLE",
           "check_claims", "evaluate_claim", "measure", "as_metrics"]

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NOT_CHECKABLE = "not checkable at this scale"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, NOT_CHECKABLE)

PROFILES = ("test", "default", "paper")


@dataclass(frozen=True)
class Claim:
    """One published claim, checked against one metric of an experiment's analysis."""

    id: str
    """Short name, unique within the experiment: the key of its verdict in the metrics."""
    claim: str
    """The claim in one line, as the source makes it."""
    source: str
    """Where it is published (authors, year, and the figure, table or section)."""
    metric: str
    """Dotted key path into the analysis metrics; a segment may be a glob."""
    op: Literal["==", "<=", ">="]
    """How the measured value must compare with ``published``."""
    published: float
    """The published value, or the bound that the published direction implies."""
    tolerance: float = 0.0
    """Slack of the comparison (see the module docstring); said before measuring."""
    profile: Literal["test", "default", "paper"] = "paper"
    """The smallest profile at which the check is meaningful."""
    scale: Mapping[str, Any] = field(default_factory=dict)
    """Least values of section keys (dotted) for the check to mean something: numbers
    must be at least these, lists must contain these elements, other values equal."""
    reduce: Literal["worst", "mean"] = "worst"
    """How several matches of a glob become one measured value."""
    note: str = ""
    """Where this setting is a proxy for the published one, or other caveats."""
    needs: str = ""
    """What checking it takes beyond a 2-core CPU (a GPU, a cluster, a download), said
    on the results page while it is not checked."""

    def __post_init__(self) -> None:
        if self.op not in ("==", "<=", ">="):
            raise ValueError(f"claim {self.id}: op must be ==, <= or >=, got {self.op!r}")
        if self.profile not in PROFILES:
            raise ValueError(f"claim {self.id}: profile must be one of {PROFILES}")
        if self.reduce not in ("worst", "mean"):
            raise ValueError(f"claim {self.id}: reduce must be worst or mean")
        if not self.tolerance >= 0:
            raise ValueError(f"claim {self.id}: tolerance must be >= 0")


def _matches(metrics: Any, parts: list[str]) -> list[Any]:
    if not parts:
        return [metrics]
    if not isinstance(metrics, Mapping):
        return []
    head, rest = parts[0], parts[1:]
    keys = [k for k in metrics if fnmatch.fnmatchcase(str(k), head)] if any(
        c in head for c in "*?[") else ([head] if head in metrics else [])
    return [v for k in keys for v in _matches(metrics[k], rest)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def measure(claim: Claim, metrics: Mapping[str, Any]) -> float | None:
    """The claim's measured value from ``metrics``, or None where they hold none."""
    values = [v for v in map(_number, _matches(metrics, claim.metric.split("."))) if v is not None]
    if not values:
        return None
    if claim.reduce == "mean":
        return sum(values) / len(values)
    if claim.op == ">=":
        return min(values)
    if claim.op == "<=":
        return max(values)
    return max(values, key=lambda v: abs(v - claim.published))


def _holds(claim: Claim, measured: float) -> bool:
    if claim.op == "==":
        return abs(measured - claim.published) <= claim.tolerance
    if claim.op == ">=":
        return measured >= claim.published - claim.tolerance
    return measured <= claim.published + claim.tolerance


def _short_of(cfg: Any, scale: Mapping[str, Any]) -> list[str]:
    """The scale keys the section falls short of, as readable lines (every key read)."""
    short = []
    for key, least in scale.items():
        value = cfg
        for part in key.split("."):
            value = getattr(value, part)
        if isinstance(least, (list, tuple)):
            ok = all(x in list(value) for x in least)
        elif isinstance(least, (int, float)) and not isinstance(least, bool):
            ok = value is not None and value >= least
        else:
            ok = value == least
        if not ok:
            short.append(f"{key} = {value!r}, needs {least!r}")
    return short


def _shown(x: float) -> float:
    """Six decimals, or six significant digits below 1 (a gap of 2e-7 is not 0)."""
    return float(f"{x:.6g}") if abs(x) < 1 else round(x, 6)


def evaluate_claim(claim: Claim, metrics: Mapping[str, Any], cfg: Any) -> dict[str, Any]:
    """The claim's entry: what it says, what was measured, and the verdict."""
    measured = measure(claim, metrics)
    why = _short_of(cfg, claim.scale)
    if measured is None:
        why.insert(0, f"no value of {claim.metric} in the metrics")
    if why:
        verdict = NOT_CHECKABLE
    else:
        verdict = REPRODUCED if _holds(claim, measured) else NOT_REPRODUCED
    return {"claim": claim.claim, "source": claim.source, "metric": claim.metric,
            "op": claim.op, "published": claim.published, "tolerance": claim.tolerance,
            "measured": None if measured is None else _shown(measured),
            "verdict": verdict, "profile": claim.profile, "why": "; ".join(why),
            "note": claim.note}


def check_claims(claims, metrics: Mapping[str, Any], cfg: Any) -> dict[str, dict[str, Any]]:
    """``{claim id: entry}`` for every claim (see :func:`evaluate_claim`)."""
    ids = [c.id for c in claims]
    if len(set(ids)) != len(ids):
        raise ValueError(f"repeated claim ids: {sorted(i for i in ids if ids.count(i) > 1)}")
    return {c.id: evaluate_claim(c, metrics, cfg) for c in claims}


def as_metrics(entries: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """The numeric view of claim entries that the metrics file holds, so that
    ``dvc metrics show`` and ``dvc metrics diff`` compare numbers, never prose: per claim
    ``measured`` (absent where nothing was measured) and ``reproduced``, 1 or 0 (absent
    where the claim is not checkable at this scale). The whole entries, with the claim's
    words, source, scale and note, go to the study's claims file."""
    out: dict[str, dict[str, float]] = {}
    for cid, entry in entries.items():
        view: dict[str, float] = {}
        if entry.get("measured") is not None:
            view["measured"] = entry["measured"]
        if entry["verdict"] != NOT_CHECKABLE:
            view["reproduced"] = int(entry["verdict"] == REPRODUCED)
        out[cid] = view
    return out
