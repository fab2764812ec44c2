"""The trial cache: which of the trials a sweep asks for must actually run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from theorydl.spine.spec import TrialSpec

__all__ = ["Plan", "plan_trials", "KEEP"]

# Statuses a stored trial keeps under each rerun policy: a diverged trial is a result
# (the learning rate was too high), a failed one is an error worth retrying.
KEEP = {"none": {"ok", "failed", "diverged"}, "failed": {"ok", "diverged"}, "all": set()}


@dataclass(frozen=True)
class Plan:
    trials: tuple[TrialSpec, ...]
    """Every trial the params ask for, in the experiment's order."""
    todo: tuple[TrialSpec, ...]
    """The trials to run now."""

    @property
    def cached(self) -> int:
        return len(self.trials) - len(self.todo)


def plan_trials(trials: Sequence[TrialSpec], stored: Mapping[str, str], rerun: str) -> Plan:
    """Drop trials whose latest stored attempt has a status the ``rerun`` policy keeps.

    ``stored`` maps trial id to the status of its latest stored attempt.
    """
    if rerun not in KEEP:
        raise ValueError(f"rerun must be one of {sorted(KEEP)}, not {rerun!r}")
    seen: set[str] = set()
    for t in trials:
        if t.id in seen:
            raise ValueError(f"the sweep asks for the same trial twice: {dict(t.config)}, "
                             f"seed {t.seed}")
        seen.add(t.id)
    keep = KEEP[rerun]
    todo = tuple(t for t in trials if stored.get(t.id) not in keep)
    return Plan(tuple(trials), todo)
