"""Import a float MLP from ONNX or a PyTorch file into the weights ``.npz`` (docs/models.md).

    mnist-fpga import --from model.onnx --out build/import/model.npz [--calib train]
    mnist-fpga import --from model.pt   --out build/import/model.npz --activation relu
    mnist-fpga import --from module.pt  --out build/import/model.npz [--force]

An existing ``--out`` file is never replaced without ``--force``.

The network must be a plain MLP: linear layers with one ReLU between consecutive
layers and none on the output, taking the 784 pixels as ``x = pixel / 255``.

- ONNX (as ``torch.onnx.export`` writes it, read with the ``onnx`` package): one chain of
  ``Gemm`` (or ``MatMul`` + ``Add``) and ``Relu`` nodes; a ``BatchNormalization`` right
  after a layer is folded into its W and b; ``Flatten``, ``Reshape`` (its shape may be
  computed from the input's), ``Identity`` and ``Dropout`` pass through, a final
  ``Softmax``/``LogSoftmax`` is dropped (it does not change the class). Anything else is
  refused with a line naming the node and what to do.
- a whole ``nn.Sequential`` saved with ``torch.save(model)`` of torch.nn's own modules:
  the file holds the modules, so the activations are read from it (a ``BatchNorm1d``
  right after a ``Linear`` is folded). Loaded with ``weights_only=True`` allowing only
  torch.nn's module classes: no code from the file runs.
- a state_dict of an ``nn.Sequential`` (``torch.save(model.state_dict(), path)``): keys
  ``<i>.weight``/``<i>.bias`` of ``Linear`` modules. A state_dict holds no activations:
  the user must say them (``--activation relu``, the only one the RTL computes); every
  gap between two Linear indices is then that ReLU (and maybe a Dropout), none after the
  last. Convolutions, norms, parameterised activations and nested modules are refused.

ONNX and torch-module imports are run on the committed sample and must give the source
model's classes. Hidden layers get ``calib{k}`` as train/ computes it (99.99th percentile
of the post-ReLU activations over the MNIST training set), from ``--calib sample`` the
committed 100-image sample, or none (``--calib none``: gen.core.quant's fallback calibrates
at generation time).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mnist_fpga.files import atomic_writer
from mnist_fpga.gen.core.errors import UserError, check_creatable, cli_main
from mnist_fpga.gen.core.model import N_PIXELS, decide
from mnist_fpga.gen.core.quant import calibrate
from mnist_fpga.gen.data.mnist import load_mnist
from mnist_fpga.gen.frontends.common import (
    ACTIVATION_CHOICES,
    NO_ACTIVATION,
    Layers,
    Source,
    check_sizes,
    float_logits,
)
from mnist_fpga.gen.frontends.onnx import onnx_classes, read_onnx
from mnist_fpga.gen.frontends.torch_file import read_torch
from mnist_fpga.paths import DEFAULT_SAMPLE


def check_against_source(path: Path, layers: Layers,
                         classes: Callable[[np.ndarray], np.ndarray], what: str) -> int:
    """The imported layers give the source model's classes on the sample; returns the count.

    Only a near-tie (two logits within float32 rounding, 1e-5 relative) may differ: any
    other difference means the model computes something the import does not (never silent).
    """
    with np.load(DEFAULT_SAMPLE) as z:
        images = z["images"]
    logits = float_logits(layers, images)
    mine, theirs = decide(logits), classes(images)
    rows = np.flatnonzero(mine != theirs)
    if logits.shape[1] == 1:
        gaps = np.abs(logits[rows, 0])
    else:
        gaps = logits[rows, mine[rows]] - logits[rows, theirs[rows]]
    tol = 1e-5 * (1.0 + np.abs(logits[rows]).max(axis=1)) if len(rows) else np.zeros(0)
    differ = int((gaps > tol).sum())
    if differ:
        raise UserError(f"{path}: the imported network disagrees with {what} on "
                        f"{differ} of {len(images)} sample images; not imported")
    return len(images)


def check_against_onnx(path: Path, layers: Layers) -> int:
    """:func:`check_against_source` with the ONNX model run by onnx.reference."""
    return check_against_source(path, layers, lambda im: onnx_classes(path, im),
                                "the ONNX model")


def read_source(path: Path, activation: str | None = None) -> Source:
    """Layers of an ONNX file (``.onnx``) or a PyTorch file (anything else), sizes checked.

    ``activation`` (only ``relu``) is what a state_dict's hidden layers use: a state_dict
    does not hold it, so one of more than one layer is refused without it.
    """
    path = Path(path)
    check_activation(activation)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist")
    if path.suffix.lower() == ".onnx":
        src = Source(read_onnx(path), "onnx", "the file", lambda im: onnx_classes(path, im))
    else:
        src = read_torch(path, activation)
    check_sizes(path, src.layers)
    if src.activation_from == "not given":  # after every other check: they come first
        raise UserError(f"{path}: {NO_ACTIVATION}")
    return src


def read_model(path: Path, activation: str | None = None) -> Layers:
    """The layers of :func:`read_source`."""
    return read_source(path, activation).layers


def check_activation(activation: str | None) -> None:
    """``--activation``: none, or one the RTL computes."""
    if activation is not None and activation not in ACTIVATION_CHOICES:
        raise UserError(f"--activation {activation!r}: the RTL computes ReLU only; the "
                        f"supported value is {', '.join(ACTIVATION_CHOICES)}")


def to_arrays(layers: Layers, calib: dict[str, float], meta: dict) -> dict[str, np.ndarray]:
    """The docs/models.md layout: W{k}, b{k} float32, calib{k} (if given), meta."""
    arrays: dict[str, np.ndarray] = {}
    for k, (w, b) in enumerate(layers):
        arrays[f"W{k}"] = w.astype(np.float32)
        arrays[f"b{k}"] = b.astype(np.float32)
    for key, value in calib.items():
        arrays[key] = np.asarray(value, dtype=np.float32)
    arrays["meta"] = np.asarray(np.str_(json.dumps(meta, sort_keys=True)))
    return arrays


def import_model(source: Path, out: Path, calib: str = "train",
                 mnist_dir: str | None = None, force: bool = False,
                 activation: str | None = None) -> dict[str, np.ndarray]:
    """Read ``source``, calibrate, write ``out`` atomically; return the arrays written.

    An existing ``out`` is refused unless ``force``: it may be the user's own weights.
    ``activation`` is needed for a state_dict of more than one layer (docs/models.md).
    """
    source, out = Path(source), Path(out)
    if calib not in ("train", "sample", "none"):
        raise UserError(f"--calib {calib!r}: choose train, sample or none")
    check_activation(activation)
    check_creatable(out, "output file")
    if out.is_dir():
        raise UserError(f"output file {out} exists and is a folder")
    if (out.exists() or out.is_symlink()) and not force:
        raise UserError(f"output file {out} exists; refusing to overwrite it (--force, or "
                        "FORCE=1 for make import, replaces it)")
    src = read_source(source, activation)
    layers = src.layers
    what = "the ONNX model" if src.kind == "onnx" else "the torch module"
    checked = check_against_source(source, layers, src.classes, what) if src.classes else 0
    weights = {}
    for k, (w, b) in enumerate(layers):
        weights[f"W{k}"], weights[f"b{k}"] = w, b
    images = None
    if calib == "train" and len(layers) > 1:
        images = load_mnist("train", mnist_dir)[0]
    elif calib == "sample" and len(layers) > 1:
        with np.load(DEFAULT_SAMPLE) as z:
            images = z["images"]
    cal = calibrate(weights, images) if images is not None else {}
    meta = {
        "net": out.stem, "layers": [N_PIXELS, *(w.shape[0] for w, _ in layers)],
        "imported_from": source.name, "import_format": src.kind,
        "hidden_activation": "relu", "activation_from": src.activation_from,
        "input": "pixel/255", "calib_percentile": 99.99,
        "same_classes_as_source_on_sample": checked,
        "calib_images": {"train": "MNIST train", "sample": DEFAULT_SAMPLE.name,
                         "none": "none (gen.core.quant falls back at generation)"}[calib],
    }
    arrays = to_arrays(layers, cal, meta)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(out) as f:
            np.savez(f, **arrays)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    return arrays


def sample_agreement(layers: Layers) -> tuple[int, int]:
    """(correct, images) of the imported float network on the committed sample."""
    with np.load(DEFAULT_SAMPLE) as z:
        images, labels = z["images"], z["labels"]
    logits = float_logits(layers, images)
    truth = (labels == 0).astype(int) if logits.shape[1] == 1 else labels.astype(int)
    return int((decide(logits) == truth).sum()), len(labels)


LOW_ACCURACY = 0.5  # below this on the sample, a 10-class import gets a note


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mnist-fpga import",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="source", required=True, type=Path,
                    help="model.onnx, a torch.save'd nn.Sequential, or its state_dict")
    ap.add_argument("--out", required=True, type=Path,
                    help="weights .npz to write (an existing file only with --force)")
    ap.add_argument("--force", action="store_true", help="replace an existing --out file")
    ap.add_argument("--activation", default=None, metavar="relu",
                    help="the hidden layers' activation, needed for a state_dict (which holds "
                         "none): relu, the only one the RTL computes")
    ap.add_argument("--calib", default="train", choices=["train", "sample", "none"],
                    help="images for the hidden layers' calib{k} (default: MNIST train)")
    ap.add_argument("--mnist-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    args = ap.parse_args(argv)
    arrays = import_model(args.source, args.out, args.calib, args.mnist_dir, args.force,
                          args.activation)
    meta = json.loads(str(arrays["meta"]))
    layers = [(arrays[f"W{k}"], arrays[f"b{k}"]) for k in range(len(meta["layers"]) - 1)]
    correct, n = sample_agreement(layers)
    same = meta["same_classes_as_source_on_sample"]
    what = "the ONNX model" if meta["import_format"] == "onnx" else "the torch module"
    same_txt = f", same classes as {what} on {same}/{same}" if same else ""
    print(f"imported {'-'.join(map(str, meta['layers']))} from {args.source} into {args.out}: "
          f"float accuracy {correct}/{n} on {DEFAULT_SAMPLE.name} (x = pixel/255){same_txt}")
    if meta["layers"][-1] > 1 and correct < LOW_ACCURACY * n:
        given = ("that the hidden layers use ReLU as --activation says, and "
                 if meta["activation_from"] == "--activation" else "")
        print(f"note: float accuracy {correct}/{n} is far below a trained MNIST model's: "
              f"check {given}that the model takes x = pixel/255 (no mean/std normalization), "
              "unless it is untrained")
    return 0


if __name__ == "__main__":
    cli_main(main)
