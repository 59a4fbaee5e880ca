"""The committed 100-image sample (``data/mnist_test_100.npz``) and its reader.

Apart from :mod:`gen.hdl.generate` (which re-exports both names), so that the whole-network
bench, which runs inside every simulator start, reads it without importing jinja2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.model import check_images
from mnist_fpga.gen.core.quant import read_npz
from mnist_fpga.paths import DEFAULT_SAMPLE as DEFAULT_SAMPLE


def load_sample(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a committed image sample (``images`` uint8 (N,28,28), ``labels``)."""
    path = Path(path)
    data = read_npz(path, "image sample")
    missing = [k for k in ("images", "labels") if k not in data]
    if missing:
        raise UserError(f"image sample {path} has no {missing[0]!r} array")
    images, labels = data["images"], data["labels"]
    try:
        check_images(images)
    except UserError as exc:
        raise UserError(f"image sample {path}: {exc}") from None
    if labels.shape != (images.shape[0],):
        raise UserError(
            f"image sample {path}: labels shape {labels.shape} does not match "
            f"{images.shape[0]} images"
        )
    return images, labels
