"""DQN for MinAtar (and, optionally, Atari): network, replay buffer, ε schedule, training.

The defaults of ``DQNConfig`` are the MinAtar paper's DQN (Young & Tian 2019, and its
``examples/dqn.py``): one conv layer of 16 3x3 filters (stride 1) -> ReLU -> flatten ->
128-unit ReLU layer -> Q-values; replay of 100k transitions, batch 32, γ = 0.99;
centered RMSprop (lr 2.5e-4, α = 0.95, eps 0.01); Huber loss; target network synced
every 1000 steps; 5000 uniformly random warm-up steps, then ε linear from 1.0 to 0.1 over
100k steps; one update per environment step; 5M steps in all. ``total_steps`` is the
knob a compute profile will want to shrink.

Shapes: ``B`` batch, ``C, H, W`` observation channels/height/width (``(C, 10, 10)`` for
MinAtar), ``A`` actions, ``K`` hidden units (the last hidden layer, 128 by default).

Randomness: ``train_dqn(cfg, seed, ...)`` splits ``seed`` with ``numpy.random.SeedSequence``
into independent streams for the environment, the network initialisation (a
``torch.Generator``), ε-greedy actions and replay sampling (``numpy.random.Generator``).
No global RNG is read or written, so two CPU runs with one seed are identical. (On CUDA
some kernels are not bitwise deterministic.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from theorydl.nn import resolve_device  # one device rule for the package (re-exported)
from theorydl.rl.envs import BACKENDS, MINATAR_GAMES, Env, make_env

__all__ = [
    "DQNConfig",
    "allow_tf32",
    "QNetwork",
    "TIMER_COUNTS",
    "TIMER_PARTS",
    "ReplayBatch",
    "ReplayBuffer",
    "TrainOutput",
    "build_network",
    "env_from_config",
    "epsilon_at",
    "resolve_device",
    "seed_streams",
    "torch_threads",
    "train_dqn",
]

_OPTIMIZERS = ("rmsprop", "adam")
#: The parts of a learning step that ``train_dqn(timers=...)`` times, in seconds:
#: ``act_cpu`` (ε and the random draws of ε-greedy), ``act_net`` (the greedy forward pass,
#: with the observation's transfer and the argmax read back), ``env`` (environment step,
#: episode bookkeeping, reset), ``replay_add`` (storing the transition), ``replay_sample``
#: (drawing indices and building the batch tensors on the device), ``update`` (TD loss,
#: backward, optimizer step), ``target_sync`` (copying the online into the target network).
TIMER_PARTS: tuple[str, ...] = ("act_cpu", "act_net", "env", "replay_add", "replay_sample", "update",
                                "target_sync")
#: The counts ``train_dqn(timers=...)`` records next to the times.
TIMER_COUNTS: tuple[str, ...] = ("steps", "greedy_steps", "updates", "target_syncs")
_LOSSES = ("huber", "mse")


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class DQNConfig:
    """Everything that defines one DQN training run except its seed and device.

    Step counts are environment steps (agent decisions), counted from 0.
    """

    #: Environment backend: ``"minatar"`` (default, CPU) or ``"atari"`` (gymnasium + ale-py).
    backend: str = "minatar"
    #: Game name: a MinAtar game (asterix, breakout, freeway, seaquest, space_invaders) or an ALE game.
    game: str = "breakout"
    #: Probability that the environment repeats the previous action instead of the chosen one.
    sticky_action_prob: float = 0.1
    #: MinAtar difficulty ramping (ignored by Atari).
    difficulty_ramping: bool = True
    #: Use the game's minimal action set (MinAtar) instead of all 6 actions.
    minimal_action_set: bool = False
    #: Environment steps to train for (the MinAtar paper uses 5M).
    total_steps: int = 5_000_000
    #: Replay buffer capacity in transitions (a ring buffer: the oldest are overwritten).
    replay_capacity: int = 100_000
    #: Transitions per gradient update.
    batch_size: int = 32
    #: Discount factor γ.
    gamma: float = 0.99
    #: Optimizer: ``"rmsprop"`` (centered, as in the MinAtar paper) or ``"adam"``.
    optimizer: str = "rmsprop"
    #: Learning rate.
    lr: float = 2.5e-4
    #: Optimizer ε (RMSprop: the MinAtar paper's "min squared gradient" 0.01; Adam: e.g. 1.5e-4).
    opt_eps: float = 0.01
    #: RMSprop smoothing constant α ("squared gradient momentum"); ignored by Adam.
    rmsprop_alpha: float = 0.95
    #: Centered RMSprop (the MinAtar paper's choice); ignored by Adam.
    rmsprop_centered: bool = True
    #: TD loss: ``"huber"`` (smooth L1, δ = 1) or ``"mse"``.
    loss: str = "huber"
    #: Clip the global gradient norm to this value; None = no clipping.
    grad_clip_norm: float | None = None
    #: Double DQN targets (online argmax, target evaluation) instead of the plain max.
    double_dqn: bool = False
    #: Copy the online network into the target network every this many environment steps.
    target_update: int = 1000
    #: Replay warm-up: no updates (and ε = eps_start) before this step.
    learning_starts: int = 5000
    #: One gradient update every this many environment steps once learning has started.
    train_every: int = 1
    #: ε during the warm-up and at step ``learning_starts``.
    eps_start: float = 1.0
    #: ε after the decay (kept until the end).
    eps_end: float = 0.1
    #: Steps over which ε decays linearly from eps_start to eps_end, starting at learning_starts.
    eps_decay_steps: int = 100_000
    #: Output channels of each conv layer (MinAtar: (16,); Nature-DQN Atari: (32, 64, 64)).
    conv_channels: tuple[int, ...] = (16,)
    #: Kernel size of each conv layer (MinAtar: (3,); Nature-DQN: (8, 4, 3)).
    conv_kernels: tuple[int, ...] = (3,)
    #: Stride of each conv layer (MinAtar: (1,); Nature-DQN: (4, 2, 1)).
    conv_strides: tuple[int, ...] = (1,)
    #: Units of the last hidden (fully connected, ReLU) layer: what ``record_policy`` records.
    hidden: int = 128
    #: TF32 convolutions and matmuls on GPUs that have them (Ampere and later): faster, with
    #: a 10-bit mantissa, so a run differs from the CPU's beyond float32 rounding. Off by
    #: default (torch turns cuDNN's on); no effect on CPU. See ``allow_tf32``.
    allow_tf32: bool = False

    def __post_init__(self) -> None:
        for name in ("conv_channels", "conv_kernels", "conv_strides"):  # lists from JSON/YAML
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown backend {self.backend!r}; known backends: {', '.join(BACKENDS)}")
        if self.backend == "minatar" and self.game not in MINATAR_GAMES:
            raise ValueError(f"unknown minatar game {self.game!r}; known games: {', '.join(MINATAR_GAMES)}")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {self.optimizer!r}")
        if self.loss not in _LOSSES:
            raise ValueError(f"loss must be one of {_LOSSES}, got {self.loss!r}")
        for name in ("total_steps", "learning_starts", "eps_decay_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("replay_capacity", "batch_size", "target_update", "train_every", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (len(self.conv_channels) == len(self.conv_kernels) == len(self.conv_strides)):
            raise ValueError("conv_channels, conv_kernels and conv_strides must have one entry per conv layer")
        if not 0.0 <= self.sticky_action_prob <= 1.0:
            raise ValueError(f"sticky_action_prob must lie in [0, 1], got {self.sticky_action_prob}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {self.gamma}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-python dict (tuples become lists), JSON-serialisable."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DQNConfig:
        """Inverse of ``to_dict``. Unknown keys raise ValueError; missing keys take defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown DQNConfig fields: {', '.join(unknown)}")
        return cls(**dict(data))


# --------------------------------------------------------------------------- devices & seeds


@contextlib.contextmanager
def allow_tf32(allowed: bool) -> Iterator[None]:
    """Run the block with TF32 convolutions (cuDNN) and matmuls (cuBLAS) allowed or not,
    restoring both switches after. They are process-wide, and a Ray worker runs many
    units, so each run sets them rather than inheriting the last one's."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    old = cudnn.allow_tf32, matmul.allow_tf32
    cudnn.allow_tf32 = matmul.allow_tf32 = bool(allowed)
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = old


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``, restoring the old count after.

    ``None`` leaves the setting alone. DQN's tensors are tiny (batch 32 of 10x10 boards,
    or one board when acting), so intra-op parallelism buys little, and on a machine
    whose cores are shared it can cost a lot: threads wait for each other at every op.
    The count is process-wide; do not use this from concurrently running Python threads.
    """
    if n is None:
        yield
        return
    if n < 1:
        raise ValueError(f"num_threads must be >= 1, got {n}")
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


class SeedStreams(NamedTuple):
    """Independent random streams derived from one seed."""

    env_seed: int  #: seeds the environment
    init_seed: int  #: seeds the network initialisation (torch.Generator)
    act_rng: np.random.Generator  #: ε-greedy decisions and random actions
    replay_rng: np.random.Generator  #: replay sampling


def seed_streams(seed: int) -> SeedStreams:
    """Split ``seed`` into the four streams a run uses (``numpy.random.SeedSequence.spawn``)."""
    env_ss, init_ss, act_ss, replay_ss = np.random.SeedSequence(int(seed)).spawn(4)
    return SeedStreams(int(env_ss.generate_state(1)[0]), int(init_ss.generate_state(1)[0]),
                       np.random.default_rng(act_ss), np.random.default_rng(replay_ss))


# --------------------------------------------------------------------------- network


class QNetwork(nn.Module):
    """Conv layers -> ReLU -> flatten -> ``hidden`` ReLU units -> Q-values.

    With the defaults this is the MinAtar paper's network: Conv2d(C, 16, 3, stride 1) ->
    ReLU -> flatten (16*8*8 = 1024) -> Linear(1024, 128) -> ReLU -> Linear(128, A).

    Args:
        in_shape: observation shape (C, H, W).
        n_actions: A, the number of Q-values.
        conv_channels, conv_kernels, conv_strides: one entry per conv layer (no padding).
        hidden: K, units of the last hidden layer.
        input_scale: observations are multiplied by this first (1 for MinAtar, 1/255 Atari).
        seed: initialisation seed. Weights and biases are drawn from U(-1/sqrt(fan_in),
            1/sqrt(fan_in)) — PyTorch's default distribution — with a private
            ``torch.Generator``; the global RNG is never used.

    Attributes:
        features: the conv stack plus flatten, (B, C, H, W) -> (B, F).
        fc: Linear(F, K); ``head``: Linear(K, A), so ``q == head(hidden)``.
    """

    def __init__(
        self,
        in_shape: tuple[int, int, int],
        n_actions: int,
        *,
        conv_channels: tuple[int, ...] = (16,),
        conv_kernels: tuple[int, ...] = (3,),
        conv_strides: tuple[int, ...] = (1,),
        hidden: int = 128,
        input_scale: float = 1.0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        c, h, w = (int(v) for v in in_shape)
        layers: list[nn.Module] = []
        for out_c, k, s in zip(conv_channels, conv_kernels, conv_strides, strict=True):
            layers += [nn.utils.skip_init(nn.Conv2d, c, out_c, k, stride=s), nn.ReLU()]
            c, h, w = out_c, (h - k) // s + 1, (w - k) // s + 1
            if h < 1 or w < 1:
                raise ValueError(f"conv layers shrink the {in_shape} input to nothing")
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        self.n_features = c * h * w
        self.fc = nn.utils.skip_init(nn.Linear, self.n_features, hidden)
        self.head = nn.utils.skip_init(nn.Linear, hidden, n_actions)
        self.in_shape = (int(in_shape[0]), int(in_shape[1]), int(in_shape[2]))
        self.n_actions = int(n_actions)
        self.hidden = int(hidden)
        self.input_scale = float(input_scale)
        gen = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, (nn.Conv2d, nn.Linear)):
                    bound = 1.0 / math.sqrt(module.weight[0].numel())
                    module.weight.uniform_(-bound, bound, generator=gen)
                    module.bias.uniform_(-bound, bound, generator=gen)

    def forward(self, x: Tensor, return_hidden: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """x (B, C, H, W) -> q (B, A); with ``return_hidden``, (q (B, A), hidden (B, K)).

        ``hidden`` is the post-ReLU output of the last hidden layer, the exact input of
        the Q head: ``q == self.head(hidden)``.
        """
        if self.input_scale != 1.0:
            x = x * self.input_scale
        hidden = F.relu(self.fc(self.features(x)))
        q = self.head(hidden)
        return (q, hidden) if return_hidden else q


def build_network(cfg: DQNConfig, obs_shape: tuple[int, int, int], n_actions: int,
                  input_scale: float = 1.0, seed: int = 0) -> QNetwork:
    """The ``QNetwork`` that ``cfg`` describes, on CPU."""
    return QNetwork(obs_shape, n_actions, conv_channels=cfg.conv_channels,
                    conv_kernels=cfg.conv_kernels, conv_strides=cfg.conv_strides,
                    hidden=cfg.hidden, input_scale=input_scale, seed=seed)


def env_from_config(cfg: DQNConfig, seed: int) -> Env:
    """The environment ``cfg`` describes, seeded with ``seed``."""
    kwargs: dict[str, Any] = {}
    if cfg.backend == "minatar":
        kwargs = {"difficulty_ramping": cfg.difficulty_ramping,
                  "minimal_action_set": cfg.minimal_action_set}
    return make_env(cfg.backend, cfg.game, cfg.sticky_action_prob, seed, **kwargs)


# --------------------------------------------------------------------------- replay


class ReplayBatch(NamedTuple):
    """A sampled minibatch, tensors on the requested device."""

    obs: Tensor  #: (B, C, H, W) float32
    action: Tensor  #: (B,) int64
    reward: Tensor  #: (B,) float32
    next_obs: Tensor  #: (B, C, H, W) float32
    terminal: Tensor  #: (B,) float32, 1.0 where the episode ended at this transition
    index: Tensor  #: (B,) int64, the buffer slots sampled (on CPU)


class ReplayBuffer:
    """Ring buffer of transitions (s, a, r, s', terminal) in numpy arrays.

    Observations are stored as ``obs_dtype`` (uint8 by default: MinAtar and Atari
    observations are integer valued), so the MinAtar default of 100k transitions takes
    2 x 100k x C x 100 bytes (80 MB for breakout's C = 4).

    Args:
        capacity: number of transitions kept; adding to a full buffer overwrites the oldest.
        obs_shape: (C, H, W).
        obs_dtype: numpy dtype of the stored observations.
    """

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: Any = np.uint8) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.obs = np.zeros((self.capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((self.capacity, *obs_shape), dtype=obs_dtype)
        self.action = np.zeros(self.capacity, dtype=np.int64)
        self.reward = np.zeros(self.capacity, dtype=np.float32)
        self.terminal = np.zeros(self.capacity, dtype=np.float32)
        self.pos = 0  #: the slot the next transition goes to
        self.size = 0  #: number of filled slots (<= capacity)

    def __len__(self) -> int:
        return self.size

    def add(self, obs: Tensor | np.ndarray, action: int, reward: float,
            next_obs: Tensor | np.ndarray, terminal: bool) -> None:
        """Store one transition; obs and next_obs (C, H, W), integer valued."""
        i = self.pos
        self.obs[i] = np.asarray(obs)
        self.next_obs[i] = np.asarray(next_obs)
        self.action[i] = action
        self.reward[i] = reward
        self.terminal[i] = float(terminal)
        self.pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator,
               device: torch.device | str = "cpu") -> ReplayBatch:
        """``batch_size`` transitions drawn uniformly, with replacement, from the filled slots."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)

        def put(a: np.ndarray, dtype: torch.dtype) -> Tensor:
            return torch.from_numpy(a).to(device=device, dtype=dtype, non_blocking=True)

        return ReplayBatch(put(self.obs[idx], torch.float32), put(self.action[idx], torch.int64),
                           put(self.reward[idx], torch.float32), put(self.next_obs[idx], torch.float32),
                           put(self.terminal[idx], torch.float32), torch.from_numpy(idx))


# --------------------------------------------------------------------------- ε schedule


def epsilon_at(step: int, eps_start: float, eps_end: float, decay_steps: int,
               learning_starts: int = 0) -> float:
    """ε for environment step ``step`` (0-based).

    ``eps_start`` while ``step < learning_starts`` (the replay warm-up), then linear from
    ``eps_start`` at ``learning_starts`` to ``eps_end`` at ``learning_starts + decay_steps``,
    then ``eps_end``. ``decay_steps == 0`` jumps straight to ``eps_end``.
    """
    if step < learning_starts:
        return float(eps_start)
    if decay_steps <= 0:
        return float(eps_end)
    frac = min(1.0, (step - learning_starts) / decay_steps)
    return float(eps_start + frac * (eps_end - eps_start))


# --------------------------------------------------------------------------- training


@dataclass
class TrainOutput:
    """What ``train_dqn`` returns.

    ``episode_end_steps[i]`` is the number of environment steps taken when episode ``i``
    ended (so its last step has 0-based index ``episode_end_steps[i] - 1``); an episode
    still running at ``total_steps`` is not listed.
    """

    state_dict: dict[str, Tensor]  #: final online-network weights, CPU tensors
    episode_returns: list[float]  #: undiscounted return of each finished episode
    episode_end_steps: list[int]  #: environment steps taken when each episode ended
    losses: np.ndarray  #: (n_updates,) float32, the TD loss of every gradient update
    config: DQNConfig
    seed: int
    n_actions: int
    obs_shape: tuple[int, int, int]
    wall_time_s: float = 0.0  #: wall time of the training loop
    steps_per_second: float = 0.0  #: total_steps / wall_time_s
    #: Timing details: ``warmup_wall_s`` (the steps before learning_starts) and
    #: ``learning_steps_per_second`` (the steps from learning_starts on; NaN if none).
    extra: dict[str, Any] = field(default_factory=dict)


def _make_optimizer(cfg: DQNConfig, params) -> torch.optim.Optimizer:
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.rmsprop_alpha, eps=cfg.opt_eps,
                                   centered=cfg.rmsprop_centered)
    return torch.optim.Adam(params, lr=cfg.lr, eps=cfg.opt_eps)


def _td_loss(cfg: DQNConfig, online: QNetwork, target: QNetwork, batch: ReplayBatch) -> Tensor:
    q = online(batch.obs).gather(1, batch.action[:, None]).squeeze(1)
    with torch.no_grad():
        q_next_all = target(batch.next_obs)
        if cfg.double_dqn:
            best = online(batch.next_obs).argmax(1, keepdim=True)
            q_next = q_next_all.gather(1, best).squeeze(1)
        else:
            q_next = q_next_all.max(1).values
        y = batch.reward + cfg.gamma * (1.0 - batch.terminal) * q_next
    if cfg.loss == "huber":
        return F.smooth_l1_loss(q, y)
    return F.mse_loss(q, y)


def train_dqn(cfg: DQNConfig, seed: int, device: str | torch.device = "cpu",
              progress_cb: Callable[[dict[str, Any]], None] | None = None, *,
              num_threads: int | None = None, timers: dict[str, float] | None = None) -> TrainOutput:
    """Train a DQN on ``cfg.game`` for ``cfg.total_steps`` environment steps.

    Each step t (0-based): ε = ``epsilon_at(t, ...)``; act ε-greedily; store the
    transition; at a terminal step record the episode and reset. Then, if
    ``t >= learning_starts``, ``(t - learning_starts) % train_every == 0`` and the buffer
    holds at least one batch, one gradient update on a uniformly sampled minibatch. The
    target network starts as a copy of the online one and is re-synced after every
    ``target_update``-th step (when ``(t + 1) % target_update == 0``).

    Args:
        cfg: the run's configuration.
        seed: the only source of randomness (see ``seed_streams``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``. The environment and the
            replay buffer live on the CPU; the networks and minibatches on ``device``.
        progress_cb: called after each finished episode with a dict: ``step`` (steps
            taken), ``episode`` (0-based index), ``return``, ``length``, ``epsilon``,
            ``updates`` (gradient updates so far).
        num_threads: torch intra-op threads for the run (restored afterwards); None keeps
            the current setting. On CPU, 1 is usually fastest (see ``torch_threads``).
        timers: optional dict that, for the steps from ``learning_starts`` on, accumulates
            the wall seconds of each part of a step (keys ``TIMER_PARTS``) and the counts
            ``TIMER_COUNTS`` (steps timed, greedy actions, gradient updates, target syncs);
            existing values are added to. The run itself is unchanged (same results for a
            seed). On CUDA the device is synchronised after the update and the target sync
            when timing, so that their kernels are charged to them. None (default): no timing.

    Returns:
        ``TrainOutput`` (CPU state dict, episode returns and end steps, per-update losses).
    """
    with torch_threads(num_threads), allow_tf32(cfg.allow_tf32):
        return _train_dqn(cfg, seed, resolve_device(device), progress_cb, timers)


def _lap(timers: dict[str, float], key: str, since: float) -> float:
    now = time.perf_counter()
    timers[key] += now - since
    return now


def _train_dqn(cfg: DQNConfig, seed: int, dev: torch.device,
               progress_cb: Callable[[dict[str, Any]], None] | None,
               timers: dict[str, float] | None = None) -> TrainOutput:
    streams = seed_streams(seed)
    env = env_from_config(cfg, streams.env_seed)
    online = build_network(cfg, env.obs_shape, env.n_actions, env.input_scale, streams.init_seed).to(dev)
    target = build_network(cfg, env.obs_shape, env.n_actions, env.input_scale, streams.init_seed).to(dev)
    target.load_state_dict(online.state_dict())
    target.requires_grad_(False)
    optimizer = _make_optimizer(cfg, online.parameters())
    buffer = ReplayBuffer(cfg.replay_capacity, env.obs_shape)
    act_rng, replay_rng = streams.act_rng, streams.replay_rng

    max_updates = max(0, -(-(cfg.total_steps - cfg.learning_starts) // cfg.train_every))
    losses = torch.zeros(max_updates, device=dev)
    n_updates = 0
    returns: list[float] = []
    end_steps: list[int] = []
    ep_return, ep_len = 0.0, 0

    if timers is not None:
        for key in TIMER_PARTS:
            timers[key] = float(timers.get(key, 0.0))
        for key in TIMER_COUNTS:
            timers[key] = int(timers.get(key, 0))
    sync = torch.cuda.synchronize if timers is not None and dev.type == "cuda" else None
    tick = False  # time this step (timers given and t >= learning_starts)
    c = 0.0

    obs = env.reset(streams.env_seed)
    t0 = time.perf_counter()
    t_learn = t0 if cfg.learning_starts == 0 else None
    for t in range(cfg.total_steps):
        if t == cfg.learning_starts:
            t_learn = time.perf_counter()
        if timers is not None and t >= cfg.learning_starts:
            tick = True
            timers["steps"] += 1
            c = time.perf_counter()
        eps = epsilon_at(t, cfg.eps_start, cfg.eps_end, cfg.eps_decay_steps, cfg.learning_starts)
        if act_rng.random() < eps:
            action = int(act_rng.integers(env.n_actions))
            if tick:
                c = _lap(timers, "act_cpu", c)
        else:
            if tick:
                c = _lap(timers, "act_cpu", c)
                timers["greedy_steps"] += 1
            with torch.no_grad():
                action = int(online(obs.to(dev).unsqueeze(0)).argmax(1).item())
            if tick:
                c = _lap(timers, "act_net", c)
        next_obs, reward, terminal = env.step(action)
        if tick:
            c = _lap(timers, "env", c)
        buffer.add(obs, action, reward, next_obs, terminal)
        if tick:
            c = _lap(timers, "replay_add", c)
        ep_return += reward
        ep_len += 1
        if terminal:
            returns.append(ep_return)
            end_steps.append(t + 1)
            if progress_cb is not None:
                progress_cb({"step": t + 1, "episode": len(returns) - 1, "return": ep_return,
                             "length": ep_len, "epsilon": eps, "updates": n_updates})
            ep_return, ep_len = 0.0, 0
            next_obs = env.reset()
        obs = next_obs
        if tick:
            c = _lap(timers, "env", c)

        if (t >= cfg.learning_starts and (t - cfg.learning_starts) % cfg.train_every == 0
                and len(buffer) >= cfg.batch_size):
            batch = buffer.sample(cfg.batch_size, replay_rng, dev)
            if tick:
                c = _lap(timers, "replay_sample", c)
            loss = _td_loss(cfg, online, target, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip_norm is not None:
                nn.utils.clip_grad_norm_(online.parameters(), cfg.grad_clip_norm)
            optimizer.step()
            losses[n_updates] = loss.detach()
            n_updates += 1
            if tick:
                if sync is not None:
                    sync(dev)
                timers["updates"] += 1
                c = _lap(timers, "update", c)
        if (t + 1) % cfg.target_update == 0:
            target.load_state_dict(online.state_dict())
            if tick:
                if sync is not None:
                    sync(dev)
                timers["target_syncs"] += 1
                c = _lap(timers, "target_sync", c)
    t_end = time.perf_counter()
    wall = t_end - t0
    learn_steps = max(0, cfg.total_steps - cfg.learning_starts)
    extra = {
        "warmup_wall_s": (t_learn if t_learn is not None else t_end) - t0,
        "learning_steps_per_second": (learn_steps / (t_end - t_learn)
                                      if t_learn is not None and learn_steps and t_end > t_learn
                                      else float("nan")),
    }

    return TrainOutput(
        state_dict={k: v.detach().to("cpu", copy=True) for k, v in online.state_dict().items()},
        episode_returns=returns,
        episode_end_steps=end_steps,
        losses=losses[:n_updates].cpu().numpy().astype(np.float32),
        config=cfg,
        seed=int(seed),
        n_actions=env.n_actions,
        obs_shape=tuple(env.obs_shape),
        wall_time_s=wall,
        steps_per_second=cfg.total_steps / wall if wall > 0 else float("inf"),
        extra=extra,
    )
