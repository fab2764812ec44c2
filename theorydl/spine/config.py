"""Typed, validated params.

``params.yaml`` is read once, validated as a whole into frozen pydantic models (one per
section), and only then does any stage compute or write. Every error names the file and
the key path, e.g. ``params.yaml: census.n_inputs[2]: must be <= 5``.

This module knows no experiment: :func:`validate_params` is given the section models to
check against. :mod:`theorydl.params` passes it ``run``, ``report``, ``wandb`` and every
registered experiment's section, so an unknown section (a typo such as ``cencus``) is an
error, not an ignored key.

Output paths follow one layout (:class:`Paths` and the helpers below it): a path default
is a template in ``{name}``, which validation replaces by the section's (the experiment's)
name, so an experiment declares what it writes and never spells a folder.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

__all__ = [
    "ConfigError",
    "Section",
    "RayConfig",
    "RunConfig",
    "ReportConfig",
    "WandbConfig",
    "Params",
    "Paths",
    "BASE_SECTIONS",
    "validate_params",
    "read_yaml",
    "merge",
    "data_file",
    "result_file",
    "plot_file",
    "figure_file",
    "figure_dir",
]


class ConfigError(ValueError):
    """Params that cannot be used: the message names the file and the key path."""


class Section(BaseModel):
    """Base of every params section: unknown keys, wrong types and missing keys are errors.

    ``strict`` stops YAML's ``"3"`` from silently becoming ``3``; ints are still accepted
    where a float is declared. Field docstrings are the documentation of each key.
    """

    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, use_attribute_docstrings=True
    )


class RayConfig(Section):
    address: str | None = None
    """Cluster to join ("auto", "host:6379", "ray://host:10001"). None: the environment
    variable RAY_ADDRESS if set, else an embedded Ray on this machine bound to 127.0.0.1."""

    num_cpus: int | None = Field(default=None, ge=1)
    """Embedded Ray only: CPUs it may use. None: every CPU of this machine."""

    max_retries: int = Field(default=2, ge=0, le=20)
    """How many times a unit is re-submitted when its worker process dies."""


class RunConfig(Section):
    store: str = ".theorydl/store"
    """Trial cache: a local folder or a pyarrow filesystem URI (file://, s3://, gs://).
    It is not a DVC output; the train stages select their tables from it."""

    rerun: Literal["failed", "none", "all"] = "failed"
    """Stored trials to run again: "failed" (trials whose latest attempt failed; ok and
    diverged trials are kept), "none" (only trials never stored), "all" (force)."""

    progress: Literal["auto", "bar", "log", "off"] = "auto"
    """Progress display: a bar on a terminal, plain log lines otherwise ("auto")."""
    compact_files: int = Field(default=256, ge=0)
    """After a stage that ran trials: when the experiment's folder in the store holds more
    part files than this, merge the small ones (as ``theorydl store compact`` does), so
    that later lookups read few files (on an object store each file costs requests).
    0: never."""

    ray: RayConfig = RayConfig()
    """Where trials execute."""


class ReportConfig(Section):
    path: str = "report/index.html"
    """The self-contained HTML report the report stage writes."""


class WandbConfig(Section):
    enabled: bool = False
    """Mirror runs, tables, figures and metrics to Weights & Biases (the store stays the
    source of truth). When false, wandb is not even imported."""

    mode: Literal["offline", "online"] = "offline"
    """offline writes runs under `dir` (upload later with `wandb sync`); online sends them.
    The API key comes only from the environment (WANDB_API_KEY), never from params."""

    project: str = "theorydl"
    """W&B project."""

    entity: str | None = None
    """W&B entity (user or team); None: the key's default."""

    group: str | None = None
    """Run group; None: the experiment's name."""

    per_trial_runs: bool = False
    """Also one run per trial (id derived from the trial id, so re-runs never duplicate)."""

    dir: str = ".wandb"
    """Where offline runs are written (git- and DVC-ignored)."""


BASE_SECTIONS: dict[str, type[Section]] = {"run": RunConfig, "report": ReportConfig,
                                           "wandb": WandbConfig}
"""The sections every params file has besides the experiments' (all of them default)."""


# ------------------------------------------------------------------------ output paths
# The one place that says where outputs go. Per-experiment folders hold what only the
# stages read (data, result tables); files named after the experiment hold what
# `dvc metrics`, `dvc plots` and the report show. dvc.yaml's `metrics:` and `plots:`
# outputs are the paths whose default lies in metrics/ and plots/ (see Paths.kind).
NAME = "{name}"


def data_file(file: str) -> str:
    """A data-stage output: ``data/<name>/<file>``."""
    return f"data/{NAME}/{file}"


def result_file(file: str) -> str:
    """A result table (train or search output, or a table the analysis derives):
    ``results/<name>/<file>``."""
    return f"results/{NAME}/{file}"


def plot_file(what: str = "") -> str:
    """Plot data for `dvc plots`: ``plots/<name>[_<what>].csv``."""
    return f"plots/{NAME}{'_' + what if what else ''}.csv"


def figure_file(what: str = "") -> str:
    """A figure: ``figures/<name>[_<what>].png``."""
    return f"figures/{NAME}{'_' + what if what else ''}.png"


def figure_dir() -> str:
    """A folder of figures (their number depends on the params): ``figures/<name>``."""
    return f"figures/{NAME}"


class Paths(Section):
    """Base of an experiment's ``paths`` sub-section: where its stages write.

    Every field defaults from the experiment's name through the helpers above; params may
    override any of them (``{name}`` in an override is replaced as well). An experiment
    adds its own fields; ``trials`` and ``metrics`` every experiment has.
    """

    trials: str = result_file("trials.parquet")
    """Train stage output: the rows of exactly the trials the params ask for."""
    metrics: str = f"metrics/{NAME}.json"
    """Summary metrics for `dvc metrics show` and the report: numbers only (each claim as
    its measured value and ``reproduced`` 1/0)."""
    claims: str = result_file("claims.json")
    """Analyze stage output: every claim's whole entry (words, source, published and
    measured values, verdict, why, note), which the report and the results page read."""

    def resolved(self, name: str) -> "Paths":
        """These paths with ``{name}`` replaced by ``name``."""
        return self.model_copy(update={k: v.replace(NAME, name) for k, v in self
                                       if isinstance(v, str)})

    @classmethod
    def kind(cls, key: str) -> str:
        """What DVC makes of output ``key``: "metrics", "plots" or "outs" (by its default)."""
        top = str(cls.model_fields[key].default).split("/", 1)[0]
        return top if top in ("metrics", "plots") else "outs"


class Params(BaseModel):
    """All sections of one params file; attribute access by section name."""

    model_config = ConfigDict(extra="allow", frozen=True)
    source: str = "params.yaml"

    def section(self, name: str) -> Any:
        value = getattr(self, name, None)
        if value is None:
            raise ConfigError(f"{self.source}: no section {name!r}")
        return value


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping
)


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping, with errors that name the file (and line, for syntax errors)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    return data


def merge(base: Mapping, override: Mapping) -> dict:
    """Deep-merge ``override`` into a copy of ``base`` (mappings merge, anything else replaces)."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate_params(data: Mapping, sections: Mapping[str, type[Section]],
                    source: str = "params.yaml") -> Params:
    """Validate a params mapping against ``sections`` (name -> model).

    Raises :class:`ConfigError` listing every bad key. A section's :class:`Paths` come
    back with ``{name}`` replaced by the section's name.
    """
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(
            f"{source}: unknown section(s) {', '.join(map(repr, unknown))}; "
            f"known sections: {', '.join(sorted(sections))}"
        )
    # `run` and `report` have defaults; an experiment's section may be left out of a
    # params file, and only the stages of that experiment then refuse to run.
    fields = {name: (model, model()) if _has_defaults(model) else (model | None, None)
              for name, model in sections.items()}
    model = create_model("ParamsFile", __config__=ConfigDict(extra="forbid", frozen=True),
                         **fields)
    try:
        validated = model.model_validate(dict(data))
    except ValidationError as exc:
        lines = [f"{source}: {_key_path(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigError("invalid params:\n  " + "\n  ".join(lines)) from None
    return Params(source=source, **{name: _resolve_paths(getattr(validated, name), name)
                                    for name in sections})


def _resolve_paths(section: Section | None, name: str) -> Section | None:
    paths = getattr(section, "paths", None)
    if not isinstance(paths, Paths):
        return section
    return section.model_copy(update={"paths": paths.resolved(name)})


def _has_defaults(model: type[BaseModel]) -> bool:
    return all(not f.is_required() for f in model.model_fields.values())
