"""Pairwise-distance (Kolchinsky & Tracey) bounds on the information of a noisy layer.

Setting (Saxe et al. 2018, after Kolchinsky & Tracey 2017): the layer's output is
``T = h(X) + Z`` with ``Z ~ N(0, sigma^2 I)`` and ``X`` uniform over the ``N`` inputs, so
``T`` is a mixture of ``N`` equal-weight Gaussians centred at the ``h_i``.  Its entropy is
bracketed by the pairwise-distance estimators with the KL divergence (upper) and the
Bhattacharyya distance (lower); subtracting ``H(T|X) = H(Z)`` gives

    I(X;T) <= U = -(1/N) sum_i log (1/N) sum_j exp(-|h_i - h_j|^2 / (2 sigma^2))
    I(X;T) >= L = -(1/N) sum_i log (1/N) sum_j exp(-|h_i - h_j|^2 / (8 sigma^2))

and ``0 <= L <= U <= log N``.  For I(T;Y) = I(X;T) - sum_y p(y) I(X;T | Y=y) the same
formulas are applied within each class (``N_y`` points, ``p(y) = N_y / N``) and, as in
Saxe et al.'s code, the estimates are upper-minus-conditional-upper and
lower-minus-conditional-lower.  A difference of two upper (or lower) bounds is not a
bound, so the I(T;Y) values are estimates, neither ordered nor bracketing the truth.
Both are ``<= H(Y)`` by construction (per point, the own-class kernel sum is at most the
full one); non-negativity (up to rounding) held in every random case we tried but is
not proven.

All results are in bits.  Known biases: the answer depends strongly on ``sigma^2`` (the
noise is an assumption of the method, not a property of the network); as
``sigma -> 0`` with distinct ``h_i`` both bounds tend to log2 N, as ``sigma -> infinity``
to 0, and the gap between the bounds closes at both limits and is widest in between.
Values are exact up to the float rounding of ``acts.dtype``: in float32 the kernel row
sums carry a relative error of order 1e-7, i.e. an absolute error of order 1e-7 bits,
so a value can read a hair outside [0, log2 N]; for very wide kernels, where the
information itself is that small, pass float64 activations.

Memory: each model needs an N x N distance matrix (64 MiB in float32 for N = 4096) plus
a few temporaries of the same size; models are processed ``chunk_size`` at a time.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["KDEBounds", "kde_information"]


class KDEBounds(NamedTuple):
    """Pairwise-distance information bounds, each float64 (M,), in bits.

    ``i_xt_lower <= I(X;T) <= i_xt_upper`` are bounds; ``i_ty_lower`` / ``i_ty_upper``
    are the corresponding estimates of I(T;Y) (not bounds, see module docstring).
    """

    i_xt_lower: Tensor
    i_xt_upper: Tensor
    i_ty_lower: Tensor
    i_ty_upper: Tensor


# exp(-80) ~ 1.8e-35 is above float32's smallest normal (1.2e-38).  Kernel values below
# it are clamped up to it: each row sum contains the self term 1, so the change is at
# most N * 1.8e-35 relative, while subnormal floats slow CPUs down several-fold.
_LOG_KERNEL_FLOOR = -80.0


def _mixture_terms(
    sq_dist: Tensor, scale: float, same_class: Tensor, class_size: Tensor
) -> tuple[Tensor, Tensor]:
    """Per-model I(X;T) and I(T;Y) estimates in nats for one kernel width.

    ``sq_dist`` (C, N, N) squared distances; ``scale`` the kernel's ``2 sigma^2`` (KL) or
    ``8 sigma^2`` (Bhattacharyya); ``same_class`` (N, N) ``[y_i == y_j]`` in
    ``sq_dist``'s dtype; ``class_size`` (N,) float64 ``N_{y_i}``.  Returns two float64
    (C,) tensors.  Uses ``sum_y p(y) I(X;T|Y=y) = -(1/N) sum_i log((1/N_{y_i})
    sum_{j: y_j = y_i} k_ij)`` with ``p(y) = N_y / N``.
    """
    n = sq_dist.shape[-1]
    # The log-kernel is <= 0 and exactly 0 on the diagonal, so exp cannot overflow and
    # every row sum is >= 1: no max-subtraction (logsumexp) is needed.  Row sums use
    # torch.sum rather than a matmul with class indicators: a float32 matmul may run in
    # TF32 on GPUs (a global setting), which would cost three decimal digits.
    kernel = sq_dist.mul(-1.0 / scale).clamp_min_(_LOG_KERNEL_FLOOR).exp_()
    all_sums = kernel.sum(dim=-1).double()
    own_sums = kernel.mul_(same_class).sum(dim=-1).double()
    i_xt = math.log(n) - all_sums.log().mean(dim=-1)
    i_xt_given_y = (class_size.log() - own_sums.log()).mean(dim=-1)
    return i_xt, i_xt - i_xt_given_y


@torch.no_grad()
def kde_information(
    acts: Tensor,
    y: Tensor,
    noise_variance: float,
    *,
    chunk_size: int = 8,
) -> KDEBounds:
    """Kolchinsky-Tracey bounds on I(X;T) and estimates of I(T;Y) for a stack, in bits.

    Args:
        acts: (M, N, units) noiseless layer outputs ``h(x)`` for M models on the same N
            inputs, taken uniform over the inputs.
        y: (N,) integer labels, best already on ``acts.device``.
        noise_variance: ``sigma^2`` of the additive Gaussian noise assumed on ``T``
            (in the activations' units squared; no default because the result depends
            on it strongly).
        chunk_size: models per chunk; peak memory is about
            ``(2 * chunk_size + 1) * N**2`` elements of ``acts.dtype``.

    Returns:
        ``KDEBounds`` of float64 (M,) tensors on ``acts.device``.  The distances use
        the GEMM form in ``acts.dtype`` with the self-distance set to exactly 0; a
        distance between distinct points carries round-off of about eps * |h|^2, which a
        tiny ``sigma`` amplifies: pass float64 activations if distances are small
        against the activations' norms.
    """
    if noise_variance <= 0:
        raise ValueError(f"noise_variance must be > 0, got {noise_variance}")
    m, n, _ = acts.shape
    y = y.to(acts.device)
    same_class = (y[:, None] == y[None, :]).to(acts.dtype)
    class_size = same_class.sum(dim=1).double()
    nats = {"xt_lo": [], "xt_up": [], "ty_lo": [], "ty_up": []}
    for start in range(0, m, chunk_size):
        h = acts[start : start + chunk_size]
        # The GEMM form |a|^2 + |b|^2 - 2ab is twice as fast on CPUs as direct differences;
        # its round-off (~1e-7 relative) only matters for the self-distance, which is set
        # to an exact 0 so every kernel row keeps its self term of exactly 1.
        sq_dist = torch.cdist(h, h, compute_mode="use_mm_for_euclid_dist").square_()
        sq_dist.diagonal(dim1=-2, dim2=-1).zero_()
        xt_up, ty_up = _mixture_terms(sq_dist, 2.0 * noise_variance, same_class, class_size)
        xt_lo, ty_lo = _mixture_terms(sq_dist, 8.0 * noise_variance, same_class, class_size)
        nats["xt_up"].append(xt_up)
        nats["ty_up"].append(ty_up)
        nats["xt_lo"].append(xt_lo)
        nats["ty_lo"].append(ty_lo)

    def bits(key: str) -> Tensor:
        return torch.cat(nats[key]) / math.log(2.0)

    return KDEBounds(bits("xt_lo"), bits("xt_up"), bits("ty_lo"), bits("ty_up"))
