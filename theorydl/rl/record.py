"""Play a trained DQN and record, step by step, its last hidden layer and Q-values.

This is the data of the SAMDP analysis (Zahavy, Ben-Zrihem & Mannor 2016, "Graying the
black box: Understanding DQNs"): the t-SNE / clustering of the hidden activations, with
values, actions, rewards, episode boundaries and (optionally) the game frames.

Shapes: ``T`` recorded steps, ``K`` hidden units (128 by default), ``A`` actions,
``(H, W, C)`` a frame (``(10, 10, C)`` for MinAtar).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor

from theorydl.rl.dqn import (
    DQNConfig,
    allow_tf32,
    build_network,
    env_from_config,
    resolve_device,
    torch_threads,
)

__all__ = ["RECORDING_FORMAT", "Recording", "record_policy", "recording_from_arrow", "recording_to_arrow"]

#: Tag stored in the Arrow schema metadata of a recording table.
RECORDING_FORMAT = "theorydl.rl.recording/1"
_META_KEY = b"theorydl.rl.recording"


@dataclass
class Recording:
    """T consecutive steps of a policy playing, across episode boundaries.

    Row t describes the decision taken in state s_t: the network's activations on s_t,
    the action chosen, and the reward of the step s_t -> s_{t+1}.
    """

    hidden: np.ndarray  #: (T, K) float32, last hidden layer (post-ReLU) on s_t
    q_values: np.ndarray  #: (T, A) float32, Q(s_t, ·)
    value: np.ndarray  #: (T,) float32, max_a Q(s_t, a)
    action: np.ndarray  #: (T,) int64, the action chosen (ε-greedy; sticky actions may repeat the previous one instead)
    reward: np.ndarray  #: (T,) float32, reward of step t
    episode_end: np.ndarray  #: (T,) bool, True at the last step of each finished episode
    episode_index: np.ndarray  #: (T,) int64, 0-based episode of step t
    frames: np.ndarray | None = None  #: (T, H, W, C) uint8, s_t as a frame, if kept
    meta: dict[str, Any] = field(default_factory=dict)  #: plain-python facts (game, seed, epsilon, ...)
    #: (T,) bool, True at an ``episode_end`` where the episode was cut off (a time limit)
    #: rather than ended by the game; None: no truncations (all False).  The trailing
    #: episode, which the recording stopped in, has no ``episode_end`` at all.
    truncated: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.truncated is None:
            self.truncated = np.zeros(len(self), dtype=bool)

    def __len__(self) -> int:
        return int(self.action.shape[0])

    def validate(self) -> None:
        """Raise ValueError if the arrays disagree on T or have the wrong rank/dtype."""
        t = len(self)
        checks = {
            "hidden": (self.hidden, 2, np.float32), "q_values": (self.q_values, 2, np.float32),
            "value": (self.value, 1, np.float32), "action": (self.action, 1, np.int64),
            "reward": (self.reward, 1, np.float32), "episode_end": (self.episode_end, 1, np.bool_),
            "episode_index": (self.episode_index, 1, np.int64),
            "truncated": (self.truncated, 1, np.bool_),
        }
        if self.frames is not None:
            checks["frames"] = (self.frames, 4, np.uint8)
        for name, (arr, ndim, dtype) in checks.items():
            if arr.ndim != ndim or arr.shape[0] != t or arr.dtype != dtype:
                raise ValueError(f"Recording.{name}: shape {arr.shape} dtype {arr.dtype}, "
                                 f"expected {ndim} dims, T = {t}, dtype {np.dtype(dtype)}")
        if np.any(self.truncated & ~self.episode_end):
            raise ValueError("Recording.truncated is True at a step that is not an episode_end")


def record_policy(state_dict: Mapping[str, Tensor], cfg: DQNConfig, n_steps: int, epsilon: float,
                  seed: int, device: str | torch.device = "cpu", keep_frames: bool = False, *,
                  num_threads: int | None = None) -> Recording:
    """Play the network ``state_dict`` (built as ``cfg`` says) for ``n_steps`` steps.

    The policy is ε-greedy with the given ``epsilon`` (small, e.g. 0.01-0.05: DQN papers
    evaluate with a little exploration so the agent does not get stuck). When an episode
    ends the environment is reset and recording goes on; the last, possibly unfinished,
    episode has no ``episode_end``. An episode the environment cut off (``env.truncated``,
    a time limit) has its ``episode_end`` and ``truncated`` True: it did not terminate.

    Args:
        state_dict: online-network weights (``TrainOutput.state_dict`` or a checkpoint's).
        cfg: the training configuration (game, sticky actions, network sizes).
        n_steps: T, the number of steps recorded.
        epsilon: probability of a uniformly random action.
        seed: seeds the environment and the ε draws (``numpy.random.SeedSequence``).
        device: where the network runs (``"cpu"``, ``"cuda"``, ``"auto"``).
        keep_frames: also return ``frames`` (T, H, W, C) uint8 (``env.frame()`` of s_t).
        num_threads: torch intra-op threads while playing (restored afterwards); None keeps
            the current setting. On CPU, 1 is usually fastest (see ``torch_threads``).

    Returns:
        A ``Recording`` of T steps.
    """
    if n_steps < 0:
        raise ValueError(f"n_steps must be >= 0, got {n_steps}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}")
    with torch_threads(num_threads), allow_tf32(cfg.allow_tf32):
        return _record(state_dict, cfg, int(n_steps), float(epsilon), int(seed), resolve_device(device),
                       keep_frames)


def _record(state_dict: Mapping[str, Tensor], cfg: DQNConfig, n_steps: int, epsilon: float, seed: int,
            dev: torch.device, keep_frames: bool) -> Recording:
    env_ss, act_ss = np.random.SeedSequence(int(seed)).spawn(2)
    env_seed = int(env_ss.generate_state(1)[0])
    rng = np.random.default_rng(act_ss)
    env = env_from_config(cfg, env_seed)
    net = build_network(cfg, env.obs_shape, env.n_actions, env.input_scale)
    net.load_state_dict(dict(state_dict))
    net.to(dev).eval()

    t_steps, k, a_n = int(n_steps), net.hidden, env.n_actions
    hidden = np.zeros((t_steps, k), dtype=np.float32)
    q_values = np.zeros((t_steps, a_n), dtype=np.float32)
    action = np.zeros(t_steps, dtype=np.int64)
    reward = np.zeros(t_steps, dtype=np.float32)
    episode_end = np.zeros(t_steps, dtype=bool)
    truncated = np.zeros(t_steps, dtype=bool)
    episode_index = np.zeros(t_steps, dtype=np.int64)
    frames = np.zeros((t_steps, *env.frame_shape), dtype=np.uint8) if keep_frames else None

    obs = env.reset(env_seed)
    episode = 0
    with torch.inference_mode():
        for t in range(t_steps):
            q, h = net(obs.to(dev).unsqueeze(0), return_hidden=True)
            q_values[t] = q[0].float().cpu().numpy()
            hidden[t] = h[0].float().cpu().numpy()
            if frames is not None:
                frames[t] = env.frame()
            if rng.random() < epsilon:
                a = int(rng.integers(a_n))
            else:
                a = int(np.argmax(q_values[t]))
            obs, r, terminal = env.step(a)
            action[t], reward[t], episode_index[t], episode_end[t] = a, r, episode, terminal
            truncated[t] = terminal and bool(getattr(env, "truncated", False))
            if terminal:
                episode += 1
                obs = env.reset()

    meta = {"backend": cfg.backend, "game": cfg.game, "epsilon": float(epsilon), "seed": int(seed),
            "n_actions": int(a_n), "hidden": int(k), "config": cfg.to_dict()}
    return Recording(hidden, q_values, q_values.max(axis=1) if t_steps else np.zeros(0, np.float32),
                     action, reward, episode_end, episode_index, frames, meta, truncated)


# --------------------------------------------------------------------------- Arrow


def _fixed_list(arr: np.ndarray, pa_type: pa.DataType) -> pa.FixedSizeListArray:
    width = int(np.prod(arr.shape[1:]))
    flat = pa.array(np.ascontiguousarray(arr).reshape(-1), type=pa_type)
    return pa.FixedSizeListArray.from_arrays(flat, width)


def recording_to_arrow(rec: Recording) -> pa.Table:
    """One row per step: ``step`` int64, ``episode_index`` int64, ``episode_end`` bool,
    ``truncated`` bool, ``action`` int64, ``reward`` float32, ``value`` float32, ``q_values``
    fixed_size_list<float32>[A], ``hidden`` fixed_size_list<float32>[K] and, when the
    recording has frames, ``frame`` fixed_size_list<uint8>[H*W*C] (row-major H, W, C).

    The frame shape and ``rec.meta`` go into the schema metadata as JSON (key
    ``theorydl.rl.recording``), so the table is self-describing and contains no pickles.
    """
    rec.validate()
    t = len(rec)
    columns = {
        "step": pa.array(np.arange(t, dtype=np.int64)),
        "episode_index": pa.array(rec.episode_index),
        "episode_end": pa.array(rec.episode_end),
        "truncated": pa.array(rec.truncated),
        "action": pa.array(rec.action),
        "reward": pa.array(rec.reward),
        "value": pa.array(rec.value),
        "q_values": _fixed_list(rec.q_values, pa.float32()),
        "hidden": _fixed_list(rec.hidden, pa.float32()),
    }
    info: dict[str, Any] = {"format": RECORDING_FORMAT, "meta": rec.meta,
                            "hidden": int(rec.hidden.shape[1]), "n_actions": int(rec.q_values.shape[1]),
                            "frame_shape": None}
    if rec.frames is not None:
        columns["frame"] = _fixed_list(rec.frames, pa.uint8())
        info["frame_shape"] = [int(v) for v in rec.frames.shape[1:]]
    table = pa.table(columns)
    return table.replace_schema_metadata({_META_KEY: json.dumps(info).encode()})


def _column_2d(table: pa.Table, name: str, dtype: Any) -> np.ndarray:
    col = table.column(name).combine_chunks()
    width = col.type.list_size
    return np.asarray(col.flatten().to_numpy(zero_copy_only=False), dtype=dtype).reshape(len(col), width)


def recording_from_arrow(table: pa.Table) -> Recording:
    """Inverse of ``recording_to_arrow`` (rows must be in step order, as written).

    Tables written before the ``truncated`` column existed read as no truncations."""
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        raise ValueError("table has no theorydl.rl.recording metadata; was it written by recording_to_arrow?")
    info = json.loads(raw)
    if info.get("format") != RECORDING_FORMAT:
        raise ValueError(f"unsupported recording format {info.get('format')!r}")

    def col(name: str, dtype: Any) -> np.ndarray:
        return np.asarray(table.column(name).to_numpy(), dtype=dtype)

    frames = None
    if "frame" in table.column_names:
        frames = _column_2d(table, "frame", np.uint8).reshape(table.num_rows, *info["frame_shape"])
    hidden = _column_2d(table, "hidden", np.float32) if table.num_rows else np.zeros((0, info["hidden"]), np.float32)
    q_values = (_column_2d(table, "q_values", np.float32) if table.num_rows
                else np.zeros((0, info["n_actions"]), np.float32))
    rec = Recording(hidden=hidden, q_values=q_values, value=col("value", np.float32),
                    action=col("action", np.int64), reward=col("reward", np.float32),
                    episode_end=col("episode_end", np.bool_), episode_index=col("episode_index", np.int64),
                    frames=frames, meta=info.get("meta", {}),
                    truncated=(col("truncated", np.bool_) if "truncated" in table.column_names
                               else None))
    rec.validate()
    return rec
