"""Decoding a SAMDP trial's stored rows: the recorded steps and the checkpoint.

The train stage stores, per (game, seed), one ``checkpoint`` row (the weights as the
bytes of a weights-only ``torch.save``, the DQN config as JSON, and the frames' shape
when frames were kept) and one ``step`` row per recorded step; these read them back.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute

__all__ = ["recording_from_rows", "checkpoint_from_rows"]


def recording_from_rows(rows: pa.Table) -> dict[str, np.ndarray]:
    """The recorded steps of one trial as arrays (T, ...) in step order."""
    steps = rows.filter(pa.compute.equal(rows["kind"], "step"))
    steps = steps.take(pa.compute.sort_indices(steps, [("step", "ascending")]))
    out = {
        "hidden": np.asarray(steps["hidden"].to_pylist(), dtype=np.float32),
        "q_values": np.asarray(steps["q_values"].to_pylist(), dtype=np.float32),
        "value": steps["value"].to_numpy().astype(np.float32),
        "action": steps["action"].to_numpy().astype(np.int64),
        "reward": steps["reward"].to_numpy().astype(np.float32),
        "episode_end": np.asarray(steps["episode_end"].to_pylist(), dtype=bool),
        "episode": steps["episode"].to_numpy().astype(np.int64),
    }
    ckpt = rows.filter(pa.compute.equal(rows["kind"], "checkpoint"))
    if "frame_shape" in rows.column_names and ckpt.num_rows and ckpt["frame_shape"][0].as_py():
        shape = json.loads(ckpt["frame_shape"][0].as_py())
        out["frames"] = np.stack([np.frombuffer(b, dtype=np.uint8).reshape(shape)
                                  for b in steps["frame"].to_pylist()])
    return out


def checkpoint_from_rows(rows: pa.Table):
    """(state_dict, DQN config dict) of a trial, loaded weights-only (no arbitrary pickles)."""
    import torch

    ckpt = rows.filter(pa.compute.equal(rows["kind"], "checkpoint"))
    if ckpt.num_rows != 1:
        raise ValueError(f"expected one checkpoint row, found {ckpt.num_rows}")
    state = torch.load(io.BytesIO(ckpt["blob"][0].as_py()), weights_only=True)
    return state, json.loads(ckpt["dqn_config"][0].as_py())
