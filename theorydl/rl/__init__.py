"""theorydl.rl: DQN on MinAtar (CPU) or Atari (optional), and recordings of its hidden layer.

Serves the SAMDP experiment (Zahavy, Ben-Zrihem & Mannor, "Graying the black box:
Understanding DQNs"): train a DQN, then record its last hidden layer while it plays.

Public:

* ``make_env(backend, game, sticky_action_prob, seed)`` -> ``Env`` (``reset(seed)``,
  ``step(a) -> (obs, reward, terminal)``, ``n_actions``, ``obs_shape``, ``frame()``);
  ``MinAtarEnv``, ``AtariEnv`` (needs ``pip install gymnasium ale-py``),
  ``MINATAR_GAMES``, ``BACKENDS`` (``theorydl.rl.envs``);
* ``DQNConfig`` (frozen dataclass, MinAtar-paper defaults), ``QNetwork`` (forward can
  also return the last hidden layer), ``ReplayBuffer``, ``epsilon_at``, ``train_dqn``
  -> ``TrainOutput``, ``build_network``, ``env_from_config``, ``seed_streams``,
  ``resolve_device``, ``torch_threads`` (``theorydl.rl.dqn``; ``train_dqn`` and
  ``record_policy`` take ``num_threads=`` — 1 is much faster on shared CPU cores;
  ``train_dqn(timers={})`` times the parts of each learning step: ``TIMER_PARTS``,
  ``TIMER_COUNTS``);
* ``save_checkpoint``, ``load_checkpoint`` -> ``Checkpoint`` (weights-only loading;
  ``CheckpointError`` otherwise) (``theorydl.rl.checkpoint``);
* ``record_policy`` -> ``Recording``, ``recording_to_arrow``, ``recording_from_arrow``
  (``theorydl.rl.record``).

Importing this package does not import MinAtar (whose import pulls in matplotlib and
seaborn, a few seconds) nor gymnasium / ale-py; building an environment does.
"""

from theorydl.rl.checkpoint import (
    CHECKPOINT_FORMAT,
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from theorydl.rl.dqn import (
    TIMER_COUNTS,
    TIMER_PARTS,
    DQNConfig,
    QNetwork,
    ReplayBatch,
    ReplayBuffer,
    TrainOutput,
    build_network,
    env_from_config,
    epsilon_at,
    resolve_device,
    seed_streams,
    torch_threads,
    train_dqn,
)
from theorydl.rl.envs import BACKENDS, MINATAR_GAMES, AtariEnv, Env, MinAtarEnv, make_env
from theorydl.rl.record import (
    RECORDING_FORMAT,
    Recording,
    record_policy,
    recording_from_arrow,
    recording_to_arrow,
)

__all__ = [
    "BACKENDS",
    "CHECKPOINT_FORMAT",
    "MINATAR_GAMES",
    "RECORDING_FORMAT",
    "TIMER_COUNTS",
    "TIMER_PARTS",
    "AtariEnv",
    "Checkpoint",
    "CheckpointError",
    "DQNConfig",
    "Env",
    "MinAtarEnv",
    "QNetwork",
    "Recording",
    "ReplayBatch",
    "ReplayBuffer",
    "TrainOutput",
    "build_network",
    "env_from_config",
    "epsilon_at",
    "load_checkpoint",
    "make_env",
    "record_policy",
    "recording_from_arrow",
    "recording_to_arrow",
    "resolve_device",
    "save_checkpoint",
    "seed_streams",
    "torch_threads",
    "train_dqn",
]
