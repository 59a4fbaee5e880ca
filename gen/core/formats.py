"""Number formats named on the command line and in test ids.

``int8`` (= ``w8a8``), ``w4a8``: integer widths, scales chosen from the weights;
``q1_7``: fixed point Qm.n (m integer bits including the weights' sign, n fraction
bits) for weights and activations; suffixes ``-pn`` (per-neuron weight scales) and
``-shift`` (power-of-two requantization, no multiplier), e.g. ``int4-pn-shift``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mnist_fpga.gen.core.errors import UserError

MIN_BITS = 2
MAX_BITS = 16


@dataclass(frozen=True)
class Format:
    """Weight and activation widths of a quantized network.

    Weights are signed ``w_bits``-bit integers, activations (pixels and ReLU
    outputs, never negative) unsigned ``a_bits``-bit integers.
    """

    w_bits: int
    a_bits: int
    frac: int | None = None  # Qm.n: n fraction bits of weights and activations
    per_neuron: bool = False  # one weight scale per neuron (hidden layers)
    shift_only: bool = False  # requantization by a power of two only

    @property
    def name(self) -> str:
        """Canonical name: ``int8``, ``w4a8`` or ``q1_7``, then ``-pn`` and ``-shift``."""
        if self.frac is not None:
            base = f"q{self.w_bits - self.frac}_{self.frac}"
        elif self.w_bits == self.a_bits:
            base = f"int{self.w_bits}"
        else:
            base = f"w{self.w_bits}a{self.a_bits}"
        return base + ("-pn" if self.per_neuron else "") + ("-shift" if self.shift_only else "")


# Widths are ASCII decimals without leading zeros (``\d`` would take Arabic-Indic digits).
_NUM = r"(0|[1-9][0-9]*)"
_INT = re.compile(rf"int{_NUM}")
_WA = re.compile(rf"w{_NUM}a{_NUM}")
_Q = re.compile(rf"q{_NUM}[_.]{_NUM}")
_BARE = re.compile(_NUM)
_SPELLING = ("lowercase ASCII int<B>, w<W>a<A> or q<m>_<n> without spaces or leading "
             "zeros, optionally -pn and -shift, e.g. int8")


def parse_format(text: str) -> Format:
    """Parse a format name (module docstring); widths must lie in 2..16.

    The spelling is strict (``INT8``, `` int8``, ``int08`` are refused): one format has
    one name, so it cannot reach two build folders or two QAT file names.
    """
    spec = str(text)
    flags = {"pn": False, "shift": False}
    while "-" in spec:
        spec, _, suffix = spec.rpartition("-")
        if suffix not in flags or flags[suffix]:
            raise UserError(f"unknown format suffix {suffix!r} in {text!r}: use -pn and/or -shift")
        flags[suffix] = True
    frac = None
    if m := _Q.fullmatch(spec):
        ib, frac = int(m.group(1)), int(m.group(2))
        if ib < 1:
            raise UserError(f"fixed point {text!r} needs at least 1 integer bit (the sign)")
        if not MIN_BITS <= ib + frac <= MAX_BITS:
            raise UserError(f"fixed point {text!r} does not fit: {ib}+{frac} = {ib + frac} "
                            f"bits, widths must be {MIN_BITS}..{MAX_BITS}")
        w = a = ib + frac
    elif m := _INT.fullmatch(spec):
        w = a = int(m.group(1))
    elif m := _WA.fullmatch(spec):
        w, a = int(m.group(1)), int(m.group(2))
    elif m := _BARE.fullmatch(spec):
        w = a = int(m.group(1))
    else:
        raise UserError(f"unknown number format {text!r}: expected {_SPELLING}")
    for what, bits in (("weight", w), ("activation", a)):
        if not MIN_BITS <= bits <= MAX_BITS:
            raise UserError(
                f"unsupported {what} width {bits} in {text!r}: "
                f"widths must be {MIN_BITS}..{MAX_BITS}"
            )
    return Format(w, a, frac, flags["pn"], flags["shift"])
