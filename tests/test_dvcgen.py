"""dvc.yaml is generated: up to date, deps from the real import graph, exact params and outs."""

from __future__ import annotations

import difflib
import textwrap

import yaml

from theorydl import dvcgen
from theorydl.spine import registry
from theorydl.spine.config import merge, read_yaml


def test_committed_dvc_yaml_is_what_the_generator_writes(repo_root):
    committed = (repo_root / "dvc.yaml").read_text()
    generated = dvcgen.render(repo_root)
    diff = "".join(list(difflib.unified_diff(committed.splitlines(keepends=True),
                                             generated.splitlines(keepends=True),
                                             "dvc.yaml", "generated", n=1))[:40])
    assert committed == generated, (
        f"dvc.yaml is out of date (an experiment's stages, a module's imports or a path "
        f"changed): run `{dvcgen.COMMAND}` and commit dvc.yaml\n{diff}")


def _project(tmp_path, files: dict[str, str]):
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(textwrap.dedent(text))
    return tmp_path


def test_import_graph_follows_every_import_and_package_init(tmp_path):
    root = _project(tmp_path, {
        "pipelines/stage.py": "import sys\nfrom theorydl.a import f\n",
        "theorydl/__init__.py": "",
        "theorydl/a.py": """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from theorydl import typing_only
            def f():
                from theorydl.pkg import sub  # inside a function: followed
                from . import b                # relative: followed
            """,
        "theorydl/b.py": "",
        "theorydl/typing_only.py": "",
        "theorydl/unused.py": "",
        "theorydl/pkg/__init__.py": "",
        "theorydl/pkg/sub.py": "from theorydl.pkg.deep.leaf import x\n",
        "theorydl/pkg/other.py": "",
        "theorydl/pkg/deep/__init__.py": "",
        "theorydl/pkg/deep/leaf.py": "x = 1\n",
        "theorydl/full/__init__.py": "from theorydl.full import one, two\n",
        "theorydl/full/one.py": "",
        "theorydl/full/two.py": "",
    })
    files = dvcgen.imported_files([root / "pipelines/stage.py"], root)
    assert {p.relative_to(root).as_posix() for p in files} == {
        "pipelines/stage.py", "theorydl/__init__.py", "theorydl/a.py", "theorydl/b.py",
        "theorydl/pkg/__init__.py", "theorydl/pkg/sub.py", "theorydl/pkg/deep/__init__.py",
        "theorydl/pkg/deep/leaf.py"}
    (root / "theorydl/b.py").write_text("import theorydl.full\n")
    # A package every module of which is imported is its folder; the others are files.
    assert dvcgen.code_deps([root / "pipelines/stage.py"], root) == [
        "pipelines/stage.py", "theorydl/__init__.py", "theorydl/a.py", "theorydl/b.py",
        "theorydl/full", "theorydl/pkg/__init__.py", "theorydl/pkg/deep",
        "theorydl/pkg/sub.py"]


def _stages(repo_root, tmp_path, patch: dict) -> dict:
    """The stages the generator writes for this repository's code and patched params."""
    if not (tmp_path / "theorydl").exists():
        (tmp_path / "pipelines").symlink_to(repo_root / "pipelines")
        (tmp_path / "theorydl").symlink_to(repo_root / "theorydl")
    data = merge(read_yaml(repo_root / "params.yaml"), patch)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return yaml.safe_load(dvcgen.render(tmp_path))["stages"]


def test_a_path_moves_only_its_writer_and_readers(repo_root, tmp_path):
    base = _stages(repo_root, tmp_path, {})
    moved = _stages(repo_root, tmp_path, {"ib": {"paths": {"figure_plane": "out/plane.png",
                                                           "data": "elsewhere/ib.parquet"}}})
    changed = {name for name in base if base[name] != moved[name]}
    assert changed == {"ib_data", "ib_train", "ib_analyze", "report"}
    assert "out/plane.png" in moved["ib_analyze"]["outs"] and "out/plane.png" in \
        moved["report"]["deps"]
    assert "elsewhere/ib.parquet" in moved["ib_train"]["deps"]
    assert not any("paths" in key for s in moved.values() for key in s.get("params", []))


def test_params_are_the_declared_reads_and_outs_cover_every_path(repo_root):
    stages = yaml.safe_load((repo_root / "dvc.yaml").read_text())["stages"]
    for name in registry.names():
        exp = registry.get(name)
        for kind, stage in exp.pipeline().items():
            entry = stages[f"{name}_{kind}"]
            own = [k for k in entry.get("params", []) if k.startswith(f"{name}.")]
            assert own == [f"{name}.{k}" for k in stage.reads], (name, kind)
        # Every path is written by exactly one stage.
        written = [p for kind in exp.pipeline() for group in ("outs", "metrics", "plots")
                   for p in stages[f"{name}_{kind}"].get(group, [])]
        assert len(written) == len(set(written)) == len(exp.paths_model().model_fields)
    # Analysis-only keys and every path are no params of a train stage.
    assert "ib.label_info_fraction" not in stages["ib_train"]["params"]
    assert "width" not in stages["width_train"]["params"]
