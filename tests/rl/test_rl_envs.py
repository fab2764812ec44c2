"""theorydl.rl.envs: the MinAtar adapter, game-name validation, the Atari import error."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch

from theorydl.rl import MINATAR_GAMES, DQNConfig, Env, make_env


def _rollout(env, seed, actions):
    out = [env.reset(seed)]
    rewards, terminals = [], []
    for a in actions:
        obs, r, term = env.step(a)
        out.append(obs)
        rewards.append(r)
        terminals.append(term)
        if term:
            out.append(env.reset())
    return torch.stack(out), rewards, terminals


def test_minatar_breakout_protocol():
    env = make_env("minatar", "breakout", 0.1, seed=3)
    assert isinstance(env, Env)
    assert env.n_actions == 6 and env.obs_shape == (4, 10, 10) and env.frame_shape == (10, 10, 4)
    obs = env.reset()
    assert obs.shape == (4, 10, 10) and obs.dtype == torch.float32
    assert set(obs.unique().tolist()) <= {0.0, 1.0}
    frame = env.frame()
    assert frame.shape == (10, 10, 4) and frame.dtype == np.uint8
    np.testing.assert_array_equal(frame.transpose(2, 0, 1), obs.numpy())  # frame == observation
    obs2, reward, terminal = env.step(2)
    assert obs2.shape == (4, 10, 10) and isinstance(reward, float) and isinstance(terminal, bool)


def test_reset_with_seed_is_reproducible():
    actions = np.random.default_rng(0).integers(0, 6, 200).tolist()
    env_a = make_env("minatar", "breakout", 0.1, seed=1)
    env_b = make_env("minatar", "breakout", 0.1, seed=2)
    obs_a, r_a, t_a = _rollout(env_a, 7, actions)
    obs_b, r_b, t_b = _rollout(env_b, 7, actions)
    assert torch.equal(obs_a, obs_b) and r_a == r_b and t_a == t_b
    assert any(t_a)  # 200 random steps end at least one breakout episode


def test_minimal_action_set_and_channels():
    env = make_env("minatar", "breakout", 0.0, seed=0, minimal_action_set=True)
    assert env.n_actions == 3
    env = make_env("minatar", "seaquest", 0.0, seed=0)
    assert env.obs_shape == (10, 10, 10)


def test_bad_game_and_backend_names():
    with pytest.raises(ValueError, match="unknown minatar game 'pong'.*breakout.*space_invaders"):
        make_env("minatar", "pong", 0.1, seed=0)
    with pytest.raises(ValueError, match="unknown backend 'gym'.*minatar, atari"):
        make_env("gym", "breakout", 0.1, seed=0)
    with pytest.raises(ValueError, match="known games: " + ", ".join(MINATAR_GAMES)):
        DQNConfig(game="Breakout")


_ATARI_INSTALLED = all(importlib.util.find_spec(m) is not None for m in ("gymnasium", "ale_py"))


@pytest.mark.skipif(_ATARI_INSTALLED, reason="gymnasium and ale_py are installed")
def test_atari_backend_without_gymnasium_says_what_to_install():
    with pytest.raises(ImportError, match=r"pip install gymnasium ale-py"):
        make_env("atari", "breakout", 0.25, seed=0)


def test_atari_import_error_when_modules_blocked(monkeypatch):
    """Same message even where they are installed: block the imports via sys.modules."""
    monkeypatch.setitem(sys.modules, "gymnasium", None)
    monkeypatch.setitem(sys.modules, "ale_py", None)
    with pytest.raises(ImportError, match=r"pip install gymnasium ale-py"):
        make_env("atari", "breakout", 0.25, seed=0)
