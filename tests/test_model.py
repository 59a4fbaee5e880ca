"""Unit tests of gen.core.model, the bit-true integer model, against a plain-Python reference."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.formats import Format
from mnist_fpga.gen.core.model import (
    QLayer,
    QNet,
    accuracy,
    check_images,
    classify,
    forward,
    is_correct,
    pixels_to_input,
    requantize,
)

HYPOTHESIS_EXAMPLES = int(os.environ.get("HYPOTHESIS_EXAMPLES", "50"))

# ---------------------------------------------------------------- the reference


def reference_forward(qnet: QNet, image: list[int]) -> list[list[int]]:
    """docs/numerics.md written out with Python ints and loops, one image of 784 pixels."""
    a = qnet.fmt.a_bits
    x = [p // 2 ** (8 - a) if a <= 8 else p * 2 ** (a - 8) for p in image]
    accs = []
    for layer in qnet.layers:
        w, b = layer.w.tolist(), layer.b.tolist()
        acc = []
        for n in range(layer.n_out):
            s = b[n]
            for i in range(layer.n_in):
                s += w[n][i] * x[i]
            acc.append(s)
        accs.append(acc)
        if layer.hidden:
            n = layer.n_out
            mults = layer.rq_mult if isinstance(layer.rq_mult, list) else [layer.rq_mult] * n
            shifts = layer.rq_shift if isinstance(layer.rq_shift, list) else [layer.rq_shift] * n
            x = [reference_requant(s, m, sh, layer.out_bits)
                 for s, m, sh in zip(acc, mults, shifts, strict=True)]
    return accs


def reference_requant(acc: int, mult: int, shift: int, out_bits: int) -> int:
    """numerics.md section 5 with Python ints: floor division, never a shift operator."""
    r = max(acc, 0) * mult
    y = (r + 2 ** (shift - 1)) // 2**shift if shift >= 1 else r * 2 ** (-shift)
    return min(y, 2**out_bits - 1)


def reference_class(logits: list[int]) -> int:
    if len(logits) == 1:
        return 1 if logits[0] > 0 else 0
    best = 0
    for i, v in enumerate(logits):
        if v > logits[best]:
            best = i
    return best


def acc_width(w: np.ndarray, b: np.ndarray, x_max: int, w_bits: int) -> int:
    """Signed width holding every partial sum (numerics.md, 3), computed independently."""
    bound = 0
    for n in range(w.shape[0]):
        row = w[n].tolist()
        hi = int(b[n]) + x_max * sum(v for v in row if v > 0)
        lo = int(b[n]) + x_max * sum(v for v in row if v < 0)
        bound = max(bound, hi, -lo - 1)
    return max(2, w_bits + 1, bound.bit_length() + 1)


def random_net(
    rng: np.random.Generator, w_bits: int, a_bits: int, sizes: tuple[int, ...],
    extreme: bool = False, per_neuron: bool = False,
) -> QNet:
    """A random integer network (not from quant.py): any weights, biases and rq parameters.

    ``per_neuron``: one (mult, shift) per hidden neuron, shifts from left shifts (<= 0)
    to far past the product width.
    """
    qmax = 2 ** (w_bits - 1) - 1
    a_max = 2**a_bits - 1
    layers = []
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        if extreme:
            w = rng.choice(np.array([-qmax, qmax]), (n_out, n_in))
            if k == 0:
                w[0] = qmax  # neuron 0: the largest positive sum
                if n_out > 1:
                    w[1] = -qmax  # neuron 1: the most negative
        else:
            w = rng.integers(-qmax, qmax + 1, (n_out, n_in))
        w = w.astype(np.int64)
        typical = max(1, int(np.sqrt(n_in)) * qmax * a_max)  # size of a random sum
        b = rng.integers(-typical, typical + 1, n_out).astype(np.int64)
        acc_bits = acc_width(w, b, a_max, w_bits)
        layer = QLayer(w=w, b=b, w_bits=w_bits, a_bits=a_bits, acc_bits=acc_bits,
                       hidden=k < len(sizes) - 2)
        if layer.hidden:
            # a shift putting typical accumulators around the top of the output range
            base = typical.bit_length() + 15 - a_bits
            layer.rq_shift = max(1, base + int(rng.integers(-3, 3)))
            layer.rq_mult = int(rng.integers(2**15, 2**16))
            layer.out_bits = a_bits
            if per_neuron:
                layer.rq_mult = [int(v) for v in rng.integers(1, 2**16, n_out)]
                layer.rq_shift = [int(v) for v in rng.integers(-20, acc_bits + 20, n_out)]
                layer.rq_shift[0], layer.rq_shift[-1] = 0, base  # both sides of 1
        layers.append(layer)
    return QNet(name="t", fmt=Format(w_bits, a_bits), layers=layers)


def random_images(rng: np.random.Generator, n: int) -> np.ndarray:
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    images[0] = 255  # the extremes
    if n > 1:
        images[1] = 0
    return images


def check_against_reference(qnet: QNet, images: np.ndarray) -> None:
    accs = forward(qnet, images)
    assert len(accs) == len(qnet.layers)
    for k, (acc, layer) in enumerate(zip(accs, qnet.layers, strict=True)):
        assert acc.dtype == np.int64 and acc.shape == (len(images), layer.n_out), k
    classes = classify(qnet, accs[-1])
    for j, image in enumerate(images.reshape(len(images), -1).tolist()):
        ref = reference_forward(qnet, image)
        for k, acc in enumerate(accs):
            assert acc[j].tolist() == ref[k], f"image {j}, layer {k}"
        assert int(classes[j]) == reference_class(ref[-1])


# ---------------------------------------------------------------- forward


@pytest.mark.parametrize(
    ("w_bits", "a_bits"), [(8, 8), (4, 8), (2, 2), (16, 16), (3, 12), (12, 3), (16, 2)]
)
@pytest.mark.parametrize("extreme", [False, True], ids=["random", "extreme"])
def test_forward_matches_reference(w_bits: int, a_bits: int, extreme: bool) -> None:
    rng = np.random.default_rng(w_bits * 100 + a_bits + extreme)
    qnet = random_net(rng, w_bits, a_bits, (784, 6, 5, 4), extreme=extreme)
    check_against_reference(qnet, random_images(rng, 3))


@pytest.mark.parametrize(("w_bits", "a_bits"), [(8, 8), (4, 4), (16, 16), (2, 12)])
def test_forward_per_neuron_and_left_shifts_match_reference(w_bits: int, a_bits: int) -> None:
    """Per-neuron (mult, shift), left shifts and shifts past the product: the reference agrees."""
    rng = np.random.default_rng(7000 + w_bits * 100 + a_bits)
    qnet = random_net(rng, w_bits, a_bits, (784, 9, 7, 3), per_neuron=True)
    check_against_reference(qnet, random_images(rng, 4))


def test_forward_one_output_and_single_layer() -> None:
    rng = np.random.default_rng(11)
    for sizes in [(784, 1), (784, 5, 1), (784, 3)]:
        check_against_reference(random_net(rng, 8, 8, sizes), random_images(rng, 4))


def test_forward_extreme_accumulator_is_exact() -> None:
    """All weights +qmax, all pixels 255, w16a16: 784 * 32767 * 65280 (+ bias) exactly."""
    layer = QLayer(w=np.full((2, 784), 32767, dtype=np.int64),
                   b=np.array([0, -(2**40)], dtype=np.int64), w_bits=16, a_bits=16,
                   acc_bits=43, hidden=False)
    layer.w[1] = -32767
    qnet = QNet("x", Format(16, 16), [layer])
    acc = forward(qnet, np.full((1, 784), 255, dtype=np.uint8))[0]
    assert acc.tolist() == [[784 * 32767 * 65280, -(2**40) - 784 * 32767 * 65280]]


def test_forward_accepts_flat_images() -> None:
    rng = np.random.default_rng(4)
    qnet = random_net(rng, 8, 8, (784, 4, 3))
    images = random_images(rng, 3)
    for a, b in zip(forward(qnet, images), forward(qnet, images.reshape(3, 784)), strict=True):
        np.testing.assert_array_equal(a, b)


@settings(deadline=None, max_examples=HYPOTHESIS_EXAMPLES, database=None)
@given(
    w_bits=st.integers(2, 16), a_bits=st.integers(2, 16),
    hidden=st.lists(st.integers(1, 6), min_size=0, max_size=2),
    n_out=st.integers(1, 5), extreme=st.booleans(), seed=st.integers(0, 2**32 - 1),
)
def test_forward_property(
    w_bits: int, a_bits: int, hidden: list[int], n_out: int, extreme: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    qnet = random_net(rng, w_bits, a_bits, (784, *hidden, n_out), extreme=extreme)
    check_against_reference(qnet, random_images(rng, 2))


# ---------------------------------------------------------------- pixels_to_input


@pytest.mark.parametrize("a_bits", range(2, 17))
def test_pixels_to_input_all_values(a_bits: int) -> None:
    p = np.arange(256, dtype=np.uint8)
    x = pixels_to_input(p, a_bits)
    assert x.dtype == np.int64
    if a_bits <= 8:
        expected = [v // 2 ** (8 - a_bits) for v in range(256)]
    else:
        expected = [v * 2 ** (a_bits - 8) for v in range(256)]
    assert x.tolist() == expected
    assert int(x.max()) <= 2**a_bits - 1


def test_pixels_to_input_examples() -> None:
    p = np.array([[0, 1, 15, 16, 128, 255]], dtype=np.uint8)
    assert pixels_to_input(p, 4).tolist() == [[0, 0, 0, 1, 8, 15]]
    assert pixels_to_input(p, 8).tolist() == [[0, 1, 15, 16, 128, 255]]
    assert pixels_to_input(p, 10).tolist() == [[0, 4, 60, 64, 512, 1020]]
    assert pixels_to_input(p, 16).tolist() == [[0, 256, 3840, 4096, 32768, 65280]]
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    assert pixels_to_input(images, 8).shape == (2, 784)
    with pytest.raises(UserError, match="uint8"):
        pixels_to_input(p.astype(np.int64), 8)


# ---------------------------------------------------------------- requantize


def hidden_layer(mult: int, shift: int, out_bits: int, acc_bits: int = 30) -> QLayer:
    return QLayer(w=np.zeros((1, 1), dtype=np.int64), b=np.zeros(1, dtype=np.int64), w_bits=8,
                  a_bits=8, acc_bits=acc_bits, hidden=True, rq_mult=mult, rq_shift=shift,
                  out_bits=out_bits)


def test_requantize_rounds_half_up_relu_and_saturates() -> None:
    layer = hidden_layer(2**15, 16, 4)  # y = round_half_up(r / 2), at most 15
    acc = np.array([-(2**20), -5, -1, 0, 1, 2, 3, 5, 7, 29, 30, 31, 1000])
    assert requantize(acc, layer).tolist() == [0, 0, 0, 0, 1, 1, 2, 3, 4, 15, 15, 15, 15]
    layer = hidden_layer(3 * 2**14, 16, 8)  # y = round_half_up(r * 3 / 4)
    acc = np.array([1, 2, 3, 4, 6, 10, 340, 341, 1000])
    # 0.75 -> 1, 1.5 -> 2, 2.25 -> 2, 3, 4.5 -> 5, 7.5 -> 8, 255, 255.75 -> 256 -> 255, 255
    assert requantize(acc, layer).tolist() == [1, 2, 2, 3, 5, 8, 255, 255, 255]


def test_requantize_random_against_reference() -> None:
    rng = np.random.default_rng(9)
    for _ in range(50):
        mult, shift = int(rng.integers(2**15, 2**16)), int(rng.integers(1, 40))
        out_bits = int(rng.integers(2, 17))
        layer = hidden_layer(mult, shift, out_bits, acc_bits=40)
        acc = rng.integers(-(2**39), 2**39, 200)
        acc[:3] = [0, 2 ** (shift - 1), -1]
        top = 2**out_bits - 1
        expected = [min((max(a, 0) * mult + 2 ** (shift - 1)) // 2**shift, top)
                    for a in acc.tolist()]
        y = requantize(acc, layer)
        assert y.dtype == np.int64 and y.tolist() == expected


def test_requantize_wide_products_are_exact() -> None:
    """acc_bits + 16 > 62: the product leaves int64 and must still be exact."""
    layer = hidden_layer(2**16 - 1, 60, 16, acc_bits=50)
    acc = np.array([2**49 - 1, 2**48 + 12345, 3])
    expected = [min((a * (2**16 - 1) + 2**59) >> 60, 2**16 - 1) for a in acc.tolist()]
    assert requantize(acc, layer).tolist() == expected
    layer = hidden_layer(2**15, 70, 8, acc_bits=20)  # a huge shift: 2**69 leaves int64
    assert requantize(np.array([0, 5, 2**19 - 1]), layer).tolist() == [0, 0, 0]


# ---------------------------------------------------------------- decision


def test_classify_first_max_wins() -> None:
    qnet = random_net(np.random.default_rng(0), 8, 8, (784, 4))
    logits = np.array([[1, 3, 3, 2], [5, 5, 5, 5], [-1, -1, -2, -1], [0, 1, 2, 2],
                       [-9, -8, -8, 9]])
    assert classify(qnet, logits).tolist() == [1, 0, 0, 2, 3]
    assert classify(qnet, logits).dtype == np.int64


def test_classify_one_output() -> None:
    qnet = random_net(np.random.default_rng(0), 8, 8, (784, 1))
    logits = np.array([[0], [1], [-1], [2**40], [-(2**40)]])
    assert classify(qnet, logits).tolist() == [0, 1, 0, 1, 0]  # 1 iff acc > 0


def test_is_correct() -> None:
    zero = random_net(np.random.default_rng(0), 8, 8, (784, 1))
    classes = np.array([1, 0, 1, 0, 0])
    labels = np.array([0, 0, 3, 3, 9], dtype=np.uint8)
    assert is_correct(zero, classes, labels).tolist() == [True, False, False, True, True]
    ten = random_net(np.random.default_rng(0), 8, 8, (784, 10))
    assert is_correct(ten, np.array([0, 3, 1, 9]), np.array([0, 3, 0, 8])).tolist() == [
        True, True, False, False]


def test_accuracy_matches_reference() -> None:
    rng = np.random.default_rng(21)
    qnet = random_net(rng, 8, 8, (784, 5, 3))
    images = random_images(rng, 6)
    classes = [reference_class(reference_forward(qnet, im)[-1])
               for im in images.reshape(6, -1).tolist()]
    labels = np.array([classes[0], classes[1], (classes[2] + 1) % 3, classes[3], 0, 1])
    expected = np.mean([c == int(lab) for c, lab in zip(classes, labels, strict=True)])
    assert accuracy(qnet, images, labels) == pytest.approx(expected)


# ---------------------------------------------------------------- check_images


def test_check_images_accepts() -> None:
    a = np.arange(2 * 784, dtype=np.int64).astype(np.uint8).reshape(2, 28, 28)
    out = check_images(a)
    assert out.shape == (2, 784) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, a.reshape(2, 784))
    np.testing.assert_array_equal(check_images(a.reshape(2, 784)), a.reshape(2, 784))


@pytest.mark.parametrize(
    ("images", "message"),
    [
        (np.zeros((2, 28, 28), dtype=np.float32), "uint8"),
        (np.zeros((2, 28, 28), dtype=np.int64), "uint8"),
        (np.zeros((2, 28, 28), dtype=np.int8), "uint8"),
        (np.zeros((2, 27, 28), dtype=np.uint8), r"shape \(N, 28, 28\) or \(N, 784\)"),
        (np.zeros((2, 785), dtype=np.uint8), "shape"),
        (np.zeros(784, dtype=np.uint8), "shape"),
        (np.zeros((2, 28, 28, 1), dtype=np.uint8), "shape"),
        (np.zeros((28, 28), dtype=np.uint8), "shape"),
    ],
    ids=["float32", "int64", "int8", "27x28", "785", "1d", "4d", "single-2d"],
)
def test_check_images_rejects(images: np.ndarray, message: str) -> None:
    with pytest.raises(UserError, match=message):
        check_images(images)
    qnet = random_net(np.random.default_rng(0), 8, 8, (784, 2))
    with pytest.raises(UserError):
        forward(qnet, images)


# ---------------------------------------------------------------- QNet json


def assert_same_net(a: QNet, b: QNet) -> None:
    assert (a.name, a.fmt, a.source, len(a.layers)) == (b.name, b.fmt, b.source, len(b.layers))
    for la, lb in zip(a.layers, b.layers, strict=True):
        for f in ("w", "b"):
            x, y = getattr(la, f), getattr(lb, f)
            assert y.dtype == np.int64 and x.shape == y.shape
            np.testing.assert_array_equal(x, y)
        for f in ("w_bits", "a_bits", "acc_bits", "hidden", "rq_mult", "rq_shift", "out_bits",
                  "info"):
            assert getattr(la, f) == getattr(lb, f), f
            assert type(getattr(la, f)) is type(getattr(lb, f)), f


def test_qnet_json_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    qnet = random_net(rng, 16, 12, (784, 7, 1), extreme=True)
    qnet.name, qnet.source = "zero", "models/zero.npz"
    qnet.layers[0].b[0] = 2**45 + 1  # beyond float precision
    layer = qnet.layers[0]
    layer.acc_bits = acc_width(layer.w, layer.b, (1 << layer.a_bits) - 1, layer.w_bits)
    qnet.layers[0].info = {"s_in": 1 / 255, "s_w": 0.1 + 0.2, "s_acc": 1e-300}
    text = qnet.to_json()
    back = QNet.from_json(text)
    assert_same_net(qnet, back)
    assert back.to_json() == text
    qnet.save(tmp_path / "q.json")
    assert_same_net(qnet, QNet.load(tmp_path / "q.json"))
    assert not list(tmp_path.glob("*.tmp"))
    images = random_images(rng, 2)
    for x, y in zip(forward(qnet, images), forward(back, images), strict=True):
        np.testing.assert_array_equal(x, y)
