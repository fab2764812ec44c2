"""Progress is counted in trials, with failures and an ETA; log lines when not on a terminal."""

from __future__ import annotations

import logging

from theorydl.spine.sweep.progress import SweepProgress


def test_log_mode_counts_trials_failures_and_eta(caplog):
    caplog.set_level(logging.INFO, logger="theorydl")
    bar = SweepProgress("toy", total=10, mode="log", log_every=0.0)
    bar.update(3, 1, 0)
    assert (bar.done, bar.failed) == (4, 1)
    assert bar.eta_seconds() is not None and bar.eta_seconds() >= 0
    bar.update(5, 0, 1)
    bar.close()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("toy: 4/10 trials, 1 failed") and "eta" in lines[0]
    assert lines[-1].startswith("toy: 10/10 trials, 1 failed, 1 diverged")
    assert "eta" not in lines[-1]


def test_bar_mode_renders_without_a_terminal(capsys):
    bar = SweepProgress("toy", total=4, mode="bar")
    bar.update(2, 1, 0)
    bar.close()
    assert bar.done == 3 and bar.failed == 1


def test_auto_mode_is_log_when_stderr_is_not_a_terminal(capsys):
    assert SweepProgress("toy", total=1, mode="auto").mode == "log"
