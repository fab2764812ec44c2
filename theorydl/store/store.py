"""The Arrow/Parquet trial store: the source of truth for every result.

Layout: ``<root>/<experiment>/part-<utc time>-<uuid>.parquet``, one file per finished unit
(a unit is the trials that ran together in one Ray task). Files are written under a
hidden temporary name and renamed into place, so a crash leaves either a whole file or
a ``.tmp-*`` file that readers skip (pyarrow, DuckDB and :meth:`Store.read` ignore names
starting with ``.``). A trial may have several attempts (a failed trial re-run, a forced
re-run); readers see the latest attempt of each trial only, by ``ended_at``.

The root is a local folder or any pyarrow filesystem URI (``file://``, ``s3://``,
``gs://``). On object stores a single PUT is already atomic, so files are written
directly under their final name there.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

__all__ = ["Store", "write_table_atomic", "write_text_atomic"]


class Store:
    """A Parquet dataset of trial rows, partitioned by experiment."""

    def __init__(self, root: str) -> None:
        if "://" in root:
            self.fs, path = pafs.FileSystem.from_uri(root)
            self.local = isinstance(self.fs, pafs.LocalFileSystem)
        else:
            self.fs, path, self.local = pafs.LocalFileSystem(), os.path.abspath(root), True
        self.root = path.rstrip("/")
        self.uri = root

    def __repr__(self) -> str:
        return f"Store({self.uri!r})"

    def _dir(self, experiment: str) -> str:
        if not experiment or "/" in experiment or experiment.startswith("."):
            raise ValueError(f"bad experiment name {experiment!r}")
        return f"{self.root}/{experiment}"

    def files(self, experiment: str) -> list[str]:
        """The data files of an experiment, oldest first (temporary files excluded)."""
        selector = pafs.FileSelector(self._dir(experiment), allow_not_found=True)
        names = [
            info.path for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File and info.base_name.endswith(".parquet")
            and not info.base_name.startswith((".", "_"))
        ]
        return sorted(names)

    def append(self, experiment: str, table: pa.Table) -> str:
        """Store one unit's rows atomically; returns the file's path."""
        if table.num_rows == 0:
            raise ValueError("refusing to store an empty table")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        name = f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"
        final = f"{self._dir(experiment)}/{name}"
        self.fs.create_dir(self._dir(experiment), recursive=True)
        if self.local:
            write_table_atomic(table, final)
        else:
            pq.write_table(table, final, filesystem=self.fs)
        return final

    def read(self, experiment: str, trial_ids: Iterable[str] | None = None,
             columns: Iterable[str] | None = None, latest: bool = True) -> pa.Table:
        """Rows of an experiment (optionally only ``trial_ids``), latest attempt per trial.

        ``columns`` restricts what is read (the trial id, attempt id and end time are always
        read, to pick the latest attempt). Files written by different code versions may
        differ in columns; they are unified by name, with nulls where a file lacks one.
        """
        wanted = None if trial_ids is None else set(trial_ids)
        if columns is not None:
            columns = list(dict.fromkeys(["trial_id", "attempt_id", "ended_at", *columns]))
        tables = []
        for path in self.files(experiment):
            table = pq.read_table(path, filesystem=self.fs, columns=columns)
            if wanted is not None:
                mask = pc.is_in(table["trial_id"], pa.array(sorted(wanted)))
                table = table.filter(mask)
            if table.num_rows:
                tables.append(table)
        if not tables:
            return pa.table({})
        table = pa.concat_tables(tables, promote_options="permissive")
        return _latest_attempts(table) if latest else table

    def latest_status(self, experiment: str) -> dict[str, str]:
        """``trial_id -> status`` of each stored trial's latest attempt."""
        table = self.read(experiment, columns=["status"])
        if table.num_rows == 0:
            return {}
        return dict(zip(table["trial_id"].to_pylist(), table["status"].to_pylist()))


def _latest_attempts(table: pa.Table) -> pa.Table:
    """Keep, for each trial, only the rows of its most recent attempt."""
    best: dict[str, tuple] = {}
    for tid, attempt, ended in zip(table["trial_id"].to_pylist(),
                                   table["attempt_id"].to_pylist(),
                                   table["ended_at"].to_pylist()):
        key = (ended, attempt)
        if tid not in best or key > best[tid]:
            best[tid] = key
    winners = pa.array(sorted({attempt for _, attempt in best.values()}))
    return table.filter(pc.is_in(table["attempt_id"], winners))


def write_table_atomic(table: pa.Table, path: str | os.PathLike) -> None:
    """Write a Parquet file so that readers see either nothing or the whole file.

    The bytes go to a hidden temporary file in the same folder, are flushed to disk, and
    the file is renamed over ``path`` (rename is atomic within one filesystem).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{path.name}")
    try:
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a text file (metrics, CSV, HTML) atomically: temporary name, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:12]}-{path.name}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
