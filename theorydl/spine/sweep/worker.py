"""What a Ray worker runs for one unit: the experiment's ``run_unit``, its rows as Arrow.

Both ways of running units use it: Ray tasks (:mod:`theorydl.spine.sweep.executor`) and
the GPU slot actors (:mod:`theorydl.spine.sweep.slots`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from theorydl.spine.config import Section
from theorydl.spine.provenance import worker_provenance
from theorydl.spine.store.rows import build_table

if TYPE_CHECKING:
    from theorydl.spine.experiment import Experiment, Unit

__all__ = ["run_unit_on_worker", "run_unit_task"]


def run_unit_on_worker(experiment: "Experiment", cfg: Section, unit: "Unit",
                       provenance: Mapping[str, Any]) -> pa.Table:
    """What a Ray task does: run the unit and return its rows as one Arrow table."""
    results = experiment.run_unit(unit, cfg)
    by_id = {r.trial_id: r for r in results}
    missing = [t for t in unit.trials if t.id not in by_id]
    if missing:
        raise RuntimeError(f"{experiment.name}.run_unit returned no result for "
                           f"{len(missing)} of {len(unit.trials)} trials")
    return build_table(unit.trials, results, {**provenance, **worker_provenance()})


def run_unit_task(experiment: "Experiment", cfg: Section, unit: "Unit",
                   provenance: Mapping[str, Any]) -> bytes:
    """The Ray task: :func:`run_unit_on_worker`, its table as Arrow IPC stream bytes.

    Ray's own pickling of an Arrow table costs about 1 ms per small table here; the IPC
    stream costs a twentieth of that on either side.
    """
    table = run_unit_on_worker(experiment, cfg, unit, provenance)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as out:
        out.write_table(table)
    return sink.getvalue().to_pybytes()
