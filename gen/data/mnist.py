"""MNIST loader (gzip IDX files) with checksum verification and an optional downloader.

Where the files come from, in order:

1. the ``mnist_dir`` argument, else the ``MNIST_DIR`` environment variable: a folder that
   must already hold the four files (nothing is downloaded);
2. else a cache folder (``$MNIST_CACHE``, default ``~/.cache/mnist-fpga/mnist``) where
   missing files are downloaded from ``$MNIST_URL``
   (default ``https://ossci-datasets.s3.amazonaws.com/mnist/``).

Every file is checked by the md5 of its *decompressed* bytes (recompressing a gzip file
changes its own hash but not its content), its IDX magic number, dimensions and count.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import struct
import sys
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_fpga.files import atomic_writer  # one writer for all of build/ (re-exported)
from mnist_fpga.gen.core.errors import UserError, check_creatable, cli_main

DEFAULT_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
DEFAULT_CACHE = Path("~/.cache/mnist-fpga/mnist")
IMAGE_MAGIC = 2051
LABEL_MAGIC = 2049
ROWS = COLS = 28


@dataclass(frozen=True)
class FileSpec:
    """One MNIST file: its name, md5 of the decompressed bytes, IDX magic and item count."""

    name: str
    md5: str
    magic: int
    count: int


FILES: dict[str, FileSpec] = {
    "train-images": FileSpec(
        "train-images-idx3-ubyte.gz", "6bbc9ace898e44ae57da46a324031adb", IMAGE_MAGIC, 60000
    ),
    "train-labels": FileSpec(
        "train-labels-idx1-ubyte.gz", "a25bea736e30d166cdddb491f175f624", LABEL_MAGIC, 60000
    ),
    "test-images": FileSpec(
        "t10k-images-idx3-ubyte.gz", "2646ac647ad5339dbf082846283269ea", IMAGE_MAGIC, 10000
    ),
    "test-labels": FileSpec(
        "t10k-labels-idx1-ubyte.gz", "27ae3e4e09519cfbb04c329615203637", LABEL_MAGIC, 10000
    ),
}
SPLITS = ("train", "test")


def _env(name: str) -> str | None:
    """Return a non-empty environment variable, else None."""
    value = os.environ.get(name, "").strip()
    return value or None


def resolve_dir(mnist_dir: str | Path | None = None) -> tuple[Path, bool]:
    """Return (folder, may_download): explicit folder or ``MNIST_DIR``, else the cache."""
    explicit = mnist_dir if mnist_dir is not None else _env("MNIST_DIR")
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_dir():
            raise UserError(
                f"MNIST folder {str(path)!r} does not exist; set MNIST_DIR to the folder "
                "holding the MNIST .gz files, or unset it to download them"
            )
        return path, False
    cache = _env("MNIST_CACHE")
    return (Path(cache) if cache else DEFAULT_CACHE).expanduser(), True


def _decode(raw: bytes, spec: FileSpec, where: str) -> np.ndarray:
    """Decompress and check one IDX file; return its items as a uint8 array."""
    try:
        data = gzip.decompress(raw)
    except EOFError:
        raise UserError(f"{where}: truncated gzip file (re-fetch it)") from None
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise UserError(f"{where}: corrupt gzip file ({exc})") from None
    header = 16 if spec.magic == IMAGE_MAGIC else 8
    if len(data) < header:
        raise UserError(f"{where}: too short for an IDX header ({len(data)} bytes)")
    magic, count = struct.unpack(">II", data[:8])
    if magic != spec.magic:
        raise UserError(f"{where}: bad IDX magic number {magic} (expected {spec.magic})")
    if count != spec.count:
        raise UserError(f"{where}: holds {count} items, expected {spec.count}")
    shape: tuple[int, ...] = (count,)
    if spec.magic == IMAGE_MAGIC:
        rows, cols = struct.unpack(">II", data[8:16])
        if (rows, cols) != (ROWS, COLS):
            raise UserError(f"{where}: images are {rows}x{cols}, expected {ROWS}x{COLS}")
        shape = (count, rows, cols)
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise UserError(f"{where}: {len(data)} bytes decompressed, expected {expected}")
    digest = hashlib.md5(data).hexdigest()
    if digest != spec.md5:
        raise UserError(f"{where}: checksum mismatch (md5 {digest}, expected {spec.md5})")
    # copy: a writable array that does not pin the decompressed buffer
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def _download(spec: FileSpec, folder: Path) -> np.ndarray:
    """Fetch one file into ``folder`` (temp file, verify, atomic rename); return its items."""
    base = _env("MNIST_URL") or DEFAULT_URL
    url = base.rstrip("/") + "/" + spec.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create MNIST cache folder {str(folder)!r}: {exc}") from None
    print(f"downloading {url}", file=sys.stderr)
    with atomic_writer(folder / spec.name) as out:
        try:
            with urllib.request.urlopen(url, timeout=60) as resp:
                raw = resp.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UserError(
                f"cannot download {url}: {reason}; set MNIST_DIR to a folder holding the "
                "MNIST files, or MNIST_URL to a reachable mirror"
            ) from None
        # raises (and so deletes the temp file) unless the content is the expected one
        items = _decode(raw, spec, f"{spec.name} downloaded from {url}")
        out.write(raw)
    return items


def _load_file(key: str, folder: Path, may_download: bool) -> np.ndarray:
    """Load (downloading into the cache if allowed and needed) and check one file."""
    spec = FILES[key]
    path = folder / spec.name
    if path.is_file():
        try:
            return _decode(path.read_bytes(), spec, str(path))
        except UserError as exc:
            if not may_download:
                raise
            print(f"warning: {exc}; downloading it again", file=sys.stderr)
            path.unlink(missing_ok=True)
    elif not may_download:
        raise UserError(
            f"MNIST file {spec.name} not found in {str(folder)!r}; set MNIST_DIR to the "
            "folder holding it, or unset MNIST_DIR to download it"
        )
    return _download(spec, folder)


def load_mnist(split: str, mnist_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (images uint8 (N,28,28), labels uint8 (N,)) of the "train" or "test" split."""
    if split not in SPLITS:
        raise UserError(f"unknown MNIST split {split!r}; expected 'train' or 'test'")
    folder, may_download = resolve_dir(mnist_dir)
    images = _load_file(f"{split}-images", folder, may_download)
    labels = _load_file(f"{split}-labels", folder, may_download)
    if len(images) != len(labels):
        raise UserError(f"MNIST {split}: {len(images)} images but {len(labels)} labels")
    if labels.size and int(labels.max()) > 9:
        raise UserError(f"MNIST {split}: label {int(labels.max())} out of range 0..9")
    return images, labels


def write_sample(out: Path, count: int, mnist_dir: str | Path | None = None) -> None:
    """Write the first ``count`` test images and labels to ``out`` (npz, atomic)."""
    out = Path(out)
    check_creatable(out, "output file")
    if out.is_dir():
        raise UserError(f"output file {out} exists and is a folder")
    images, labels = load_mnist("test", mnist_dir)
    if not 1 <= count <= len(images):
        raise UserError(f"--count must be between 1 and {len(images)}, got {count}")
    source = (
        f"MNIST test set (t10k), first {count} images and labels, "
        f"{FILES['test-images'].name} md5 {FILES['test-images'].md5}"
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(out) as f:
            np.savez_compressed(
                f,
                images=np.ascontiguousarray(images[:count]),
                labels=np.ascontiguousarray(labels[:count]),
                source=np.str_(source),
            )
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m mnist_fpga.gen.data.mnist sample --out FILE --count N``."""
    parser = argparse.ArgumentParser(prog="mnist-fpga mnist", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sample = sub.add_parser("sample", help="write the first N test images and labels as npz")
    sample.add_argument("--out", type=Path, required=True, help="output .npz file")
    sample.add_argument("--count", type=int, default=100, help="number of images (default 100)")
    sample.add_argument("--mnist-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    args = parser.parse_args(argv)
    if args.cmd == "sample":
        write_sample(args.out, args.count, args.mnist_dir)
        print(f"wrote {args.out} ({args.count} test images)")
    return 0


if __name__ == "__main__":
    cli_main(main)
