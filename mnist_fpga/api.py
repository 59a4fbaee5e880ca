"""The Python API: quantize a float MLP, generate its HDL, run the integer model, simulate.

Every function takes and returns plain objects (paths, numpy arrays, :class:`QNet`), and
refuses bad input with :class:`UserError` (one sentence, the same as the command line's
``error:`` line)::

    import mnist_fpga as mf

    qnet = mf.quantize("models/mlp256.npz", "int8")      # or a dict of float arrays
    images, labels = mf.load_images(5)                     # the committed 100-image sample
    model = mf.run_model(qnet, images)                     # every layer's accumulators
    out = mf.generate(qnet, "build/gen/mlp256_int8")       # VHDL, ROMs, .coe/.mif/.mem
    res = mf.simulate(qnet, images, labels)                # the RTL in GHDL, bit-exact check
    assert res.bit_exact and (res.classes == model.classes).all()

Paths are taken relative to the current folder; generated files go to ``build/`` of the
checkout, or of the current folder for an installed copy (``BUILD_DIR`` overrides).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mnist_fpga.files import atomic_writer
from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.formats import parse_format
from mnist_fpga.gen.core.model import QNet, check_images, classify, forward
from mnist_fpga.gen.core.quant import calibrate, quantize_file, quantize_network
from mnist_fpga.gen.data.sample import load_sample
from mnist_fpga.gen.hdl.generate import check_rtl_limits, neurons_parallel, parallelism
from mnist_fpga.gen.hdl.generate import generate as _generate
from mnist_fpga.paths import DEFAULT_SAMPLE, MODELS, build_root

__all__ = ["ModelResult", "QNet", "SimResult", "UserError", "generate", "load_images",
           "quantize", "run_model", "simulate"]


def load_images(count: int | None = None, path: str | Path | None = None,
                ) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` images (uint8, (N, 28, 28)) and labels of a sample ``.npz``.

    The default sample is the committed first 100 MNIST test images.
    """
    images, labels = load_sample(Path(path) if path else DEFAULT_SAMPLE)
    if count is not None:
        if count < 1 or count > images.shape[0]:
            raise UserError(f"count={count}: the sample has {images.shape[0]} images "
                            f"(ask for 1..{images.shape[0]})")
        images, labels = images[:count], labels[:count]
    return images, labels


def quantize(weights: str | Path | dict[str, np.ndarray], fmt: str = "int8",
             name: str | None = None, calib_images: np.ndarray | None = None) -> QNet:
    """The integer network of a float MLP in format ``fmt`` (docs/numerics.md).

    ``weights``: a float ``.npz`` (``W0, b0, W1, ...``, as ``make train`` or ``make import``
    write), the name of a committed model (``"mlp256"``), or a dict of float arrays.
    Activation scales come from the file's ``calib<k>`` arrays, else from
    ``calib_images`` (default: the committed sample).
    """
    fmt_ = parse_format(fmt)
    if calib_images is None:
        calib_images = load_images()[0]
    if isinstance(weights, dict):
        w = {k: np.asarray(v) for k, v in weights.items()}
        n_layers = sum(1 for k in w if k.startswith("W"))
        if any(f"calib{k}" not in w for k in range(n_layers - 1)):
            w.update({k: np.asarray(v) for k, v in calibrate(w, calib_images).items()})
        qnet = quantize_network(w, fmt_, name or "net", source="(python dict)")
    else:
        path = Path(weights)
        if not path.suffix and not path.exists() and (MODELS / f"{path}.npz").is_file():
            path = MODELS / f"{path}.npz"  # a committed model by name
        qnet = quantize_file(path, fmt_, name, calib_images=calib_images)
    check_rtl_limits(qnet)
    return qnet


def generate(qnet: QNet, out: str | Path, p: int | list[int] = 1,
             pe: int | list[int] | None = None, lut_mult: bool = False) -> Path:
    """Write the network's VHDL (``hdl/``), ROM images (``coe/ mif/ mem/``) and ``qnet.json``.

    ``p`` inputs per clock and ``pe`` neurons in parallel, one for every layer or one per
    layer. A folder written before is replaced; files the generator did not write are kept.
    """
    return _generate(qnet, Path(out), qnet.source or qnet.name, p=p, pe=pe, lut_mult=lut_mult)


@dataclass
class ModelResult:
    """The integer model's outputs: every layer's accumulators and the classes."""

    accumulators: list[np.ndarray]  # one (N, n_out) int64 array per layer
    classes: np.ndarray  # (N,) int64


def run_model(qnet: QNet, images: np.ndarray) -> ModelResult:
    """Run the bit-true integer model (the one the RTL is checked against) on ``images``."""
    accs = forward(qnet, images)
    return ModelResult(accumulators=accs, classes=classify(qnet, accs[-1]))


@dataclass
class SimResult:
    """What the RTL computed, image by image, compared with the integer model."""

    bit_exact: bool  # every image: every layer and the class equal the model's, no failure
    classes: np.ndarray  # the RTL's class per image (-1: none came out)
    model_classes: np.ndarray  # the integer model's
    images: list[dict] = field(repr=False)  # per image: index, cycles, mismatches, ...
    cycles_per_image: float = 0.0  # mean latency, first pixel to class
    interval: float | None = None  # steady-state clocks between results (>= 3 images)
    failure: str | None = None  # why the simulation failed, None when it passed
    work: Path | None = None  # the build folder (generated HDL, simulator logs)


def simulate(qnet: QNet, images: np.ndarray | int = 20, labels: np.ndarray | None = None,
             p: int | list[int] = 1, pe: int | list[int] | None = None,
             lut_mult: bool = False, work: str | Path | None = None) -> SimResult:
    """Simulate ``images`` through the generated RTL (``SIM``: GHDL or NVC) and compare.

    ``images``: uint8 images, or a count of the committed sample's. Every layer's
    accumulators of every image are compared with :func:`run_model`'s. The build folder
    defaults to ``build/sim/api-<hash of the network and knobs>``; runs of one folder wait
    for each other.
    """
    from mnist_fpga.tb.common import simulator, simulator_missing
    from mnist_fpga.tb.netsim import simulate_qnet

    if isinstance(images, int | np.integer):
        images, labels = load_images(int(images))
    x = check_images(np.asarray(images), qnet.layers[0].n_in)
    if x.shape[0] < 1:
        raise UserError("images: at least one image is needed")
    labels = np.full(x.shape[0], -1) if labels is None else np.asarray(labels)
    if labels.shape != (x.shape[0],):
        raise UserError(f"labels shape {labels.shape} does not match {x.shape[0]} images")
    parallelism(qnet, p)  # bad knobs are named before anything is written
    neurons_parallel(qnet, pe)
    if reason := simulator_missing(simulator()):
        raise UserError(reason)
    if work is None:
        key = hashlib.sha256(f"{qnet.to_json()}|{p}|{pe}|{lut_mult}|{simulator()}".encode())
        work = build_root() / "sim" / f"api-{qnet.name}-{key.hexdigest()[:12]}"
    work = Path(work)
    # named by its content and moved into place whole: runs sharing the folder agree on it
    data = {"images": np.asarray(images), "labels": labels.astype(np.int64)}
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in data.values()))
    sample = work.parent / f"{work.name}-images-{digest.hexdigest()[:12]}.npz"
    if not sample.exists():
        sample.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(sample) as f:
            np.savez(f, **data)
    doc = simulate_qnet(qnet, work, sample, 0, x.shape[0], qnet.source or qnet.name,
                        p=p, pe=pe, lut_mult=lut_mult)
    rows = doc["images"]
    return SimResult(
        bit_exact=doc["failure"] is None and len(rows) == x.shape[0]
        and all(r["bit_exact"] for r in rows),
        classes=np.array([r["rtl_class"] for r in rows], dtype=np.int64),
        model_classes=np.array([r["model_class"] for r in rows], dtype=np.int64),
        images=rows, cycles_per_image=float(np.mean([r["cycles"] for r in rows])),
        interval=doc.get("interval"), failure=doc["failure"], work=work)
