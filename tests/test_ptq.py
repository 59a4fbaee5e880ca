"""Post-training quantization against the float network it came from (issue 18, item 5).

``qnet.json`` and the ROMs come from the same quantized network, so a quantizer bug
stays bit-exact everywhere downstream. These checks tie the integers back to the float
``.npz`` without gen/core/quant.py's code: the float network runs in plain numpy
(:func:`train.evaluate.forward`), and the scales are recomputed here from the float
weights and the definitions of docs/numerics.md (sections 1, 2 and 5).

1. the integer model's class agrees with the float network's on >= 97 of the 100
   committed sample images;
2. the integers follow the documented definitions (weights, biases, requantization
   constants), and every accumulator of every layer, times its scale, is within the
   rounding bound of docs/numerics.md, 3a, of the float pre-activation;
3. a quantizer bug (a bias scale off by two, a wrong calibration, neurons out of order)
   is caught by the check that names it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from mnist_fpga.gen.core.formats import Format, parse_format
from mnist_fpga.gen.core.model import QNet, classify, forward, requantize
from mnist_fpga.gen.core.model import decide as float_predictions
from mnist_fpga.gen.core.quant import load_float_weights, quantize_file, quantize_network
from mnist_fpga.gen.data.sample import load_sample
from mnist_fpga.paths import DEFAULT_SAMPLE
from mnist_fpga.train.evaluate import forward as float_forward

ROOT = Path(__file__).resolve().parent.parent
NETS = ("zero", "l10", "mlp256")
# the integer formats (fixed point clamps weights, so the bound of 3a does not apply)
FORMATS = ("int8", "w4a8", "int8-pn", "int8-shift", "int4", "int16")
MIN_AGREE = 97  # of the 100 sample images
RTOL = 1e-9  # float64 slack of the bound's own arithmetic


@dataclass
class FloatLayer:
    """One float layer as the ``.npz`` holds it, float64, and its calibration (hidden)."""

    w: np.ndarray
    b: np.ndarray
    calib: float | None


@dataclass
class Scales:
    """The documented scales of one layer (numerics.md 1, 2, 5); hidden layers also
    the requantization constants and the scale of the next layer's input."""

    scale_w: np.ndarray  # per neuron (equal entries without -pn)
    s_in: float
    s_acc: np.ndarray  # per neuron
    mult: list[int] | None = None
    shift: list[int] | None = None
    s_next: float | None = None


def float_net(net: str) -> list[FloatLayer]:
    """The committed float network, read with plain numpy."""
    with np.load(ROOT / "models" / f"{net}.npz", allow_pickle=False) as d:
        n = sum(1 for k in d.files if k.startswith("W"))
        return [FloatLayer(d[f"W{k}"].astype(np.float64), d[f"b{k}"].astype(np.float64),
                           float(d[f"calib{k}"]) if k < n - 1 else None) for k in range(n)]


def _round(v: float) -> int:
    """Round half away from zero (numerics.md, 2)."""
    return int(math.copysign(math.floor(abs(v) + 0.5), v))


def documented_scales(layers: list[FloatLayer], fmt: Format) -> list[Scales]:
    """Every layer's scales and requantization constants from the definitions alone."""
    qmax = (1 << (fmt.w_bits - 1)) - 1
    a_max = (1 << fmt.a_bits) - 1
    s_in = 2.0 ** (8 - fmt.a_bits) / 255  # numerics.md, 1
    out = []
    for k, layer in enumerate(layers):
        hidden = k < len(layers) - 1
        if fmt.per_neuron and hidden:
            peak = np.abs(layer.w).max(axis=1)
        else:
            peak = np.full(layer.w.shape[0], np.abs(layer.w).max())
        scale_w = np.where(peak > 0, qmax / np.where(peak > 0, peak, 1), 1.0)
        sc = Scales(scale_w, s_in, s_in / scale_w)
        if hidden:
            assert layer.calib is not None and layer.calib > 0, "committed nets carry calib"
            s_out = layer.calib / a_max
            sc.mult, sc.shift = [], []
            for s_acc in sc.s_acc:
                ratio = float(s_acc) / s_out
                if fmt.shift_only:
                    mult, shift = 1, round(-math.log2(ratio))
                else:
                    shift = 15 - math.floor(math.log2(ratio))
                    mult = _round(ratio * 2.0**shift)
                    if mult == 1 << 16:
                        mult, shift = mult >> 1, shift - 1
                sc.mult.append(mult)
                sc.shift.append(min(max(shift, -64), 255))
            # per layer: the scale the integers carry; per neuron: the nominal one
            s_in = s_out if fmt.per_neuron else float(sc.s_acc[0]) * 2.0**sc.shift[0] / sc.mult[0]
            sc.s_next = s_in
        out.append(sc)
    return out


def float_classes(layers: list[FloatLayer], images: np.ndarray) -> np.ndarray:
    """The float network's decision (argmax, or ``logit > 0`` for one output)."""
    return float_predictions(float_forward([(la.w, la.b) for la in layers], images))


def agreement(qnet: QNet, layers: list[FloatLayer], images: np.ndarray) -> int:
    """Images on which the integer model's class equals the float network's."""
    ours = classify(qnet, forward(qnet, images)[-1])
    return int(np.sum(ours == float_classes(layers, images)))


def consistency_problems(qnet: QNet, layers: list[FloatLayer], scales: list[Scales]) -> list[str]:
    """Where the qnet's integers are not the documented ones (first problem per kind)."""
    problems = []
    for k, (q, f, sc) in enumerate(zip(qnet.layers, layers, scales, strict=True)):
        dw = np.abs(q.w - f.w * sc.scale_w[:, None])
        if dw.max() > 0.5 + RTOL:
            n, i = np.unravel_index(int(dw.argmax()), dw.shape)
            problems.append(f"layer {k}: weight w[{n},{i}] = {q.w[n, i]} is not "
                            f"round(W*scale_w) = round({f.w[n, i] * sc.scale_w[n]:.3f})")
        ideal = f.b / sc.s_acc
        db = np.abs(q.b - ideal)
        if db.max() > 0.5 + RTOL * np.abs(ideal).max():
            n = int(db.argmax())
            problems.append(f"layer {k}: bias b[{n}] = {q.b[n]} is not round(b_float/s_acc) "
                            f"= round({ideal[n]:.3f})")
        if q.hidden:
            mults = np.atleast_1d(q.rq_mult).tolist()
            shifts = np.atleast_1d(q.rq_shift).tolist()
            if len(mults) == 1:  # one pair for the layer: every neuron's documented pair
                mults, shifts = mults * q.n_out, shifts * q.n_out
            for n, (m, s, em, es) in enumerate(zip(mults, shifts, sc.mult, sc.shift,
                                                   strict=True)):
                if (m, s) != (em, es):
                    problems.append(f"layer {k}: requantization of neuron {n} is "
                                    f"{m}/2**{s}, the calibration gives {em}/2**{es}")
                    break
    return problems


def bound_problems(qnet: QNet, layers: list[FloatLayer], scales: list[Scales],
                   images: np.ndarray) -> list[str]:
    """Accumulators outside ``s_acc*(0.5 + 0.5*sum(x))`` of the float pre-activation
    (numerics.md, 3a), per neuron and image, on every layer's integer inputs x."""
    accs = forward(qnet, images)
    p, a_bits = images.reshape(len(images), -1).astype(np.int64), qnet.fmt.a_bits
    x = p >> (8 - a_bits) if a_bits <= 8 else p << (a_bits - 8)  # numerics.md, 1
    problems = []
    for k, (q, f, sc, acc) in enumerate(zip(qnet.layers, layers, scales, accs, strict=True)):
        z = (x * sc.s_in) @ f.w.T + f.b  # the float layer on the same inputs
        err = np.abs(acc * sc.s_acc - z)
        bound = sc.s_acc * (0.5 + 0.5 * x.sum(axis=1, keepdims=True))
        bad = err > bound * (1 + RTOL) + RTOL * np.abs(z)
        if bad.any():
            i, n = np.argwhere(bad)[0]
            problems.append(f"layer {k}: {int(bad.sum())} accumulators outside the bound, "
                            f"e.g. image {i} neuron {n}: |acc*s_acc - z| = {err[i, n]:.4g} > "
                            f"{bound[i, 0 if bound.shape[1] == 1 else n]:.4g}")
        if q.hidden:
            x = requantize(acc, q)
    return problems


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return load_sample(DEFAULT_SAMPLE)[0]


def quantized(net: str, fmt: str, images: np.ndarray) -> QNet:
    """The network as tb.netsim and gen.hdl.generate quantize it."""
    return quantize_file(ROOT / "models" / f"{net}.npz", parse_format(fmt), net,
                         calib_images=images)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("net", NETS)
def test_integer_model_agrees_with_float(net: str, fmt: str, images: np.ndarray) -> None:
    """The integer model decides as the float network on >= 97 of the 100 images."""
    agree = agreement(quantized(net, fmt, images), float_net(net), images)
    print(f"{net} {fmt}: {agree}/100 agree with the float network")
    assert agree >= MIN_AGREE


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("net", NETS)
def test_integers_follow_the_documented_scales(net: str, fmt: str, images: np.ndarray) -> None:
    """Weights, biases and requantization constants are the documented ones, and every
    layer's accumulators lie within the rounding bound of the float pre-activation."""
    qnet, layers = quantized(net, fmt, images), float_net(net)
    scales = documented_scales(layers, parse_format(fmt))
    assert consistency_problems(qnet, layers, scales) == []
    assert bound_problems(qnet, layers, scales, images) == []


# ---------------------------------------------------------------- the checks see bugs


def _bias_scale_off_by_two(qnet: QNet) -> None:
    """b = round(b_float / (s_acc / 2)) in layer 0."""
    qnet.layers[0].b = qnet.layers[0].b * 2
    qnet.layers[0].acc_bits += 1


def _neurons_out_of_order(qnet: QNet) -> None:
    """The last layer's rows (weights and biases) rotated by one neuron."""
    last = qnet.layers[-1]
    last.w, last.b = np.roll(last.w, 1, axis=0), np.roll(last.b, 1)


def _shift_off_by_one(qnet: QNet) -> None:
    """An activation scale off by two: every layer-0 shift one too small."""
    qnet.layers[0].rq_shift = qnet.layers[0].rq_shift - 1


def _wrong_calibration(net: str) -> QNet:
    """calib0 taken four times too large (e.g. a max instead of the 99.99th percentile)."""
    w = load_float_weights(ROOT / "models" / f"{net}.npz")
    w["calib0"] = w["calib0"] * 4
    return quantize_network(w, parse_format("int8"), net)


@pytest.mark.parametrize(("net", "bug", "check", "message"), [
    pytest.param("l10", _bias_scale_off_by_two, "consistency", "layer 0: bias b[",
                 id="bias-scale-x2-consistency"),
    pytest.param("l10", _bias_scale_off_by_two, "bound", "layer 0: ",
                 id="bias-scale-x2-bound"),
    pytest.param("mlp256", _bias_scale_off_by_two, "bound", "layer 0: ",
                 id="bias-scale-x2-bound-mlp256"),
    pytest.param("mlp256", _shift_off_by_one, "consistency",
                 "layer 0: requantization of neuron 0", id="activation-scale-x2"),
    pytest.param("mlp256", _wrong_calibration, "consistency",
                 "layer 0: requantization of neuron 0", id="calibration-x4"),
    pytest.param("l10", _neurons_out_of_order, "agreement", "", id="neurons-rotated"),
    pytest.param("l10", _neurons_out_of_order, "consistency", "layer 0: weight",
                 id="neurons-rotated-consistency"),
])
def test_the_checks_catch_quantizer_bugs(net: str, bug, check: str, message: str,
                                         images: np.ndarray) -> None:
    """A qnet corrupted as a quantizer bug would corrupt it fails the named check."""
    layers = float_net(net)
    if bug is _wrong_calibration:
        qnet = bug(net)
    else:
        qnet = quantized(net, "int8", images)
        bug(qnet)
    scales = documented_scales(layers, parse_format("int8"))
    if check == "agreement":
        agree = agreement(qnet, layers, images)
        print(f"{net} with {bug.__name__}: {agree}/100 agree")
        assert agree < MIN_AGREE
        return
    found = (consistency_problems(qnet, layers, scales) if check == "consistency"
             else bound_problems(qnet, layers, scales, images))
    print(found)
    assert any(p.startswith(message) for p in found), found
