"""rtl/mlp_common.vhd in Python: the MAC's arithmetic choice, multiplier styles and latency.

One definition per language: the benches and the generator take these from here, the
RTL from the VHDL package; tests/test_mlp_common.py elaborates the VHDL functions over a
grid of generics and compares every value (and every message) with these.
"""

from __future__ import annotations

INT_BITS = 31  # signed values up to this width are VHDL integers in the MAC
MULT_STYLES = ("inferred", "ecp5", "lut")  # mac_mult's MULT_STYLE


def clog2(n: int) -> int:
    """ceil(log2 n), 0 for n = 1 (the VHDL package's; gen.hdl.generate.clog2 is at least 1)."""
    return max(0, (n - 1).bit_length())


def mac_int(w_bits: int, a_bits: int, acc_bits: int, p: int) -> bool:
    """The MAC computes in integers: accumulators and lane sums fit INT_BITS."""
    return acc_bits <= INT_BITS and w_bits + a_bits + 1 + clog2(p) <= INT_BITS


def mult_error(style: str, w_bits: int, a_bits: int, int_math: bool) -> str:
    """"" when mac_mult supports ``style`` for these widths, else why not (one line)."""
    wide = (f'MULT_STYLE "{style}" needs the integer MAC (lane sums and accumulators of '
            "at most 31 bits)")
    if style == "inferred":
        return ""
    if style == "ecp5":
        if not int_math:
            return wide
        if w_bits > 18 or a_bits > 17:
            return ('MULT_STYLE "ecp5" needs W_BITS <= 18 and A_BITS <= 17 (one MULT18X18D), '
                    f"got W_BITS={w_bits} A_BITS={a_bits}")
        return ""
    if style == "lut":
        if not int_math:
            return wide
        if a_bits < 2:
            return 'MULT_STYLE "lut" needs A_BITS >= 2 (a 1-bit product is one gate)'
        return ""
    return f'MULT_STYLE "{style}" is unknown: choose "inferred", "ecp5" or "lut"'


def mult_stages(style: str, a_bits: int) -> int:
    """mac_mult's stages, from the operand registers (stage 1) to the products."""
    return 1 + max(clog2(a_bits), 1) if style == "lut" else 4


def mac_latency(style: str, p: int, a_bits: int) -> int:
    """mac_array: clocks from x_valid to res_valid (stages -1 and 0, the multiplier, the
    adder tree's levels, the accumulators with the result register)."""
    return 2 + mult_stages(style, a_bits) + clog2(p) + 1


def mult_style_for(lut_mult: bool, tech: str, w_bits: int, a_bits: int, acc_bits: int,
                   p: int) -> str:
    """The generator's choice for one layer: the one place that maps ``--lut-mult`` and
    ``tech`` to a MULT_STYLE.

    ``lut_mult`` asks for "lut", ``tech="ecp5"`` for "ecp5" (lut first); a style that
    mac_mult does not support for the layer's widths (an int16 MAC, w20a8 on ECP5) gives
    "inferred", as mac_array did on its own before the styles were a generic.
    """
    int_math = mac_int(w_bits, a_bits, acc_bits, p)
    for style, wanted in (("lut", lut_mult), ("ecp5", tech == "ecp5")):
        if wanted and not mult_error(style, w_bits, a_bits, int_math):
            return style
    return "inferred"
