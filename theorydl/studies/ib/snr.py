"""Gradient signal-to-noise ratio and the drift-to-diffusion transition.

Shwartz-Ziv & Tishby (2017) track, per layer, the norm of the mean of the mini-batch
gradients and the norm of their standard deviation over training.  Early on the mean
dominates (high SNR, "drift"); later the fluctuations dominate (low SNR, "diffusion"),
which they tie to the onset of compression.  Saxe et al. (2018) observe the same SNR
change in networks that do not compress, so the detected epoch is a property of the
optimisation, not evidence of compression.

Detection method: ``x_k = log10 SNR`` at the sampled epochs is fitted by a
two-segment piecewise-constant function (one change point, least squares); every split
leaving at least ``min_segment`` samples on each side is tried, using prefix sums.
Samples are weighted equally, which for log-spaced sampled epochs is a fit uniform in
log-epoch.  The best split counts as a drift -> diffusion transition only if the first
segment's mean exceeds the second's by at least ``min_drop_decades`` and the split
explains at least ``min_explained`` of the variance of ``x``; otherwise there is no
transition (``None``).  A constant series has zero drop and gives ``None``; so, under
noise, may a regime lasting only a few samples (it explains little variance: lower
``min_explained`` to accept such a change).  Host-side
numpy: it runs once per trained stack on the logged norms, not during training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["ChangePoint", "drift_diffusion_epoch", "fit_change_point", "snr_ratio"]


def snr_ratio(mean_norm: ArrayLike, std_norm: ArrayLike) -> np.ndarray:
    """SNR = ||mean gradient|| / ||std of gradient||, elementwise.

    ``mean_norm``, ``std_norm``: same shape, (E,) or (L, E) (layers x sampled epochs),
    strictly positive.  Returns float64 of that shape (dimensionless).
    """
    mean_norm = np.asarray(mean_norm, dtype=np.float64)
    std_norm = np.asarray(std_norm, dtype=np.float64)
    if mean_norm.shape != std_norm.shape:
        raise ValueError(f"shape mismatch {mean_norm.shape} vs {std_norm.shape}")
    if not (np.all(mean_norm > 0) and np.all(std_norm > 0)):
        raise ValueError("gradient norms must be strictly positive (SNR is taken in log)")
    return mean_norm / std_norm


@dataclass(frozen=True)
class ChangePoint:
    """Best one-change-point fit of log10 SNR.

    ``index``: first sample of the second segment; ``epoch``: its epoch;
    ``level_before`` / ``level_after``: segment means of log10 SNR (decades);
    ``explained``: fraction of the variance of log10 SNR removed by the split (in
    [0, 1]; 0 for a constant series).
    """

    index: int
    epoch: int
    level_before: float
    level_after: float
    explained: float


def fit_change_point(epochs: ArrayLike, snr: ArrayLike, *, min_segment: int = 3) -> ChangePoint:
    """Least-squares two-segment piecewise-constant fit of ``log10(snr)``.

    ``epochs``: (E,) increasing sampled epochs; ``snr``: (E,) positive.  Splits at
    indices ``min_segment .. E - min_segment`` are scored by the summed squared error of
    the two segment means; the lowest wins (the earliest on ties).  Returns the
    ``ChangePoint`` whatever the direction of the change; see ``drift_diffusion_epoch``
    for the decision.
    """
    epochs = np.asarray(epochs)
    snr = np.asarray(snr, dtype=np.float64)
    if not np.all(np.isfinite(snr) & (snr > 0)):
        raise ValueError("snr must be finite and strictly positive (it is taken in log)")
    x = np.log10(snr)
    e = len(x)
    if x.ndim != 1 or epochs.shape != x.shape:
        raise ValueError(f"need matching 1-D epochs and snr, got {epochs.shape}, {x.shape}")
    if min_segment < 1 or e < 2 * min_segment:
        raise ValueError(f"{e} samples cannot hold two segments of {min_segment}")
    # SSE of a segment = sum x^2 - (sum x)^2 / n, from prefix sums.
    s1 = np.concatenate([[0.0], np.cumsum(x)])
    s2 = np.concatenate([[0.0], np.cumsum(x * x)])
    k = np.arange(min_segment, e - min_segment + 1)
    left = s2[k] - s1[k] ** 2 / k
    right = (s2[e] - s2[k]) - (s1[e] - s1[k]) ** 2 / (e - k)
    best = int(k[np.argmin(left + right)])
    total = s2[e] - s1[e] ** 2 / e
    sse = float((left + right).min())
    # Relative tolerance: a constant series has total ~ 0 up to rounding.
    explained = 0.0 if total <= 1e-12 * max(1.0, s2[e]) else max(0.0, 1.0 - sse / total)
    return ChangePoint(
        index=best,
        epoch=int(epochs[best]),
        level_before=float(x[:best].mean()),
        level_after=float(x[best:].mean()),
        explained=explained,
    )


def drift_diffusion_epoch(
    epochs: ArrayLike,
    snr: ArrayLike,
    *,
    min_segment: int = 3,
    min_drop_decades: float = 0.5,
    min_explained: float = 0.5,
) -> int | None | list[int | None]:
    """Epoch at which the SNR drops from the drift to the diffusion regime.

    ``epochs``: (E,) sampled epochs; ``snr``: (E,) or (L, E) (e.g. from ``snr_ratio``).
    Returns the first epoch of the low-SNR segment of the best change-point fit (see
    module docstring), or ``None`` when the fit shows no drop of at least
    ``min_drop_decades`` decades explaining at least ``min_explained`` of the variance;
    for (L, E) input a list with one such result per layer.  The resolution is one
    sampled epoch.
    """
    snr = np.asarray(snr, dtype=np.float64)
    if snr.ndim == 2:
        return [
            drift_diffusion_epoch(
                epochs,
                row,
                min_segment=min_segment,
                min_drop_decades=min_drop_decades,
                min_explained=min_explained,
            )
            for row in snr
        ]
    cp = fit_change_point(epochs, snr, min_segment=min_segment)
    dropped = cp.level_before - cp.level_after >= min_drop_decades
    return cp.epoch if dropped and cp.explained >= min_explained else None
