"""Optuna searches driven by ask-and-tell, so that every asked point is an ordinary trial.

A search asks Optuna for a batch of points, turns each into a trial spec (the caller's
job: it knows the experiment), runs the batch through the usual planner, executor and
store (in stacks, cached, on Ray), then tells Optuna each trial's value. Nothing runs
inside Optuna: the trial cache stays the source of truth.

The study lives in a journal file by default (`storage` a path) or in any database
Optuna accepts (`storage` a URL such as ``sqlite:///studies.db`` or
``postgresql://...``), so a study survives the driver: :meth:`AskTellSearch.ask` first
hands back the points that were asked but never told (a driver killed mid-batch), with
their original parameters, before asking for new ones.

Open a study in the dashboard: ``optuna-dashboard <journal file or URL>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import optuna

__all__ = ["FloatRange", "AskTellSearch", "open_study"]


@dataclass(frozen=True)
class FloatRange:
    """A searched float parameter: [low, high], log-uniform when ``log``."""

    low: float
    high: float
    log: bool = False

    def __post_init__(self) -> None:
        if not self.high > self.low or (self.log and self.low <= 0):
            raise ValueError(f"bad range [{self.low}, {self.high}] (log={self.log})")


def open_study(name: str, storage: str, *, direction: str = "minimize",
               seed: int = 0, n_startup_trials: int = 10) -> optuna.Study:
    """Create or load study ``name`` from a journal file path or a database URL.

    The TPE sampler is seeded, so the same storage and seed ask the same points; its
    first ``n_startup_trials`` points are random (Optuna's default is 10, too many for
    the few points per study of a width sweep).
    """
    if "://" in storage:
        backend: str | optuna.storages.BaseStorage = storage
    else:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        Path(storage).parent.mkdir(parents=True, exist_ok=True)
        backend = JournalStorage(JournalFileBackend(str(storage)))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name=name, storage=backend, direction=direction,
                               sampler=optuna.samplers.TPESampler(
                                   seed=seed, n_startup_trials=n_startup_trials),
                               load_if_exists=True)


class AskTellSearch:
    """Batches of asked points for a study; values told back by Optuna trial number."""

    def __init__(self, study: optuna.Study, space: Mapping[str, FloatRange]) -> None:
        self.study = study
        self.space = dict(space)

    def pending(self) -> list[tuple[int, dict[str, float]]]:
        """Points asked earlier and never told (their trials are still RUNNING)."""
        running = self.study.get_trials(deepcopy=False,
                                        states=(optuna.trial.TrialState.RUNNING,))
        return [(t.number, dict(t.params)) for t in running]

    def ask(self, n: int) -> list[tuple[int, dict[str, float]]]:
        """``n`` points: the pending ones first, then new ones from the sampler."""
        points = self.pending()[:n]
        while len(points) < n:
            trial = self.study.ask()
            params = {k: trial.suggest_float(k, r.low, r.high, log=r.log)
                      for k, r in self.space.items()}
            points.append((trial.number, params))
        return points

    def told(self) -> list[dict[str, float]]:
        """The parameters of every point told so far (completed or failed), in order."""
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
        return [dict(t.params) for t in self.study.get_trials(deepcopy=False, states=states)]

    def finished(self) -> int:
        """Points told so far (completed or failed)."""
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
        return len(self.study.get_trials(deepcopy=False, states=states))

    def tell(self, number: int, value: float | None) -> None:
        """The value of an asked point; None (failed or diverged trial) marks it failed."""
        if value is None:
            self.study.tell(number, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(number, float(value))

    def best(self) -> tuple[dict[str, float], float] | None:
        """(parameters, value) of the best completed point, or None before any."""
        done = self.study.get_trials(deepcopy=False,
                                     states=(optuna.trial.TrialState.COMPLETE,))
        if not done:
            return None
        return dict(self.study.best_trial.params), float(self.study.best_value)
