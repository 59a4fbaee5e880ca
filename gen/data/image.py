"""A user's own digit image -> one MNIST image (28x28 uint8, a bright digit on dark).

``make sim IMAGE=digit.png`` (``mnist-fpga sim --image PATH``) classifies it. The
conversion is one fixed integer rule (docs/numerics.md, section 1a):

1. gray levels 0..255: a PGM (P5 binary or P2 ASCII, read here, any maxval 1..65535)
   is scaled as ``(v * 255 + maxval // 2) // maxval``; any other file is decoded by
   Pillow, its alpha composited over white and its colour turned to gray by the integer
   ITU-R 601 luma ``(299 R + 587 G + 114 B + 500) // 1000`` (a gray pixel keeps its value);
2. inverted (``255 - g``) when the background is light: the mean of the border pixels
   (first and last row and column) above 127.5, as for dark ink on paper (MNIST digits
   are bright on black);
3. centred on a black square of side ``max(height, width)`` (the aspect ratio is kept);
4. shrunk (or grown) to 28x28 by area averaging: each output pixel is the mean of the
   square's pixels weighted by how much of each it covers, rounded half up. All in int64.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mnist_fpga.gen.core.errors import UserError

MNIST_SIDE = 28
MAX_SIDE = 4096  # larger images are refused before their pixels are read
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PGM_HEADER_MAX = 1 << 16  # bytes in which a PGM header (comments included) must end
_PGM_TOKEN = re.compile(rb"(?:\s|#[^\n\r]*)*(\S+)")  # whitespace and comments, then a token
NO_PILLOW = "needs the Python package Pillow (pip install pillow); a PGM (P5 or P2) needs nothing"


def load_image(path: str | Path) -> np.ndarray:
    """The file at ``path`` as one MNIST image: (28, 28) uint8 (module docstring's rule)."""
    return to_mnist(read_gray(path))


def read_gray(path: str | Path) -> np.ndarray:
    """The gray levels (H, W) uint8 of a PGM, or of any image Pillow reads (step 1)."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"image file {path} is a folder, not an image")
    if not path.is_file():
        raise UserError(f"image file {path} does not exist")
    with path.open("rb") as f:
        head = f.read(len(PNG_MAGIC))
    if head[:2] in (b"P5", b"P2"):
        return read_pgm(path)
    return _read_with_pillow(path, head)


def _check_size(path: Path, width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise UserError(f"image file {path} is {width}x{height} pixels: an image needs at "
                        "least 1x1")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise UserError(f"image file {path} is {width}x{height} pixels, more than the "
                        f"{MAX_SIDE}x{MAX_SIDE} read (crop or scale it down)")


def read_pgm(path: Path) -> np.ndarray:
    """A P5 (binary) or P2 (ASCII) PGM's first image, scaled to 0..255 (step 1)."""
    with path.open("rb") as f:
        head = f.read(_PGM_HEADER_MAX)
        fields, pos = [], 2
        for _ in range(3):  # width, height, maxval
            m = _PGM_TOKEN.match(head, pos)
            if m is None or not m.group(1).isdigit():
                got = "the end of the file" if m is None else repr(m.group(1).decode("latin-1"))
                raise UserError(f"image file {path}: PGM header needs width, height and maxval "
                                f"as numbers, found {got}")
            fields.append(int(m.group(1)))
            pos = m.end()
        width, height, maxval = fields
        _check_size(path, width, height)
        if not 1 <= maxval <= 65535:
            raise UserError(f"image file {path}: PGM maxval {maxval} is out of range: it must "
                            "be 1..65535")
        n = width * height
        if head[:2] == b"P5":
            f.seek(pos + 1)  # one whitespace character ends the header
            size = 1 if maxval < 256 else 2
            data = f.read(n * size)
            if len(data) < n * size:
                raise UserError(f"image file {path}: truncated PGM: {width}x{height} = {n} "
                                f"pixels declared, {len(data) // size} present")
            values = np.frombuffer(data, dtype=np.uint8 if size == 1 else ">u2").astype(np.int64)
        else:
            f.seek(pos)
            tokens = f.read().split()[:n]
            if len(tokens) < n:
                raise UserError(f"image file {path}: truncated PGM: {width}x{height} = {n} "
                                f"pixels declared, {len(tokens)} present")
            bad = next((i for i, t in enumerate(tokens) if not t.isdigit()), None)
            if bad is not None:
                raise UserError(f"image file {path}: PGM pixel {bad} is "
                                f"{tokens[bad].decode('latin-1')!r}, not a number")
            values = np.array([int(t) for t in tokens], dtype=np.int64)
    if (over := np.flatnonzero(values > maxval)).size:
        raise UserError(f"image file {path}: PGM pixel {int(over[0])} is "
                        f"{int(values[over[0]])}, above the maxval {maxval}")
    gray = (values * 255 + maxval // 2) // maxval
    return gray.reshape(height, width).astype(np.uint8)


def _read_with_pillow(path: Path, head: bytes) -> np.ndarray:
    """Any image Pillow decodes, as gray levels 0..255 by this module's integer rule."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        if head == PNG_MAGIC:
            raise UserError(f"image file {path} is a PNG: reading it {NO_PILLOW}") from None
        raise UserError(f"image file {path} is not a PGM (P5 or P2) image; other formats "
                        f"(PNG, JPEG, ...) {NO_PILLOW.split(';')[0]}") from None
    try:
        with Image.open(path) as im:
            _check_size(path, *im.size)
            im.load()  # a truncated or corrupt file fails here
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit gray: scale as a PGM
                v = np.clip(np.asarray(im, dtype=np.int64), 0, 65535)
                return ((v * 255 + 32767) // 65535).astype(np.uint8)
            rgba = np.asarray(im.convert("RGBA"), dtype=np.int64)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        if isinstance(exc, UnidentifiedImageError) and head != PNG_MAGIC:
            raise UserError(f"image file {path} is not an image (PNG, PGM P5/P2, or another "
                            "format Pillow reads)") from None
        raise UserError(f"image file {path} is a truncated or corrupt image: Pillow cannot "
                        "decode it") from None
    alpha = rgba[..., 3]
    rgb = (rgba[..., :3] * alpha[..., None] + 255 * (255 - alpha[..., None]) + 127) // 255
    gray = (299 * rgb[..., 0] + 587 * rgb[..., 1] + 114 * rgb[..., 2] + 500) // 1000
    return gray.astype(np.uint8)


def is_light_background(gray: np.ndarray) -> bool:
    """Step 2: the mean of the border pixels (each counted once) is above 127.5."""
    g = np.asarray(gray, dtype=np.int64)
    border = np.ones(g.shape, dtype=bool)
    border[1:-1, 1:-1] = False
    return 2 * int(g[border].sum()) > 255 * int(border.sum())


def area_weights(n: int, m: int = MNIST_SIDE) -> np.ndarray:
    """(m, n) int64: how much of source pixel r output pixel i covers, in 1/m of a pixel.

    Output i spans ``[i*n, (i+1)*n)`` and source r ``[r*m, (r+1)*m)`` on a grid of ``n*m``
    steps; each row sums to ``n``.
    """
    i = np.arange(m, dtype=np.int64)[:, None]
    r = np.arange(n, dtype=np.int64)[None, :]
    return np.clip(np.minimum((i + 1) * n, (r + 1) * m) - np.maximum(i * n, r * m), 0, None)


def to_mnist(gray: np.ndarray) -> np.ndarray:
    """Steps 2 to 4 on gray levels (H, W) uint8: the (28, 28) uint8 MNIST image."""
    g = np.asarray(gray, dtype=np.int64)
    if is_light_background(g):
        g = 255 - g
    h, w = g.shape
    n = max(h, w)
    weights = area_weights(n)
    top, left = (n - h) // 2, (n - w) // 2  # the black padding adds nothing to a sum
    rows, cols = weights[:, top:top + h], weights[:, left:left + w]
    total = rows @ g @ cols.T  # at most 255 * n * n: int64 is exact
    return ((total + n * n // 2) // (n * n)).astype(np.uint8)
