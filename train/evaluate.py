"""Float evaluation of a saved model (``models/<net>.npz``) in pure numpy (no torch).

Layout (see docs/models.md): ``W{k}`` float32 (n_neurons, n_inputs), ``b{k}`` float32
(n_neurons,) for k = 0..L-1; ReLU after every layer but the last; input x = pixel / 255.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.quant import load_float_weights


def forward(layers: list[tuple[np.ndarray, np.ndarray]], images: np.ndarray) -> np.ndarray:
    """Return the float32 output logits (N, n_out) for uint8 images (N,28,28) or (N,784)."""
    x = np.asarray(images).reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
    for k, (w, b) in enumerate(layers):
        x = x @ w.T + b
        if k < len(layers) - 1:
            x = np.maximum(x, np.float32(0.0))
    return x


def predictions(logits: np.ndarray) -> np.ndarray:
    """Class per image: argmax (first max on ties); for one output, 1 if logit > 0 else 0."""
    if logits.shape[1] == 1:
        return (logits[:, 0] > 0).astype(np.int64)
    return np.argmax(logits, axis=1)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Fraction correct; a single-output net answers "is this digit a 0"."""
    labels = np.asarray(labels).astype(np.int64)
    pred = predictions(logits)
    target = (labels == 0).astype(np.int64) if logits.shape[1] == 1 else labels
    return float(np.mean(pred == target))


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
