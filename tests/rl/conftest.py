"""Fixtures for the theorydl.rl tests: a tiny DQN configuration and its network."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tiny_cfg():
    """Breakout, a 300-step run with a 100-step warm-up, a small replay buffer and a small
    network (8 conv channels, 32 hidden units) so that the training tests stay quick."""
    from theorydl.rl import DQNConfig

    return DQNConfig(game="breakout", total_steps=300, learning_starts=100, replay_capacity=1000,
                     batch_size=16, target_update=50, eps_decay_steps=100, conv_channels=(8,), hidden=32)
