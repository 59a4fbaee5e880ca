"""Quick tests of train.train (tiny deterministic runs) and train.evaluate."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from mnist_fpga.gen.core.errors import UserError

pytest.importorskip("torch")

from mnist_fpga.train import evaluate, train

REAL_DIR = os.environ.get("MNIST_DIR") or None
needs_real = pytest.mark.skipif(REAL_DIR is None, reason="MNIST_DIR not set")

META_KEYS = {"net", "seed", "epochs", "test_accuracy", "n_train", "n_test", "torch_version"}


def _synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable fake digits: class c lights up row band c of the image, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n).astype(np.uint8)
    images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
    for i, c in enumerate(labels):
        images[i, 2 * c + 4 : 2 * c + 6, 4:24] = 255
    return images, labels


def _check_layout(path: Path, net: str, widths: list[int]) -> dict[str, np.ndarray]:
    """Assert the documented npz layout; return its arrays."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    n_layers = len(widths) - 1
    expected = {f"W{k}" for k in range(n_layers)} | {f"b{k}" for k in range(n_layers)}
    expected |= {f"calib{k}" for k in range(n_layers - 1)} | {"meta"}
    assert set(arrays) == expected
    for k in range(n_layers):
        assert arrays[f"W{k}"].dtype == np.float32
        assert arrays[f"W{k}"].shape == (widths[k + 1], widths[k])
        assert arrays[f"b{k}"].dtype == np.float32
        assert arrays[f"b{k}"].shape == (widths[k + 1],)
    for k in range(n_layers - 1):
        calib = arrays[f"calib{k}"]
        assert calib.dtype == np.float32 and calib.shape == ()
        assert float(calib) > 0
    meta = json.loads(str(arrays["meta"]))
    assert set(meta) >= META_KEYS
    assert meta["net"] == net
    assert meta["layers"] == widths
    return arrays


@pytest.mark.parametrize(("net", "widths"), [("zero", [784, 1]), ("l10", [784, 10])])
def test_train_small_nets_synthetic(net: str, widths: list[int], tmp_path: Path) -> None:
    images, labels = _synthetic(2000, seed=3)
    arrays = train.train_net(
        net, images, labels, images[:200], labels[:200], epochs=5, seed=0, log=lambda _: None
    )
    path = tmp_path / f"{net}.npz"
    train.save_model(arrays, path)
    _check_layout(path, net, widths)
    meta = json.loads(str(arrays["meta"]))
    assert meta["epochs"] == 5 and meta["n_train"] == 2000 and meta["n_test"] == 200
    # the numpy evaluator agrees with the figure recorded at training time
    acc = evaluate.float_accuracy(path, images[:200], labels[:200])
    assert acc == pytest.approx(meta["test_accuracy"])
    # the synthetic task is easy; 0.9 is what "never a 0" scores on the one-neuron net
    assert acc > 0.95


def test_deterministic_and_calibration_synthetic(tmp_path: Path) -> None:
    images, labels = _synthetic(512, seed=4)
    runs = [
        train.train_net(
            "mlp256",
            images,
            labels,
            images[:100],
            labels[:100],
            epochs=1,
            seed=7,
            log=lambda _: None,
        )
        for _ in range(2)
    ]
    other = train.train_net(
        "mlp256", images, labels, images[:100], labels[:100], epochs=1, seed=8, log=lambda _: None
    )
    for key in ("W0", "b0", "W1", "b1", "calib0"):
        np.testing.assert_array_equal(runs[0][key], runs[1][key])
    assert not np.array_equal(runs[0]["W0"], other["W0"])  # the seed matters
    # calib0 is the 99.99th percentile of the post-ReLU hidden activations (eval mode)
    x = images.reshape(len(images), -1).astype(np.float32) / 255
    hidden = np.maximum(x @ runs[0]["W0"].T + runs[0]["b0"], 0)
    assert float(runs[0]["calib0"]) == pytest.approx(np.percentile(hidden, 99.99), rel=1e-5)
    assert float(runs[0]["calib0"]) <= hidden.max()


def test_evaluate_ties_and_binary(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    w = np.zeros((3, 784), np.float32)
    train.save_model({"W0": w, "b0": np.array([1, 2, 2], np.float32)}, path)
    images = np.zeros((4, 28, 28), np.uint8)
    # all logits (1, 2, 2): argmax picks the first maximum, class 1
    assert evaluate.float_accuracy(path, images, np.array([1, 1, 2, 0])) == 0.5
    train.save_model(
        {"W0": np.zeros((1, 784), np.float32), "b0": np.array([0.5], np.float32)}, path
    )
    # logit 0.5 > 0 means "is a 0"
    assert evaluate.float_accuracy(path, images, np.array([0, 0, 0, 3])) == 0.75
    train.save_model({"W0": np.zeros((1, 784), np.float32), "b0": np.zeros(1, np.float32)}, path)
    # logit exactly 0 is not "a 0"
    assert evaluate.float_accuracy(path, images, np.array([0, 0, 0, 3])) == 0.25
    train.save_model({"W0": w, "b1": np.zeros(3, np.float32)}, path)
    with pytest.raises(UserError, match=r"'b0'.*missing"):
        evaluate.float_accuracy(path, images, np.zeros(4))
    with pytest.raises(UserError, match="does not exist"):
        evaluate.float_accuracy(tmp_path / "missing.npz", images, np.zeros(4))


def test_save_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    train.save_model({"W0": np.ones((1, 784), np.float32)}, path)
    before = path.read_bytes()

    class Boom:
        def __array__(self, *args: object, **kwargs: object) -> np.ndarray:
            raise RuntimeError("boom")

    bad = {"W0": np.zeros((1, 784), np.float32), "b0": Boom()}
    with pytest.raises(RuntimeError, match="boom"):
        train.save_model(bad, path)  # type: ignore[arg-type]
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


@needs_real
def test_cli_tiny_run_is_reproducible(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        argv = [
            "--net",
            "mlp256",
            "--epochs",
            "1",
            "--limit",
            "2000",
            "--seed",
            "0",
            "--out",
            str(out),
        ]
        assert train.main(argv) == 0
    assert "mlp256 epoch  1/1" in capsys.readouterr().out
    a = _check_layout(outs[0] / "mlp256.npz", "mlp256", [784, 256, 10])
    b = _check_layout(outs[1] / "mlp256.npz", "mlp256", [784, 256, 10])
    for key in set(a) - {"meta"}:
        np.testing.assert_array_equal(a[key], b[key])
    meta_a, meta_b = json.loads(str(a["meta"])), json.loads(str(b["meta"]))
    assert meta_a["n_train"] == 2000 and meta_a["n_test"] == 10000
    # one epoch on 2,000 images: far from converged, far above chance (0.1)
    assert meta_a["test_accuracy"] == meta_b["test_accuracy"] > 0.6


def test_cli_rejects_bad_options(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--epochs must be at least 1"):
        train.main(["--net", "l10", "--epochs", "0", "--out", str(tmp_path)])
    with pytest.raises(UserError, match="--limit must be at least 1"):
        train.main(["--net", "l10", "--limit", "0", "--out", str(tmp_path)])


# ---------------------------------------------------------------- any MLP (--layers)


@pytest.mark.parametrize(("net", "layers"), [("mlp24x12", "784,24,12,10"), ("lin1", "784,1")])
def test_train_any_layers_synthetic(net: str, layers: str, tmp_path: Path) -> None:
    """--layers trains any depth and width into the documented layout (calib per hidden layer)."""
    images, labels = _synthetic(2000, seed=5)
    recipe = train.recipe_for(net, layers)
    arrays = train.train_net(net, images, labels, images[:200], labels[:200], epochs=5, seed=0,
                             log=lambda _: None, recipe=recipe)
    path = tmp_path / f"{net}.npz"
    train.save_model(arrays, path)
    widths = [int(v) for v in layers.split(",")]
    _check_layout(path, net, widths)
    assert json.loads(str(arrays["meta"]))["epochs"] == 5
    assert evaluate.float_accuracy(path, images[:200], labels[:200]) > 0.9


def test_reference_recipes_unchanged_by_layers() -> None:
    """The reference nets keep their recipes; --layers of their own shape is the same recipe."""
    assert train.recipe_for("mlp256", None) is train.RECIPES["mlp256"]
    assert train.recipe_for("mlp256", "784,256,10") is train.RECIPES["mlp256"]
    deep = train.recipe_for("deep", "784,32,32,32,10")
    assert deep.hidden == (32, 32, 32) and deep.n_out == 10
    assert deep.epochs == train.CUSTOM_EPOCHS and deep.dropout == train.RECIPES["mlp256"].dropout


@pytest.mark.parametrize(("net", "layers", "match"), [
    ("m", "100,10", "must start at 784"),
    ("m", "784", "at least two"),
    ("m", "784,64,x,10", "at least two comma-separated widths"),
    ("m", "784,0,10", "at least two comma-separated widths"),
    ("m", "784,64,7", "must end at 10"),
    ("mlp256", "784,128,10", "mlp256 is a reference network"),
    ("all", "784,10", "--net all trains the reference"),
    ("bad__name", "784,10", "not a valid VHDL identifier"),
    ("nosuch", None, "unknown network 'nosuch'"),
])
def test_cli_rejects_bad_layers(net: str, layers: str | None, match: str, tmp_path: Path) -> None:
    argv = ["--net", net, "--out", str(tmp_path)] + (["--layers", layers] if layers else [])
    with pytest.raises(UserError, match=match):
        train.main(argv)
    assert list(tmp_path.iterdir()) == []
