"""Import a float MLP from ONNX or a PyTorch state_dict into the weights ``.npz`` (docs/models.md).

    mnist-fpga import --from model.onnx --out build/import/model.npz [--calib train]
    mnist-fpga import --from model.pt   --out build/import/model.npz [--force]

An existing ``--out`` file is never replaced without ``--force``.

The network must be a plain MLP: linear layers with one ReLU between consecutive
layers and none on the output, taking the 784 pixels as ``x = pixel / 255``.

- ONNX (as ``torch.onnx.export`` writes it, read with the ``onnx`` package): one chain of
  ``Gemm`` (or ``MatMul`` + ``Add``) and ``Relu`` nodes; ``Flatten``, ``Reshape``,
  ``Identity`` and ``Dropout`` pass through, a final ``Softmax``/``LogSoftmax`` is dropped
  (it does not change the class). Anything else (a convolution, another activation, a
  tensor used twice as in a skip connection) is refused.
- a state_dict of an ``nn.Sequential`` (``torch.save(model.state_dict(), path)``, read with
  ``weights_only=True``): keys ``<i>.weight``/``<i>.bias`` of ``Linear`` modules. A
  state_dict holds no activations: every gap between two Linear indices is taken for a
  ReLU (and maybe a Dropout), none after the last. Convolutions, norms, parameterised
  activations and nested modules are refused.

Hidden layers get ``calib{k}`` as train/ computes it (99.99th percentile of the
post-ReLU activations over the MNIST training set), from ``--calib sample`` the
committed 100-image sample, or none (``--calib none``: gen.core.quant's fallback calibrates
at generation time).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from mnist_fpga.files import atomic_writer
from mnist_fpga.gen.core.errors import UserError, check_creatable, cli_main
from mnist_fpga.gen.core.model import N_PIXELS
from mnist_fpga.gen.core.quant import calibrate, float_forward
from mnist_fpga.gen.data.mnist import load_mnist
from mnist_fpga.paths import DEFAULT_SAMPLE

Layers = list[tuple[np.ndarray, np.ndarray]]

PASS_THROUGH = {"Flatten", "Reshape", "Identity", "Dropout"}
FINAL_SOFTMAX = {"Softmax", "LogSoftmax"}
ACTIVATIONS = {"Sigmoid", "Tanh", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu",
               "Softplus", "Softsign", "HardSigmoid", "HardSwish", "Mish", "Clip",
               "ThresholdedRelu", "Swish", "Softmax", "LogSoftmax", "Abs", "Sign"}
CONVS = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv"}


# ---------------------------------------------------------------- ONNX


def _onnx_kind(op: str) -> str:
    if op in CONVS:
        return "a convolution"
    if op in ACTIVATIONS:
        return "an activation other than ReLU"
    return "not a linear layer or ReLU"


def read_onnx(path: Path) -> Layers:
    """The linear layers (W (out, in), b (out,)) of an ONNX MLP."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf's DecodeError and friends: not a model
        raise UserError(f"{path} is not a readable ONNX model ({type(exc).__name__})") from None
    graph = model.graph
    if not graph.node:
        raise UserError(f"{path} is not a readable ONNX model (no nodes)")
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(a.t)
    nodes = [n for n in graph.node if n.op_type != "Constant"]
    inputs = [i.name for i in graph.input if i.name not in consts]
    outputs = [o.name for o in graph.output]
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"{path}: not a plain MLP: {len(inputs)} inputs and {len(outputs)} "
                        "outputs, expected one of each")

    def what(node: onnx.NodeProto) -> str:
        return f"{node.op_type} node {node.name or node.output[0]!r}"

    layers: Layers = []
    relu = []  # per layer: a ReLU follows it
    cur, visited = inputs[0], 0
    while cur != outputs[0]:
        users = [n for n in nodes if cur in n.input]
        if len(users) != 1:
            raise UserError(f"{path}: not a plain MLP: tensor {cur!r} feeds {len(users)} nodes "
                            "(a skip connection or a branch)" if users else
                            f"{path}: not a plain MLP: tensor {cur!r} feeds no node")
        node = users[0]
        visited += 1
        others = [i for i in node.input if i and i != cur and i not in consts]
        if others:
            raise UserError(f"{path}: not a plain MLP: {what(node)} adds tensor {others[0]!r} "
                            "to the layer's input (a skip connection)")
        op = node.op_type
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if op == "Gemm":
            if node.input[0] != cur or attrs.get("transA", 0):
                raise UserError(f"{path}: not a plain MLP: {what(node)} multiplies from the left")
            b_mat = consts[node.input[1]].astype(np.float64)
            w = b_mat if attrs.get("transB", 0) else b_mat.T
            w = w * float(attrs.get("alpha", 1.0))
            bias = (consts[node.input[2]].astype(np.float64).reshape(-1) * attrs.get("beta", 1.0)
                    if len(node.input) > 2 and node.input[2] else np.zeros(w.shape[0]))
            _add_layer(path, layers, relu, w, bias, what(node))
        elif op == "MatMul":
            if node.input[0] != cur:
                raise UserError(f"{path}: not a plain MLP: {what(node)} multiplies from the left")
            w = consts[node.input[1]].astype(np.float64).T
            _add_layer(path, layers, relu, w, np.zeros(w.shape[0]), what(node))
        elif op == "Add" and layers and not relu[-1] and not layers[-1][1].any() \
                and _prev_op(nodes, cur) == "MatMul":
            bias = next(consts[i] for i in node.input if i != cur).astype(np.float64)
            w = layers[-1][0]
            if bias.size != w.shape[0]:
                raise UserError(f"{path}: {what(node)} adds {bias.size} values to a layer of "
                                f"{w.shape[0]} neurons")
            layers[-1] = (w, bias.reshape(-1))
        elif op == "Relu":
            if not layers or relu[-1]:
                raise UserError(f"{path}: not a plain MLP: {what(node)} does not follow a "
                                "linear layer")
            relu[-1] = True
        elif op in PASS_THROUGH:
            pass
        elif op in FINAL_SOFTMAX and node.output[0] == outputs[0]:
            pass  # the class is the argmax of the logits either way
        else:
            raise UserError(f"{path}: not a plain MLP: {what(node)} is {_onnx_kind(op)} "
                            "(only Gemm/MatMul+Add and Relu)")
        cur = node.output[0]
    if visited != len(nodes):
        raise UserError(f"{path}: not a plain MLP: {len(nodes) - visited} nodes lie off the "
                        "chain from input to output (a branch)")
    _check_relus(path, relu)
    return layers


def _prev_op(nodes: list, tensor: str) -> str:
    return next((n.op_type for n in nodes if tensor in n.output), "")


def _add_layer(path: Path, layers: Layers, relu: list[bool], w: np.ndarray, b: np.ndarray,
               where: str) -> None:
    if w.ndim != 2:
        raise UserError(f"{path}: {where} has a weight of shape {w.shape}, not a matrix")
    if layers and not relu[-1]:
        raise UserError(f"{path}: not a plain MLP: no ReLU between layer {len(layers) - 1} "
                        f"and layer {len(layers)} ({where})")
    layers.append((w, b))
    relu.append(False)


def _check_relus(path: Path, relu: list[bool]) -> None:
    if not relu:
        raise UserError(f"{path}: no linear layer found")
    if relu[-1]:
        raise UserError(f"{path}: not a plain MLP: a ReLU on the output layer (the last layer "
                        "must give the logits)")


# ---------------------------------------------------------------- state_dict

_KEY = re.compile(r"(?P<prefix>(?:[A-Za-z_]\w*\.)*)(?P<index>\d+)\.(?P<param>\w+)")


def read_state_dict(path: Path) -> Layers:
    """The linear layers of an ``nn.Sequential`` state_dict saved with ``torch.save``."""
    import pickle
    import zipfile

    import torch

    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile,
            ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} is not a readable PyTorch state_dict ({first[:120]})") from None
    for key in ("state_dict", "model_state_dict"):  # a training checkpoint
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
    if not isinstance(sd, dict) or not sd or not all(
            isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(f"{path} is not a state_dict (a dict of tensors)")
    modules: dict[int, dict[str, np.ndarray]] = {}
    prefixes = set()
    for key, value in sd.items():
        m = _KEY.fullmatch(str(key))
        if not m:
            raise UserError(f"{path}: not a plain nn.Sequential: key {key!r} is not "
                            "<index>.weight/<index>.bias (a nested module, e.g. a skip block)")
        prefixes.add(m["prefix"])
        modules.setdefault(int(m["index"]), {})[m["param"]] = value.detach().double().numpy()
    if len(prefixes) > 1:
        raise UserError(f"{path}: not a plain nn.Sequential: keys under several modules "
                        f"({', '.join(sorted(p.rstrip('.') or '<top>' for p in prefixes))})")
    layers: Layers = []
    last = None
    for i in sorted(modules):
        params = modules[i]
        w = params.get("weight")
        kind = _sd_kind(params)
        if kind:
            raise UserError(f"{path}: not a plain MLP: module {i} is {kind} (only Linear and "
                            "ReLU)")
        assert w is not None
        b = params.get("bias", np.zeros(w.shape[0]))
        if b.shape != (w.shape[0],):
            raise UserError(f"{path}: module {i}: bias shape {b.shape} does not match weight "
                            f"shape {w.shape}")
        if last is not None and i - last < 2:
            raise UserError(f"{path}: not a plain MLP: Linear modules {last} and {i} have no "
                            "ReLU between them")
        layers.append((w, b))
        last = i
    return layers


def _sd_kind(params: dict[str, np.ndarray]) -> str:
    """Why a module's parameters are not those of a Linear ('' when they are)."""
    w = params.get("weight")
    if {"running_mean", "running_var"} & set(params):
        return "a batch normalization"
    if w is None:
        return f"a module with parameters {', '.join(sorted(params))}"
    if w.ndim >= 3:
        return f"a convolution (weight of shape {w.shape})"
    if w.ndim < 2:
        return (f"a parameterised activation or normalization (weight of shape {w.shape}, "
                "e.g. PReLU or LayerNorm)")
    if set(params) - {"weight", "bias"}:
        return f"a module with parameters {', '.join(sorted(params))}"
    return ""


# ---------------------------------------------------------------- the npz


def check_sizes(path: Path, layers: Layers) -> None:
    """784 inputs, each layer's inputs = the previous layer's neurons, finite values."""
    for k, (w, b) in enumerate(layers):
        n_in = N_PIXELS if k == 0 else layers[k - 1][0].shape[0]
        if w.shape[1] != n_in:
            prev = ("the 784 pixels (28x28)" if k == 0
                    else f"the {n_in} neurons of layer {k - 1}")
            raise UserError(f"{path}: layer {k} takes {w.shape[1]} inputs, but its input is "
                            f"{prev}")
        if w.shape[0] < 1:
            raise UserError(f"{path}: layer {k} has no neurons")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise UserError(f"{path}: layer {k} contains NaN or infinite values")


def onnx_classes(path: Path, images: np.ndarray) -> np.ndarray:
    """Classes of the ONNX model itself (onnx's reference runtime) for uint8 ``images``."""
    import onnx
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(str(path))
    inp = next(i for i in model.graph.input
               if i.name not in {t.name for t in model.graph.initializer})
    rank = len(inp.type.tensor_type.shape.dim)
    shape = {2: (-1, N_PIXELS), 3: (-1, 28, 28), 4: (-1, 1, 28, 28)}.get(rank, (-1, N_PIXELS))
    x = (images.astype(np.float32) / np.float32(255.0)).reshape(shape)
    logits = np.asarray(ReferenceEvaluator(model).run(None, {inp.name: x})[0])
    logits = logits.reshape(len(images), -1)
    return (logits[:, 0] > 0).astype(int) if logits.shape[1] == 1 else np.argmax(logits, 1)


def float_logits(layers: Layers, images: np.ndarray) -> np.ndarray:
    """Logits of the imported float network (float32 values, float64 sums, x = pixel/255)."""
    weights = {}
    for k, (w, b) in enumerate(layers):
        weights[f"W{k}"] = w.astype(np.float32).astype(np.float64)
        weights[f"b{k}"] = b.astype(np.float32).astype(np.float64)
    return float_forward(weights, images)[-1]


def decide(logits: np.ndarray) -> np.ndarray:
    """Class per row: argmax (first on ties), or ``logit > 0`` for one output."""
    return (logits[:, 0] > 0).astype(int) if logits.shape[1] == 1 else np.argmax(logits, 1)


def check_against_onnx(path: Path, layers: Layers) -> int:
    """The imported layers give the ONNX model's classes on the sample; returns the count.

    Only a near-tie (two logits within float32 rounding, 1e-5 relative) may differ: any
    other difference means the graph computes something the import does not (never silent).
    """
    with np.load(DEFAULT_SAMPLE) as z:
        images = z["images"]
    logits = float_logits(layers, images)
    mine, theirs = decide(logits), onnx_classes(path, images)
    rows = np.flatnonzero(mine != theirs)
    if logits.shape[1] == 1:
        gaps = np.abs(logits[rows, 0])
    else:
        gaps = logits[rows, mine[rows]] - logits[rows, theirs[rows]]
    tol = 1e-5 * (1.0 + np.abs(logits[rows]).max(axis=1)) if len(rows) else np.zeros(0)
    differ = int((gaps > tol).sum())
    if differ:
        raise UserError(f"{path}: the imported network disagrees with the ONNX model on "
                        f"{differ} of {len(images)} sample images; not imported")
    return len(images)


def read_model(path: Path) -> Layers:
    """Layers of an ONNX file (``.onnx``) or a state_dict (anything else)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist")
    layers = read_onnx(path) if path.suffix.lower() == ".onnx" else read_state_dict(path)
    check_sizes(path, layers)
    return layers


def to_arrays(layers: Layers, calib: dict[str, float], meta: dict) -> dict[str, np.ndarray]:
    """The docs/models.md layout: W{k}, b{k} float32, calib{k} (if given), meta."""
    arrays: dict[str, np.ndarray] = {}
    for k, (w, b) in enumerate(layers):
        arrays[f"W{k}"] = w.astype(np.float32)
        arrays[f"b{k}"] = b.astype(np.float32)
    for key, value in calib.items():
        arrays[key] = np.asarray(value, dtype=np.float32)
    arrays["meta"] = np.asarray(np.str_(json.dumps(meta, sort_keys=True)))
    return arrays


def import_model(source: Path, out: Path, calib: str = "train",
                 mnist_dir: str | None = None, force: bool = False) -> dict[str, np.ndarray]:
    """Read ``source``, calibrate, write ``out`` atomically; return the arrays written.

    An existing ``out`` is refused unless ``force``: it may be the user's own weights.
    """
    source, out = Path(source), Path(out)
    if calib not in ("train", "sample", "none"):
        raise UserError(f"--calib {calib!r}: choose train, sample or none")
    check_creatable(out, "output file")
    if out.is_dir():
        raise UserError(f"output file {out} exists and is a folder")
    if (out.exists() or out.is_symlink()) and not force:
        raise UserError(f"output file {out} exists; refusing to overwrite it (--force, or "
                        "FORCE=1 for make import, replaces it)")
    layers = read_model(source)
    checked = check_against_onnx(source, layers) if source.suffix.lower() == ".onnx" else 0
    weights = {}
    for k, (w, b) in enumerate(layers):
        weights[f"W{k}"], weights[f"b{k}"] = w, b
    images = None
    if calib == "train" and len(layers) > 1:
        images = load_mnist("train", mnist_dir)[0]
    elif calib == "sample" and len(layers) > 1:
        with np.load(DEFAULT_SAMPLE) as z:
            images = z["images"]
    cal = calibrate(weights, images) if images is not None else {}
    meta = {
        "net": out.stem, "layers": [N_PIXELS, *(w.shape[0] for w, _ in layers)],
        "imported_from": source.name,
        "import_format": "onnx" if source.suffix.lower() == ".onnx" else "state_dict",
        "input": "pixel/255", "calib_percentile": 99.99,
        "same_classes_as_onnx_on_sample": checked,
        "calib_images": {"train": "MNIST train", "sample": DEFAULT_SAMPLE.name,
                         "none": "none (gen.core.quant falls back at generation)"}[calib],
    }
    arrays = to_arrays(layers, cal, meta)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(out) as f:
            np.savez(f, **arrays)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    return arrays


def sample_agreement(layers: Layers) -> tuple[int, int]:
    """(correct, images) of the imported float network on the committed sample."""
    with np.load(DEFAULT_SAMPLE) as z:
        images, labels = z["images"], z["labels"]
    logits = float_logits(layers, images)
    truth = (labels == 0).astype(int) if logits.shape[1] == 1 else labels.astype(int)
    return int((decide(logits) == truth).sum()), len(labels)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mnist-fpga import",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="source", required=True, type=Path,
                    help="model.onnx, or a torch.save'd state_dict of an nn.Sequential")
    ap.add_argument("--out", required=True, type=Path,
                    help="weights .npz to write (an existing file only with --force)")
    ap.add_argument("--force", action="store_true", help="replace an existing --out file")
    ap.add_argument("--calib", default="train", choices=["train", "sample", "none"],
                    help="images for the hidden layers' calib{k} (default: MNIST train)")
    ap.add_argument("--mnist-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    args = ap.parse_args(argv)
    arrays = import_model(args.source, args.out, args.calib, args.mnist_dir, args.force)
    meta = json.loads(str(arrays["meta"]))
    layers = [(arrays[f"W{k}"], arrays[f"b{k}"]) for k in range(len(meta["layers"]) - 1)]
    correct, n = sample_agreement(layers)
    same = meta["same_classes_as_onnx_on_sample"]
    same_txt = f", same classes as the ONNX model on {same}/{same}" if same else ""
    print(f"imported {'-'.join(map(str, meta['layers']))} from {args.source} into {args.out}: "
          f"float accuracy {correct}/{n} on {DEFAULT_SAMPLE.name} (x = pixel/255){same_txt}")
    return 0


if __name__ == "__main__":
    cli_main(main)
