"""Which Boolean functions of N inputs one linear-threshold unit computes.

This is the math core of the expressivity census: enumerate every Boolean function
of N inputs and decide, exactly, whether a single unit ``f(x) = [w.x + b > 0]`` with
real weights ``w`` and bias ``b`` realises it. The counts over the full range are
OEIS A000609 (see `KNOWN_COUNTS`).

Data contract (conventions used by every function here and by the stored results)
----------------------------------------------------------------------------------
* **Inputs.** The 2^N points of {0,1}^N are taken in counting order: row ``j`` of
  `input_patterns` has bit ``i`` of ``j`` as input ``i`` (so input 0 is the least
  significant bit of the row index).
* **Functions.** A Boolean function of N inputs is identified with its truth table,
  the integer ``k`` in ``[0, 2^(2^N))`` whose bit ``j`` is ``f(x_j)``. For N <= 5 a
  truth table fits in 32 bits and is stored as ``numpy.uint64``. Example (N=2):
  AND = 8, OR = 14, XOR = 6, XNOR = 9, the constants are 0 and 15.
* **Range.** N is 0..5. N = 0 has one input point (the empty vector) and two
  functions, both constant and both realisable (by the bias alone).

Exactness
---------
HiGHS (via `scipy.optimize.linprog`) is used only to *find* an answer; every answer
is then proved in exact rational/integer arithmetic, so a floating-point slip can
only raise an error, never change a count:

* *realisable*: the LP ``sigma_j (w.x_j + b) >= 1`` (``sigma_j = +1`` where
  ``f(x_j) = 1``, else ``-1``) returns floats ``(w, b)``; these are read as the
  exact (dyadic) rationals they are, and strict separation of all 2^N points is
  checked in integer arithmetic.
* *not realisable*: a Farkas certificate is found by a second LP and rounded to
  integers ``m_j >= 0`` with ``sum_j m_j sigma_j (x_j, 1) = 0`` and ``sum m_j > 0``,
  i.e. a multiset of true points and an equally large multiset of false points
  with the same vector sum (the function is not "asummable"). Any strict separator
  would give the true multiset a positive and the false one a negative total of
  ``w.x + b``, but both totals are equal, so no separator exists.

Speed
-----
Every threshold function is unate (monotone non-decreasing or non-increasing in
each input), so `is_unate`, a vectorised bit test on the truth tables, removes most
functions exactly before any LP. The unate survivors are mapped to a monotone
(non-decreasing) form by negating the inputs they decrease in, and the distinct
monotone forms to the smallest truth table over all input permutations. Both
preserve realisability (negating input ``i``: ``w_i -> -w_i``, ``b -> b + w_i``;
permuting inputs permutes ``w``), so one LP per class decides all functions in it:
30 LPs for the whole of N = 4, 210 for the whole of N = 5.

Later architectures (small trained networks, stacked RBM-style machines) plug into
`ARCHITECTURES` / `count_realizable` under their own name.
"""

from __future__ import annotations

import itertools
import math
import operator
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType

import numpy as np
from scipy.optimize import linprog

MAX_N = 5
"""Largest supported N: a truth table of 2^5 = 32 bits still fits a uint64."""

KNOWN_COUNTS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        # OEIS A000609, "Number of threshold functions of n or fewer variables",
        # n = 0..8 (https://oeis.org/A000609; n = 8 due to Muroga, Tsuboi and
        # Baugh 1970). Index N is the count over all 2^(2^N) functions of N inputs.
        "threshold": (2, 4, 14, 104, 1882, 94572, 15028134, 8378070864, 17561539401838),
    }
)
"""Published census counts per architecture, indexed by N (for the analysis)."""

# Truth tables are processed in chunks of this many functions so that a call over a
# huge range (all 2^32 functions of N = 5) never materialises it at once (32 GiB).
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ThresholdCount:
    """Result of counting realisable functions over one range of truth tables.

    ``n_functions``, ``n_unate`` and ``n_realizable`` add up over shards of a range.
    ``n_lps`` (classes decided by LP, see `count_threshold`) and ``seconds`` (wall
    time) are cost measurements; they depend on how the range was split, so they
    are excluded from equality comparisons.
    """

    n: int
    start: int
    stop: int
    n_functions: int
    n_unate: int
    n_realizable: int
    n_lps: int = field(default=0, compare=False)
    seconds: float = field(default=0.0, compare=False)


def n_functions(n: int) -> int:
    """Number of Boolean functions of ``n`` inputs, ``2**(2**n)`` (any n >= 0)."""
    n = operator.index(n)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return 2 ** (2**n)


def _check_n(n: int) -> int:
    n = operator.index(n)
    if not 0 <= n <= MAX_N:
        raise ValueError(
            f"n must be in 0..{MAX_N} (a truth table of 2^n bits must fit a uint64), got {n}"
        )
    return n


def _check_range(n: int, start: int, stop: int) -> tuple[int, int]:
    start, stop = operator.index(start), operator.index(stop)
    if not 0 <= start <= stop <= n_functions(n):
        raise ValueError(
            f"need 0 <= start <= stop <= 2^(2^{n}) = {n_functions(n)}, "
            f"got start={start}, stop={stop}"
        )
    return start, stop


def _check_tables(n: int, tables) -> np.ndarray:
    tables = np.asarray(tables)
    if tables.size and (
        not np.issubdtype(tables.dtype, np.integer)
        or tables.min() < 0
        or int(tables.max()) >= n_functions(n)
    ):
        raise ValueError(
            f"truth tables for n={n} must be integers in [0, {n_functions(n)}), "
            f"got dtype {tables.dtype} with range [{tables.min()}, {tables.max()}]"
        )
    return tables.astype(np.uint64, copy=False)


def input_patterns(n: int) -> np.ndarray:
    """The 2^n input points, shape ``(2**n, n)``, dtype uint8.

    Row ``j`` is ``x_j``, with ``x_j[i]`` = bit ``i`` of ``j`` (counting order). For
    ``n = 0`` this is one empty row, shape ``(1, 0)``.
    """
    n = _check_n(n)
    rows = np.arange(2**n)[:, None]
    return ((rows >> np.arange(n)) & 1).astype(np.uint8)


def truth_tables(n: int, start: int, stop: int) -> np.ndarray:
    """The truth tables ``start, ..., stop - 1`` of n-input functions, dtype uint64.

    Shape ``(stop - start,)``. Requires ``0 <= n <= 5`` and
    ``0 <= start <= stop <= 2**(2**n)``; raises ValueError otherwise.
    """
    n = _check_n(n)
    start, stop = _check_range(n, start, stop)
    return np.arange(start, stop, dtype=np.uint64)


def _cofactor_masks(n: int) -> list[np.uint64]:
    """For each input i, the truth-table bits j with bit i of j equal to 0.

    ``t & mask`` keeps the cofactor f|x_i=0 and ``(t >> 2**i) & mask`` moves the
    cofactor f|x_i=1 onto the same bit positions, so the two compare bitwise.
    """
    return [
        np.uint64(sum(1 << j for j in range(2**n) if not (j >> i) & 1)) for i in range(n)
    ]


def is_unate(n: int, tables) -> np.ndarray:
    """Which truth tables are unate (monotone up or down in every input).

    ``tables``: integer array-like of truth tables in ``[0, 2**(2**n))``, any shape.
    Returns a bool array of the same shape. Vectorised over functions: for each
    input i it compares the cofactors f|x_i=0 and f|x_i=1 bitwise; f is
    non-decreasing in x_i iff f|x_i=0 <= f|x_i=1 pointwise, non-increasing iff >=.
    Every threshold function is unate (sign of w_i), so this is an exact
    pre-filter. Every function of n = 0 inputs is unate.
    """
    n = _check_n(n)
    tables = _check_tables(n, tables)
    flat = tables.reshape(-1)
    # Indices of the functions still unate in every input checked so far. Only ~2%
    # of all functions of 5 inputs pass the first input's test, so shrinking the
    # working set makes the remaining inputs nearly free.
    alive = np.arange(flat.size)
    for i, mask in enumerate(_cofactor_masks(n)):
        t = flat[alive]
        low = t & mask
        high = (t >> np.uint64(2**i)) & mask
        rises = (low & ~high) == 0  # no point where f drops when x_i goes 0 -> 1
        falls = (high & ~low) == 0
        alive = alive[rises | falls]
    unate = np.zeros(flat.size, dtype=bool)
    unate[alive] = True
    return unate.reshape(tables.shape)


def _monotone_form(n: int, tables: np.ndarray) -> np.ndarray:
    """Negate, per function, every input it is not non-decreasing in.

    For a unate function the result is monotone non-decreasing and is realisable
    iff the original is (negating input i: w_i -> -w_i, b -> b + w_i). Negating x_i
    swaps the two cofactors.
    """
    for i, mask in enumerate(_cofactor_masks(n)):
        shift = np.uint64(2**i)
        low = tables & mask
        high = (tables >> shift) & mask
        swapped = (low << shift) | high
        tables = np.where((low & ~high) != 0, swapped, tables)
    return tables


def _min_over_permutations(n: int, tables: np.ndarray) -> np.ndarray:
    """The smallest truth table among all input permutations of each table.

    Permuting inputs preserves realisability (permute w), so only this
    representative needs an LP. Used on the few distinct monotone forms only
    (n! = 120 permutations for n = 5).
    """
    points = np.arange(2**n)
    bits = (tables[:, None] >> points.astype(np.uint64)) & np.uint64(1)  # (m, 2^n)
    smallest = tables
    for perm in itertools.permutations(range(n)):
        # input i becomes input perm[i], so point j moves to position image[j]
        image = np.zeros(2**n, dtype=np.uint64)
        for i, p in enumerate(perm):
            image |= (((points >> i) & 1) << p).astype(np.uint64)
        permuted = np.bitwise_or.reduce(bits << image, axis=1)
        smallest = np.minimum(smallest, permuted)
    return smallest


def _signs_and_points(n: int, table: int) -> tuple[np.ndarray, np.ndarray]:
    """sigma_j in {+1, -1} (f(x_j) = 1 or 0) and the points augmented by a 1 column."""
    bits = (table >> np.arange(2**n, dtype=np.uint64)) & np.uint64(1)
    sigma = np.where(bits == 1, 1, -1)
    points = np.hstack([input_patterns(n), np.ones((2**n, 1), dtype=np.uint8)])
    return sigma, points.astype(np.int64)


def _separates_exactly(sigma: np.ndarray, points: np.ndarray, wb: np.ndarray) -> bool:
    """Exactly: does (w, b) = wb, read as rationals, strictly separate the points?

    Every float is a dyadic rational p / 2^e, so scaling by the largest denominator
    turns (w, b) into Python integers with the same signs of ``w.x + b``.
    """
    ratios = [float(v).as_integer_ratio() for v in wb]
    common = max(den for _, den in ratios)  # powers of two: the max is a multiple of all
    scaled = np.array([num * (common // den) for num, den in ratios], dtype=object)
    values = points.astype(object) @ scaled  # exact Python-int arithmetic
    return bool(np.all(sigma * values > 0))


def _asummability_certificate(sigma: np.ndarray, points: np.ndarray) -> list[int] | None:
    """Integer multiplicities m_j >= 0, sum > 0, with sum_j m_j sigma_j (x_j, 1) = 0.

    Found by the Farkas LP ``y >= 0, sum_j y_j sigma_j (x_j, 1) = 0, sum_j y_j = 1``
    and rounded to rationals. A vertex y solves a square system with entries in
    {-1, 0, 1} of size d = n + 2, so by Cramer's rule its denominators are at most
    the Hadamard bound d^(d/2); rounding to that bound recovers it. Returns None if
    the LP fails or the rounded vector is not an exact certificate.
    """
    signed = (sigma[:, None] * points).T  # (n + 1, 2^n)
    a_eq = np.vstack([signed, np.ones(points.shape[0])])
    b_eq = np.zeros(a_eq.shape[0])
    b_eq[-1] = 1.0
    res = linprog(
        np.zeros(points.shape[0]), A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs"
    )
    if res.status != 0:
        return None
    d = a_eq.shape[0]
    max_den = math.isqrt(d**d) + 1
    y = [Fraction(float(v)).limit_denominator(max_den) for v in res.x]
    scale = math.lcm(*(q.denominator for q in y))
    mult = [int(q * scale) for q in y]
    balanced = all(
        sum(m * int(v) for m, v in zip(mult, row)) == 0 for row in signed.tolist()
    )
    return mult if balanced and min(mult) >= 0 and sum(mult) > 0 else None


def is_threshold(n: int, table: int) -> bool:
    """Exactly: is the n-input function with truth table ``table`` a threshold function?

    Decides whether some real (w, b) has ``w.x + b >= 1`` wherever f(x) = 1 and
    ``<= -1`` wherever f(x) = 0 (equivalent to strict separation by scaling) with
    `scipy.optimize.linprog` (HiGHS), and proves the answer exactly: a feasible
    (w, b) is checked as rationals to separate strictly; infeasibility is proved by
    an integer asummability (Farkas) certificate. Raises RuntimeError if HiGHS's
    answer cannot be certified, rather than return an unproven one.

    ``table`` is an integer in ``[0, 2**(2**n))`` (bit j = f(x_j), see module
    docstring); ``0 <= n <= 5``. This is the plain decision for one function; use
    `threshold_mask` / `count_threshold` for many (they pre-filter and de-duplicate).
    """
    n = _check_n(n)
    table = int(_check_tables(n, operator.index(table)))
    sigma, points = _signs_and_points(n, table)
    res = linprog(
        np.zeros(n + 1),
        A_ub=-sigma[:, None] * points,
        b_ub=-np.ones(2**n),
        bounds=(None, None),
        method="highs",
    )
    if res.status == 0:
        if _separates_exactly(sigma, points, res.x):
            return True
        raise RuntimeError(
            f"n={n} table={table}: HiGHS found weights {res.x} that do not separate exactly"
        )
    if res.status == 2 and _asummability_certificate(sigma, points) is not None:
        return False
    raise RuntimeError(
        f"n={n} table={table}: HiGHS status {res.status} ({res.message}) "
        "could not be certified"
    )


def _classify(n: int, tables: np.ndarray) -> tuple[np.ndarray, int]:
    """(realisable mask, number of LPs solved) for validated uint64 truth tables."""
    realizable = np.zeros(tables.shape, dtype=bool)
    unate = is_unate(n, tables)
    # Two de-duplication steps, both preserving realisability: input negation to
    # the monotone form (vectorised over all unate functions), then input
    # permutation (only over the distinct monotone forms, which are far fewer).
    forms, form_of = np.unique(_monotone_form(n, tables[unate]), return_inverse=True)
    classes, class_of = np.unique(_min_over_permutations(n, forms), return_inverse=True)
    decided = np.array([is_threshold(n, int(c)) for c in classes], dtype=bool)
    realizable[unate] = decided[class_of.reshape(-1)][form_of.reshape(-1)]
    return realizable, len(classes)


def threshold_mask(n: int, tables) -> np.ndarray:
    """Which truth tables are threshold functions, exactly (bool array, same shape).

    ``tables``: integer array-like of truth tables in ``[0, 2**(2**n))``. Non-unate
    functions are rejected by `is_unate`; the rest are reduced to one representative
    per class under input negation and permutation, and one `is_threshold` LP
    decides each class.
    """
    n = _check_n(n)
    return _classify(n, _check_tables(n, tables))[0]


def count_threshold(n: int, start: int, stop: int) -> ThresholdCount:
    """Count the threshold functions among truth tables ``start, ..., stop - 1``.

    The unit of work of one census shard. Enumerates the range in chunks of 2^20
    (so memory stays bounded for any range), keeps the unate functions and decides
    them with one exact LP per class of functions equal up to negating and
    permuting inputs (classes are formed within the call, so one call over a range
    solves fewer LPs than its shards do in total). Same validation as
    `truth_tables`. Counts add up over any split of a range into shards.
    """
    began = time.perf_counter()
    n = _check_n(n)
    start, stop = _check_range(n, start, stop)
    candidates = []
    for lo in range(start, stop, _CHUNK):
        tables = truth_tables(n, lo, min(lo + _CHUNK, stop))
        candidates.append(tables[is_unate(n, tables)])
    unate = np.concatenate(candidates) if candidates else np.zeros(0, dtype=np.uint64)
    realizable, n_lps = _classify(n, unate)
    return ThresholdCount(
        n=n,
        start=start,
        stop=stop,
        n_functions=stop - start,
        n_unate=len(unate),
        n_realizable=int(realizable.sum()),
        n_lps=n_lps,
        seconds=time.perf_counter() - began,
    )


def threshold_tables_by_weights(n: int, max_weight: int) -> set[int]:
    """All truth tables of ``[w.x >= theta]`` over integer ``w`` in ``[-W, W]^n``.

    An independent cross-check of the LP (brute force, small n only: (2W+1)^n
    weight vectors). With integer weights w.x is an integer, so the half-integer
    thresholds ``theta`` from ``-nW - 1/2`` to ``nW + 1/2`` give every distinct
    function (integer thresholds add nothing), including both constants. Returns
    Python ints in the module's truth-table convention. For W large enough (2 for
    n <= 3, 3 for n = 4) this is exactly the set of threshold functions.
    """
    n = _check_n(n)
    max_weight = operator.index(max_weight)
    if max_weight < 0:
        raise ValueError(f"max_weight must be >= 0, got {max_weight}")
    combos = list(itertools.product(range(-max_weight, max_weight + 1), repeat=n))
    # explicit shape: for n = 0 there is one (empty) weight vector
    weights = np.array(combos, dtype=np.int64).reshape(len(combos), n)
    sums = input_patterns(n).astype(np.int64) @ weights.T  # (2^n, n_weight_vectors)
    place = np.uint64(1) << np.arange(2**n, dtype=np.uint64)  # bit j <-> point j
    found: set[int] = set()
    for theta in np.arange(-n * max_weight - 0.5, n * max_weight + 1.0):
        fires = (sums >= theta).astype(np.uint64)
        found.update((place @ fires).tolist())
    return found


ARCHITECTURES: Mapping[str, Callable[[int, int, int], ThresholdCount]] = MappingProxyType(
    {"threshold": count_threshold}
)
"""Census counters by architecture name; each is ``(n, start, stop) -> count``."""


def count_realizable(architecture: str, n: int, start: int, stop: int) -> ThresholdCount:
    """Count the functions in ``[start, stop)`` that ``architecture`` realises.

    Dispatches by name through `ARCHITECTURES` (only ``"threshold"`` so far);
    raises ValueError listing the known names for an unknown one.
    """
    try:
        counter = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(
            f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}"
        ) from None
    return counter(n, start, stop)
