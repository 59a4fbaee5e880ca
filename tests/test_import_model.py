"""gen.frontends.import_model: ONNX and state_dict MLPs -> our .npz, classes as torch, RTL exact.

The reference is the source model itself: torch's forward pass on the committed
100-image sample. The imported file then goes through the generator and the
whole-network bench (a few images, every layer compared with gen/core/model.py).
"""

from __future__ import annotations

import json
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


@pytest.mark.parametrize("kind", ["onnx", "state_dict"])
@pytest.mark.parametrize("net", ["mlp256", "deep"])
def test_import_gives_the_source_models_classes(tmp_path: Path, kind: str, net: str) -> None:
    model = mlp256_torch() if net == "mlp256" else deep_torch()
    flat = net == "mlp256"
    src = (export_onnx(model, tmp_path / "m.onnx", (1, 784) if flat else (1, 1, 28, 28))
           if kind == "onnx" else tmp_path / "m.pt")
    if kind == "state_dict":
        torch.save(model.state_dict(), src)
    out = tmp_path / "m.npz"
    import_model(src, out, calib="sample")
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
    import_model(tmp_path / "d.pt", sd_npz, calib="none")  # calibrated by the generator
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
    import_model(tmp_path / "ckpt.pt", tmp_path / "m.npz", calib="none")
    images, _ = sample()
    np.testing.assert_array_equal(imported_classes(tmp_path / "m.npz", images),
                                  torch_classes(model, images))
    sd["head.0.weight"] = torch.zeros(10, 10)  # two Sequentials: not one plain MLP
    torch.save(sd, tmp_path / "two.pt")
    with pytest.raises(UserError, match="keys under several modules"):
        import_model(tmp_path / "two.pt", tmp_path / "x.npz", calib="none")


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
        import_model(path, out, calib="none")
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
