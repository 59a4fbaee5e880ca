"""ONNX front end: a chain of Gemm (or MatMul + Add), Relu and foldable BatchNormalization
nodes, as ``torch.onnx.export`` writes it, into float layers (docs/models.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.model import N_PIXELS, decide
from mnist_fpga.gen.frontends.common import (
    Chain,
    Layers,
    one_line,
)

PASS_THROUGH = {"Flatten", "Reshape", "Identity", "Dropout"}


FINAL_SOFTMAX = {"Softmax", "LogSoftmax"}


ACTIVATIONS = {"Sigmoid", "Tanh", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu",
               "Softplus", "Softsign", "HardSigmoid", "HardSwish", "Mish", "Clip",
               "ThresholdedRelu", "Swish", "Abs", "Sign"}


ARITHMETIC = {"Add", "Sub", "Mul", "Div", "Pow", "Sqrt"}


CONVS = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv"}


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

    chain = Chain(path)
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
