"""theorydl.rl.checkpoint: atomic round trip, and weights-only refusal of pickled objects."""

from __future__ import annotations

import os
import pickle
import stat

import pytest
import torch

from theorydl.rl import CheckpointError, DQNConfig, build_network, load_checkpoint, save_checkpoint


class _Evil:
    """Unpickling this would run code (write a marker file)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_round_trip(tmp_path):
    cfg = DQNConfig(game="space_invaders", hidden=32, conv_channels=(8,))
    sd = build_network(cfg, (6, 10, 10), 6, seed=3).state_dict()
    path = save_checkpoint(sd, cfg, tmp_path / "ckpt" / "net.pt", meta={"seed": 3, "returns": [1.0]})
    assert sorted(p.name for p in path.parent.iterdir()) == ["net.pt"]  # no temp file left
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    ck = load_checkpoint(path)
    assert ck.config == cfg and ck.meta == {"seed": 3, "returns": [1.0]}
    assert set(ck.state_dict) == set(sd) and all(torch.equal(ck.state_dict[k], sd[k]) for k in sd)
    net = build_network(ck.config, (6, 10, 10), 6)
    net.load_state_dict(ck.state_dict)  # strict: the names fit
    save_checkpoint(sd, cfg.to_dict(), path)  # a config dict works too; overwrite in place
    assert load_checkpoint(path).config == cfg


def test_malicious_pickle_is_refused(tmp_path):
    marker = tmp_path / "marker"
    evil_torch = tmp_path / "evil.pt"
    torch.save({"format": "theorydl.rl.dqn-checkpoint/1", "state_dict": {"w": torch.zeros(1)},
                "config_json": "{}", "x": _Evil(marker)}, evil_torch)
    with pytest.raises(CheckpointError, match="refusing"):
        load_checkpoint(evil_torch)
    evil_pickle = tmp_path / "evil.pkl"
    evil_pickle.write_bytes(pickle.dumps(_Evil(marker), protocol=2))
    with pytest.raises(CheckpointError):
        load_checkpoint(evil_pickle)
    assert not marker.exists()


def test_foreign_files_are_refused(tmp_path):
    path = tmp_path / "plain.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
