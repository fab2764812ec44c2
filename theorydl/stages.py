"""The pipeline's stages as library calls: what each `pipelines/*.py` script runs.

- :func:`data`: an experiment's data-stage outputs;
- :func:`train`: plan the trials the params ask for, run the missing ones on Ray, and
  write the train table (exactly those trials, selected from the trial cache);
- :func:`analyze`: metrics, plot data and figures from the train table;
- :func:`report`: one HTML page from every analysed experiment's outputs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from theorydl.spine import registry
from theorydl.spine.config import Params
from theorydl.spine.provenance import driver_provenance
from theorydl.spine.store.store import Store, write_table_atomic
from theorydl.spine.sweep.executor import execute_units
from theorydl.spine.sweep.planner import plan_trials

__all__ = ["data", "train", "search", "run_specs", "status", "overview", "plan", "analyze", "report", "READS",
           "PARAMS_STAMP", "write_params_stamp"]

log = logging.getLogger("theorydl")

#: The base sections' keys each stage reads, beside its experiment's ``Stage.reads``
#: (the report reads every experiment's whole section too: it shows them; and the store,
#: for each study's last training run beside its forecast).
READS: dict[str, tuple[str, ...]] = {
    "data": (), "search": ("run",), "train": ("run", "wandb"), "analyze": ("wandb",),
    "report": ("report.path", "run.store")}


#: The output of the `validate` stage, which checks the whole params file and which every
#: other stage depends on: DVC runs it first, so a malformed params file stops `dvc repro`
#: before any stage deletes or writes an output. Its content never changes while the
#: params are valid, so a valid edit re-runs only the stages that read what changed.
PARAMS_STAMP = "results/params.valid"


def write_params_stamp(path: str | Path = PARAMS_STAMP) -> None:
    """Write the `validate` stage's output (called once the params validated)."""
    from theorydl.spine.store.store import write_text_atomic

    write_text_atomic(Path(path), "params.yaml: valid (`theorydl validate`)\n")


def data(params: Params, name: str) -> None:
    exp = registry.get(name)
    exp.data(params, exp.config(params))


def _timing_rows(store: Store, name: str) -> list[dict[str, Any]]:
    """One row per stored trial (latest attempt) with what the forecast times."""
    table = store.read(name, columns=["trial_id", "config_json", "seed", "status",
                                      "started_at", "ended_at", "hostname", "device"])
    seen: dict[str, dict[str, Any]] = {}
    for r in table.to_pylist():
        seen.setdefault(r["trial_id"], r)
    return list(seen.values())


def forecast_plan(params: Params, exp, cfg, plan, store: Store):
    """The forecast of running ``plan`` (:mod:`theorydl.spine.forecast`)."""
    from theorydl.spine.forecast import forecast

    rows = _timing_rows(store, exp.name) if plan.todo else []
    return forecast(exp, cfg, plan, rows, params.run.ray)


def run_specs(params: Params, exp, cfg, specs, record: bool = False) -> tuple[Any, Any]:
    """Run the trials of ``specs`` that the cache lacks; return (plan, their stored rows).

    The rows are exactly those of ``specs`` (latest attempt each), in a stable order, so
    a re-run served from the cache gives a byte-identical table. ``record``: forecast the
    run first, and keep the forecast and the wall time in the store (the train stage).
    """
    from theorydl.spine.forecast import format_seconds, run_record
    from theorydl.spine.experiment import utcnow

    run = params.run
    store = Store(run.store)
    plan = plan_trials(specs, store.latest_status(exp.name), run.rerun)
    log.info("%s: %d trials asked for, %d cached, %d to run", exp.name, len(plan.trials),
             plan.cached, len(plan.todo))
    if plan.todo:
        fc = forecast_plan(params, exp, cfg, plan, store) if record else None
        if fc is not None:
            log.info("%s: forecast %s wall (%s of compute) on %s %s slots%s", exp.name,
                     format_seconds(fc.wall_s), format_seconds(fc.compute_s), fc.slots,
                     fc.device, f" ({fc.why})" if fc.why else "")
        units = exp.units(plan.todo, cfg)
        provenance = driver_provenance()
        started = utcnow()
        summary = execute_units(exp, cfg, units, store, provenance, run.ray,
                                progress=run.progress)
        log.info("%s: ran %d trials in %d units in %.1fs: %d ok, %d failed, %d diverged",
                 exp.name, summary.trials, summary.units, summary.seconds, summary.ok,
                 summary.failed, summary.diverged)
        if fc is not None:
            store.write_run(exp.name, run_record(fc, started, utcnow(), len(plan.todo),
                                                 provenance))
        _compact_if_many(store, exp.name, run.compact_files)
    table = store.read(exp.name, trial_ids=[s.id for s in plan.trials])
    found = set(table["trial_id"].to_pylist()) if table.num_rows else set()
    missing = [s for s in plan.trials if s.id not in found]
    if missing:
        raise RuntimeError(f"{exp.name}: {len(missing)} planned trials have no stored rows")
    # A stable order makes the table's bytes depend only on its content, so a re-run
    # served from the cache leaves the DVC output (and everything downstream) unchanged.
    order = pc.sort_indices(table, [("trial_id", "ascending"), ("attempt_id", "ascending")])
    return plan, table.take(order)


def _compact_if_many(store: Store, name: str, most: int) -> None:
    """Merge the experiment's small part files once there are more than ``most``."""
    if not most:
        return
    files = len(store.files(name))
    if files > most:
        done = store.compact(name)
        log.info("%s: compacted the trial store, %d files -> %d (%d rows, %.1fs)", name,
                 done.files_before, done.files_after, done.rows, done.seconds)


def _warn_failed(table, what: str) -> int:
    status = dict(zip(table["trial_id"].to_pylist(), table["status"].to_pylist()))
    failed = sum(1 for v in status.values() if v == "failed")
    if failed:
        log.warning("%d trials failed; their rows carry the error. Re-run them with "
                    "`dvc repro -f %s` (run.rerun: failed retries them).", failed, what)
    return failed


def train(params: Params, name: str) -> dict[str, Any]:
    """Run the trials of experiment ``name`` that the cache lacks; write its train table."""
    exp = registry.get(name)
    cfg = exp.config(params)
    exp.check_data(cfg)
    plan, table = run_specs(params, exp, cfg, exp.trials(cfg), record=True)
    write_table_atomic(table, exp.trials_path(cfg))
    failed = _warn_failed(table, f"{name}_train")
    _mirror(params, exp, cfg, "train")
    return {"planned": len(plan.trials), "cached": plan.cached, "ran": len(plan.todo),
            "failed": failed}


def search(params: Params, name: str) -> dict[str, Any]:
    """An experiment's search stage (Optuna ask-and-tell over cached trials); writes its
    outputs and the rows of every searched point.

    ``exp.search(params, cfg, run)`` calls ``run(specs)`` for each round, and last for
    every point it searched (from its journal: cached rows are served, lost ones run
    again); that last call's rows are the search table."""
    from theorydl.spine.experiment import StageError
    from theorydl.spine.sweep.executor import ensure_ray

    exp = registry.get(name)
    cfg = exp.config(params)
    if not hasattr(exp, "search"):
        raise StageError(f"experiment {name!r} has no search stage")
    exp.check_data(cfg)
    tables = []

    def run(specs):
        _, table = run_specs(params, exp, cfg, specs)
        tables.append(table)
        return table

    # One Ray for every round of the search, not one start per round.
    started = ensure_ray(params.run.ray)
    try:
        result = exp.search(params, cfg, run)
    finally:
        if started:
            import ray

            ray.shutdown()
    if not tables:
        raise StageError(f"{name}.search ran no trials: its last run(specs) call must "
                         f"cover every searched point")
    table = tables[-1]  # run_specs's order: by trial, then attempt
    write_table_atomic(table, Path(cfg.paths.search_trials))
    _warn_failed(table, f"{name}_search")
    return result


def status(params: Params, name: str) -> dict[str, Any]:
    """What the trial cache holds for the trials the current params ask for."""
    exp = registry.get(name)
    specs = exp.trials(exp.config(params))
    stored = Store(params.run.store).latest_status(name)
    counts: dict[str, int] = {}
    for s in specs:
        key = stored.get(s.id, "missing")
        counts[key] = counts.get(key, 0) + 1
    todo = plan_trials(specs, stored, params.run.rerun).todo
    return {"experiment": name, "asked": len(specs), **counts, "would_run": len(todo)}


def overview(params: Params, name: str) -> dict[str, Any]:
    """One study's line of ``theorydl status``: trials asked, cached, failed and to run
    for the current params, and its verdicts by kind (from its claims file)."""
    from theorydl.spine.experiment import StageError

    exp = registry.get(name)
    cfg = exp.config(params)
    out: dict[str, Any] = {"study": name}
    try:
        specs = exp.trials(cfg)
    except (StageError, FileNotFoundError) as exc:
        out["why"] = f"trials unknown: {exc}"
    else:
        stored = Store(params.run.store).latest_status(name)
        todo = plan_trials(specs, stored, params.run.rerun).todo
        out.update(asked=len(specs), cached=len(specs) - len(todo),
                   failed=sum(1 for s in specs if stored.get(s.id) == "failed"),
                   to_run=len(todo))
    claims = exp.written_claims(cfg)
    if claims:
        verdicts = {k: 0 for k in ("reproduced", "not reproduced",
                                   "not checkable at this scale")}
        for entry in claims.values():
            verdicts[entry["verdict"]] = verdicts.get(entry["verdict"], 0) + 1
        out["verdicts"] = verdicts
    elif exp.claims:
        out.setdefault("why", "not analysed yet")
    return out


def plan(params: Params, name: str):
    """What the train stage of ``name`` would run now, and its forecast (no compute).
    A study whose trials need a missing data-stage output (width's searched learning
    rates) gets an unknown forecast naming it."""
    from theorydl.spine.experiment import StageError
    from theorydl.spine.forecast import Forecast

    exp = registry.get(name)
    cfg = exp.config(params)
    try:
        specs = exp.trials(cfg)
    except (StageError, FileNotFoundError) as exc:
        return Forecast(name, 0, 0, 0, why=f"trials unknown: {exc}")
    store = Store(params.run.store)
    planned = plan_trials(specs, store.latest_status(name), params.run.rerun)
    return forecast_plan(params, exp, cfg, planned, store)


def analyze(params: Params, name: str) -> dict[str, Any]:
    """The study's analysis of its train table, written: plot data, figures, metrics."""
    exp = registry.get(name)
    cfg = exp.config(params)
    table = pq.read_table(exp.trials_path(cfg))
    metrics = exp.write_analysis(exp.analyze(table, cfg, params), cfg)
    _mirror(params, exp, cfg, "analyze", metrics,
            trial_ids=sorted(set(table["trial_id"].to_pylist())))
    return metrics


def _mirror(params: Params, exp, cfg, stage: str, metrics: dict | None = None,
            trial_ids: list[str] | None = None) -> None:
    """Mirror a stage's outputs to W&B when `wandb.enabled` (wandb is imported only then).

    The run's config is the section keys the stage reads (no more: a key it does not read
    is no param of its DVC stage). The run id derives from the experiment, the stage, that
    config and the trials analysed, so the same params re-run (or `wandb sync`) resume
    the same run instead of duplicating it.
    """
    settings = params.wandb
    if not settings.enabled:
        return
    import hashlib

    from theorydl.report.wandb_mirror import WandbSettings, mirror_stage, mirror_trials
    from theorydl.spine.spec import canonical_json

    config = exp.stage_values(cfg, stage)
    key = hashlib.sha256(canonical_json([exp.name, stage, config, trial_ids or []]
                                        ).encode()).hexdigest()[:16]
    mirror = WandbSettings(**settings.model_dump())
    figures = {k: v for k, v in exp.outputs(cfg).items()
               if str(v).endswith(".png") and Path(v).exists()} if stage == "analyze" else {}
    table = str(exp.trials_path(cfg))
    run_id = mirror_stage(mirror, experiment=exp.name, stage=stage, config=config,
                          table_path=table, metrics=metrics, figures=figures, run_key=key)
    log.info("%s: mirrored the %s stage to W&B (%s mode, run %s)", exp.name, stage,
             settings.mode, run_id)
    if stage == "train" and settings.per_trial_runs:
        mirror_trials(mirror, experiment=exp.name, table_path=table)


def report(params: Params) -> Path:
    from theorydl.report.html import build_report

    return build_report(params)
