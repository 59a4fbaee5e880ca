"""Accuracy report: ``report.md``, ``report/*.png`` and ``report/accuracy.csv`` under --out.

Usage::

    MNIST_DIR=... python -m mnist_fpga.gen.reports.report [--models models] [--out build/report]

The default ``--out`` is ``build/report`` (untracked); ``--out docs`` (``make report
UPDATE_DOCS=1``) replaces the committed ``docs/report.md`` and ``docs/report/``.

On the full MNIST test set (10,000 images):

- accuracy against bit width: post-training quantization (PTQ) of the committed float
  models, the committed QAT models (``<net>_qat_<format>.npz``, from ``train.qat``), and
  the float network alongside;
- the confusion matrix of the default network (mlp256, int8);
- per layer, the accumulator range seen on the test set against the width chosen
  (``acc_bits``): the headroom in bits.

Every integer figure comes from :func:`gen.core.model.forward` on a :class:`gen.core.model.QNet`
made by :mod:`gen.core.quant`, every float figure from :func:`gen.core.quant.float_forward`.
The output has no timestamps: the same inputs give the same files.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import numpy as np

from mnist_fpga.files import atomic_writer
from mnist_fpga.gen.core.errors import UserError, check_creatable, cli_main
from mnist_fpga.gen.core.formats import Format, parse_format
from mnist_fpga.gen.core.model import QNet, classify, forward, is_correct
from mnist_fpga.gen.core.quant import float_forward, load_float_weights, quantize_network, read_npz
from mnist_fpga.gen.data.mnist import load_mnist
from mnist_fpga.paths import BUILD
from mnist_fpga.paths import PKG_ROOT as ROOT

NETS = ("zero", "l10", "mlp256")
# int2 is also w2a2 (Format(2, 2) is named int2)
PTQ_FORMATS = ("int2", "int3", "int4", "int5", "int6", "int7", "int8", "int16", "w4a8")
QAT_FORMATS = ("int4", "w2a2")  # models/<net>_qat_<fmt>.npz, when present
QAT_NETS = ("mlp256",)
DEFAULT = ("mlp256", "int8")
HEADROOM = (("mlp256", "int8"), ("mlp256", "int4"))


@dataclass(frozen=True)
class AccRow:
    """One line of accuracy.csv."""

    net: str
    method: str  # float | ptq | qat
    format: str  # canonical format name, "float" for the float network
    w_bits: int | str  # "" for float
    a_bits: int | str
    correct: int
    n_images: int
    accuracy_pct: str  # 100 * correct / n_images, 2 decimals
    model: str  # the .npz the row comes from


def acc_row(net: str, method: str, fmt: Format | None, correct: int, n: int, model: str) -> AccRow:
    """Build a row; ``fmt`` None means the float network."""
    return AccRow(
        net=net, method=method, format=fmt.name if fmt else "float",
        w_bits=fmt.w_bits if fmt else "", a_bits=fmt.a_bits if fmt else "",
        correct=int(correct), n_images=int(n), accuracy_pct=f"{100 * correct / n:.2f}",
        model=model,
    )


def csv_text(rows: Iterable[AccRow]) -> str:
    """The rows as CSV (header first, ``\\n`` line ends)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([f.name for f in fields(AccRow)])
    for row in rows:
        writer.writerow(astuple(row))
    return buf.getvalue()


def write_accuracy_csv(rows: Iterable[AccRow], path: Path) -> None:
    """Write :func:`csv_text` atomically."""
    _write_bytes(path, csv_text(rows).encode())


def _write_bytes(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_writer(path) as f:
            f.write(data)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------- measurements


def signed_bits(lo: int, hi: int) -> int:
    """Smallest signed width (at least 2, as ``gen.core.quant.acc_bits_for``) holding lo..hi."""
    lo, hi = min(int(lo), 0), max(int(hi), 0)
    bits = 2
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


@dataclass(frozen=True)
class Headroom:
    """Accumulator range of one layer on the test set against its chosen width."""

    net: str
    format: str
    layer: int
    acc_min: int
    acc_max: int
    used_bits: int  # smallest signed width holding [acc_min, acc_max]
    acc_bits: int  # the width gen.core.quant chose (worst case over all inputs)

    @property
    def headroom(self) -> int:
        return self.acc_bits - self.used_bits


def headroom_rows(qnet: QNet, accs: list[np.ndarray]) -> list[Headroom]:
    """Per layer: min/max of the accumulators in ``accs`` (from gen.core.model.forward)."""
    return [
        Headroom(qnet.name, qnet.fmt.name, k, int(a.min()), int(a.max()),
                 signed_bits(int(a.min()), int(a.max())), layer.acc_bits)
        for k, (layer, a) in enumerate(zip(qnet.layers, accs, strict=True))
    ]


def confusion(qnet: QNet, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Counts (true label, predicted class); for a one-output net the classes are 0/1."""
    pred = classify(qnet, logits)
    truth = np.asarray(labels).astype(np.int64)
    if qnet.n_classes == 1:
        truth = (truth == 0).astype(np.int64)
    n = max(qnet.n_classes, 2)
    out = np.zeros((n, n), dtype=np.int64)
    np.add.at(out, (truth, pred), 1)
    return out


def float_correct(weights: dict[str, np.ndarray], qnet: QNet, images, labels) -> int:
    """Images the float network gets right, with the integer model's decision rule."""
    classes = classify(qnet, float_forward(weights, images)[-1])
    return int(np.sum(is_correct(qnet, classes, labels)))


# ---------------------------------------------------------------- plots


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    _plt().close(fig)
    return buf.getvalue()


def plot_accuracy(rows: list[AccRow]) -> bytes:
    """Accuracy against format: PTQ lines, QAT markers, float as dashed lines."""
    plt = _plt()
    labels = list(dict.fromkeys(r.format for r in rows if r.method == "ptq"))
    pos = {name: i for i, name in enumerate(labels)}
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    colors = {"zero": "tab:green", "l10": "tab:orange", "mlp256": "tab:blue"}
    for ax, zoom in zip(axes, (False, True), strict=True):
        for net in dict.fromkeys(r.net for r in rows):
            c = colors.get(net, "tab:gray")
            ptq = [r for r in rows if r.net == net and r.method == "ptq"]
            ax.plot([pos[r.format] for r in ptq], [float(r.accuracy_pct) for r in ptq],
                    "o-", color=c, label=f"{net} PTQ")
            for r in rows:
                if r.net == net and r.method == "float":
                    ax.axhline(float(r.accuracy_pct), color=c, ls="--", lw=1,
                               label=f"{net} float")
            qat = [r for r in rows if r.net == net and r.method == "qat" and r.format in pos]
            if qat:
                ax.plot([pos[r.format] for r in qat], [float(r.accuracy_pct) for r in qat],
                        "*", ms=14, color=c, markeredgecolor="k", ls="none", label=f"{net} QAT")
        ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel("format (weights / activations)")
        ax.set_ylabel("test accuracy, % (10,000 images)")
        ax.grid(alpha=0.3)
        if zoom:
            ax.set_ylim(90, 100)
            ax.set_title("zoom 90-100 %")
        else:
            ax.set_ylim(0, 101)
            ax.set_title("integer model accuracy against bit width")
    axes[0].legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def plot_confusion(matrix: np.ndarray, title: str) -> bytes:
    """Counts as an image, true label down, prediction across."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    shown = np.log10(matrix + 1)
    ax.imshow(shown, cmap="Blues")
    n = matrix.shape[0]
    for i in range(n):
        for j in range(n):
            v = int(matrix[i, j])
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                        color="white" if shown[i, j] > shown.max() * 0.6 else "black")
    ax.set_xticks(range(n))
    ax.set_yticks(range(n))
    ax.set_xlabel("predicted class (integer model)")
    ax.set_ylabel("true label")
    ax.set_title(title)
    fig.tight_layout()
    return _png(fig)


def plot_headroom(rows: list[Headroom]) -> bytes:
    """Per layer: bits the test set used against bits chosen."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    names = [f"{r.net} {r.format}\nlayer {r.layer}" for r in rows]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r.acc_bits for r in rows], 0.4, label="acc_bits (chosen, worst case)")
    ax.bar(x + 0.2, [r.used_bits for r in rows], 0.4, label="used on the test set")
    for i, r in enumerate(rows):
        unit = "bit" if r.headroom == 1 else "bits"
        ax.text(i, r.acc_bits + 0.3, f"+{r.headroom} {unit}", ha="center", fontsize=9)
    ax.set_xticks(x, names)
    ax.set_ylabel("signed accumulator width, bits")
    ax.set_ylim(0, max(r.acc_bits for r in rows) + 3)
    ax.set_title("accumulator headroom (test set, 10,000 images)")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


# ---------------------------------------------------------------- the report


def _md_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _qat_meta(path: Path) -> dict:
    data = read_npz(path, "weights file")
    try:
        return json.loads(str(data["meta"])) if "meta" in data else {}
    except ValueError:
        return {}


def build_report(models: Path, out: Path, images: np.ndarray, labels: np.ndarray,
                 log=print) -> None:
    """Measure everything and write report.md, the PNGs and accuracy.csv under ``out``."""
    n = len(labels)
    rows: list[AccRow] = []
    cache: dict[tuple[str, str], tuple[QNet, list[np.ndarray]]] = {}
    float_weights = {net: load_float_weights(models / f"{net}.npz") for net in NETS}
    for net in NETS:
        weights = float_weights[net]
        for i, name in enumerate(PTQ_FORMATS):
            fmt = parse_format(name)
            qnet = quantize_network(weights, fmt, net, source=f"{net}.npz")
            accs = forward(qnet, images)
            if i == 0:
                rows.append(acc_row(net, "float", None, float_correct(weights, qnet, images,
                                                                      labels), n, f"{net}.npz"))
            correct = int(np.sum(is_correct(qnet, classify(qnet, accs[-1]), labels)))
            rows.append(acc_row(net, "ptq", fmt, correct, n, f"{net}.npz"))
            if (net, fmt.name) in (DEFAULT, *HEADROOM):
                cache[(net, fmt.name)] = (qnet, accs)
            log(f"{net:<7} ptq {fmt.name:<6} {rows[-1].accuracy_pct:>6} %")
    qat_info = []
    for net in QAT_NETS:
        for name in QAT_FORMATS:
            path = models / f"{net}_qat_{name}.npz"
            if not path.is_file():
                print(f"warning: {path} not found, QAT {net} {name} left out", file=sys.stderr)
                continue
            fmt = parse_format(name)
            weights = load_float_weights(path)
            qnet = quantize_network(weights, fmt, net, source=path.name)
            accs = forward(qnet, images)
            correct = int(np.sum(is_correct(qnet, classify(qnet, accs[-1]), labels)))
            rows.append(acc_row(net, "qat", fmt, correct, n, path.name))
            qat_info.append((path.name, fmt, rows[-1], _qat_meta(path)))
            log(f"{net:<7} qat {fmt.name:<6} {rows[-1].accuracy_pct:>6} %")

    fig_dir = out / "report"
    write_accuracy_csv(rows, fig_dir / "accuracy.csv")
    _write_bytes(fig_dir / "accuracy.png", plot_accuracy(rows))
    qnet, accs = cache[DEFAULT]
    matrix = confusion(qnet, accs[-1], labels)
    default_acc = 100 * np.trace(matrix) / n
    title = f"{DEFAULT[0]} {DEFAULT[1]} integer model: {default_acc:.2f} % of {n:,}"
    _write_bytes(fig_dir / f"confusion_{DEFAULT[0]}_{DEFAULT[1]}.png",
                 plot_confusion(matrix, title))
    head = [r for key in HEADROOM for r in headroom_rows(*cache[key])]
    _write_bytes(fig_dir / "headroom.png", plot_headroom(head))
    text = render_markdown(rows, qat_info, matrix, head, n)
    _write_bytes(out / "report.md", text.encode())


def render_markdown(rows: list[AccRow], qat_info: list, matrix: np.ndarray,
                    head: list[Headroom], n: int) -> str:
    """The text of docs/report.md."""
    nets = list(dict.fromkeys(r.net for r in rows))
    fmts = list(dict.fromkeys(r.format for r in rows if r.method == "ptq"))
    by = {(r.net, r.method, r.format): r for r in rows}
    body = []
    for net in nets:
        line = [net, by[(net, "float", "float")].accuracy_pct]
        line += [by[(net, "ptq", f)].accuracy_pct if (net, "ptq", f) in by else "" for f in fmts]
        body.append(line)
    acc_table = _md_table(["net", "float", *fmts], body)
    qat_body = []
    for name, fmt, row, meta in qat_info:
        ptq = by.get((row.net, "ptq", fmt.name))
        qat_body.append([
            f"`{name}`", fmt.name, row.accuracy_pct, ptq.accuracy_pct if ptq else "",
            str(meta.get("epochs", "")), str(meta.get("init", "")),
            f"{meta['train_seconds']:.0f}" if "train_seconds" in meta else "",
            f"{100 * meta['fake_quant_test_accuracy']:.2f}"
            if "fake_quant_test_accuracy" in meta else "",
        ])
    qat_table = _md_table(
        ["model", "format", "QAT %", "PTQ % (float model)", "epochs", "init", "train s",
         "fake-quant % (QAT's own figure)"], qat_body) if qat_body else "(no QAT model found)"
    k = matrix.shape[0]
    conf_table = _md_table(["true \\ pred", *map(str, range(k)), "recall %"], [
        [str(i), *map(str, matrix[i].tolist()),
         f"{100 * matrix[i, i] / max(int(matrix[i].sum()), 1):.2f}"] for i in range(k)
    ])
    head_table = _md_table(
        ["net", "format", "layer", "acc min (test)", "acc max (test)", "bits used",
         "acc_bits", "headroom bits"],
        [[h.net, h.format, str(h.layer), str(h.acc_min), str(h.acc_max), str(h.used_bits),
          str(h.acc_bits), str(h.headroom)] for h in head])
    net0, fmt0 = DEFAULT
    return f"""# Accuracy report

Generated by `make report` (`mnist-fpga report`); do not edit by hand. Every figure
is on the full MNIST test set ({n:,} images). Integer figures come from the bit-true
model `gen.core.model.forward` (the model the RTL is checked against bit-exactly) on networks
quantized by `gen.core.quant` (docs/numerics.md); float figures from `gen.core.quant.float_forward`
with the same decision rule. `zero` is the one-output "is this digit a 0" network: its
accuracy is the binary one. `int2` is the same format as `w2a2`.

## Accuracy against bit width

Post-training quantization (PTQ) of the committed float models `models/<net>.npz`,
accuracy in %:

{acc_table}

Quantization-aware training (`python -m mnist_fpga.train.qat`, fake quantization with
straight-through estimators following docs/numerics.md, learned activation clip saved
as `calib{{k}}`):

{qat_table}

![accuracy against bit width](report/accuracy.png)

Data: [report/accuracy.csv](report/accuracy.csv).

## Confusion matrix: {net0} {fmt0} (integer model)

{conf_table}

![confusion matrix](report/confusion_{net0}_{fmt0}.png)

## Accumulator headroom

Per layer, the accumulator range over every neuron and every test image against the
width `gen.core.quant` chose (`acc_bits`: no partial sum can overflow for any input,
docs/numerics.md section 3). "Bits used" is the smallest signed width that holds the
range seen; the headroom is the difference.

{head_table}

![accumulator headroom](report/headroom.png)
"""


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    ap = argparse.ArgumentParser(prog="mnist-fpga report", description=__doc__.split("\n")[0])
    ap.add_argument("--models", type=Path, default=ROOT / "models", help="folder of .npz models")
    ap.add_argument("--out", type=Path, default=BUILD / "report",
                    help="folder for report.md and report/ (default build/report; "
                         "docs replaces the committed report)")
    ap.add_argument("--mnist-dir", default=None, help="MNIST folder (default: $MNIST_DIR)")
    args = ap.parse_args(argv)
    if not args.models.is_dir():
        raise UserError(f"models folder {args.models} does not exist")
    check_creatable(args.out / "report" / "x", "report folder")
    for net in NETS:  # before MNIST: a bad model file fails fast
        load_float_weights(args.models / f"{net}.npz")
    images, labels = load_mnist("test", args.mnist_dir)
    build_report(args.models, args.out, images, labels)
    print(f"wrote {args.out / 'report.md'} and {args.out / 'report'}/")
    return 0


if __name__ == "__main__":
    cli_main(main)
