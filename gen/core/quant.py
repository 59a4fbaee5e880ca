"""Quantization: float ``.npz`` weights -> :class:`gen.core.model.QNet` (docs/numerics.md).

This is the only place where floats meet integers: scales are chosen here in
floating point, every value the hardware sees is an exact integer after it.
"""

from __future__ import annotations

import math
import re
import zipfile
import zlib
from pathlib import Path

import numpy as np

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.formats import Format
from mnist_fpga.gen.core.legal import MAX_SHIFT, MIN_SHIFT, RQ_MULT_BITS, acc_bits_for, check_qnet
from mnist_fpga.gen.core.model import (
    N_PIXELS,
    PIXEL_BITS,
    QLayer,
    QNet,
    classify,
    forward,
    is_correct,
)

__all__ = ["acc_bits_for", "accuracy_warning", "quantize_file", "quantize_network",
           "requant_params", "shift_params"]

# ---------------------------------------------------------------- the original API


def round_half_away(x: np.ndarray | float) -> np.ndarray:
    """Round to nearest, ties away from zero (numpy's ``round`` ties to even)."""
    x = np.asarray(x, dtype=np.float64)
    # Not floor(|x| + 0.5): that addition rounds (0.49999999999999994 -> 1, 2**52 + 1 -> +2).
    t = np.trunc(x)
    return t + np.where(np.abs(x - t) >= 0.5, np.sign(x), 0.0)  # x - t is exact


def quantize_symmetric(
    w: np.ndarray, bits: int, scale: float | None = None
) -> tuple[np.ndarray, float]:
    """Symmetric quantization to signed ``bits``: ``q = round(w * scale)``, |q| <= 2**(bits-1)-1.

    ``scale`` defaults to ``(2**(bits-1)-1) / max|w|`` (full range used).
    Returns ``(q as int64, scale)``.
    """
    w = np.asarray(w, dtype=np.float64)
    qmax = (1 << (bits - 1)) - 1
    if scale is None:
        peak = float(np.max(np.abs(w))) if w.size else 0.0
        scale = qmax / peak if peak > 0 else 1.0
    q = np.clip(round_half_away(w * scale), -qmax, qmax).astype(np.int64)
    return q, float(scale)


def quantize_to_int8(w: np.ndarray, scale_to_max: bool = False) -> tuple[np.ndarray, float]:
    """The original scripts' API: int8 weights and their scale.

    ``scale`` is 127 (weights assumed in [-1, 1]) or ``127 / max|w|`` with
    ``scale_to_max``. Fixes the original's truncation: values are rounded (ties
    away from zero) and saturated to [-127, 127] instead of wrapped.
    """
    q, scale = quantize_symmetric(w, 8, None if scale_to_max else 127.0)
    return q.astype(np.int8), scale


def int_to_vhdl_hex(v: int, width_bits: int) -> str:
    """Two's complement of ``v`` on ``width_bits`` as upper-case hex digits (``-12, 8 -> 'F4'``).

    Used inside ``x"..."``. Raises ``ValueError`` if ``v`` does not fit.
    """
    v = int(v)
    if width_bits < 1:
        raise ValueError(f"width_bits must be >= 1, got {width_bits}")
    lo, hi = -(1 << (width_bits - 1)), (1 << width_bits) - 1
    if not lo <= v <= hi:
        raise ValueError(f"{v} does not fit in {width_bits} bits")
    digits = (width_bits + 3) // 4
    return f"{v & ((1 << width_bits) - 1):0{digits}X}"


# ---------------------------------------------------------------- reading weights


# Largest array read from any .npz (weights or image sample), in elements: all 70,000
# MNIST images (54.9 M pixels) fit, and so does any MLP whose weights could fit in an
# FPGA's ROMs; a header declaring more (a broken or hostile file) is refused before
# anything is allocated. docs/models.md.
MAX_NPZ_ELEMENTS = 1 << 27


def _npz_member_shape(zf: zipfile.ZipFile, member: str) -> tuple[int, ...]:
    """The shape a ``.npy`` zip member declares in its header, read without loading it."""
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, _ = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, _ = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"member {member!r} has unsupported .npy version {version}")
    return tuple(shape)


def read_npz(path: str | Path, what: str) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` at ``path``; any problem is a :class:`UserError`.

    ``what`` names the file in the message (``"weights file"``, ``"image sample"``).
    Members and shapes are checked from the zip directory and the ``.npy`` headers
    before any array is loaded (at most :data:`MAX_NPZ_ELEMENTS` elements each).
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{what} {path} is a folder, not a .npz file")
    if not path.is_file():
        raise UserError(f"{what} {path} does not exist")
    try:
        with path.open("rb") as f:  # else np.load takes it for a pickle and suggests unpickling
            head = f.read(6)
        if not head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"\x93NUMPY")):
            raise UserError(f"{what} {path} is not a readable .npz (not a zip archive)")
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):  # a bare .npy gives an ndarray
            raise UserError(f"{what} {path} holds a single array, not a .npz archive")
        with npz:
            for member in npz.zip.namelist():
                if not member.endswith(".npy"):
                    raise UserError(f"{what} {path}: member {member!r} is not a .npy array "
                                    "(a .npz holds only .npy members)")
                shape = _npz_member_shape(npz.zip, member)
                if math.prod(shape) > MAX_NPZ_ELEMENTS:
                    raise UserError(
                        f"{what} {path}: {member.removesuffix('.npy')} declares shape {shape}, "
                        f"{math.prod(shape):,} elements, more than the {MAX_NPZ_ELEMENTS:,} "
                        "read from one array")
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, zlib.error) as exc:
        raise UserError(f"{what} {path} is not a readable .npz ({exc})") from None


def load_float_weights(path: str | Path) -> dict[str, np.ndarray]:
    """Read and validate a float weights ``.npz`` (layout in docs/models.md).

    Keys ``W0, b0, W1, b1, ...`` (``W{k}`` of shape (n_neurons, n_inputs)) and,
    for hidden layers, the scalar ``calib{k}``. Every problem is a one-line
    :class:`UserError`.
    """
    path = Path(path)
    data = read_npz(path, "weights file")
    n_layers = 0
    while f"W{n_layers}" in data:
        n_layers += 1
    if n_layers == 0:
        raise UserError(f"weights file {path} has no layer: key 'W0' is missing")
    out: dict[str, np.ndarray] = {}
    n_in = N_PIXELS
    for k in range(n_layers):
        if f"b{k}" not in data:
            raise UserError(f"weights file {path}: key 'b{k}' (bias of layer {k}) is missing")
        w, b = data[f"W{k}"], data[f"b{k}"]
        for key, arr in ((f"W{k}", w), (f"b{k}", b)):
            if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(
                arr.dtype, np.integer
            ):
                raise UserError(f"weights file {path}: {key} has non-numeric dtype {arr.dtype}")
            if not np.all(np.isfinite(arr)):
                raise UserError(f"weights file {path}: {key} contains NaN or infinite values")
        if w.ndim != 2 or w.shape[1] != n_in or w.shape[0] < 1:
            raise UserError(
                f"weights file {path}: W{k} has shape {w.shape}, expected (n_neurons, {n_in})"
            )
        if b.shape != (w.shape[0],):
            raise UserError(
                f"weights file {path}: b{k} has shape {b.shape}, expected ({w.shape[0]},)"
            )
        out[f"W{k}"], out[f"b{k}"] = w.astype(np.float64), b.astype(np.float64)
        if k < n_layers - 1 and f"calib{k}" in data:
            c = data[f"calib{k}"]
            numeric = np.issubdtype(c.dtype, np.floating) or np.issubdtype(c.dtype, np.integer)
            c = c.astype(np.float64) if numeric else np.array([])  # e.g. a string: refused
            if c.size != 1 or not np.isfinite(c).all() or float(c.reshape(-1)[0]) <= 0:
                raise UserError(f"weights file {path}: calib{k} must be one finite value > 0")
            out[f"calib{k}"] = c.reshape(())
        n_in = w.shape[0]
    allowed = {"meta"} | {f"{p}{k}" for k in range(n_layers) for p in ("W", "b")}
    allowed |= {f"calib{k}" for k in range(n_layers - 1)}
    for key in sorted(data, key=lambda k: (len(k), k)):
        if key in allowed:
            continue
        m = re.fullmatch(r"(W|b|calib)(\d+)", key)
        if m and m.group(1) in ("W", "b") and int(m.group(2)) >= n_layers:
            raise UserError(f"weights file {path}: key {key!r} but no 'W{n_layers}': layers "
                            "must be numbered W0, W1, ... without gaps")
        if m and m.group(1) == "calib" and int(m.group(2)) == n_layers - 1:
            raise UserError(f"weights file {path}: {key!r} belongs to no hidden layer (the "
                            f"last layer, {n_layers - 1}, has no requantizer)")
        raise UserError(f"weights file {path}: unknown key {key!r} (expected W<k>, b<k>, "
                        "calib<k> and meta; docs/models.md)")
    return out


def float_forward(weights: dict[str, np.ndarray], images: np.ndarray,
                  dtype: type = np.float64) -> list[np.ndarray]:
    """The float reference network (x = pixel/255, ReLU on hidden layers): every layer's output.

    Hidden layers' outputs are after ReLU; the last is the logits. ``dtype`` is the
    arithmetic: float64 (the quantizer's calibration) or float32 (as torch evaluates).
    """
    x = images.reshape(images.shape[0], -1).astype(dtype) / dtype(255.0)
    n_layers = sum(1 for k in weights if k.startswith("W"))
    outs = []
    for k in range(n_layers):
        x = x @ weights[f"W{k}"].T + weights[f"b{k}"]
        if k < n_layers - 1:
            x = np.maximum(x, dtype(0.0))
        outs.append(x)
    return outs


def calibrate(weights: dict[str, np.ndarray], images: np.ndarray) -> dict[str, float]:
    """Fallback activation calibration: 99.99th percentile of each hidden float ReLU output."""
    hidden = float_forward(weights, images)[:-1]
    return {f"calib{k}": max(float(np.percentile(h, 99.99)), 1e-6) for k, h in enumerate(hidden)}


# ---------------------------------------------------------------- the network


def _clamp_shift(shift: int) -> int:
    """Shifts past the legal range give the same integers (numerics.md, 5): clamp them."""
    return min(max(shift, MIN_SHIFT), MAX_SHIFT)


def requant_params(ratio: float) -> tuple[int, int]:
    """Integer ``(mult, shift)`` with ``mult / 2**shift ~= ratio`` and mult in [2**15, 2**16).

    A shift <= 0 is a left shift (ratios >= 2**15). Shifts are clamped to the legal
    range, which changes no result (numerics.md, 5).
    """
    if not (ratio > 0 and math.isfinite(ratio)):
        raise UserError(f"requantization ratio {ratio} is not a finite positive number")
    shift = (RQ_MULT_BITS - 1) - math.floor(math.log2(ratio))
    mult = int(round_half_away(math.ldexp(ratio, shift)))
    if mult >= 1 << RQ_MULT_BITS:
        mult, shift = mult >> 1, shift - 1
    return mult, _clamp_shift(shift)


def shift_params(ratio: float) -> tuple[int, int]:
    """Power-of-two requantization: ``(1, shift)`` with ``2**-shift`` nearest to ``ratio``.

    A shift <= 0 is a left shift (ratios of about 0.7 and more).
    """
    if not (ratio > 0 and math.isfinite(ratio)):
        raise UserError(f"requantization ratio {ratio} is not a finite positive number")
    return 1, _clamp_shift(round(-math.log2(ratio)))


def weight_scales(wf: np.ndarray, fmt: Format, per_neuron: bool) -> np.ndarray:
    """Scale per neuron (numerics.md, 2): fixed 2**n for Qm.n, else from the largest weight."""
    qmax = (1 << (fmt.w_bits - 1)) - 1
    if fmt.frac is not None:
        return np.full(wf.shape[0], 2.0**fmt.frac)
    peak = np.max(np.abs(wf), axis=1) if per_neuron else np.full(wf.shape[0], np.max(np.abs(wf)))
    return np.where(peak > 0, qmax / np.where(peak > 0, peak, 1.0), 1.0)


def quantize_network(
    weights: dict[str, np.ndarray], fmt: Format, name: str, source: str = ""
) -> QNet:
    """Quantize validated float weights to ``fmt`` following docs/numerics.md."""
    n_layers = sum(1 for k in weights if k.startswith("W"))
    a_max = (1 << fmt.a_bits) - 1
    qmax = (1 << (fmt.w_bits - 1)) - 1
    # Real value of one unit of the input activation: pixel/255 with the shift of numerics 1.
    s_in = 2.0 ** (PIXEL_BITS - fmt.a_bits) / 255.0
    layers = []
    for k in range(n_layers):
        wf, bf = weights[f"W{k}"], weights[f"b{k}"]
        hidden = k < n_layers - 1
        # per-neuron scales only where a requantizer follows: the logits must share a scale
        per_neuron = fmt.per_neuron and hidden
        scale = weight_scales(wf, fmt, per_neuron)  # one per neuron
        w = np.clip(round_half_away(wf * scale[:, None]), -qmax, qmax).astype(np.int64)
        s_acc = s_in / scale
        b = round_half_away(bf / s_acc).astype(np.int64)
        acc_bits = acc_bits_for(w, b, a_max, fmt.w_bits)
        info = {"s_in": s_in, "s_w": (1.0 / scale).tolist(), "s_acc": s_acc.tolist()}
        layer = QLayer(w=w, b=b, w_bits=fmt.w_bits, a_bits=fmt.a_bits, acc_bits=acc_bits,
                       hidden=hidden, info=info)
        if hidden:
            if fmt.frac is not None:
                s_out = 2.0**-fmt.frac
            else:
                s_out = float(weights[f"calib{k}"]) / a_max
            params = shift_params if fmt.shift_only else requant_params
            mults, shifts = zip(*(params(r / s_out) for r in s_acc), strict=True)
            if per_neuron:
                layer.rq_mult, layer.rq_shift = list(mults), list(shifts)
                s_in = s_out  # nominal: each neuron's scale is within rounding of it
            else:
                layer.rq_mult, layer.rq_shift = mults[0], shifts[0]
                s_in = s_acc[0] * 2.0 ** shifts[0] / mults[0]  # the scale the integers carry
            layer.out_bits = fmt.a_bits
            info["s_out"] = s_in
        layers.append(layer)
    qnet = QNet(name=name, fmt=fmt, layers=layers, source=source)
    check_qnet(qnet)
    return qnet


def quantize_file(
    path: str | Path, fmt: Format, name: str | None = None,
    calib_images: np.ndarray | None = None,
) -> QNet:
    """Load, validate and quantize a float ``.npz``; calibrate on ``calib_images`` if needed."""
    path = Path(path)
    weights = load_float_weights(path)
    n_layers = sum(1 for k in weights if k.startswith("W"))
    missing = [k for k in range(n_layers - 1) if f"calib{k}" not in weights]
    if missing:
        if calib_images is None:
            raise UserError(
                f"weights file {path}: calib{missing[0]} is missing and no calibration images given"
            )
        weights.update({k: np.asarray(v) for k, v in calibrate(weights, calib_images).items()})
    return quantize_network(weights, fmt, name or path.stem, source=path.name)


# ---------------------------------------------------------------- the sanity check of a format

# Fewer labelled images than this say too little about an accuracy: no check.
SANITY_MIN_IMAGES = 20


def accuracy_warning(weights: dict[str, np.ndarray], qnet: QNet, images: np.ndarray,
                     labels: np.ndarray) -> str | None:
    """One ``warning: ...`` line when ``qnet`` loses the float network's accuracy, else None.

    On the labelled images (label >= 0, at least :data:`SANITY_MIN_IMAGES`): ``f`` the
    float network's accuracy (``weights``), ``q`` the integer model's, ``c`` that of the
    best constant answer (always the most common label; for ``zero``, always "not a 0").
    The format loses the accuracy when the float network beats the constant answer and
    the integer model keeps less than half of that lead: ``f > c`` and ``q < (c + f) / 2``
    (docs/numerics.md, 2b). A legal format still computes bit-exactly: a warning, no error.
    """
    labels = np.asarray(labels).astype(np.int64)
    known = labels >= 0
    n = int(known.sum())
    if n < SANITY_MIN_IMAGES:
        return None
    x, y = np.asarray(images)[known], labels[known]
    q = float(np.mean(is_correct(qnet, classify(qnet, forward(qnet, x)[-1]), y)))
    f = float(np.mean(is_correct(qnet, classify(qnet, float_forward(weights, x)[-1]), y)))
    answers = range(max(qnet.n_classes, 2))  # one output: class 0 or 1
    c = max(float(np.mean(is_correct(qnet, np.full(n, a), y))) for a in answers)
    if f > c and q < (c + f) / 2:
        return (f"warning: {qnet.fmt.name} gives {100 * q:.1f} % on the sample's {n} images "
                f"(float: {100 * f:.1f} %): this format loses the network's accuracy")
    return None
