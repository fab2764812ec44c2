"""The experiment interface: the seam every experiment plugs into the spine through.

An experiment declares its params section (a :class:`theorydl.spine.config.Section`), expands
it into trial specs, groups trials into units (a unit runs as one Ray task: one trial,
a shard of work, or a stack of models trained together), runs a unit on a worker, and
analyses the stored table. It also says, per pipeline stage, which section keys the stage
reads and which paths it reads and writes (:class:`Stage`); dvc.yaml is generated from
that (``theorydl dvc``). Everything else (trial ids, the cache, Ray, the store,
provenance, progress) is the spine's job.
"""

from __future__ import annotations

import abc
import importlib
import json
import math
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from theorydl.spine.claims import Claim, as_metrics, check_claims
from theorydl.spine.config import Params, Paths, Section
from theorydl.spine.spec import TrialSpec
from theorydl.spine.store.rows import TrialResult

__all__ = ["Analysis", "Claim", "Experiment", "Plot", "Stage", "StageError", "STAGE_KINDS",
           "Unit", "rounded", "run_each", "utcnow", "error_text"]

STAGE_KINDS = ("data", "search", "train", "analyze")
"""The stages an experiment may have, in the order they run (`pipelines/<kind>.py`)."""


class StageError(RuntimeError):
    """A stage cannot go on for a reason the user can fix; the message says how."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def error_text(exc: BaseException, limit: int = 4000) -> str:
    """The exception and the tail of its traceback, bounded so rows stay small."""
    text = "".join(traceback.format_exception(exc)).strip()
    return text if len(text) <= limit else "..." + text[-limit:]


def rounded(x: Any, digits: int = 6) -> float | None:
    """A metric for the metrics file: ``x`` rounded to ``digits``, or None (JSON null)
    when it is missing or not finite."""
    if x is None:
        return None
    x = float(x)
    return round(x, digits) if math.isfinite(x) else None


@dataclass
class Analysis:
    """What a study's ``analysis.analyze(table, cfg)`` returns: data only, no files.

    The spine writes it (:meth:`Experiment.write_analysis`): each entry of ``plots`` to
    its ``paths`` key as CSV, the figures through the study's ``figures.draw(result,
    cfg)``, and ``metrics``, with the claims' verdicts added, once to ``paths.metrics``.
    """

    metrics: dict[str, Any]
    """The summary the claims read (JSON-able, nested dicts; keys are strings)."""
    plots: dict[str, Any] = field(default_factory=dict)
    """Plot data by ``paths`` key: a pandas DataFrame (written without its index) or the
    CSV text itself."""
    frames: dict[str, Any] = field(default_factory=dict)
    """Whatever the study's figures draw from (frames, dicts), by name."""


@dataclass(frozen=True)
class Unit:
    """Trials that run together as one Ray task, with the resources that task asks for."""

    trials: tuple[TrialSpec, ...]
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    label: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Stage:
    """What one stage of an experiment reads and writes; its dvc.yaml entry comes from this.

    A test runs every stage with its section recording each key read and fails when the
    reads differ from ``reads``, or when a path key read is neither needed nor written.
    """

    reads: tuple[str, ...] = ()
    """Section keys the stage reads (dotted; a sub-section's name means all of it), paths
    left out: they are the stage's deps and outs, not its params."""
    needs: tuple[str, ...] = ()
    """``paths`` keys of other stages' outputs it reads (its file deps)."""
    writes: tuple[str, ...] = ()
    """``paths`` keys it writes (its outs)."""


@dataclass(frozen=True)
class Plot:
    """A `dvc plots` definition over plot data the analysis writes."""

    data: str | tuple[str, ...]
    """The ``paths`` key of the CSV, or several (one series each, coloured by file: e.g.
    one file per activation where each has its own x values)."""
    x: str
    y: tuple[str, ...]
    template: str = "linear"
    title: str = ""
    x_label: str = ""
    y_label: str = ""
    about: str = ""
    """A line said above the definition in dvc.yaml."""

    @property
    def files(self) -> tuple[str, ...]:
        """The ``paths`` keys of its CSVs."""
        return (self.data,) if isinstance(self.data, str) else tuple(self.data)


class Experiment(abc.ABC):
    """Subclass in a module of :mod:`theorydl.spine.registry`, set ``name``, ``version``,
    ``section`` and ``stages``, and implement the abstract methods. Defining the class
    registers it: its section becomes the params section ``name``, its stages the DVC
    stages ``<name>_<kind>``.

    ``version`` is part of every trial id: bump it whenever a change to the code changes
    what a trial measures, so stale cached results are not reused.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    section: ClassVar[type[Section]]
    stages: ClassVar[Mapping[str, Stage]] = {}
    """Per stage kind (data, search, train, analyze), what it reads and writes. train and
    analyze always exist; train writes ``paths.trials``, analyze reads it and writes every
    path that no other stage writes."""
    plots: ClassVar[Mapping[str, Plot]] = {}
    """`dvc plots` definitions, by id."""
    claims: ClassVar[Sequence[Claim]] = ()
    """The published claims the experiment re-measures, each over a key of the metrics
    that ``analyze`` returns (:mod:`theorydl.spine.claims`). The analyze stage
    adds their verdicts to the metrics file (:meth:`record_claims`), and reads the
    section keys of their ``scale``."""
    figure_claims: ClassVar[Mapping[str, tuple[str, ...]]] = {}
    """Which claims each figure supports, for its caption in the report: output key (a
    ``paths`` field, or a pattern over the PNG names of a folder of figures) -> claim id
    patterns (``fnmatch``: ``"parity_*"``)."""

    def claims_of_figure(self, key: str) -> list[str]:
        """The ids of the claims the figure at output ``key`` supports, as declared."""
        from fnmatch import fnmatchcase

        patterns = [p for k, ps in self.figure_claims.items() if fnmatchcase(key, k) for p in ps]
        return [c.id for c in self.claims if any(fnmatchcase(c.id, p) for p in patterns)]

    def pipeline(self) -> dict[str, Stage]:
        """The declared stages, completed as :attr:`stages` says, in the order they run."""
        unknown = set(self.stages) - set(STAGE_KINDS)
        if unknown:
            raise ValueError(f"{self.name}: unknown stage kind(s) {sorted(unknown)}; "
                             f"known: {', '.join(STAGE_KINDS)}")
        out = {k: self.stages.get(k, Stage()) for k in STAGE_KINDS
               if k in self.stages or k in ("train", "analyze")}
        keys = list(self.paths_model().model_fields) if self.paths_model() else []
        if "trials" in keys:
            train, analyze = out["train"], out["analyze"]
            out["train"] = replace(train, writes=tuple(dict.fromkeys(("trials", *train.writes))))
            out["analyze"] = replace(analyze, needs=tuple(dict.fromkeys(("trials",
                                                                         *analyze.needs))))
        written = {k for s in out.values() for k in s.writes}
        scale = (k for c in self.claims for k in c.scale)
        out["analyze"] = replace(out["analyze"], writes=(
            *out["analyze"].writes, *(k for k in keys if k not in written)),
            reads=tuple(dict.fromkeys((*out["analyze"].reads, *scale))))
        return out

    @classmethod
    def paths_model(cls) -> type[Paths] | None:
        """The section's ``paths`` model, if it has one."""
        field_ = cls.section.model_fields.get("paths")
        kind = field_.annotation if field_ is not None else None
        return kind if isinstance(kind, type) and issubclass(kind, Paths) else None

    def stage_values(self, cfg: Section, kind: str) -> dict[str, Any]:
        """The values of the keys stage ``kind`` reads (what the W&B mirror records)."""
        out = {}
        for key in self.pipeline()[kind].reads:
            value: Any = cfg
            for part in key.split("."):
                value = getattr(value, part)
            out[key] = value.model_dump() if isinstance(value, Section) else value
        return out

    def config(self, params: Params) -> Section:
        return params.section(self.name)

    @abc.abstractmethod
    def trials(self, cfg: Section) -> list[TrialSpec]:
        """Expand the section into fully resolved trial specs (grid x seeds)."""

    def units(self, trials: Sequence[TrialSpec], cfg: Section) -> list[Unit]:
        """Group trials to run into units; by default one trial per unit on one CPU."""
        return [Unit((t,), label=t.id) for t in trials]

    def trial_cost(self, trial: TrialSpec, cfg: Section) -> float | None:
        """The work of one trial, in units the study picks (epochs x samples x parameters,
        say): the forecast (:mod:`theorydl.spine.forecast`) takes a unit's run time as
        proportional to its trials' summed cost, at a rate measured on this study's
        stored trials of the same :meth:`cost_class`. None (the default): no cost model,
        and the forecast says so."""
        return None

    def cost_class(self, trial: TrialSpec) -> str:
        """Trials whose costs share one rate (families that run different code differ)."""
        return ""

    @abc.abstractmethod
    def run_unit(self, unit: Unit, cfg: Section) -> list[TrialResult]:
        """Run a unit on a worker; one result per trial. Use :func:`run_each` for
        independent trials. An exception here fails every trial of the unit."""

    def data(self, params: Params, cfg: Section) -> None:
        """Write the experiment's data-stage outputs (none by default)."""

    def check_data(self, cfg: Section) -> None:
        """Called by the train stage before planning: raise if the data stage's outputs
        are missing or do not match what the trials will use (nothing by default)."""

    def study_module(self, name: str):
        """A module of this experiment's study package (``analysis``, ``figures``...),
        imported by name: the study's top never imports its analysis statically, so a
        train stage does not depend on it."""
        package = type(self).__module__.rpartition(".")[0]
        return importlib.import_module(f"{package}.{name}")

    def analyze(self, table: pa.Table, cfg: Section, params: Params) -> Analysis:
        """The train table's metrics and plot data: the study's ``analysis.analyze``."""
        return self.study_module("analysis").analyze(table, cfg)

    def draw(self, result: Analysis, cfg: Section) -> None:
        """Write the figures of ``result``: the study's ``figures.draw``."""
        self.study_module("figures").draw(result, cfg)

    def write_analysis(self, result: Analysis | Mapping[str, Any], cfg: Section
                       ) -> dict[str, Any]:
        """Write an analysis: plot data, figures, then the claims' entries
        (``paths.claims``) and the metrics with each claim's numbers (the one write of
        ``paths.metrics``); returns the metrics with the whole claim entries."""
        from theorydl.spine.store.store import write_text_atomic

        if not isinstance(result, Analysis):
            result = Analysis(metrics=dict(result))
        paths = getattr(cfg, "paths", None)
        for key, data in result.plots.items():
            text = data if isinstance(data, str) else data.to_csv(index=False)
            write_text_atomic(getattr(paths, key), text)
        if result.plots or result.frames:
            self.draw(result, cfg)
        metrics = self.record_claims(result.metrics, cfg)
        if paths is not None and hasattr(paths, "claims"):
            write_text_atomic(paths.claims,
                              json.dumps(metrics.get("claims", {}), indent=2) + "\n")
        if paths is not None and hasattr(paths, "metrics"):
            shown = dict(metrics)
            if "claims" in shown:
                shown["claims"] = as_metrics(shown["claims"])
            write_text_atomic(paths.metrics, json.dumps(shown, indent=2) + "\n")
        return metrics

    def written_claims(self, cfg: Section) -> dict[str, dict[str, Any]]:
        """The claim entries the last analysis wrote (``paths.claims``); empty before one."""
        paths = getattr(cfg, "paths", None)
        path = Path(paths.claims) if paths is not None and hasattr(paths, "claims") else None
        if path is None or not path.is_file():
            return {}
        return json.loads(path.read_text())

    def record_claims(self, metrics: dict[str, Any], cfg: Section) -> dict[str, Any]:
        """``metrics`` with a ``claims`` entry (each claim's measured value and verdict),
        for `dvc metrics show` and the report; unchanged where the experiment declares no
        claims."""
        if not self.claims:
            return metrics
        return {**metrics, "claims": check_claims(self.claims, metrics, cfg)}

    def outputs(self, cfg: Section) -> Mapping[str, str]:
        """Named output paths that the report may embed; a folder that exists stands for
        the figures (PNG) in it, each named by its file name."""
        paths = getattr(cfg, "paths", None)
        named: dict[str, str] = {}
        for key, value in ({} if paths is None else paths.model_dump()).items():
            if Path(value).is_dir():
                named.update({png.stem: str(png) for png in sorted(Path(value).glob("*.png"))})
            else:
                named[key] = value
        return named

    def trials_path(self, cfg: Section) -> Path:
        """Where the train stage writes its table (a params key of the section)."""
        return Path(cfg.paths.trials)


def run_each(unit: Unit, fn: Callable[[TrialSpec], TrialResult | list[dict[str, Any]]]
             ) -> list[TrialResult]:
    """Run each trial of a unit in turn; an exception fails that trial only.

    ``fn`` returns measurement rows (status ok) or a full :class:`TrialResult`.
    """
    results = []
    for spec in unit.trials:
        start = utcnow()
        try:
            out = fn(spec)
        except Exception as exc:  # noqa: BLE001 - any trial error becomes a failed row
            results.append(TrialResult(spec.id, "failed", start, utcnow(), error=error_text(exc)))
            continue
        if isinstance(out, TrialResult):
            results.append(out)
        else:
            results.append(TrialResult(spec.id, "ok", start, utcnow(), rows=list(out)))
    return results

