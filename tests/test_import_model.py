"""gen.frontends.import_model: ONNX, torch module and state_dict MLPs -> our .npz, as torch.

The reference is the source model itself: torch's forward pass on the committed
100-image sample. The imported file then goes through the generator and the
whole-network bench (a few images, every layer compared with gen/core/model.py).
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.quant import float_forward, load_float_weights
from mnist_fpga.gen.frontends.import_model import import_model, main, read_model

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from torch import nn  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "data" / "mnist_test_100.npz"


def sample() -> tuple[np.ndarray, np.ndarray]:
    with np.load(SAMPLE) as z:
        return z["images"], z["labels"]


def mlp256_torch() -> nn.Sequential:
    """The committed mlp256 float model as the torch module train/ builds (with dropout)."""
    z = np.load(REPO / "models" / "mlp256.npz")
    m = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))
    with torch.no_grad():
        for k, i in enumerate((0, 3)):
            m[i].weight.copy_(torch.from_numpy(z[f"W{k}"]))
            m[i].bias.copy_(torch.from_numpy(z[f"b{k}"]))
    return m.eval()


def deep_torch(seed: int = 0) -> nn.Sequential:
    """A random 3-layer MLP fed 28x28 images through nn.Flatten (indices shift by one)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 40), nn.ReLU(), nn.Linear(40, 24),
                         nn.ReLU(), nn.Linear(24, 10)).eval()


def torch_classes(model: nn.Module, images: np.ndarray, flat: bool = True) -> np.ndarray:
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    x = x.reshape(len(images), -1) if flat else x.reshape(len(images), 1, 28, 28)
    with torch.no_grad():
        return model(x).argmax(1).numpy()


def export_onnx(model: nn.Module, path: Path, shape: tuple[int, ...]) -> Path:
    torch.onnx.export(model, (torch.zeros(*shape),), str(path), dynamo=False,
                      input_names=["pixels"], output_names=["logits"],
                      dynamic_axes={"pixels": {0: "n"}})
    return path


def imported_classes(path: Path, images: np.ndarray) -> np.ndarray:
    return np.argmax(float_forward(load_float_weights(path), images)[-1], axis=1)


@pytest.mark.parametrize("kind", ["onnx", "state_dict", "module"])
@pytest.mark.parametrize("net", ["mlp256", "deep"])
def test_import_gives_the_source_models_classes(tmp_path: Path, kind: str, net: str) -> None:
    model = mlp256_torch() if net == "mlp256" else deep_torch()
    flat = net == "mlp256"
    src = (export_onnx(model, tmp_path / "m.onnx", (1, 784) if flat else (1, 1, 28, 28))
           if kind == "onnx" else tmp_path / "m.pt")
    if kind != "onnx":
        torch.save(model.state_dict() if kind == "state_dict" else model, src)
    out = tmp_path / "m.npz"
    import_model(src, out, calib="sample", activation="relu" if kind == "state_dict" else None)
    images, labels = sample()
    expected = torch_classes(model, images, flat)
    np.testing.assert_array_equal(imported_classes(out, images), expected)
    weights = load_float_weights(out)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    assert sum(k.startswith("W") for k in weights) == len(linears)
    for k, lin in enumerate(linears):  # the very float32 values of the source
        np.testing.assert_array_equal(weights[f"W{k}"], lin.weight.detach().numpy())
        np.testing.assert_array_equal(weights[f"b{k}"], lin.bias.detach().numpy())
    assert set(weights) >= {f"calib{k}" for k in range(len(linears) - 1)}
    if net == "mlp256":
        assert (expected == labels).mean() > 0.95


def test_onnx_matmul_add_and_final_softmax(tmp_path: Path) -> None:
    """MatMul + Add (another exporter's spelling of Gemm) and a trailing Softmax."""
    rng = np.random.default_rng(1)
    w0, b0 = rng.normal(0, 0.05, (784, 12)), rng.normal(0, 0.1, 12)
    w1, b1 = rng.normal(0, 0.3, (12, 10)), rng.normal(0, 0.1, 10)
    inits = [numpy_helper.from_array(a.astype(np.float32), n)
             for a, n in ((w0, "w0"), (b0, "b0"), (w1, "w1"), (b1, "b1"))]
    nodes = [helper.make_node("MatMul", ["x", "w0"], ["m0"]),
             helper.make_node("Add", ["m0", "b0"], ["a0"]),
             helper.make_node("Relu", ["a0"], ["r0"]),
             helper.make_node("MatMul", ["r0", "w1"], ["m1"]),
             helper.make_node("Add", ["b1", "m1"], ["a1"]),
             helper.make_node("Softmax", ["a1"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 784])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    path = tmp_path / "mm.onnx"
    onnx.save(helper.make_model(graph), str(path))
    layers = read_model(path)
    np.testing.assert_array_equal(layers[0][0], w0.astype(np.float32).T)
    np.testing.assert_array_equal(layers[1][1], b1.astype(np.float32))


def test_existing_out_is_replaced_only_with_force(tmp_path: Path) -> None:
    src = export_onnx(mlp256_torch(), tmp_path / "mlp.onnx", (1, 784))
    out = tmp_path / "mine.npz"
    out.write_bytes(b"the user's file\n")
    with pytest.raises(UserError, match=r"exists; refusing to overwrite it \(--force"):
        import_model(src, out, calib="none")
    assert out.read_bytes() == b"the user's file\n"
    import_model(src, out, calib="none", force=True)
    np.testing.assert_array_equal(load_float_weights(out)["W0"],
                                  mlp256_torch()[0].weight.detach().numpy())


def test_cli_prints_one_line_and_meta(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = export_onnx(mlp256_torch(), tmp_path / "mlp.onnx", (1, 784))
    out = tmp_path / "sub" / "mlp.npz"
    assert main(["--from", str(src), "--out", str(out), "--calib", "none"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("imported 784-256-10 from") and "float accuracy 100/100" in line
    assert line.endswith("same classes as the ONNX model on 100/100")
    with np.load(out) as z:
        assert "calib0" not in z.files  # --calib none: the generator's fallback calibrates
        meta = json.loads(str(z["meta"]))
    assert meta["layers"] == [784, 256, 10] and meta["import_format"] == "onnx"


def _torch_bad(tmp_path: Path, model: nn.Module, shape: tuple[int, ...], kind: str) -> Path:
    model.eval()
    if kind == "onnx":
        return export_onnx(model, tmp_path / "bad.onnx", shape)
    torch.save(model.state_dict(), tmp_path / "bad.pt")
    return tmp_path / "bad.pt"


class Skip(nn.Module):
    """x + relu(Linear(x)): a residual block."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 784)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.relu(self.fc(x))


BAD = [
    ("onnx", lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(1352, 10)),
     (1, 1, 28, 28), "Conv node .* is a convolution"),
    ("onnx", lambda: nn.Sequential(nn.Linear(784, 16), nn.Tanh(), nn.Linear(16, 10)),
     (1, 784), "Tanh node .* is an activation other than ReLU"),
    ("onnx", lambda: nn.Sequential(Skip(), nn.Linear(784, 10)), (1, 784),
     "skip connection|branch"),
    ("onnx", lambda: nn.Sequential(nn.Linear(784, 16), nn.Linear(16, 10)), (1, 784),
     "no ReLU between layer 0 and layer 1"),
    ("onnx", lambda: nn.Sequential(nn.Linear(784, 10), nn.ReLU()), (1, 784),
     "a ReLU on the output layer"),
    ("onnx", lambda: nn.Sequential(nn.Linear(100, 10)), (1, 100),
     "layer 0 takes 100 inputs, but its input is the 784 pixels"),
    ("state_dict", lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(1352, 10)),
     None, "module 0 is a convolution"),
    ("state_dict", lambda: nn.Sequential(nn.Linear(784, 16), nn.PReLU(), nn.Linear(16, 10)),
     None, "module 1 is a parameterised activation"),
    ("state_dict", lambda: nn.Sequential(nn.Linear(784, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                         nn.Linear(16, 10)), None, "batch normalization"),
    ("state_dict", lambda: nn.Sequential(Skip(), nn.Linear(784, 10)), None,
     "key '0.fc.weight' is not <index>.weight"),
    ("state_dict", lambda: nn.Sequential(nn.Linear(784, 16), nn.Linear(16, 10)), None,
     "Linear modules 0 and 1 have no ReLU between them"),
    ("state_dict", lambda: nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(15, 10)),
     None, "layer 1 takes 15 inputs, but its input is the 16 neurons of layer 0"),
]


@pytest.mark.parametrize(("kind", "build", "shape", "match"), BAD,
                         ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_not_a_plain_mlp_is_refused(tmp_path: Path, kind: str, build, shape, match: str) -> None:
    src = _torch_bad(tmp_path, build(), shape, kind)
    with pytest.raises(UserError, match=match):
        import_model(src, tmp_path / "out.npz", calib="none")
    assert not (tmp_path / "out.npz").exists()


def test_rtl_bit_exact_after_import(tmp_path: Path) -> None:
    """Both imports through generator and RTL: a few images, every layer bit-exact."""
    from mnist_fpga.tb.common import simulator_missing
    from mnist_fpga.tb.netsim import run_network_sim

    if reason := simulator_missing():
        pytest.skip(reason)
    onnx_npz, sd_npz = tmp_path / "imp_onnx.npz", tmp_path / "imp_sd.npz"
    import_model(export_onnx(mlp256_torch(), tmp_path / "m.onnx", (1, 784)), onnx_npz,
                 calib="sample")
    model = deep_torch()
    torch.save(model.state_dict(), tmp_path / "d.pt")
    import_model(tmp_path / "d.pt", sd_npz, calib="none",  # calibrated by the generator
                 activation="relu")
    images, _ = sample()
    for net, path, fmt, expected in (
            ("imp_onnx", onnx_npz, "int8", torch_classes(mlp256_torch(), images)),
            ("imp_sd", sd_npz, "int4", None)):
        doc = run_network_sim(net, fmt, 3, weights=path, tag=f"test-import-{net}")
        assert doc["failure"] is None
        assert [r["bit_exact"] for r in doc["images"]] == [True] * 3
        if expected is not None:  # int8 keeps the float model's classes on these images
            assert [r["rtl_class"] for r in doc["images"]] == expected[:3].tolist()


def test_state_dict_in_a_checkpoint_with_a_prefix(tmp_path: Path) -> None:
    """``{"model_state_dict": {"net.0.weight": ...}}``: a training checkpoint of a wrapper."""
    model = mlp256_torch()
    sd = {f"net.{k}": v for k, v in model.state_dict().items()}
    torch.save({"epoch": 3, "model_state_dict": sd}, tmp_path / "ckpt.pt")
    import_model(tmp_path / "ckpt.pt", tmp_path / "m.npz", calib="none", activation="relu")
    images, _ = sample()
    np.testing.assert_array_equal(imported_classes(tmp_path / "m.npz", images),
                                  torch_classes(model, images))
    sd["head.0.weight"] = torch.zeros(10, 10)  # two Sequentials: not one plain MLP
    torch.save(sd, tmp_path / "two.pt")
    with pytest.raises(UserError, match="keys under several modules"):
        import_model(tmp_path / "two.pt", tmp_path / "x.npz", calib="none", activation="relu")


def test_export_then_import_round_trip(tmp_path: Path) -> None:
    """train.export_onnx writes what gen.frontends.import_model reads back, bit for bit."""
    from mnist_fpga.train.export_onnx import main as export_main

    src = REPO / "models" / "mlp256.npz"
    onnx_path, sd_path = tmp_path / "e" / "m.onnx", tmp_path / "e" / "m.pt"
    assert export_main(["--weights", str(src), "--onnx", str(onnx_path),
                        "--state-dict", str(sd_path)]) == 0
    original = load_float_weights(src)
    for path in (onnx_path, sd_path):
        out = tmp_path / f"{path.suffix[1:]}.npz"
        import_model(path, out, calib="none", activation="relu")
        back = load_float_weights(out)
        for key in ("W0", "b0", "W1", "b1"):
            np.testing.assert_array_equal(back[key], original[key])


def test_import_refuses_when_the_onnx_model_disagrees(tmp_path: Path) -> None:
    """The ONNX model is run (onnx.reference) and compared: a misread layer cannot pass."""
    from mnist_fpga.gen.frontends.import_model import check_against_onnx

    path = export_onnx(mlp256_torch(), tmp_path / "m.onnx", (1, 784))
    layers = read_model(path)
    assert check_against_onnx(path, layers) == 100
    w1, b1 = layers[1]
    wrong = [layers[0], (w1, b1 + np.where(np.arange(10) == 3, 5.0, 0.0))]  # class 3 favoured
    with pytest.raises(UserError, match=r"disagrees with the ONNX model on \d+ of 100"):
        check_against_onnx(path, wrong)


# ---------------------------------------------------------------- activations (issue 21)


def sigmoid_torch() -> nn.Sequential:
    """mlp256's weights with a Sigmoid where the ReLU was: a state_dict cannot tell."""
    m = mlp256_torch()
    m[1] = nn.Sigmoid()
    return m


def test_state_dict_import_needs_its_activation(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A state_dict holds no activations: without --activation it is refused, not guessed."""
    torch.save(sigmoid_torch().state_dict(), tmp_path / "sig.pt")
    out = tmp_path / "m.npz"
    with pytest.raises(UserError, match=r"sig\.pt: a state_dict holds no activations.*"
                                        r"pass --activation relu .*if the hidden layers use ReLU"):
        import_model(tmp_path / "sig.pt", out, calib="none")
    assert not out.exists()
    for bad in ("tanh", "sigmoid", "RELU", ""):
        with pytest.raises(UserError, match=r"--activation .*: the RTL computes ReLU only; the "
                                            r"supported value is relu$"):
            import_model(tmp_path / "sig.pt", out, calib="none", activation=bad)
    # said: imported as told; a low accuracy (here: random weights) is pointed out
    torch.save(deep_torch().state_dict(), tmp_path / "random.pt")
    assert main(["--from", str(tmp_path / "random.pt"), "--out", str(out), "--calib", "none",
                 "--activation", "relu"]) == 0
    first, note = capsys.readouterr().out.strip().splitlines()
    correct = int(first.split("float accuracy ")[1].split("/")[0])
    assert correct < 50 and note.startswith(f"note: float accuracy {correct}/100 is far below")
    assert "as --activation says" in note
    with np.load(out) as z:
        meta = json.loads(str(z["meta"]))
    assert meta["activation_from"] == "--activation" and meta["hidden_activation"] == "relu"
    # one layer: no hidden activation to know
    torch.save(nn.Sequential(nn.Linear(784, 10)).state_dict(), tmp_path / "one.pt")
    import_model(tmp_path / "one.pt", tmp_path / "one.npz", calib="none")


def test_whole_module_says_its_activations(tmp_path: Path) -> None:
    """torch.save(model) of an nn.Sequential: read without --activation, checked by its forward."""
    for model in (mlp256_torch(), deep_torch(), nn.Sequential(nn.Sequential(
            nn.Flatten(), nn.Linear(784, 30)), nn.ReLU(), nn.Linear(30, 10), nn.Softmax(1))):
        torch.save(model.train(), tmp_path / "m.pt")  # saved in training mode: read as eval
        out = tmp_path / "m.npz"
        import_model(tmp_path / "m.pt", out, calib="none", force=True)
        images, _ = sample()
        np.testing.assert_array_equal(imported_classes(out, images),
                                      torch_classes(model.eval(), images))
        with np.load(out) as z:
            meta = json.loads(str(z["meta"]))
        assert meta["import_format"] == "torch module" and meta["activation_from"] == "the file"
        assert meta["same_classes_as_source_on_sample"] == 100
    torch.save(sigmoid_torch(), tmp_path / "sig.pt")
    with pytest.raises(UserError, match=r"module 1 \(Sigmoid\) is an activation other than "
                                        "ReLU: the RTL computes ReLU only"):
        import_model(tmp_path / "sig.pt", out, calib="none", force=True, activation="relu")


class Net(nn.Module):
    """A custom module: its forward is Python code that the file does not hold."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(x))


MODULE_BAD = [
    (lambda: nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10), nn.Sigmoid()),
     r"module 3 \(Sigmoid\) on the output: the last layer must give the logits; save the "
     "model without it"),
    (lambda: nn.Sequential(nn.Linear(784, 16), nn.Softmax(1), nn.Linear(16, 10)),
     r"module 1 \(Softmax\) is not on the output: only a final Softmax/LogSoftmax is dropped"),
    (lambda: nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.BatchNorm1d(16),
                           nn.Linear(16, 10)),
     r"module 2 \(BatchNorm1d\) follows a ReLU, not a linear layer: only a batch normalization "
     r"right after a linear layer is folded \(fold it into the next layer before "
     "export, or train with it before the ReLU\\)"),
    (lambda: nn.Sequential(nn.Linear(784, 16), nn.BatchNorm1d(16, track_running_stats=False),
                           nn.ReLU(), nn.Linear(16, 10)),
     r"module 1 \(BatchNorm1d\) keeps no running statistics"),
    (lambda: nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 2, 3)),
     r"module 0 \(Unflatten\) is not Linear, ReLU, BatchNorm1d, Dropout, Flatten or Identity"),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(1352, 10)),
     r"module 0 \(Conv2d\) is a convolution"),
    (lambda: nn.Sequential(nn.Linear(784, 16), nn.Linear(16, 10)),
     r"no ReLU between layer 0 and layer 1 \(module 1 \(Linear\)\)"),
    (lambda: nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Flatten(0), nn.Linear(16, 10)),
     r"the torch module does not run on the sample images \("),
    (Net, r"holds a pickled [\w.]*test_import_model\.Net, which is not read \(only tensors and "
     r"torch\.nn modules are: no code from the file runs\): save model\.state_dict\(\) and "
     r"pass --activation relu, or export the model to ONNX$"),
]


@pytest.mark.parametrize(("build", "match"), MODULE_BAD,
                         ids=[str(i) for i in range(len(MODULE_BAD))])
def test_module_refusals_name_the_module(tmp_path: Path, build, match: str) -> None:
    torch.save(build(), tmp_path / "m.pt")
    with pytest.raises(UserError, match=match):
        import_model(tmp_path / "m.pt", tmp_path / "out.npz", calib="none", activation="relu")
    assert not (tmp_path / "out.npz").exists()


# ---------------------------------------------------------------- batch normalization


def bn_torch(seed: int = 3) -> nn.Sequential:
    """Linear, BatchNorm1d (trained-looking statistics), ReLU, Linear, BatchNorm1d, ReLU, Linear."""
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(784, 32), nn.BatchNorm1d(32, eps=1e-3), nn.ReLU(),
                      nn.Linear(32, 24, bias=False), nn.BatchNorm1d(24), nn.ReLU(),
                      nn.Linear(24, 10))
    with torch.no_grad():
        for bn in (m[1], m[4]):
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.normal_(0, 0.5)
            bn.running_mean.normal_(0, 0.3)
            bn.running_var.uniform_(0.05, 3.0)
    return m.eval()


def torch_logits(model: nn.Module, images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    with torch.no_grad():
        return model(x).double().numpy()


@pytest.mark.parametrize("kind", ["onnx", "module"])
def test_batchnorm_after_a_layer_is_folded(tmp_path: Path, kind: str) -> None:
    """BN(W x + b) becomes one layer: the float outputs of torch and onnx.reference, kept."""
    from onnx.reference import ReferenceEvaluator

    model = bn_torch()
    src = tmp_path / ("m.onnx" if kind == "onnx" else "m.pt")
    if kind == "onnx":
        export_onnx(model, src, (1, 784))
        assert "BatchNormalization" in {n.op_type for n in onnx.load(str(src)).graph.node}
    else:
        torch.save(model, src)
    out = tmp_path / "m.npz"
    import_model(src, out, calib="none")
    images, _ = sample()
    mine = float_forward(load_float_weights(out), images)[-1]
    expected = torch_logits(model, images)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(mine, expected, rtol=0, atol=1e-5 * scale)
    if kind == "onnx":
        x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
        ref = ReferenceEvaluator(str(src)).run(None, {"pixels": x})[0]
        np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-5 * scale)
    np.testing.assert_array_equal(mine.argmax(1), expected.argmax(1))
    assert not np.allclose(mine, torch_logits(nn.Sequential(  # the norms did change the logits
        model[0], model[2], model[3], model[5], model[6]), images), atol=0.1 * scale)
    with np.load(out) as z:
        assert json.loads(str(z["meta"]))["layers"] == [784, 32, 24, 10]


def test_fold_batchnorm_is_bn_of_the_layer() -> None:
    """fold_batchnorm against the formula, on random values (seed 5)."""
    from mnist_fpga.gen.frontends.common import fold_batchnorm

    rng = np.random.default_rng(5)
    w, b, x = rng.normal(size=(6, 4)), rng.normal(size=6), rng.normal(size=(3, 4))
    scale, shift, mean = rng.normal(size=6), rng.normal(size=6), rng.normal(size=6)
    var, eps = rng.uniform(0.1, 2, 6), 1e-3
    w2, b2 = fold_batchnorm(w, b, scale, shift, mean, var, eps)
    np.testing.assert_allclose(x @ w2.T + b2,
                               ((x @ w.T + b) - mean) / np.sqrt(var + eps) * scale + shift)


# ---------------------------------------------------------------- ONNX nodes by name


def onnx_graph(path: Path, nodes: list[tuple], shapes: dict[str, tuple[int, ...]],
               attrs: dict[str, dict] | None = None) -> Path:
    """An ONNX file of ``(op, inputs, output)`` nodes on input ``x`` (1, 784), output ``y``."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.1, shape).astype(np.float32), key)
             for key, shape in shapes.items()]
    attrs = attrs or {}
    graph = helper.make_graph(
        [helper.make_node(op, list(ins), [o], name=o.upper(),
                          **({"transB": 1} if op == "Gemm" else {}), **attrs.get(o, {}))
         for op, ins, o in nodes],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 784])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 10])], inits)
    onnx.save(helper.make_model(graph), str(path))
    return path


G0 = [("Gemm", ("x", "w0", "b0"), "h0"), ("Relu", ("h0",), "r0")]
G1 = ("Gemm", ("r0", "w1", "b1"), "h1")
S = {"w0": (16, 784), "b0": (16,), "w1": (10, 16), "b1": (10,)}
BN = {"s": (16,), "t": (16,), "m": (16,), "v": (16,)}

ONNX_BAD = [
    ([*G0, G1, ("Sigmoid", ("h1",), "y")], S, None,
     "Sigmoid node 'Y' on the output: the last layer must give the logits; export the model "
     "without it"),
    ([*G0, G1, ("Tanh", ("h1",), "y")], S, None, "Tanh node 'Y' on the output"),
    ([*G0, ("Softmax", ("r0",), "p"), ("Gemm", ("p", "w1", "b1"), "y")], S, None,
     "Softmax node 'P' is not on the output: only a final Softmax/LogSoftmax is dropped"),
    ([*G0, G1, ("ArgMax", ("h1",), "y")], S, None,
     "ArgMax node 'Y' on the output: export the logits without it"),
    ([("Sub", ("x", "mu"), "c"), ("Gemm", ("c", "w0", "b0"), "h0"), ("Relu", ("h0",), "r0"),
      ("Gemm", ("r0", "w1", "b1"), "y")], {**S, "mu": (784,)}, None,
     r"Sub node 'C' after the input is arithmetic on the activations \(e\.g\. a \(x - mean\) / "
     r"std normalization\): the model must take x = pixel/255"),
    ([("Gemm", ("x", "w0", "b0"), "h0"), ("Mul", ("h0", "k"), "h0s"), ("Relu", ("h0s",), "r0"),
      ("Gemm", ("r0", "w1", "b1"), "y")], {**S, "k": (16,)}, None,
     "Mul node 'H0S' after a linear layer is arithmetic on the activations"),
    ([*G0, ("BatchNormalization", ("r0", "s", "t", "m", "v"), "n"),
      ("Gemm", ("n", "w1", "b1"), "y")], {**S, **BN}, None,
     r"BatchNormalization node 'N' follows a ReLU, not a linear layer: only a batch "
     r"normalization right after a linear layer is folded \(fold it into the next layer "
     r"before export, or train with it before the ReLU\)"),
    ([("BatchNormalization", ("x", "s", "t", "m", "v"), "n"), ("Gemm", ("n", "w0", "b0"), "h0"),
      ("Relu", ("h0",), "r0"), ("Gemm", ("r0", "w1", "b1"), "y")],
     {**S, **{k: (784,) for k in BN}}, None,
     r"follows the input, not a linear layer: .*\(fold it into the first layer before export\)"),
    ([("Gemm", ("x", "w0", "b0"), "h0"), ("BatchNormalization", ("h0", "s", "t", "m", "v"), "n"),
      ("Relu", ("n",), "r0"), ("Gemm", ("r0", "w1", "b1"), "y")], {**S, **BN},
     {"n": {"training_mode": 1}},
     r"BatchNormalization node 'N' is in training mode \(batch statistics\): export the model "
     r"after model\.eval\(\)"),
    ([("Gemm", ("x", "w0", "b0"), "h0"), ("BatchNormalization", ("h0", "s", "t", "m", "v"), "n"),
      ("Relu", ("n",), "r0"), ("Gemm", ("r0", "w1", "b1"), "y")],
     {**S, **BN, "v": (15,)}, None,
     "BatchNormalization node 'N' has 15 variance values for a layer of 16 neurons"),
    ([*G0, ("Dropout", ("r0", "ratio", "train"), "d"), ("Gemm", ("d", "w1", "b1"), "y")],
     {**S, "ratio": ()}, None,
     r"Dropout node 'D' is in training mode \(it drops values at random\): export the model "
     r"after model\.eval\(\)"),
    ([("NotAnOp", ("w",), "wx"), ("MatMul", ("x", "wx"), "h0"), ("Relu", ("h0",), "r0"),
      ("Gemm", ("r0", "w1", "b1"), "y")], {"w": (784, 16), "w1": (10, 16), "b1": (10,)}, None,
     r"MatMul node 'H0': its weight is computed at run time, not a constant of the model"),
    ([("Reshape", ("x", "col"), "c"), ("Gemm", ("c", "w0", "b0"), "h0"),
      ("Relu", ("h0",), "r0"), ("Gemm", ("r0", "w1", "b1"), "y")], S, None,
     r"the ONNX model does not run on the sample images in onnx\.reference \("),
]


def _extra_inits(path: Path) -> None:
    """The integer and boolean initializers some ONNX_BAD graphs need (col, train)."""
    model = onnx.load(str(path))
    g = model.graph
    names = {n for node in g.node for n in node.input}
    if "col" in names:
        g.initializer.append(numpy_helper.from_array(np.array([784, -1], np.int64), "col"))
    if "train" in names:
        g.initializer.append(numpy_helper.from_array(np.array(True), "train"))
    onnx.save(model, str(path))


@pytest.mark.parametrize(("nodes", "shapes", "attrs", "match"), ONNX_BAD,
                         ids=[str(i) for i in range(len(ONNX_BAD))])
def test_onnx_refusals_name_the_node(tmp_path: Path, nodes, shapes, attrs, match: str) -> None:
    path = onnx_graph(tmp_path / "m.onnx", nodes, shapes, attrs)
    _extra_inits(path)
    with pytest.raises(UserError, match=match):
        import_model(path, tmp_path / "out.npz", calib="none")
    assert not (tmp_path / "out.npz").exists()


def test_onnx_shape_computations_and_aliases_pass(tmp_path: Path) -> None:
    """x.view(x.size(0), -1) (Shape/Gather/Concat into Reshape) and torch's Identity aliases."""

    class View(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.view(x.size(0), -1)

    model = nn.Sequential(View(), nn.Linear(784, 16), nn.BatchNorm1d(16), nn.ReLU(),
                          nn.Dropout(), nn.Identity(), nn.Linear(16, 10)).eval()
    path = export_onnx(model, tmp_path / "v.onnx", (1, 1, 28, 28))
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert {"Shape", "Reshape", "Identity", "BatchNormalization"} <= set(ops), ops
    import_model(path, tmp_path / "v.npz", calib="none")
    images, _ = sample()
    np.testing.assert_array_equal(imported_classes(tmp_path / "v.npz", images),
                                  torch_classes(model, images, flat=False))


# ---------------------------------------------------------------- torch's load errors


def test_one_line_cleans_library_messages() -> None:
    from mnist_fpga.gen.frontends.common import one_line

    text = ("Weights only load failed. This file can still be loaded, \x1b[1mdo those steps "
            "only if you trust\x1b[0m.\n\t(1) In PyTorch 2.6 ...\n\tWeightsUnpickler error: "
            "Unsupported operand 110\n\nCheck the documentation")
    assert one_line(text) == "Unsupported operand 110"
    assert one_line("\x1b[31mred\x1b[0m alert. More text.\nsecond line") == "red alert"
    long = " ".join(f"word{i}" for i in range(60))
    short = one_line(long, limit=50)
    assert short.endswith(" ...") and len(short) <= 54
    assert long.startswith(short[:-4]) and long[len(short) - 4] == " "  # cut between words


def _pt_files(d: Path) -> dict[str, tuple[Path, str]]:
    """Files torch.load cannot read as we need, each with the message expected."""
    m = nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))
    torch.save(m.state_dict(), d / "good.pt")
    data = (d / "good.pt").read_bytes()
    (d / "garbage.pt").write_bytes(b"not a torch file\n")
    (d / "pickle.pt").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    (d / "trunc.pt").write_bytes(data[: len(data) // 2])
    (d / "empty.pt").write_bytes(b"")
    torch.save({"0.weight": torch.zeros(3, 3), "note": Net()}, d / "obj.pt")
    torch.jit.save(torch.jit.script(m), d / "ts.pt")
    torch.export.save(torch.export.export(m, (torch.zeros(1, 784),)), d / "ep.pt2")
    with zipfile.ZipFile(d / "zip.pt", "w") as z:
        z.writestr("notes.txt", "hello\n")
    return {
        "garbage": (d / "garbage.pt", "is not a file written by torch.save (neither a zip "
                                      "archive nor a pickle)"),
        "pickle": (d / "pickle.pt", "is not a file written by torch.save (torch.load: "
                                    "Unsupported operand 149)"),
        "trunc": (d / "trunc.pt", "is truncated or damaged (a zip archive, as torch.save "
                                  "writes, without its end)"),
        "empty": (d / "empty.pt", "is empty, not a torch.save file"),
        "obj": (d / "obj.pt", f"holds a pickled {Net.__module__}.Net, which is not read"),
        "ts": (d / "ts.pt", "is a TorchScript archive (torch.jit.save), which is not read: "
                            "export the model to ONNX"),
        "ep": (d / "ep.pt2", "is a torch.export archive (torch.export.save), which is not read"),
        "zip": (d / "zip.pt", "is a zip archive but not a torch.save file (no data.pkl)"),
    }


def test_torch_load_errors_are_one_clean_line(tmp_path: Path,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    """No ANSI escape, no second line, no cut word, the file named; torch's warnings silent."""
    for name, (path, expected) in _pt_files(tmp_path).items():
        capfd.readouterr()
        with pytest.raises(UserError) as info:
            import_model(path, tmp_path / "out.npz", calib="none", activation="relu")
        msg = str(info.value)
        assert msg.startswith(f"{path} {expected}"), (name, msg)
        assert "\x1b" not in msg and "\n" not in msg and len(msg) < 400, (name, msg)
        assert capfd.readouterr().err == "", name  # e.g. torch's TorchScript UserWarning
        assert not (tmp_path / "out.npz").exists()
