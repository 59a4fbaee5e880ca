"""The COVERAGE line: what the images reached and what they did not, with no failure word."""

from __future__ import annotations

import numpy as np

from mnist_fpga.gen.core.formats import parse_format
from mnist_fpga.gen.core.model import QLayer, QNet
from mnist_fpga.tb.coverage import BINS, format_coverage


def _net(hidden: bool) -> QNet:
    """A 4-3-10 (or 4-10) network: only its shape matters to the COVERAGE line."""
    shapes = [(3, 4), (10, 3)] if hidden else [(10, 4)]
    layers = [QLayer(w=np.zeros(s, dtype=np.int64), b=np.zeros(s[0], dtype=np.int64), w_bits=8,
                     a_bits=8, acc_bits=20, hidden=k < len(shapes) - 1,
                     **({"rq_mult": 1, "rq_shift": 0, "out_bits": 8}
                        if k < len(shapes) - 1 else {}))
              for k, s in enumerate(shapes)]
    return QNet("t", parse_format("int8"), layers, "")


def test_coverage_line_reached_and_not_reached() -> None:
    counts = dict.fromkeys(BINS, 0) | {"relu_clipped": 340, "argmax_tie": 1, "all_classes": 2}
    line = format_coverage(_net(hidden=True), counts)
    assert line == ("COVERAGE reached: relu_clipped(340), argmax_tie(1), classes 2/10; "
                    "not reached by these images: requant_sat_high, acc_near_width")
    assert not any(word in line.lower() for word in ("miss", "fail", "error"))


def test_coverage_line_every_bin_reached_and_bins_a_net_has_not() -> None:
    counts = dict.fromkeys(BINS, 5) | {"all_classes": 10}
    assert format_coverage(_net(hidden=True), counts) == (
        "COVERAGE reached: relu_clipped(5), requant_sat_high(5), argmax_tie(5), "
        "acc_near_width(5), classes 10/10")
    assert format_coverage(_net(hidden=False), counts) == (
        "COVERAGE reached: argmax_tie(5), acc_near_width(5), classes 10/10; "
        "not in this network: relu_clipped, requant_sat_high")
