"""Block RAM geometry of the targets, written once: the writer slices ROMs by it, the EDA
flow predicts block counts from it.

Each table lists (depth, width) of one primitive for every aspect ratio a ROM can use.
"""

from __future__ import annotations

# ECP5 DP16KD (Lattice TN1264): 36 bits wide only as pseudo dual port, which a ROM may use
DP16KD = [(16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)]
# the true dual-port ratios (width <= 18): yosys maps one port of one block and can use its
# output register, which the ECP5 flow's ROM slices rely on
DP16KD_TDP = [(d, w) for d, w in DP16KD if w <= 18]
# Xilinx 7 series RAMB18E1 (one 18 Kb unit) and RAMB36E1 (two units) (UG473)
RAMB18 = [(16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36)]
RAMB36 = [(32768, 1), (16384, 2), (8192, 4), (4096, 9), (2048, 18), (1024, 36), (512, 72)]


def clog2(n: int) -> int:
    """Bits needed to address ``n`` items (at least 1)."""
    return max(1, (n - 1).bit_length())


def class_bits(n_classes: int) -> int:
    """Width of the top's ``class_out``: enough for ``n_classes`` (a 1-output net: 1 bit)."""
    return clog2(max(n_classes, 2))
