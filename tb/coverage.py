"""Functional coverage of a regression run, from the integer model.

The bins are counted on the model's values for the images the RTL matched bit-exactly,
so they are also the RTL's values. A bin is hit when its count is > 0.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mnist_fpga.gen.core.model import QLayer, QNet, classify, forward, requantize

BINS = (
    "relu_clipped",       # a hidden accumulator < 0 was clipped by ReLU
    "requant_sat_high",   # a requantized value exceeded 2**A - 1 and saturated
    "argmax_tie",         # the largest logit occurred more than once (lowest index won)
    "acc_near_width",     # an accumulator needed its top magnitude bit: |acc| >= 2**(ACC-2)
    "all_classes",        # every class was predicted at least once (count = classes seen)
)


def coverage(qnet: QNet, images: np.ndarray) -> dict[str, int]:
    """Count every bin over ``images``; ``all_classes`` counts the distinct classes seen."""
    accs = forward(qnet, images)
    counts = dict.fromkeys(BINS, 0)
    for layer, acc in zip(qnet.layers, accs, strict=True):
        near = 1 << (layer.acc_bits - 2)
        counts["acc_near_width"] += int(np.sum((acc >= near) | (acc < -near)))
        if layer.hidden:
            counts["relu_clipped"] += int(np.sum(acc < 0))
            top = (1 << layer.out_bits) - 1
            unsat = requantize(acc, _without_saturation(layer))
            counts["requant_sat_high"] += int(np.sum(unsat > top))
    logits = accs[-1]
    if logits.shape[1] > 1:
        counts["argmax_tie"] = int(np.sum(np.sum(logits == logits.max(axis=1, keepdims=True),
                                                 axis=1) > 1))
    counts["all_classes"] = len(set(classify(qnet, logits).tolist()))
    return counts


def _without_saturation(layer: QLayer) -> QLayer:
    """A copy of ``layer`` whose requantization never saturates (to see the raw value)."""
    return replace(layer, out_bits=62)


def format_coverage(qnet: QNet, counts: dict[str, int]) -> str:
    """One line: the bins these images reached (with counts), then those they did not.

    A bin not reached is no failure: it says what the images did not exercise.
    """
    n_classes = max(qnet.n_classes, 2)
    hidden = any(layer.hidden for layer in qnet.layers)
    na = {"relu_clipped": not hidden, "requant_sat_high": not hidden,
          "argmax_tie": qnet.n_classes == 1}
    reached, not_reached, absent = [], [], []
    for name in BINS:
        c = counts[name]
        if na.get(name):
            absent.append(name)
        elif name == "all_classes":
            reached.append(f"classes {c}/{n_classes}")
        else:
            (reached if c else not_reached).append(f"{name}({c})" if c else name)
    line = f"COVERAGE reached: {', '.join(reached)}"
    if not_reached:
        line += f"; not reached by these images: {', '.join(not_reached)}"
    if absent:
        line += f"; not in this network: {', '.join(absent)}"
    return line
