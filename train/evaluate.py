"""Float evaluation of a saved model (``models/<net>.npz``) in pure numpy (no torch).

Layout (see docs/models.md): ``W{k}`` float32 (n_neurons, n_inputs), ``b{k}`` float32
(n_neurons,) for k = 0..L-1; ReLU after every layer but the last; input x = pixel / 255.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.model import decide, targets
from mnist_fpga.gen.core.quant import float_forward, load_float_weights


def forward(layers: list[tuple[np.ndarray, np.ndarray]], images: np.ndarray) -> np.ndarray:
    """The float32 output logits (N, n_out) for uint8 images (N,28,28) or (N,784)."""
    weights = {}
    for k, (w, b) in enumerate(layers):
        weights[f"W{k}"], weights[f"b{k}"] = w, b
    return float_forward(weights, np.asarray(images), dtype=np.float32)[-1]


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction correct; a single-output net answers "is this digit a 0"."""
    return float(np.mean(decide(logits) == targets(labels, logits.shape[1])))


def float_accuracy(npz_path: str | Path, images: np.ndarray, labels: np.ndarray) -> float:
    """Float accuracy of the saved model on ``images`` (uint8) and ``labels``."""
    if len(images) != len(labels) or len(images) == 0:
        raise UserError(f"need as many images as labels (got {len(images)} and {len(labels)})")
    weights = load_float_weights(npz_path)  # validates the layout, one-line errors
    n_layers = sum(1 for key in weights if key.startswith("W"))
    layers = [(weights[f"W{k}"], weights[f"b{k}"]) for k in range(n_layers)]
    chunk = 10000
    logits = np.concatenate(
        [forward(layers, images[i : i + chunk]) for i in range(0, len(images), chunk)]
    )
    return accuracy(logits, labels)
