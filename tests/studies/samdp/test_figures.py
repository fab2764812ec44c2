"""Every figure helper writes a non-empty PNG atomically, mode 0644, at the report's one
width."""

from __future__ import annotations

import numpy as np
import pytest

from theorydl.studies.samdp.figures import (
    _circle_layout,
    plot_cluster_frames,
    plot_criteria,
    plot_embedding,
    plot_greedy,
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


@pytest.fixture(autouse=True)
def _fits_the_report(tmp_path, figures_fit):
    """After each test, every PNG it wrote fits the report (one width, mode 0644)."""
    yield
    if any(tmp_path.rglob("*.png")):
        figures_fit(tmp_path)


def test_plot_embedding(recording, tmp_path):
    emb, value, labels, _ = recording
    _check(plot_embedding(emb, value, labels, tmp_path / "map.png", title="t"), tmp_path)


def test_plot_samdp_graph(recording, tmp_path):
    emb, _, _, samdp = recording
    _check(plot_samdp_graph(emb, samdp, tmp_path / "sub" / "graph.png"), tmp_path / "sub")


def test_circle_layout_spreads_the_nodes_in_the_maps_angular_order():
    # Four centres bunched near the middle of the map, anticlockwise from the right.
    centres = np.array([[0.1, 0.0], [0.0, 0.1], [-0.1, 0.0], [0.0, -0.1], [np.nan, np.nan]])
    pos = _circle_layout(centres)
    assert np.allclose(np.linalg.norm(pos, axis=1), 1.0)
    gaps = np.linalg.norm(pos[:, None] - pos[None], axis=2)[~np.eye(5, dtype=bool)]
    assert gaps.min() > 1.17  # five evenly spaced points on the unit circle: 2 sin(pi/5)
    # Clockwise on the circle as on the map, from the largest angle (2, left) at the top:
    # 2, 1 (top), 0 (right), 3 (bottom), then the empty cluster 4.
    angle = np.unwrap(np.arctan2(pos[[2, 1, 0, 3, 4], 1], pos[[2, 1, 0, 3, 4], 0]))
    assert np.allclose(angle, np.pi / 2 - 2 * np.pi * np.arange(5) / 5)


def test_plot_greedy(tmp_path):
    rows = [{"k": k, "greedy_top": 0.8, "greedy_bottom": b, "greedy_difference": 0.8 - b}
            for k, b in ((2, 0.5), (3, 0.9))]
    trials = [{"game": "breakout", "seed": 0, "k": 3, "criteria": rows},
              {"game": "freeway", "seed": 1, "k": 2,
               "criteria": [{**rows[0], "greedy_bottom": None, "greedy_difference": None}]}]
    _check(plot_greedy(trials, tmp_path / "greedy.png"), tmp_path)
    _check(plot_greedy([], tmp_path / "none.png"), tmp_path)  # no trial: still a figure


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
