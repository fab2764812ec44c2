"""theorydl.rl.dqn: network, ε schedule, replay buffer, a tiny deterministic training run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from theorydl.rl import (
    DQNConfig,
    QNetwork,
    ReplayBuffer,
    build_network,
    epsilon_at,
    torch_threads,
    train_dqn,
)


def test_network_shapes_and_hidden_feeds_the_head():
    net = QNetwork((4, 10, 10), 6, seed=0)
    assert net.n_features == 16 * 8 * 8 and net.hidden == 128
    x = torch.randint(0, 2, (5, 4, 10, 10)).float()
    q = net(x)
    q2, hidden = net(x, return_hidden=True)
    assert q.shape == (5, 6) and hidden.shape == (5, 128)
    assert torch.equal(q, q2)
    assert (hidden >= 0).all()  # post-ReLU
    torch.testing.assert_close(net.head(hidden), q, rtol=0, atol=0)  # hidden is the head's input
    manual = net.head.weight @ hidden.T + net.head.bias[:, None]
    torch.testing.assert_close(manual.T, q)


def test_network_sizes_from_arguments():
    net = QNetwork((7, 10, 10), 3, conv_channels=(8, 4), conv_kernels=(3, 3), conv_strides=(1, 2),
                   hidden=32, input_scale=0.5)
    q, h = net(torch.ones(2, 7, 10, 10), return_hidden=True)
    assert net.n_features == 4 * 3 * 3 and q.shape == (2, 3) and h.shape == (2, 32)
    nature = QNetwork((4, 84, 84), 4, conv_channels=(32, 64, 64), conv_kernels=(8, 4, 3),
                      conv_strides=(4, 2, 1), hidden=512)
    assert nature.n_features == 64 * 7 * 7
    with pytest.raises(ValueError, match="shrink"):
        QNetwork((4, 10, 10), 6, conv_kernels=(11,), conv_channels=(1,), conv_strides=(1,))


def test_init_is_seeded_and_leaves_the_global_rng_alone():
    cfg = DQNConfig()
    state = torch.get_rng_state()
    a = build_network(cfg, (4, 10, 10), 6, seed=1).state_dict()
    b = build_network(cfg, (4, 10, 10), 6, seed=1).state_dict()
    c = build_network(cfg, (4, 10, 10), 6, seed=2).state_dict()
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["fc.weight"], c["fc.weight"])
    bound = 1 / np.sqrt(1024)
    assert a["fc.weight"].abs().max() <= bound and a["fc.weight"].std() > bound / 3


def test_torch_threads_restores():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        with torch_threads(0):
            pass


def test_epsilon_schedule():
    kw = dict(eps_start=1.0, eps_end=0.1, decay_steps=1000, learning_starts=500)
    assert epsilon_at(0, **kw) == 1.0
    assert epsilon_at(499, **kw) == 1.0
    assert epsilon_at(500, **kw) == 1.0
    assert epsilon_at(1000, **kw) == pytest.approx(0.55)
    assert epsilon_at(1250, **kw) == pytest.approx(0.325)
    assert epsilon_at(1500, **kw) == pytest.approx(0.1)
    assert epsilon_at(10**7, **kw) == pytest.approx(0.1)
    assert epsilon_at(5, 0.5, 0.0, 0, learning_starts=3) == 0.0
    assert epsilon_at(2, 0.5, 0.0, 0, learning_starts=3) == 0.5


def test_replay_buffer_wraps_and_samples_filled_slots():
    buf = ReplayBuffer(4, (1, 2, 2))

    def obs(i):
        return torch.full((1, 2, 2), float(i))

    for i in range(3):
        buf.add(obs(i), i, float(i), obs(i + 1), i == 2)
    assert len(buf) == 3 and buf.pos == 3
    rng = np.random.default_rng(0)
    batch = buf.sample(500, rng)
    assert set(batch.index.tolist()) == {0, 1, 2}  # never the empty slot 3
    torch.testing.assert_close(batch.obs[:, 0, 0, 0], batch.action.float())
    torch.testing.assert_close(batch.next_obs[:, 0, 0, 0], batch.action.float() + 1)
    torch.testing.assert_close(batch.reward, batch.action.float())
    torch.testing.assert_close(batch.terminal, (batch.action == 2).float())
    assert batch.obs.dtype == torch.float32 and batch.obs.shape == (500, 1, 2, 2)

    for i in range(3, 7):  # 4 more: wraps around, oldest overwritten
        buf.add(obs(i), i, float(i), obs(i + 1), False)
    assert len(buf) == 4 and buf.pos == 3
    assert buf.action.tolist() == [4, 5, 6, 3]
    batch = buf.sample(500, np.random.default_rng(1))
    assert set(batch.action.tolist()) == {3, 4, 5, 6}
    # same generator state -> same sample
    assert torch.equal(buf.sample(20, np.random.default_rng(5)).index,
                       buf.sample(20, np.random.default_rng(5)).index)
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(2, (1,)).sample(1, rng)


def test_config_dict_round_trip_and_validation():
    cfg = DQNConfig(game="seaquest", conv_channels=[8], hidden=64)
    assert cfg.conv_channels == (8,)
    assert DQNConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown DQNConfig fields: nope"):
        DQNConfig.from_dict({"nope": 1})
    with pytest.raises(ValueError, match="optimizer"):
        DQNConfig(optimizer="sgd")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]


@pytest.fixture(scope="module")
def tiny_runs(tiny_cfg):
    threads = torch.get_num_threads()
    calls = []
    a = train_dqn(tiny_cfg, seed=0, device="cpu", progress_cb=calls.append, num_threads=1)
    b = train_dqn(tiny_cfg, seed=0, device="cpu", num_threads=1)
    c = train_dqn(dataclasses.replace(tiny_cfg, optimizer="adam", opt_eps=1e-4, loss="mse",
                                      double_dqn=True, train_every=4, grad_clip_norm=10.0),
                  seed=1, num_threads=1)
    assert torch.get_num_threads() == threads  # restored
    return a, b, c, calls


def test_tiny_training_run(tiny_runs, tiny_cfg):
    a, _, c, calls = tiny_runs
    assert a.losses.shape == (200,) and np.isfinite(a.losses).all()
    assert c.losses.shape == (50,) and np.isfinite(c.losses).all()  # train_every = 4
    assert len(a.episode_returns) == len(a.episode_end_steps) >= 5
    assert all(np.isfinite(a.episode_returns))
    assert a.episode_end_steps == sorted(a.episode_end_steps) and a.episode_end_steps[-1] <= 300
    assert set(a.state_dict) == {"features.0.weight", "features.0.bias", "fc.weight", "fc.bias",
                                 "head.weight", "head.bias"}
    assert all(v.device.type == "cpu" for v in a.state_dict.values())
    assert a.n_actions == 6 and a.obs_shape == (4, 10, 10) and a.steps_per_second > 0
    assert [d["return"] for d in calls] == a.episode_returns
    assert [d["step"] for d in calls] == a.episode_end_steps
    init = build_network(tiny_cfg, (4, 10, 10), 6, seed=0).state_dict()
    assert not torch.equal(init["fc.weight"], a.state_dict["fc.weight"])


def test_training_is_deterministic_per_seed(tiny_runs):
    a, b, c, _ = tiny_runs
    assert a.episode_returns == b.episode_returns
    assert a.episode_end_steps == b.episode_end_steps
    np.testing.assert_array_equal(a.losses, b.losses)
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert a.episode_end_steps != c.episode_end_steps or a.episode_returns != c.episode_returns
