"""Binning estimators of I(X;T) and I(T;Y) for a stack of deterministic layers.

Setting (Shwartz-Ziv & Tishby 2017; Saxe et al. 2018): a layer is a deterministic map
``T = f(X)`` evaluated on the ``N`` distinct inputs, ``X`` is taken uniform over them (or
distributed by given weights ``p(x)``), and each unit's activation is discretised into
``n_bins`` bins.  The binned ``T`` is a deterministic function of ``X``, so

    I(X;T) = H(T)
    I(T;Y) = H(T) + H(Y) - H(T,Y) = H(T) - sum_y p(y) H(T | Y=y)

are plug-in entropies of the empirical distribution of binned rows.  All results are in
bits.

Known biases (they are properties of the method, not of this code): the values depend
on the bin width (finer bins push I(X;T) towards log2 N, coarser towards 0) and measure
the geometry of the binned activations rather than a mutual information of the
continuous network (which is infinite or constant for an injective deterministic
layer); a saturating tanh layer compresses under fixed bins simply because its
activations pile up in the outer bins; I(X;T) is capped at log2 N (12 bits for the
4096 patterns) and I(T;Y) at H(Y).

Bins.  Edges are ``n_bins + 1`` equally spaced values ``e_0 < ... < e_n``; value ``t``
falls in bin ``k`` when ``e_k <= t < e_{k+1}``.  Two conventions say where the values
outside ``[e_0, e_n)`` go (``convention``):

- ``"clip"``: values below ``e_0`` go to bin 0 and values at or above ``e_n`` to bin
  ``n_bins - 1`` (out-of-range activations saturate into the outer bins, as
  ``np.digitize`` on the interior edges does): ``n_bins`` categories per unit;
- ``"idnns"``: every value below ``e_0`` and every value at or above ``e_n`` goes to one
  extra category of its own, index ``n_bins`` (the original IB code, ``ravidziv/IDNNs``:
  its ``bins[np.digitize(t, bins) - 1]`` maps both to the last edge's value, which no
  in-range value gets): ``n_bins + 1`` categories per unit.  Its 30 "bins" are the
  edges ``np.linspace(-1, 1, 30)``, i.e. ``fixed_edges(29)``: 29 bins of width 2/29 plus
  the overflow category, so a tanh unit saturated at exactly 1.0 is set apart from the
  bin below while one at exactly -1.0 opens bin 0.

``fixed_edges`` computes its edges in float64 (``np.linspace``, as the original does)
and casts them to the activations' dtype; ``adaptive_edges`` spans each model's observed
[min, max] as Saxe et al. did for ReLU layers (there is nothing outside it, so the
conventions differ only in where the maximum goes: the last bin, or the overflow).

Vectorisation. Each binned row is encoded exactly as an integer in positional notation
(base the categories per unit, base ``n_classes`` for the label, least significant).
With uniform weights and ``categories**units * n_classes <= 2**53`` (the IB networks: 30
per unit, up to 10 units) the code is held in a float64, where it is exact, rows are
sorted per model (numpy's vectorised sort on CPU, on int32 codes when they fit) and the
entropies come from run lengths. On CPU the codes are built a few models at a time,
straight from the activations in their own memory layout (see ``_codes_host``), so that
the passes over them run in cache (the ``"idnns"`` overflow adds passes only to chunks
with many values at the end edges: see ``_codes_host``). Otherwise (weights, or wider
layers) when the code exceeds 2**63 - 1 the units are packed into several int64 words,
compared lexicographically (no hashing, so no collisions), rows are sorted per model (a
stable sort per word, least significant word first) and equal neighbours form runs whose
weights are summed with ``scatter_add``. There is no loop over samples (nor over models,
except for those groups on CPU); off CPU there is no host synchronisation.

Bin indices on CPU: the arithmetic bin ``floor((t - lo) / width)`` is exact except
within rounding distance of an interior edge; only those few values are compared with
the actual edge value (see ``_bins_float``).  Elsewhere every value gets a one-step
correction against the edges it falls between.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "CONVENTIONS",
    "adaptive_edges",
    "bin_indices",
    "binned_information",
    "binned_information_reference",
    "fixed_edges",
]

_INT64_MAX = (1 << 63) - 1
_FLOAT64_EXACT = 1 << 53  # integers up to here are exact in float64
# On CPU the binned codes are built for a few models at a time, about this many
# activations (512 KiB in float32): the ~8 passes over them then run in cache, at about
# half the cost per element of passes over a whole layer of a 50-model stack.
_CPU_CHUNK_ELEMENTS = 1 << 17

#: Where values outside the edges go: see the module docstring.
CONVENTIONS = ("clip", "idnns")


def _categories(n_bins: int, convention: str) -> int:
    """Categories per unit: the bins, plus the overflow under ``"idnns"``."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown bin convention {convention!r}; "
                         f"known: {', '.join(CONVENTIONS)}")
    return n_bins + (convention == "idnns")


def _on_host(device: torch.device) -> bool:
    """Whether tensors on ``device`` are host memory, where the numpy fast paths apply
    and reading values costs no sync (tests switch it off to check the other paths)."""
    return device.type == "cpu"


def fixed_edges(
    n_bins: int = 30,
    lo: float = -1.0,
    hi: float = 1.0,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> Tensor:
    """Edges of ``n_bins`` equal bins on ``[lo, hi]``, shape ``(n_bins + 1,)``.

    Computed in float64 by ``np.linspace`` (so that the centre edge of a symmetric
    range is exactly 0 and the edges are those of the original code) and cast to
    ``dtype``.  Pass ``dtype`` equal to the activations' dtype so that bin membership is
    decided in that precision.  30 bins on [-1, 1] is the ``"clip"`` convention's tanh
    setting; the original's (``"idnns"``) is ``fixed_edges(29)``, the edges
    ``np.linspace(-1, 1, 30)``.
    """
    if n_bins < 1 or not hi > lo:
        raise ValueError(f"need n_bins >= 1 and hi > lo, got {n_bins}, [{lo}, {hi}]")
    edges = torch.from_numpy(np.linspace(float(lo), float(hi), n_bins + 1))
    return edges.to(dtype=dtype, device=device)


@torch.no_grad()
def adaptive_edges(acts: Tensor, n_bins: int = 30) -> Tensor:
    """Per-model edges of ``n_bins`` equal bins between the layer's min and max.

    ``acts``: (M, N, units).  Returns (M, n_bins + 1) in ``acts.dtype``; row ``m`` spans
    the minimum and maximum of ``acts[m]`` over samples and units (Saxe et al.'s ReLU
    setting).  A constant layer gets all edges equal, which puts every value in the last
    bin: H(T) = 0 as it should be.
    """
    if n_bins < 1:
        raise ValueError(f"need n_bins >= 1, got {n_bins}")
    # Reductions over dims 1 and 2 rather than over a flattened view, which would copy
    # activations that are not contiguous (the stack's forward pass makes transposed
    # views).
    lo = acts.amin(dim=(1, 2))[:, None]
    hi = acts.amax(dim=(1, 2))[:, None]
    frac = torch.arange(n_bins + 1, dtype=acts.dtype, device=acts.device) / n_bins
    edges = lo + (hi - lo) * frac
    edges[:, -1] = hi[:, 0]  # exact endpoint regardless of rounding in (hi - lo) * 1
    return edges


def _edge_table(acts: Tensor, edges: Tensor) -> tuple[Tensor, int, Tensor, Tensor]:
    """Edges in ``acts.dtype`` as (M, n_bins + 1), n_bins, and per-model lo, width (M, 1, 1)."""
    e = edges.to(acts.dtype)
    e = e.expand(acts.shape[0], -1) if e.dim() == 1 else e
    n_bins = e.shape[-1] - 1
    lo = e[:, :1, None]
    width = (e[:, -1:, None] - lo) / n_bins
    return e, n_bins, lo, width


def _exact_bins(t: Tensor, guess: Tensor, e: Tensor, model: Tensor | None) -> Tensor:
    """One-step correction of int64 bin guesses (each off by at most one) against the
    actual edge values ``e`` (M, n_bins + 1): ``e_k <= t < e_{k+1}``, saturating at both
    ends.  ``t``, ``guess``: (M, K) when ``model`` is None, else flat (K,) with ``model``
    (K,) the model of each element."""
    n_bins = e.shape[-1] - 1
    if model is None:
        below = (t < e.gather(1, guess)) & (guess > 0)
        above = (t >= e.gather(1, guess + 1)) & (guess < n_bins - 1)
    else:
        flat = e.reshape(-1)
        at = model * (n_bins + 1) + guess
        below = (t < flat.index_select(0, at)) & (guess > 0)
        above = (t >= flat.index_select(0, at + 1)) & (guess < n_bins - 1)
    return guess - below.to(torch.int64) + above.to(torch.int64)


def _fast_bin_params(
    acts: Tensor, edges: Tensor
) -> tuple[np.ndarray, int, Tensor, Tensor, Tensor] | None:
    """Parameters of the CPU arithmetic bins (see ``_bins_float``): the edges (M,
    n_bins + 1) as a numpy array, n_bins, and per model (M, 1, 1) tensors ``inv``,
    ``off`` (so that ``x = t * inv + off``) and the threshold ``delta``, all in
    ``acts.dtype``; None where the path does not apply (off CPU; edges too uneven).
    Computed in numpy on the (1 or M, n_bins + 1) edge table: a few dozen operations
    on tiny arrays cost several times less there than as torch calls, and IEEE
    arithmetic gives the same values."""
    if not _on_host(acts.device):
        return None
    m = acts.shape[0]
    e = edges.to(acts.dtype).numpy().reshape(-1, edges.shape[-1])  # 1 or M rows
    n_bins = e.shape[-1] - 1
    eps = float(torch.finfo(acts.dtype).eps)
    e64 = e.astype(np.float64)
    w64 = (e64[:, -1:] - e64[:, :1]) / n_bins
    spacing = e64 - (e64[:, :1] + np.arange(n_bins + 1) * w64)
    positive = w64 > 0
    w64 = np.where(positive, w64, 1.0)
    dev = np.where(positive, np.abs(spacing).max(axis=1, keepdims=True) / w64, 0.0)
    # The rounding of x and of dev itself is a few eps of the bins' index range and of
    # the edges' magnitude in bins (edges far from zero carry fewer digits of the bins).
    magnitude = np.maximum(np.abs(e64[:, :1]), np.abs(e64[:, -1:]))
    in_bins = np.where(positive, magnitude / w64, 0.0)
    delta = 2 * dev + 16 * eps * (n_bins + 1 + in_bins)
    if not np.all(delta < 0.25):
        return None
    lo = e[:, :1]
    width = (e[:, -1:] - lo) / e.dtype.type(n_bins)  # in acts.dtype, as the edges
    nonzero = width > 0
    inv = np.where(nonzero, 1 / np.where(nonzero, width, 1), 0).astype(e.dtype)
    # A zero-width range (constant layer) has all edges equal: x = n_bins puts everything
    # in the last bin (every value is >= all edges).
    off = np.where(nonzero, -lo * inv, n_bins).astype(e.dtype)

    def per_model(a: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=e.dtype)).expand(m, 1)[..., None]

    return (np.broadcast_to(e, (m, n_bins + 1)), n_bins,
            per_model(inv), per_model(off), per_model(delta))


def _bins_float(acts: Tensor, edges: Tensor) -> Tensor | None:
    """CPU fast path of ``bin_indices``: exact bin indices as float (M, N, units) in
    ``acts.dtype``, contiguous, or None where it does not apply (off CPU; edges too
    uneven).

    With ``x = (t - lo) / width`` (computed with relative error below ~4 eps) and the
    edges' positions ``p_k = (e_k - lo) / width`` within ``dev`` of ``k``: where ``x``
    is more than ``delta`` (twice ``dev`` plus 16 eps times the bins' index range and
    the edges' magnitude in bins) away from every interior edge
    index 1..n_bins-1, ``t >= e_k`` exactly when ``x >= k``, so the bin is
    ``clamp(floor(x), 0, n_bins - 1)``.  Only the few values within ``delta`` of an
    interior index ``k`` are compared with the actual edge ``e_k`` (bin ``k`` or
    ``k - 1``; no other edge is that close while ``delta < 1/2``).
    """
    params = _fast_bin_params(acts, edges)
    if params is None:
        return None
    e, n_bins, inv, off, delta = params
    acts = acts.contiguous()  # the flat indexing below assumes row-major order
    # x = t * inv + off in one pass: its rounding (eps times |t| / width at most) is
    # within delta's magnitude term.
    x = torch.addcmul(off, acts, inv)
    # Nearest interior edge index (clamped to 1..n_bins-1: a value nearest to edge 0 or
    # n_bins is then more than delta away from it, as those edges need no check).
    nearest = x.round().clamp_(1, n_bins - 1)
    near = (x - nearest).abs_() < delta
    bins = x.floor_().clamp_(0, n_bins - 1)
    # The few values near an interior edge k: bin k if t >= e_k, else k - 1 (numpy's
    # flat indexing is several times cheaper than torch's advanced indexing here).
    where = np.flatnonzero(near.numpy())
    if where.size:
        t = acts.detach().numpy().reshape(-1)[where]
        k = nearest.numpy().reshape(-1)[where].astype(np.intp)
        model = where // (acts.shape[1] * acts.shape[2])
        bins.numpy().reshape(-1)[where] = np.where(t >= e[model, k], k, k - 1)
    return bins


def _device_safe(acts: Tensor, edges: Tensor) -> tuple[Tensor, Tensor]:
    """``acts`` with every non-finite value made finite, and ``edges`` on its device.

    NaN and +inf become the dtype's largest value and -inf its lowest, so they take
    the last and the first bin (``"idnns"``: NaN and +inf the overflow category, -inf
    too) instead of an out-of-range index: on CUDA a NaN turned into the index -2**63
    would fail a device-side assert in the gathers below and poison the worker.  On
    CPU the activations are copied only when they hold such a value (checking is one
    read pass; the check would be a host synchronisation elsewhere, so off CPU the
    replacement is always made, on the device).
    """
    edges = edges.to(acts.device)
    # One reduction, no temporary: NaN or inf anywhere makes the sum non-finite (a sum
    # that overflows only costs an unneeded copy).
    if _on_host(acts.device) and math.isfinite(float(acts.sum())):
        return acts, edges
    big = torch.finfo(acts.dtype).max
    return torch.nan_to_num(acts, nan=big, posinf=big, neginf=-big), edges


def _place_values(units: int, n_cat: int, n_classes: int, device: torch.device) -> Tensor:
    """Place values of the digits of a binned row, float64 (units,) on ``device``:
    ``n_cat ** (units - 1 - p) * n_classes`` for unit ``p`` (the label is the least
    significant digit).  Built on the device (no host copy); exact products of integers
    while the codes stay below 2**53, which the caller guarantees."""
    factors = torch.full((units,), float(n_cat), dtype=torch.float64, device=device)
    return torch.cat([factors[:1].fill_(n_classes), factors[1:]]).cumprod(0).flip(0)


@torch.no_grad()
def bin_indices(acts: Tensor, edges: Tensor, *, convention: str = "clip") -> Tensor:
    """Bin index of every activation, int64 (M, N, units).

    ``acts``: (M, N, units); ``edges``: equally spaced, (n_bins + 1,) shared by all
    models or (M, n_bins + 1) per model (as ``fixed_edges`` / ``adaptive_edges`` make
    them).  Membership follows the given edge values exactly (``e_k <= t < e_{k+1}``);
    out-of-range values saturate into bins 0 and ``n_bins - 1`` (``"clip"``, indices in
    ``[0, n_bins)``) or go to the overflow category ``n_bins`` (``"idnns"``, indices in
    ``[0, n_bins]``); see the module docstring.  Edges on another device are moved to
    ``acts.device``; NaN and +inf count as the largest value, -inf as the lowest (so
    every index is in range, whatever the input).
    """
    overflow = _categories(edges.shape[-1] - 1, convention) > edges.shape[-1] - 1
    acts, edges = _device_safe(acts, edges)
    fast = _bins_float(acts, edges)
    if fast is not None:
        idx = fast.to(torch.int64)
    else:
        e, n_bins, lo, width = _edge_table(acts, edges)
        # Arithmetic guess, then a one-step correction against the actual edge values:
        # a binary search over the edges (searchsorted) costs several times more on CPU,
        # and for equal spacing the guess is off by at most one bin from rounding.  A
        # zero-width range (constant layer) has all edges equal: everything goes to the
        # last bin.
        guess = torch.where(width > 0, (acts - lo) / width, float(n_bins))
        idx = guess.floor_().clamp_(0, n_bins - 1).to(torch.int64)
        flat = _exact_bins(acts.reshape(acts.shape[0], -1), idx.reshape(acts.shape[0], -1),
                           e, None)
        idx = flat.reshape(acts.shape)
    if overflow:
        # (Not a hot path: the estimators' CPU path folds the overflow into its codes.)
        e = edges.to(acts.dtype)
        e = e.expand(acts.shape[0], -1) if e.dim() == 1 else e
        outside = (acts < e[:, :1, None]) | (acts >= e[:, -1:, None])
        idx = idx.masked_fill(outside, e.shape[-1] - 1)
    return idx


def _word_layout(n_digits: int, base: int, last_base: int) -> list[list[int]]:
    """Group digit positions into int64 words of at most 2**63 combinations each.

    Digits ``0..n_digits-1`` have ``base`` values; an extra last digit (the label) has
    ``last_base`` values and is always placed last, in the last word.  Returns a list of
    words, each a list of digit positions (position ``n_digits`` is the label).
    """
    words: list[list[int]] = [[]]
    capacity = 1
    for pos, b in [(p, base) for p in range(n_digits)] + [(n_digits, last_base)]:
        if capacity * b > _INT64_MAX + 1:
            words.append([])
            capacity = 1
        words[-1].append(pos)
        capacity *= b
    return words


def _encode(columns: list[Tensor], bases: list[int]) -> Tensor:
    """Positional code of digit tensors (each (M, N) int64) -> int64 (M, N).

    Horner's rule, most significant digit first; the result is < 2**63 by construction
    of the word layout, so int64 never overflows.  (Building a tensor of place values
    instead would copy from the host on every call.)
    """
    code = columns[0].clone()
    for column, base in zip(columns[1:], bases[1:]):
        code.mul_(base).add_(column)
    return code


def _entropy_bits(group_start: Tensor, w_sorted: Tensor) -> Tensor:
    """Entropy (bits) of runs: ``group_start`` (M, N) bool marks run starts.

    ``w_sorted`` (M, N) float64 probabilities in the sorted order.  Each run's mass is
    accumulated with ``scatter_add`` onto its run id; empty slots contribute 0.
    """
    run_id = torch.cumsum(group_start.to(torch.int64), dim=1) - 1
    mass = torch.zeros_like(w_sorted).scatter_add_(1, run_id, w_sorted)
    terms = torch.where(mass > 0, -mass * torch.log2(mass.clamp_min(1e-300)), 0.0)
    return terms.sum(dim=1)


@torch.no_grad()
def binned_information(
    acts: Tensor,
    y: Tensor,
    edges: Tensor,
    *,
    n_classes: int = 2,
    weights: Tensor | None = None,
    convention: str = "clip",
) -> tuple[Tensor, Tensor]:
    """Binned I(X;T) and I(T;Y) for every model of a stack, in bits.

    Args:
        acts: (M, N, units) activations of one layer for M models on the same N
            inputs, on any device.  A non-finite value is binned as the dtype's
            largest (NaN, +inf) or lowest (-inf) value, never as an invalid index; a
            model with such values gets numbers, not meaningful ones (callers mark
            it, as the IB experiment does for diverged models).
        y: (N,) integer labels in ``[0, n_classes)``, best already on ``acts.device``.
        edges: (n_bins + 1,) shared or (M, n_bins + 1) per-model equally spaced bin
            edges (see ``fixed_edges`` / ``adaptive_edges``; moved to ``acts.device`` if
            elsewhere).
        n_classes: number of label values (passed so that nothing is read back from the
            device).
        weights: optional (N,) non-negative weights p(x) of the inputs (normalised
            here to sum to 1).  ``None`` means uniform, the setting of the original
            experiment.  With weights, I(X;T) = H(T) still holds (T is deterministic
            in X) provided the rows are distinct inputs.
        convention: where values outside the edges go, ``"clip"`` (the outer bins) or
            ``"idnns"`` (one overflow category, as the original code); see the module
            docstring.

    Returns:
        ``(i_xt, i_ty)``, each float64 (M,) on ``acts.device``.  ``0 <= i_xt <= log2 N``
        and ``0 <= i_ty <= min(i_xt, H(Y))`` up to rounding.  Biases: see the module
        docstring (bin-width dependence, cap at log2 N).
    """
    m, n, units = acts.shape
    n_cat = _categories(edges.shape[-1] - 1, convention)
    acts, edges = _device_safe(acts, edges)
    if weights is None and n_cat**units * n_classes <= _FLOAT64_EXACT:
        return _binned_information_uniform(acts, y, edges, n_classes, convention)
    return _binned_information_words(acts, y, edges, n_classes, weights, convention)


def _entropy_of_runs(starts: Tensor) -> Tensor:
    """Entropy (bits) of the runs of sorted rows under uniform weights.

    ``starts`` (M, N) bool marks run starts (column 0 always).  H = log2 N - (1/N) sum
    over runs of c log2 c, with c the run lengths: on CPU from the start positions
    (numpy), elsewhere counted with ``scatter_add`` (no host sync).  float64 (M,).
    """
    m, n = starts.shape
    if _on_host(starts.device):
        pos = np.flatnonzero(starts.numpy())  # row-major, so runs of each row in order
        length = np.diff(pos, append=m * n)
        c = np.arange(n + 1, dtype=np.float64)
        table = c * np.log2(np.maximum(c, 1.0))  # c log2 c by lookup: cheaper than log2
        clogc = np.bincount(pos // n, weights=table[length], minlength=m)
        return math.log2(n) - torch.from_numpy(clogc) / n
    run_id = torch.cumsum(starts, dim=1, dtype=torch.int64).sub_(1)
    counts = torch.zeros(m, n, dtype=torch.float64, device=starts.device)
    counts.scatter_add_(1, run_id, torch.ones_like(counts))
    clogc = counts * torch.log2(counts.clamp_min(1.0))
    return math.log2(n) - clogc.sum(dim=1) / n


def _codes_host(acts: Tensor, y: Tensor, edges: Tensor, n_classes: int,
                convention: str = "clip") -> np.ndarray | None:
    """Exact integer codes of the binned rows with their labels, (M, N) numpy, on CPU.

    The bins follow ``_bins_float`` (exact), computed for a few models at a time (about
    ``_CPU_CHUNK_ELEMENTS`` activations, which stay in cache through the passes over
    them) in the activations' own memory layout, and folded straight into the codes
    (positional notation, label least significant) by a matrix-vector product that is
    exact (in float32 for float32 activations while the codes stay below 2**24, else
    in float64; every partial sum is an integer below that bound).

    One threshold serves all models (the largest ``delta``: flagging a few more values
    only costs their comparison), and x is shifted up by s = 1.5 delta: with
    ``y = t * inv + (off + s)`` clamped to [1/2 + s, n_bins - 1/2 + s], a value whose
    ``frac(y)`` is at least 2 s is more than delta away from every interior edge (the
    shift's rounding is a few eps, well inside delta), so its bin is ``floor(y)``; a
    value below is flagged, with ``k = floor(y)`` its nearest interior edge, and is
    compared with ``e_k`` (bin k or k - 1).  That takes two passes (frac, y - frac)
    where the distance to the nearest edge and the floor would take four.  A flagged
    value corrects its row's code by the difference between its compared and its
    arithmetic bin.  int32 when the codes fit (numpy sorts them about twice as fast as
    float64), else float64.  None where ``_fast_bin_params`` does not apply.

    The ``"idnns"`` overflow takes no extra pass in general: y is clamped to [0, n_bins
    + 1/2 + s] instead, so a value far above ``e_n`` lands in the middle of category
    ``n_bins`` (unflagged), and the end edges are flagged like interior ones (a value below
    ``e_0`` is clamped to y = 0, flagged, and compared with ``e_0``: overflow).  Values
    at or near ``e_0`` or ``e_n`` (a tanh saturated at or near -1 or 1, common in the
    compressed regime) would all be flagged; but y is a non-decreasing function of t
    (a rounded product, then a rounded sum), so where the float just below each end
    edge maps strictly below that edge's own y (checked here, per model), t is at or
    above that edge exactly when y is at or above the edge's y.  Where such values
    are many (more than one in 16 of a chunk flagged), a few comparisons over the
    chunk settle them from y before the codes are built, and only the flags at
    interior edges (and below ``e_0``) are corrected one by one.
    """
    params = _fast_bin_params(acts, edges)
    if params is None:
        return None
    e, n_bins, inv, off, delta = params
    m, n, units = acts.shape
    n_cat = _categories(n_bins, convention)
    overflow = n_cat > n_bins
    shift = 1.5 * float(delta.max())
    if overflow:  # below e_0: y = 0, flagged; far above e_n: the overflow's middle
        low, high = 0.0, n_bins + 0.5 + shift
    else:  # bins 0 and n_bins - 1, 1/2 from edges
        low, high = 0.5 + shift, n_bins - 0.5 + shift
    off = off + shift
    card = n_cat**units * n_classes
    dtype = acts.dtype if acts.dtype == torch.float32 and card <= 1 << 24 else torch.float64
    place = torch.tensor([float(n_cat**p * n_classes) for p in reversed(range(units))],
                         dtype=dtype)
    codes = torch.empty(m, n, dtype=dtype)
    g = max(1, min(m, _CPU_CHUNK_ELEMENTS // max(1, n * units)))
    # Work buffers in the layout of acts (empty_like keeps a dense tensor's strides), so
    # that every pass runs in memory order.  Feature-major memory (units outermost in
    # each model, as the stack's forward pass makes them): the code is then (1, units)
    # @ (units, N) per model, which BLAS runs as fast as the row-major (N, units) @
    # (units,); matmul on the transposed view would copy it first.
    feature_major = units > 1 and acts.stride(1) == 1
    order = (0, 2, 1) if feature_major else (0, 1, 2)
    inv_np, off_np = inv.numpy()[:, 0, 0], off.numpy()[:, 0, 0]

    def y_of(t: np.ndarray, model) -> np.ndarray:
        # The y of the torch passes below (the same IEEE operations give the same y).
        return np.clip(t * inv_np[model] + off_np[model], low, high)

    ends = None
    if overflow:
        # y at the end edges, per model, where it decides membership on its own: NaN
        # (never equal) where it does not.
        every = np.arange(m)
        below = np.nextafter(e[:, [0, n_bins]], e.dtype.type(-np.inf))
        y_end = np.stack([y_of(e[:, 0], every), y_of(e[:, n_bins], every)], axis=1)
        y_below = np.stack([y_of(below[:, 0], every), y_of(below[:, 1], every)], axis=1)
        decides = (y_below < y_end) & (np.floor(y_end) == [0, n_bins])
        ends = np.where(decides, y_end, np.nan).astype(e.dtype)
        decide_both = decides.all(axis=1)

    def buffers(size: int) -> tuple[Tensor, ...]:
        x = torch.empty_like(acts[:size])
        frac, bins = torch.empty_like(x), torch.empty_like(x)
        # (A float32 -> float64 copy is cheaper than writing the float64 result of a
        # float32 operation, which takes a slow mixed-dtype path.)
        wide = bins if dtype == acts.dtype else torch.empty_like(x, dtype=dtype)
        operand = wide.permute(0, 2, 1) if feature_major else wide
        return (x, frac, bins, wide, operand, place.expand(size, 1, units),
                frac.permute(order).numpy(), np.empty(x.permute(order).shape, dtype=bool),
                x.permute(order).numpy(), bins.permute(order).numpy(),
                np.empty(x.permute(order).shape, dtype=bool),
                np.empty(x.permute(order).shape, dtype=bool))

    full, last = buffers(g), (buffers(m % g) if m % g else None)
    codes_np, place_np = codes.numpy(), place.numpy()
    acts_np = acts.detach().permute(order).numpy()  # a view (host memory)
    per_model = acts_np.shape[1] * acts_np.shape[2]

    def flat(a: np.ndarray) -> np.ndarray:
        # C order of a view: its memory order when dense (then without a copy).
        return a.reshape(-1) if a.flags.c_contiguous else a.flat

    for m0 in range(0, m, g):
        m1 = min(m, m0 + g)
        (x, frac, bins, wide, operand, place_rows, frac_np, near,
         x_np, bins_np, one, two) = full if m1 - m0 == g else last
        # x is the docstring's shifted y.  mul then add: addcmul with broadcast factors
        # costs four times as much.
        torch.mul(acts[m0:m1], inv[m0:m1], out=x).add_(off[m0:m1]).clamp_(low, high)
        torch.frac(x, out=frac)  # x >= 0: x - floor(x), exactly
        torch.sub(x, frac, out=bins)  # floor(x), exactly
        # The flags in numpy (its comparison is vectorised, torch's into bool is not),
        # as flat indices of the chunk in the permuted (memory) order.
        np.less(frac_np, 2 * shift, out=near)
        if (ends is not None and np.count_nonzero(near) > near.size // 16
                and decide_both[m0:m1].all()):
            # Many flags: values at or near the end edges (saturated units), where y
            # alone decides (see the docstring).  y >= n_bins: bin n_bins - 1 below the
            # y of e_n, the overflow from it; y < 1: bin 0 from the y of e_0 (below it,
            # still flagged: the overflow).  Ten passes, so only here: a few flagged
            # values cost less to correct one by one.
            y0, yn = ends[m0:m1, 0, None, None], ends[m0:m1, 1, None, None]
            np.greater_equal(x_np, n_bins, out=one)
            np.logical_and(one, np.less(x_np, yn, out=two), out=two)
            np.subtract(bins_np, two, out=bins_np)
            np.logical_and(near, np.logical_not(one, out=one), out=near)
            np.less(x_np, 1.0, out=one)
            np.logical_and(one, np.greater_equal(x_np, y0, out=two), out=one)
            np.logical_and(near, np.logical_not(one, out=one), out=near)
        if wide is not bins:
            wide.copy_(bins)
        if feature_major:
            torch.bmm(place_rows, operand, out=codes[m0:m1].unsqueeze(1))
        else:
            torch.matmul(operand, place, out=codes[m0:m1])
        where = np.flatnonzero(near)
        if not where.size:
            continue
        # The flagged values, while the chunk is in cache: bin k if t >= e_k, else
        # k - 1 (under "idnns", -1 is the overflow), with k = floor(y) the arithmetic
        # bin.  Their rows' codes change by the difference, times the unit's place.
        k = flat(x_np)[where].astype(np.intp)  # y >= 0: the floor
        t = flat(acts_np[m0:m1])[where]
        model, rest = np.divmod(where, per_model)
        model += m0
        exact = np.where(t >= e[model, k], k, k - 1)
        if overflow:
            exact[exact < 0] = n_bins
        change = exact - k
        fix = np.flatnonzero(change)
        if fix.size:
            if feature_major:
                u, i = np.divmod(rest[fix], n)
            else:
                i, u = np.divmod(rest[fix], units)
            np.add.at(codes_np.reshape(-1), model[fix] * n + i,
                      (change[fix] * place_np[u]).astype(codes_np.dtype))
    codes.add_(y.to(dtype))
    return codes_np.astype(np.int32) if card <= 1 << 31 else codes_np


def _clogc_per_row(start: np.ndarray, m: int, n: int, table: np.ndarray) -> np.ndarray:
    """Sum over the runs of each row of c log2 c (c: run length), float64 (M,).

    ``start`` (M * N,) bool marks run starts, each row's first element included.  The
    work follows the sparser of the two kinds of positions: run starts (few distinct
    rows) or repeats (mostly distinct rows, where each run of c > 1 equal codes is c - 1
    consecutive repeat positions and singletons contribute 0).
    """
    n_starts = np.count_nonzero(start)
    if 2 * n_starts <= m * n:
        pos = np.flatnonzero(start)  # row-major, so each row's runs in order
        length = np.empty_like(pos)
        np.subtract(pos[1:], pos[:-1], out=length[:-1])
        length[-1] = m * n - pos[-1]
        first = np.zeros(m, dtype=np.intp)  # index in pos of each row's first run
        np.cumsum(np.count_nonzero(start.reshape(m, n), axis=1)[:-1], out=first[1:])
        return np.add.reduceat(table[length], first)
    repeat = np.flatnonzero(~start)
    if not repeat.size:
        return np.zeros(m)
    new_run = np.empty(repeat.size, dtype=bool)
    new_run[0] = True
    np.not_equal(repeat[1:], repeat[:-1] + 1, out=new_run[1:])
    first = np.flatnonzero(new_run)
    length = np.empty_like(first)  # repeats in the run, plus its start
    np.subtract(first[1:], first[:-1], out=length[:-1])
    length[-1] = repeat.size - first[-1]
    return np.bincount(repeat[first] // n, weights=table[length + 1], minlength=m)


def _sorted_run_entropies(codes: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """H(T) and H(T,Y) in bits, float64 (M,), from codes (M, N) sorted along each row
    (label least significant digit), uniform weights: H = log2 N - (1/N) sum over runs
    of c log2 c.  T is the code without its label digit, so its runs are runs too."""
    m, n = codes.shape
    if np.issubdtype(codes.dtype, np.integer):
        t = codes // n_classes
    else:
        # Exact integers in float64: torch's vectorised floor (numpy's is not, here).
        t = torch.from_numpy(codes)
        if n_classes & (n_classes - 1) == 0:  # a power of two: the product is exact
            t = t.mul(1.0 / n_classes).floor_()
        else:
            t = torch.div(t, n_classes, rounding_mode="floor")
        t = t.numpy()
    c = np.arange(n + 1, dtype=np.float64)
    table = c * np.log2(np.maximum(c, 1.0))  # c log2 c by lookup: cheaper than log2
    out = []
    for sorted_codes in (t, codes):
        flat = sorted_codes.reshape(-1)
        start = np.empty(m * n, dtype=bool)
        np.not_equal(flat[1:], flat[:-1], out=start[1:])
        start.reshape(m, n)[:, 0] = True
        out.append(math.log2(n) - _clogc_per_row(start, m, n, table) / n)
    return out[0], out[1]


def _binned_information_uniform(
    acts: Tensor, y: Tensor, edges: Tensor, n_classes: int, convention: str = "clip"
) -> tuple[Tensor, Tensor]:
    """``binned_information`` with uniform weights when the codes fit float64's 53 bits.

    Each row (bins, label) is encoded as an exact integer held in a float64 (every
    product and partial sum is an integer below 2**53, so the matrix-vector product
    that builds the code is exact in any summation order); rows are sorted per model
    (numpy's vectorised sort on CPU, several times faster than torch.sort there) and
    run lengths give the entropies.
    """
    m, n, units = acts.shape
    n_cat = _categories(edges.shape[-1] - 1, convention)
    device = acts.device
    y = y.to(device=device, dtype=torch.int64)
    p_y = torch.zeros(n_classes, dtype=torch.float64, device=device).scatter_add_(
        0, y, torch.full((n,), 1.0 / n, dtype=torch.float64, device=device))
    h_y = torch.where(p_y > 0, -p_y * torch.log2(p_y.clamp_min(1e-300)), 0.0).sum()
    codes_np = _codes_host(acts, y, edges, n_classes, convention)
    if codes_np is not None:
        h_t, h_ty = map(torch.from_numpy,
                        _sorted_run_entropies(np.sort(codes_np, axis=1), n_classes))
        return h_t, h_t + h_y - h_ty
    # (Here _fast_bin_params does not apply, or the device is not the CPU.)
    bins = bin_indices(acts, edges, convention=convention).double()
    codes = torch.matmul(bins, _place_values(units, n_cat, n_classes, device)).add_(y.double())
    if _on_host(device):
        codes = torch.from_numpy(np.sort(codes.numpy(), axis=1))
    else:
        codes = torch.sort(codes, dim=1).values
    first = torch.ones(m, 1, dtype=torch.bool, device=device)
    if n_classes & (n_classes - 1) == 0:  # a power of two: the product is exact
        t_codes = codes.mul(1.0 / n_classes).floor_()
    else:
        t_codes = torch.div(codes, n_classes, rounding_mode="floor")
    h_t = _entropy_of_runs(torch.cat([first, t_codes[:, 1:] != t_codes[:, :-1]], dim=1))
    h_ty = _entropy_of_runs(torch.cat([first, codes[:, 1:] != codes[:, :-1]], dim=1))
    return h_t, h_t + h_y - h_ty


def _binned_information_words(
    acts: Tensor, y: Tensor, edges: Tensor, n_classes: int, weights: Tensor | None,
    convention: str = "clip",
) -> tuple[Tensor, Tensor]:
    """General path of ``binned_information``: int64 words, any weights."""
    m, n, units = acts.shape
    n_cat = _categories(edges.shape[-1] - 1, convention)
    device = acts.device
    bins = bin_indices(acts, edges, convention=convention)
    # Digit position p < units is unit p's bin; position ``units`` is the label.
    columns = [bins[..., p] for p in range(units)]
    columns.append(y.to(device=device, dtype=torch.int64).expand(m, n))
    bases = [n_cat] * units + [n_classes]
    codes = [
        _encode([columns[p] for p in word], [bases[p] for p in word])
        for word in _word_layout(units, n_cat, n_classes)
    ]

    # Lexicographic order over the words: stable sorts from least to most significant.
    order = torch.sort(codes[-1], dim=1, stable=True).indices
    for word in reversed(codes[:-1]):
        order = order.gather(1, torch.sort(word.gather(1, order), dim=1, stable=True).indices)
    sorted_codes = [c.gather(1, order) for c in codes]

    # T is everything but the label, which is the least significant digit of the last word.
    t_words = sorted_codes[:-1] + [torch.div(sorted_codes[-1], n_classes, rounding_mode="floor")]
    first = torch.ones(m, 1, dtype=torch.bool, device=device)
    t_change = torch.zeros(m, n - 1, dtype=torch.bool, device=device)
    for word in t_words:
        t_change |= word[:, 1:] != word[:, :-1]
    ty_change = t_change | (sorted_codes[-1][:, 1:] != sorted_codes[-1][:, :-1])

    if weights is None:
        w = torch.full((n,), 1.0 / n, dtype=torch.float64, device=device)
    else:
        w = weights.to(device=device, dtype=torch.float64)
        w = w / w.sum()
    w_sorted = w.expand(m, n).gather(1, order)
    h_t = _entropy_bits(torch.cat([first, t_change], dim=1), w_sorted)
    h_ty = _entropy_bits(torch.cat([first, ty_change], dim=1), w_sorted)

    p_y = torch.zeros(n_classes, dtype=torch.float64, device=device).scatter_add_(
        0, y.to(device=device, dtype=torch.int64), w
    )
    h_y = torch.where(p_y > 0, -p_y * torch.log2(p_y.clamp_min(1e-300)), 0.0).sum()
    return h_t, h_t + h_y - h_ty


def binned_information_reference(
    acts: np.ndarray,
    y: np.ndarray,
    edges: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    convention: str = "clip",
) -> tuple[np.ndarray, np.ndarray]:
    """Slow exact reference for ``binned_information`` (numpy, loop over models).

    Same arguments and conventions (``acts`` (M, N, units), ``edges`` (n_bins + 1,) or
    (M, n_bins + 1), optional ``weights`` p(x), ``convention``); bins with
    ``np.digitize`` on the interior edges (``"idnns"``: then values below the first edge
    or at or above the last one set apart), counts distinct rows with
    ``np.unique(axis=0)`` and uses I(T;Y) = H(T) - sum_y p(y) H(T | Y=y).  Returns
    float64 arrays (M,) in bits.
    """
    overflow = _categories(np.shape(edges)[-1] - 1, convention) > np.shape(edges)[-1] - 1
    acts = np.asarray(acts)
    y = np.asarray(y)
    m, n, _ = acts.shape
    edges = np.broadcast_to(np.asarray(edges), (m, np.asarray(edges).shape[-1]))
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()

    def entropy(rows: np.ndarray, p: np.ndarray) -> float:
        _, inverse = np.unique(rows, axis=0, return_inverse=True)
        mass = np.bincount(inverse.ravel(), weights=p)
        mass = mass[mass > 0] / p.sum()
        return float(-(mass * np.log2(mass)).sum())

    i_xt = np.empty(m)
    i_ty = np.empty(m)
    for k in range(m):
        e = edges[k].astype(acts.dtype)
        binned = np.digitize(acts[k], e[1:-1], right=False)
        if overflow:
            binned[(acts[k] < e[0]) | (acts[k] >= e[-1])] = len(e) - 1
        h_t = entropy(binned, w)
        h_t_given_y = 0.0
        for c in np.unique(y):
            sel = y == c
            if w[sel].sum() > 0:
                h_t_given_y += w[sel].sum() * entropy(binned[sel], w[sel])
        i_xt[k] = h_t
        i_ty[k] = h_t - h_t_given_y
    return i_xt, i_ty

