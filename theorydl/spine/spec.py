"""Trial specs and their identities.

A trial is an experiment's fully resolved config plus a seed. Its id is a content hash
(SHA-256 of canonical JSON) of the experiment's name, its version, the config and the
seed: the same on every machine and every run, unlike Python's salted ``hash()``.
Bumping an experiment's version changes every id, so stale cache entries are not reused.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TrialSpec", "trial_id", "canonical_json", "grid", "derive_seed"]

_ID_HEX = 20  # 80 bits: collision odds ~1e-12 even for a billion trials


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace; rejects NaN/inf, which have no stable form."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def trial_id(experiment: str, version: int, config: Mapping[str, Any], seed: int) -> str:
    """The stable id of a trial: a hex prefix of SHA-256 over its canonical JSON."""
    payload = canonical_json(
        {"experiment": experiment, "version": version, "config": dict(config), "seed": seed}
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:_ID_HEX]


@dataclass(frozen=True)
class TrialSpec:
    """One trial: what to run, fully resolved. ``config`` values are JSON scalars or lists.

    ``swept`` names the config keys that vary across the sweep (they become their own
    columns in the store; every key is also kept in ``config_json``).
    """

    experiment: str
    version: int
    config: Mapping[str, Any]
    seed: int = 0
    swept: tuple[str, ...] = ()
    id: str = field(init=False)

    def __post_init__(self) -> None:
        for key, value in self.config.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"trial config {key}={value} is not finite")
        object.__setattr__(self, "config", dict(self.config))
        object.__setattr__(
            self, "id", trial_id(self.experiment, self.version, self.config, self.seed)
        )

    def to_dict(self) -> dict[str, Any]:
        return {"experiment": self.experiment, "version": self.version,
                "config": dict(self.config), "seed": self.seed, "swept": list(self.swept)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrialSpec":
        return cls(data["experiment"], data["version"], data["config"], data["seed"],
                   tuple(data.get("swept", ())))


def grid(axes: Mapping[str, Sequence[Any]]) -> Iterable[dict[str, Any]]:
    """The Cartesian product of named axes, in a deterministic order (axis order, then values)."""
    names = list(axes)
    for values in itertools.product(*(axes[n] for n in names)):
        yield dict(zip(names, values))


def derive_seed(base_seed: int, *parts: Any) -> int:
    """A 63-bit seed derived deterministically from a sweep seed and a trial's identity."""
    digest = hashlib.sha256(canonical_json([base_seed, *parts]).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1
