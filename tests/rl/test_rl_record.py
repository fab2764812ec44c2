"""theorydl.rl.record: recording a policy's hidden layer, and the Arrow round trip."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest
import torch

from theorydl.rl import (
    Recording,
    build_network,
    record_policy,
    recording_from_arrow,
    recording_to_arrow,
)


@pytest.fixture(scope="module")
def net_and_rec(tiny_cfg):
    """An untrained (seeded) network: playing breakout badly ends many short episodes."""
    net = build_network(tiny_cfg, (4, 10, 10), 6, seed=4)
    rec = record_policy(net.state_dict(), tiny_cfg, n_steps=400, epsilon=0.05, seed=11,
                        device="cpu", keep_frames=True, num_threads=1)
    return net, rec


def test_shapes_and_dtypes(net_and_rec, tiny_cfg):
    _, rec = net_and_rec
    assert len(rec) == 400
    assert rec.hidden.shape == (400, tiny_cfg.hidden) and rec.hidden.dtype == np.float32
    assert rec.q_values.shape == (400, 6) and rec.q_values.dtype == np.float32
    assert rec.value.shape == (400,) and rec.reward.dtype == np.float32
    assert rec.action.dtype == np.int64 and rec.action.min() >= 0 and rec.action.max() < 6
    assert rec.episode_end.dtype == np.bool_ and rec.episode_index.dtype == np.int64
    assert rec.frames.shape == (400, 10, 10, 4) and rec.frames.dtype == np.uint8
    assert rec.meta["game"] == "breakout" and rec.meta["epsilon"] == 0.05
    np.testing.assert_array_equal(rec.value, rec.q_values.max(axis=1))
    rec.validate()


def test_episode_bookkeeping(net_and_rec):
    _, rec = net_and_rec
    ends = np.flatnonzero(rec.episode_end)
    assert len(ends) >= 3
    assert rec.episode_index[0] == 0
    steps = np.diff(rec.episode_index)
    assert set(steps.tolist()) <= {0, 1}
    # the episode index goes up exactly on the step after an episode end
    np.testing.assert_array_equal(np.flatnonzero(steps), ends[ends < len(rec) - 1])
    assert rec.episode_index[-1] == len(ends) - int(rec.episode_end[-1])


def test_hidden_and_q_belong_to_the_recorded_frame(net_and_rec):
    net, rec = net_and_rec
    obs = torch.from_numpy(rec.frames.transpose(0, 3, 1, 2).astype(np.float32))
    with torch.no_grad():
        q, h = net(obs, return_hidden=True)
    np.testing.assert_allclose(h.numpy(), rec.hidden, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q.numpy(), rec.q_values, rtol=1e-5, atol=1e-6)
    greedy = rec.action == rec.q_values.argmax(axis=1)
    assert greedy.mean() > 0.85  # ε = 0.05 (a random action may still be the greedy one)


def test_greedy_and_deterministic(net_and_rec, tiny_cfg):
    net, _ = net_and_rec
    a = record_policy(net.state_dict(), tiny_cfg, 120, 0.0, seed=2, device="cpu", keep_frames=False,
                      num_threads=1)
    b = record_policy(net.state_dict(), tiny_cfg, 120, 0.0, seed=2, device="cpu", num_threads=1)
    assert a.frames is None
    np.testing.assert_array_equal(a.action, a.q_values.argmax(axis=1))
    for name in ("hidden", "q_values", "action", "reward", "episode_end"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


class _TimeLimit:
    """An environment cut off after ``limit`` steps, as a time limit does (gymnasium's
    ``TimeLimit``): the step is terminal and ``truncated`` says it was not the game's end."""

    def __init__(self, env, limit: int) -> None:
        self._env, self._limit, self._t = env, limit, 0
        self.n_actions, self.obs_shape = env.n_actions, env.obs_shape
        self.frame_shape, self.input_scale = env.frame_shape, env.input_scale
        self.truncated = False

    def reset(self, seed=None):
        self._t, self.truncated = 0, False
        return self._env.reset(seed)

    def step(self, action):
        obs, reward, terminal = self._env.step(action)
        self._t += 1
        self.truncated = not terminal and self._t >= self._limit
        return obs, reward, terminal or self.truncated

    def frame(self):
        return self._env.frame()


def test_minatar_has_no_truncations(net_and_rec):
    _, rec = net_and_rec
    assert rec.truncated.dtype == np.bool_ and not rec.truncated.any()


def test_time_limit_is_recorded_as_truncation_not_termination(net_and_rec, tiny_cfg, monkeypatch):
    import theorydl.rl.record as record

    net, _ = net_and_rec
    real = record.env_from_config
    monkeypatch.setattr(record, "env_from_config", lambda cfg, seed: _TimeLimit(real(cfg, seed), 10))
    rec = record_policy(net.state_dict(), tiny_cfg, n_steps=200, epsilon=0.05, seed=11,
                        device="cpu", num_threads=1)
    ends = np.flatnonzero(rec.episode_end)
    lengths = np.diff(np.r_[-1, ends])
    # This untrained agent loses breakout after 6 or 16 steps: the 16-step episodes are
    # cut off at 10, the 6-step ones end by the game.
    assert set(lengths.tolist()) == {6, 10}
    np.testing.assert_array_equal(rec.truncated[ends], lengths == 10)
    assert rec.truncated.any() and (~rec.truncated[ends]).any()
    assert not (rec.truncated & ~rec.episode_end).any()
    back = recording_from_arrow(recording_to_arrow(rec))
    np.testing.assert_array_equal(back.truncated, rec.truncated)


def test_tables_without_truncated_column_read_as_no_truncations(net_and_rec):
    _, rec = net_and_rec
    table = recording_to_arrow(rec)
    old = table.drop_columns(["truncated"]).replace_schema_metadata(table.schema.metadata)
    back = recording_from_arrow(old)
    assert back.truncated.shape == (len(rec),) and not back.truncated.any()


def test_validate_rejects_truncation_without_episode_end(net_and_rec):
    _, rec = net_and_rec
    bad = Recording(**{**rec.__dict__, "truncated": ~rec.episode_end})
    with pytest.raises(ValueError, match="not an episode_end"):
        bad.validate()


def _assert_same(a: Recording, b: Recording) -> None:
    for name in ("hidden", "q_values", "value", "action", "reward", "episode_end", "episode_index",
                 "truncated"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y)
    if a.frames is None:
        assert b.frames is None
    else:
        np.testing.assert_array_equal(a.frames, b.frames)
    assert a.meta == b.meta


def test_arrow_round_trip(net_and_rec):
    _, rec = net_and_rec
    table = recording_to_arrow(rec)
    assert table.num_rows == 400
    assert table.schema.field("hidden").type == pa.list_(pa.float32(), rec.hidden.shape[1])
    assert table.schema.field("q_values").type == pa.list_(pa.float32(), 6)
    assert table.schema.field("frame").type == pa.list_(pa.uint8(), 400)
    assert table.column("step").to_pylist() == list(range(400))
    _assert_same(rec, recording_from_arrow(table))

    sink = io.BytesIO()  # through Arrow IPC bytes, in several record batches
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=64)
    back = pa.ipc.open_file(pa.BufferReader(sink.getvalue())).read_all()
    assert back.column("hidden").num_chunks > 1
    _assert_same(rec, recording_from_arrow(back))

    no_frames = Recording(**{**rec.__dict__, "frames": None})
    t2 = recording_to_arrow(no_frames)
    assert "frame" not in t2.column_names
    _assert_same(no_frames, recording_from_arrow(t2))
    sliced = recording_from_arrow(table.slice(100, 50))  # offsets into the list buffers
    np.testing.assert_array_equal(sliced.hidden, rec.hidden[100:150])
    np.testing.assert_array_equal(sliced.frames, rec.frames[100:150])


def test_arrow_rejects_foreign_tables():
    with pytest.raises(ValueError, match="metadata"):
        recording_from_arrow(pa.table({"x": [1, 2]}))
