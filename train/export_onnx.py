"""Write a float weights ``.npz`` as a PyTorch ``nn.Sequential``: ONNX and/or a state_dict.

    mnist-fpga export-onnx --weights models/mlp256.npz --onnx build/mlp256.onnx
                                [--state-dict build/mlp256.pt]

The module is ``Linear, ReLU, ..., Linear`` on ``x = pixel / 255`` (784 inputs), the
network of docs/models.md; ``gen.frontends.import_model`` reads both files back (the state_dict with
``--activation relu``: it holds no activations). ONNX comes from
``torch.onnx.export(..., dynamo=False)`` (the dynamo exporter needs ``onnxscript``).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mnist_fpga.files import atomic_writer
from mnist_fpga.gen.core.errors import UserError, check_creatable, cli_main
from mnist_fpga.gen.core.quant import load_float_weights


def sequential(weights: dict[str, np.ndarray]) -> nn.Sequential:
    """The float network as ``nn.Sequential(Linear, ReLU, ..., Linear)`` in eval mode."""
    n_layers = sum(1 for k in weights if k.startswith("W"))
    mods: list[nn.Module] = []
    for k in range(n_layers):
        w = torch.from_numpy(weights[f"W{k}"].astype(np.float32))
        lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(torch.from_numpy(weights[f"b{k}"].astype(np.float32)))
        mods += [lin, nn.ReLU()] if k < n_layers - 1 else [lin]
    return nn.Sequential(*mods).eval()


def export(model: nn.Sequential, onnx_path: Path | None, sd_path: Path | None) -> None:
    """Write the ONNX file and/or the state_dict, each via a temporary file."""
    if onnx_path is not None:
        with atomic_writer(onnx_path) as f, warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # the legacy exporter's notice
            torch.onnx.export(model, (torch.zeros(1, 784),), f, dynamo=False,
                              input_names=["pixels"], output_names=["logits"],
                              dynamic_axes={"pixels": {0: "n"}, "logits": {0: "n"}})
    if sd_path is not None:
        with atomic_writer(sd_path) as f:
            torch.save(model.state_dict(), f)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="mnist-fpga export-onnx",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True, type=Path, help="float weights .npz")
    ap.add_argument("--onnx", type=Path, help="ONNX file to write")
    ap.add_argument("--state-dict", type=Path, help="torch.save'd state_dict to write")
    args = ap.parse_args(argv)
    if args.onnx is None and args.state_dict is None:
        raise UserError("nothing to write: give --onnx and/or --state-dict")
    for path in (args.onnx, args.state_dict):
        if path is not None:
            check_creatable(path, "output file")
            if path.is_dir():
                raise UserError(f"output file {path} exists and is a folder")
    model = sequential(load_float_weights(args.weights))
    for path in (args.onnx, args.state_dict):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
    export(model, args.onnx, args.state_dict)
    print(f"wrote {', '.join(str(p) for p in (args.onnx, args.state_dict) if p)}")
    return 0


if __name__ == "__main__":
    cli_main(main)
