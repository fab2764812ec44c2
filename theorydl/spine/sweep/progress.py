"""Progress of a sweep, counted in trials (not units): a bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["SweepProgress"]

log = logging.getLogger("theorydl")


class SweepProgress:
    """Counts trials done, failed and diverged, with an ETA.

    ``mode``: "bar" (a rich progress bar), "log" (a line at most every ``log_every``
    seconds and at the end), "off", or "auto" (bar when stderr is a terminal, else log).
    """

    def __init__(self, label: str, total: int, mode: str = "auto", log_every: float = 10.0):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "log"
        self.label, self.total, self.mode, self.log_every = label, total, mode, log_every
        self.done = self.failed = self.diverged = 0
        self._start = time.monotonic()
        self._last_log = self._start
        self._bar = None
        if mode == "bar" and total:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("trials"), TextColumn("{task.fields[failures]}"),
                TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                transient=False,
            )
            self._task = self._bar.add_task(label, total=total, failures="")
            self._bar.start()

    def update(self, n_ok: int, n_failed: int, n_diverged: int) -> None:
        self.done += n_ok + n_failed + n_diverged
        self.failed += n_failed
        self.diverged += n_diverged
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, failures=self._failures())
        elif self.mode == "log":
            now = time.monotonic()
            if now - self._last_log >= self.log_every or self.done == self.total:
                self._last_log = now
                log.info("%s: %s", self.label, self.line())

    def _failures(self) -> str:
        parts = []
        if self.failed:
            parts.append(f"[red]{self.failed} failed")
        if self.diverged:
            parts.append(f"[yellow]{self.diverged} diverged")
        return " ".join(parts)

    def eta_seconds(self) -> float | None:
        if not self.done:
            return None
        elapsed = time.monotonic() - self._start
        return elapsed / self.done * (self.total - self.done)

    def line(self) -> str:
        eta = self.eta_seconds()
        text = f"{self.done}/{self.total} trials"
        if self.failed:
            text += f", {self.failed} failed"
        if self.diverged:
            text += f", {self.diverged} diverged"
        text += f", {time.monotonic() - self._start:.1f}s elapsed"
        if eta is not None and self.done < self.total:
            text += f", eta {eta:.0f}s"
        return text

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
