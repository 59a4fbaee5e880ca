"""Quick tests of train.qat (fake-quant forward = the integer model) and gen.reports.report."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.formats import parse_format
from mnist_fpga.gen.core.model import classify, forward, pixels_to_input, requantize
from mnist_fpga.gen.core.quant import quantize_file
from mnist_fpga.gen.reports.report import (
    AccRow,
    acc_row,
    headroom_rows,
    signed_bits,
    write_accuracy_csv,
)

torch = pytest.importorskip("torch")

from mnist_fpga.train import qat  # noqa: E402 (after the torch check)
from mnist_fpga.train.train import save_model  # noqa: E402


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fake digits: class c lights up row band c, plus noise (uint8 images, labels)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 80, size=(n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, 2 * c + 4 : 2 * c + 6, 4:24] = rng.integers(120, 256)
    return images, labels


def _tiny(fmt_name: str, seed: int = 0) -> qat.QatNet:
    """A random 784-16-10 QAT net with clips and calibs set from synthetic images."""
    torch.manual_seed(seed)
    fmt = parse_format(fmt_name)
    model = qat.QatNet([784, 16, 10], fmt)
    with torch.no_grad():
        for lin in model.linears:
            lin.bias.uniform_(-0.3, 0.3)  # varied biases, so bias rounding is exercised too
            if fmt.frac is not None:  # fixed point: weights of a size its step can see
                lin.weight.normal_(0.0, 0.1)
                lin.weight[:2, 0] = torch.tensor([3.0, -3.0])  # past the range: clamped
    qat.init_clips(model, _synthetic(200, seed=seed + 1)[0])
    return model


FORMATS = ["int8", "int4", "w2a2", "w4a8", "w3a5", "int4-pn", "w3a5-shift", "int4-pn-shift",
           "q2_6", "q1_3-shift", "q2_2-pn"]


@pytest.mark.parametrize("fmt_name", FORMATS)
def test_fake_quant_forward_matches_integer_model(fmt_name: str, tmp_path: Path) -> None:
    """Saved QAT weights -> gen.core.quant -> gen.core.model: the QAT net's integers, decisions."""
    fmt = parse_format(fmt_name)
    model = _tiny(fmt_name)
    path = tmp_path / "tiny.npz"
    save_model(model.export({"net": "tiny"}), path)
    qnet = quantize_file(path, fmt)
    images, _ = _synthetic(40, seed=7)
    accs = forward(qnet, images)

    x = qat.input_activations(images, fmt.a_bits).double()
    assert np.array_equal(np.rint(x.numpy() / model.s_in0), pixels_to_input(images, fmt.a_bits))
    with torch.no_grad():
        layers = model.quantized_layers()
        for k, layer in enumerate(layers):
            # the integers gen.core.quant chose are the QAT net's
            scale = layer["s_in"] / layer["s_acc"]
            assert np.array_equal(np.rint(layer["w"].double().numpy() * scale[:, None]),
                                  qnet.layers[k].w)
            assert np.array_equal(np.rint(layer["b"].double().numpy() / layer["s_acc"]),
                                  qnet.layers[k].b)
            acc = x @ layer["w"].double().T + layer["b"].double()
            assert np.array_equal(np.rint(acc.numpy() / layer["s_acc"]), accs[k])
            if k < len(layers) - 1:
                q = qnet.layers[k]
                # the steps gen.core.quant's mult/shift really apply, not calib / (2**A - 1)
                real = layer["s_acc"] * 2.0 ** np.asarray(q.rq_shift) / np.asarray(q.rq_mult)
                step = layer["step"].double()
                assert np.allclose(step.numpy(), real, rtol=1e-6, atol=0)
                out_step = float(layer["out_step"])
                assert out_step == pytest.approx(q.info["s_out"], rel=1e-6)
                x = qat.fake_quant_act(acc, layer, fmt.a_bits)
                y = requantize(accs[k], q)
                assert np.array_equal(np.rint(x.numpy() / out_step), y)
                assert 0 < y.mean() < (1 << fmt.a_bits) - 1  # neither all zero nor saturated
    pred = qat.predict(model, qat.input_activations(images, fmt.a_bits))
    assert np.array_equal(pred, classify(qnet, accs[-1]))


def test_decisions_break_logit_ties_like_the_integer_model() -> None:
    """Equal integer logits: the lowest index wins, whatever float noise says."""
    u = 0.1
    logits = np.array([[3 * u, 3 * u * (1 + 1e-7), 1 * u], [-u, 2 * u, 2.4 * u]])
    assert qat.decide(logits, u).tolist() == [0, 1]  # 2.4 units round to 2: a tie
    assert qat.decide(np.array([[0.4 * u], [0.6 * u], [-3 * u]]), u).tolist() == [0, 1, 0]


def _act_layer(s_acc: float, ratio: float, step: torch.Tensor) -> dict:
    """The requantizer entries of a layer from QatNet.quantized_layers (one neuron scale)."""
    return {"s_acc_t": torch.tensor([s_acc], dtype=torch.float64),
            "ratio": torch.tensor([ratio], dtype=torch.float64), "step": step, "out_step": step}


def test_rounding_modes() -> None:
    """Weights and biases round half away from zero, the requantizer rounds half up."""
    ties = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5])
    assert qat.round_half_away(ties).tolist() == [-3, -2, -1, 1, 2, 3]
    assert qat.round_half_up(ties).tolist() == [-2, -1, 0, 1, 2, 3]
    step = torch.tensor(0.25)
    # 2, 6, 10 accumulator units (1/16) times 1/4: 0.5, 1.5, 2.5; the last saturates at 3
    acc = torch.tensor([0.125, 0.375, 0.625, 10.0]) + 1e-4  # float noise below half a unit
    got = qat.fake_quant_act(acc, _act_layer(1 / 16, 0.25, step), 2) / step
    assert got.tolist() == [1, 2, 3, 3]


def test_ste_gradients_flow() -> None:
    """Rounding passes gradients straight through; clips and calib get gradients too."""
    v = torch.tensor([-1.5, -0.4, 0.5, 2.49], requires_grad=True)
    r = qat.round_half_away(v)
    assert r.tolist() == [-2.0, -0.0, 1.0, 2.0]
    r.sum().backward()
    assert v.grad is not None and v.grad.tolist() == [1.0, 1.0, 1.0, 1.0]

    acc = torch.tensor([-1.0, 0.3, 0.9, 5.0], requires_grad=True)
    step = torch.tensor(1.0 / 3, requires_grad=True)  # calib 1.0 at 2 bits
    y = qat.fake_quant_act(acc, _act_layer(1 / 30, 0.1, step), 2)  # ratio = s_acc / step
    assert torch.allclose(y, torch.tensor([0.0, 1 / 3, 1.0, 1.0]))
    y.sum().backward()
    assert acc.grad is not None and acc.grad.tolist() == [0.0, 1.0, 1.0, 0.0]
    assert step.grad is not None and float(step.grad) != 0.0

    model = _tiny("w2a2")
    images, labels = _synthetic(64, seed=5)
    out = model(qat.input_activations(images, 2))
    torch.nn.functional.cross_entropy(out, torch.from_numpy(labels.astype(np.int64))).backward()
    for lin in model.linears:
        assert lin.weight.grad is not None and float(lin.weight.grad.abs().sum()) > 0
    assert model.calib.grad is not None and float(model.calib.grad.abs().sum()) > 0
    for clip in model.wclip:
        assert clip.grad is not None and float(clip.grad.abs().sum()) > 0


def test_train_qat_learns_and_reports_integer_accuracy(tmp_path: Path) -> None:
    """Two quick epochs on fake digits: the saved file's integer accuracy is QAT's own."""
    torch.set_num_threads(1)
    images, labels = _synthetic(1500, seed=11)
    fmt = parse_format("w2a2")
    recipe = qat.QatRecipe(epochs=2, batch_size=64, shift=0)
    model, meta = qat.train_qat("mlp256", fmt, images[:1000], labels[:1000], images[1000:],
                                labels[1000:], init=None, recipe=recipe, seed=0,
                                log=lambda _msg: None)
    assert meta["fake_quant_test_accuracy"] > 0.9
    path = tmp_path / "m.npz"
    save_model(model.export(meta), path)
    check = qat.integer_check(path, fmt, model, images[1000:], labels[1000:])
    assert check["agreement"] == 1.0
    assert check["integer_accuracy"] == pytest.approx(meta["fake_quant_test_accuracy"], abs=1e-4)


def test_cli_bad_format_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"widths must be 2\.\.16"):
        qat.main(["--net", "mlp256", "--format", "int1", "--out", str(tmp_path / "x.npz")])


def test_accuracy_csv_writer(tmp_path: Path) -> None:
    rows = [
        acc_row("mlp256", "float", None, 9886, 10000, "mlp256.npz"),
        acc_row("mlp256", "ptq", parse_format("w4a8"), 9850, 10000, "mlp256.npz"),
        acc_row("mlp256", "qat", parse_format("w2a2"), 2, 3, "mlp256_qat_w2a2.npz"),
    ]
    path = tmp_path / "sub" / "accuracy.csv"
    write_accuracy_csv(rows, path)
    with path.open(newline="") as f:
        got = list(csv.DictReader(f))
    assert list(got[0]) == list(AccRow.__dataclass_fields__)
    assert [r["format"] for r in got] == ["float", "w4a8", "int2"]
    assert [r["accuracy_pct"] for r in got] == ["98.86", "98.50", "66.67"]
    assert got[0]["w_bits"] == "" and got[1]["w_bits"] == "4" and got[1]["a_bits"] == "8"
    assert got[2]["correct"] == "2" and got[2]["n_images"] == "3"
    assert path.read_text().endswith("mlp256_qat_w2a2.npz\n")
    assert not list(path.parent.glob(".*.part"))  # written atomically, nothing left behind


def test_headroom(tmp_path: Path) -> None:
    assert signed_bits(0, 0) == 2 and signed_bits(-2, 1) == 2 and signed_bits(-3, 1) == 3
    assert signed_bits(0, 128) == 9 and signed_bits(-128, 127) == 8
    model = _tiny("int4")
    path = tmp_path / "t.npz"
    save_model(model.export({"net": "tiny"}), path)
    qnet = quantize_file(path, parse_format("int4"))
    accs = forward(qnet, _synthetic(30, seed=2)[0])
    rows = headroom_rows(qnet, accs)
    assert [r.layer for r in rows] == [0, 1]
    for r, a, layer in zip(rows, accs, qnet.layers, strict=True):
        assert (r.acc_min, r.acc_max) == (a.min(), a.max())
        assert r.acc_bits == layer.acc_bits and 0 <= r.headroom < r.acc_bits


def test_train_qat_any_layers(tmp_path: Path) -> None:
    """QAT of a 3-layer net from its float model (as make qat LAYERS= does): integer = QAT."""
    from mnist_fpga.train.train import recipe_for, train_net

    torch.set_num_threads(1)
    images, labels = _synthetic(1500, seed=12)
    tr, te = (images[:1200], labels[:1200]), (images[1200:], labels[1200:])
    float_arrays = train_net("mlp24x12", *tr, *te, epochs=4, seed=0, log=lambda _msg: None,
                             recipe=recipe_for("mlp24x12", "784,24,12,10"))
    fmt = parse_format("int4")
    recipe = qat.QatRecipe(epochs=1, batch_size=64, shift=0)
    model, meta = qat.train_qat("mlp24x12", fmt, *tr, *te, init=float_arrays, recipe=recipe,
                                seed=0, log=lambda _msg: None, widths=[784, 24, 12, 10])
    assert meta["layers"] == [784, 24, 12, 10]
    assert meta["fake_quant_test_accuracy"] > 0.5  # one epoch: far above chance (0.1)
    path = tmp_path / "m.npz"
    save_model(model.export(meta), path)
    assert len(quantize_file(path, fmt).layers) == 3
    check = qat.integer_check(path, fmt, model, *te)
    assert check["agreement"] == 1.0


@pytest.mark.parametrize(("argv", "match"), [
    (["--net", "m", "--layers", "100,10"], "must start at 784"),
    (["--net", "m", "--scratch"], "--scratch needs --layers"),
    (["--net", "nosuchnet", "--layers", "784,10"], "no float model .*nosuchnet.npz"),
    (["--net", "m", "--layers", "784,16,10", "--init", "models/mlp256.npz"],
     "has the layers 784,256,10, not 784,16,10"),
])
def test_cli_rejects_bad_layers(argv: list[str], match: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=match):
        qat.main([*argv, "--format", "int4", "--out", str(tmp_path / "x.npz")])
    assert list(tmp_path.iterdir()) == []
