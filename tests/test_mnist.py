"""Tests of gen.data.mnist: IDX loading, integrity checks and the downloader (local HTTP server)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import shutil
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.data import mnist

REAL_DIR = os.environ.get("MNIST_DIR") or None
needs_real = pytest.mark.skipif(REAL_DIR is None, reason="MNIST_DIR not set")
REPO = Path(__file__).resolve().parent.parent

TEST_LABEL_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
TRAIN_LABEL_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test sees the caller's MNIST variables or downloads into the real cache."""
    for name in ("MNIST_DIR", "MNIST_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MNIST_CACHE", str(tmp_path / "cache"))


def _idx_bytes(magic: int, dims: tuple[int, ...], items: np.ndarray) -> bytes:
    return struct.pack(f">{1 + len(dims)}I", magic, *dims) + items.astype(np.uint8).tobytes()


@pytest.fixture
def synthetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A folder with small synthetic test-split files (7 images); FILES patched to match."""
    folder = tmp_path / "synth"
    folder.mkdir()
    rng = np.random.default_rng(1)
    n = 7
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    for key, data in (
        ("test-images", _idx_bytes(mnist.IMAGE_MAGIC, (n, 28, 28), images)),
        ("test-labels", _idx_bytes(mnist.LABEL_MAGIC, (n,), labels)),
    ):
        spec = mnist.FILES[key]
        (folder / spec.name).write_bytes(gzip.compress(data))
        monkeypatch.setitem(
            mnist.FILES,
            key,
            mnist.FileSpec(spec.name, hashlib.md5(data).hexdigest(), spec.magic, n),
        )
    return folder, labels


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 (free port) serving an empty temp folder: (url, folder)."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/mnist", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _serve(root: Path, src: Path) -> None:
    """Copy the test-split files of ``src`` under ``root/mnist``."""
    (root / "mnist").mkdir(exist_ok=True)
    for key in ("test-images", "test-labels"):
        name = mnist.FILES[key].name
        shutil.copy(src / name, root / "mnist" / name)


# --- real data -------------------------------------------------------------------------------


@needs_real
def test_load_test_split_real() -> None:
    images, labels = mnist.load_mnist("test", REAL_DIR)  # speed: bench/bench_goals.py
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == TEST_LABEL_COUNTS
    assert labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert images.max() == 255 and images.min() == 0


@needs_real
def test_load_train_split_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MNIST_DIR", REAL_DIR)
    images, labels = mnist.load_mnist("train")
    assert images.shape == (60000, 28, 28) and labels.shape == (60000,)
    assert np.bincount(labels, minlength=10).tolist() == TRAIN_LABEL_COUNTS


@needs_real
def test_committed_sample_matches_real_data() -> None:
    images, labels = mnist.load_mnist("test", REAL_DIR)
    with np.load(REPO / "data" / "mnist_test_100.npz", allow_pickle=False) as z:
        assert z["images"].dtype == np.uint8 and z["labels"].dtype == np.uint8
        np.testing.assert_array_equal(z["images"], images[:100])
        np.testing.assert_array_equal(z["labels"], labels[:100])
        assert "MNIST" in str(z["source"])


@needs_real
def test_download_real_files(server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    url, root = server
    _serve(root, Path(REAL_DIR))
    monkeypatch.setenv("MNIST_URL", url)
    images, labels = mnist.load_mnist("test")
    assert images.shape == (10000, 28, 28)
    assert np.bincount(labels, minlength=10).tolist() == TEST_LABEL_COUNTS


# --- synthetic data --------------------------------------------------------------------------


def test_load_synthetic_from_argument_and_env(
    synthetic: tuple[Path, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, labels = synthetic
    images, got = mnist.load_mnist("test", folder)
    assert images.shape == (7, 28, 28) and images.dtype == np.uint8
    np.testing.assert_array_equal(got, labels)
    monkeypatch.setenv("MNIST_DIR", str(folder))
    images2, _ = mnist.load_mnist("test")
    np.testing.assert_array_equal(images2, images)


def test_download_into_cache(
    synthetic: tuple[Path, np.ndarray],
    server: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    folder, labels = synthetic
    url, root = server
    _serve(root, folder)
    monkeypatch.setenv("MNIST_URL", url + "/")  # a trailing slash must not matter
    images, got = mnist.load_mnist("test")
    np.testing.assert_array_equal(got, labels)
    cache = tmp_path / "cache"
    names = sorted(p.name for p in cache.iterdir())
    assert names == sorted(mnist.FILES[k].name for k in ("test-images", "test-labels"))
    # the cached copy is used from now on: nothing left to download
    shutil.rmtree(root / "mnist")
    images2, _ = mnist.load_mnist("test")
    np.testing.assert_array_equal(images2, images)


def test_download_checksum_mismatch_leaves_no_file(
    synthetic: tuple[Path, np.ndarray],
    server: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    folder, _ = synthetic
    url, root = server
    _serve(root, folder)
    spec = mnist.FILES["test-images"]
    monkeypatch.setitem(
        mnist.FILES, "test-images", mnist.FileSpec(spec.name, "0" * 32, spec.magic, spec.count)
    )
    monkeypatch.setenv("MNIST_URL", url)
    with pytest.raises(UserError, match=r"t10k-images-idx3-ubyte\.gz.*checksum mismatch"):
        mnist.load_mnist("test")
    cache = tmp_path / "cache"
    assert not cache.exists() or list(cache.iterdir()) == []


def test_download_missing_on_server(
    server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url, _ = server
    monkeypatch.setenv("MNIST_URL", url)
    with pytest.raises(UserError, match=r"cannot download .*t10k-images-idx3-ubyte\.gz"):
        mnist.load_mnist("test")
    assert list((tmp_path / "cache").iterdir()) == []


def test_corrupt_cached_file_is_downloaded_again(
    synthetic: tuple[Path, np.ndarray],
    server: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    folder, labels = synthetic
    url, root = server
    _serve(root, folder)
    cache = tmp_path / "cache"
    cache.mkdir()
    name = mnist.FILES["test-labels"].name
    (cache / name).write_bytes(b"garbage")
    monkeypatch.setenv("MNIST_URL", url)
    _, got = mnist.load_mnist("test")
    np.testing.assert_array_equal(got, labels)
    assert (cache / name).read_bytes() == (folder / name).read_bytes()


def test_truncated_gzip(synthetic: tuple[Path, np.ndarray]) -> None:
    folder, _ = synthetic
    path = folder / mnist.FILES["test-images"].name
    path.write_bytes(path.read_bytes()[:-20])
    with pytest.raises(UserError, match=r"t10k-images-idx3-ubyte\.gz.*truncated"):
        mnist.load_mnist("test", folder)


def test_not_gzip(synthetic: tuple[Path, np.ndarray]) -> None:
    folder, _ = synthetic
    (folder / mnist.FILES["test-labels"].name).write_bytes(b"not a gzip file at all")
    with pytest.raises(UserError, match=r"t10k-labels-idx1-ubyte\.gz.*corrupt gzip"):
        mnist.load_mnist("test", folder)


def test_checksum_mismatch_explicit_dir(synthetic: tuple[Path, np.ndarray]) -> None:
    folder, _ = synthetic
    path = folder / mnist.FILES["test-images"].name
    data = bytearray(gzip.decompress(path.read_bytes()))
    data[-1] ^= 0xFF  # same size and header, different content
    path.write_bytes(gzip.compress(bytes(data)))
    with pytest.raises(UserError, match=r"t10k-images-idx3-ubyte\.gz.*checksum mismatch"):
        mnist.load_mnist("test", folder)
    assert path.exists()  # a user's own file is reported, never deleted


def test_bad_magic(synthetic: tuple[Path, np.ndarray]) -> None:
    folder, _ = synthetic
    path = folder / mnist.FILES["test-labels"].name
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(struct.pack(">I", 2051) + data[4:]))
    with pytest.raises(UserError, match=r"t10k-labels-idx1-ubyte\.gz.*magic number 2051"):
        mnist.load_mnist("test", folder)


def test_wrong_count_and_short_content(synthetic: tuple[Path, np.ndarray]) -> None:
    folder, _ = synthetic
    path = folder / mnist.FILES["test-images"].name
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-28]))
    with pytest.raises(UserError, match=r"t10k-images-idx3-ubyte\.gz.*expected"):
        mnist.load_mnist("test", folder)
    path.write_bytes(gzip.compress(data[:4] + struct.pack(">I", 6) + data[8:]))
    with pytest.raises(UserError, match=r"holds 6 items, expected 7"):
        mnist.load_mnist("test", folder)


def test_missing_file_with_explicit_dir(
    synthetic: tuple[Path, np.ndarray], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder, _ = synthetic
    (folder / mnist.FILES["test-labels"].name).unlink()
    monkeypatch.setenv("MNIST_URL", "http://127.0.0.1:9/")  # must never be contacted
    with pytest.raises(UserError, match=r"t10k-labels-idx1-ubyte\.gz not found.*MNIST_DIR"):
        mnist.load_mnist("test", folder)
    monkeypatch.setenv("MNIST_DIR", str(folder))
    with pytest.raises(UserError, match=r"t10k-labels-idx1-ubyte\.gz not found.*MNIST_DIR"):
        mnist.load_mnist("test")
    assert not (tmp_path / "cache").exists()


def test_bad_split_and_missing_dir(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown MNIST split 'val'"):
        mnist.load_mnist("val", tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        mnist.load_mnist("test", tmp_path / "nowhere")


def test_sample_cli(synthetic: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    folder, labels = synthetic
    out = tmp_path / "sub" / "sample.npz"
    assert (
        mnist.main(["sample", "--out", str(out), "--count", "5", "--mnist-dir", str(folder)]) == 0
    )
    images, _ = mnist.load_mnist("test", folder)
    with np.load(out, allow_pickle=False) as z:
        assert sorted(z.files) == ["images", "labels", "source"]
        assert z["images"].shape == (5, 28, 28) and z["images"].dtype == np.uint8
        np.testing.assert_array_equal(z["images"], images[:5])
        np.testing.assert_array_equal(z["labels"], labels[:5])
    assert [p.name for p in out.parent.iterdir()] == ["sample.npz"]  # no temp file left
    with pytest.raises(UserError, match="--count must be between 1 and 7"):
        mnist.main(["sample", "--out", str(out), "--count", "8", "--mnist-dir", str(folder)])
