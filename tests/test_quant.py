"""Unit tests of gen.core.quant: the original API, rounding, requantization, widths, files."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.formats import Format, parse_format
from mnist_fpga.gen.core.legal import MAX_SHIFT, MIN_SHIFT, RQ_MULT_BITS, acc_bits_for
from mnist_fpga.gen.core.quant import (
    SANITY_MIN_IMAGES,
    accuracy_warning,
    int_to_vhdl_hex,
    load_float_weights,
    quantize_file,
    quantize_network,
    quantize_symmetric,
    quantize_to_int8,
    requant_params,
    round_half_away,
    shift_params,
)
from mnist_fpga.gen.data.sample import load_sample
from mnist_fpga.paths import DEFAULT_SAMPLE
from tests.nets import float_arrays

MODELS = Path(__file__).resolve().parent.parent / "models"


def exact_round_half_away(v: float) -> int:
    """Independent reference: exact rational rounding, ties away from zero."""
    f = Fraction(v)
    n = math.floor(abs(f) + Fraction(1, 2))
    return n if f >= 0 else -n


# ---------------------------------------------------------------- quantize_to_int8


def test_quantize_to_int8_fixed_scale_rounds_not_truncates() -> None:
    w = np.array([0.0, 0.3, 0.7, -0.7, 0.999, -0.999, 0.5, -0.5, 1.0, -1.0])
    q, scale = quantize_to_int8(w)
    assert scale == 127.0
    assert q.dtype == np.int8
    # 0.7*127 = 88.9 -> 89 (truncation gave 88); 0.5*127 = 63.5 -> 64 (tie away from zero)
    assert q.tolist() == [0, 38, 89, -89, 127, -127, 64, -64, 127, -127]


def test_quantize_to_int8_scale_to_max() -> None:
    w = np.array([[0.25, -0.5], [0.1, 0.0]])
    q, scale = quantize_to_int8(w, scale_to_max=True)
    assert scale == pytest.approx(127 / 0.5)
    assert q.dtype == np.int8 and q.shape == (2, 2)
    assert q.tolist() == [[64, -127], [25, 0]]  # 63.5 -> 64, 25.4 -> 25


def test_quantize_to_int8_saturates_symmetrically() -> None:
    q, _ = quantize_to_int8(np.array([2.0, -3.0, 1.5, -1.01, 1e9, -1e9]))
    assert q.tolist() == [127, -127, 127, -127, 127, -127]  # never wraps, never -128


def test_quantize_to_int8_matches_exact_rounding() -> None:
    w = np.random.default_rng(1).uniform(-1.0, 1.0, 2000)
    q, _ = quantize_to_int8(w)
    assert q.tolist() == [exact_round_half_away(v * 127.0) for v in w.tolist()]
    q, scale = quantize_to_int8(w, scale_to_max=True)
    assert q.tolist() == [exact_round_half_away(v * scale) for v in w.tolist()]
    assert int(np.max(np.abs(q.astype(np.int64)))) == 127


# ---------------------------------------------------------------- quantize_symmetric


@pytest.mark.parametrize("bits", range(2, 17))
def test_quantize_symmetric_widths(bits: int) -> None:
    rng = np.random.default_rng(bits)
    w = rng.normal(0.0, 0.3, (7, 11))
    q, scale = quantize_symmetric(w, bits)
    qmax = 2 ** (bits - 1) - 1
    assert q.dtype == np.int64 and q.shape == w.shape
    assert scale == pytest.approx(qmax / np.max(np.abs(w)))
    assert int(q.min()) >= -qmax and int(q.max()) <= qmax
    assert int(np.max(np.abs(q))) == qmax  # the full range is used
    assert q.ravel().tolist() == [exact_round_half_away(v * scale) for v in w.ravel().tolist()]


@pytest.mark.parametrize("bits", [2, 3, 8, 16])
def test_quantize_symmetric_explicit_scale_clips(bits: int) -> None:
    qmax = 2 ** (bits - 1) - 1
    q, scale = quantize_symmetric(np.array([0.5, -0.5, 1.5, -2.5, 1e6, -1e6]), bits, scale=1.0)
    assert scale == 1.0
    expected = [1, -1, 2, -3, qmax, -qmax]
    assert q.tolist() == [max(-qmax, min(qmax, v)) for v in expected]


def test_quantize_symmetric_all_zero() -> None:
    q, scale = quantize_symmetric(np.zeros((3, 4)), 8)
    assert scale == 1.0 and not q.any()


# ---------------------------------------------------------------- int_to_vhdl_hex


@pytest.mark.parametrize(
    ("v", "bits", "text"),
    [(-12, 8, "F4"), (0, 8, "00"), (127, 8, "7F"), (-128, 8, "80"), (-1, 8, "FF"),
     (1, 16, "0001"), (-1, 16, "FFFF"), (5, 12, "005"), (-1, 5, "1F"), (-16, 5, "10"),
     (-1, 1, "1"), (0, 1, "0"), (-2, 2, "2"), (-32768, 16, "8000")],
)
def test_int_to_vhdl_hex_examples(v: int, bits: int, text: str) -> None:
    assert int_to_vhdl_hex(v, bits) == text


@pytest.mark.parametrize("bits", range(1, 11))
def test_int_to_vhdl_hex_twos_complement_all_values(bits: int) -> None:
    digits = (bits + 3) // 4
    for v in range(-(2 ** (bits - 1)), 2 ** (bits - 1)):
        text = int_to_vhdl_hex(v, bits)
        assert len(text) == digits and text == text.upper()
        u = int(text, 16)
        assert u < 2**bits
        assert (u - 2**bits if u >= 2 ** (bits - 1) else u) == v  # two's complement


def test_int_to_vhdl_hex_accepts_numpy_ints() -> None:
    assert int_to_vhdl_hex(np.int8(-12), 8) == "F4"
    assert int_to_vhdl_hex(np.int64(300), 12) == "12C"


@pytest.mark.parametrize(("v", "bits"), [(-129, 8), (256, 8), (-9, 4), (16, 4), (-2, 1),
                                         (2, 1), (1 << 20, 16), (0, 0)])
def test_int_to_vhdl_hex_out_of_range(v: int, bits: int) -> None:
    with pytest.raises(ValueError):
        int_to_vhdl_hex(v, bits)


# ---------------------------------------------------------------- round_half_away


def test_round_half_away_examples() -> None:
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.4, -0.6, 0.0, 3.0, -7.49])
    assert round_half_away(x).tolist() == [1, 2, 3, -1, -2, -3, 0, -1, 0, 3, -7]
    assert float(round_half_away(2.5)) == 3.0 and float(round_half_away(-2.5)) == -3.0


def test_round_half_away_float_edge_cases() -> None:
    below_half = 0.49999999999999994  # the largest double < 0.5: floor(x + 0.5) gives 1
    big = 2.0**52 + 1  # odd integer: x + 0.5 rounds to even, floor gives 2**52 + 2
    x = np.array([below_half, -below_half, big, -big, 2.0**53, 1e300])
    assert round_half_away(x).tolist() == [0.0, 0.0, big, -big, 2.0**53, 1e300]


def test_round_half_away_random_against_exact() -> None:
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-1e4, 1e4, 3000), rng.integers(-1000, 1000, 500) + 0.5])
    assert round_half_away(x).tolist() == [float(exact_round_half_away(v)) for v in x.tolist()]


# ---------------------------------------------------------------- requant_params


def test_requant_params_random_ratios() -> None:
    rng = np.random.default_rng(3)
    ratios = 2.0 ** rng.uniform(-40.0, 14.99, 3000)
    for ratio in [*ratios.tolist(), 1.0, 0.5, 2.0**-30, 1.5, 2.0**14, 1 / 3]:
        mult, shift = requant_params(ratio)
        assert isinstance(mult, int) and isinstance(shift, int)
        assert 2 ** (RQ_MULT_BITS - 1) <= mult < 2**RQ_MULT_BITS
        # mult is ratio * 2**shift rounded to nearest: error at most half a unit
        assert abs(Fraction(mult) - Fraction(ratio) * 2**shift) <= Fraction(1, 2)
        assert mult / 2**shift == pytest.approx(ratio, rel=2.0**-15)


def test_requant_params_exact_values_and_renormalisation() -> None:
    assert requant_params(1.0) == (32768, 15)
    assert requant_params(0.5) == (32768, 16)
    assert requant_params(0.75) == (49152, 16)
    assert requant_params(2.0**14) == (32768, 1)
    # rounds up to 2**16: renormalised to 2**15 with one shift less
    assert requant_params(1 - 2.0**-20) == (32768, 15)
    assert requant_params(0.5 - 2.0**-22) == (32768, 16)


def reference_requant_params(ratio: float) -> tuple[int, int]:
    """Independent reference: exact rationals, search the shift whose rounded mult is in range."""
    f = Fraction(ratio)
    for shift in range(MAX_SHIFT, MIN_SHIFT - 1, -1):  # the largest shift first
        mult = exact_round_half_away(f * Fraction(2) ** shift)
        if mult < 2**RQ_MULT_BITS:
            return mult, shift
    raise AssertionError(ratio)


@pytest.mark.parametrize("ratio", [2.0**15, 2.0**15 - 0.01, 1e6, 2.0**40, 1.0, 0.3, 2.0**-40,
                                   1 - 2.0**-20, 0.5 - 2.0**-22, 2.0**14])
def test_requant_params_against_reference(ratio: float) -> None:
    """Ratios >= 2**15 give left shifts (shift <= 0) instead of a refusal."""
    assert requant_params(ratio) == reference_requant_params(ratio)


def test_requant_params_random_against_reference() -> None:
    rng = np.random.default_rng(31)
    for ratio in (2.0 ** rng.uniform(-60.0, 60.0, 500)).tolist():
        assert requant_params(ratio) == reference_requant_params(ratio), ratio


def reference_shift_params(ratio: float) -> tuple[int, int]:
    """Independent reference: the power of two nearest to ``ratio`` on a log scale.

    ``2**-s`` is nearer than ``2**-(s+1)`` exactly when ``ratio**2 > 2**-(2s+1)``
    (exact rational comparison, no logarithm).
    """
    f = Fraction(ratio)
    s = MAX_SHIFT
    while s > MIN_SHIFT and f * f > Fraction(2) ** (-(2 * s - 1)):
        s -= 1  # 2**-(s-1) is nearer
    return 1, s


def test_shift_params_against_reference() -> None:
    rng = np.random.default_rng(32)
    ratios = [*(2.0 ** rng.uniform(-50.0, 50.0, 500)).tolist(), 0.5, 0.75, 1.0, 1.5, 2.0**-9]
    for ratio in ratios:
        assert shift_params(ratio) == reference_shift_params(ratio), ratio
    assert shift_params(1.0) == (1, 0)  # a ratio >= 0.5: left shift by 0, no refusal
    assert shift_params(4.0) == (1, -2)


@pytest.mark.parametrize("ratio", [0.0, -1.0, float("nan"), float("inf")])
def test_requant_params_not_positive_finite(ratio: float) -> None:
    with pytest.raises(UserError, match="finite positive"):
        requant_params(ratio)


# ---------------------------------------------------------------- acc_bits_for


def signed_width(values: set[int]) -> int:
    """Smallest two's-complement width (at least 2) holding every value."""
    bits = 2
    while not all(-(2 ** (bits - 1)) <= v < 2 ** (bits - 1) for v in values):
        bits += 1
    return bits


def all_partial_sums(w_row: list[int], b: int, x_max: int) -> set[int]:
    """Every prefix sum b + w[i0]x[i0] + ... in every input order, for every input vector."""
    sums = {b}
    n = len(w_row)
    for x in itertools.product(range(x_max + 1), repeat=n):
        for order in itertools.permutations(range(n)):
            s = b
            for i in order:
                s += w_row[i] * x[i]
                sums.add(s)
    return sums


@pytest.mark.parametrize("seed", range(40))
def test_acc_bits_for_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_out, n_in = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    wmax = int(rng.choice([1, 7, 127]))
    x_max = int(rng.choice([1, 3]))
    w = rng.integers(-wmax, wmax + 1, (n_out, n_in))
    if seed % 4 == 0:  # extreme: all weights at one end of the range
        w = np.full((n_out, n_in), wmax if seed % 8 == 0 else -wmax)
    b = rng.integers(-300, 301, n_out)
    bits = acc_bits_for(w, b, x_max)
    sums: set[int] = set()
    for n in range(n_out):
        sums |= all_partial_sums(w[n].tolist(), int(b[n]), x_max)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    assert all(lo <= s <= hi for s in sums)  # every partial sum fits
    if bits > 2:  # one bit less does not: the bound is attained
        assert any(not -(2 ** (bits - 2)) <= s <= 2 ** (bits - 2) - 1 for s in sums)
    assert bits == signed_width(sums)


def test_acc_bits_for_full_layer_extremes() -> None:
    # 784 * 127 * 255 = 25_390_320, between 2**24 and 2**25: 26 signed bits
    assert acc_bits_for(np.full((2, 784), 127), np.zeros(2, dtype=np.int64), 255) == 26
    assert acc_bits_for(np.full((2, 784), -127), np.zeros(2, dtype=np.int64), 255) == 26
    # the bias alone counts, negative and positive
    assert acc_bits_for(np.zeros((1, 3), dtype=np.int64), np.array([-(2**20)]), 255) == 21
    assert acc_bits_for(np.zeros((1, 3), dtype=np.int64), np.array([2**20]), 255) == 22
    assert acc_bits_for(np.zeros((1, 3), dtype=np.int64), np.array([0]), 255) == 2
    # 16-bit extremes stay exact (no float, no int64 overflow)
    w = np.full((1, 784), 32767)
    expected = signed_width({784 * 32767 * 65535})
    assert acc_bits_for(w, np.array([0]), 65535) == expected == 42


# ---------------------------------------------------------------- load_float_weights


def save_npz(path: Path, arrays: dict) -> Path:
    np.savez(path, **arrays)
    return path


def test_load_float_weights_good(tmp_path: Path) -> None:
    arrays = float_arrays(np.random.default_rng(0))
    arrays["W1"] = np.round(arrays["W1"] * 10).astype(np.int16)  # integer dtypes are numbers too
    out = load_float_weights(save_npz(tmp_path / "net.npz", arrays))
    assert sorted(out) == ["W0", "W1", "b0", "b1", "calib0"]
    assert all(v.dtype == np.float64 for v in out.values())
    assert out["W0"].shape == (16, 784) and out["W1"].shape == (10, 16)
    assert out["calib0"].shape == () and float(out["calib0"]) == 2.5
    np.testing.assert_array_equal(out["W1"], arrays["W1"].astype(np.float64))


def test_load_float_weights_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="does not exist"):
        load_float_weights(tmp_path / "nope.npz")


def good_bytes(tmp_path: Path) -> bytes:
    return save_npz(tmp_path / "good.npz", float_arrays(np.random.default_rng(0))).read_bytes()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (lambda good: b"this is not a zip file\n", "not a readable .npz"),
        (lambda good: b"", "not a readable .npz"),
        (lambda good: good[: len(good) // 2], "not a readable .npz"),  # truncated
        (lambda good: good[:-30], "not a readable .npz"),  # central directory cut
    ],
    ids=["text", "empty", "truncated-half", "truncated-end"],
)
def test_load_float_weights_unreadable(tmp_path: Path, content, message: str) -> None:
    path = tmp_path / "bad.npz"
    path.write_bytes(content(good_bytes(tmp_path)))
    with pytest.raises(UserError, match=message):
        load_float_weights(path)


def test_load_float_weights_npy_not_npz(tmp_path: Path) -> None:
    path = tmp_path / "single.npz"
    with path.open("wb") as f:
        np.save(f, np.zeros((16, 784)))
    with pytest.raises(UserError, match=r"single array, not a \.npz"):
        load_float_weights(path)


def test_load_float_weights_object_array(tmp_path: Path) -> None:
    arrays = float_arrays(np.random.default_rng(0))
    arrays["W0"] = np.array([None, 1], dtype=object)
    with pytest.raises(UserError, match=r"not a readable \.npz"):
        load_float_weights(save_npz(tmp_path / "obj.npz", arrays))


def _drop(key: str):
    return lambda a: {k: v for k, v in a.items() if k != key}


def _set(key: str, value):
    return lambda a: {**a, key: value(a) if callable(value) else value}


def _nan_at(key: str, value: float):
    def edit(a: dict) -> dict:
        arr = np.array(a[key], dtype=np.float64)
        arr.flat[3] = value
        return {**a, key: arr}
    return edit


BAD_WEIGHTS = {
    "no-W0": (lambda a: {k: v for k, v in a.items() if k not in ("W0", "b0", "W1", "b1")},
              r"no layer: key 'W0' is missing"),
    "no-W0-but-W1": (_drop("W0"), r"key 'W0' is missing"),
    "no-b0": (_drop("b0"), r"key 'b0' \(bias of layer 0\) is missing"),
    "no-b1": (_drop("b1"), r"key 'b1' \(bias of layer 1\) is missing"),
    "W0-783-inputs": (_set("W0", np.zeros((16, 783))), r"W0 has shape \(16, 783\), expected "
                      r"\(n_neurons, 784\)"),
    "W0-transposed": (_set("W0", np.zeros((784, 16))), r"W0 has shape \(784, 16\)"),
    "W0-1d": (_set("W0", np.zeros(784)), r"W0 has shape \(784,\)"),
    "W0-3d": (_set("W0", np.zeros((16, 784, 1))), r"W0 has shape"),
    "W0-no-neurons": (_set("W0", np.zeros((0, 784))), r"W0 has shape \(0, 784\)"),
    "W1-wrong-inputs": (_set("W1", np.zeros((10, 15))), r"W1 has shape \(10, 15\), expected "
                        r"\(n_neurons, 16\)"),
    "b0-short": (_set("b0", np.zeros(15)), r"b0 has shape \(15,\), expected \(16,\)"),
    "b1-2d": (_set("b1", np.zeros((10, 1))), r"b1 has shape \(10, 1\), expected \(10,\)"),
    "b1-scalar": (_set("b1", np.float64(0.0)), r"b1 has shape \(\), expected \(10,\)"),
    "W0-nan": (_nan_at("W0", float("nan")), r"W0 contains NaN or infinite"),
    "W1-inf": (_nan_at("W1", float("inf")), r"W1 contains NaN or infinite"),
    "b0-minus-inf": (_nan_at("b0", -float("inf")), r"b0 contains NaN or infinite"),
    "W0-strings": (_set("W0", np.full((16, 784), "0.1")), r"W0 has non-numeric dtype <U3"),
    "b1-bool": (_set("b1", np.zeros(10, dtype=bool)), r"b1 has non-numeric dtype bool"),
    "W1-complex": (_set("W1", np.zeros((10, 16), dtype=complex)), r"W1 has non-numeric dtype"),
    "calib-zero": (_set("calib0", np.float32(0.0)), r"calib0 must be one finite value > 0"),
    "calib-negative": (_set("calib0", -1.0), r"calib0 must be one finite value > 0"),
    "calib-nan": (_set("calib0", float("nan")), r"calib0 must be one finite value > 0"),
    "calib-inf": (_set("calib0", float("inf")), r"calib0 must be one finite value > 0"),
    "calib-two": (_set("calib0", np.array([1.0, 2.0])), r"calib0 must be one finite value"),
    "calib-empty": (_set("calib0", np.array([])), r"calib0 must be one finite value"),
    "calib-string": (_set("calib0", np.array("abc")), r"calib0 must be one finite value"),
}


@pytest.mark.parametrize("case", BAD_WEIGHTS, ids=list(BAD_WEIGHTS))
def test_load_float_weights_bad_content(tmp_path: Path, case: str) -> None:
    edit, message = BAD_WEIGHTS[case]
    path = save_npz(tmp_path / "bad.npz", edit(float_arrays(np.random.default_rng(0))))
    with pytest.raises(UserError, match=message) as info:
        load_float_weights(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_load_float_weights_three_layers_chain(tmp_path: Path) -> None:
    arrays = float_arrays(np.random.default_rng(0), (784, 12, 8, 3))
    assert sorted(load_float_weights(save_npz(tmp_path / "a.npz", arrays))) == [
        "W0", "W1", "W2", "b0", "b1", "b2", "calib0", "calib1"]
    arrays["W2"] = np.zeros((3, 12))  # inputs must be the previous layer's 8 outputs
    with pytest.raises(UserError, match=r"W2 has shape \(3, 12\), expected \(n_neurons, 8\)"):
        load_float_weights(save_npz(tmp_path / "b.npz", arrays))


# ---------------------------------------------------------------- quantize_network


@pytest.mark.parametrize("fmt", [Format(8, 8), Format(4, 8), Format(2, 2), Format(16, 16),
                                 Format(6, 12)], ids=lambda f: f.name)
def test_quantize_network_structure(tmp_path: Path, fmt: Format) -> None:
    arrays = float_arrays(np.random.default_rng(5), (784, 16, 12, 10))
    weights = load_float_weights(save_npz(tmp_path / "w.npz", arrays))
    qnet = quantize_network(weights, fmt, "net", source="w.npz")
    assert qnet.name == "net" and qnet.fmt == fmt and qnet.source == "w.npz"
    assert [layer.hidden for layer in qnet.layers] == [True, True, False]
    assert [(la.n_in, la.n_out) for la in qnet.layers] == [(784, 16), (16, 12), (12, 10)]
    assert qnet.n_classes == 10
    a_max = 2**fmt.a_bits - 1
    qmax = 2 ** (fmt.w_bits - 1) - 1
    for k, layer in enumerate(qnet.layers):
        assert layer.w.dtype == np.int64 and layer.b.dtype == np.int64
        assert (layer.w_bits, layer.a_bits) == (fmt.w_bits, fmt.a_bits)
        assert int(np.max(np.abs(layer.w))) == qmax
        assert layer.acc_bits == acc_bits_for(layer.w, layer.b, a_max)
        assert len(set(layer.info["s_acc"])) == 1  # one scale per layer (no -pn)
        s_acc = layer.info["s_acc"][0]
        assert layer.b.tolist() == [exact_round_half_away(v / s_acc)
                                    for v in weights[f"b{k}"].tolist()]
        if layer.hidden:
            assert layer.out_bits == fmt.a_bits
            assert 2**15 <= layer.rq_mult < 2**16 and layer.rq_shift >= 1
            ratio = s_acc / (float(weights[f"calib{k}"]) / a_max)
            assert (layer.rq_mult, layer.rq_shift) == requant_params(ratio)
            # the next layer's input scale is the one the integers really carry
            nxt = qnet.layers[k + 1].info["s_in"]
            assert nxt == pytest.approx(s_acc * 2**layer.rq_shift / layer.rq_mult, rel=1e-12)
        else:
            assert (layer.out_bits, layer.rq_mult, layer.rq_shift) == (0, 0, 0)
    assert qnet.layers[0].info["s_in"] == pytest.approx(2.0 ** (8 - fmt.a_bits) / 255)


def test_quantize_file_needs_calibration(tmp_path: Path) -> None:
    arrays = float_arrays(np.random.default_rng(2))
    del arrays["calib0"]
    path = save_npz(tmp_path / "nocalib.npz", arrays)
    with pytest.raises(UserError, match="calib0 is missing and no calibration images"):
        quantize_file(path, Format(8, 8))
    images = np.random.default_rng(2).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    qnet = quantize_file(path, Format(8, 8), calib_images=images)
    assert qnet.name == "nocalib" and qnet.source == "nocalib.npz"
    assert qnet.layers[0].hidden and 2**15 <= qnet.layers[0].rq_mult < 2**16


# ---------------------------------------------------------------- accuracy_warning


def _warning(net: str, fmt: str, count: int = 100, labels: np.ndarray | None = None,
             ) -> str | None:
    """accuracy_warning for a committed model in ``fmt`` on the sample's first images."""
    images, sample_labels = load_sample(DEFAULT_SAMPLE)
    qnet = quantize_file(MODELS / f"{net}.npz", parse_format(fmt), net, calib_images=images)
    labels = sample_labels if labels is None else labels
    return accuracy_warning(load_float_weights(MODELS / f"{net}.npz"), qnet, images[:count],
                            labels[:count])


def test_q8_0_warns_int8_does_not() -> None:
    """q8_0 is legal but rounds mlp256's weights (|w| < 0.5) to 0: 8 % on the sample."""
    assert _warning("mlp256", "q8_0") == (
        "warning: q8_0 gives 8.0 % on the sample's 100 images (float: 100.0 %): this format "
        "loses the network's accuracy")
    assert _warning("mlp256", "int8") is None
    assert _warning("mlp256", "int3") is None  # 78 %: worse, but most of the lead kept


def test_warning_measures_against_the_constant_answer() -> None:
    """zero in int2 answers "not a 0" to every image: 92 %, far above 50 %, still a warning
    (a constant answer gets 92 % too); a random network, no better than a constant, none."""
    assert _warning("zero", "int2") == (
        "warning: int2 gives 92.0 % on the sample's 100 images (float: 100.0 %): this format "
        "loses the network's accuracy")
    assert _warning("zero", "int8") is None
    images, labels = load_sample(DEFAULT_SAMPLE)
    arrays = {k: np.asarray(v, np.float64)
              for k, v in float_arrays(np.random.default_rng(4)).items()}
    qnet = quantize_network(arrays, parse_format("int2"), "rnd")
    assert accuracy_warning(arrays, qnet, images, labels) is None


def test_warning_counts_labelled_images_only() -> None:
    """Images with label -1 (a user's) are left out; too few labelled images: no check."""
    assert _warning("mlp256", "q8_0", count=SANITY_MIN_IMAGES - 1) is None
    _, labels = load_sample(DEFAULT_SAMPLE)
    some = labels.astype(np.int64)
    some[50:] = -1
    assert _warning("mlp256", "q8_0", labels=some).startswith(
        "warning: q8_0 gives 10.0 % on the sample's 50 images (float: 100.0 %)")
    assert _warning("mlp256", "q8_0", labels=np.full(100, -1)) is None
