"""Accuracy on the full MNIST test set: the float network and the integer model.

Usage::

    MNIST_DIR=... python -m mnist_fpga.gen.reports.evaluate [--nets zero l10 mlp256] [--format int8]

The integer figure is :func:`gen.core.model.accuracy`, the same model the RTL is checked
against bit-exactly, so it is also the RTL's accuracy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mnist_fpga.gen.core.errors import cli_main
from mnist_fpga.gen.core.formats import parse_format
from mnist_fpga.gen.core.model import QNet, accuracy, classify, is_correct
from mnist_fpga.gen.core.quant import float_forward, load_float_weights, quantize_network
from mnist_fpga.gen.data.mnist import load_mnist
from mnist_fpga.gen.hdl.generate import ROOT

NETS = ("zero", "l10", "mlp256")


def float_accuracy(weights: dict[str, np.ndarray], qnet_like: QNet, images, labels) -> float:
    """Float network's accuracy with the same decision rule as the integer model."""
    classes = classify(qnet_like, float_forward(weights, images)[-1])
    return float(np.mean(is_correct(qnet_like, classes, labels)))


def main() -> int:
    ap = argparse.ArgumentParser(prog="mnist-fpga evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("--nets", nargs="+", default=list(NETS))
    ap.add_argument("--format", default="int8")
    args = ap.parse_args()
    fmt = parse_format(args.format)
    paths = {net: ROOT / "models" / f"{net}.npz" for net in args.nets}
    all_weights = {net: load_float_weights(p) for net, p in paths.items()}  # before MNIST
    images, labels = load_mnist("test")
    print(f"{'net':<8} {'test images':>11} {'float %':>8} {fmt.name + ' %':>8} "
          f"{'delta':>7} {'s':>5}")
    for net in args.nets:
        t0 = time.perf_counter()
        weights = all_weights[net]
        qnet = quantize_network(weights, fmt, net, source=paths[net].name)
        f_acc = float_accuracy(weights, qnet, images, labels)
        q_acc = accuracy(qnet, images, labels)
        print(f"{net:<8} {len(labels):>11} {100 * f_acc:>8.2f} {100 * q_acc:>8.2f} "
              f"{100 * (q_acc - f_acc):>+7.2f} {time.perf_counter() - t0:>5.1f}")
    return 0


if __name__ == "__main__":
    cli_main(main)

