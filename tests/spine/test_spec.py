"""Trial identity: a content hash, stable across processes, machines and key order."""

from __future__ import annotations

import subprocess
import sys

import pytest

from theorydl.spine.spec import TrialSpec, derive_seed, grid, trial_id


def test_id_is_independent_of_key_order_and_process():
    a = trial_id("census", 1, {"n_inputs": 3, "architecture": "threshold"}, 0)
    b = trial_id("census", 1, {"architecture": "threshold", "n_inputs": 3}, 0)
    assert a == b and len(a) == 20
    # Another interpreter with a different hash seed computes the same id.
    code = ("from theorydl.spine.spec import trial_id;"
            "print(trial_id('census', 1, {'n_inputs': 3, 'architecture': 'threshold'}, 0))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""}, check=True).stdout
    assert out.strip() == a


def test_id_is_sha256_of_canonical_json():
    import hashlib

    payload = '{"config":{"x":1},"experiment":"e","seed":2,"version":3}'
    assert trial_id("e", 3, {"x": 1}, 2) == hashlib.sha256(payload.encode()).hexdigest()[:20]


@pytest.mark.parametrize("change", [
    dict(experiment="other"), dict(version=2), dict(seed=1), dict(config={"x": 2}),
    dict(config={"x": 1.0 + 1e-12}), dict(config={"x": 1, "y": None}),
])
def test_id_changes_with_every_part(change):
    base = dict(experiment="e", version=1, config={"x": 1}, seed=0)
    assert trial_id(**{**base, **change}) != trial_id(**base)


def test_spec_rejects_non_finite_and_round_trips():
    with pytest.raises(ValueError, match="not finite"):
        TrialSpec("e", 1, {"lr": float("nan")})
    spec = TrialSpec("e", 1, {"lr": 0.1, "w": [1, 2]}, seed=4, swept=("lr",))
    assert TrialSpec.from_dict(spec.to_dict()) == spec


def test_grid_and_derived_seeds():
    points = list(grid({"a": [1, 2], "b": ["x", "y", "z"]}))
    assert len(points) == 6 and points[0] == {"a": 1, "b": "x"} and points[-1] == {"a": 2, "b": "z"}
    seeds = {derive_seed(0, "trial", i) for i in range(1000)}
    assert len(seeds) == 1000 and all(0 <= s < 2**63 for s in seeds)
    assert derive_seed(0, "t") == derive_seed(0, "t") != derive_seed(1, "t")
