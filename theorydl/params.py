"""The params file as a whole: ``run``, ``report``, ``wandb`` and every experiment's section.

:mod:`theorydl.spine.config` holds the typed models and the validation, and knows no experiment;
:mod:`theorydl.spine.registry` holds the registry, and knows no params file. This module is
where the two meet, so neither imports the other:

    params = load_params("params.yaml")   # validated as a whole, or ConfigError
    params.census.n_inputs                # a frozen, typed section
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from theorydl.spine import registry
from theorydl.spine.config import (
    BASE_SECTIONS,
    ConfigError,
    Params,
    Section,
    merge,
    read_yaml,
    validate_params,
)

__all__ = ["ConfigError", "Params", "sections", "parse_params", "load_params", "apply_profile"]


def sections() -> dict[str, type[Section]]:
    """Every known top-level section: the base ones and each registered experiment's."""
    out = dict(BASE_SECTIONS)
    for name in registry.names():
        if name in out:
            raise ValueError(f"experiment {name!r} takes the name of a base params section")
        out[name] = registry.get(name).section
    return out


def parse_params(data: Mapping, source: str = "params.yaml") -> Params:
    """Validate a params mapping; raises :class:`ConfigError` listing every bad key."""
    return validate_params(data, sections(), source)


def load_params(path: str | Path = "params.yaml", overrides: Mapping | None = None) -> Params:
    """Read and validate a params file, optionally deep-merging ``overrides`` first."""
    data = read_yaml(path)
    if overrides:
        data = merge(data, overrides)
    return parse_params(data, source=str(path))


def apply_profile(params_path: str | Path, profile_path: str | Path,
                  only: Sequence[str] | None = None) -> None:
    """Deep-merge a profile into a params file in place, keeping the file's comments.

    ``only``: merge just these sections of the profile (studies, or ``run``...), leaving
    every other section of the params file as it is; each must be a section of the
    profile. The merged params are validated before anything is written, and the file is
    replaced atomically, so a bad profile leaves params.yaml as it was.
    """
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedSeq

    params_path, profile = Path(params_path), read_yaml(profile_path)
    if only:
        missing = [name for name in only if name not in profile]
        if missing:
            raise ConfigError(f"{profile_path}: no section {', '.join(map(repr, missing))}; "
                              f"it has: {', '.join(profile)}")
        profile = {name: profile[name] for name in profile if name in only}
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
