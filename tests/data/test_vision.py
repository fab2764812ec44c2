"""Vision loaders: IDX / CIFAR binary parsing, checksums, offline load, download, prepare, npz.

Nothing here touches the network: published files are replaced by tiny fakes written
to tmp_path, and ``urllib.request.urlopen`` is monkeypatched wherever it could be reached.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import struct
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from theorydl.data import vision
from theorydl.data.vision import (
    ChecksumMismatch,
    DatasetUnavailable,
    VisionData,
    download,
    load,
    load_npz,
    prepare,
    read_cifar10_binary,
    read_idx,
    save_npz,
    stratified_choice,
)

# ------------------------------------------------------------------------ fakes


def idx_bytes(array: np.ndarray) -> bytes:
    """Uncompressed IDX encoding of a uint8 array: magic 00 00 08 ndim, big-endian dims."""
    assert array.dtype == np.uint8
    return (bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.tobytes())


def fake_mnist_payloads(rng: np.random.Generator) -> tuple[dict[str, bytes], dict]:
    """Gzipped IDX payloads by file name, plus the arrays they encode."""
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.array([3, 1, 4, 1, 5], dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.array([9, 2, 6], dtype=np.uint8),
    }
    # mtime=0 so that the gzip bytes, hence their MD5, do not depend on the clock.
    payloads = {k: gzip.compress(idx_bytes(a), mtime=0) for k, a in arrays.items()}
    return payloads, arrays


def fake_cifar_payload(rng: np.random.Generator):
    """A cifar-10-binary.tar.gz with 2 records per batch file, plus the encoded arrays."""
    buf = io.BytesIO()
    images, labels = {}, {}
    names = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for k, name in enumerate(names):
            images[name] = rng.integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
            labels[name] = np.array([k, 9 - k], dtype=np.uint8)
            records = np.concatenate([labels[name][:, None],
                                      images[name].reshape(2, -1)], axis=1)
            raw = records.tobytes()
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue(), images, labels, names


def md5(b: bytes) -> str:
    return hashlib.md5(b).hexdigest()


def patch_md5s(monkeypatch, name: str, payloads: dict[str, bytes]) -> None:
    """Make the checksum table expect the fakes' MD5s."""
    table = tuple(dataclasses.replace(r, md5=md5(payloads[r.filename]))
                  for r in vision.SOURCES[name])
    monkeypatch.setitem(vision.SOURCES, name, table)


def write_files(folder: Path, payloads: dict[str, bytes]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for filename, payload in payloads.items():
        (folder / filename).write_bytes(payload)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def serve(monkeypatch, payloads_by_url: dict[str, bytes]) -> list[str]:
    """Serve bytes from memory in place of urlopen; returns the list of URLs fetched."""
    fetched = []

    def fake_urlopen(url, timeout=None):
        fetched.append(url)
        return io.BytesIO(payloads_by_url[url])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    return fetched


# ------------------------------------------------------------------- checksum table


def test_published_table_matches_the_brief():
    files = {n: {r.filename: (r.url, r.md5) for r in rs} for n, rs in vision.SOURCES.items()}
    assert files["mnist"]["train-images-idx3-ubyte.gz"] == (
        "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
        "f68b3c2dcbeaaa9fbdd348bbdeb94873")
    assert files["fashion_mnist"]["t10k-labels-idx1-ubyte.gz"] == (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/t10k-labels-idx1-ubyte.gz",
        "bb300cfdad3c16e7a12a480ee83cd310")
    assert files["cifar10"] == {"cifar-10-binary.tar.gz": (
        "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
        "c32a1d4ab5d03f1284b67883e8d87530")}
    for name in ("mnist", "fashion_mnist"):
        assert len(files[name]) == 4
        assert all(len(m) == 32 for _, m in files[name].values())


# ------------------------------------------------------------------------ IDX / MNIST


def test_read_idx_parses_magic_dims_and_values(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "a.idx").write_bytes(idx_bytes(a))
    (tmp_path / "a.idx.gz").write_bytes(gzip.compress(idx_bytes(a)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx.gz"), a)
    # Big-endian int32 payload (type code 0x0C) comes back in native order.
    b = np.array([1, -2, 70000], dtype=">i4")
    (tmp_path / "b.idx").write_bytes(bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 3)
                                     + b.tobytes())
    np.testing.assert_array_equal(read_idx(tmp_path / "b.idx"), [1, -2, 70000])


def test_read_idx_rejects_bad_magic_and_truncation(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match="not an IDX"):
        read_idx(tmp_path / "bad")
    a = np.zeros((2, 2), dtype=np.uint8)
    (tmp_path / "short").write_bytes(idx_bytes(a)[:-1])
    with pytest.raises(ValueError, match="header says"):
        read_idx(tmp_path / "short")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_load_idx_dataset_values_shapes_order(tmp_path, monkeypatch, no_network, name):
    payloads, arrays = fake_mnist_payloads(np.random.default_rng(0))
    write_files(tmp_path / name, payloads)
    patch_md5s(monkeypatch, name, payloads)
    d = load(name, tmp_path)
    assert isinstance(d, VisionData)
    assert (d.name, d.n_classes, d.image_shape) == (name, 10, (1, 28, 28))
    assert d.x_train.shape == (5, 784) and d.x_train.dtype == np.float32
    assert d.x_test.shape == (3, 784)
    assert d.y_train.dtype == np.int64
    np.testing.assert_array_equal(d.y_train, [3, 1, 4, 1, 5])
    np.testing.assert_array_equal(d.y_test, [9, 2, 6])
    np.testing.assert_array_equal(
        np.rint(d.x_train * 255).astype(np.uint8).reshape(5, 28, 28),
        arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(
        np.rint(d.x_test * 255).astype(np.uint8).reshape(3, 28, 28),
        arrays["t10k-images-idx3-ubyte.gz"])
    assert 0.0 <= d.x_train.min() and d.x_train.max() <= 1.0


def test_load_detects_checksum_mismatch(tmp_path, monkeypatch, no_network):
    payloads, _ = fake_mnist_payloads(np.random.default_rng(0))
    write_files(tmp_path / "mnist", payloads)
    # Real published MD5s: the fakes cannot match them.
    with pytest.raises(ChecksumMismatch, match="train-images-idx3-ubyte.gz"):
        load("mnist", tmp_path)
    patch_md5s(monkeypatch, "mnist", payloads)
    load("mnist", tmp_path)
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.array([0, 0, 0], dtype=np.uint8)), mtime=0))
    with pytest.raises(ChecksumMismatch, match="t10k-labels"):
        load("mnist", tmp_path)


# ---------------------------------------------------------------------------- CIFAR


def test_cifar_binary_parse_and_load(tmp_path, monkeypatch, no_network):
    payload, images, labels, names = fake_cifar_payload(np.random.default_rng(1))
    write_files(tmp_path / "cifar10", {"cifar-10-binary.tar.gz": payload})

    x_tr, y_tr, x_te, y_te = read_cifar10_binary(tmp_path / "cifar10" / "cifar-10-binary.tar.gz")
    assert x_tr.shape == (10, 3, 32, 32) and x_te.shape == (2, 3, 32, 32)
    np.testing.assert_array_equal(x_tr, np.concatenate([images[n] for n in names[:5]]))
    np.testing.assert_array_equal(y_tr, [0, 9, 1, 8, 2, 7, 3, 6, 4, 5])
    np.testing.assert_array_equal(x_te, images["test_batch.bin"])
    np.testing.assert_array_equal(y_te, [5, 4])

    with pytest.raises(ChecksumMismatch):
        load("cifar10", tmp_path)
    patch_md5s(monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": payload})
    d = load("cifar10", tmp_path)
    assert (d.name, d.image_shape) == ("cifar10", (3, 32, 32))
    assert d.x_train.shape == (10, 3072) and d.x_train.dtype == np.float32
    # Rows are CHW-flattened: the first 1024 values are the red plane.
    np.testing.assert_allclose(d.x_train[0, :1024] * 255,
                               images["data_batch_1.bin"][0, 0].ravel(), atol=1e-3)
    np.testing.assert_array_equal(d.y_test, [5, 4])


# ---------------------------------------------------------- offline load, download


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_load_missing_files_raises_without_network(tmp_path, no_network, name):
    with pytest.raises(DatasetUnavailable) as err:
        load(name, tmp_path)
    message = str(err.value)
    assert isinstance(err.value, RuntimeError)
    assert repr(name) in message
    for remote in vision.SOURCES[name]:
        assert remote.filename in message and remote.url in message
    assert "theorydl data width" in message and "dvc repro width_data" in message
    assert "by hand" in message


def test_load_names_only_the_missing_files(tmp_path, monkeypatch, no_network):
    payloads, _ = fake_mnist_payloads(np.random.default_rng(0))
    del payloads["t10k-images-idx3-ubyte.gz"]
    write_files(tmp_path / "mnist", payloads)
    with pytest.raises(DatasetUnavailable) as err:
        load("mnist", tmp_path)
    assert "t10k-images-idx3-ubyte.gz" in str(err.value)
    assert "train-images-idx3-ubyte.gz" not in str(err.value)


def test_download_writes_verified_files_then_load_works(tmp_path, monkeypatch):
    payloads, _ = fake_mnist_payloads(np.random.default_rng(0))
    patch_md5s(monkeypatch, "mnist", payloads)
    by_url = {r.url: payloads[r.filename] for r in vision.SOURCES["mnist"]}
    fetched = serve(monkeypatch, by_url)

    paths = download("mnist", tmp_path)
    assert sorted(p.name for p in paths) == sorted(payloads)
    for p in paths:
        assert p.read_bytes() == payloads[p.name]
    assert sorted(fetched) == sorted(by_url)
    # No temporary files left beside the data.
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(payloads)

    # Verified files are kept: a second call fetches nothing.
    fetched.clear()
    download("mnist", tmp_path)
    assert fetched == []
    assert load("mnist", tmp_path).x_train.shape == (5, 784)


def test_download_corrupted_payload_raises_and_leaves_no_file(tmp_path, monkeypatch):
    payload, *_ = fake_cifar_payload(np.random.default_rng(1))
    patch_md5s(monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": payload})
    (remote,) = vision.SOURCES["cifar10"]
    corrupted = payload[:-1] + bytes([payload[-1] ^ 0xFF])
    serve(monkeypatch, {remote.url: corrupted})
    with pytest.raises(ChecksumMismatch, match=remote.md5):
        download("cifar10", tmp_path)
    assert list((tmp_path / "cifar10").iterdir()) == []


def test_download_replaces_a_bad_existing_file(tmp_path, monkeypatch):
    payload, *_ = fake_cifar_payload(np.random.default_rng(1))
    patch_md5s(monkeypatch, "cifar10", {"cifar-10-binary.tar.gz": payload})
    (remote,) = vision.SOURCES["cifar10"]
    write_files(tmp_path / "cifar10", {remote.filename: b"stale"})
    serve(monkeypatch, {remote.url: payload})
    (path,) = download("cifar10", tmp_path)
    assert path.read_bytes() == payload


def test_digits_needs_no_download(tmp_path, no_network):
    assert download("digits", tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_unknown_dataset_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        load("svhn", tmp_path)


# --------------------------------------------------------------------------- digits


def test_digits_shapes_range_and_stratified_deterministic_split(no_network):
    d = load("digits", seed=3)
    assert (d.name, d.n_classes, d.image_shape) == ("digits", 10, (1, 8, 8))
    assert d.x_train.shape == (1198, 64) and d.x_test.shape == (599, 64)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int64
    both = np.concatenate([d.x_train, d.x_test])
    assert both.min() == 0.0 and both.max() == 1.0

    again = load("digits", seed=3)
    np.testing.assert_array_equal(d.x_test, again.x_test)
    np.testing.assert_array_equal(d.y_train, again.y_train)
    other = load("digits", seed=4)
    assert not np.array_equal(d.x_test, other.x_test)

    # Stratified: each class's share of the test set is within one sample of 1/3.
    all_counts = np.bincount(np.concatenate([d.y_train, d.y_test]), minlength=10)
    test_counts = np.bincount(d.y_test, minlength=10)
    assert np.all(np.abs(test_counts - all_counts / 3) <= 1)


def test_stratified_choice_exact_size_and_proportions():
    y = np.repeat(np.arange(3), [50, 30, 20])
    idx = stratified_choice(y, 10, np.random.default_rng(0))
    assert idx.shape == (10,) and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(np.bincount(y[idx]), [5, 3, 2])
    idx = stratified_choice(y, 7, np.random.default_rng(0))
    assert idx.size == 7
    assert np.all(np.abs(np.bincount(y[idx], minlength=3) - 7 * np.array([.5, .3, .2])) < 1)


# -------------------------------------------------------------------------- prepare


@pytest.fixture(scope="module")
def digits() -> VisionData:
    return load("digits", seed=0)


def test_prepare_subset_relabel_count_and_untouched_test(digits):
    y_before = digits.y_train.copy()
    p = prepare(digits, train_subset=200, random_label_fraction=0.25, seed=7)
    assert p.x_train.shape == (200, 64) and p.y_train.shape == (200,)
    assert p.x_test is digits.x_test and p.y_test is digits.y_test
    np.testing.assert_array_equal(digits.y_train, y_before)  # input not modified

    # Recover the subset from its pixels, then count the re-drawn labels.
    clean = prepare(digits, train_subset=200, random_label_fraction=0.0, seed=7)
    np.testing.assert_array_equal(clean.x_train, p.x_train)
    rng = np.random.default_rng(7)
    stratified_choice(digits.y_train, 200, rng)
    chosen = rng.choice(200, size=50, replace=False)
    changed = np.flatnonzero(p.y_train != clean.y_train)
    assert set(changed) <= set(chosen)
    assert 30 <= changed.size <= 50  # ~ 50 * 9/10 differ; redraws may hit the old label
    assert set(np.unique(p.y_train)) <= set(range(10))


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.37, 1.0])
def test_prepare_redraws_exactly_round_fraction_n(digits, fraction):
    # A redrawn label may equal the old one, so counting changed labels cannot prove
    # the count; replaying the documented draws from the same seed can.
    n = digits.y_train.size
    k = round(fraction * n)
    p = prepare(digits, train_subset=None, random_label_fraction=fraction, seed=5)
    rng = np.random.default_rng(5)
    chosen = rng.choice(n, size=k, replace=False)
    expected = digits.y_train.copy()
    expected[chosen] = rng.integers(0, 10, size=k)
    np.testing.assert_array_equal(p.y_train, expected)
    untouched = np.setdiff1d(np.arange(n), chosen)
    np.testing.assert_array_equal(p.y_train[untouched], digits.y_train[untouched])
    assert p.x_train is digits.x_train
    if fraction == 1.0:  # all labels redrawn: about 1/10 keep their class by chance
        assert 0.8 < np.mean(p.y_train != digits.y_train) < 0.97


def test_prepare_is_deterministic_per_seed(digits):
    a = prepare(digits, train_subset=300, random_label_fraction=0.5, seed=11)
    b = prepare(digits, train_subset=300, random_label_fraction=0.5, seed=11)
    c = prepare(digits, train_subset=300, random_label_fraction=0.5, seed=12)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert not np.array_equal(a.y_train, c.y_train)


def test_prepare_rejects_bad_options(digits):
    with pytest.raises(ValueError):
        prepare(digits, train_subset=None, random_label_fraction=1.5, seed=0)
    with pytest.raises(ValueError):
        prepare(digits, train_subset=0, random_label_fraction=0.0, seed=0)
    with pytest.raises(ValueError):
        prepare(digits, train_subset=10_000, random_label_fraction=0.0, seed=0)


# ------------------------------------------------------------------------------ npz


def test_npz_round_trip_atomic(digits, tmp_path):
    p = prepare(digits, train_subset=100, random_label_fraction=0.2, seed=1)
    path = tmp_path / "out" / "width_data.npz"
    save_npz(p, path)
    assert [f.name for f in path.parent.iterdir()] == ["width_data.npz"]  # no temp left
    q = load_npz(path)
    for field in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(q, field), getattr(p, field))
        assert getattr(q, field).dtype == getattr(p, field).dtype
    assert (q.n_classes, q.name, q.image_shape) == (10, "digits", (1, 8, 8))
    save_npz(q, path)  # overwriting an existing output works
    np.testing.assert_array_equal(load_npz(path).y_train, p.y_train)


def test_load_npz_refuses_pickles(tmp_path, monkeypatch):
    path = tmp_path / "evil.npz"
    meta = '{"n_classes": 10, "name": "t", "image_shape": [1]}'
    # A well-formed file except that x_train is a pickled object array.
    np.savez(path, x_train=np.array([{"a": 1}], dtype=object), meta=np.array(meta),
             y_train=np.zeros(1, np.int64), x_test=np.zeros((1, 1), np.float32),
             y_test=np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="allow_pickle"):
        load_npz(path)

    seen = {}
    real_load = np.load

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    with pytest.raises(ValueError):
        load_npz(path)
    assert seen.get("allow_pickle") is False


def test_visiondata_validates_dtypes_and_shapes():
    x = np.zeros((2, 4), np.float32)
    y = np.zeros(2, np.int64)
    VisionData(x, y, x, y, n_classes=10, name="t", image_shape=(1, 2, 2))
    with pytest.raises(ValueError, match="x_train"):
        VisionData(x.astype(np.float64), y, x, y, n_classes=10, name="t", image_shape=(1, 2, 2))
    with pytest.raises(ValueError, match="y_test"):
        VisionData(x, y, x, y.astype(np.int32), n_classes=10, name="t", image_shape=(1, 2, 2))
    with pytest.raises(ValueError, match="labels outside"):
        VisionData(x, y + 10, x, y, n_classes=10, name="t", image_shape=(1, 2, 2))
