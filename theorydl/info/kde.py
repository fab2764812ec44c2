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

Computation.  Distances come from one GEMM of augmented rows, and one exp gives both
kernels (the KL kernel is the Bhattacharyya kernel to the 4th power).  On CPU the inputs
are sorted by class, only the blocks on and above the diagonal of the symmetric kernel
are built (row and column sums of each block), one model at a time in cache-sized
blocks: memory is O(N) per model beyond the activations.  Elsewhere (GPU) each model
needs an N x N matrix (64 MiB in float32 for N = 4096) plus a temporary of the same
size; models are processed ``chunk_size`` at a time.
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
# The upper-bound kernel is the lower-bound one to the 4th power, taken after clamping
# the lower one at exp(-80 / 4): that is exp(max(-d / (2 sigma^2), -80)) up to three
# roundings (a few ulps), the same floor, with no subnormal intermediate.
_KERNEL_FLOOR_QUARTER = math.exp(_LOG_KERNEL_FLOOR / 4)
# On CPU the kernel is built in blocks of about this many elements (512 KiB in float32),
# which stay in cache through all the passes over them (distance, exp, powers, sums); a
# whole (models, N, N) chunk would travel through main memory on every pass.  Measured
# on 2 EPYC cores: 2^17 beats 2^16 (more per-op overhead) and 2^18.
_CPU_BLOCK_ELEMENTS = 1 << 17


def _on_host(device: torch.device) -> bool:
    """Whether tensors on ``device`` are host memory, where the blocked path applies and
    reading the class sizes costs no sync (tests switch it off to check the other path)."""
    return device.type == "cpu"


def _indicator_sums(kernel: Tensor, same_class: Tensor) -> Tensor:
    """Full and own-class row sums of a kernel chunk (C, N, N): (C, N, 2) float32.

    ``same_class`` is the (N, N) indicator ``[y_i == y_j]`` in ``kernel``'s dtype.  Row
    sums use torch.sum rather than a matmul with class indicators: a float32 matmul may
    run in TF32 on GPUs (a global setting), which would cost three decimal digits.
    """
    return torch.stack([kernel.sum(dim=-1), (kernel * same_class).sum(dim=-1)], dim=-1)


def _log_kernel(left: Tensor, right: Tensor, diagonal: int) -> Tensor:
    """Log-kernel block l = left @ right clamped to [floor, 0] (round-off can make a
    distance slightly negative), with the self terms (on ``diagonal``) set to exactly 0
    so that every row keeps its 1."""
    k = torch.bmm(left, right)
    k.clamp_(_LOG_KERNEL_FLOOR, 0.0)
    k.diagonal(offset=diagonal, dim1=-2, dim2=-1).zero_()
    return k


def _lower_to_upper(k: Tensor) -> Tensor:
    """Lower-bound kernel exp(l) -> upper-bound kernel exp(4 l) in place (one exp serves
    both): clamp at exp(floor / 4), then square twice."""
    return k.clamp_min_(_KERNEL_FLOOR_QUARTER).square_().square_()


def _symmetric_class_sums(
    left: Tensor, right: Tensor, classes: list[slice]
) -> tuple[Tensor, Tensor]:
    """Per-class row sums of both kernels, float64 (M, N, n_classes) each (CPU path).

    The kernel is symmetric, so only the blocks on and above the diagonal are built:
    rows [r0, r1) against columns [r0, N), in cache-sized blocks.  Their row sums give
    the rows' own sums over columns >= r0; the column sums of the part right of the
    diagonal block, split by the class of the rows, give the sums of rows >= r1 over
    columns in [r0, r1).  Inputs are sorted by class, so classes are column (and row)
    slices.
    """
    m, n = left.shape[0], left.shape[1]
    sums = [torch.zeros(m, n, len(classes), dtype=torch.float64) for _ in range(2)]
    for r0, r1 in _triangle_blocks(n):
        # Class slices of the strip's columns and of its rows (relative, maybe empty).
        cols = [slice(min(max(c.start - r0, 0), n - r0), max(c.stop - r0, 0)) for c in classes]
        rows = [slice(min(max(c.start - r0, 0), r1 - r0), min(max(c.stop - r0, 0), r1 - r0))
                for c in classes]
        rest = slice(r1 - r0, None)  # the strip's columns right of its diagonal block
        row_sums: list[list[Tensor]] = [[], []]
        col_sums: list[list[Tensor]] = [[], []]
        for i in range(m):
            k = _log_kernel(left[i : i + 1, r0:r1], right[i : i + 1, :, r0:], 0).exp_()[0]
            for which in (0, 1):
                if which:
                    _lower_to_upper(k)
                row_sums[which].append(torch.stack([k[:, c].sum(dim=1) for c in cols], dim=1))
                if r1 < n:
                    right_part = k[:, rest]
                    col_sums[which].append(
                        torch.stack([right_part[c].sum(dim=0) for c in rows], dim=1))
        for which in (0, 1):
            sums[which][:, r0:r1] += torch.stack(row_sums[which])
            if r1 < n:
                sums[which][:, r1:] += torch.stack(col_sums[which])
    return sums[0], sums[1]


def _triangle_blocks(n: int) -> list[tuple[int, int]]:
    """Row blocks [r0, r1) whose strip of columns [r0, N) holds about
    ``_CPU_BLOCK_ELEMENTS`` elements (at least one row each)."""
    blocks, r0 = [], 0
    while r0 < n:
        rows = max(1, min(n - r0, _CPU_BLOCK_ELEMENTS // (n - r0)))
        blocks.append((r0, r0 + rows))
        r0 += rows
    return blocks


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
        chunk_size: models per chunk off CPU; peak memory there is about
            ``(2 * chunk_size + 1) * N**2`` elements of ``acts.dtype``.  On CPU the
            kernel is built in cache-sized blocks of rows instead, whatever chunk_size.

    Returns:
        ``KDEBounds`` of float64 (M,) tensors on ``acts.device``.  The distances use
        the GEMM form in ``acts.dtype`` with the self-distance set to exactly 0; a
        distance between distinct points carries round-off of about eps * |h|^2, which a
        tiny ``sigma`` amplifies: pass float64 activations if distances are small
        against the activations' norms.
    """
    if noise_variance <= 0:
        raise ValueError(f"noise_variance must be > 0, got {noise_variance}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    m, n, _ = acts.shape
    device = acts.device
    y = y.to(device=device, dtype=torch.int64)
    classes: list[slice] | Tensor
    if _on_host(device):
        # Sort the inputs by class so that each class is a contiguous block of columns
        # (the estimates do not depend on the order of the inputs); the class sizes are
        # read on the host, which costs nothing on CPU.
        order = torch.sort(y, stable=True).indices
        acts = acts.index_select(1, order)
        _, class_of, counts = torch.unique_consecutive(
            y.index_select(0, order), return_inverse=True, return_counts=True)
        ends = counts.cumsum(0).tolist()
        classes = [slice(a, b) for a, b in zip([0, *ends[:-1]], ends)]
        class_size = counts.double()[class_of]
    else:
        # Off CPU the class sizes stay on the device (no host sync): an (N, N) indicator.
        classes = (y[:, None] == y[None, :]).to(acts.dtype)
        class_size = classes.sum(dim=1).double()

    scale = 1.0 / (8.0 * noise_variance)
    # l_ij = -(|h_i|^2 + |h_j|^2 - 2 h_i.h_j) / (8 sigma^2) as one GEMM of augmented
    # rows: [2s h_i, -s |h_i|^2, -s] . [h_j, 1, |h_j|^2] with s = 1 / (8 sigma^2).
    sq_norm = acts.square().sum(dim=-1, keepdim=True)  # (M, N, 1)
    ones = torch.ones_like(sq_norm)
    left = torch.cat([acts * (2.0 * scale), sq_norm * -scale, ones * -scale], dim=-1)
    right = torch.cat([acts, ones, sq_norm], dim=-1).transpose(1, 2)  # (M, units + 2, N)
    if isinstance(classes, list):
        lower, upper = _symmetric_class_sums(left, right, classes)
    else:
        lower, upper = [], []
        for m0 in range(0, m, chunk_size):
            k = _log_kernel(left[m0 : m0 + chunk_size], right[m0 : m0 + chunk_size], 0).exp_()
            lower.append(_indicator_sums(k, classes))
            _lower_to_upper(k)
            upper.append(_indicator_sums(k, classes))
        lower, upper = torch.cat(lower).double(), torch.cat(upper).double()

    def estimates(sums: Tensor) -> tuple[Tensor, Tensor]:
        # I(X;T) = log N - mean_i log sum_j k_ij;  sum_y p(y) I(X;T|Y=y) =
        # mean_i [log N_{y_i} - log sum_{j: y_j = y_i} k_ij], with p(y) = N_y / N.
        if isinstance(classes, list):  # sums (M, N, n_classes)
            log_all = sums.sum(dim=-1).log()
            log_own = sums.gather(-1, class_of.expand(m, n)[..., None])[..., 0].log()
        else:  # sums (M, N, 2): full and own-class
            log_all, log_own = sums[..., 0].log(), sums[..., 1].log()
        i_xt = math.log(n) - log_all.mean(dim=-1)
        i_xt_given_y = (class_size.log() - log_own).mean(dim=-1)
        return i_xt / math.log(2.0), (i_xt - i_xt_given_y) / math.log(2.0)

    xt_lo, ty_lo = estimates(lower)
    xt_up, ty_up = estimates(upper)
    return KDEBounds(xt_lo, xt_up, ty_lo, ty_up)
