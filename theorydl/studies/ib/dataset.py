"""The 12-bit Information Bottleneck task of Shwartz-Ziv & Tishby (2017).

The 12 binary inputs stand for the 12 vertices of a regular icosahedron on the unit
sphere; an input pattern is the set of vertices that are "on".  The label is a
deterministic function of a quantity that is invariant under the 60 rotations mapping
the icosahedron to itself, thresholded so that the label entropy is as close to one bit
as the invariant's discrete values allow.

Label rule
----------
For the on-set ``S`` of a pattern, the degree-``l`` spherical-harmonic power of the
point set ``{v_i : i in S}`` is (up to the constant ``4 pi / (2 l + 1)``)

    A_l(S) = sum_{i in S} sum_{j in S} P_l(v_i . v_j)

with ``P_l`` the Legendre polynomial.  It depends on the pattern only through the
pairwise angles of the on-vertices, so it is invariant under every rotation of the
sphere (a fortiori under the icosahedral ones).  The default ``l = 1`` is the dipole
power ``A_1(S) = |sum_{i in S} v_i|^2``: ``y = 1`` iff the on-vertices' vector sum is long
(their centre of mass is far from the sphere's centre).  With ``l = 1`` the invariant
takes 20 distinct values over the 4096 patterns; the best threshold (between 2.211 and
2.894) gives ``P(y=1) = 2036/4096 = 0.49707`` and ``H(Y) = 0.99998`` bits.

Exactness: ``v_i . v_j`` takes only four values on the icosahedron (1, 1/sqrt5,
-1/sqrt5, -1), so ``A_l`` is computed from four integer pair counts.  Rotated patterns
have the same integer counts, hence bitwise-identical ``A_l``, hence the same label;
the label is a function of the invariant alone (ties cannot be split by the threshold,
which lies strictly between two distinct values).

Bit order
---------
Row ``n`` of ``X`` is the binary expansion of ``n`` with vertex 0 as the most
significant bit: ``X[n, i] = (n >> (11 - i)) & 1``.  Rows are thus in counting order;
``pattern_index`` inverts this map.

The split
---------
The original code kept the patterns in counting order and cut the list without
shuffling, so the train set held P(y=1)=0.44 and the test set 0.84.  ``split`` is a
shuffled split stratified by label (see its docstring).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from theorydl.spine.store.store import write_table_atomic

N_BITS = 12
N_PATTERNS = 1 << N_BITS

__all__ = [
    "N_BITS",
    "N_PATTERNS",
    "IBDataset",
    "all_patterns",
    "binary_entropy_bits",
    "icosahedral_rotations",
    "icosahedron_vertices",
    "label_invariant",
    "labels",
    "load_ib_dataset",
    "make_ib_dataset",
    "pattern_index",
    "save_ib_dataset",
    "split",
]


def icosahedron_vertices() -> np.ndarray:
    """The 12 vertices of a regular icosahedron on the unit sphere.

    Returns a float64 array (12, 3).  Vertex order (before normalisation, with the golden
    ratio ``phi``): for ``a in (-1, 1)``, ``b in (-phi, phi)`` the three cyclic
    placements ``(0, a, b), (a, b, 0), (b, 0, a)``; i.e. rows
    ``0..2`` are ``a=-1, b=-phi``, ``3..5`` are ``a=-1, b=phi``, ``6..8`` are
    ``a=1, b=-phi`` and ``9..11`` are ``a=1, b=phi``.  Row ``i`` is input bit ``i``.
    """
    phi = (1.0 + np.sqrt(5.0)) / 2.0
    rows = []
    for a, b in itertools.product((-1.0, 1.0), (-phi, phi)):
        rows += [(0.0, a, b), (a, b, 0.0), (b, 0.0, a)]
    v = np.array(rows, dtype=np.float64)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _pair_types(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Classify vertex pairs by their (only four) inner products.

    Returns ``types`` (12, 12) int in {0, 1, 2, 3} and ``cosines`` (4,) float64, the
    exact inner product of each type: 1 (same vertex), 1/sqrt5 (neighbours),
    -1/sqrt5 (second neighbours), -1 (antipodes).
    """
    cosines = np.array([1.0, 1.0 / np.sqrt(5.0), -1.0 / np.sqrt(5.0), -1.0])
    gram = vertices @ vertices.T
    # Rounding noise in the Gram matrix is ~1e-16; the four values are >= 0.55 apart.
    types = np.abs(gram[:, :, None] - cosines).argmin(axis=-1)
    return types, cosines


def icosahedral_rotations() -> np.ndarray:
    """The 60 rotations of the icosahedral group as vertex permutations.

    Returns an int64 array (60, 12): ``perm[r, i]`` is the vertex that rotation ``r``
    sends vertex ``i`` to.  Row 0 is the identity.  A proper rotation is fixed by the
    images of one vertex and of one of its neighbours (12 * 5 = 60 choices); each is
    built as the orthogonal map between the two orthonormal frames, and checked to
    permute the vertex set.
    """
    v = icosahedron_vertices()
    types, _ = _pair_types(v)

    def frame(a: int, b: int) -> np.ndarray:
        e1 = v[a]
        e2 = v[b] - (v[b] @ e1) * e1
        e2 /= np.linalg.norm(e2)
        return np.stack([e1, e2, np.cross(e1, e2)])

    src = frame(0, int(np.flatnonzero(types[0] == 1)[0]))
    perms = []
    for a in range(N_BITS):
        for b in np.flatnonzero(types[a] == 1):
            rot = frame(a, int(b)).T @ src  # maps src frame onto target frame
            image = v @ rot.T
            dist = np.linalg.norm(image[:, None, :] - v[None, :, :], axis=-1)
            perm = dist.argmin(axis=1)
            if dist.min(axis=1).max() > 1e-9 or len(set(perm.tolist())) != N_BITS:
                raise RuntimeError("frame map is not an icosahedral symmetry")
            perms.append(perm)
    out = np.array(perms, dtype=np.int64)
    # Put the identity first so callers can rely on it.
    ident = np.flatnonzero((out == np.arange(N_BITS)).all(axis=1))
    order = np.concatenate([ident, np.setdiff1d(np.arange(len(out)), ident)])
    return out[order]


def all_patterns() -> np.ndarray:
    """All 4096 binary patterns, float32 (4096, 12), ``X[n, i] = (n >> (11 - i)) & 1``."""
    n = np.arange(N_PATTERNS, dtype=np.int64)
    shifts = np.arange(N_BITS - 1, -1, -1, dtype=np.int64)
    return ((n[:, None] >> shifts[None, :]) & 1).astype(np.float32)


def pattern_index(x: np.ndarray) -> np.ndarray:
    """Inverse of ``all_patterns``: binary rows (..., 12) -> int64 indices (...)."""
    weights = 1 << np.arange(N_BITS - 1, -1, -1, dtype=np.int64)
    return (np.asarray(x).astype(np.int64) * weights).sum(axis=-1)


def label_invariant(x: np.ndarray, degree: int = 1) -> np.ndarray:
    """Degree-``l`` spherical-harmonic power ``sum_{i,j on} P_l(v_i . v_j)`` per pattern.

    ``x``: binary array (N, 12).  Returns float64 (N,).  Computed from the four integer
    pair counts (see module docstring) so that patterns related by a rotation get
    bitwise-identical values.
    """
    if degree < 0:
        raise ValueError(f"degree must be >= 0, got {degree}")
    types, cosines = _pair_types(icosahedron_vertices())
    xi = np.asarray(x).astype(np.int64)
    counts = np.stack(
        [np.einsum("ni,ij,nj->n", xi, (types == t).astype(np.int64), xi) for t in range(4)],
        axis=1,
    )
    coef = np.zeros(degree + 1)
    coef[degree] = 1.0
    p_l = np.polynomial.legendre.legval(cosines, coef)
    return counts.astype(np.float64) @ p_l


def binary_entropy_bits(p: float) -> float:
    """Entropy in bits of a Bernoulli(p) variable (0 at p in {0, 1})."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return float(-(p * np.log2(p) + (1.0 - p) * np.log2(1.0 - p)))


def labels(x: np.ndarray, degree: int = 1) -> tuple[np.ndarray, float]:
    """Labels ``y = [A_l(x) > threshold]`` with the threshold maximising H(Y).

    ``x``: binary array (N, 12); the threshold is chosen on these patterns (pass
    ``all_patterns()`` for the task).  Candidate thresholds are the midpoints between
    consecutive distinct invariant values (values closer than 1e-9 are one value, so
    floating-point noise between mathematically equal sums cannot split them); the one
    giving the largest H(Y) wins, the smaller threshold on an exact tie.  Returns
    ``(y, threshold)`` with ``y`` int64 (N,) in {0, 1}.
    """
    a = label_invariant(x, degree)
    vals = np.unique(a)
    # Merge numerically equal values: keep a value only if it is well above the previous.
    distinct = vals[np.concatenate([[True], np.diff(vals) > 1e-9])]
    if len(distinct) < 2:
        raise ValueError("the invariant is constant on these patterns; no threshold")
    candidates = (distinct[:-1] + distinct[1:]) / 2.0
    entropies = [binary_entropy_bits(float(np.mean(a > c))) for c in candidates]
    threshold = float(candidates[int(np.argmax(entropies))])
    return (a > threshold).astype(np.int64), threshold


def split(y: np.ndarray, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled train/test split stratified by label.

    ``y``: int labels (N,).  The train size is ``n_train = round(train_fraction * N)``
    and class ``c`` (with ``N_c`` members) contributes ``n_train * N_c / N`` of them,
    rounded by largest remainder so the sizes add up (for two classes this is rounding
    to nearest); members are drawn without replacement by
    ``np.random.Generator(PCG64(seed))`` and both index arrays are returned in a random
    order (int64, disjoint, together covering ``0..N-1``).  For two classes each split's class fraction is within ``0.5/n`` of the
    overall one, so train and test fractions differ by at most
    ``1 / min(n_train, n_test)``.  Raises if either side would be empty.
    """
    y = np.asarray(y)
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    n = len(y)
    n_train = int(round(train_fraction * n))
    if n_train == 0 or n_train == n:
        raise ValueError(f"train_fraction={train_fraction} leaves one side of {n} empty")
    rng = np.random.Generator(np.random.PCG64(seed))
    classes, class_counts = np.unique(y, return_counts=True)
    quota = np.floor(n_train * class_counts / n).astype(np.int64)
    # Hand the remaining slots to the classes with the largest fractional parts
    # (largest-remainder rounding); on equal remainders the smaller class label wins.
    remainder = n_train * class_counts / n - quota
    for k in np.argsort(-remainder, kind="stable")[: n_train - int(quota.sum())]:
        quota[k] += 1
    train_parts, test_parts = [], []
    for c, q in zip(classes, quota):
        members = rng.permutation(np.flatnonzero(y == c))
        train_parts.append(members[:q])
        test_parts.append(members[q:])
    train_idx = rng.permutation(np.concatenate(train_parts)).astype(np.int64)
    test_idx = rng.permutation(np.concatenate(test_parts)).astype(np.int64)
    return train_idx, test_idx


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True, order="C")  # never freeze the caller's array
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class IBDataset:
    """The 12-bit task with its split.

    ``X`` float32 (4096, 12) in {0, 1} (bit order in the module docstring); ``y`` int64
    (4096,) in {0, 1}; ``train_idx`` / ``test_idx`` int64 indices into the rows, in
    shuffled order; ``h_y_bits`` = H(Y) over all 4096 patterns (uniform p(x)), in bits;
    ``degree`` / ``threshold`` the label rule; ``train_fraction`` / ``seed`` the split.
    Arrays are read-only.
    """

    X: np.ndarray
    y: np.ndarray
    train_idx: np.ndarray
    test_idx: np.ndarray
    h_y_bits: float
    degree: int
    threshold: float
    train_fraction: float
    seed: int

    def __post_init__(self) -> None:
        for name in ("X", "y", "train_idx", "test_idx"):
            object.__setattr__(self, name, _readonly(getattr(self, name)))


def make_ib_dataset(train_fraction: float, seed: int, degree: int = 1) -> IBDataset:
    """Build the task: all patterns, icosahedral-invariant labels, stratified split.

    ``degree`` is the spherical-harmonic degree of the label invariant (default 1, the
    dipole power; H(Y) = 0.99998 bits).  See ``labels`` and ``split``.
    """
    x = all_patterns()
    y, threshold = labels(x, degree)
    train_idx, test_idx = split(y, train_fraction, seed)
    return IBDataset(
        X=x,
        y=y,
        train_idx=train_idx,
        test_idx=test_idx,
        h_y_bits=binary_entropy_bits(float(y.mean())),
        degree=degree,
        threshold=threshold,
        train_fraction=float(train_fraction),
        seed=int(seed),
    )


_META_KEY = b"theorydl.ib"


def save_ib_dataset(ds: IBDataset, path: str | Path) -> None:
    """Write ``ds`` as a Parquet table (one row per pattern).

    Columns: ``pattern`` (int32 row index), ``x00``..``x11`` (uint8 bits), ``y`` (uint8),
    ``split`` (string "train"/"test") and ``order`` (int32 position within its split,
    which preserves the shuffled index order).  The scalars (``h_y_bits``, ``degree``,
    ``threshold``, ``train_fraction``, ``seed``) are JSON in the schema metadata under
    ``theorydl.ib``.  The threshold is written with ``repr`` so it round-trips exactly.
    """
    n = ds.X.shape[0]
    in_train = np.zeros(n, dtype=bool)
    in_train[ds.train_idx] = True
    order = np.empty(n, dtype=np.int32)
    order[ds.train_idx] = np.arange(len(ds.train_idx), dtype=np.int32)
    order[ds.test_idx] = np.arange(len(ds.test_idx), dtype=np.int32)
    columns = {"pattern": pa.array(np.arange(n, dtype=np.int32))}
    for i in range(ds.X.shape[1]):
        columns[f"x{i:02d}"] = pa.array(ds.X[:, i].astype(np.uint8))
    columns["y"] = pa.array(ds.y.astype(np.uint8))
    columns["split"] = pa.array(np.where(in_train, "train", "test"))
    columns["order"] = pa.array(order)
    meta = {
        "h_y_bits": repr(ds.h_y_bits),
        "degree": ds.degree,
        "threshold": repr(ds.threshold),
        "train_fraction": repr(ds.train_fraction),
        "seed": ds.seed,
    }
    table = pa.table(columns).replace_schema_metadata({_META_KEY: json.dumps(meta).encode()})
    write_table_atomic(table, path)  # temp name, then rename: never a partial file


def load_ib_dataset(path: str | Path) -> IBDataset:
    """Read a table written by ``save_ib_dataset`` back into an ``IBDataset``."""
    table = pq.read_table(str(path))
    meta = json.loads(table.schema.metadata[_META_KEY])
    cols = table.to_pydict()
    pattern = np.asarray(cols["pattern"], dtype=np.int64)
    n = len(pattern)
    if not np.array_equal(np.sort(pattern), np.arange(n)):
        raise ValueError(f"{path}: 'pattern' is not a permutation of 0..{n - 1}")
    rows = np.argsort(pattern)
    x_cols = sorted(k for k in cols if k.startswith("x"))
    x = np.stack([np.asarray(cols[k])[rows] for k in x_cols], axis=1).astype(np.float32)
    y = np.asarray(cols["y"])[rows].astype(np.int64)
    is_train = np.asarray(cols["split"])[rows] == "train"
    order = np.asarray(cols["order"])[rows]
    train = np.flatnonzero(is_train)
    test = np.flatnonzero(~is_train)
    return IBDataset(
        X=x,
        y=y,
        train_idx=train[np.argsort(order[train])].astype(np.int64),
        test_idx=test[np.argsort(order[test])].astype(np.int64),
        h_y_bits=float(meta["h_y_bits"]),
        degree=int(meta["degree"]),
        threshold=float(meta["threshold"]),
        train_fraction=float(meta["train_fraction"]),
        seed=int(meta["seed"]),
    )
