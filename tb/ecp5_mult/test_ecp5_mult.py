"""ecp5_mult bench: the unit (with tb/hdl/MULT18X18D.vhd) against a Python register model.

Random a, b, ce_in, ce_out and an occasional reset drive the unit every clock; a model
of its two register stages (inputs with ce_in, product with ce_out, both cleared by rst)
gives the expected p, compared every clock, extremes of a and b included. The product
itself comes from Python integers: an independent reference for the model of the
block. ``TB_SEED`` overrides the fixed per-case seed.
"""

from __future__ import annotations

import os
import random
import zlib
from pathlib import Path

import pytest

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ReadOnly, RisingEdge
except ImportError:  # pragma: no cover - pytest collection without cocotb
    cocotb = None

from mnist_fpga.tb.selftest import Fault, checker_tests, mismatch, verdict

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CLK_NS = 10
CYCLES = 1500


def wrap(v: int, bits: int) -> int:
    """``v`` as a ``bits``-bit two's complement value."""
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


if cocotb is not None:

    async def run(dut, seed: int, fault: bool) -> None:
        a_bits, b_bits, p_bits = (int(os.environ[k]) for k in ("EM_A", "EM_B", "EM_P"))
        rng = random.Random(seed)
        a_vals = [-(1 << (a_bits - 1)), (1 << (a_bits - 1)) - 1, 0, -1]
        b_vals = [0, (1 << b_bits) - 1, 1]
        dut.rst.value, dut.ce_in.value, dut.ce_out.value = 1, 0, 0
        dut.a.value, dut.b.value = 0, 0
        Clock(dut.clk, CLK_NS, unit="ns").start()
        await RisingEdge(dut.clk)
        ra = rb = rp = 0  # the model: input registers and output register
        errors, injected = [], None
        for cycle in range(CYCLES):
            rst = int(rng.random() < 0.01)
            ce_in, ce_out = int(rng.random() < 0.7), int(rng.random() < 0.7)
            a = rng.choice(a_vals) if rng.random() < 0.3 else rng.randint(
                -(1 << (a_bits - 1)), (1 << (a_bits - 1)) - 1)
            b = rng.choice(b_vals) if rng.random() < 0.3 else rng.getrandbits(b_bits)
            dut.rst.value, dut.ce_in.value, dut.ce_out.value = rst, ce_in, ce_out
            dut.a.value, dut.b.value = a & ((1 << a_bits) - 1), b
            await ReadOnly()
            exp = wrap(rp, p_bits)
            if fault and cycle == CYCLES // 2:  # checker self-test: one wrong expected product
                exp = wrap(rp + 1, p_bits)
                injected = Fault(f"clock {cycle} p", exp, wrap(rp, p_bits))
            got = dut.p.value
            got = wrap(int(got), p_bits) if got.is_resolvable else got
            if got != exp:
                errors.append(mismatch(f"clock {cycle} p", exp, got))
            await RisingEdge(dut.clk)
            if rst:
                ra = rb = rp = 0
            else:
                if ce_out:
                    rp = ra * rb
                if ce_in:
                    ra, rb = a, b
        verdict(errors, injected)

    def _seed() -> int:
        return int(os.environ.get("EM_SEED", "1"))

    ecp5_mult_random, ecp5_mult_random_catches_injected_fault = checker_tests(
        __name__, "ecp5_mult_random", "Random operands, enables and resets, checked every clock.",
        lambda dut: run(dut, _seed(), False),
        lambda dut: run(dut, _seed() + 1, True))  # one wrong expected product


# ----------------------------------------------------------------------------- pytest runner

# (A_BITS, B_BITS, P_BITS): int8 (the default network), the widest the block takes, tiny
CASES = [(8, 8, 17), (18, 17, 36), (2, 1, 4)]


@pytest.mark.parametrize(("a_bits", "b_bits", "p_bits"), CASES,
                         ids=[f"a{a}-b{b}-p{p}" for a, b, p in CASES])
def test_ecp5_mult(a_bits: int, b_bits: int, p_bits: int, request: pytest.FixtureRequest) -> None:
    """ecp5_mult with the block's model against Python integers."""
    from mnist_fpga.paths import BUILD
    from mnist_fpga.tb.common import rtl_sources, run_sim, simulator_missing
    from mnist_fpga.tb.unitwrap import write_wrapper

    if reason := simulator_missing():
        pytest.skip(reason)
    tag = request.node.name.replace("[", "-").replace("]", "")
    build = BUILD / "tb" / tag
    ports = [("clk", "in", None), ("rst", "in", None), ("ce_in", "in", None),
             ("ce_out", "in", None), ("a", "in", a_bits), ("b", "in", b_bits),
             ("p", "out", p_bits)]
    wrapper = write_wrapper(build, "ecp5_mult",
                            {"A_BITS": a_bits, "B_BITS": b_bits, "P_BITS": p_bits}, ports, tag)
    seed = int(os.environ.get("TB_SEED", zlib.crc32(tag.encode()) & 0xFFFF))
    print(f"seed {seed} (TB_SEED={seed} replays)")
    run_sim(toplevel="ecp5_mult_tb", module="test_ecp5_mult",
            vhdl_sources=[str(ROOT / "tb" / "hdl" / "MULT18X18D.vhd"),
                          *rtl_sources("ecp5_mult"), str(wrapper)],
            build_dir=build / "sim",
            extra_env={"EM_A": a_bits, "EM_B": b_bits, "EM_P": p_bits, "EM_SEED": seed},
            bench_dir=HERE)
