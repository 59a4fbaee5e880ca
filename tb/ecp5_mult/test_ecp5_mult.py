"""ecp5_mult bench: the unit (with tb/hdl/MULT18X18D.vhd) against a Python register model.

Random a, b, ce_in, ce_out and an occasional reset drive the unit every clock; a model
of its two register stages (inputs with ce_in, product with ce_out, both cleared by rst)
gives the expected p, compared every clock, extremes of a and b included. The product
itself comes from Python integers: an independent reference for the model of the
block. ``TB_SEED`` overrides the fixed per-case seed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mnist_fpga.tb.bench import HAVE_COCOTB, UnitRun, params, run_size
from mnist_fpga.tb.selftest import Fault, checker_tests, mismatch, verdict

BLOCK_MODEL = Path(__file__).resolve().parent.parent / "hdl" / "MULT18X18D.vhd"
CYCLES = 1500


def wrap(v: int, bits: int) -> int:
    """``v`` as a ``bits``-bit two's complement value."""
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


class MultModel:
    """The unit's two register stages: a and b with ce_in, the product with ce_out, both
    cleared by rst; the product from Python integers."""

    def __init__(self) -> None:
        self.ra = self.rb = self.rp = 0

    def step(self, rst: int, ce_in: int, ce_out: int, a: int, b: int) -> None:
        """The registers after the edge that takes these inputs."""
        if rst:
            self.ra = self.rb = self.rp = 0
            return
        if ce_out:
            self.rp = self.ra * self.rb
        if ce_in:
            self.ra, self.rb = a, b


if HAVE_COCOTB:
    from cocotb.triggers import ReadOnly, RisingEdge

    from mnist_fpga.tb.bench import TB

    class MultTB(TB):
        """Clock and the random driver: operands (extremes included), enables, resets."""

        def __init__(self, dut, seed: int) -> None:
            super().__init__(dut, seed, ("ce_in", "ce_out", "a", "b"))
            self.a_bits, self.b_bits = params()["a_bits"], params()["b_bits"]
            self.a_vals = [-(1 << (self.a_bits - 1)), (1 << (self.a_bits - 1)) - 1, 0, -1]
            self.b_vals = [0, (1 << self.b_bits) - 1, 1]

        def drive(self) -> tuple[int, int, int, int, int]:
            """Random rst (1 %), ce_in, ce_out, a and b for the next edge."""
            rng, a_bits, b_bits = self.rng, self.a_bits, self.b_bits
            rst = int(rng.random() < 0.01)
            ce_in, ce_out = int(rng.random() < 0.7), int(rng.random() < 0.7)
            a = rng.choice(self.a_vals) if rng.random() < 0.3 else rng.randint(
                -(1 << (a_bits - 1)), (1 << (a_bits - 1)) - 1)
            b = rng.choice(self.b_vals) if rng.random() < 0.3 else rng.getrandbits(b_bits)
            dut = self.dut
            dut.rst.value, dut.ce_in.value, dut.ce_out.value = rst, ce_in, ce_out
            dut.a.value, dut.b.value = a & ((1 << a_bits) - 1), b
            return rst, ce_in, ce_out, a, b

    async def run(dut, fault: bool) -> None:
        seed, _ = run_size(fault, CYCLES, CYCLES)
        p_bits = params()["p_bits"]
        tb, model = MultTB(dut, seed), MultModel()
        await tb.clocks(1)  # in reset; from here on the driver draws rst too
        errors, injected = [], None
        for cycle in range(CYCLES):
            inputs = tb.drive()
            await ReadOnly()
            exp = wrap(model.rp, p_bits)
            if fault and cycle == CYCLES // 2:  # checker self-test: one wrong expected product
                exp = wrap(model.rp + 1, p_bits)
                injected = Fault(f"clock {cycle} p", exp, wrap(model.rp, p_bits))
            got = dut.p.value
            got = wrap(int(got), p_bits) if got.is_resolvable else got
            if got != exp:
                errors.append(mismatch(f"clock {cycle} p", exp, got))
            await RisingEdge(dut.clk)
            model.step(*inputs)
        verdict(errors, injected)

    ecp5_mult_random, ecp5_mult_random_catches_injected_fault = checker_tests(
        __name__, "ecp5_mult_random", "Random operands, enables and resets, checked every clock.",
        run)


# ----------------------------------------------------------------------------- pytest runner

# (A_BITS, B_BITS, P_BITS): int8 (the default network), the widest the block takes, tiny
CASES = [(8, 8, 17), (18, 17, 36), (2, 1, 4)]


@pytest.mark.parametrize(("a_bits", "b_bits", "p_bits"), CASES,
                         ids=[f"a{a}-b{b}-p{p}" for a, b, p in CASES])
def test_ecp5_mult(a_bits: int, b_bits: int, p_bits: int, request: pytest.FixtureRequest) -> None:
    """ecp5_mult with the block's model against Python integers."""
    from mnist_fpga.tb.common import rtl_sources

    run = UnitRun(request)
    ports = [("ce_in", "in", None), ("ce_out", "in", None), ("a", "in", a_bits),
             ("b", "in", b_bits), ("p", "out", p_bits)]
    wrap_vhd = run.wrapper("ecp5_mult", {"A_BITS": a_bits, "B_BITS": b_bits, "P_BITS": p_bits},
                           ports)
    run.run("ecp5_mult_tb", [BLOCK_MODEL, *rtl_sources("ecp5_mult"), wrap_vhd],
            {"a_bits": a_bits, "b_bits": b_bits, "p_bits": p_bits})
