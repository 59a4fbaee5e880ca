"""mac_mult bench: the multipliers of every MULT_STYLE against a Python register model.

Every clock drives a random ROM word (extremes included), a random stage-0 input (all
lanes zero, single zero lanes, 0, 1 and the maximum), and random enables: each ``en(s)``
(``en(0)`` loads the operands), ``clr`` and an occasional reset. The model
(:class:`MultModel`) keeps mac_mult's registers as Python integers: the ROM word twice
as it arrives, the operands (a lane whose input is zero keeps its weights), then by
style the operands again, the products ``w * x`` and the products again ("inferred",
"ecp5": the middle two inside the block, which the reset also clears), or the levels of
a tree of pairwise sums of the weight's shifted copies ``w * 2**b`` for the set bits b
of the input ("lut"). The checker compares every product every clock, and that the port
of the other arithmetic (``prod_v`` when INT_MATH, ``prod_i`` otherwise) stays 0.
Random enables, not only a pipeline's: a stage that loads from the wrong stage, or
without its enable, shows.
``TB_SEED`` overrides the fixed per-case seed.
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

from mnist_fpga.gen.hdl.mlp_common import clog2, mult_stages
from mnist_fpga.tb.common import decode_flat
from mnist_fpga.tb.selftest import Fault, checker_tests, mismatch, verdict

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CLK_NS = 10
CYCLES = 400


def halved(n: int, levels: int) -> int:
    """ceil(n / 2**levels)."""
    for _ in range(levels):
        n = (n + 1) // 2
    return n


class MultModel:
    """mac_mult's registers, updated edge by edge (all from their values before the edge)."""

    def __init__(self, pe: int, p: int, w_bits: int, a_bits: int, style: str) -> None:
        self.pe, self.p, self.a_bits, self.style = pe, p, a_bits, style
        n = pe * p
        self.wa = self.w0 = [0] * n  # the ROM word, stages -1 and 0
        self.xr = self.wr = [0] * n  # stage 1
        self.xr2 = self.wr2 = [0] * n  # stage 2 ("inferred", "ecp5")
        self.pr = [0] * n  # stage 3
        self.levels = clog2(a_bits)  # "lut": the product tree
        self.pt = [[0] * halved(a_bits, lv) * n for lv in range(self.levels + 1)]
        self.prod = [0] * n

    def terms(self) -> list[int]:
        """Level 0 of the "lut" trees: w * 2**b for every set bit b of the input."""
        return [self.wr[i] << b if self.xr[i] >> b & 1 else 0
                for i in range(len(self.xr)) for b in range(self.a_bits)]

    def edge(self, w: list[int], x: list[int], rst: bool, en: list[bool], clr: bool) -> None:
        """One clock edge; ``en[s]`` is en(s): en(0) loads the operands."""
        n, a = len(self.xr), self.a_bits
        op_en, en = en[0], en[1:]
        prod, pr, xr2, wr2 = self.prod, self.pr, self.xr2, self.wr2
        if self.style == "lut":
            pt = [list(level) for level in self.pt]
            for lv in range(1, self.levels + 1):
                if en[lv - 1]:
                    src = self.terms() if lv == 1 else self.pt[lv - 1]
                    width, prev = halved(a, lv), halved(a, lv - 1)
                    for i in range(n):
                        for k in range(width):
                            s = src[i * prev + 2 * k]
                            if 2 * k + 1 < prev:
                                s += src[i * prev + 2 * k + 1]
                            pt[lv][i * width + k] = s
            self.pt = pt
            if en[self.levels - 1]:
                prod = list(pt[self.levels])
        else:
            if en[2]:
                prod = list(self.pr)
            if en[1]:
                pr = [self.wr2[i] * self.xr2[i] for i in range(n)]
            if en[0]:
                xr2, wr2 = list(self.xr), list(self.wr)
        if clr:
            prod = [0] * n
        xr, wr = list(self.xr), list(self.wr)
        if op_en:
            for i in range(n):
                xr[i] = x[i % self.p]
                if xr[i]:
                    wr[i] = self.w0[i]
        if rst:
            xr, wr, xr2, wr2 = [0] * n, [0] * n, [0] * n, [0] * n
            if self.style == "ecp5":  # the block's input and output registers
                pr = [0] * n
        self.prod, self.pr, self.xr2, self.wr2, self.xr, self.wr = prod, pr, xr2, wr2, xr, wr
        self.w0, self.wa = self.wa, list(w)


if cocotb is not None:

    def _env(name: str) -> int:
        return int(os.environ[name])

    def pack(values: list[int], bits: int) -> int:
        mask = (1 << bits) - 1
        return sum((v & mask) << (i * bits) for i, v in enumerate(values))

    async def run(dut, fault: bool) -> None:
        pe, p, w_bits, a_bits = (_env(k) for k in ("MM_PE", "MM_P", "MM_W", "MM_A"))
        style, int_math = os.environ["MM_STYLE"], _env("MM_INT") == 1
        rng = random.Random(_env("MM_SEED") + fault)
        pb, n, ms = w_bits + a_bits + 1, pe * p, mult_stages(style, a_bits)
        wlo, whi, xmax = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1, (1 << a_bits) - 1
        model = MultModel(pe, p, w_bits, a_bits, style)
        port, other = (dut.prod_i, dut.prod_v) if int_math else (dut.prod_v, dut.prod_i)
        Clock(dut.clk, CLK_NS, unit="ns").start()
        errors: list[str] = []
        injected = None
        # The product registers have no reset, and the first test leaves them as it ends:
        # reset, clear and every enable for ms + 1 clocks flush every register to 0 (of
        # the model too), unchecked.
        flush = ms + 1
        for cycle in range(CYCLES):
            rst = cycle < flush or rng.random() < 0.01
            clr = rng.random() < 0.1
            en = [rng.random() < 0.6 for _ in range(ms)]
            if cycle < flush:  # every stage but the operands' (the reset holds them at 0)
                clr, en = True, [False] + [True] * (ms - 1)
            w = [rng.choice((wlo, whi, 0, rng.randint(wlo, whi))) for _ in range(n)]
            x = [0] * p if rng.random() < 0.2 else [
                rng.choice((0, 1, xmax, rng.randint(0, xmax))) for _ in range(p)]
            dut.rst.value, dut.clr.value = int(rst), int(clr)
            dut.en.value = sum(int(b) << (ms - 1 - s) for s, b in enumerate(en))  # en(0) left
            dut.w_data.value = pack(w, w_bits)
            dut.x0.value = pack(x, a_bits)
            await ReadOnly()
            exp = list(model.prod)
            if fault and cycle == CYCLES // 2:  # self-test: one wrong expected product
                injected = Fault(f"clock {cycle} product {n - 1}", exp[-1] + 1, exp[-1])
                exp[-1] += 1
            got_raw, rest = port.value, other.value
            if cycle < flush:
                pass
            elif not (got_raw.is_resolvable and rest.is_resolvable):
                errors.append(f"clock {cycle}: metavalue on the products")
            else:
                got = decode_flat(got_raw.to_unsigned(), n, pb)
                for i, (e, g) in enumerate(zip(exp, got, strict=True)):
                    if e != g:
                        errors.append(mismatch(f"clock {cycle} product {i}", e, g))
                if rest.to_unsigned() != 0:
                    errors.append(f"clock {cycle}: the unused product port is not 0")
            await RisingEdge(dut.clk)
            model.edge(w, x, rst, en, clr)
        verdict(errors, injected)

    mac_mult_random, mac_mult_random_catches_injected_fault = checker_tests(
        __name__, "mac_mult_random",
        "Random words, inputs, enables and resets; every product checked every clock.",
        lambda dut: run(dut, False), lambda dut: run(dut, True))


# ----------------------------------------------------------------------------- pytest runner

# (PE, P, W_BITS, A_BITS, MULT_STYLE, INT_MATH)
CASES = [
    (2, 3, 8, 8, "inferred", True),
    (1, 1, 2, 1, "inferred", True),    # the narrowest operands
    (2, 2, 15, 15, "inferred", True),  # 31-bit products: the integers' limit
    (2, 2, 8, 8, "inferred", False),   # numeric_std
    (1, 2, 16, 16, "inferred", False),  # 33-bit products (int16)
    (2, 2, 8, 8, "ecp5", True),
    (1, 1, 18, 12, "ecp5", True),      # the block's widest signed port
    (2, 2, 8, 8, "lut", True),         # 3 levels
    (1, 3, 6, 5, "lut", True),         # 5 bits: an odd level inside the product tree
    (2, 1, 4, 2, "lut", True),         # one level
    (1, 1, 8, 16, "lut", True),        # 4 levels
]


def _id(c: tuple) -> str:
    pe, p, w, a, style, int_math = c
    return f"pe{pe}-p{p}-w{w}a{a}-{style}" + ("" if int_math else "-wide")


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_mac_mult(case: tuple, request: pytest.FixtureRequest) -> None:
    """mac_mult against the register model for one parameter set."""
    from mnist_fpga.paths import BUILD
    from mnist_fpga.tb.common import rtl_sources, run_sim, simulator_missing
    from mnist_fpga.tb.unitwrap import write_wrapper

    if reason := simulator_missing():
        pytest.skip(reason)
    pe, p, w_bits, a_bits, style, int_math = case
    pb, n, ms = w_bits + a_bits + 1, pe * p, mult_stages(style, a_bits)
    tag = request.node.name.replace("[", "-").replace("]", "")
    build = BUILD / "tb" / tag
    seed = int(os.environ.get("TB_SEED", zlib.crc32(_id(case).encode()) & 0xFFFF))
    print(f"seed {seed} (TB_SEED={seed} replays)")
    generics = {"PE": pe, "P": p, "W_BITS": w_bits, "A_BITS": a_bits,
                "MULT_STYLE": f'"{style}"', "INT_MATH": str(int_math).lower()}
    ports = [("clk", "in", None), ("rst", "in", None), ("w_data", "in", n * w_bits),
             ("x0", "in", p * a_bits), ("en", "in", ms),
             ("clr", "in", None), ("prod_i", "out", n * pb), ("prod_v", "out", n * pb)]
    wrap = write_wrapper(build, "mac_mult", generics, ports, _id(case),
                         int_ports={"prod_i": (n, pb)})
    model = [str(ROOT / "tb" / "hdl" / "MULT18X18D.vhd")] if style == "ecp5" else []
    run_sim(toplevel="mac_mult_tb", module="test_mac_mult",
            vhdl_sources=[*model, *rtl_sources("mlp_common", "ecp5_mult", "mac_mult"),
                          str(wrap)],
            build_dir=build / "sim",
            extra_env={"MM_PE": pe, "MM_P": p, "MM_W": w_bits, "MM_A": a_bits,
                       "MM_STYLE": style, "MM_INT": int(int_math), "MM_SEED": seed},
            bench_dir=HERE)
