"""What every front end shares: the layers type, the model a file gave, BatchNorm folding,
size checks and the float forward pass used to check an import against its source.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.model import N_PIXELS
from mnist_fpga.gen.core.quant import float_forward

Layers = list[tuple[np.ndarray, np.ndarray]]


ACTIVATION_CHOICES = ("relu",)  # what the RTL computes between layers


NO_ACTIVATION = ("a state_dict holds no activations, so the importer cannot see what "
                 "follows each hidden layer: pass --activation relu (ACTIVATION=relu for make "
                 "import) if the hidden layers use ReLU (the RTL computes ReLU only), or save "
                 "the whole nn.Sequential (torch.save(model)) or export to ONNX")


@dataclass
class Source:
    """What a model file gave: its layers and how to check them against the file."""

    layers: Layers
    kind: str  # "onnx", "torch module" or "state_dict"
    activation_from: str  # "the file", "--activation" or "none (one layer)"
    classes: Callable[[np.ndarray], np.ndarray] | None = None  # the source model's own


ANSI_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def one_line(text: str, limit: int = 150) -> str:
    """The first meaningful sentence of a library's error text, as one clean line.

    ANSI escapes go, torch's weights_only preamble is skipped to its ``WeightsUnpickler
    error:``, and a long sentence is shortened at a word boundary (never mid-word).
    """
    text = ANSI_ESCAPE.sub("", text)
    if m := re.search(r"WeightsUnpickler error:\s*(\S.*)", text, re.S):
        text = m[1]
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = re.split(r"(?<=[.!?])\s+", line, maxsplit=1)[0].rstrip(".")
    if len(line) > limit:
        line = line[:limit + 1].rsplit(" ", 1)[0].rstrip(",;:") + " ..."
    return line


def fold_batchnorm(w: np.ndarray, b: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                   mean: np.ndarray, var: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """``BN(W x + b)`` (inference: running statistics) as one layer ``W' x + b'``, in float64.

    ``BN(z) = (z - mean) / sqrt(var + eps) * scale + shift`` is affine per neuron, so
    ``W' = s W`` and ``b' = s (b - mean) + shift`` with ``s = scale / sqrt(var + eps)``.
    """
    s = scale / np.sqrt(var + eps)
    return w * s[:, None], s * (b - mean) + shift


def check_sizes(path: Path, layers: Layers) -> None:
    """784 inputs, each layer's inputs = the previous layer's neurons, finite values."""
    for k, (w, b) in enumerate(layers):
        n_in = N_PIXELS if k == 0 else layers[k - 1][0].shape[0]
        if w.shape[1] != n_in:
            prev = ("the 784 pixels (28x28)" if k == 0
                    else f"the {n_in} neurons of layer {k - 1}")
            raise UserError(f"{path}: layer {k} takes {w.shape[1]} inputs, but its input is "
                            f"{prev}")
        if w.shape[0] < 1:
            raise UserError(f"{path}: layer {k} has no neurons")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise UserError(f"{path}: layer {k} contains NaN or infinite values")


def float_logits(layers: Layers, images: np.ndarray) -> np.ndarray:
    """Logits of the imported float network (float32 values, float64 sums, x = pixel/255)."""
    weights = {}
    for k, (w, b) in enumerate(layers):
        weights[f"W{k}"] = w.astype(np.float32).astype(np.float64)
        weights[f"b{k}"] = b.astype(np.float32).astype(np.float64)
    return float_forward(weights, images)[-1]


class Chain:
    """Layers being read in order, with the ReLU after each; messages name ``path``."""

    def __init__(self, path: Path) -> None:
        self.path, self.layers, self.relu = path, [], []
        self.open = False  # the last thing read is a layer (a bias or a norm may join it)

    def add(self, w: np.ndarray, b: np.ndarray, where: str) -> None:
        if w.ndim != 2:
            raise UserError(f"{self.path}: {where} has a weight of shape {w.shape}, not a matrix")
        if self.layers and not self.relu[-1]:
            raise UserError(f"{self.path}: not a plain MLP: no ReLU between layer "
                            f"{len(self.layers) - 1} and layer {len(self.layers)} ({where})")
        self.layers.append((w, b))
        self.relu.append(False)
        self.open = True

    def add_relu(self, where: str) -> None:
        if not self.open:
            raise UserError(f"{self.path}: not a plain MLP: {where} does not follow a linear "
                            "layer")
        self.relu[-1], self.open = True, False

    def fold_bn(self, where: str, scale: np.ndarray, shift: np.ndarray, mean: np.ndarray,
                var: np.ndarray, eps: float) -> None:
        if not self.open:
            after, todo = (("a ReLU", "fold it into the next layer before export, or train "
                            "with it before the ReLU") if self.layers else
                           ("the input", "fold it into the first layer before export"))
            raise UserError(f"{self.path}: not a plain MLP: {where} follows {after}, not a "
                            "linear layer: only a batch normalization right after a linear "
                            f"layer is folded ({todo})")
        w, b = self.layers[-1]
        for name, v in (("scale", scale), ("bias", shift), ("mean", mean), ("variance", var)):
            if v.size != w.shape[0]:
                raise UserError(f"{self.path}: {where} has {v.size} {name} values for a layer "
                                f"of {w.shape[0]} neurons")
        self.layers[-1] = fold_batchnorm(w, b, *(v.astype(np.float64).reshape(-1) for v in (
            scale, shift, mean, var)), eps)

    def done(self) -> Layers:
        if not self.layers:
            raise UserError(f"{self.path}: no linear layer found")
        if self.relu[-1]:
            raise UserError(f"{self.path}: not a plain MLP: a ReLU on the output layer (the "
                            "last layer must give the logits)")
        return self.layers
