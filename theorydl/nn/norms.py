"""Capacity measures and fit statistics of a stack's M models, for the width-sweep experiment.

All functions are pure and batched over the leading model axis M. Weights are the stack's
W_l (M, n_l, n_{l+1}); logits are (M, N, C) as returned by ``stack(X)``; labels y are (N,)
int64 (shared by all models) or (M, N).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from theorydl.nn.pathsgd import path_norm as l2_path_norm

__all__ = ["error_rate", "frobenius_norms", "l2_path_norm", "margin", "spectral_norms"]


def frobenius_norms(weights: Sequence[Tensor]) -> Tensor:
    """Frobenius norm of every weight matrix: (M, L), entry [i, l] = ||W_l of model i||_F."""
    return torch.stack([torch.linalg.matrix_norm(w, ord="fro") for w in weights], dim=1)


def spectral_norms(weights: Sequence[Tensor]) -> Tensor:
    """Spectral norm (largest singular value) of every weight matrix: (M, L).

    ``matrix_norm(ord=2)`` runs one batched SVD per layer over the M models. It is the
    same for W (n_l, n_{l+1}) and its transpose, so the (in, out) layout does not matter.
    """
    return torch.stack([torch.linalg.matrix_norm(w, ord=2) for w in weights], dim=1)


def _labels(logits: Tensor, y: Tensor) -> Tensor:
    """y as (M, N, 1) indices for gather/scatter, after checking the shapes."""
    if logits.dim() != 3:
        raise ValueError(f"logits must be (M, N, C), got {tuple(logits.shape)}")
    m, n, _ = logits.shape
    if y.shape not in ((n,), (m, n)):
        raise ValueError(f"y must be ({n},) or ({m}, {n}), got {tuple(y.shape)}")
    return y.to(device=logits.device, dtype=torch.int64).expand(m, n).unsqueeze(2)


def margin(logits: Tensor, y: Tensor) -> Tensor:
    """Training margin of every model, (M,): min over samples of (true-class logit - largest
    other logit).

    Negative when some sample is misclassified, zero at a tie. ``logits`` (M, N, C) with
    C >= 2; ``y`` (N,) or (M, N) int64. (Unnormalised: divide by a norm measure, e.g. the
    product of ``spectral_norms`` or ``l2_path_norm``, for a normalised margin.)
    """
    idx = _labels(logits, y)
    if logits.shape[2] < 2:
        raise ValueError("a margin needs at least 2 classes")
    true = logits.gather(2, idx).squeeze(2)
    # Mask the true class with -inf so the max runs over the other classes only.
    other = logits.scatter(2, idx, float("-inf")).amax(2)
    return (true - other).amin(1)


def error_rate(logits: Tensor, y: Tensor) -> Tensor:
    """Fraction of samples whose argmax logit is not the label, per model: (M,) in the
    logits' dtype. Ties go to the first maximal class (``argmax``)."""
    idx = _labels(logits, y)
    wrong = logits.argmax(2) != idx.squeeze(2)
    return wrong.to(logits.dtype).mean(1)
