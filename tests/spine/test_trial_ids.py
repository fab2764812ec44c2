"""Trial ids are the trial cache's keys: they hash the experiment's name and version, the
resolved config and the seed, and nothing about where the code lives. These ids were
computed before the studies moved to theorydl/studies/ (from the default params.yaml):
the move kept every cached trial. A change of params.yaml's defaults or of a study's
version changes them on purpose; then recompute them here."""

from __future__ import annotations

import pytest

from theorydl.params import load_params
from theorydl.spine import registry

PINNED = {
    "census": ("75e79811ed6fb21773ca", "875fb893e925e3945da0"),
    "ib": ("fdfdf5459f817c7d7d8d", "57c25a43c554568a47d3"),
    "pooling": ("30a68cf20662c839ef4d", "9abb97b78f0226a8fc12"),
    "sharing": ("ef73e7016c7a0d31614c", "0a1416abf2a9f2f36024"),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_trial_ids_survive_the_move(repo_root, name):
    exp = registry.get(name)
    specs = exp.trials(exp.config(load_params(repo_root / "params.yaml")))
    assert tuple(s.id for s in specs[:2]) == PINNED[name]
    assert all(".py" not in s.id and "theorydl" not in s.id for s in specs)
