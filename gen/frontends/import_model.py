"""Import a float MLP from ONNX or a PyTorch file into the weights ``.npz`` (docs/models.md).

    mnist-fpga import --from model.onnx --out build/import/model.npz [--calib train]
    mnist-fpga import --from model.pt   --out build/import/model.npz --activation relu
    mnist-fpga import --from module.pt  --out build/import/model.npz [--force]

An existing ``--out`` file is never replaced without ``--force``.

The network must be a plain MLP: linear layers with one ReLU between consecutive
layers and none on the output, taking the 784 pixels as ``x = pixel / 255``.

- ONNX (as ``torch.onnx.export`` writes it, read with the ``onnx`` package): one chain of
  ``Gemm`` (or ``MatMul`` + ``Add``) and ``Relu`` nodes; a ``BatchNormalization`` right
  after a layer is folded into its W and b; ``Flatten``, ``Reshape`` (its shape may be
  computed from the input's), ``Identity`` and ``Dropout`` pass through, a final
  ``Softmax``/``LogSoftmax`` is dropped (it does not change the class). Anything else is
  refused with a line naming the node and what to do.
- a whole ``nn.Sequential`` saved with ``torch.save(model)`` of torch.nn's own modules:
  the file holds the modules, so the activations are read from it (a ``BatchNorm1d``
  right after a ``Linear`` is folded). Loaded with ``weights_only=True`` allowing only
  torch.nn's module classes: no code from the file runs.
- a state_dict of an ``nn.Sequential`` (``torch.save(model.state_dict(), path)``): keys
  ``<i>.weight``/``<i>.bias`` of ``Linear`` modules. A state_dict holds no activations:
  the user must say them (``--activation relu``, the only one the RTL computes); every
  gap between two Linear indices is then that ReLU (and maybe a Dropout), none after the
  last. Convolutions, norms, parameterised activations and nested modules are refused.

ONNX and torch-module imports are run on the committed sample and must give the source
model's classes. Hidden layers get ``calib{k}`` as train/ computes it (99.99th percentile
of the post-ReLU activations over the MNIST training set), from ``--calib sample`` the
committed 100-image sample, or none (``--calib none``: gen.core.quant's fallback calibrates
at generation time).
"""

from __future__ import annotations

import argparse
import json
import re
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnist_fpga.files import atomic_writer
from mnist_fpga.gen.core.errors import UserError, check_creatable, cli_main
from mnist_fpga.gen.core.model import N_PIXELS
from mnist_fpga.gen.core.quant import calibrate, float_forward
from mnist_fpga.gen.data.mnist import load_mnist
from mnist_fpga.paths import DEFAULT_SAMPLE

Layers = list[tuple[np.ndarray, np.ndarray]]

ACTIVATION_CHOICES = ("relu",)  # what the RTL computes between layers
PASS_THROUGH = {"Flatten", "Reshape", "Identity", "Dropout"}
FINAL_SOFTMAX = {"Softmax", "LogSoftmax"}
ACTIVATIONS = {"Sigmoid", "Tanh", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu",
               "Softplus", "Softsign", "HardSigmoid", "HardSwish", "Mish", "Clip",
               "ThresholdedRelu", "Swish", "Abs", "Sign"}
ARITHMETIC = {"Add", "Sub", "Mul", "Div", "Pow", "Sqrt"}
CONVS = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv"}
NO_ACTIVATION = ("a state_dict holds no activations, so the importer cannot see what "
                 "follows each hidden layer: pass --activation relu (ACTIVATION=relu for make "
                 "import) if the hidden layers use ReLU (the RTL computes ReLU only), or save "
                 "the whole nn.Sequential (torch.save(model)) or export to ONNX")


@dataclass
class Source:
    """What a model file gave: its layers and how to check them against the file."""

    layers: Layers
    kind: str  # "onnx", "torch module" or "state_dict"
    activation_from: str  # "the file", "--activation" or "none (one layer)"
    classes: Callable[[np.ndarray], np.ndarray] | None = None  # the source model's own


# ---------------------------------------------------------------- messages of libraries

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")


def one_line(text: str, limit: int = 150) -> str:
    """The first meaningful sentence of a library's error text, as one clean line.

    ANSI escapes go, torch's weights_only preamble is skipped to its ``WeightsUnpickler
    error:``, and a long sentence is shortened at a word boundary (never mid-word).
    """
    text = _ANSI.sub("", text)
    if m := re.search(r"WeightsUnpickler error:\s*(\S.*)", text, re.S):
        text = m[1]
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = re.split(r"(?<=[.!?])\s+", line, maxsplit=1)[0].rstrip(".")
    if len(line) > limit:
        line = line[:limit + 1].rsplit(" ", 1)[0].rstrip(",;:") + " ..."
    return line


# ---------------------------------------------------------------- layers


def fold_batchnorm(w: np.ndarray, b: np.ndarray, scale: np.ndarray, shift: np.ndarray,
                   mean: np.ndarray, var: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """``BN(W x + b)`` (inference: running statistics) as one layer ``W' x + b'``, in float64.

    ``BN(z) = (z - mean) / sqrt(var + eps) * scale + shift`` is affine per neuron, so
    ``W' = s W`` and ``b' = s (b - mean) + shift`` with ``s = scale / sqrt(var + eps)``.
    """
    s = scale / np.sqrt(var + eps)
    return w * s[:, None], s * (b - mean) + shift


class _Chain:
    """Layers being read in order, with the ReLU after each; messages name ``path``."""

    def __init__(self, path: Path) -> None:
        self.path, self.layers, self.relu = path, [], []
        self.open = False  # the last thing read is a layer (a bias or a norm may join it)

    def add(self, w: np.ndarray, b: np.ndarray, where: str) -> None:
        if w.ndim != 2:
            raise UserError(f"{self.path}: {where} has a weight of shape {w.shape}, not a matrix")
        if self.layers and not self.relu[-1]:
            raise UserError(f"{self.path}: not a plain MLP: no ReLU between layer "
                            f"{len(self.layers) - 1} and layer {len(self.layers)} ({where})")
        self.layers.append((w, b))
        self.relu.append(False)
        self.open = True

    def add_relu(self, where: str) -> None:
        if not self.open:
            raise UserError(f"{self.path}: not a plain MLP: {where} does not follow a linear "
                            "layer")
        self.relu[-1], self.open = True, False

    def fold_bn(self, where: str, scale: np.ndarray, shift: np.ndarray, mean: np.ndarray,
                var: np.ndarray, eps: float) -> None:
        if not self.open:
            after, todo = (("a ReLU", "fold it into the next layer before export, or train "
                            "with it before the ReLU") if self.layers else
                           ("the input", "fold it into the first layer before export"))
            raise UserError(f"{self.path}: not a plain MLP: {where} follows {after}, not a "
                            "linear layer: only a batch normalization right after a linear "
                            f"layer is folded ({todo})")
        w, b = self.layers[-1]
        for name, v in (("scale", scale), ("bias", shift), ("mean", mean), ("variance", var)):
            if v.size != w.shape[0]:
                raise UserError(f"{self.path}: {where} has {v.size} {name} values for a layer "
                                f"of {w.shape[0]} neurons")
        self.layers[-1] = fold_batchnorm(w, b, *(v.astype(np.float64).reshape(-1) for v in (
            scale, shift, mean, var)), eps)

    def done(self) -> Layers:
        if not self.layers:
            raise UserError(f"{self.path}: no linear layer found")
        if self.relu[-1]:
            raise UserError(f"{self.path}: not a plain MLP: a ReLU on the output layer (the "
                            "last layer must give the logits)")
        return self.layers


# ---------------------------------------------------------------- ONNX


def _fold_constants(graph: Any) -> tuple[dict[str, np.ndarray], set[str], list]:
    """Constant tensors, shape-only tensors (computed from ``Shape``) and the data nodes.

    torch's exporter writes ``Identity`` nodes that alias initializers, and
    ``x.view(x.size(0), -1)`` becomes ``Shape``/``Gather``/``Concat`` nodes feeding a
    ``Reshape``: neither is part of the chain of layers.
    """
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    shape_only: set[str] = set()
    data_nodes = []
    for node in graph.node:
        ins = [i for i in node.input if i]
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(a.t)
            continue
        if ins and all(i in consts for i in ins):
            try:
                values = ReferenceEvaluator(node).run(None, {i: consts[i] for i in ins})
            except Exception:  # not evaluable here: left in the chain
                values = None
            if values is not None:
                consts.update(zip(node.output, (np.asarray(v) for v in values), strict=False))
                continue
        if node.op_type == "Shape" or (ins and all(i in consts or i in shape_only
                                                   for i in ins)):
            shape_only.update(node.output)
            continue
        data_nodes.append(node)
    return consts, shape_only, data_nodes


def read_onnx(path: Path) -> Layers:
    """The linear layers (W (out, in), b (out,)) of an ONNX MLP."""
    import onnx

    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf's DecodeError and friends: not a model
        raise UserError(f"{path} is not a readable ONNX model ({type(exc).__name__})") from None
    graph = model.graph
    if not graph.node:
        raise UserError(f"{path} is not a readable ONNX model (no nodes)")
    consts, shape_only, nodes = _fold_constants(graph)
    inputs = [i.name for i in graph.input if i.name not in consts]
    outputs = [o.name for o in graph.output]
    if len(inputs) != 1 or len(outputs) != 1:
        raise UserError(f"{path}: not a plain MLP: {len(inputs)} inputs and {len(outputs)} "
                        "outputs, expected one of each")

    def what(node: onnx.NodeProto) -> str:
        return f"{node.op_type} node {node.name or node.output[0]!r}"

    def const(node: onnx.NodeProto, k: int, role: str) -> np.ndarray:
        if len(node.input) <= k or node.input[k] not in consts:
            raise UserError(f"{path}: {what(node)}: its {role} is computed at run time, not "
                            "a constant of the model")
        return consts[node.input[k]].astype(np.float64)

    chain = _Chain(path)
    cur, visited = inputs[0], 0
    while cur != outputs[0]:
        users = [n for n in nodes if cur in n.input]
        if len(users) != 1:
            raise UserError(f"{path}: not a plain MLP: tensor {cur!r} feeds {len(users)} nodes "
                            "(a skip connection or a branch)" if users else
                            f"{path}: not a plain MLP: tensor {cur!r} feeds no node")
        node = users[0]
        visited += 1
        op = node.op_type
        last = node.output[0] == outputs[0]
        others = [i for i in node.input
                  if i and i != cur and i not in consts and i not in shape_only]
        if others:
            kind = ("adds tensor {t!r} to the layer's input (a skip connection)"
                    if op in ARITHMETIC | {"Sum", "Concat"} else
                    "takes tensor {t!r} besides the layer's input (a branch)")
            raise UserError(f"{path}: not a plain MLP: {what(node)} "
                            + kind.format(t=others[0]))
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if op in ("Gemm", "MatMul"):
            if node.input[0] != cur or attrs.get("transA", 0):
                raise UserError(f"{path}: not a plain MLP: {what(node)} multiplies from the left")
            b_mat = const(node, 1, "weight")
            if op == "Gemm":
                w = (b_mat if attrs.get("transB", 0) else b_mat.T) * float(attrs.get("alpha", 1.0))
                bias = (const(node, 2, "bias").reshape(-1) * attrs.get("beta", 1.0)
                        if len(node.input) > 2 and node.input[2] else np.zeros(w.shape[0]))
            else:
                w, bias = b_mat.T, np.zeros(b_mat.shape[-1])
            chain.add(w, bias, what(node))
        elif op == "Add" and chain.open and len(node.input) == 2 \
                and (other := node.input[1 if node.input[0] == cur else 0]) in consts:
            value = consts[other].astype(np.float64)  # a bias (MatMul + Add, or a second one)
            w, b = chain.layers[-1]
            if value.size not in (1, w.shape[0]):
                raise UserError(f"{path}: {what(node)} adds {value.size} values to a layer of "
                                f"{w.shape[0]} neurons")
            chain.layers[-1] = (w, b + value.reshape(-1))
        elif op == "BatchNormalization":
            if attrs.get("training_mode", 0):
                raise UserError(f"{path}: {what(node)} is in training mode (batch statistics): "
                                "export the model after model.eval()")
            scale, shift, mean, var = (const(node, k, role) for k, role in
                                       enumerate(("scale", "bias", "mean", "variance"), 1))
            chain.fold_bn(what(node), scale, shift, mean, var, float(attrs.get("epsilon", 1e-5)))
        elif op == "Relu":
            chain.add_relu(what(node))
        elif op == "Dropout" and len(node.input) > 2 and node.input[2] \
                and bool(np.asarray(consts.get(node.input[2], True)).any()):
            raise UserError(f"{path}: {what(node)} is in training mode (it drops values at "
                            "random): export the model after model.eval()")
        elif op in PASS_THROUGH:
            pass
        elif op in FINAL_SOFTMAX:
            if not last:
                raise UserError(f"{path}: not a plain MLP: {what(node)} is not on the output: "
                                "only a final Softmax/LogSoftmax is dropped")
        elif op in ACTIVATIONS and last:
            raise UserError(f"{path}: not a plain MLP: {what(node)} on the output: the last "
                            "layer must give the logits; export the model without it (only a "
                            "final Softmax/LogSoftmax is dropped, as it keeps the argmax)")
        elif op in ACTIVATIONS:
            raise UserError(f"{path}: not a plain MLP: {what(node)} is an activation other "
                            "than ReLU: the RTL computes ReLU only (retrain with ReLU)")
        elif op in ("ArgMax", "TopK") and last:
            raise UserError(f"{path}: not a plain MLP: {what(node)} on the output: export the "
                            "logits without it (the hardware takes the argmax itself)")
        elif op in ARITHMETIC:
            where = ("a linear layer" if chain.open else "a ReLU" if chain.layers
                     else "the input")
            raise UserError(f"{path}: not a plain MLP: {what(node)} after {where} is arithmetic "
                            "on the activations (e.g. a (x - mean) / std normalization): the "
                            "model must take x = pixel/255 and hold only layers and ReLUs")
        elif op in CONVS:
            raise UserError(f"{path}: not a plain MLP: {what(node)} is a convolution (only "
                            "Gemm/MatMul+Add and Relu)")
        else:
            raise UserError(f"{path}: not a plain MLP: {what(node)} is not a linear layer or "
                            "ReLU (only Gemm/MatMul+Add and Relu)")
        cur = node.output[0]
    if visited != len(nodes):
        raise UserError(f"{path}: not a plain MLP: {len(nodes) - visited} nodes lie off the "
                        "chain from input to output (a branch)")
    return chain.done()


# ---------------------------------------------------------------- PyTorch files


def _nn_classes() -> list[type]:
    """torch.nn's own module classes: the only classes a pickled model may hold."""
    from torch import nn

    return [c for c in vars(nn).values() if isinstance(c, type) and issubclass(c, nn.Module)]


def _torch_load(path: Path) -> Any:
    """``torch.load`` with ``weights_only=True`` (tensors and torch.nn modules only).

    Files torch cannot read give one line naming the file and the reason, without
    torch's ANSI escapes and multi-line advice; torch's warnings are not printed.
    """
    if path.stat().st_size == 0:
        raise UserError(f"{path} is empty, not a torch.save file")
    with path.open("rb") as f:
        head = f.read(4)
    if head[:1] != b"\x80" and head != b"PK\x03\x04":  # the two formats torch.save writes
        raise UserError(f"{path} is not a file written by torch.save (neither a zip archive "
                        "nor a pickle)")
    if head == b"PK\x03\x04":
        if not zipfile.is_zipfile(path):
            raise UserError(f"{path} is truncated or damaged (a zip archive, as torch.save "
                            "writes, without its end)")
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            raise UserError(f"{path} is a TorchScript archive (torch.jit.save), which is not "
                            "read: export the model to ONNX (torch.onnx.export(..., "
                            "dynamo=False)) or save model.state_dict() and pass --activation "
                            "relu")
        if any(n.endswith("/archive_format") for n in names):
            raise UserError(f"{path} is a torch.export archive (torch.export.save), which is "
                            "not read: export the model to ONNX (torch.onnx.export(..., "
                            "dynamo=False)) or save model.state_dict() and pass --activation "
                            "relu")
        if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
            raise UserError(f"{path} is a zip archive but not a torch.save file (no data.pkl)")
    import torch  # only now: the checks above need no torch

    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(_nn_classes()):
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # whatever torch.load raises: the file is bad
        raise UserError(_load_error(path, exc)) from None


def _load_error(path: Path, exc: Exception) -> str:
    """The one line for a file ``torch.load`` refused."""
    text = _ANSI.sub("", str(exc))
    if m := re.search(r"GLOBAL ([\w.]+) was not an allowed global", text):
        return (f"{path} holds a pickled {m[1]}, which is not read (only tensors and torch.nn "
                "modules are: no code from the file runs): save model.state_dict() and pass "
                "--activation relu, or export the model to ONNX")
    if "Unsupported operand" in text:
        return f"{path} is not a file written by torch.save (torch.load: {one_line(text)})"
    if isinstance(exc, EOFError):
        return f"{path} ends early: not a complete torch.save file (truncated?)"
    reason = one_line(text) or type(exc).__name__
    return f"{path} is not a readable PyTorch file (torch.load: {reason})"


def read_torch(path: Path, activation: str | None = None) -> Source:
    """The layers of a torch.save'd whole ``nn.Sequential`` or of a state_dict.

    A state_dict's ``activation_from`` is ``"not given"`` when it needs ``activation``
    and has none (:func:`read_source` refuses it after the size checks).
    """
    obj = _torch_load(path)
    from torch import nn

    if isinstance(obj, nn.Module):
        return read_module(path, obj)
    for key in ("state_dict", "model_state_dict"):  # a training checkpoint
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    layers = read_state_dict(path, obj)
    given = "--activation" if activation else "not given"
    return Source(layers, "state_dict", given if len(layers) > 1 else "none (one layer)")


def _flat_modules(module: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(name, module) in forward order, nested ``nn.Sequential``s opened."""
    from torch import nn

    if type(module) is not nn.Sequential:
        return [(prefix or "0", module)]
    out = []
    for name, child in module.named_children():
        out += (_flat_modules(child, f"{prefix}{name}.") if type(child) is nn.Sequential
                else [(f"{prefix}{name}", child)])
    return out


def _np(t: Any) -> np.ndarray:
    return t.detach().double().numpy()


def read_module(path: Path, module: Any) -> Source:
    """The layers of a whole ``nn.Sequential`` (or one module) of torch.nn's classes."""
    from torch import nn

    mods = _flat_modules(module)
    chain = _Chain(path)
    for k, (name, m) in enumerate(mods):
        kind, where, last = type(m), f"module {name} ({type(m).__name__})", k == len(mods) - 1
        if kind is nn.Linear:
            w = _np(m.weight)
            chain.add(w, _np(m.bias) if m.bias is not None else np.zeros(w.shape[0]), where)
        elif kind is nn.ReLU:
            chain.add_relu(where)
        elif kind in (nn.Dropout, nn.Identity, nn.Flatten):
            pass
        elif kind is nn.BatchNorm1d:
            if m.running_mean is None or m.running_var is None:
                raise UserError(f"{path}: {where} keeps no running statistics "
                                "(track_running_stats=False): it normalizes by each batch, "
                                "which one fixed layer cannot do")
            n = m.running_mean.numel()
            chain.fold_bn(where, _np(m.weight) if m.weight is not None else np.ones(n),
                          _np(m.bias) if m.bias is not None else np.zeros(n),
                          _np(m.running_mean), _np(m.running_var), float(m.eps))
        elif kind in (nn.Softmax, nn.LogSoftmax):
            if not last:
                raise UserError(f"{path}: not a plain MLP: {where} is not on the output: only "
                                "a final Softmax/LogSoftmax is dropped")
        elif kind.__module__ == "torch.nn.modules.activation" and last:
            raise UserError(f"{path}: not a plain MLP: {where} on the output: the last layer "
                            "must give the logits; save the model without it (only a final "
                            "Softmax/LogSoftmax is dropped, as it keeps the argmax)")
        elif kind.__module__ == "torch.nn.modules.activation":
            raise UserError(f"{path}: not a plain MLP: {where} is an activation other than "
                            "ReLU: the RTL computes ReLU only (retrain with nn.ReLU)")
        elif kind.__module__ == "torch.nn.modules.conv":
            raise UserError(f"{path}: not a plain MLP: {where} is a convolution (only Linear "
                            "and ReLU)")
        else:
            raise UserError(f"{path}: not a plain MLP: {where} is not Linear, ReLU, "
                            "BatchNorm1d, Dropout, Flatten or Identity")
    layers = chain.done()
    return Source(layers, "torch module", "the file",
                  lambda images: _module_classes(path, module, images))


def _module_classes(path: Path, module: Any, images: np.ndarray) -> np.ndarray:
    """Classes of the torch module itself (its forward, in eval mode) for uint8 ``images``."""
    import torch

    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / np.float32(255))
    module.eval()
    try:
        with torch.no_grad():
            logits = module(x)
    except Exception as exc:  # shapes the layers' sizes did not show
        raise UserError(f"{path}: the torch module does not run on the sample images "
                        f"({one_line(str(exc))})") from None
    return decide(_np(logits).reshape(len(images), -1))


# ---------------------------------------------------------------- state_dict

_KEY = re.compile(r"(?P<prefix>(?:[A-Za-z_]\w*\.)*)(?P<index>\d+)\.(?P<param>\w+)")


def read_state_dict(path: Path, sd: Any) -> Layers:
    """The linear layers of an ``nn.Sequential``'s state_dict (its activations unknown)."""
    import torch

    if not isinstance(sd, dict) or not sd or not all(
            isinstance(v, torch.Tensor) for v in sd.values()):
        raise UserError(f"{path} is not a state_dict (a dict of tensors) nor a whole "
                        "nn.Sequential")
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
            raise UserError(f"{path}: not a plain MLP: module {i} is {kind}")
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
        return ("a batch normalization, whose eps a state_dict does not hold: fold it into "
                "the Linear before it (torch.nn.utils.fusion.fuse_linear_bn_eval), or save "
                "the whole nn.Sequential (torch.save(model)) or export to ONNX, where one "
                "right after a Linear is folded")
    only = " (only Linear and ReLU)"
    if w is None:
        return f"a module with parameters {', '.join(sorted(params))}{only}"
    if w.ndim >= 3:
        return f"a convolution (weight of shape {w.shape}){only}"
    if w.ndim < 2:
        return (f"a parameterised activation or normalization (weight of shape {w.shape}, "
                f"e.g. PReLU or LayerNorm){only}")
    if set(params) - {"weight", "bias"}:
        return f"a module with parameters {', '.join(sorted(params))}{only}"
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
    """Classes of the ONNX model itself (onnx's reference runtime) for uint8 ``images``.

    A graph that cannot take the whole batch (a batch size fixed in a ``Reshape``) is run
    one image at a time; one that runs neither way is refused.
    """
    import onnx
    from onnx.reference import ReferenceEvaluator

    model = onnx.load(str(path))
    inp = next(i for i in model.graph.input
               if i.name not in {t.name for t in model.graph.initializer})
    rank = len(inp.type.tensor_type.shape.dim)
    shape = {2: (-1, N_PIXELS), 3: (-1, 28, 28), 4: (-1, 1, 28, 28)}.get(rank, (-1, N_PIXELS))
    x = (images.astype(np.float32) / np.float32(255.0)).reshape(shape)
    evaluator = ReferenceEvaluator(model)

    def run(batch: np.ndarray) -> np.ndarray:
        return np.asarray(evaluator.run(None, {inp.name: batch})[0]).reshape(len(batch), -1)

    try:
        try:
            logits = run(x)
        except Exception:  # maybe a batch of one only; tried below
            logits = np.concatenate([run(x[i:i + 1]) for i in range(len(x))])
    except Exception as exc:  # the graph is not what its layers suggested
        raise UserError(f"{path}: the ONNX model does not run on the sample images in "
                        f"onnx.reference ({one_line(str(exc)) or type(exc).__name__})"
                        ) from None
    return decide(logits)


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


def check_against_source(path: Path, layers: Layers,
                         classes: Callable[[np.ndarray], np.ndarray], what: str) -> int:
    """The imported layers give the source model's classes on the sample; returns the count.

    Only a near-tie (two logits within float32 rounding, 1e-5 relative) may differ: any
    other difference means the model computes something the import does not (never silent).
    """
    with np.load(DEFAULT_SAMPLE) as z:
        images = z["images"]
    logits = float_logits(layers, images)
    mine, theirs = decide(logits), classes(images)
    rows = np.flatnonzero(mine != theirs)
    if logits.shape[1] == 1:
        gaps = np.abs(logits[rows, 0])
    else:
        gaps = logits[rows, mine[rows]] - logits[rows, theirs[rows]]
    tol = 1e-5 * (1.0 + np.abs(logits[rows]).max(axis=1)) if len(rows) else np.zeros(0)
    differ = int((gaps > tol).sum())
    if differ:
        raise UserError(f"{path}: the imported network disagrees with {what} on "
                        f"{differ} of {len(images)} sample images; not imported")
    return len(images)


def check_against_onnx(path: Path, layers: Layers) -> int:
    """:func:`check_against_source` with the ONNX model run by onnx.reference."""
    return check_against_source(path, layers, lambda im: onnx_classes(path, im),
                                "the ONNX model")


def read_source(path: Path, activation: str | None = None) -> Source:
    """Layers of an ONNX file (``.onnx``) or a PyTorch file (anything else), sizes checked.

    ``activation`` (only ``relu``) is what a state_dict's hidden layers use: a state_dict
    does not hold it, so one of more than one layer is refused without it.
    """
    path = Path(path)
    check_activation(activation)
    if not path.is_file():
        raise UserError(f"model file {path} does not exist")
    if path.suffix.lower() == ".onnx":
        src = Source(read_onnx(path), "onnx", "the file", lambda im: onnx_classes(path, im))
    else:
        src = read_torch(path, activation)
    check_sizes(path, src.layers)
    if src.activation_from == "not given":  # after every other check: they come first
        raise UserError(f"{path}: {NO_ACTIVATION}")
    return src


def read_model(path: Path, activation: str | None = None) -> Layers:
    """The layers of :func:`read_source`."""
    return read_source(path, activation).layers


def check_activation(activation: str | None) -> None:
    """``--activation``: none, or one the RTL computes."""
    if activation is not None and activation not in ACTIVATION_CHOICES:
        raise UserError(f"--activation {activation!r}: the RTL computes ReLU only; the "
                        f"supported value is {', '.join(ACTIVATION_CHOICES)}")


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
                 mnist_dir: str | None = None, force: bool = False,
                 activation: str | None = None) -> dict[str, np.ndarray]:
    """Read ``source``, calibrate, write ``out`` atomically; return the arrays written.

    An existing ``out`` is refused unless ``force``: it may be the user's own weights.
    ``activation`` is needed for a state_dict of more than one layer (docs/models.md).
    """
    source, out = Path(source), Path(out)
    if calib not in ("train", "sample", "none"):
        raise UserError(f"--calib {calib!r}: choose train, sample or none")
    check_activation(activation)
    check_creatable(out, "output file")
    if out.is_dir():
        raise UserError(f"output file {out} exists and is a folder")
    if (out.exists() or out.is_symlink()) and not force:
        raise UserError(f"output file {out} exists; refusing to overwrite it (--force, or "
                        "FORCE=1 for make import, replaces it)")
    src = read_source(source, activation)
    layers = src.layers
    what = "the ONNX model" if src.kind == "onnx" else "the torch module"
    checked = check_against_source(source, layers, src.classes, what) if src.classes else 0
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
        "imported_from": source.name, "import_format": src.kind,
        "hidden_activation": "relu", "activation_from": src.activation_from,
        "input": "pixel/255", "calib_percentile": 99.99,
        "same_classes_as_source_on_sample": checked,
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


LOW_ACCURACY = 0.5  # below this on the sample, a 10-class import gets a note


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mnist-fpga import",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--from", dest="source", required=True, type=Path,
                    help="model.onnx, a torch.save'd nn.Sequential, or its state_dict")
    ap.add_argument("--out", required=True, type=Path,
                    help="weights .npz to write (an existing file only with --force)")
    ap.add_argument("--force", action="store_true", help="replace an existing --out file")
    ap.add_argument("--activation", default=None, metavar="relu",
                    help="the hidden layers' activation, needed for a state_dict (which holds "
                         "none): relu, the only one the RTL computes")
    ap.add_argument("--calib", default="train", choices=["train", "sample", "none"],
                    help="images for the hidden layers' calib{k} (default: MNIST train)")
    ap.add_argument("--mnist-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    args = ap.parse_args(argv)
    arrays = import_model(args.source, args.out, args.calib, args.mnist_dir, args.force,
                          args.activation)
    meta = json.loads(str(arrays["meta"]))
    layers = [(arrays[f"W{k}"], arrays[f"b{k}"]) for k in range(len(meta["layers"]) - 1)]
    correct, n = sample_agreement(layers)
    same = meta["same_classes_as_source_on_sample"]
    what = "the ONNX model" if meta["import_format"] == "onnx" else "the torch module"
    same_txt = f", same classes as {what} on {same}/{same}" if same else ""
    print(f"imported {'-'.join(map(str, meta['layers']))} from {args.source} into {args.out}: "
          f"float accuracy {correct}/{n} on {DEFAULT_SAMPLE.name} (x = pixel/255){same_txt}")
    if meta["layers"][-1] > 1 and correct < LOW_ACCURACY * n:
        given = ("that the hidden layers use ReLU as --activation says, and "
                 if meta["activation_from"] == "--activation" else "")
        print(f"note: float accuracy {correct}/{n} is far below a trained MNIST model's: "
              f"check {given}that the model takes x = pixel/255 (no mean/std normalization), "
              "unless it is untrained")
    return 0


if __name__ == "__main__":
    cli_main(main)
