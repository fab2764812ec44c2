"""Environments for DQN: a tiny protocol, a MinAtar adapter (default, CPU) and an
optional Atari adapter (gymnasium + ale-py, imported lazily).

The protocol (``Env``)
----------------------
* ``reset(seed=None) -> obs``: start an episode. With a seed, the environment's random
  stream (and, for MinAtar, the sticky-action memory) is reset first, so ``reset(s)``
  is reproducible; without one the stream continues.
* ``step(a) -> (obs, reward, terminal)``: ``a`` is an agent action index in
  ``range(n_actions)``; ``reward`` is a float, ``terminal`` a bool. After a terminal step
  the caller must ``reset()``.
* ``truncated: bool``, read after a terminal step: True when the episode was cut off (a
  time limit) rather than ended by the game, so the state had a future that was not
  played (a value target or an SAMDP must not treat it as an end).  MinAtar has no time
  limit: always False there.
* ``n_actions: int``; ``obs_shape: (C, H, W)``; ``frame_shape: (H, W, C)``.
* ``frame() -> np.ndarray (H, W, C) uint8``: a rendering-free picture of the current
  state. For MinAtar it is the observation itself (channel-last, 0/1 values).

Observations are float32 CPU tensors, channel-first ``(C, H, W)``: ``(C, 10, 10)`` with
0/1 values for MinAtar (C = 4 breakout, 6 space_invaders, 10 seaquest, 4 asterix,
7 freeway); ``(4, 84, 84)`` with values 0..255 (four stacked grayscale frames) for Atari.
Observations are always integer valued, so a replay buffer may store them as uint8;
``input_scale`` says what a network should multiply them by (1 for MinAtar, 1/255 for
Atari).
"""

from __future__ import annotations

from collections import deque
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "BACKENDS",
    "MINATAR_GAMES",
    "AtariEnv",
    "Env",
    "MinAtarEnv",
    "make_env",
]

#: The MinAtar games (``minatar.Environment`` names).
MINATAR_GAMES: tuple[str, ...] = ("asterix", "breakout", "freeway", "seaquest", "space_invaders")

#: Known environment backends.
BACKENDS: tuple[str, ...] = ("minatar", "atari")

_ATARI_HINT = (
    "the 'atari' backend needs gymnasium and ale-py, which are not installed; "
    "install them with `pip install gymnasium ale-py` "
    "(the default backend 'minatar' needs neither)"
)


@runtime_checkable
class Env(Protocol):
    """What DQN training and recording need from an environment (see the module doc)."""

    n_actions: int
    obs_shape: tuple[int, int, int]
    frame_shape: tuple[int, int, int]
    input_scale: float
    truncated: bool

    def reset(self, seed: int | None = None) -> Tensor: ...

    def step(self, action: int) -> tuple[Tensor, float, bool]: ...

    def frame(self) -> np.ndarray: ...


# --------------------------------------------------------------------------- MinAtar


class MinAtarEnv:
    """A MinAtar game behind the ``Env`` protocol.

    Args:
        game: one of ``MINATAR_GAMES``.
        sticky_action_prob: probability that the previous action is repeated instead of
            the chosen one (MinAtar default 0.1).
        seed: seeds MinAtar's own ``numpy.random.RandomState`` (game randomness and sticky
            actions share it); nothing global is touched.
        difficulty_ramping: MinAtar's difficulty ramping (default True, as in the paper).
        minimal_action_set: if True the agent's actions are the game's minimal action set
            (e.g. 3 for breakout: no-op, left, right); otherwise all 6 MinAtar actions.
    """

    input_scale = 1.0
    truncated = False  # MinAtar games end only by the game's own rules

    def __init__(
        self,
        game: str,
        sticky_action_prob: float = 0.1,
        seed: int = 0,
        *,
        difficulty_ramping: bool = True,
        minimal_action_set: bool = False,
    ) -> None:
        _check_game(game, MINATAR_GAMES, "minatar")
        from minatar import Environment  # imports matplotlib/seaborn: a few seconds, once

        self.game = game
        self._env = Environment(game, sticky_action_prob=sticky_action_prob,
                                difficulty_ramping=difficulty_ramping)
        self._seed_env(seed)
        self._actions: list[int] = (list(self._env.minimal_action_set()) if minimal_action_set
                                    else list(range(self._env.num_actions())))
        self.n_actions = len(self._actions)
        h, w, c = (int(v) for v in self._env.state_shape())
        self.obs_shape = (c, h, w)
        self.frame_shape = (h, w, c)

    def _seed_env(self, seed: int) -> None:
        self._env.seed(int(seed) % 2**32)
        self._env.last_action = 0  # sticky-action memory: start every seeded stream alike

    def reset(self, seed: int | None = None) -> Tensor:
        """Start an episode; returns obs (C, 10, 10) float32."""
        if seed is not None:
            self._seed_env(seed)
        self._env.reset()
        return self._obs()

    def step(self, action: int) -> tuple[Tensor, float, bool]:
        """Act with agent action index ``action``; returns (obs (C, 10, 10), reward, terminal)."""
        reward, terminal = self._env.act(self._actions[action])
        return self._obs(), float(reward), bool(terminal)

    def frame(self) -> np.ndarray:
        """The current state, (10, 10, C) uint8 with 0/1 values (MinAtar's own layout)."""
        return self._env.state().astype(np.uint8)

    def _obs(self) -> Tensor:
        state = self._env.state()  # (10, 10, C) bool
        return torch.from_numpy(np.ascontiguousarray(state.transpose(2, 0, 1), dtype=np.float32))


# --------------------------------------------------------------------------- Atari


def _import_atari():
    """Import gymnasium and ale_py, registering the ALE environments; clear ImportError if absent."""
    try:
        import ale_py
        import gymnasium
    except ImportError as exc:
        raise ImportError(_ATARI_HINT) from exc
    if hasattr(gymnasium, "register_envs"):  # gymnasium >= 1.0 wants an explicit registration
        gymnasium.register_envs(ale_py)
    return gymnasium, ale_py


def _atari_id(game: str) -> str:
    """``"space_invaders"`` or ``"SpaceInvaders"`` -> ``"ALE/SpaceInvaders-v5"``."""
    camel = game if "_" not in game and game[:1].isupper() else "".join(
        part.capitalize() for part in game.split("_"))
    return f"ALE/{camel}-v5"


class AtariEnv:
    """An Atari 2600 game (gymnasium + ale-py) behind the ``Env`` protocol.

    Standard DQN preprocessing: ``ALE/<Game>-v5`` with frameskip 1 and the given sticky
    action probability, then gymnasium's ``AtariPreprocessing`` (frame skip 4, 84x84
    grayscale, up to 30 no-ops at reset, no life-loss terminals), and the last 4 frames
    stacked: obs (4, 84, 84) float32 with values 0..255 (``input_scale`` 1/255). A
    time-limit truncation is reported as ``terminal=True`` with ``truncated`` True. ``frame()`` is the emulator's
    RGB screen, (210, 160, 3) uint8, read from the ALE without rendering.

    Args:
        game: ``"breakout"``, ``"space_invaders"``, ... or ``"Breakout"`` (any ALE game).
        sticky_action_prob: ALE ``repeat_action_probability`` (0.25 in the v5 default).
        seed: seeds the first reset (ALE and no-op randomness).
        n_stack: frames stacked into one observation.
    """

    input_scale = 1.0 / 255.0

    def __init__(self, game: str, sticky_action_prob: float = 0.25, seed: int = 0,
                 *, n_stack: int = 4) -> None:
        gym, _ = _import_atari()
        env_id = _atari_id(game)
        known = sorted(k for k in gym.envs.registry if k.startswith("ALE/") and k.endswith("-v5"))
        if env_id not in known:
            names = ", ".join(k[len("ALE/"):-len("-v5")] for k in known)
            raise ValueError(f"unknown Atari game {game!r} ({env_id}); known games: {names}")
        env = gym.make(env_id, frameskip=1, repeat_action_probability=sticky_action_prob)
        self._env = gym.wrappers.AtariPreprocessing(
            env, noop_max=30, frame_skip=4, screen_size=84, terminal_on_life_loss=False,
            grayscale_obs=True, scale_obs=False)
        self.game = game
        self._seed: int | None = int(seed)
        self._stack: deque[np.ndarray] = deque(maxlen=n_stack)
        self.truncated = False
        self.n_actions = int(self._env.action_space.n)
        self.obs_shape = (n_stack, 84, 84)
        self.frame_shape = (210, 160, 3)

    def reset(self, seed: int | None = None) -> Tensor:
        if seed is None:
            seed, self._seed = self._seed, None  # the first reset uses the constructor's seed
        else:
            self._seed = None
        frame, _ = self._env.reset(seed=seed)
        self.truncated = False
        for _ in range(self._stack.maxlen):
            self._stack.append(frame)
        return self._obs()

    def step(self, action: int) -> tuple[Tensor, float, bool]:
        frame, reward, terminated, truncated, _ = self._env.step(int(action))
        self._stack.append(frame)
        self.truncated = bool(truncated and not terminated)
        return self._obs(), float(reward), bool(terminated or truncated)

    def frame(self) -> np.ndarray:
        return np.asarray(self._env.unwrapped.ale.getScreenRGB(), dtype=np.uint8)

    def _obs(self) -> Tensor:
        return torch.from_numpy(np.stack(self._stack).astype(np.float32))


# --------------------------------------------------------------------------- factory


def _check_game(game: str, known: tuple[str, ...], backend: str) -> None:
    if game not in known:
        raise ValueError(
            f"unknown {backend} game {game!r}; known games: {', '.join(known)}")


def make_env(backend: str, game: str, sticky_action_prob: float, seed: int, **kwargs) -> Env:
    """Build an environment.

    Args:
        backend: ``"minatar"`` (CPU-friendly default) or ``"atari"`` (needs
            ``pip install gymnasium ale-py``; raises ImportError saying so otherwise).
        game: a MinAtar game (``MINATAR_GAMES``) or an ALE game name.
        sticky_action_prob: probability of repeating the previous action.
        seed: seeds the environment's own random stream.
        **kwargs: backend options (MinAtar: ``difficulty_ramping``, ``minimal_action_set``;
            Atari: ``n_stack``).

    Raises:
        ValueError: unknown backend or game (the message lists the known ones).
        ImportError: backend ``"atari"`` without gymnasium / ale-py.
    """
    if backend == "minatar":
        return MinAtarEnv(game, sticky_action_prob, seed, **kwargs)
    if backend == "atari":
        return AtariEnv(game, sticky_action_prob, seed, **kwargs)
    raise ValueError(f"unknown backend {backend!r}; known backends: {', '.join(BACKENDS)}")
