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
falls in bin ``k`` when ``e_k <= t < e_{k+1}``; values below ``e_0`` go to bin 0 and values
at or above ``e_n`` to bin ``n_bins - 1`` (out-of-range activations saturate into the
outer bins, as ``np.digitize`` on the interior edges does).  ``fixed_edges`` reproduces
the original tanh setting (30 bins on [-1, 1]); ``adaptive_edges`` spans each model's
observed [min, max] as Saxe et al. did for ReLU layers.

Vectorisation.  Each binned row is encoded exactly as an integer in positional notation
(base ``n_bins`` per unit, base ``n_classes`` for the label, least significant).  With
uniform weights and ``n_bins**units * n_classes <= 2**53`` (the IB networks: 30 bins, up
to 10 units) the code is held in a float64, where it is exact, rows are sorted per
model (numpy's vectorised sort on CPU) and the entropies come from run lengths.
Otherwise (weights, or wider layers) when the code exceeds 2**63 - 1 the units are
packed into several int64 words, compared lexicographically (no hashing, so no
collisions), rows are sorted per model (a stable sort per word, least significant word
first) and equal neighbours form runs whose weights are summed with ``scatter_add``.
There is no loop over models or samples; off CPU there is no host synchronisation.

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
    "adaptive_edges",
    "bin_indices",
    "binned_information",
    "binned_information_reference",
    "fixed_edges",
]

_INT64_MAX = (1 << 63) - 1
_FLOAT64_EXACT = 1 << 53  # integers up to here are exact in float64


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

    The default (30 bins on [-1, 1]) is the original tanh setting.  Pass ``dtype`` equal
    to the activations' dtype so that bin membership is decided in that precision.
    """
    if n_bins < 1 or not hi > lo:
        raise ValueError(f"need n_bins >= 1 and hi > lo, got {n_bins}, [{lo}, {hi}]")
    return torch.linspace(lo, hi, n_bins + 1, dtype=dtype, device=device)


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
    flat = acts.reshape(acts.shape[0], -1)
    lo = flat.amin(dim=1, keepdim=True)
    hi = flat.amax(dim=1, keepdim=True)
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


def _bins_float(acts: Tensor, edges: Tensor) -> Tensor | None:
    """CPU fast path of ``bin_indices``: exact bin indices as float (M, N, units) in
    ``acts.dtype``, or None where it does not apply (off CPU; edges too uneven).

    With ``x = (t - lo) / width`` (computed with relative error below ~4 eps) and the
    edges' positions ``p_k = (e_k - lo) / width`` within ``dev`` of ``k``: where ``x``
    is more than ``delta`` (twice ``dev`` plus 16 eps times the bins' index range and
    the edges' magnitude in bins) away from every interior edge
    index 1..n_bins-1, ``t >= e_k`` exactly when ``x >= k``, so the bin is
    ``clamp(floor(x), 0, n_bins - 1)``.  Only the few values within ``delta`` of an
    interior index ``k`` are compared with the actual edge ``e_k`` (bin ``k`` or
    ``k - 1``; no other edge is that close while ``delta < 1/2``).
    """
    if not _on_host(acts.device):
        return None
    e, n_bins, lo, width = _edge_table(acts, edges)
    eps = torch.finfo(acts.dtype).eps
    e64 = e.double()
    w64 = (e64[:, -1:] - e64[:, :1]) / n_bins
    spacing = e64 - (e64[:, :1] + torch.arange(n_bins + 1, dtype=torch.float64) * w64)
    dev = torch.where(w64 > 0, spacing.abs().amax(dim=1, keepdim=True) / w64, 0.0)
    # The rounding of x and of dev itself is a few eps of the bins' index range and of
    # the edges' magnitude in bins (edges far from zero carry fewer digits of the bins).
    magnitude = torch.maximum(e64[:, :1].abs(), e64[:, -1:].abs())
    in_bins = torch.where(w64 > 0, magnitude / w64, 0.0)
    delta = 2 * dev + 16 * eps * (n_bins + 1 + in_bins)
    if not bool(torch.all(delta < 0.25)):
        return None
    delta = delta.to(acts.dtype)[..., None]  # (M, 1, 1)
    inv = torch.where(width > 0, 1.0 / width, 0.0)
    # A zero-width range (constant layer) has all edges equal: everything goes to the
    # last bin (every value is >= all edges).
    # x = t * inv - lo * inv in one pass: its rounding (eps times |t| / width at most) is
    # within delta's magnitude term.
    x = torch.addcmul(torch.where(width > 0, -lo * inv, float(n_bins)), acts, inv)
    # Nearest interior edge index (clamped to 1..n_bins-1: a value nearest to edge 0 or
    # n_bins is then more than delta away from it, as those edges need no check).
    nearest = x.round().clamp_(1, n_bins - 1)
    near = (x - nearest).abs_() < delta
    bins = x.floor_().clamp_(0, n_bins - 1)
    # The few values near an interior edge k: bin k if t >= e_k, else k - 1 (numpy's
    # flat indexing is several times cheaper than torch's advanced indexing here).
    where = np.flatnonzero(near.numpy())
    if where.size:
        t = acts.contiguous().numpy().reshape(-1)[where]
        k = nearest.numpy().reshape(-1)[where].astype(np.intp)
        model = where // (acts.shape[1] * acts.shape[2])
        bins.numpy().reshape(-1)[where] = np.where(t >= e.numpy()[model, k], k, k - 1)
    return bins


@torch.no_grad()
def bin_indices(acts: Tensor, edges: Tensor) -> Tensor:
    """Bin index of every activation, int64 (M, N, units) in ``[0, n_bins)``.

    ``acts``: (M, N, units); ``edges``: equally spaced, (n_bins + 1,) shared by all
    models or (M, n_bins + 1) per model (as ``fixed_edges`` / ``adaptive_edges`` make
    them).  Membership follows the given edge values exactly (``e_k <= t < e_{k+1}``,
    saturating at both ends); see the module docstring.
    """
    fast = _bins_float(acts, edges)
    if fast is not None:
        return fast.to(torch.int64)
    e, n_bins, lo, width = _edge_table(acts, edges)
    # Arithmetic guess, then a one-step correction against the actual edge values: a
    # binary search over the edges (searchsorted) costs several times more on CPU, and
    # for equal spacing the guess is off by at most one bin from rounding.  A zero-width
    # range (constant layer) has all edges equal: everything goes to the last bin.
    guess = torch.where(width > 0, (acts - lo) / width, float(n_bins))
    idx = guess.floor_().clamp_(0, n_bins - 1).to(torch.int64)
    flat = _exact_bins(acts.reshape(acts.shape[0], -1), idx.reshape(acts.shape[0], -1), e, None)
    return flat.reshape(acts.shape)


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
) -> tuple[Tensor, Tensor]:
    """Binned I(X;T) and I(T;Y) for every model of a stack, in bits.

    Args:
        acts: (M, N, units) finite activations of one layer for M models on the same N
            inputs (NaN has no bin; its result is undefined).
        y: (N,) integer labels in ``[0, n_classes)``, best already on ``acts.device``.
        edges: (n_bins + 1,) shared or (M, n_bins + 1) per-model equally spaced bin
            edges (see ``fixed_edges`` / ``adaptive_edges``).
        n_classes: number of label values (passed so that nothing is read back from the
            device).
        weights: optional (N,) non-negative weights p(x) of the inputs (normalised
            here to sum to 1).  ``None`` means uniform, the setting of the original
            experiment.  With weights, I(X;T) = H(T) still holds (T is deterministic
            in X) provided the rows are distinct inputs.

    Returns:
        ``(i_xt, i_ty)``, each float64 (M,) on ``acts.device``.  ``0 <= i_xt <= log2 N``
        and ``0 <= i_ty <= min(i_xt, H(Y))`` up to rounding.  Biases: see the module
        docstring (bin-width dependence, cap at log2 N).
    """
    m, n, units = acts.shape
    n_bins = edges.shape[-1] - 1
    if weights is None and n_bins**units * n_classes <= _FLOAT64_EXACT:
        return _binned_information_uniform(acts, y, edges, n_classes)
    return _binned_information_words(acts, y, edges, n_classes, weights)


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


def _binned_information_uniform(
    acts: Tensor, y: Tensor, edges: Tensor, n_classes: int
) -> tuple[Tensor, Tensor]:
    """``binned_information`` with uniform weights when the codes fit float64's 53 bits.

    Each row (bins, label) is encoded as an exact integer held in a float64 (every
    product and partial sum is an integer below 2**53, so the matrix-vector product
    that builds the code is exact in any summation order); rows are sorted per model
    (numpy's vectorised sort on CPU, several times faster than torch.sort there) and
    run lengths give the entropies.
    """
    m, n, units = acts.shape
    n_bins = edges.shape[-1] - 1
    device = acts.device
    bins = _bins_float(acts, edges)
    bins = bin_indices(acts, edges).double() if bins is None else bins.double()
    place = torch.tensor([float(n_bins**p * n_classes) for p in reversed(range(units))],
                         dtype=torch.float64)
    y = y.to(device=device, dtype=torch.int64)
    codes = torch.matmul(bins, place.to(device)).add_(y.double())  # (M, N), label last
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
    p_y = torch.zeros(n_classes, dtype=torch.float64, device=device).scatter_add_(
        0, y, torch.full((n,), 1.0 / n, dtype=torch.float64, device=device))
    h_y = torch.where(p_y > 0, -p_y * torch.log2(p_y.clamp_min(1e-300)), 0.0).sum()
    return h_t, h_t + h_y - h_ty


def _binned_information_words(
    acts: Tensor, y: Tensor, edges: Tensor, n_classes: int, weights: Tensor | None
) -> tuple[Tensor, Tensor]:
    """General path of ``binned_information``: int64 words, any weights."""
    m, n, units = acts.shape
    n_bins = edges.shape[-1] - 1
    device = acts.device
    bins = bin_indices(acts, edges)
    # Digit position p < units is unit p's bin; position ``units`` is the label.
    columns = [bins[..., p] for p in range(units)]
    columns.append(y.to(device=device, dtype=torch.int64).expand(m, n))
    bases = [n_bins] * units + [n_classes]
    codes = [
        _encode([columns[p] for p in word], [bases[p] for p in word])
        for word in _word_layout(units, n_bins, n_classes)
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
) -> tuple[np.ndarray, np.ndarray]:
    """Slow exact reference for ``binned_information`` (numpy, loop over models).

    Same arguments and conventions (``acts`` (M, N, units), ``edges`` (n_bins + 1,) or
    (M, n_bins + 1), optional ``weights`` p(x)); bins with ``np.digitize`` on the
    interior edges, counts distinct rows with ``np.unique(axis=0)`` and uses
    I(T;Y) = H(T) - sum_y p(y) H(T | Y=y).  Returns float64 arrays (M,) in bits.
    """
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
        binned = np.digitize(acts[k], edges[k][1:-1].astype(acts.dtype), right=False)
        h_t = entropy(binned, w)
        h_t_given_y = 0.0
        for c in np.unique(y):
            sel = y == c
            if w[sel].sum() > 0:
                h_t_given_y += w[sel].sum() * entropy(binned[sel], w[sel])
        i_xt[k] = h_t
        i_ty[k] = h_t - h_t_given_y
    return i_xt, i_ty

