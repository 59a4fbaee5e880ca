"""Train the reference networks, or any MLP, on MNIST and save their float weights (docs/models.md).

    mnist-fpga train --net {zero,l10,mlp256,all} [--epochs N] [--seed 0] [--out models/]
    mnist-fpga train --net mlp128x64 --layers 784,128,64,10 [--epochs N] [--out models/]

MNIST comes from gen.data.mnist (``MNIST_DIR``, else the download cache). Input x = pixel / 255
(no mean/std normalization: the hardware sees raw pixels). Runs are deterministic for a
given seed, thread count and machine.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnist_fpga.files import atomic_writer
from mnist_fpga.gen.core.errors import UserError, check_creatable, cli_main
from mnist_fpga.gen.data.mnist import load_mnist
from mnist_fpga.gen.hdl.generate import check_net_name
from mnist_fpga.train.evaluate import accuracy, forward

# torch takes a second to load: the functions import it, so a bad command line is
# refused at once (before torch loads)
if TYPE_CHECKING:
    import torch
    from torch import nn

N_IN = 28 * 28
CALIB_PERCENTILE = 99.99


@dataclass(frozen=True)
class Recipe:
    """Network shape and training recipe of one reference net."""

    hidden: tuple[int, ...]
    n_out: int
    epochs: int
    batch_size: int = 128
    max_lr: float = 2e-3
    weight_decay: float = 1e-2
    dropout: float = 0.0
    label_smoothing: float = 0.0
    shift: int = 0  # random translation of training images by up to +-shift pixels


RECIPES: dict[str, Recipe] = {
    # one neuron: "is this digit a 0" (BCE with logits, target label == 0)
    "zero": Recipe(hidden=(), n_out=1, epochs=5, weight_decay=1e-2),
    # linear classifier 784 -> 10
    "l10": Recipe(hidden=(), n_out=10, epochs=10, weight_decay=1e-2),
    # 784 -> 256 ReLU (dropout while training) -> 10
    "mlp256": Recipe(
        hidden=(256,), n_out=10, epochs=20, max_lr=3e-3, weight_decay=5e-2, dropout=0.2, shift=1
    ),
}


CUSTOM_EPOCHS = 10  # default for --layers networks


def parse_layers(text: str) -> list[int]:
    """``"784,128,64,10"`` -> widths; the input must be 784 and the output 10 classes or 1."""
    example = "e.g. 784,128,64,10"
    try:
        widths = [int(v) for v in text.split(",")]
    except ValueError:
        widths = []
    if len(widths) < 2 or any(v < 1 for v in widths):
        raise UserError(f"layers {text!r}: give at least two comma-separated widths >= 1, "
                        f"{example}")
    if widths[0] != N_IN:
        raise UserError(f"layers {text!r} must start at {N_IN} (the 28x28 input pixels), "
                        f"{example}")
    if widths[-1] not in (1, 10):
        raise UserError(f"layers {text!r} must end at 10 (the classes) or 1 "
                        f"(\"is it a 0\"), {example}")
    return widths


def custom_recipe(widths: list[int]) -> Recipe:
    """Recipe of a network given by its widths: mlp256's recipe (the linear nets' if no hidden)."""
    hidden = tuple(widths[1:-1])
    if not hidden:
        return Recipe(hidden=(), n_out=widths[-1], epochs=CUSTOM_EPOCHS)
    return replace(RECIPES["mlp256"], hidden=hidden, n_out=widths[-1], epochs=CUSTOM_EPOCHS)


def widths_of(recipe: Recipe) -> list[int]:
    """Layer widths, input first."""
    return [N_IN, *recipe.hidden, recipe.n_out]


def recipe_for(net: str, layers: str | None) -> Recipe:
    """The reference recipe of ``net``, or the recipe of ``layers`` (a new net's name)."""
    if layers is None:
        if net not in RECIPES:
            raise UserError(f"unknown network {net!r}: choose one of {', '.join(RECIPES)} "
                            "or give its layers (--layers / LAYERS=784,...,10)")
        return RECIPES[net]
    widths = parse_layers(layers)
    if net in RECIPES and widths != widths_of(RECIPES[net]):
        ref = ",".join(map(str, widths_of(RECIPES[net])))
        raise UserError(f"{net} is a reference network ({ref}); give another name "
                        f"(--net / NET=) to the layers {layers}")
    if net not in RECIPES:
        check_net_name(net)  # the name becomes the file stem and the VHDL entities' prefix
    return RECIPES[net] if net in RECIPES else custom_recipe(widths)


def build(recipe: Recipe) -> nn.Sequential:
    """Linear layers with ReLU (and dropout) between them; no activation on the output."""
    from torch import nn

    layers: list[nn.Module] = []
    n_in = N_IN
    for width in recipe.hidden:
        layers += [nn.Linear(n_in, width), nn.ReLU()]
        if recipe.dropout > 0:
            layers.append(nn.Dropout(recipe.dropout))
        n_in = width
    layers.append(nn.Linear(n_in, recipe.n_out))
    return nn.Sequential(*layers)


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 images (N,28,28) -> float32 (N,784) in [0, 1]."""
    import torch

    return torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)


def _shift(x: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each (N,784) image by a random (dy, dx) in [-shift, shift], zero fill."""
    import torch
    from torch import nn

    n = len(x)
    padded = nn.functional.pad(x.view(n, 28, 28), (shift, shift, shift, shift))
    dy, dx = torch.randint(0, 2 * shift + 1, (2, n), generator=gen)
    ar = torch.arange(28)
    rows = (dy[:, None] + ar)[:, :, None]
    cols = (dx[:, None] + ar)[:, None, :]
    return padded[torch.arange(n)[:, None, None], rows, cols].reshape(n, N_IN)


def _linears(model: nn.Sequential) -> list[nn.Linear]:
    from torch import nn

    return [m for m in model if isinstance(m, nn.Linear)]


def _export(model: nn.Sequential) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return [(W (out,in), b (out,)), ...] as float32 numpy copies."""
    return [
        (
            lin.weight.detach().numpy().astype(np.float32, copy=True),
            lin.bias.detach().numpy().astype(np.float32, copy=True),
        )
        for lin in _linears(model)
    ]


def _calibration(layers: list[tuple[np.ndarray, np.ndarray]], images: np.ndarray) -> list[float]:
    """99.99th percentile of each hidden layer's post-ReLU activations over ``images``."""
    x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255.0)
    out = []
    for w, b in layers[:-1]:
        x = np.maximum(x @ w.T + b, np.float32(0.0))
        out.append(float(np.percentile(x, CALIB_PERCENTILE)))
    return out


def _say(msg: str) -> None:
    print(msg, flush=True)


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    import torch

    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i : i + 10000]) for i in range(0, len(x), 10000)])


def train_net(
    net: str,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    *,
    epochs: int | None = None,
    seed: int = 0,
    log: Callable[[str], None] = _say,
    recipe: Recipe | None = None,
) -> dict[str, np.ndarray]:
    """Train ``net`` and return the arrays to save (W{k}, b{k}, calib{k}, meta).

    ``recipe`` defaults to the reference recipe of ``net``.
    """
    import torch
    from torch import nn

    recipe = RECIPES[net] if recipe is None else recipe
    epochs = recipe.epochs if epochs is None else epochs
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    model = build(recipe)
    xtr, xte = _to_tensor(train_images), _to_tensor(test_images)
    ytr = torch.from_numpy(train_labels.astype(np.int64))
    binary = recipe.n_out == 1
    target = (ytr == 0).float() if binary else ytr
    loss_fn: nn.Module = (
        nn.BCEWithLogitsLoss()
        if binary
        else nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    )
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.max_lr, weight_decay=recipe.weight_decay)
    steps = math.ceil(len(xtr) / recipe.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=recipe.max_lr, epochs=epochs, steps_per_epoch=steps
    )
    gen = torch.Generator().manual_seed(seed)
    t_start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total_loss, correct = 0.0, 0
        for i in range(0, len(xtr), recipe.batch_size):
            idx = perm[i : i + recipe.batch_size]
            xb = _shift(xtr[idx], recipe.shift, gen) if recipe.shift else xtr[idx]
            out = model(xb)
            if binary:
                loss = loss_fn(out[:, 0], target[idx])
                correct += int(((out[:, 0] > 0) == (target[idx] > 0.5)).sum())
            else:
                loss = loss_fn(out, target[idx])
                correct += int((out.argmax(1) == target[idx]).sum())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total_loss += float(loss.detach()) * len(idx)
        test_acc = accuracy(_logits(model, xte).numpy(), test_labels)
        log(
            f"{net} epoch {epoch:2d}/{epochs} loss {total_loss / len(xtr):.4f} "
            f"train_acc {100 * correct / len(xtr):6.2f}% test_acc {100 * test_acc:6.2f}% "
            f"{time.perf_counter() - t0:5.1f}s"
        )
    layers = _export(model)
    # the canonical figures: the numpy float model on the exported float32 arrays
    test_acc = accuracy(forward(layers, test_images), test_labels)
    train_acc = accuracy(forward(layers, train_images), train_labels)
    calib = _calibration(layers, train_images)
    seconds = time.perf_counter() - t_start
    meta = {
        "net": net,
        "layers": widths_of(recipe),
        "seed": seed,
        "epochs": epochs,
        "test_accuracy": test_acc,
        "train_accuracy": train_acc,
        "n_train": len(train_images),
        "n_test": len(test_images),
        "input": "pixel/255",
        "calib_percentile": CALIB_PERCENTILE,
        "recipe": {k: v for k, v in asdict(recipe).items() if k != "epochs"},
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "train_seconds": round(seconds, 1),
    }
    log(
        f"{net}: float test accuracy {100 * test_acc:.2f}% "
        f"(train {100 * train_acc:.2f}%), {seconds:.1f}s"
    )
    arrays: dict[str, np.ndarray] = {}
    for k, (w, b) in enumerate(layers):
        arrays[f"W{k}"] = w
        arrays[f"b{k}"] = b
    for k, value in enumerate(calib):
        arrays[f"calib{k}"] = np.asarray(value, dtype=np.float32)
    arrays["meta"] = np.asarray(np.str_(json.dumps(meta, sort_keys=True)))
    return arrays


def save_model(arrays: dict[str, np.ndarray], path: Path) -> None:
    """Write the arrays as an uncompressed npz via a temp file and an atomic rename."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(path) as f:
            np.savez(f, **arrays)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(
        prog="mnist-fpga train", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--net", required=True,
                        help=f"{', '.join(RECIPES)}, all, or a new name with --layers")
    parser.add_argument("--layers", default=None,
                        help="widths of any MLP, e.g. 784,128,64,10 (mlp256's recipe)")
    parser.add_argument("--epochs", type=int, default=None,
                        help=f"default: per net (5/10/20; {CUSTOM_EPOCHS} with --layers)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder")
    parser.add_argument("--limit", type=int, default=None, help="use only the first N train images")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--mnist-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    args = parser.parse_args(argv)
    if args.net == "all" and args.layers is not None:
        raise UserError("--net all trains the reference networks; give a name with --layers")
    recipes = dict(RECIPES) if args.net == "all" else {args.net: recipe_for(args.net, args.layers)}
    if args.epochs is not None and args.epochs < 1:
        raise UserError(f"--epochs must be at least 1, got {args.epochs}")
    if args.limit is not None and args.limit < 1:
        raise UserError(f"--limit must be at least 1, got {args.limit}")
    if args.threads < 1:
        raise UserError(f"--threads must be at least 1, got {args.threads}")
    check_creatable(args.out, "output folder")  # now, not after training
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"output path {args.out} exists and is not a folder")
    import torch

    torch.set_num_threads(args.threads)
    train_images, train_labels = load_mnist("train", args.mnist_dir)
    test_images, test_labels = load_mnist("test", args.mnist_dir)
    if args.limit is not None:
        train_images, train_labels = train_images[: args.limit], train_labels[: args.limit]
    for net, recipe in recipes.items():
        arrays = train_net(
            net,
            train_images,
            train_labels,
            test_images,
            test_labels,
            epochs=args.epochs,
            seed=args.seed,
            recipe=recipe,
        )
        path = args.out / f"{net}.npz"
        save_model(arrays, path)
        print(f"wrote {path}", flush=True)
    return 0


if __name__ == "__main__":
    cli_main(main)
