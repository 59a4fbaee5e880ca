"""What the tools accept: the one legality definition of a quantized network.

The quantizer (:mod:`gen.quant`), the model (:func:`gen.model.forward`), the generator
(:mod:`gen.generate`) and the benches call :func:`check_qnet`; the RTL's elaboration
asserts check the same rules on the generics the generator derives here
(``ACC_BITS_MIN`` from :func:`acc_bits_for`). A network that passes is computed
bit-exactly by the RTL; one that does not is refused with one line naming the layer
and the problem, before anything is generated (docs/numerics.md, "Legal networks").
"""

from __future__ import annotations

import numpy as np

from gen.errors import UserError
from gen.formats import MAX_BITS, MIN_BITS

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


def _ints(values) -> list[int]:
    return [int(v) for v in np.atleast_1d(values).tolist()]


def check_qnet(qnet) -> None:
    """Raise :class:`UserError` (one line) unless the RTL computes ``qnet`` exactly."""
    name = f"{qnet.name} ({qnet.fmt.name})"
    if not qnet.layers:
        raise UserError(f"{name} has no layer")
    n_in = qnet.layers[0].n_in
    a_bits = qnet.fmt.a_bits
    for k, layer in enumerate(qnet.layers):
        where = f"layer {k} of {name}"
        hidden = k < len(qnet.layers) - 1
        if layer.hidden != hidden:
            raise UserError(f"{where}: only the last layer has no requantizer")
        if layer.n_in != n_in or layer.n_out < 1:
            raise UserError(f"{where} has {layer.n_in} inputs and {layer.n_out} neurons; "
                            f"the previous layer gives {n_in}")
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
            mults, shifts = _ints(layer.rq_mult), _ints(layer.rq_shift)
            per_neuron = isinstance(layer.rq_mult, list)
            if per_neuron and not (len(mults) == len(shifts) == layer.n_out):
                raise UserError(f"{where}: per-neuron requantization needs {layer.n_out} "
                                "multipliers and shifts")
            if per_neuron != isinstance(layer.rq_shift, list):
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
