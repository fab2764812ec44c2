"""Image classification data for width sweeps (Neyshabur, Tomioka & Srebro, 2015).

Four datasets, all returned as one :class:`VisionData` type:

* ``"mnist"`` and ``"fashion_mnist"``: the four published gzipped IDX files each,
  parsed with numpy (no torchvision: it does not install beside our CPU torch build).
* ``"cifar10"``: the published *binary* archive ``cifar-10-binary.tar.gz``; records are
  read straight from the tar (1 label byte + 3072 pixel bytes, channel-major), never
  the Python-pickle version, so loading runs no pickled code.
* ``"digits"``: scikit-learn's bundled ``load_digits()`` (1797 8x8 images, no download),
  with a seeded stratified train/test split because it has no official one.

Files live in ``root / name`` (MNIST and Fashion-MNIST use identical file names, so
they cannot share one folder).  :func:`load` never touches the network: when files are
missing it raises :class:`DatasetUnavailable`.  Only :func:`download`, called by the
data stage, fetches files; it writes each one atomically and checks its published MD5.

:func:`prepare` applies the experiment's options (seeded stratified training subset,
a fraction of training labels re-drawn uniformly at random as in Zhang et al. 2017),
and :func:`save_npz` / :func:`load_npz` store the result for a DVC stage.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DATASETS",
    "SOURCES",
    "ChecksumMismatch",
    "DatasetUnavailable",
    "RemoteFile",
    "VisionData",
    "dataset_dir",
    "download",
    "load",
    "load_cifar10",
    "load_digits",
    "load_idx_dataset",
    "load_npz",
    "md5sum",
    "prepare",
    "read_cifar10_binary",
    "read_idx",
    "save_npz",
    "stratified_choice",
]


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name inside ``root / dataset``, its URL and its MD5."""

    filename: str
    url: str
    md5: str


_MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"

# Published checksums, as listed by torchvision's dataset classes.  Fashion-MNIST is
# served over plain http by its authors; the MD5 check is what vouches for the bytes.
SOURCES: dict[str, tuple[RemoteFile, ...]] = {
    "mnist": (
        RemoteFile("train-images-idx3-ubyte.gz", _MNIST_URL + "train-images-idx3-ubyte.gz",
                   "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        RemoteFile("train-labels-idx1-ubyte.gz", _MNIST_URL + "train-labels-idx1-ubyte.gz",
                   "d53e105ee54ea40749a09fcbcd1e9432"),
        RemoteFile("t10k-images-idx3-ubyte.gz", _MNIST_URL + "t10k-images-idx3-ubyte.gz",
                   "9fb629c4189551a2d022fa330f9573f3"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", _MNIST_URL + "t10k-labels-idx1-ubyte.gz",
                   "ec29112dd5afa0611ce80d1b7f02629c"),
    ),
    "fashion_mnist": (
        RemoteFile("train-images-idx3-ubyte.gz", _FASHION_URL + "train-images-idx3-ubyte.gz",
                   "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        RemoteFile("train-labels-idx1-ubyte.gz", _FASHION_URL + "train-labels-idx1-ubyte.gz",
                   "25c81989df183df01b3e8a0aad5dffbe"),
        RemoteFile("t10k-images-idx3-ubyte.gz", _FASHION_URL + "t10k-images-idx3-ubyte.gz",
                   "bef4ecab320f06d8554ea6380940ec79"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", _FASHION_URL + "t10k-labels-idx1-ubyte.gz",
                   "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
    "cifar10": (
        RemoteFile("cifar-10-binary.tar.gz", _CIFAR10_URL, "c32a1d4ab5d03f1284b67883e8d87530"),
    ),
}

DATASETS: tuple[str, ...] = ("mnist", "fashion_mnist", "cifar10", "digits")

_N_CLASSES = 10  # all four datasets have ten classes
_DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK = 1 << 20


class DatasetUnavailable(RuntimeError):
    """The dataset's files are not on disk and :func:`load` does not download."""


class ChecksumMismatch(RuntimeError):
    """A file's MD5 differs from the published one."""


@dataclass(frozen=True, eq=False)
class VisionData:
    """A train/test classification dataset with images flattened to rows.

    Attributes
    ----------
    x_train : (N, D) float32 in [0, 1]; row ``i`` is image ``i`` flattened in C order
        from ``image_shape`` (channel-major, so ``x.reshape(-1, *image_shape)`` is the
        NCHW batch a convolution expects).
    y_train : (N,) int64 in ``[0, n_classes)``.
    x_test : (M, D) float32 in [0, 1].
    y_test : (M,) int64 in ``[0, n_classes)``.
    n_classes : number of classes.
    name : dataset name (one of :data:`DATASETS`).
    image_shape : ``(C, H, W)`` with ``C * H * W == D``.

    ``eq=False`` because element-wise array comparison has no single truth value.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str
    image_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        # Normalise image_shape to a tuple of ints so that JSON round trips compare equal.
        object.__setattr__(self, "image_shape", tuple(int(s) for s in self.image_shape))
        d = int(np.prod(self.image_shape))
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != d:
                raise ValueError(f"x_{split} must be float32 of shape (N, {d}); "
                                 f"got {x.dtype} {x.shape}")
            if y.dtype != np.int64 or y.shape != (x.shape[0],):
                raise ValueError(f"y_{split} must be int64 of shape ({x.shape[0]},); "
                                 f"got {y.dtype} {y.shape}")
            if y.size and (y.min() < 0 or y.max() >= self.n_classes):
                raise ValueError(f"y_{split} has labels outside [0, {self.n_classes})")


# --------------------------------------------------------------------------- files


def dataset_dir(name: str, root: str | os.PathLike) -> Path:
    """Folder holding ``name``'s published files: ``root / name``."""
    return Path(root) / name


def md5sum(path: str | os.PathLike) -> str:
    """Hex MD5 of a file, read in 1 MiB chunks (CIFAR-10's archive is 162 MiB)."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _sources(name: str) -> tuple[RemoteFile, ...]:
    if name not in SOURCES:
        raise ValueError(f"unknown file-backed dataset {name!r}; known: {sorted(SOURCES)}")
    return SOURCES[name]


def download(name: str, root: str | os.PathLike) -> list[Path]:
    """Fetch ``name``'s published files into ``root / name`` and verify their MD5s.

    A file already present with the right MD5 is kept.  Each download streams into a
    temporary file in the destination folder and is renamed into place only after its
    MD5 matches, so an interrupted or corrupted download never leaves a file that
    :func:`load` would pick up; on a mismatch the temporary file is deleted and
    :class:`ChecksumMismatch` is raised.  ``"digits"`` ships with scikit-learn, so it
    needs nothing and returns ``[]``.

    Returns the paths of the dataset's files.
    """
    if name == "digits":
        return []
    folder = dataset_dir(name, root)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for remote in _sources(name):
        dest = folder / remote.filename
        if not (dest.exists() and md5sum(dest) == remote.md5):
            _fetch(remote, dest)
        paths.append(dest)
    return paths


def _fetch(remote: RemoteFile, dest: Path) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        h = hashlib.md5()
        with os.fdopen(fd, "wb") as out, \
                urllib.request.urlopen(remote.url, timeout=_DOWNLOAD_TIMEOUT_S) as response:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        got = h.hexdigest()
        if got != remote.md5:
            raise ChecksumMismatch(
                f"download of {remote.url} has MD5 {got}, expected {remote.md5}; "
                f"the corrupted file was deleted and {dest} was left untouched")
        os.replace(tmp, dest)
    finally:
        # Covers a checksum mismatch, a network error and an interrupt alike.
        tmp.unlink(missing_ok=True)


def _verified_paths(name: str, root: str | os.PathLike | None) -> dict[str, Path]:
    """Paths of ``name``'s files, after checking that all exist and match their MD5s."""
    if root is None:
        raise ValueError(f"dataset {name!r} is read from files; pass root")
    folder = dataset_dir(name, root)
    sources = _sources(name)
    missing = [r for r in sources if not (folder / r.filename).is_file()]
    if missing:
        listing = "\n".join(f"  {r.filename}  <-  {r.url}  (md5 {r.md5})" for r in missing)
        raise DatasetUnavailable(
            f"dataset {name!r} is not available: missing in {folder}:\n{listing}\n"
            f"load() never downloads. Run the data stage with network access "
            f"(`theorydl data width` / `dvc repro width_data`), or place the files in "
            f"{folder} by hand.")
    for r in sources:
        got = md5sum(folder / r.filename)
        if got != r.md5:
            raise ChecksumMismatch(
                f"{folder / r.filename} has MD5 {got}, expected {r.md5} (from {r.url}); "
                f"delete it and run the data stage again")
    return {r.filename: folder / r.filename for r in sources}


# ------------------------------------------------------------------------------ IDX

# IDX type codes (third magic byte) -> numpy dtype; multi-byte values are big-endian.
_IDX_DTYPES = {0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
               0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse an IDX file (gzipped if its name ends in ``.gz``) into a numpy array.

    Layout: magic ``00 00 <type> <ndim>``, then ``ndim`` big-endian uint32 sizes, then
    the values in C order.  Returns an array of that shape in the native byte order
    (``uint8`` for MNIST-style files).
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (magic {raw[:4].hex()})")
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: header says shape {shape} ({expected} bytes of data), "
                         f"file has {len(raw) - header}")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _images_to_rows(images: np.ndarray) -> np.ndarray:
    """(N, ...) uint8 -> (N, prod(...)) float32 in [0, 1]."""
    return (images.reshape(images.shape[0], -1).astype(np.float32) / np.float32(255.0))


def _check_pair(images: np.ndarray, labels: np.ndarray, what: str) -> None:
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{what}: {images.shape[0]} images but {labels.shape[0]} labels")
    if labels.size and labels.max() >= _N_CLASSES:
        raise ValueError(f"{what}: label {labels.max()} outside [0, {_N_CLASSES})")


def load_idx_dataset(name: str, root: str | os.PathLike) -> VisionData:
    """MNIST or Fashion-MNIST from its four IDX files in ``root / name``.

    Raises :class:`DatasetUnavailable` if files are missing and
    :class:`ChecksumMismatch` if one differs from the published MD5.
    Images are 28x28 grey, so ``image_shape == (1, 28, 28)`` and ``D == 784``.
    """
    if name not in ("mnist", "fashion_mnist"):
        raise ValueError(f"{name!r} is not an IDX dataset")
    paths = _verified_paths(name, root)
    split, sizes = {}, set()
    for part, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"])
        labels = read_idx(paths[f"{prefix}-labels-idx1-ubyte.gz"])
        if images.ndim != 3 or labels.ndim != 1:
            raise ValueError(f"{name} {part}: images {images.shape}, labels {labels.shape}")
        _check_pair(images, labels, f"{name} {part}")
        sizes.add(images.shape[1:])
        split[part] = (_images_to_rows(images), labels.astype(np.int64))
    if len(sizes) != 1:
        raise ValueError(f"{name}: train and test image sizes differ: {sorted(sizes)}")
    (hw,) = sizes
    return VisionData(*split["train"], *split["test"], n_classes=_N_CLASSES, name=name,
                      image_shape=(1, *hw))


# -------------------------------------------------------------------------- CIFAR-10

_CIFAR_SHAPE = (3, 32, 32)
_CIFAR_RECORD = 1 + int(np.prod(_CIFAR_SHAPE))  # one label byte, then 3072 pixels
_CIFAR_DIR = "cifar-10-batches-bin/"
_CIFAR_TRAIN = tuple(f"{_CIFAR_DIR}data_batch_{i}.bin" for i in range(1, 6))
_CIFAR_TEST = (f"{_CIFAR_DIR}test_batch.bin",)


def read_cifar10_binary(
    tar_path: str | os.PathLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Read the binary CIFAR-10 archive without unpacking it.

    Each record is 3073 bytes: the label, then the 1024 red, 1024 green and 1024 blue
    pixels, each plane in row-major order.  Training records come from
    ``data_batch_1.bin`` ... ``data_batch_5.bin`` in that order, test records from
    ``test_batch.bin``.

    Returns ``(x_train, y_train, x_test, y_test)``: images ``(N, 3, 32, 32)`` uint8 and
    labels ``(N,)`` uint8, in file order.
    """
    with tarfile.open(tar_path, "r:gz") as tar:
        def read(members: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
            chunks = []
            for member in members:
                f = tar.extractfile(member)  # KeyError names the member if it is absent
                if f is None:
                    raise ValueError(f"{tar_path}: {member} is not a regular file")
                raw = f.read()
                if len(raw) % _CIFAR_RECORD:
                    raise ValueError(f"{tar_path}: {member} has {len(raw)} bytes, "
                                     f"not a multiple of the {_CIFAR_RECORD}-byte record")
                chunks.append(np.frombuffer(raw, np.uint8).reshape(-1, _CIFAR_RECORD))
            records = np.concatenate(chunks)
            return records[:, 1:].reshape(-1, *_CIFAR_SHAPE), records[:, 0].copy()

        return (*read(_CIFAR_TRAIN), *read(_CIFAR_TEST))


def load_cifar10(root: str | os.PathLike) -> VisionData:
    """CIFAR-10 from ``root / "cifar10" / "cifar-10-binary.tar.gz"``.

    Raises :class:`DatasetUnavailable` if the archive is missing and
    :class:`ChecksumMismatch` if it differs from the published MD5.
    Rows are the CHW images flattened, ``image_shape == (3, 32, 32)``, ``D == 3072``.
    """
    (path,) = _verified_paths("cifar10", root).values()
    x_tr, y_tr, x_te, y_te = read_cifar10_binary(path)
    _check_pair(x_tr, y_tr, "cifar10 train")
    _check_pair(x_te, y_te, "cifar10 test")
    return VisionData(_images_to_rows(x_tr), y_tr.astype(np.int64),
                      _images_to_rows(x_te), y_te.astype(np.int64),
                      n_classes=_N_CLASSES, name="cifar10", image_shape=_CIFAR_SHAPE)


# ---------------------------------------------------------------------------- digits


def stratified_choice(y: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Pick ``n`` indices of ``y`` with every class represented in proportion.

    Class ``c`` with ``n_c`` members gets ``floor(n * n_c / N)`` picks, and the picks
    left over go to the classes with the largest fractional parts (ties to the lower
    class), so the total is exactly ``n``.  Within a class the picks are a uniform
    random subset drawn with ``rng``.

    Returns the chosen indices as a sorted (n,) int64 array, so the original order of
    the data is kept.
    """
    y = np.asarray(y)
    if not 0 <= n <= y.size:
        raise ValueError(f"cannot choose {n} of {y.size} samples")
    classes, counts = np.unique(y, return_counts=True)
    quota = n * counts / y.size
    take = np.floor(quota).astype(np.int64)
    # Stable sort so that equal remainders go to the lower class, deterministically.
    order = np.argsort(-(quota - take), kind="stable")
    take[order[: n - int(take.sum())]] += 1
    picks = [rng.permutation(np.flatnonzero(y == c))[:k] for c, k in zip(classes, take)]
    return np.sort(np.concatenate(picks)).astype(np.int64)


def load_digits(seed: int = 0, test_fraction: float = 1 / 3) -> VisionData:
    """scikit-learn's 8x8 digits with a seeded stratified train/test split.

    The 1797 images have integer pixels 0..16, scaled here to [0, 1] by dividing by 16;
    ``image_shape == (1, 8, 8)``.  ``round(test_fraction * 1797)`` samples, chosen by
    :func:`stratified_choice` with ``np.random.default_rng(seed)``, form the test set;
    the same seed always gives the same split.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must lie in (0, 1); got {test_fraction}")
    bunch = sk_load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    test = stratified_choice(y, round(test_fraction * y.size), np.random.default_rng(seed))
    train = np.setdiff1d(np.arange(y.size), test)
    return VisionData(x[train], y[train], x[test], y[test], n_classes=_N_CLASSES,
                      name="digits", image_shape=(1, 8, 8))


# ------------------------------------------------------------------------ public API


def load(name: str, root: str | os.PathLike | None = None, *, seed: int = 0) -> VisionData:
    """Load dataset ``name`` (one of :data:`DATASETS`) from ``root / name``. Never downloads.

    ``seed`` only matters for ``"digits"``, whose train/test split it draws (the other
    datasets have official splits); ``root`` is unused for ``"digits"``.

    Raises :class:`DatasetUnavailable` when files are missing (its message names them,
    their URLs and how to get them) and :class:`ChecksumMismatch` when a present file
    differs from its published MD5.
    """
    if name == "digits":
        return load_digits(seed)
    if name == "cifar10":
        return load_cifar10(root)
    if name in ("mnist", "fashion_mnist"):
        return load_idx_dataset(name, root)
    raise ValueError(f"unknown dataset {name!r}; known: {DATASETS}")


def prepare(
    data: VisionData,
    *,
    train_subset: int | None,
    random_label_fraction: float,
    seed: int,
) -> VisionData:
    """Apply the sweep's options to the training set; the test set is passed through.

    With ``rng = np.random.default_rng(seed)``, in this order:

    1. ``train_subset``: if not None, keep ``train_subset`` training samples chosen by
       :func:`stratified_choice` (class proportions kept, original order kept).
    2. ``random_label_fraction``: exactly ``round(fraction * N)`` training samples
       (``N`` after subsetting; Python's ``round``, half to even) are chosen without
       replacement and their labels re-drawn uniformly from all ``n_classes`` classes,
       as in Zhang et al. (2017).  A re-drawn label may equal the original one (with
       probability ``1 / n_classes``), so the expected fraction of *wrong* labels is
       ``fraction * (1 - 1 / n_classes)``.

    The same ``(data, train_subset, random_label_fraction, seed)`` always gives the same
    result.  ``data`` is not modified.
    """
    if not 0.0 <= random_label_fraction <= 1.0:
        raise ValueError(f"random_label_fraction must lie in [0, 1]; "
                         f"got {random_label_fraction}")
    rng = np.random.default_rng(seed)
    x, y = data.x_train, data.y_train
    if train_subset is not None:
        if not 1 <= train_subset <= y.size:
            raise ValueError(f"train_subset must lie in [1, {y.size}]; got {train_subset}")
        keep = stratified_choice(y, train_subset, rng)
        x, y = x[keep], y[keep]
    y = y.copy()
    n_relabel = round(random_label_fraction * y.size)
    chosen = rng.choice(y.size, size=n_relabel, replace=False)
    y[chosen] = rng.integers(0, data.n_classes, size=n_relabel)
    return VisionData(x, y, data.x_test, data.y_test, n_classes=data.n_classes,
                      name=data.name, image_shape=data.image_shape)


def save_npz(data: VisionData, path: str | os.PathLike) -> None:
    """Write ``data`` to an uncompressed ``.npz`` at ``path``, atomically.

    Arrays are stored under their field names; ``n_classes``, ``name`` and
    ``image_shape`` go into ``meta``, a 0-d unicode array holding JSON, so that
    :func:`load_npz` can read everything with ``allow_pickle=False``.  The file is
    written to a temporary file beside ``path`` and renamed over it, so a DVC stage
    never sees a half-written output.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = json.dumps({"n_classes": data.n_classes, "name": data.name,
                       "image_shape": list(data.image_shape)})
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        # A file object, not a name: np.savez would append ".npz" to a name.
        with os.fdopen(fd, "wb") as f:
            np.savez(f, x_train=data.x_train, y_train=data.y_train, x_test=data.x_test,
                     y_test=data.y_test, meta=np.array(meta))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def load_npz(path: str | os.PathLike) -> VisionData:
    """Read a file written by :func:`save_npz` (``allow_pickle=False``: no code runs)."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        return VisionData(z["x_train"], z["y_train"], z["x_test"], z["y_test"],
                          n_classes=int(meta["n_classes"]), name=str(meta["name"]),
                          image_shape=tuple(meta["image_shape"]))
