"""What the tools accept: the one legality definition of a quantized network.

The quantizer (:mod:`gen.core.quant`), the model (:func:`gen.core.model.forward`), the generator
(:mod:`gen.hdl.generate`) and the benches call :func:`check_qnet`; the RTL's elaboration
asserts check the same rules on the generics the generator derives here
(``ACC_BITS_MIN`` from :func:`acc_bits_for`). A network that passes is computed
bit-exactly by the RTL; one that does not is refused with one line naming the layer
and the problem, before anything is generated (docs/numerics.md, "Legal networks").
"""

from __future__ import annotations

import numpy as np

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.formats import MAX_BITS, MIN_BITS

MAX_ACC_BITS = 48  # requant's product (ACC + 16 bits) stays inside 64-bit tools
RQ_MULT_BITS = 16  # requantization multipliers are unsigned and below 2**16
# Requantization shifts: any integer in this range (a negative shift is a left shift).
# Beyond it the result no longer depends on the shift (numerics.md, 5), so the range
# only keeps the generics and the per-neuron shift fields small.
MIN_SHIFT, MAX_SHIFT = -64, 255


def acc_bits_for(w: np.ndarray, b: np.ndarray, x_max: int, w_bits: int = 1) -> int:
    """Smallest signed width holding every partial sum ``b + sum(w*x)``, 0 <= x <= x_max.

    Every partial sum lies between ``b + x_max*sum(neg w)`` and ``b + x_max*sum(pos w)``
    (numerics.md, 3). The width is at least 2, and at least ``w_bits + 1`` so that one
    weight always fits the accumulator.
    """
    pos = [int(v) for v in np.where(w > 0, w, 0).sum(axis=1)]
    neg = [int(v) for v in np.where(w < 0, w, 0).sum(axis=1)]
    hi = max(int(bb) + x_max * p for bb, p in zip(b.tolist(), pos, strict=True))
    lo = min(int(bb) + x_max * n for bb, n in zip(b.tolist(), neg, strict=True))
    hi, lo = max(hi, 0), min(lo, 0)
    bits = max(2, w_bits + 1)
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def clamp_per_layer(value: int | list[int], limits: list[int], what: str) -> list[int]:
    """One value for every layer (or one per layer), each clamped to its layer's limit.

    Used for P (inputs per clock, clamped to the layer's inputs): a layer with fewer
    inputs than P takes them all in one beat.
    """
    vs = [value] * len(limits) if isinstance(value, int) else list(value)
    if len(vs) != len(limits) or any(
        isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in vs
    ):
        raise UserError(f"{what} {value!r}: give one integer >= 1 or one per layer "
                        f"({len(limits)} layers)")
    return [min(v, lim) for v, lim in zip(vs, limits, strict=True)]


def _integer_array(a: object, what: str, sym: str, ndim: int, where: str) -> None:
    """Refuse ``a`` unless it is an ``ndim``-dimensional array of integers (int64 or narrower).

    A float array is named by its first non-integer entry (0.5, NaN); other dtypes (bool,
    object, strings, uint64) by their dtype: the model computes in int64, and the
    generator's ROM packing would truncate a fraction.
    """
    shape = "(neurons, inputs)" if ndim == 2 else "(neurons,)"
    if not isinstance(a, np.ndarray):
        raise UserError(f"{where}: {what} are a {type(a).__name__}, not a numpy integer "
                        f"array {shape}")
    if a.ndim != ndim:
        raise UserError(f"{where}: {what} have shape {a.shape}, expected {shape}")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.trunc(a))
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise UserError(f"{where}: {sym}[{', '.join(map(str, idx))}] = {a[idx]} is not "
                            "an integer")
    if a.dtype.kind not in "iu" or not np.can_cast(a.dtype, np.int64):
        raise UserError(f"{where}: {what} have dtype {a.dtype}; integers are needed (int64)")


def _is_int(v: object) -> bool:
    """A Python or numpy integer (not a bool, not a float holding an integer)."""
    return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)


def rq_values(value: object, what: str, n_out: int, where: str) -> tuple[list[int], bool]:
    """A hidden layer's requantization multipliers or shifts, and whether per neuron.

    One integer is the layer's (every neuron's); a ``list`` holds one per neuron
    (numerics.md, 7). Anything else, a tuple or an array included, is refused: the
    generator writes a list as per-neuron vectors and an integer as one constant.
    """
    if isinstance(value, list):
        if len(value) != n_out:
            raise UserError(f"{where}: {len(value)} requantization {what}s for {n_out} "
                            "neurons (one integer for the layer, or a list of one per neuron)")
        items, per_neuron = value, True
    elif isinstance(value, tuple | np.ndarray):
        raise UserError(f"{where}: requantization {what}s given as a {type(value).__name__}: "
                        "one integer for the layer, or a list of one per neuron")
    else:
        items, per_neuron = [value], False
    for v in items:
        if not _is_int(v):
            raise UserError(f"{where}: requantization {what} {v!r} is not an integer")
    return [int(v) for v in items], per_neuron


def check_qnet(qnet) -> None:
    """Raise :class:`UserError` (one line) unless the RTL computes ``qnet`` exactly."""
    name = f"{qnet.name} ({qnet.fmt.name})"
    if not qnet.layers:
        raise UserError(f"{name} has no layer")
    n_in = None
    a_bits = qnet.fmt.a_bits
    for k, layer in enumerate(qnet.layers):
        where = f"layer {k} of {name}"
        hidden = k < len(qnet.layers) - 1
        if layer.hidden != hidden:
            raise UserError(f"{where}: only the last layer has no requantizer")
        _integer_array(layer.w, "weights", "weight w", 2, where)
        _integer_array(layer.b, "biases", "bias b", 1, where)
        n_in = layer.n_in if n_in is None else n_in
        if layer.n_in != n_in or layer.n_out < 1:
            raise UserError(f"{where} has {layer.n_in} inputs and {layer.n_out} neurons; "
                            f"the previous layer gives {n_in}")
        if layer.b.shape != (layer.n_out,):
            raise UserError(f"{where}: {layer.b.size} biases for {layer.n_out} neurons")
        widths = [("weight", layer.w_bits), ("activation", layer.a_bits),
                  ("accumulator", layer.acc_bits)] + [("output", layer.out_bits)] * hidden
        for what, bits in widths:
            if not _is_int(bits):
                raise UserError(f"{where}: {what} width {bits!r} is not an integer")
        for what, bits in (("weight", layer.w_bits), ("activation", layer.a_bits)):
            if not MIN_BITS <= bits <= MAX_BITS:
                raise UserError(f"{where}: {what} width {bits} outside {MIN_BITS}..{MAX_BITS}")
        if layer.a_bits != a_bits:
            raise UserError(f"{where}: input width {layer.a_bits}, the previous layer "
                            f"gives {a_bits}")
        # the quantizer's range is symmetric; the RTL takes every two's-complement weight
        lo, hi = -(1 << (layer.w_bits - 1)), (1 << (layer.w_bits - 1)) - 1
        if layer.w.size and not (lo <= int(layer.w.min()) and int(layer.w.max()) <= hi):
            raise UserError(f"{where}: a weight is outside {lo}..{hi} ({layer.w_bits} bits)")
        need = acc_bits_for(layer.w, layer.b, (1 << layer.a_bits) - 1, layer.w_bits)
        if layer.acc_bits < need:
            raise UserError(f"{where}: accumulator of {layer.acc_bits} bits, its weights and "
                            f"biases need {need}")
        if layer.acc_bits > MAX_ACC_BITS:
            raise UserError(f"{where} needs a {layer.acc_bits}-bit accumulator; the RTL "
                            f"supports at most {MAX_ACC_BITS} bits")
        if hidden:
            mults, per_neuron = rq_values(layer.rq_mult, "multiplier", layer.n_out, where)
            shifts, per_shift = rq_values(layer.rq_shift, "shift", layer.n_out, where)
            if per_neuron != per_shift:
                raise UserError(f"{where}: multipliers and shifts must both be per neuron "
                                "or both per layer")
            if not all(1 <= m < 1 << RQ_MULT_BITS for m in mults):
                raise UserError(f"{where}: requantization multiplier outside "
                                f"1..{(1 << RQ_MULT_BITS) - 1}")
            if not all(MIN_SHIFT <= s <= MAX_SHIFT for s in shifts):
                raise UserError(f"{where}: requantization shift outside "
                                f"{MIN_SHIFT}..{MAX_SHIFT}")
            if not MIN_BITS <= layer.out_bits <= MAX_BITS:
                raise UserError(f"{where}: output width {layer.out_bits} outside "
                                f"{MIN_BITS}..{MAX_BITS}")
            a_bits = layer.out_bits
        n_in = layer.n_out
