"""Number formats named on the command line and in test ids (``int8``, ``w4a8``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from gen.errors import UserError

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

    @property
    def name(self) -> str:
        """Canonical name: ``int8`` when both widths agree, else ``w4a8``."""
        if self.w_bits == self.a_bits:
            return f"int{self.w_bits}"
        return f"w{self.w_bits}a{self.a_bits}"


_INT = re.compile(r"int(\d+)")
_WA = re.compile(r"w(\d+)a(\d+)")


def parse_format(text: str) -> Format:
    """Parse ``int<B>`` or ``w<W>a<A>``; widths must lie in 2..16."""
    spec = str(text).strip().lower()
    if m := _INT.fullmatch(spec):
        w = a = int(m.group(1))
    elif m := _WA.fullmatch(spec):
        w, a = int(m.group(1)), int(m.group(2))
    elif spec.isdigit():
        w = a = int(spec)
    else:
        raise UserError(f"unknown number format {text!r}: expected int<B> or w<W>a<A>, e.g. int8")
    for what, bits in (("weight", w), ("activation", a)):
        if not MIN_BITS <= bits <= MAX_BITS:
            raise UserError(
                f"unsupported {what} width {bits} in {text!r}: "
                f"widths must be {MIN_BITS}..{MAX_BITS}"
            )
    return Format(w, a)
