"""Ask-and-tell searches: storage, resumption after a crash, and finding a known optimum."""

from __future__ import annotations

import math

import pytest

from theorydl.spine.sweep.search import AskTellSearch, FloatRange, open_study

SPACE = {"lr": FloatRange(1e-4, 1.0, log=True)}


def _loss(lr: float) -> float:
    """A bowl in log(lr) with its minimum at lr = 0.01, like a learning-rate curve."""
    return (math.log10(lr) + 2.0) ** 2


@pytest.mark.parametrize("kind", ["journal", "sqlite"])
def test_search_finds_the_known_optimum(tmp_path, kind):
    storage = (str(tmp_path / "study.log") if kind == "journal"
               else f"sqlite:///{tmp_path / 'study.db'}")
    search = AskTellSearch(open_study("width-64", storage, seed=0), SPACE)
    for _ in range(6):  # six batches of five, as stacks of five learning rates would run
        for number, params in search.ask(5):
            search.tell(number, _loss(params["lr"]))
    params, value = search.best()
    assert value < 0.05 and abs(math.log10(params["lr"]) + 2) < 0.25
    assert all(1e-4 <= t.params["lr"] <= 1.0 for t in search.study.trials)


def test_points_asked_but_never_told_come_back_first(tmp_path):
    storage = str(tmp_path / "study.log")
    first = AskTellSearch(open_study("s", storage, seed=1), SPACE)
    asked = first.ask(4)
    first.tell(asked[0][0], 1.0)
    first.tell(asked[1][0], None)  # a failed trial
    # The driver dies here. A new driver opens the same study from its journal:
    again = AskTellSearch(open_study("s", storage, seed=1), SPACE)
    assert again.pending() == asked[2:]
    batch = again.ask(3)
    assert batch[:2] == asked[2:] and batch[2][0] not in {n for n, _ in asked}
    assert [t.state.name for t in again.study.trials[:2]] == ["COMPLETE", "FAIL"]


def test_bad_ranges_are_rejected():
    with pytest.raises(ValueError):
        FloatRange(1.0, 0.1)
    with pytest.raises(ValueError):
        FloatRange(0.0, 1.0, log=True)
