"""Fault injection for negative tests: make the simulated RTL differ from the model.

All faults are off by default. A faulted network's ``qnet.json`` stays the true
model, so a working bench must report mismatches. Spec strings (``--fault``):

- ``weight:L,N,I``  flip the least significant bit of w(N, I) of layer L in its ROM
- ``bias:L,N``      add 1 to the bias of neuron N of layer L (subtract at the maximum)
- ``round``         requantizers truncate instead of rounding half up (mutant
                    ``requant-no-round``)
- ``addr``          layers read their weight ROM one address ahead (mutant
                    ``layer-addr-off-by-one``)
- ``mutant:ID``     any RTL mutant of ``tb/mutants/mutants.toml``
- ``expected:L``    (bench side) corrupt the model's first expected accumulator of layer L

Weight and bias faults change the generated ROM and package; RTL faults are mutants
applied to a scratch copy of ``rtl/`` by the bench (no test hooks in the production
RTL), so they act in simulation (``tb.netsim``) only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.model import QNet

# RTL faults by their short names: mutants of tb/mutants/mutants.toml
NAMED_MUTANTS = {"round": "requant-no-round", "addr": "layer-addr-off-by-one"}


@dataclass(frozen=True)
class Faults:
    """Which faults to inject; the default injects none."""

    weight: tuple[int, int, int] | None = None
    bias: tuple[int, int] | None = None
    mutants: tuple[str, ...] = ()  # RTL mutants, applied to a copy of rtl/ by the bench
    expected: int | None = None

    @property
    def rtl_active(self) -> bool:
        """Faults in the generated files (ROM contents, biases)."""
        return bool(self.weight or self.bias)

    def describe(self) -> str:
        parts = []
        if self.weight:
            parts.append("weight:{},{},{}".format(*self.weight))
        if self.bias:
            parts.append("bias:{},{}".format(*self.bias))
        parts += [f"mutant:{m}" for m in self.mutants]
        if self.expected is not None:
            parts.append(f"expected:{self.expected}")
        return " ".join(parts)


def parse_faults(specs: list[str] | None) -> Faults:
    """Parse ``--fault`` spec strings (module docstring)."""
    kw: dict = {}
    mutants: list[str] = []
    for spec in specs or []:
        kind, _, args = spec.partition(":")
        if kind == "mutant" and args:
            mutants.append(args)
            continue
        if kind in NAMED_MUTANTS and not args:
            mutants.append(NAMED_MUTANTS[kind])
            continue
        try:
            nums = [int(a) for a in args.split(",")] if args else []
        except ValueError:
            raise UserError(f"fault {spec!r}: arguments must be integers") from None
        want = {"weight": 3, "bias": 2, "expected": 1}.get(kind)
        if want is None or len(nums) != want:
            raise UserError(
                f"unknown fault {spec!r}: use weight:L,N,I bias:L,N round addr mutant:ID "
                "expected:L"
            )
        if kind == "weight":
            kw["weight"] = tuple(nums)
        elif kind == "bias":
            kw["bias"] = tuple(nums)
        else:
            kw["expected"] = nums[0]
    if mutants:
        from mnist_fpga.tb.mutants import load_mutants

        known = load_mutants()
        if unknown := [m for m in mutants if m not in known]:
            raise UserError(f"unknown mutant {unknown[0]!r}: see tb/mutants/mutants.toml")
    return Faults(**kw, mutants=tuple(mutants))


def faulted_copy(qnet: QNet, faults: Faults) -> QNet:
    """The network the faulted RTL implements (weights and biases changed as asked)."""
    bad = copy.deepcopy(qnet)
    if faults.weight:
        k, n, i = faults.weight
        _check(qnet, k, n, i)
        bad.layers[k].w[n, i] ^= 1  # two's complement LSB: value changes by one
    if faults.bias:
        k, n = faults.bias
        _check(qnet, k, n, 0)
        layer = bad.layers[k]
        top = (1 << (layer.acc_bits - 1)) - 1
        layer.b[n] += 1 if layer.b[n] < top else -1
    return bad


def rom_fault(qnet: QNet, faults: Faults) -> tuple[QNet, str] | None:
    """What ``gen.hdl.generate`` writes instead of ``qnet`` (``fault=``), or None for no fault."""
    return (faulted_copy(qnet, faults), faults.describe()) if faults.rtl_active else None


def _check(qnet: QNet, k: int, n: int, i: int) -> None:
    if not 0 <= k < len(qnet.layers):
        raise UserError(f"fault: layer {k} does not exist (0..{len(qnet.layers) - 1})")
    layer = qnet.layers[k]
    if not (0 <= n < layer.n_out and 0 <= i < layer.n_in):
        raise UserError(f"fault: neuron {n} / input {i} outside layer {k} "
                        f"({layer.n_out} x {layer.n_in})")
