"""What the width sweep records beside the engine's curves: each model's outputs on a few
fixed samples, so that two runs can be compared as functions (the rescaling-invariance
claim), not only through their error rates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor

from theorydl.nn import Hook, Period

__all__ = ["ProbeOutputs"]


class ProbeOutputs(Hook):
    """At the recorded epochs, each active model's outputs on ``X`` (a few samples), as
    flat float32 lists (classes x samples) keyed by (epoch, model index in the stack).
    A model with a non-finite output records nothing at that epoch."""

    def __init__(self, X: Tensor, epochs: Sequence[int]) -> None:
        self.X, self.epochs = X, frozenset(int(e) for e in epochs)
        self.outputs: dict[tuple[int, int], list[float]] = {}

    def at(self, t: int, periods: int) -> bool:
        return t in self.epochs

    def __call__(self, period: Period) -> None:
        first = period.family.params[0]
        z = period.family.outputs_t(self.X.to(device=first.device, dtype=first.dtype))
        z = z.float().cpu().numpy()  # (active models, classes, samples)
        for j, i in enumerate(period.models):
            if np.isfinite(z[j]).all():
                self.outputs[(period.t, int(i))] = z[j].ravel().tolist()

