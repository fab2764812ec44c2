"""Each stage reads exactly the params its dvc.yaml entry lists.

Every stage of every experiment runs on the test profile (in this process, trials run
inline instead of on Ray) with its params wrapped so that each key read is recorded. The
keys read must be the keys the experiment's :class:`Stage` declares, which are the keys
the generated dvc.yaml lists: a key read but not declared would change a result without
re-running the stage; a key declared but never read would re-run it for nothing.
"""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from theorydl import stages
from theorydl.params import load_params
from theorydl.spine import registry
from theorydl.spine.config import Section, merge, read_yaml
from theorydl.spine.sweep.executor import ExecutionSummary
from theorydl.spine.sweep.worker import run_unit_on_worker

pytestmark = pytest.mark.slow


class _Recorder:
    """A read-only view of a section that records the dotted key of every field read."""

    def __init__(self, model: BaseModel, prefix: str, log: set[str]):
        self._model, self._prefix, self._log = model, prefix, log

    def __getattr__(self, key):
        value = getattr(self._model, key)
        if key in type(self._model).model_fields:
            path = f"{self._prefix}.{key}"
            if isinstance(value, BaseModel):
                return _Recorder(value, path, self._log)
            self._log.add(path)
        elif key == "model_dump":
            def dump(**kw):
                out = value(**kw)
                for name in out:
                    self._log.update(_leaves(getattr(self._model, name),
                                             f"{self._prefix}.{name}"))
                return out
            return dump
        return value


class _Params:
    def __init__(self, params, log: set[str]):
        self._params, self._log = params, log

    def section(self, name: str):
        return _Recorder(self._params.section(name), name, self._log)

    def __getattr__(self, name):
        value = getattr(self._params, name)
        return _Recorder(value, name, self._log) if isinstance(value, Section) else value


def _leaves(value, prefix: str) -> set[str]:
    if not isinstance(value, BaseModel):
        return {prefix}
    return {leaf for name in type(value).model_fields
            for leaf in _leaves(getattr(value, name), f"{prefix}.{name}")}


def _expand(root, prefix: str, keys) -> set[str]:
    """The leaves a declaration names: a sub-section stands for all of its keys."""
    out = set()
    for key in keys:
        value = root
        for part in key.split("."):
            value = getattr(value, part)
        out |= _leaves(value, f"{prefix}.{key}" if prefix else key)
    return out


def _inline(experiment, cfg, units, store, provenance, ray_cfg, progress="auto"):
    """The executor without Ray: each unit runs here, as a worker would run it."""
    for unit in units:
        store.append(experiment.name, run_unit_on_worker(experiment, cfg, unit, provenance))
    n = sum(len(u.trials) for u in units)
    return ExecutionSummary(len(units), n, n, 0, 0, 0.0)


def _run(kind: str, params, name: str | None, log: set[str]) -> None:
    wrapped = _Params(params, log)
    if kind == "report":
        stages.report(wrapped)
    else:
        getattr(stages, kind)(wrapped, name)


# The test profile, and what it leaves unread: with the search on, the final sweep reads
# the searched learning rates, not `width.lr` (of the optimizers it sweeps).
VARIANTS = {
    "test": {},
    "width_fixed_lr": {"width": {"search": {"enabled": False},
                                 "optimizers": ["sgd", "pathsgd", "adam"]}},
}


@pytest.fixture(scope="module")
def reads(repo_root, tmp_path_factory):
    """{(variant, experiment or None, stage kind): keys read}, every stage run in order."""
    mp = pytest.MonkeyPatch()
    mp.setattr(stages, "execute_units", _inline)
    mp.setattr("theorydl.spine.sweep.executor.ensure_ray", lambda cfg: False)
    profile = read_yaml(repo_root / "profiles" / "test.yaml")
    out, params = {}, {}
    try:
        for variant, patch in VARIANTS.items():
            # Every path is relative (defaults, run.store, the search's storage), so the
            # outputs of a variant land in its own folder.
            mp.chdir(tmp_path_factory.mktemp(variant))
            params[variant] = load_params(repo_root / "params.yaml",
                                          merge(profile, {"run": {"progress": "off"},
                                                          **patch}))
            only = set(patch) or registry.names()
            for name in sorted(only):
                for kind in registry.get(name).pipeline():
                    log: set[str] = set()
                    _run(kind, params[variant], name, log)
                    out[variant, name, kind] = log
            if not patch:
                log = set()
                _run("report", params[variant], None, log)
                out[variant, None, "report"] = log
    finally:
        mp.undo()
    return out, params


@pytest.mark.parametrize("name", registry.names())
def test_each_stage_reads_exactly_its_declared_keys(reads, name):
    recorded, params = reads
    exp = registry.get(name)
    cfg = params["test"].section(name)
    for kind, stage in exp.pipeline().items():
        keys = set().union(*(log for (_, n, k), log in recorded.items()
                             if n == name and k == kind))
        own = {k for k in keys if k.startswith(f"{name}.")}
        paths = {k for k in own if k.startswith(f"{name}.paths.")}
        declared = _expand(cfg, name, stage.reads)
        assert own - paths == declared, (
            f"{name}_{kind} reads {sorted(own - paths - declared)} undeclared and does not "
            f"read {sorted(declared - own)}: fix {type(exp).__name__}.stages[{kind!r}], then "
            f"run `python -m theorydl.dvcgen`")
        allowed = {f"{name}.paths.{k}" for k in (*stage.needs, *stage.writes)}
        assert paths <= allowed, f"{name}_{kind} reads undeclared paths {paths - allowed}"
        written = {f"{name}.paths.{k}" for k in stage.writes}
        assert written <= paths, f"{name}_{kind} never reads the paths {written - paths}"
        base = keys - own
        assert base <= _expand(params["test"], "", stages.READS[kind]), (
            f"{name}_{kind} reads {sorted(base)}; stages.READS[{kind!r}] says "
            f"{stages.READS[kind]}")


def test_the_report_reads_its_path_and_every_section(reads):
    recorded, params = reads
    keys = recorded["test", None, "report"]
    p = params["test"]
    shown = set().union(*(_leaves(p.section(n), n) for n in registry.names()))
    assert keys == shown | set(stages.READS["report"])
