"""Every figure helper writes a non-empty PNG atomically."""

from __future__ import annotations

import numpy as np
import pytest

from theorydl.studies.samdp.figures import (
    plot_cluster_frames,
    plot_criteria,
    plot_embedding,
    plot_samdp_graph,
)
from theorydl.studies.samdp.model import build_samdp

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def recording():
    rng = np.random.default_rng(0)
    labels = np.repeat(rng.integers(0, 4, size=30), 5)
    t = labels.size
    emb = np.array([[0, 0], [5, 0], [0, 5], [5, 5]])[labels] + rng.normal(size=(t, 2))
    value = labels + 0.1 * rng.normal(size=t)
    reward = rng.normal(size=t)
    ends = np.zeros(t, dtype=bool)
    ends[[49, 99, t - 1]] = True
    samdp = build_samdp(labels, value, reward, ends, 0.9, n_clusters=4)
    return emb, value, labels, samdp


def _check(path, tmp_path):
    assert path.exists() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_plot_embedding(recording, tmp_path):
    emb, value, labels, _ = recording
    _check(plot_embedding(emb, value, labels, tmp_path / "map.png", title="t"), tmp_path)


def test_plot_samdp_graph(recording, tmp_path):
    emb, _, _, samdp = recording
    _check(plot_samdp_graph(emb, samdp, tmp_path / "sub" / "graph.png"), tmp_path / "sub")


def test_plot_criteria(tmp_path):
    ks = [2, 3, 4, 5]
    crit = {"vmse": [0.3, 0.2, 0.1, 0.15], "entropy": [0.0, 0.5, 1.0, 1.2],
            "intensity_factor": [9.0, float("inf"), 4.0, 3.0]}
    _check(plot_criteria(ks, crit, tmp_path / "crit.png"), tmp_path)


@pytest.mark.parametrize("kind", ["bool4", "uint8rgb", "gray"])
def test_plot_cluster_frames(recording, tmp_path, kind):
    emb, _, labels, _ = recording
    rng = np.random.default_rng(1)
    t = labels.size
    frames = {
        "bool4": rng.random((t, 10, 10, 4)) < 0.2,  # MinAtar-style object channels
        "uint8rgb": rng.integers(0, 256, size=(t, 12, 12, 3), dtype=np.uint8),
        "gray": rng.integers(0, 256, size=(t, 12, 12), dtype=np.uint8),
    }[kind]
    _check(plot_cluster_frames(frames, emb, labels, tmp_path / f"{kind}.png",
                               n_per_cluster=3), tmp_path)


def test_existing_file_is_replaced(recording, tmp_path):
    emb, value, labels, _ = recording
    path = tmp_path / "map.png"
    path.write_bytes(b"old")
    _check(plot_embedding(emb, value, labels, path), tmp_path)
