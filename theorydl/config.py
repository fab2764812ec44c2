"""Typed, validated params.

``params.yaml`` is read once, validated as a whole into frozen pydantic models (one per
section), and only then does any stage compute or write. Every error names the file and
the key path, e.g. ``params.yaml: census.n_inputs[2]: must be <= 5``.

Experiment sections register their model with :func:`register_section`, so the set of
known top-level keys is exactly ``run``, ``report`` and the registered experiments; an
unknown section (a typo such as ``cencus``) is an error, not an ignored key.
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
    "register_section",
    "load_params",
    "parse_params",
    "read_yaml",
    "merge",
    "apply_profile",
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


_SECTIONS: dict[str, type[Section]] = {"run": RunConfig, "report": ReportConfig,
                                       "wandb": WandbConfig}


def register_section(name: str, model: type[Section]) -> type[Section]:
    """Declare the params section of an experiment (called by each experiment module)."""
    if name in _SECTIONS and _SECTIONS[name] is not model:
        raise ValueError(f"params section {name!r} is registered twice")
    _SECTIONS[name] = model
    return model


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


def parse_params(data: Mapping, source: str = "params.yaml") -> Params:
    """Validate a params mapping; raises :class:`ConfigError` listing every bad key."""
    _import_experiments()
    unknown = sorted(set(data) - set(_SECTIONS))
    if unknown:
        raise ConfigError(
            f"{source}: unknown section(s) {', '.join(map(repr, unknown))}; "
            f"known sections: {', '.join(sorted(_SECTIONS))}"
        )
    # `run` and `report` have defaults; an experiment's section may be left out of a
    # params file, and only the stages of that experiment then refuse to run.
    fields = {name: (model, model()) if _has_defaults(model) else (model | None, None)
              for name, model in _SECTIONS.items()}
    model = create_model("ParamsFile", __config__=ConfigDict(extra="forbid", frozen=True),
                         **fields)
    try:
        validated = model.model_validate(dict(data))
    except ValidationError as exc:
        lines = [f"{source}: {_key_path(err['loc'])}: {err['msg']}" for err in exc.errors()]
        raise ConfigError("invalid params:\n  " + "\n  ".join(lines)) from None
    return Params(source=source, **{name: getattr(validated, name) for name in _SECTIONS})


def load_params(path: str | Path = "params.yaml", overrides: Mapping | None = None) -> Params:
    """Read and validate a params file, optionally deep-merging ``overrides`` first."""
    data = read_yaml(path)
    if overrides:
        data = merge(data, overrides)
    return parse_params(data, source=str(path))


def apply_profile(params_path: str | Path, profile_path: str | Path) -> None:
    """Deep-merge a profile into a params file in place, keeping the file's comments.

    The merged params are validated before anything is written, and the file is replaced
    atomically, so a bad profile leaves params.yaml as it was.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedSeq

    params_path, profile = Path(params_path), read_yaml(profile_path)
    parse_params(merge(read_yaml(params_path), profile), source=f"{params_path} + {profile_path}")
    rt = YAML()
    rt.preserve_quotes = True
    rt.representer.add_representer(
        type(None), lambda r, _: r.represent_scalar("tag:yaml.org,2002:null", "null"))
    doc = rt.load(params_path.read_text())

    def assign(node, patch: Mapping) -> None:
        for key, value in patch.items():
            if isinstance(value, Mapping) and isinstance(node.get(key), Mapping):
                assign(node[key], value)
            elif isinstance(value, list):
                seq = CommentedSeq(value)
                seq.fa.set_flow_style()  # grids read best on one line, as in params.yaml
                node[key] = seq
            else:
                node[key] = value
    assign(doc, profile)
    tmp = params_path.with_name(f".tmp-{params_path.name}")
    with open(tmp, "w") as fh:
        rt.dump(doc, fh)
    tmp.replace(params_path)


def _has_defaults(model: type[BaseModel]) -> bool:
    return all(not f.is_required() for f in model.model_fields.values())


def _import_experiments() -> None:
    # Experiment modules register their sections on import; importing here keeps
    # `load_params` correct no matter which module the caller imported first.
    import theorydl.experiments  # noqa: F401
