"""The row schema: what every stored row carries, and how a unit's results become a table.

Columns, in order:

- identity: ``experiment``, ``trial_id``, ``attempt_id`` (one id per execution of a
  trial), ``seed``, ``status`` (``ok`` | ``failed`` | ``diverged``), ``error`` (text, for
  failed trials), ``config_json`` (the resolved trial config, canonical JSON);
- the swept config keys, each as its own column;
- the experiment's measurement columns (long form: a trial may have many rows);
- provenance: ``git_sha``, ``git_dirty``, ``theorydl_version``, ``torch_version``,
  ``ray_version``, ``python_version``, ``hostname``, ``node_id`` (Ray's), ``device``,
  ``started_at``, ``ended_at`` (UTC), ``duration_s``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from theorydl.spine.spec import TrialSpec, canonical_json

__all__ = ["TrialResult", "IDENTITY_COLUMNS", "PROVENANCE_COLUMNS", "build_table", "STATUSES"]

STATUSES = ("ok", "failed", "diverged")
IDENTITY_COLUMNS = ("experiment", "trial_id", "attempt_id", "seed", "status", "error",
                    "config_json")
PROVENANCE_COLUMNS = ("git_sha", "git_dirty", "theorydl_version", "torch_version",
                      "ray_version", "python_version", "hostname", "node_id", "device",
                      "started_at", "ended_at", "duration_s")
_RESERVED = frozenset(IDENTITY_COLUMNS + PROVENANCE_COLUMNS)


@dataclass
class TrialResult:
    """What one execution of a trial produced.

    ``rows`` are the measurement rows (long form; may be empty for a failed trial, which
    is then stored as one row of identity, config and provenance with null measurements).
    """

    trial_id: str
    status: str
    started_at: datetime
    ended_at: datetime
    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, not {self.status!r}")


def build_table(specs: Sequence[TrialSpec], results: Sequence[TrialResult],
                provenance: Mapping[str, Any]) -> pa.Table:
    """One Arrow table holding the rows of ``results`` (one unit), with identity and provenance."""
    by_id = {s.id: s for s in specs}
    records: list[dict[str, Any]] = []
    measure_keys: dict[str, None] = {}
    swept_keys: dict[str, None] = {}
    for res in results:
        spec = by_id[res.trial_id]
        for key in spec.swept:
            swept_keys.setdefault(key)
        attempt = uuid.uuid4().hex
        base = {
            "experiment": spec.experiment, "trial_id": spec.id, "attempt_id": attempt,
            "seed": spec.seed, "status": res.status, "error": res.error,
            "config_json": canonical_json(dict(spec.config)),
            **{k: spec.config[k] for k in spec.swept},
        }
        prov = {**provenance, "device": res.device, "started_at": res.started_at,
                "ended_at": res.ended_at,
                "duration_s": (res.ended_at - res.started_at).total_seconds()}
        for row in res.rows or [{}]:
            clash = _RESERVED.intersection(row).union(set(spec.swept).intersection(row))
            if clash:
                raise ValueError(f"measurement columns clash with reserved names: {sorted(clash)}")
            for key in row:
                measure_keys.setdefault(key)
            records.append({**base, **row, **prov})
    columns = [*IDENTITY_COLUMNS, *swept_keys, *measure_keys, *PROVENANCE_COLUMNS]
    data = {c: [r.get(c) for r in records] for c in columns}
    arrays = {c: _array(c, v) for c, v in data.items()}
    return pa.table(arrays)


_TYPES = {
    "seed": pa.int64(), "git_dirty": pa.bool_(), "duration_s": pa.float64(),
    "started_at": pa.timestamp("us", tz="UTC"), "ended_at": pa.timestamp("us", tz="UTC"),
}


def _array(name: str, values: list) -> pa.Array:
    if name in _TYPES:
        return pa.array(values, type=_TYPES[name])
    if name in _RESERVED:
        return pa.array(values, type=pa.string())
    return pa.array(values)
