"""Mirror a stage's results to Weights & Biases (opt-in; the Arrow/Parquet store stays the truth).

Nothing here is needed to reproduce a result: W&B only shows what the store already holds.
The mirror is off unless ``WandbSettings.enabled`` is true, and while it is off ``wandb`` is
never imported (it is slow to import and starts a service process).

Runs never duplicate. Every run id is derived deterministically:

* a stage run's id from ``(experiment, stage, run_key)``, where ``run_key`` is whatever the
  caller passes to identify the inputs (the params section's content hash, say);
* a per-trial run's id from ``(experiment, trial_id)``.

``wandb.init`` is called with ``resume="allow"``, so re-running a stage, or ``wandb sync`` of
an offline directory, writes into the same run rather than a new one.

Secrets: the API key is read by ``wandb`` itself from ``WANDB_API_KEY`` (or its netrc); this
module never reads it except in :func:`redact`, never passes it to ``wandb`` and never logs
it. ``wandb.Settings`` is set so that nothing ever prompts (no interactive login); in
``mode="offline"`` no key is needed at all.

What is logged for a stage run (:func:`mirror_stage`):

* ``config``: the resolved params section the caller passes;
* ``results``: the Parquet results table as a ``wandb.Table``: only the scalar columns
  (bool, integer, float, string, dictionary-encoded strings, date/time as ISO text); list,
  struct, map and binary columns are left out (a W&B table is for looking at, the store keeps
  them). At most ``MAX_TABLE_ROWS`` rows are logged (the first ones, in file order); when rows
  are cut, ``summary["results_table_truncated"]`` records how many the file held;
* each figure as a ``wandb.Image``, under the key it has in ``figures``;
* the metrics, flattened (nested keys joined with ``"/"``), into ``run.summary``;
* the Parquet file itself as a ``wandb.Artifact`` (type ``"results"``, named
  ``f"{experiment}-{stage}"``).

Where an offline run lands: ``<dir>/wandb/offline-run-<YYYYmmdd_HHMMSS>-<run id>/`` with
``run-<run id>.wandb`` (the transaction log ``wandb sync`` uploads), ``files/media/`` (images,
``*.table.json``) and ``logs/``. Each call writes a new such directory (a re-run too); they
share the run id, so syncing them all still gives one run on the server.

Failures are not swallowed: ``mode="online"`` without a key raises ``wandb``'s
``UsageError`` (it does not prompt); the caller decides whether a mirror failure matters.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "MAX_TABLE_ROWS",
    "WandbSettings",
    "mirror_stage",
    "mirror_trials",
    "redact",
    "stage_run_id",
    "trial_run_id",
]

#: Rows at most in a logged ``wandb.Table`` (W&B tables are for viewing, not storage).
MAX_TABLE_ROWS = 10_000


@dataclass(frozen=True)
class WandbSettings:
    """How (and whether) a stage mirrors its results to Weights & Biases."""

    enabled: bool = False
    """Mirror at all. Off by default; while off, ``wandb`` is never imported."""

    mode: Literal["offline", "online"] = "offline"
    """``"offline"`` writes runs under ``dir`` only (upload later with ``wandb sync``);
    ``"online"`` streams them, with the key from ``WANDB_API_KEY`` in the environment."""

    project: str = "theorydl"
    """The W&B project the runs go to."""

    entity: str | None = None
    """The W&B user or team; ``None`` lets ``wandb`` use the key's default entity."""

    group: str | None = None
    """The run group; ``None`` groups runs by experiment name."""

    per_trial_runs: bool = False
    """Also write one run per trial (:func:`mirror_trials`), with its rows as history."""

    dir: str = ".wandb"
    """Where ``wandb`` writes its local files (offline runs land in ``dir/wandb/``)."""


# --------------------------------------------------------------------------- ids, secrets


def _hash_id(*parts: str) -> str:
    """A W&B-safe run id (lowercase hex, 32 characters) from the given parts."""
    h = hashlib.sha256()
    for p in parts:
        h.update(str(p).encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


def stage_run_id(experiment: str, stage: str, run_key: str) -> str:
    """The deterministic run id of a stage run (same inputs give the same id)."""
    return _hash_id("stage", experiment, stage, run_key)


def trial_run_id(experiment: str, trial_id: Any) -> str:
    """The deterministic run id of a per-trial run (same trial gives the same id)."""
    return _hash_id("trial", experiment, str(trial_id))


def redact(text: str) -> str:
    """Replace the value of ``WANDB_API_KEY`` (if set, non-empty) in ``text`` with ``***``."""
    key = os.environ.get("WANDB_API_KEY", "")
    if key and key.strip():
        text = text.replace(key, "***")
        stripped = key.strip()
        if stripped != key:
            text = text.replace(stripped, "***")
    return text


# --------------------------------------------------------------------------- helpers


def _wandb_settings(wandb, settings: WandbSettings):
    """``wandb.Settings`` that never prompt and collect nothing beyond what is logged."""
    return wandb.Settings(
        mode=settings.mode,
        silent=True,
        console="off",  # stage logs go to the store's own logs, not W&B
        save_code=False,
        disable_code=True,
        disable_git=True,
        disable_job_creation=True,
        x_disable_stats=True,
        x_disable_machine_info=True,
        init_timeout=120,
        reinit="create_new",  # never finish a run the caller has open
    )


def _flush(wandb) -> None:
    """Make the runs just finished durable on disk before returning.

    ``run.finish()`` can return before the W&B service has written the offline ``.wandb``
    log (seen in 0.31 under load: a file holding only its header). When no other run is
    open in this process, ``wandb.teardown()`` stops the service, which writes everything;
    the next ``wandb.init`` starts a new one (about a second). With the caller's own runs
    still open it is left alone (they are flushed when the process exits, as usual).
    """
    try:
        from wandb.sdk import wandb_setup

        if wandb_setup.singleton().most_recent_active_run is not None:
            return
    except Exception:  # noqa: BLE001 - internal API; without it, just skip the flush
        return
    wandb.teardown()


def _init(wandb, settings: WandbSettings, **kwargs):
    os.makedirs(settings.dir, exist_ok=True)
    return wandb.init(
        project=settings.project,
        entity=settings.entity,
        mode=settings.mode,
        dir=settings.dir,
        resume="allow",
        settings=_wandb_settings(wandb, settings),
        **kwargs,
    )


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to one level, keys joined with ``"/"``; values made JSON-plain."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "/"))
        else:
            out[key] = _plain(v)
    return out


def _plain(v: Any) -> Any:
    """A JSON-friendly scalar (numpy scalars to Python; lists kept; others to ``str``)."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    item = getattr(v, "item", None)
    if callable(item):
        try:
            return item()
        except (ValueError, TypeError):
            pass
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return str(v)


def _is_scalar_type(t) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(t):
        return _is_scalar_type(t.value_type)
    return (
        pa.types.is_boolean(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_temporal(t)
    )


def _is_numeric_type(t) -> bool:
    import pyarrow as pa

    return pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t)


def _cell(v: Any) -> Any:
    """A table cell: temporal values as ISO text, decimals as float, the rest unchanged."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    iso = getattr(v, "isoformat", None)
    if callable(iso):
        return iso()
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


def _scalar_table(table, max_rows: int):
    """(columns, rows, total_rows) of the scalar columns, rows capped at ``max_rows``."""
    cols = [f.name for f in table.schema if _is_scalar_type(f.type)]
    total = table.num_rows
    sub = table.select(cols).slice(0, max_rows)
    data = sub.to_pydict()
    rows = [[_cell(data[c][i]) for c in cols] for i in range(sub.num_rows)]
    return cols, rows, total


# --------------------------------------------------------------------------- stage runs


def mirror_stage(
    settings: WandbSettings,
    *,
    experiment: str,
    stage: str,
    config: dict,
    table_path: str | None,
    metrics: dict | None,
    figures: dict[str, str],
    run_key: str,
) -> str | None:
    """Mirror one stage's outputs into one W&B run; return its id (``None`` when disabled).

    The run id is :func:`stage_run_id` of ``(experiment, stage, run_key)``, so the same
    inputs always write into the same run. ``job_type`` is the stage, the group
    ``settings.group`` or the experiment. See the module docstring for what is logged.
    """
    if not settings.enabled:
        return None
    import wandb  # only here: a disabled mirror never imports wandb

    run_id = stage_run_id(experiment, stage, run_key)
    run = _init(
        wandb,
        settings,
        id=run_id,
        name=f"{experiment}-{stage}",
        job_type=stage,
        group=settings.group or experiment,
        config=dict(config or {}),
    )
    try:
        log: dict[str, Any] = {}
        if table_path is not None:
            import pyarrow.parquet as pq

            table = pq.read_table(table_path)
            cols, rows, total = _scalar_table(table, MAX_TABLE_ROWS)
            log["results"] = wandb.Table(columns=cols, data=rows)
            run.summary["results_table_rows"] = total
            if total > len(rows):
                run.summary["results_table_truncated"] = total
        for name, path in sorted((figures or {}).items()):
            log[f"figures/{name}"] = wandb.Image(str(path))
        if log:
            run.log(log)
        if metrics:
            for k, v in _flatten(metrics).items():
                run.summary[k] = v
        if table_path is not None:
            art = wandb.Artifact(name=f"{experiment}-{stage}", type="results")
            art.add_file(str(table_path))
            run.log_artifact(art)
    finally:
        run.finish()
        _flush(wandb)
    return run_id


# --------------------------------------------------------------------------- trial runs


def mirror_trials(
    settings: WandbSettings,
    *,
    experiment: str,
    table_path: str,
    max_runs: int = 1000,
) -> list[str]:
    """One W&B run per ``trial_id`` (when ``settings.enabled`` and ``per_trial_runs``).

    Each run's id is :func:`trial_run_id` of ``(experiment, trial_id)``; its config is the
    trial's ``config_json`` (parsed; the first row's), plus ``trial_id`` and ``seed``; its
    history is the trial's rows in file order, numeric columns only (with ``epoch`` as the
    step when the table has one; a step that does not increase is moved to the previous
    step + 1, as W&B drops steps that go back); its summary holds the trial's last
    ``status``. At most ``max_runs`` trials are mirrored (in order of first appearance).
    Returns the run ids; ``[]`` when disabled (and then ``wandb`` is not imported).
    """
    if not (settings.enabled and settings.per_trial_runs):
        return []
    import pyarrow.parquet as pq
    import wandb

    table = pq.read_table(table_path)
    if "trial_id" not in table.column_names:
        return []
    data = table.to_pydict()
    numeric = [
        f.name
        for f in table.schema
        if _is_numeric_type(f.type) and f.name not in ("trial_id", "seed", "epoch")
    ]
    has_epoch = "epoch" in data
    order: list[Any] = []
    rows_of: dict[Any, list[int]] = {}
    for i, tid in enumerate(data["trial_id"]):
        if tid not in rows_of:
            order.append(tid)
            rows_of[tid] = []
        rows_of[tid].append(i)

    ids: list[str] = []
    for tid in order[:max_runs]:
        idx = rows_of[tid]
        first = idx[0]
        config: dict[str, Any] = {}
        raw = data.get("config_json", [None] * len(data["trial_id"]))[first]
        if raw:
            try:
                parsed = json.loads(raw)
                config = parsed if isinstance(parsed, dict) else {"config": parsed}
            except (TypeError, ValueError):
                config = {"config_json": str(raw)}
        config["trial_id"] = _plain(tid)
        if "seed" in data:
            config["seed"] = _plain(data["seed"][first])
        run_id = trial_run_id(experiment, tid)
        run = _init(
            wandb,
            settings,
            id=run_id,
            name=f"{experiment}-trial-{tid}",
            job_type="trial",
            group=settings.group or experiment,
            config=config,
        )
        try:
            last_step = -1
            for i in idx:
                rec = {}
                for c in numeric:
                    v = data[c][i]
                    if v is None or (isinstance(v, float) and math.isnan(v)):
                        continue
                    rec[c] = v
                if has_epoch and data["epoch"][i] is not None:
                    step = int(data["epoch"][i])
                    if step <= last_step:  # W&B steps must increase; keep the row anyway
                        step = last_step + 1
                    rec["epoch"] = data["epoch"][i]
                    run.log(rec, step=step)
                    last_step = step
                else:
                    run.log(rec)
            if "status" in data:
                run.summary["status"] = _plain(data["status"][idx[-1]])
        finally:
            run.finish()
        ids.append(run_id)
    _flush(wandb)
    return ids
