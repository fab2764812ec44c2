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

Computation.  Log-kernels, in base 2 (exp2 is the cheaper exponential on CPU), come
from one GEMM of augmented rows, and one exp2 gives both kernels (the KL kernel is the
Bhattacharyya kernel to the 4th power).  On CPU the inputs are sorted by class and only
the entries on and above the diagonal of the symmetric kernel are built: strips of rows
of one class against the columns from the strip on, as an own-class block and a
later-classes block; the strips' row sums and the column sums right of their diagonal
blocks give every row's total and own-class sums.  Strips are taken for several models
at a time, in blocks that stay in cache through the passes over them; the buffers and
the views of each block are kept per thread for the last few problem shapes (a few MiB
each, as for a 50-model stack on 512 inputs) and reused by later calls.  (On CPU the
clamp of the log-kernel to [floor, 0] is skipped when no distance can reach the floor;
a distance that rounds negative then leaves its entry a few ulps above 1.)  Elsewhere
(GPU) each model needs an N x N matrix (64 MiB in float32 for N = 4096) plus a
temporary of the same size; models are processed ``chunk_size`` at a time.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
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


# exp(-80) ~ 1.8e-35 is above float32's smallest normal (1.2e-38).  Log-kernel values
# below it are clamped up to it: each row sum contains the self term 1, so the change is
# at most N * 1.8e-35 relative, while an exp with a subnormal result costs a CPU 20-40
# times a normal one.  The kernels are evaluated as exp2 (cheaper than exp on CPU), so
# log-kernels are held in base-2 units: l2 = l / ln 2, floor -80 / ln 2.
_LOG_KERNEL_FLOOR = -80.0
_LOG2_KERNEL_FLOOR = _LOG_KERNEL_FLOOR / math.log(2.0)
# The upper-bound kernel is the lower-bound one to the 4th power, taken after clamping
# the lower one at exp(-80 / 4): that is exp(max(-d / (2 sigma^2), -80)) up to three
# roundings (a few ulps), the same floor, with no subnormal intermediate.  (The CPU path
# squares without that clamp: a product's subnormal result costs a multiply little,
# and entries below exp(-80) then read as their true value or 0 instead of exp(-80).)
_KERNEL_FLOOR_QUARTER = math.exp(_LOG_KERNEL_FLOOR / 4)
# CPU blocking: each class's rows are cut into strips of about _CPU_STRIP_ELEMENTS
# kernel entries per model (a strip's square diagonal block also computes the part of
# the triangle below the diagonal: 13 % more entries than the triangle for N = 512),
# and strips are processed for as many models at once as make about
# _CPU_BLOCK_ELEMENTS entries.  A trade between fewer, larger operations (each costs
# several microseconds however small) and blocks that stay in cache through the passes
# over them (GEMM, exp2, two squares, row and column sums): measured on 2 EPYC cores
# with 1 thread for 50 models and N = 512, 2^14 / 2^18 beat strips of 2^13 or 2^15
# and blocks of 2^16, 2^17 or 2^19 entries by 6-20 %.
_CPU_STRIP_ELEMENTS = 1 << 14
_CPU_BLOCK_ELEMENTS = 1 << 18


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
    """Base-2 log-kernel block l2 = left @ right clamped to [floor, 0] (round-off can make
    a distance slightly negative), with the self terms (on ``diagonal``) set to exactly 0
    so that every row keeps its 1."""
    k = torch.bmm(left, right)
    k.clamp_(_LOG2_KERNEL_FLOOR, 0.0)
    k.diagonal(offset=diagonal, dim1=-2, dim2=-1).zero_()
    return k


def _lower_to_upper(k: Tensor) -> Tensor:
    """Lower-bound kernel exp(l) -> upper-bound kernel exp(4 l) in place (one exp serves
    both): clamp at exp(floor / 4), then square twice."""
    return k.clamp_min_(_KERNEL_FLOOR_QUARTER).square_().square_()


def _strip_plan(n: int, classes: list[tuple[int, int]], m: int) -> list[tuple[int, int, int, int]]:
    """Strips ``(r0, r1, a1, g)`` of the CPU path: rows [r0, r1) of one class (which ends
    at a1), about ``_CPU_STRIP_ELEMENTS`` entries of columns [r0, N) per model, taken
    for g models at a time (about ``_CPU_BLOCK_ELEMENTS`` entries); a class's last strip
    absorbs a remainder shorter than half a strip."""
    plan = []
    for a0, a1 in classes:
        r0 = a0
        while r0 < a1:
            c = n - r0
            h = max(1, min(a1 - r0, _CPU_STRIP_ELEMENTS // c))
            if a1 - r0 - h < (h + 1) // 2:
                h = a1 - r0
            plan.append((r0, r0 + h, a1, max(1, min(m, _CPU_BLOCK_ELEMENTS // (h * c)))))
            r0 += h
    return plan


class _Workspace:
    """Buffers of the CPU path for one problem shape (models, inputs, augmented width,
    dtype, class ranges), and the views that each block of the plan reads and writes.

    Built on the first call of a shape and reused by later ones: a view costs about as
    much as a small operation (several microseconds), and a block needs a dozen of them
    besides its dozen operations.  ``left`` (M, N, K) and ``right`` (M, K, N) hold the
    augmented rows; ``rows[part, kernel]`` a row's sums over its own strip's columns
    (each row lies in one strip; ``acts.dtype``), ``cols[part, kernel]`` the column sums
    accumulated over the strips above (float64); part 0 is the own class, 1 the others.
    """

    def __init__(self, m: int, n: int, k: int, dtype: torch.dtype,
                 classes: tuple[tuple[int, int], ...]) -> None:
        self.left = torch.empty(m, n, k, dtype=dtype)
        self.right = torch.empty(m, k, n, dtype=dtype)
        self.rows = torch.zeros(2, 2, m, n, dtype=dtype)  # never-written parts stay 0
        self.cols = torch.zeros(2, 2, m, n, dtype=torch.float64)
        plan = _strip_plan(n, list(classes), m)
        flat = torch.empty(2, max(g * (r1 - r0) * (n - r0) for r0, r1, _, g in plan), dtype=dtype)
        self.nbytes = sum(t.numel() * t.element_size()
                          for t in (self.left, self.right, self.rows, self.cols, flat))
        self.blocks = []
        for r0, r1, a1, g in plan:
            h, own_width, other_width = r1 - r0, a1 - r0, n - a1
            for m0 in range(0, m, g):
                m1 = min(m, m0 + g)
                n_own = (m1 - m0) * h * own_width
                size = n_own + (m1 - m0) * h * other_width
                lower = flat[0, :size]
                own = flat[:, :n_own].view(2, m1 - m0, h, own_width)
                block = [
                    self.left[m0:m1, r0:r1],
                    self.right[m0:m1, :, r0:a1], lower[:n_own].view(m1 - m0, h, own_width),
                    lower,
                    # Self terms: the diagonal of each model's first h own-class columns.
                    lower.as_strided((m1 - m0, h), (h * own_width, own_width + 1)),
                    flat[1, :size],
                    own, self.rows[0, :, m0:m1, r0:r1],
                ]
                if own_width > h:  # columns right of the diagonal block
                    block += [own[..., h:], torch.empty(2, m1 - m0, own_width - h, dtype=dtype),
                              self.cols[0, :, m0:m1, r1:a1]]
                else:
                    block += [None, None, None]
                if other_width:
                    block += [self.right[m0:m1, :, a1:],
                              lower[n_own:].view(m1 - m0, h, other_width),
                              flat[:, n_own:size].view(2, m1 - m0, h, other_width),
                              self.rows[1, :, m0:m1, r0:r1],
                              torch.empty(2, m1 - m0, other_width, dtype=dtype),
                              self.cols[1, :, m0:m1, a1:]]
                else:
                    block += [None] * 6
                self.blocks.append(tuple(block))


# Workspaces of the recent shapes, per thread (a call writes into its workspace), up to
# this many bytes in all (the newest is always kept): the six layer widths of the IB
# network on 512 inputs for 50 models take about 35 MB.
_WORKSPACES = threading.local()
_WORKSPACE_CACHE_BYTES = 64 << 20


def _workspace(m: int, n: int, k: int, dtype: torch.dtype,
               classes: list[tuple[int, int]]) -> _Workspace:
    """The thread's workspace for this shape (least recently used ones are dropped)."""
    cache = getattr(_WORKSPACES, "cache", None)
    if cache is None:
        cache = _WORKSPACES.cache = OrderedDict()
    key = (m, n, k, dtype, tuple(classes), _CPU_STRIP_ELEMENTS, _CPU_BLOCK_ELEMENTS)
    ws = cache.pop(key, None)
    if ws is None:
        # Normal tensors even when the first call runs in inference mode: inference
        # tensors could not be written in place by a later call outside it.
        with torch.inference_mode(False):
            ws = _Workspace(m, n, k, dtype, tuple(classes))
    cache[key] = ws
    while len(cache) > 1 and sum(w.nbytes for w in cache.values()) > _WORKSPACE_CACHE_BYTES:
        cache.popitem(last=False)
    return ws


def _class_block_sums(ws: _Workspace, clamp: bool) -> tuple[Tensor, Tensor]:
    """Own-class and total row sums of both kernels, float64 (2, M, N) each (CPU path,
    ``ws.left`` and ``ws.right`` filled); index 0 is the lower-bound kernel, 1 the
    upper-bound one.

    The inputs are sorted by class, and the kernel is symmetric, so only entries on and
    above the diagonal are built: for a strip of rows [r0, r1) of class [a0, a1), the
    columns [r0, a1) (own class, from the strip's square diagonal block on) and [a1, N)
    (later classes), as two contiguous blocks.  Their row sums are the strip rows' sums
    over those columns; their column sums, over the rows right of the diagonal block,
    are the sums of the later rows over columns [r0, r1): own-class for the first
    block, other-class for the second.  Every reduction is over whole rows or columns
    of a contiguous block (summing a slice of each row costs several times more).
    """
    ws.cols.zero_()
    for (left, right_own, out_own, lower, diagonal, upper, own, rows_own,
         own_rest, own_tmp, cols_own, right_other, out_other, other, rows_other,
         other_tmp, cols_other) in ws.blocks:
        torch.bmm(left, right_own, out=out_own)
        if right_other is not None:
            torch.bmm(left, right_other, out=out_other)
        if clamp:
            lower.clamp_(_LOG2_KERNEL_FLOOR, 0.0)
        diagonal.zero_()
        lower.exp2_()
        torch.square(lower, out=upper).square_()
        torch.sum(own, dim=-1, out=rows_own)
        if own_rest is not None:
            cols_own.add_(torch.sum(own_rest, dim=2, out=own_tmp))
        if right_other is not None:
            torch.sum(other, dim=-1, out=rows_other)
            cols_other.add_(torch.sum(other, dim=2, out=other_tmp))
    own = ws.cols[0] + ws.rows[0]
    return own, ws.cols[1] + ws.rows[1] + own


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
            kernel is built in strips of rows for a few models at a time instead,
            whatever chunk_size, in buffers kept per thread for the last few shapes
            (see the module docstring).

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
    host = _on_host(device)
    if host:
        # Sort the inputs by class so that each class is a contiguous block of columns
        # (the estimates do not depend on the order of the inputs); the class sizes are
        # read on the host, which costs nothing on CPU.
        order = torch.sort(y, stable=True).indices
        acts = acts.index_select(1, order)
        _, class_of, counts = torch.unique_consecutive(
            y.index_select(0, order), return_inverse=True, return_counts=True)
        ends = counts.cumsum(0).tolist()
        classes = list(zip([0, *ends[:-1]], ends))
        class_size = counts.double()[class_of]
    else:
        # Off CPU the class sizes stay on the device (no host sync): an (N, N) indicator.
        same_class = (y[:, None] == y[None, :]).to(acts.dtype)
        class_size = same_class.sum(dim=1).double()

    # Base-2 log-kernels (exp2 is the cheaper exponential on CPU): with
    # s = log2(e) / (8 sigma^2), l2_ij = -s (|h_i|^2 + |h_j|^2 - 2 h_i.h_j) as one GEMM of
    # augmented rows: [2s h_i, -s |h_i|^2, -s] . [h_j, 1, |h_j|^2].
    scale = 1.0 / (8.0 * noise_variance * math.log(2.0))
    sq_norm = acts.square().sum(dim=-1, keepdim=True)  # (M, N, 1)
    if host:
        units = acts.shape[-1]
        ws = _workspace(m, n, units + 2, acts.dtype, classes)
        torch.mul(acts, 2.0 * scale, out=ws.left[..., :units])
        torch.mul(sq_norm, -scale, out=ws.left[..., units:-1])
        ws.left[..., -1].fill_(-scale)
        ws.right[:, :units].copy_(acts.transpose(1, 2))
        ws.right[:, units].fill_(1.0)
        ws.right[:, -1].copy_(sq_norm[..., 0])
        # The clamp of the log-kernel to [floor, 0] is skipped when no distance can reach
        # the floor (|h_i - h_j|^2 <= 4 max |h|^2): one pass less.  A round-off-negative
        # distance then leaves its entry a few ulps above 1, the size of the distances'
        # own round-off.
        clamp = not 4.0 * scale * float(sq_norm.amax()) <= -_LOG2_KERNEL_FLOOR
        own, total = _class_block_sums(ws, clamp)
    else:
        ones = torch.ones_like(sq_norm)
        left = torch.cat([acts * (2.0 * scale), sq_norm * -scale, ones * -scale], dim=-1)
        right = torch.cat([acts, ones, sq_norm], dim=-1).transpose(1, 2)  # (M, units + 2, N)
        sums = []
        for m0 in range(0, m, chunk_size):
            k = _log_kernel(left[m0 : m0 + chunk_size], right[m0 : m0 + chunk_size], 0).exp2_()
            lower = _indicator_sums(k, same_class)
            _lower_to_upper(k)
            sums.append(torch.stack([lower, _indicator_sums(k, same_class)]))
        total, own = torch.cat(sums, dim=1).double().unbind(dim=-1)  # (2, M, N) each

    def estimates(which: int) -> tuple[Tensor, Tensor]:
        # I(X;T) = log N - mean_i log sum_j k_ij;  sum_y p(y) I(X;T|Y=y) =
        # mean_i [log N_{y_i} - log sum_{j: y_j = y_i} k_ij], with p(y) = N_y / N.
        i_xt = math.log(n) - total[which].log().mean(dim=-1)
        i_xt_given_y = (class_size.log() - own[which].log()).mean(dim=-1)
        return i_xt / math.log(2.0), (i_xt - i_xt_given_y) / math.log(2.0)

    xt_lo, ty_lo = estimates(0)
    xt_up, ty_up = estimates(1)
    return KDEBounds(xt_lo, xt_up, ty_lo, ty_up)
