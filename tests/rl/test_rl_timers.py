"""theorydl.rl.train_dqn(timers=...): the optional timing hook records its keys and counts
and leaves the run unchanged."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from theorydl.rl import TIMER_COUNTS, TIMER_PARTS, train_dqn


def test_timers_record_parts_and_counts_and_change_nothing(tiny_cfg):
    # ε reaches eps_end right at learning_starts, so greedy (network) actions occur.
    cfg = dataclasses.replace(tiny_cfg, eps_decay_steps=0, eps_end=0.5)
    plain = train_dqn(cfg, seed=3, num_threads=1)
    timers: dict = {}
    timed = train_dqn(cfg, seed=3, num_threads=1, timers=timers)

    assert set(timers) == set(TIMER_PARTS) | set(TIMER_COUNTS)
    assert all(isinstance(timers[k], float) and timers[k] >= 0.0 for k in TIMER_PARTS)
    learn_steps = cfg.total_steps - cfg.learning_starts  # 200
    assert timers["steps"] == learn_steps
    assert timers["updates"] == len(timed.losses) == learn_steps
    # target syncs after steps 150, 200, 250, 300 (1-based), i.e. those from learning_starts on
    assert timers["target_syncs"] == sum(1 for t in range(cfg.learning_starts, cfg.total_steps)
                                         if (t + 1) % cfg.target_update == 0) == 4
    assert 0 < timers["greedy_steps"] < learn_steps  # ε = 0.5
    assert timers["act_net"] > 0.0 and timers["update"] > 0.0 and timers["env"] > 0.0

    # identical results with and without the hook
    assert timed.episode_returns == plain.episode_returns
    assert timed.episode_end_steps == plain.episode_end_steps
    np.testing.assert_array_equal(timed.losses, plain.losses)
    assert all(torch.equal(timed.state_dict[k], plain.state_dict[k]) for k in plain.state_dict)

    # a second run adds to the same dict
    train_dqn(dataclasses.replace(cfg, total_steps=cfg.learning_starts + 10), seed=3, num_threads=1,
              timers=timers)
    assert timers["steps"] == learn_steps + 10 and timers["updates"] == learn_steps + 10


def test_timers_ignore_the_warm_up(tiny_cfg):
    timers: dict = {}
    train_dqn(dataclasses.replace(tiny_cfg, total_steps=tiny_cfg.learning_starts), seed=0, num_threads=1,
              timers=timers)
    assert all(timers[k] == 0 for k in TIMER_COUNTS) and all(timers[k] == 0.0 for k in TIMER_PARTS)
