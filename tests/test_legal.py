"""gen.core.legal.check_qnet refuses what the RTL cannot compute, each case with one line
(docs/numerics.md, 7): non-integer weights and biases, wrong lengths, requantization
values that are neither one integer nor a list of one per neuron."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.formats import parse_format
from mnist_fpga.gen.core.legal import check_qnet
from mnist_fpga.gen.core.model import QNet, forward
from mnist_fpga.gen.core.quant import quantize_network
from mnist_fpga.gen.hdl.generate import render_network
from tests.nets import float_arrays

IMAGES = np.zeros((1, 784), np.uint8)


def good(fmt: str = "int8") -> QNet:
    """A legal 784-16-10 network (per-layer requantization, or per neuron with -pn)."""
    rng = np.random.default_rng(3)
    weights = {k: np.asarray(v, dtype=np.float64) for k, v in float_arrays(rng).items()}
    return quantize_network(weights, parse_format(fmt), "net")


def _set(layer: int, field: str, value: Callable[[object], object]) -> Callable[[QNet], None]:
    """A change: ``qnet.layers[layer].<field> = value(old value)``."""
    return lambda q: setattr(q.layers[layer], field, value(getattr(q.layers[layer], field)))


def _entry(layer: int, field: str, index: tuple[int, ...], value: float) -> Callable[[QNet], None]:
    """A change: one entry of an array set to ``value`` (the array becomes float64)."""

    def change(q: QNet) -> None:
        a = getattr(q.layers[layer], field).astype(np.float64)
        a[index] = value
        setattr(q.layers[layer], field, a)

    return change


W = "layer 0 of net \\(int8\\): "
PN = "layer 0 of net \\(int8-pn\\): "
BAD = [  # (id, format, change, the line)
    ("weight-half", "int8", _entry(0, "w", (0, 0), 0.5),
     W + r"weight w\[0, 0\] = 0.5 is not an integer$"),
    ("weight-nan", "int8", _entry(1, "w", (2, 3), np.nan),
     "layer 1 of net \\(int8\\): " + r"weight w\[2, 3\] = nan is not an integer$"),
    ("weight-inf", "int8", _entry(0, "w", (0, 5), np.inf), r"w\[0, 5\] = inf is not"),
    ("weight-float-integral", "int8", _set(0, "w", lambda w: w.astype(np.float64)),
     W + "weights have dtype float64; integers are needed \\(int64\\)$"),
    ("weight-object", "int8", _set(0, "w", lambda w: w.astype(object)),
     "weights have dtype object"),
    ("weight-bool", "int8", _set(0, "w", lambda w: w > 0), "weights have dtype bool"),
    ("weight-uint64", "int8", _set(0, "w", lambda w: np.abs(w).astype(np.uint64)),
     "weights have dtype uint64"),
    ("weight-string", "int8", _set(0, "w", lambda w: w.astype(str)), "weights have dtype <U"),
    ("weight-list", "int8", _set(0, "w", lambda w: w.tolist()),
     W + r"weights are a list, not a numpy integer array \(neurons, inputs\)$"),
    ("weight-1d", "int8", _set(0, "w", lambda w: w[0]),
     W + r"weights have shape \(784,\), expected \(neurons, inputs\)$"),
    ("bias-half", "int8", _entry(0, "b", (3,), -0.5), W + r"bias b\[3\] = -0.5 is not an integer$"),
    ("bias-short", "int8", _set(0, "b", lambda b: b[:15]), W + "15 biases for 16 neurons$"),
    ("bias-long", "int8", _set(1, "b", lambda b: np.append(b, 0)),
     "layer 1 of net \\(int8\\): 11 biases for 10 neurons$"),
    ("bias-2d", "int8", _set(0, "b", lambda b: b[:, None]),
     W + r"biases have shape \(16, 1\), expected \(neurons,\)$"),
    ("mult-float", "int8", _set(0, "rq_mult", lambda m: m + 0.5),
     W + r"requantization multiplier \d+\.5 is not an integer$"),
    ("mult-bool", "int8", _set(0, "rq_mult", lambda m: True),
     W + "requantization multiplier True is not an integer$"),
    ("shift-float", "int8", _set(0, "rq_shift", float),
     W + r"requantization shift \d+\.0 is not an integer$"),
    ("mult-tuple", "int8-pn", _set(0, "rq_mult", tuple),
     PN + "requantization multipliers given as a tuple: one integer for the layer, or a list "
          "of one per neuron$"),
    ("shift-array", "int8-pn", _set(0, "rq_shift", np.array),
     PN + "requantization shifts given as a ndarray"),
    ("mult-per-neuron-short", "int8-pn", _set(0, "rq_mult", lambda m: m[:15]),
     PN + r"15 requantization multipliers for 16 neurons \(one integer for the layer, or a "
          r"list of one per neuron\)$"),
    ("shift-per-neuron-long", "int8-pn", _set(0, "rq_shift", lambda s: [*s, 3]),
     PN + "17 requantization shifts for 16 neurons"),
    ("mult-per-neuron-float", "int8-pn", _set(0, "rq_mult", lambda m: [*m[:-1], 1.5]),
     PN + "requantization multiplier 1.5 is not an integer$"),
    ("mult-list-shift-int", "int8-pn", _set(0, "rq_shift", lambda s: s[0]),
     PN + "multipliers and shifts must both be per neuron or both per layer$"),
    ("w-bits-float", "int8", _set(0, "w_bits", float), W + "weight width 8.0 is not an integer$"),
    ("acc-bits-string", "int8", _set(1, "acc_bits", str),
     r"layer 1 of net \(int8\): accumulator width '\d+' is not an integer$"),
    ("out-bits-float", "int8", _set(0, "out_bits", float), W + "output width 8.0 is not an"),
]


@pytest.mark.parametrize("fmt", ["int8", "int8-pn", "int4-shift", "int16"])
def test_good_networks_pass(fmt: str) -> None:
    check_qnet(good(fmt))


def test_numpy_integers_are_integers() -> None:
    """int32 arrays and numpy integer constants are fine: nothing is lost in int64."""
    q = good()
    q.layers[0].w, q.layers[0].b = q.layers[0].w.astype(np.int8), q.layers[0].b.astype(np.int32)
    q.layers[0].rq_mult, q.layers[0].rq_shift = (np.int64(q.layers[0].rq_mult),
                                                 np.int32(q.layers[0].rq_shift))
    check_qnet(q)
    np.testing.assert_array_equal(forward(q, IMAGES)[-1], forward(good(), IMAGES)[-1])
    q = good("int8-pn")
    q.layers[0].rq_mult = [np.int64(m) for m in q.layers[0].rq_mult]
    check_qnet(q)


@pytest.mark.parametrize(("fmt", "change", "line"), [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_check_qnet_refuses(fmt: str, change, line: str) -> None:
    """check_qnet, the model and the generator refuse it with the same one line."""
    q = good(fmt)
    check_qnet(copy.deepcopy(q))  # legal before the change
    change(q)
    for use in (check_qnet, lambda n: forward(n, IMAGES), lambda n: render_network(n, "x")):
        with pytest.raises(UserError, match=line) as exc:
            use(q)
        assert "\n" not in str(exc.value)


def test_unchecked_they_misbehave() -> None:
    """Why the checks: unchecked, these networks fail elsewhere or compute wrongly: the
    model with a 0.5 weight differs from the same net with that weight truncated (what the
    ROM packing would write), and a short bias makes acc_bits_for's zip raise."""
    q = good()
    half = copy.deepcopy(q)
    half.layers[0].w = half.layers[0].w.astype(np.float64)
    half.layers[0].w[0, :] += 0.5
    x = np.full(784, 255.0)
    assert not np.array_equal(half.layers[0].w @ x, np.trunc(half.layers[0].w) @ x)
    from mnist_fpga.gen.core.legal import acc_bits_for

    with pytest.raises(ValueError):
        acc_bits_for(q.layers[0].w, q.layers[0].b[:15], 255, 8)


def test_qnet_json_keeps_fractions(tmp_path: Path) -> None:
    """A hand-written qnet.json with 0.5 loads as a float array (not truncated to 0)."""
    q = good()
    q.save(tmp_path / "q.json")
    text = (tmp_path / "q.json").read_text()
    w0 = q.layers[0].w[0, 0]
    assert text.count(f'"w":[[{w0},') == 1
    (tmp_path / "half.json").write_text(text.replace(f'"w":[[{w0},', '"w":[[0.5,', 1))
    back = QNet.load(tmp_path / "half.json")
    assert back.layers[0].w[0, 0] == 0.5
    with pytest.raises(UserError, match=r"weight w\[0, 0\] = 0.5 is not an integer"):
        check_qnet(back)
    assert QNet.load(tmp_path / "q.json").layers[0].w.dtype == np.int64


@pytest.mark.parametrize(("text", "line"), [
    ("W0\n", r"is not a readable qnet.json \(Expecting value: line 1 column 1"),
    ('{"name": "n"}', r"is not a readable qnet.json \(missing key 'layers'\)"),
    ('{"name": "n", "format": "int8", "layers": [{"w": [[1]], "b": [0]}]}',
     r"is not a readable qnet.json \(QLayer.__init__\(\) missing"),
    ('{"name": "n", "format": "int8", "layers": [{"w": [[1, 2], [1]], "b": [0, 0]}]}',
     r"is not a readable qnet.json \(layer 0: 'w' and 'b' must be rectangular arrays of "
     r"numbers\)$"),
], ids=["not-json", "no-layers", "layer-fields-missing", "ragged-weights"])
def test_qnet_load_refuses_files(tmp_path: Path, text: str, line: str) -> None:
    (tmp_path / "q.json").write_text(text)
    with pytest.raises(UserError, match=line):
        QNet.load(tmp_path / "q.json")
    with pytest.raises(UserError, match="does not exist"):
        QNet.load(tmp_path / "nope.json")
