"""Quantization-aware training (QAT) that follows docs/numerics.md, saved as a float ``.npz``.

    mnist-fpga qat --net mlp256 --format int4 [--epochs N] [--seed 0]
                        [--init models/mlp256.npz | --scratch] --out models/mlp256_qat_int4.npz
    mnist-fpga qat --net mlp128x64 [--layers 784,128,64,10] --format int4 --out ...

Any MLP: ``--layers`` (or the shape of the ``--init`` file, default ``models/<net>.npz``).

Any format ``gen.core.formats.parse_format`` accepts (``int4``, ``w2a2``, ``q1_7``,
``int4-pn-shift``).
The forward pass during training is the integer model written in real units, with
straight-through estimators (STE) for every rounding:

- input ``x = (pixel >> (8-A)) * 2**(8-A) / 255`` (for A > 8: ``pixel / 255``), the exact
  value the hardware's input integers stand for (numerics.md, 1);
- weights symmetric, ``scale = qmax / max|W|`` per layer (per neuron with ``-pn``), round
  half away from zero (numerics.md, 2). The latent weights are first clipped to a learned
  ``±clip``, so ``max|W|`` (hence the step) is learned. Qm.n: fixed scale ``2**n``;
- biases rounded (half away) to accumulator units ``s_acc = s_in / scale``;
- hidden layers: ReLU, then unsigned A bits (numerics.md, 5) with the ``mult / 2**shift``
  (or shift only) that ``gen.core.quant`` derives from ``calib / (2**A - 1)``, rounded half up
  and saturated; ``calib`` is learned (PACT clip with an LSQ gradient). Qm.n: ``2**-n``.

The file saved holds the fake-quantized weights and biases (float32) and the learned
``calib{k}``, so ``gen.core.quant.quantize_file(out, fmt)`` gives back the same integers, and
``gen.core.model.accuracy`` (reported at the end) matches the accuracy QAT saw.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mnist_fpga.gen.core.errors import UserError, check_creatable, cli_main
from mnist_fpga.gen.core.formats import Format, parse_format
from mnist_fpga.gen.core.model import PIXEL_BITS, classify, forward, is_correct, targets
from mnist_fpga.gen.core.model import decide as model_decide
from mnist_fpga.gen.core.quant import (
    load_float_weights,
    quantize_file,
    requant_params,
    shift_params,
)
from mnist_fpga.gen.data.mnist import load_mnist
from mnist_fpga.gen.hdl.generate import check_net_name
from mnist_fpga.paths import PKG_ROOT as ROOT
from mnist_fpga.train.train import N_IN, RECIPES, _shift, recipe_for, save_model, widths_of


@dataclass(frozen=True)
class QatRecipe:
    """Training recipe of a QAT run (shared by all formats; ``epochs`` per run)."""

    epochs: int = 30
    batch_size: int = 128
    lr: float = 2e-3
    clip_lr: float = 1e-3  # learned weight clips and activation calibs
    weight_decay: float = 1e-4
    shift: int = 1  # random translation of training images by up to +-shift pixels
    dropout: float = 0.0
    label_smoothing: float = 0.0
    distill: float = 0.0  # weight of the KL loss to the float teacher (0: none)
    temperature: float = 2.0


# ---------------------------------------------------------------- fake quantization


def ste(value: torch.Tensor, rounded: torch.Tensor) -> torch.Tensor:
    """``rounded`` forward, identity gradient (straight-through estimator)."""
    return value + (rounded - value).detach()


def round_half_away(v: torch.Tensor) -> torch.Tensor:
    """Round to nearest, ties away from zero, with an STE gradient (numerics.md, 2)."""
    return ste(v, torch.sign(v) * torch.floor(v.abs() + 0.5))


def round_half_up(v: torch.Tensor) -> torch.Tensor:
    """Round to nearest, ties up (the requantizer's ``+ 2**(shift-1) >> shift``), STE."""
    return ste(v, torch.floor(v + 0.5))


def input_activations(pixels: np.ndarray, a_bits: int) -> torch.Tensor:
    """uint8 pixels -> (N, 784) float32: the real value of the hardware's input integers."""
    p = pixels.reshape(len(pixels), -1).astype(np.int64)
    if a_bits <= PIXEL_BITS:
        x = (p >> (PIXEL_BITS - a_bits)).astype(np.float64) * 2.0 ** (PIXEL_BITS - a_bits)
    else:
        x = p.astype(np.float64)
    return torch.from_numpy((x / 255.0).astype(np.float32))


def fake_quant_weight(
    w: torch.Tensor, clip: torch.Tensor | None, fmt: Format, per_neuron: bool
) -> tuple[torch.Tensor, np.ndarray]:
    """Symmetric weight quantization (numerics.md, 2 and 2a) with STE; dequantized weights.

    Qm.n: fixed scale ``2**n``, clamped to ``±qmax``. Otherwise the latent weights are first
    clipped to the learned ``±clip`` (one per layer, or one per neuron with ``-pn``), then
    ``scale = qmax / max|W|`` over the layer (or the neuron). Gradients: STE inside the clip,
    LSQ/PACT-style to ``clip``. Returns the weights and the scale per neuron (float64).
    """
    qmax = (1 << (fmt.w_bits - 1)) - 1
    n_out = w.shape[0]
    if fmt.frac is not None:
        scale = 2.0**fmt.frac
        q = round_half_away(torch.clamp(w * scale, -qmax, qmax))
        return q / scale, np.full(n_out, scale)
    assert clip is not None
    wc = torch.minimum(torch.maximum(w, -clip[:, None]), clip[:, None])
    peak = wc.abs().amax(dim=1) if per_neuron else wc.abs().max().expand(n_out)
    peak_f = peak.detach().double().numpy()
    safe = torch.where(peak > 0, peak, torch.ones_like(peak))
    scale = torch.where(peak > 0, qmax / safe, torch.ones_like(peak))[:, None]
    scale_f = np.where(peak_f > 0, qmax / np.where(peak_f > 0, peak_f, 1.0), 1.0)
    return round_half_away(wc * scale) / scale, scale_f


def fake_quant_act(acc: torch.Tensor, layer: dict, a_bits: int) -> torch.Tensor:
    """ReLU, requantize, saturate at ``2**A - 1`` (numerics.md, 5); back to real units.

    Forward: the accumulators are snapped to integer units (``acc / s_acc``, which removes
    float noise), multiplied by the exact ``mult / 2**shift`` in float64 and rounded half
    up, so ties (frequent with ``-shift``) go the integer model's way. Gradient: that of
    ``clamp(relu(acc) / step)`` with an STE for the rounding (PACT/LSQ for ``calib``).
    The output unit is ``out_step`` (with ``-pn`` the nominal step, else ``step``).
    """
    top = float((1 << a_bits) - 1)
    v = torch.clamp(torch.relu(acc) / layer["step"], max=top)
    with torch.no_grad():
        units = torch.round(acc.double() / layer["s_acc_t"])  # exact integers (no tie)
        exact = torch.clamp(torch.relu(units) * layer["ratio"], max=top)
        y = torch.floor(exact + 0.5).to(v.dtype)
    return ste(v, y) * layer["out_step"]


class QatNet(nn.Module):
    """Fully connected net whose forward pass is the integer model in real units (with STE)."""

    def __init__(self, widths: list[int], fmt: Format, dropout: float = 0.0) -> None:
        super().__init__()
        self.widths, self.fmt, self.dropout = list(widths), fmt, dropout
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        n = len(self.linears)
        # learned weight clip: one per layer, one per neuron for -pn hidden layers
        self.wclip = nn.ParameterList(
            nn.Parameter(torch.ones(widths[k + 1] if self.per_neuron(k) else 1))
            for k in range(n)
        )
        self.calib = nn.Parameter(torch.ones(max(n - 1, 0)))  # unused for Qm.n

    def per_neuron(self, k: int) -> bool:
        """Per-neuron weight scales apply to hidden layers only (numerics.md, 2)."""
        return self.fmt.per_neuron and k < len(self.widths) - 2

    @property
    def s_in0(self) -> float:
        """Real value of one unit of layer 0's input (numerics.md, 1)."""
        return 2.0 ** (PIXEL_BITS - self.fmt.a_bits) / 255.0

    def quantized_layers(self) -> list[dict]:
        """Per layer, as gen.core.quant.quantize_network: dequantized w, b and the scales.

        Keys: ``w``, ``b`` (tensors), ``s_in`` (float), ``s_acc`` (per neuron, float64);
        hidden layers also ``step`` (per neuron or one, tensor: divides the accumulators),
        ``ratio`` (float64 tensor: the exact ``mult / 2**shift``), ``out_step`` (tensor: the
        real value of one output unit) and ``s_out`` (float).
        """
        fmt = self.fmt
        out = []
        s_in = self.s_in0
        top = (1 << fmt.a_bits) - 1
        params = shift_params if fmt.shift_only else requant_params
        for k, lin in enumerate(self.linears):
            pn = self.per_neuron(k)
            wq, scale = fake_quant_weight(lin.weight, self.wclip[k], fmt, pn)
            s_acc = s_in / scale
            s_acc_t = torch.from_numpy(s_acc.astype(np.float32))
            bq = round_half_away(lin.bias / s_acc_t) * s_acc_t
            layer = {"w": wq, "b": bq, "s_in": s_in, "s_acc": s_acc,
                     "s_acc_t": torch.from_numpy(s_acc)}
            if k < len(self.linears) - 1:
                if fmt.frac is not None:
                    nominal = 2.0**-fmt.frac
                    nominal_t = torch.tensor(nominal)
                else:
                    nominal = float(self.calib[k].detach().float()) / top  # calib as saved
                    nominal_t = self.calib[k] / top
                ratios = s_acc if pn else s_acc[:1]
                mults, shifts = (np.array(v, dtype=np.float64) for v in zip(
                    *(params(float(r) / nominal) for r in ratios), strict=True))
                real = ratios * 2.0**shifts / mults  # the step each requantizer applies
                layer["ratio"] = torch.from_numpy(mults / 2.0**shifts)  # exact in float64
                # forward: the real step; gradient: d step / d calib = 1 / top
                layer["step"] = nominal_t * torch.from_numpy((real / nominal).astype(np.float32))
                if pn:  # each neuron rescaled to the nominal step (numerics.md, 5)
                    layer["out_step"], s_in = nominal_t, nominal
                else:
                    layer["out_step"], s_in = layer["step"], float(real[0])
                layer["s_out"] = s_in
            out.append(layer)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (real units) of input activations ``x`` from :func:`input_activations`."""
        layers = self.quantized_layers()
        for k, layer in enumerate(layers):
            x = x @ layer["w"].T + layer["b"]
            if k < len(layers) - 1:
                x = fake_quant_act(x, layer, self.fmt.a_bits)
                if self.dropout > 0:
                    x = nn.functional.dropout(x, self.dropout, self.training)
        return x

    def export(self, meta: dict) -> dict[str, np.ndarray]:
        """Arrays for the npz (docs/models.md layout): fake-quantized W, b, learned calib.

        For Qm.n, ``calib{k}`` is the fixed range ``2**-n * (2**A - 1)`` (gen.core.quant
        does not use it).
        """
        arrays: dict[str, np.ndarray] = {}
        top = (1 << self.fmt.a_bits) - 1
        with torch.no_grad():
            for k, layer in enumerate(self.quantized_layers()):
                arrays[f"W{k}"] = layer["w"].numpy().astype(np.float32)
                arrays[f"b{k}"] = layer["b"].numpy().astype(np.float32)
            for k in range(len(self.linears) - 1):
                calib = float(self.calib[k]) if self.fmt.frac is None else 2.0**-self.fmt.frac * top
                arrays[f"calib{k}"] = np.asarray(calib, dtype=np.float32)
        arrays["meta"] = np.asarray(np.str_(json.dumps(meta, sort_keys=True)))
        return arrays


# ---------------------------------------------------------------- initialisation


def _best_clip(values: np.ndarray, levels: int, signed: bool) -> float:
    """Clip value minimising the mean squared quantization error of ``values``.

    ``levels`` is qmax (signed: ``round(v/step)`` in ``-qmax..qmax``) or ``2**A-1``.
    """
    v = np.abs(values) if signed else np.maximum(values, 0.0)
    v = v.astype(np.float64).ravel()
    peak = float(v.max()) if v.size else 0.0
    if peak <= 0:
        return 1.0
    best, best_err = peak, math.inf
    for frac in np.linspace(0.05, 1.0, 96):
        clip = peak * frac
        step = clip / levels
        q = np.minimum(np.floor(v / step + 0.5), levels) * step
        err = float(np.mean((q - v) ** 2))
        if err < best_err:
            best, best_err = clip, err
    return best


def init_from_float(model: QatNet, weights: dict[str, np.ndarray], images: np.ndarray) -> None:
    """Copy the float weights, then set clips and calibs (:func:`init_clips`)."""
    with torch.no_grad():
        for k, lin in enumerate(model.linears):
            lin.weight.copy_(torch.from_numpy(weights[f"W{k}"].astype(np.float32)))
            lin.bias.copy_(torch.from_numpy(weights[f"b{k}"].astype(np.float32)))
    init_clips(model, images)


def init_clips(model: QatNet, images: np.ndarray) -> None:
    """Weight clips and activation calibs minimising the quantization MSE of the float net."""
    fmt = model.fmt
    qmax, top = (1 << (fmt.w_bits - 1)) - 1, (1 << fmt.a_bits) - 1
    x = input_activations(images, fmt.a_bits).double().numpy()
    with torch.no_grad():
        for k, lin in enumerate(model.linears):
            w, b = lin.weight.double().numpy(), lin.bias.double().numpy()
            rows = w if model.per_neuron(k) else w.reshape(1, -1)
            clips = [_best_clip(r, qmax, signed=True) for r in rows]
            model.wclip[k].copy_(torch.tensor(clips, dtype=torch.float32))
            if k < len(model.linears) - 1:
                x = np.maximum(x @ w.T + b, 0.0)
                model.calib[k] = _best_clip(x, top, signed=False)


# ---------------------------------------------------------------- training


def _say(msg: str) -> None:
    print(msg, flush=True)


def predict(model: QatNet, x: torch.Tensor) -> np.ndarray:
    """Class per row in eval mode, decided on the integer logits (numerics.md, 6).

    The logits are rounded to accumulator units first, so ties go to the lowest index as
    in the integer model (float noise would break them at random).
    """
    model.eval()
    with torch.no_grad():
        unit = model.quantized_layers()[-1]["s_acc"]
        logits = torch.cat([model(x[i : i + 10000]) for i in range(0, len(x), 10000)])
    return decide(logits.double().numpy(), unit)


def decide(logits: np.ndarray, unit: float) -> np.ndarray:
    """Round real logits to integer accumulators (``unit`` = s_acc), then decide.

    Argmax with the lowest index winning a tie; one output: class 1 when acc > 0.
    """
    return model_decide(np.rint(np.asarray(logits, dtype=np.float64) / unit))


def _correct(pred: np.ndarray, labels: np.ndarray, n_out: int) -> np.ndarray:
    return pred == targets(labels, n_out)


def train_qat(
    net: str,
    fmt: Format,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    *,
    init: dict[str, np.ndarray] | None,
    recipe: QatRecipe = QatRecipe(),
    seed: int = 0,
    log: Callable[[str], None] = _say,
    widths: list[int] | None = None,
) -> tuple[QatNet, dict]:
    """Run QAT; return the trained net and its meta (fake-quant accuracies, timing, recipe).

    ``widths`` (input first) default to the reference network ``net``'s.
    """
    widths = widths_of(RECIPES[net]) if widths is None else list(widths)
    n_out = widths[-1]
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    model = QatNet(widths, fmt, dropout=recipe.dropout)
    calib_images = train_images[:10000]
    if init is not None:
        init_from_float(model, init, calib_images)
    else:
        init_clips(model, calib_images)
    xtr = input_activations(train_images, fmt.a_bits)
    xte = input_activations(test_images, fmt.a_bits)
    ytr = torch.from_numpy(train_labels.astype(np.int64))
    binary = n_out == 1
    target = (ytr == 0).float() if binary else ytr
    teacher = None
    if recipe.distill > 0 and init is not None and not binary:
        teacher = _teacher_logits(init, train_images) / recipe.temperature
    start_acc = float(np.mean(_correct(predict(model, xte), test_labels, n_out)))
    log(f"{net} {fmt.name}: fake-quant test accuracy before QAT {100 * start_acc:.2f}%")
    clips = [*model.wclip, model.calib]
    params = [p for n, p in model.named_parameters() if not n.startswith(("wclip", "calib"))]
    opt = torch.optim.AdamW(
        [
            {"params": params, "weight_decay": recipe.weight_decay, "lr": recipe.lr},
            {"params": clips, "weight_decay": 0.0, "lr": recipe.clip_lr},
        ]
    )
    steps = math.ceil(len(xtr) / recipe.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[recipe.lr, recipe.clip_lr], epochs=recipe.epochs, steps_per_epoch=steps,
        pct_start=0.1,
    )
    gen = torch.Generator().manual_seed(seed)
    history = []
    t_start = time.perf_counter()
    for epoch in range(1, recipe.epochs + 1):
        t0 = time.perf_counter()
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total = 0.0
        for i in range(0, len(xtr), recipe.batch_size):
            idx = perm[i : i + recipe.batch_size]
            xb = _shift(xtr[idx], recipe.shift, gen) if recipe.shift else xtr[idx]
            out = model(xb)
            if binary:
                loss = nn.functional.binary_cross_entropy_with_logits(out[:, 0], target[idx])
            else:
                loss = nn.functional.cross_entropy(
                    out, target[idx], label_smoothing=recipe.label_smoothing
                )
                if teacher is not None:
                    # the teacher sees the unshifted image: a soft target only
                    soft = torch.softmax(teacher[idx], dim=1)
                    logp = torch.log_softmax(out / recipe.temperature, dim=1)
                    kl = nn.functional.kl_div(logp, soft, reduction="batchmean")
                    loss = (1 - recipe.distill) * loss + recipe.distill * kl * recipe.temperature**2
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():  # clips stay positive
                for clip in model.wclip:
                    clip.clamp_(min=1e-4)
                model.calib.clamp_(min=1e-4)
            total += float(loss.detach()) * len(idx)
        acc = float(np.mean(_correct(predict(model, xte), test_labels, n_out)))
        seconds = time.perf_counter() - t0
        history.append(round(acc, 4))
        log(
            f"{net} {fmt.name} epoch {epoch:2d}/{recipe.epochs} loss {total / len(xtr):.4f} "
            f"fake-quant test_acc {100 * acc:6.2f}% {seconds:5.1f}s"
        )
    meta = {
        "net": net,
        "layers": widths,
        "format": fmt.name,
        "seed": seed,
        "epochs": recipe.epochs,
        "init": "float" if init is not None else "scratch",
        "qat_recipe": {k: v for k, v in asdict(recipe).items() if k != "epochs"},
        "fake_quant_test_accuracy": history[-1] if history else start_acc,
        "fake_quant_history": history,
        "n_train": len(train_images),
        "n_test": len(test_images),
        "input": "pixel/255",
        "calib": "learned activation clip (PACT/LSQ), not a percentile",
        "weights": "fake-quantized (dequantized) values; gen.core.quant recovers the integers",
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "train_seconds": round(time.perf_counter() - t_start, 1),
    }
    return model, meta


def _teacher_logits(weights: dict[str, np.ndarray], images: np.ndarray) -> torch.Tensor:
    """Float teacher's logits (x = pixel/255) for every training image."""
    x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
    n_layers = sum(1 for k in weights if k.startswith("W"))
    for k in range(n_layers):
        w = torch.from_numpy(weights[f"W{k}"].astype(np.float32))
        x = x @ w.T + torch.from_numpy(weights[f"b{k}"].astype(np.float32))
        if k < n_layers - 1:
            x = torch.relu(x)
    return x


def integer_check(
    path: Path, fmt: Format, model: QatNet, images: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    """Quantize the saved file with gen.core.quant; integer accuracy and agreement with QAT."""
    qnet = quantize_file(path, fmt)
    classes = classify(qnet, forward(qnet, images)[-1])
    qat = predict(model, input_activations(images, fmt.a_bits))
    return {
        "integer_accuracy": float(np.mean(is_correct(qnet, classes, labels))),
        "fake_quant_accuracy": float(np.mean(_correct(qat, labels, qnet.n_classes))),
        "agreement": float(np.mean(classes == qat)),
    }


def qat_widths(net: str, layers: str | None, scratch: bool) -> list[int] | None:
    """Widths from ``--layers`` or the reference net; None: take them from the --init file."""
    if layers is not None:
        return widths_of(recipe_for(net, layers))
    if net in RECIPES:
        return widths_of(RECIPES[net])
    check_net_name(net)
    if scratch:
        raise UserError(f"{net} is not a reference network: --scratch needs --layers")
    return None


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="mnist-fpga qat", description=__doc__.split("\n")[0])
    parser.add_argument("--net", required=True,
                        help=f"{', '.join(RECIPES)}, or any name with --layers or --init")
    parser.add_argument("--layers", default=None,
                        help="widths, e.g. 784,128,64,10 (default: from the net or --init)")
    parser.add_argument("--format", required=True, help="int<B> or w<W>a<A>, e.g. int4, w2a2")
    parser.add_argument("--epochs", type=int, default=QatRecipe.epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="output .npz file")
    init = parser.add_mutually_exclusive_group()
    init.add_argument("--init", type=Path, default=None,
                      help="float weights to fine-tune (default models/<net>.npz)")
    init.add_argument("--scratch", action="store_true", help="train from random weights")
    parser.add_argument("--lr", type=float, default=QatRecipe.lr)
    parser.add_argument("--distill", type=float, default=QatRecipe.distill,
                        help="weight of the float teacher's soft targets (0..1, default 0)")
    parser.add_argument("--dropout", type=float, default=QatRecipe.dropout)
    parser.add_argument("--shift", type=int, default=QatRecipe.shift)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N train images")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--mnist-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    args = parser.parse_args(argv)
    fmt = parse_format(args.format)
    for name, value, low in (("--epochs", args.epochs, 1), ("--threads", args.threads, 1),
                             ("--limit", args.limit, 1), ("--shift", args.shift, 0)):
        if value is not None and value < low:
            raise UserError(f"{name} must be at least {low}, got {value}")
    if not 0 <= args.distill <= 1 or not 0 <= args.dropout < 1:
        raise UserError("--distill must be in [0, 1] and --dropout in [0, 1)")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        raise UserError(f"--lr must be a positive number, got {args.lr}")
    check_creatable(args.out, "output file")
    if args.out.is_dir():
        raise UserError(f"output file {args.out} exists and is a folder")
    widths = qat_widths(args.net, args.layers, args.scratch)
    weights = None
    if not args.scratch:
        init_path = args.init or ROOT / "models" / f"{args.net}.npz"
        if not init_path.is_file() and args.init is None and args.net not in RECIPES:
            raise UserError(f"no float model {init_path} to start from: train it first "
                            f"(make train NET={args.net} LAYERS=...) or give --init or --scratch")
        weights = load_float_weights(init_path)
        got = [N_IN] + [weights[f"W{k}"].shape[0] for k in range(len(weights))
                        if f"W{k}" in weights]
        if widths is None:
            widths = got
        if got != widths:
            raise UserError(f"--init {init_path} has the layers {','.join(map(str, got))}, "
                            f"not {','.join(map(str, widths))}")
        if widths[-1] not in (1, 10):
            raise UserError(f"--init {init_path} has {widths[-1]} outputs: 10 classes or 1 "
                            "(\"is it a 0\") are trained")
    assert widths is not None
    torch.set_num_threads(args.threads)
    train_images, train_labels = load_mnist("train", args.mnist_dir)
    test_images, test_labels = load_mnist("test", args.mnist_dir)
    if args.limit is not None:
        train_images, train_labels = train_images[: args.limit], train_labels[: args.limit]
    recipe = QatRecipe(epochs=args.epochs, lr=args.lr, distill=args.distill,
                       dropout=args.dropout, shift=args.shift)
    model, meta = train_qat(args.net, fmt, train_images, train_labels, test_images, test_labels,
                            init=weights, recipe=recipe, seed=args.seed, widths=widths)
    arrays = model.export(meta)
    save_model(arrays, args.out)  # first, so the integer figures come from the file
    check = integer_check(args.out, fmt, model, test_images, test_labels)
    meta.update({"integer_test_accuracy": round(check["integer_accuracy"], 4),
                 "integer_agreement": round(check["agreement"], 4)})
    save_model(model.export(meta), args.out)
    print(
        f"wrote {args.out}: {args.net} {fmt.name} integer-model test accuracy "
        f"{100 * check['integer_accuracy']:.2f}% (gen.core.quant + gen.core.model, "
        f"{len(test_labels)} "
        f"images), fake-quant {100 * check['fake_quant_accuracy']:.2f}%, decisions agree on "
        f"{100 * check['agreement']:.2f}%, {meta['train_seconds']:.0f}s training",
        flush=True,
    )
    return 0


if __name__ == "__main__":
    cli_main(main)
