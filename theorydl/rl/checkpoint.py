"""DQN checkpoints: a plain dict of tensors plus the config as JSON text, in one file.

The file is ``torch.save`` of ``{"format": str, "state_dict": {name: Tensor},
"config_json": str, "meta_json": str}`` — only strings and tensors, so it loads with
``torch.load(..., weights_only=True)``, which refuses to unpickle anything else (a
checkpoint from an untrusted source cannot run code). Writes are atomic: a temporary
file in the target folder, then ``os.replace``.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from theorydl.rl.dqn import DQNConfig

__all__ = ["CHECKPOINT_FORMAT", "Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"]

#: The ``format`` tag written into, and required from, every checkpoint.
CHECKPOINT_FORMAT = "theorydl.rl.dqn-checkpoint/1"


class CheckpointError(ValueError):
    """A file is not a loadable DQN checkpoint (wrong structure, or refused by weights_only)."""


class Checkpoint(NamedTuple):
    """What ``load_checkpoint`` returns."""

    state_dict: dict[str, Tensor]  #: CPU tensors
    config: DQNConfig
    meta: dict[str, Any]  #: the plain-python ``meta`` given to ``save_checkpoint`` ({} if none)


def save_checkpoint(state_dict: Mapping[str, Tensor], config: DQNConfig | Mapping[str, Any],
                    path: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> Path:
    """Write ``state_dict`` (moved to CPU) and ``config`` to ``path`` atomically.

    Args:
        state_dict: parameter name -> tensor (e.g. ``TrainOutput.state_dict``).
        config: a ``DQNConfig`` or its ``to_dict()``.
        path: destination file; its folder is created if missing.
        meta: optional JSON-serialisable extras (seed, returns, ...).

    Returns:
        The path written.
    """
    cfg = config if isinstance(config, DQNConfig) else DQNConfig.from_dict(config)
    tensors = {}
    for name, value in state_dict.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"state_dict[{name!r}] is a {type(value).__name__}, not a tensor")
        tensors[str(name)] = value.detach().to("cpu").contiguous().clone()
    payload = {
        "format": CHECKPOINT_FORMAT,
        "state_dict": tensors,
        "config_json": json.dumps(cfg.to_dict(), sort_keys=True),
        "meta_json": json.dumps(dict(meta or {}), sort_keys=True),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint``.

    Uses ``torch.load(path, map_location="cpu", weights_only=True)``: a file holding any
    pickled object other than tensors and plain containers is refused, and so is a file
    whose structure is not this module's format.

    Raises:
        CheckpointError: the file is refused by weights_only or is not a DQN checkpoint.
        FileNotFoundError: no such file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, ValueError,
            EOFError) as exc:
        raise CheckpointError(
            f"refusing to load {path}: not a weights-only DQN checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint")
    state_dict = payload.get("state_dict")
    if not isinstance(state_dict, dict) or not all(
            isinstance(k, str) and isinstance(v, Tensor) for k, v in state_dict.items()):
        raise CheckpointError(f"{path}: 'state_dict' is not a dict of tensors")
    try:
        config = DQNConfig.from_dict(json.loads(payload["config_json"]))
        meta = json.loads(payload.get("meta_json", "{}"))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad config or meta ({exc})") from exc
    return Checkpoint(state_dict, config, meta)
