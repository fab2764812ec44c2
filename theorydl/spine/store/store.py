"""The Arrow/Parquet trial store: the source of truth for every result.

Layout: ``<root>/<experiment>/part-<utc time>-<uuid>.parquet``. A driver writes one file per
batch of units that finished close together (a unit is the trials that ran together in
one Ray task); :meth:`Store.compact` later merges small files into large ones. Files are
written under a hidden temporary name and renamed into place, so a crash leaves either a
whole file or a ``.tmp-*`` file that readers skip (pyarrow, DuckDB and :meth:`Store.read`
ignore names starting with ``.``). On object stores a single PUT is already atomic, so
files are written directly under their final name there.

A trial may have several attempts (a failed trial re-run, a forced re-run, two drivers
that ran it at once); readers see the latest attempt of each trial only, by ``ended_at``
(ties broken by ``attempt_id``). Every row of one attempt is written to one file, and
compaction copies whole attempts before it deletes their sources: so an attempt may sit
in two files for a while (a compaction killed between its write and its deletes, or two
compactions at once), and readers then take its rows from one file only.

Lookups read only the identity columns (trial id, attempt id, status, end time), every
file in parallel, and pick the latest attempts with one numpy sort over integer codes.

The root is a local folder or any pyarrow filesystem URI (``file://``, ``s3://``, ``gs://``).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from theorydl.spine.store.rows import IDENTITY_COLUMNS, PROVENANCE_COLUMNS

__all__ = ["Store", "Compaction", "csv_text", "write_csv_atomic", "write_table_atomic", "write_text_atomic"]

# The columns a lookup reads; every stored file has them, with these types.
_KEY_SCHEMA = pa.schema([("trial_id", pa.string()), ("attempt_id", pa.string()),
                         ("status", pa.string()), ("ended_at", pa.timestamp("us", tz="UTC"))])
_FILE = "__fragment_index"  # pyarrow's per-row index of the file a row came from
_RETRIES = 5  # re-lists when a compaction deletes a file between our listing and our read
_THREADS = 16  # parallel file reads: I/O-bound on object stores, cheap locally
_STALE_TMP_S = 3600.0  # a hidden temporary file this old belongs to a dead writer


@dataclass(frozen=True)
class Compaction:
    """What one :meth:`Store.compact` did."""

    files_before: int
    files_after: int
    rows: int
    """Rows written into the merged files."""
    seconds: float


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

    def _infos(self, experiment: str) -> list[pafs.FileInfo]:
        selector = pafs.FileSelector(self._dir(experiment), allow_not_found=True)
        try:
            listed = self.fs.get_file_info(selector)
        except FileNotFoundError:  # the folder appeared (a first append) while listed
            listed = []
        infos = [info for info in listed
                 if info.type == pafs.FileType.File and info.base_name.endswith(".parquet")
                 and not info.base_name.startswith((".", "_"))]
        return sorted(infos, key=lambda info: info.path)

    def files(self, experiment: str) -> list[str]:
        """The data files of an experiment, oldest first (temporary files excluded)."""
        return [info.path for info in self._infos(experiment)]

    def append(self, experiment: str, table: pa.Table) -> str:
        """Store rows atomically, as one new file; returns the file's path.

        Every row of an attempt must be in ``table`` (an attempt never spans files).
        """
        if table.num_rows == 0:
            raise ValueError("refusing to store an empty table")
        final = f"{self._dir(experiment)}/{_part_name()}"
        self.fs.create_dir(self._dir(experiment), recursive=True)
        if self.local:
            write_table_atomic(table, final)
        else:
            pq.write_table(table, final, filesystem=self.fs)
        return final

    def write_run(self, experiment: str, record: Mapping[str, Any]) -> str:
        """Keep one record of a stage run (JSON: its forecast and its wall time) beside the
        experiment's rows, as a file of its own (``_runs/``, which readers of rows skip)."""
        import json

        folder = f"{self._dir(experiment)}/_runs"
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        final = f"{folder}/{stamp}-{uuid.uuid4().hex[:8]}.json"
        text = json.dumps(record, indent=1, sort_keys=True, default=str) + "\n"
        if self.local:
            write_text_atomic(final, text)
        else:
            self.fs.create_dir(folder, recursive=True)
            with self.fs.open_output_stream(final) as fh:
                fh.write(text.encode())
        return final

    def runs(self, experiment: str) -> list[dict[str, Any]]:
        """The run records of an experiment, oldest first (unreadable ones skipped)."""
        import json

        selector = pafs.FileSelector(f"{self._dir(experiment)}/_runs", allow_not_found=True)
        infos = sorted((i for i in self.fs.get_file_info(selector)
                        if i.type == pafs.FileType.File and i.base_name.endswith(".json")
                        and not i.base_name.startswith(".")), key=lambda i: i.base_name)
        out = []
        for info in infos:
            try:
                with self.fs.open_input_stream(info.path) as fh:
                    out.append(json.loads(fh.read().decode()))
            except (OSError, ValueError):
                continue
        return out

    # --- reading ------------------------------------------------------------------------

    def _keys(self, experiment: str) -> tuple[list[pafs.FileInfo], pa.Table]:
        """Every file of the experiment and the key columns of all their rows, plus each
        row's file (as an index into the file list), read in parallel."""
        for attempt in range(_RETRIES):
            infos = self._infos(experiment)
            if not infos:
                return [], _KEY_SCHEMA.empty_table().append_column(_FILE, pa.array([], pa.int32()))
            fmt = ds.ParquetFileFormat()
            fragments = [fmt.make_fragment(i.path, self.fs, file_size=i.size) for i in infos]
            dataset = ds.FileSystemDataset(fragments, _KEY_SCHEMA, fmt, self.fs)
            try:
                table = dataset.to_table(columns=[*_KEY_SCHEMA.names, _FILE],
                                         fragment_readahead=_THREADS)
            except (FileNotFoundError, OSError):
                if attempt + 1 == _RETRIES or not self._vanished(infos):
                    raise
                continue
            return infos, table
        raise AssertionError("unreachable")

    def _vanished(self, infos: Sequence[pafs.FileInfo]) -> bool:
        """Whether some of ``infos`` no longer exist (a compaction replaced them)."""
        return any(i.type == pafs.FileType.NotFound
                   for i in self.fs.get_file_info([i.path for i in infos]))

    def latest_status(self, experiment: str) -> dict[str, str]:
        """``trial_id -> status`` of each stored trial's latest attempt."""
        _, keys = self._keys(experiment)
        latest = _latest(keys)
        return dict(zip(latest["trial_id"].to_pylist(), latest["status"].to_pylist()))

    def read(self, experiment: str, trial_ids: Iterable[str] | None = None,
             columns: Iterable[str] | None = None, latest: bool = True) -> pa.Table:
        """Rows of an experiment (optionally only ``trial_ids``), latest attempt per trial.

        ``columns`` restricts what is read (the trial id, attempt id and end time are always
        read). Files written by different code versions may differ in columns; they are
        unified by name, with nulls where a file lacks one.
        """
        if columns is not None:
            columns = list(dict.fromkeys(["trial_id", "attempt_id", "ended_at", *columns]))
        for attempt in range(_RETRIES):
            infos, keys = self._keys(experiment)
            if trial_ids is not None:
                keys = keys.filter(pc.is_in(keys["trial_id"], pa.array(list(set(trial_ids)),
                                                                        pa.string())))
            if latest:
                keys = keys.filter(pc.is_in(keys["attempt_id"], _latest(keys)["attempt_id"]))
            plan = _one_copy(keys)  # file index -> attempts to take from it
            try:
                tables = _read_files([infos[f].path for f in plan], self.fs, columns,
                                     list(plan.values()))
            except (FileNotFoundError, OSError):
                if attempt + 1 == _RETRIES or not self._vanished(infos):
                    raise
                continue
            tables = [t for t in tables if t.num_rows]
            if not tables:
                return pa.table({})
            return _concat(tables)
        raise AssertionError("unreachable")

    # --- compaction ---------------------------------------------------------------------

    def compact(self, experiment: str, small_bytes: int = 16 * 2 ** 20,
                target_bytes: int = 256 * 2 ** 20) -> Compaction:
        """Merge the experiment's files smaller than ``small_bytes`` into files of about
        ``target_bytes`` (on disk), keeping every attempt of every trial.

        Safe while drivers append (it merges only files it listed; new files are new
        names) and while others read. Crash-safe: the merged file is written atomically
        before any source is deleted, so a kill at any point loses no row and exposes no
        partial file; an attempt left in two files is read once (see the module's notes),
        and the next compaction removes the copy. Also deletes hidden temporary files
        older than an hour (left by killed writers).
        """
        t0 = time.monotonic()
        infos = self._infos(experiment)
        self._drop_stale_tmp(experiment)
        small = [i for i in infos if i.size < small_bytes]
        batches: list[list[pafs.FileInfo]] = []
        size = 0
        for info in small:
            if not batches or size + info.size > target_bytes:
                batches.append([])
                size = 0
            batches[-1].append(info)
            size += info.size
        rows = 0
        for batch in batches:
            if len(batch) < 2:
                continue  # a file alone is as small merged as it is now
            tables = _read_files([i.path for i in batch], self.fs, None, None)
            # Copies of one attempt (left by a killed compaction) are kept once.
            keep = _one_copy(pa.concat_tables(
                [t.select(["attempt_id"]).append_column(
                    _FILE, pa.array(np.full(t.num_rows, k, np.int32)))
                 for k, t in enumerate(tables)]))
            merged = pa.concat_tables(
                [tables[k].filter(pc.is_in(tables[k]["attempt_id"], attempts))
                 for k, attempts in keep.items()], promote_options="permissive")
            path = f"{self._dir(experiment)}/{_part_name()}"
            if self.local:
                write_table_atomic(merged, path)
                _fsync_dir(os.path.dirname(path))  # the new name is durable before deletes
            else:
                pq.write_table(merged, path, filesystem=self.fs)
            for info in batch:
                _delete(self.fs, info.path)
            rows += merged.num_rows
        return Compaction(len(infos), len(self.files(experiment)), rows, time.monotonic() - t0)

    def _drop_stale_tmp(self, experiment: str) -> None:
        if not self.local:
            return  # object stores have no temporary files
        folder = Path(self._dir(experiment))
        now = time.time()
        for tmp in folder.glob(".tmp-*"):
            try:
                if now - tmp.stat().st_mtime > _STALE_TMP_S:
                    tmp.unlink()
            except FileNotFoundError:
                pass


def _part_name() -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    return f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"


def _latest(keys: pa.Table) -> pa.Table:
    """One row per trial, from its most recent attempt: (trial_id, attempt_id, status).

    Most recent: the latest ``ended_at``, ties broken by the larger ``attempt_id``. Strings
    are dictionary-encoded once and the rows ordered by integer keys with numpy: an order of
    magnitude faster than grouping on the string columns.
    """
    if keys.num_rows == 0:
        return pa.table({"trial_id": pa.array([], pa.string()),
                         "attempt_id": pa.array([], pa.string()),
                         "status": pa.array([], pa.string())})
    trials = pc.dictionary_encode(keys["trial_id"].combine_chunks())
    attempts = pc.dictionary_encode(keys["attempt_id"].combine_chunks())
    rank = np.empty(len(attempts.dictionary), np.int64)  # an attempt id's place in text order
    rank[pc.sort_indices(attempts.dictionary).to_numpy()] = np.arange(len(rank))
    ended = pc.fill_null(keys["ended_at"].combine_chunks().cast(pa.int64()),
                         np.iinfo(np.int64).min).to_numpy()
    trial = trials.indices.to_numpy()
    order = np.lexsort((rank[attempts.indices.to_numpy()], ended, trial))
    ordered = trial[order]
    last = order[np.flatnonzero(np.append(ordered[1:] != ordered[:-1], True))]
    out = keys.select(["trial_id", "attempt_id", "status"]).take(pa.array(last))
    return out


def _concat(tables: list[pa.Table]) -> pa.Table:
    """Tables unified by column name, in an order that depends only on the set of
    columns: the identity columns, the others by name, the provenance columns. (A file's
    own order depends on which units were written together, i.e. on which finished
    first, and trials of one experiment may measure different things.)"""
    merged = pa.concat_tables(tables, promote_options="permissive")
    names = set(merged.column_names)
    first = [c for c in IDENTITY_COLUMNS if c in names]
    last = [c for c in PROVENANCE_COLUMNS if c in names]
    middle = sorted(names - set(first) - set(last))
    return merged.select(first + middle + last)


def _one_copy(keys: pa.Table) -> dict[int, pa.Array]:
    """For rows (``attempt_id``, file index), which attempts to read from which file: each
    attempt from the first file that holds it."""
    pairs = keys.group_by(["attempt_id", _FILE]).aggregate([])
    first = pairs.group_by("attempt_id").aggregate([(_FILE, "min")])
    files = first[f"{_FILE}_min"].to_numpy()
    attempts = first["attempt_id"].combine_chunks()
    order = np.argsort(files, kind="stable")
    bounds = np.flatnonzero(np.diff(files[order])) + 1
    return {int(files[idx[0]]): attempts.take(pa.array(idx))
            for idx in np.split(order, bounds) if len(idx)}


def _read_files(paths: Sequence[str], fs: pafs.FileSystem, columns: Sequence[str] | None,
                attempts: Sequence[pa.Array] | None) -> list[pa.Table]:
    """Read whole files in parallel: ``columns`` that each has (None: all), and, where
    ``attempts`` is given, only the rows of the attempts listed for each file."""

    def one(k: int) -> pa.Table:
        with fs.open_input_file(paths[k]) as fh:
            parquet = pq.ParquetFile(fh)
            names = parquet.schema_arrow.names
            cols = None if columns is None else [c for c in columns if c in names]
            table = parquet.read(columns=cols)
        if attempts is not None:
            table = table.filter(pc.is_in(table["attempt_id"], attempts[k]))
        return table

    if len(paths) <= 1:
        return [one(k) for k in range(len(paths))]
    with ThreadPoolExecutor(min(_THREADS, len(paths))) as pool:
        return list(pool.map(one, range(len(paths))))


def _delete(fs: pafs.FileSystem, path: str) -> None:
    try:
        fs.delete_file(path)
    except FileNotFoundError:
        pass  # another compaction got there first


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows of dicts as CSV text, columns in first-seen order."""
    import csv
    import io

    fields = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_csv_atomic(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> None:
    """Rows of dicts as a CSV file (:func:`csv_text`), written atomically."""
    write_text_atomic(path, csv_text(rows))
