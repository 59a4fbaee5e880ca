"""mac_tree bench: the adder tree against a Python model of its levels, every clock.

Every clock drives random products (the extremes of IN_BITS signed bits included, so
that every level's sum needs its extra bit), random level enables ``en(l)`` and an
occasional ``clr``; the port of the other arithmetic (``prod_v`` when INT_MATH,
``prod_i`` otherwise) carries random junk, which the tree must ignore. The model keeps
each level as Python integers: level l holds ceil(P / 2**l) sums per neuron, the sum of
lanes 2k and 2k+1 of level l-1 (level 0: the products; an odd last lane passes on), and
loads when en(l) is '1'; clr zeroes the top level (the lane sums). The checker compares
every lane sum every clock, and that the unused output port stays 0. ``TB_SEED``
overrides the fixed per-case seed.
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

from mnist_fpga.gen.hdl.mlp_common import clog2
from mnist_fpga.tb.common import decode_flat
from mnist_fpga.tb.selftest import Fault, checker_tests, mismatch, verdict

HERE = Path(__file__).resolve().parent
CLK_NS = 10
CYCLES = 300


class TreeModel:
    """The tree's levels (1 .. LEVELS), each loaded from the one below when enabled."""

    def __init__(self, pe: int, p: int) -> None:
        self.pe, self.p, self.levels = pe, p, clog2(p)
        self.lanes = [p]
        for _ in range(self.levels):
            self.lanes.append((self.lanes[-1] + 1) // 2)
        self.lv = [[[0] * n for _ in range(pe)] for n in self.lanes]

    def sums(self) -> list[int]:
        """The lane sum of each neuron: the top level."""
        return [self.lv[self.levels][e][0] for e in range(self.pe)]

    def edge(self, prods: list[int], en: list[bool], clr: bool) -> None:
        below = [prods[e * self.p:(e + 1) * self.p] for e in range(self.pe)]
        new = [self.lv[0]]
        for lv in range(1, self.levels + 1):
            src = below if lv == 1 else self.lv[lv - 1]
            if en[lv - 1]:
                new.append([[sum(src[e][2 * k:2 * k + 2]) for k in range(self.lanes[lv])]
                            for e in range(self.pe)])
            else:
                new.append(self.lv[lv])
        if clr:
            new[self.levels] = [[0] for _ in range(self.pe)]
        self.lv = new


if cocotb is not None:

    def _env(name: str) -> int:
        return int(os.environ[name])

    def pack(values: list[int], bits: int) -> int:
        mask = (1 << bits) - 1
        return sum((v & mask) << (i * bits) for i, v in enumerate(values))

    async def run(dut, fault: bool) -> None:
        pe, p, in_bits = _env("MT_PE"), _env("MT_P"), _env("MT_IN")
        int_math = _env("MT_INT") == 1
        rng = random.Random(_env("MT_SEED") + fault)
        levels, tb = clog2(p), in_bits + clog2(p)
        lo, hi = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
        model = TreeModel(pe, p)
        drive, junk = (dut.prod_i, dut.prod_v) if int_math else (dut.prod_v, dut.prod_i)
        port, other = (dut.sum_i, dut.sum_v) if int_math else (dut.sum_v, dut.sum_i)
        Clock(dut.clk, CLK_NS, unit="ns").start()
        errors: list[str] = []
        injected = None
        # no reset: levels + 1 clocks of zero products with every enable flush the tree
        # (the first test leaves it as it ends), unchecked
        flush = levels + 1
        for cycle in range(CYCLES):
            en = [rng.random() < 0.6 for _ in range(levels)]
            clr = rng.random() < 0.1
            extreme = rng.random() < 0.3  # every lane at one extreme: the widest sums
            prods = ([rng.choice((lo, hi))] * (pe * p) if extreme else
                     [rng.choice((lo, hi, 0, rng.randint(lo, hi))) for _ in range(pe * p)])
            if cycle < flush:
                en, clr, prods = [True] * levels, False, [0] * (pe * p)
            dut.en.value = sum(int(b) << (levels - 1 - s) for s, b in enumerate(en))
            dut.clr.value = int(clr)
            drive.value = pack(prods, in_bits)
            junk.value = rng.getrandbits(len(junk))
            await ReadOnly()
            exp = model.sums()
            if fault and cycle == CYCLES // 2:  # self-test: one wrong expected sum
                injected = Fault(f"clock {cycle} neuron {pe - 1}", exp[-1] + 1, exp[-1])
                exp[-1] += 1
            got_raw, rest = port.value, other.value
            if cycle < flush:
                pass
            elif not (got_raw.is_resolvable and rest.is_resolvable):
                errors.append(f"clock {cycle}: metavalue on the sums")
            else:
                got = decode_flat(got_raw.to_unsigned(), pe, tb)
                for e, (x, g) in enumerate(zip(exp, got, strict=True)):
                    if x != g:
                        errors.append(mismatch(f"clock {cycle} neuron {e}", x, g))
                if rest.to_unsigned() != 0:
                    errors.append(f"clock {cycle}: the unused sum port is not 0")
            await RisingEdge(dut.clk)
            model.edge(prods, en, clr)
        verdict(errors, injected)

    mac_tree_random, mac_tree_random_catches_injected_fault = checker_tests(
        __name__, "mac_tree_random",
        "Random products, level enables and clears; every lane sum checked every clock.",
        lambda dut: run(dut, False), lambda dut: run(dut, True))


# ----------------------------------------------------------------------------- pytest runner

# (PE, P, IN_BITS, INT_MATH)
CASES = [
    (2, 2, 17, True),
    (3, 5, 9, True),     # odd lanes at two levels
    (1, 8, 4, True),
    (2, 3, 29, True),    # 31-bit sums: the integers' limit
    (2, 16, 8, True),    # four levels
    (2, 4, 17, False),   # numeric_std
    (1, 5, 33, False),   # int16 products
]


def _id(c: tuple) -> str:
    pe, p, in_bits, int_math = c
    return f"pe{pe}-p{p}-in{in_bits}" + ("" if int_math else "-wide")


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_mac_tree(case: tuple, request: pytest.FixtureRequest) -> None:
    """mac_tree against the model of its levels for one parameter set."""
    from mnist_fpga.paths import BUILD
    from mnist_fpga.tb.common import rtl_sources, run_sim, simulator_missing
    from mnist_fpga.tb.unitwrap import write_wrapper

    if reason := simulator_missing():
        pytest.skip(reason)
    pe, p, in_bits, int_math = case
    tb = in_bits + clog2(p)
    tag = request.node.name.replace("[", "-").replace("]", "")
    build = BUILD / "tb" / tag
    seed = int(os.environ.get("TB_SEED", zlib.crc32(_id(case).encode()) & 0xFFFF))
    print(f"seed {seed} (TB_SEED={seed} replays)")
    generics = {"PE": pe, "P": p, "IN_BITS": in_bits, "INT_MATH": str(int_math).lower()}
    ib = min(in_bits, 31)  # integer inputs: junk of at most 31 bits when the tree is wider
    ports = [("clk", "in", None), ("en", "in", clog2(p)), ("clr", "in", None),
             ("prod_i", "in", pe * p * ib), ("prod_v", "in", pe * p * in_bits),
             ("sum_i", "out", pe * min(tb, 31)), ("sum_v", "out", pe * tb)]
    int_ports = {"prod_i": (pe * p, ib), "sum_i": (pe, min(tb, 31))}
    wrap = write_wrapper(build, "mac_tree", generics, ports, _id(case), int_ports=int_ports)
    run_sim(toplevel="mac_tree_tb", module="test_mac_tree",
            vhdl_sources=[*rtl_sources("mlp_common", "mac_tree"), str(wrap)],
            build_dir=build / "sim",
            extra_env={"MT_PE": pe, "MT_P": p, "MT_IN": in_bits, "MT_INT": int(int_math),
                       "MT_SEED": seed},
            bench_dir=HERE)
