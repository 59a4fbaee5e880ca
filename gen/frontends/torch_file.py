"""PyTorch front end: a whole ``nn.Sequential`` (``torch.save(model)``) or a state_dict,
into float layers; torch's load errors become one line (docs/models.md).
"""

from __future__ import annotations

import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.model import decide
from mnist_fpga.gen.frontends.common import (
    ANSI_ESCAPE,
    Chain,
    Layers,
    Source,
    one_line,
)


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
    text = ANSI_ESCAPE.sub("", str(exc))
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
    chain = Chain(path)
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
