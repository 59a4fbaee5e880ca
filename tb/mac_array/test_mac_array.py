"""mac_array bench: PE x P pipelined multiply-accumulate against a bit-true Python model.

The pytest side builds a stimulus per parameter set: folds of 1..5 beats (random
fold indices, random gaps between beats), weights over the full two's-complement
range, inputs with all-zero beats (the zero skip), single zero lanes and extremes,
and one bias per neuron. ACC_BITS is the width that every partial sum of this
stimulus needs (docs/numerics.md, section 3), so the accumulators run at their limit.
In the ``narrow`` cases each fold's first beat drives every lane to the extreme and
the bias cancels half of it: lane sums (and at P = 1 the products) are then wider
than ACC_BITS while every partial sum fits, which a product or lane sum truncated
the wrong way (``resize`` keeps the sign bit) gets wrong.

The model (``expected_results``): acc = bias(f*PE+e) at a first beat, plus
sum_q w(e,q) * x(q) per beat; a last beat emits the PE accumulators. The checker
compares every res_valid strobe (values, fold, and the clock: exactly
``gen.hdl.mlp_common.mac_latency`` clocks after the last beat's x_valid), the count, and that
res_data holds still between strobes. ``TB_SEED`` overrides the fixed per-case seed.
"""

from __future__ import annotations

import json
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

from mnist_fpga.gen.hdl.mlp_common import clog2, mac_latency
from mnist_fpga.tb.common import decode_flat
from mnist_fpga.tb.selftest import checker_tests, inject, verdict

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CLK_NS = 10
# mac_array and its units, in compile order
MAC_RTL = ("mlp_common", "ecp5_mult", "mac_ctrl", "mac_mult", "mac_tree", "mac_acc",
           "mac_array")


def lane_sum(ws: list[int], xs: list[int], e: int, p: int) -> int:
    return sum(ws[e * p + q] * xs[q] for q in range(p))


def make_stimulus(pe: int, p: int, w_bits: int, a_bits: int, folds: int, narrow: bool,
                  seed: int, n_folds: int = 24) -> dict:
    """Beats (with gaps), biases and the ACC_BITS that this stimulus needs."""
    rng = random.Random(seed)
    wlo, whi, xmax = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1, (1 << a_bits) - 1
    bias = [rng.randint(-(1 << (w_bits + a_bits - 2)), 1 << (w_bits + a_bits - 2))
            for _ in range(folds * pe)]
    schedule: list[dict | None] = []
    signs = [rng.choice((wlo, whi)) for _ in range(folds * pe)]
    prev_x: list[int] = []
    prev_w: list[int] = []
    for _ in range(n_folds):
        f = rng.randrange(folds)
        n_beats = rng.randint(1, 2) if narrow else rng.randint(1, 5)
        for j in range(n_beats):
            kind = rng.random()
            if narrow and j == 0:  # every lane at the extreme, bias cancels half of it
                xs = [xmax] * p  # one sign per fold and neuron: a reused fold's bias fits
                ws = [signs[f * pe + q // p] for q in range(pe * p)]
                for e in range(pe):
                    bias[f * pe + e] = -(lane_sum(ws, xs, e, p) // 2)
            elif narrow:  # the second beat takes the first one back
                xs, ws = prev_x, [-w if w != wlo else whi for w in prev_w]
            else:
                xs = [0] * p if kind < 0.25 else [
                    rng.choice((0, 1, xmax, rng.randint(0, xmax))) for _ in range(p)]
                ws = [rng.choice((wlo, whi, 0, rng.randint(wlo, whi))) for _ in range(pe * p)]
            prev_x, prev_w = xs, ws
            while rng.random() < 0.3:
                schedule.append(None)
            schedule.append({"first": j == 0, "last": j == n_beats - 1, "fold": f,
                             "x": xs, "w": ws})
    # the accumulator width this stimulus needs: every partial sum and every bias
    lo = hi = 0
    for e_acc in _partial_sums(schedule, bias, pe, p):
        lo, hi = min(lo, *e_acc), max(hi, *e_acc)
    acc_bits = max(w_bits + 1, 2)
    while not (-(1 << (acc_bits - 1)) <= lo and hi < 1 << (acc_bits - 1)):
        acc_bits += 1
    return {"schedule": schedule, "bias": bias, "acc_bits": acc_bits}


def _partial_sums(schedule: list[dict | None], bias: list[int], pe: int, p: int):
    acc = [0] * pe
    for beat in schedule:
        if beat is None:
            continue
        if beat["first"]:
            acc = [bias[beat["fold"] * pe + e] for e in range(pe)]
            yield list(acc)
        acc = [acc[e] + lane_sum(beat["w"], beat["x"], e, p) for e in range(pe)]
        yield list(acc)


def expected_results(stim: dict, pe: int, p: int) -> list[tuple[int, int, list[int]]]:
    """(clock of the last beat, fold, PE accumulators) per completed fold."""
    out, acc = [], [0] * pe
    for clk, beat in enumerate(stim["schedule"]):
        if beat is None:
            continue
        if beat["first"]:
            acc = [stim["bias"][beat["fold"] * pe + e] for e in range(pe)]
        acc = [acc[e] + lane_sum(beat["w"], beat["x"], e, p) for e in range(pe)]
        if beat["last"]:
            out.append((clk, beat["fold"], list(acc)))
    return out


if cocotb is not None:

    def _env(name: str) -> int:
        return int(os.environ[name])

    def pack(values: list[int], bits: int) -> int:
        mask = (1 << bits) - 1
        return sum((v & mask) << (i * bits) for i, v in enumerate(values))

    class MacTB:
        """Driver (one beat or a gap per clock) and monitor (res_* per clock) in lock-step."""

        def __init__(self, dut, stim: dict) -> None:
            self.dut, self.stim = dut, stim
            self.pe, self.p = _env("MAC_PE"), _env("MAC_P")
            self.w_bits, self.a_bits = _env("MAC_W_BITS"), _env("MAC_A_BITS")
            self.acc_bits = stim["acc_bits"]
            self.rng = random.Random(_env("MAC_SEED"))
            self.seen: list[tuple[int, int, list[int]]] = []
            self.errors: list[str] = []
            dut.rst.value = 1
            dut.x_valid.value = 0
            dut.x_first.value = dut.x_last.value = 0
            dut.x_fold.value = 0
            dut.x_data.value = 0
            dut.w_data.value = 0
            dut.bias.value = pack(stim["bias"], self.acc_bits)
            Clock(dut.clk, CLK_NS, unit="ns").start()

        async def run(self) -> None:
            dut = self.dut
            for _ in range(3):
                await RisingEdge(dut.clk)
            dut.rst.value = 0
            sched = self.stim["schedule"]
            lat = _env("MAC_LAT")  # mac_latency()
            held = None
            for clk in range(len(sched) + lat + 8):  # bounded: the pipeline drains in lat
                beat = sched[clk] if clk < len(sched) else None
                if beat is None:  # a gap: junk on the data, which must be ignored
                    dut.x_valid.value = 0
                    dut.x_first.value = self.rng.getrandbits(1)
                    dut.x_last.value = self.rng.getrandbits(1)
                    dut.x_data.value = self.rng.getrandbits(self.p * self.a_bits)
                    dut.w_data.value = self.rng.getrandbits(self.pe * self.p * self.w_bits)
                else:
                    dut.x_valid.value = 1
                    dut.x_first.value = int(beat["first"])
                    dut.x_last.value = int(beat["last"])
                    dut.x_fold.value = beat["fold"]
                    dut.x_data.value = pack(beat["x"], self.a_bits)
                    dut.w_data.value = pack(beat["w"], self.w_bits)
                await ReadOnly()
                data = dut.res_data.value
                if dut.res_valid.value == 1:
                    vals = decode_flat(data.to_unsigned(), self.pe, self.acc_bits)
                    self.seen.append((clk - lat, int(dut.res_fold.value.to_unsigned()), vals))
                    held = str(data)
                elif held is not None and str(data) != held:
                    self.errors.append(f"clock {clk}: res_data changed between strobes")
                await RisingEdge(dut.clk)

    def check(expected, seen) -> list[str]:
        errors = []
        if len(seen) != len(expected):
            errors.append(f"expected {len(expected)} results, got {len(seen)}")
        for i, (e, s) in enumerate(zip(expected, seen, strict=False)):
            if e[0] != s[0]:
                errors.append(f"result {i}: last beat at clock {e[0]}, strobe implies {s[0]}")
            if e[1] != s[1]:
                errors.append(f"result {i}: fold expected {e[1]} got {s[1]}")
            for n, (a, b) in enumerate(zip(e[2], s[2], strict=True)):
                if a != b:
                    errors.append(f"result {i} neuron {n}: expected {a} got {b}")
        return errors

    async def run_case(dut, corrupt: bool) -> None:
        stim = json.loads(Path(os.environ["MAC_STIM"]).read_text())
        pe, p = _env("MAC_PE"), _env("MAC_P")
        expected = expected_results(stim, pe, p)
        injected = None
        if corrupt:  # self-test of the checker: one wrong expected accumulator
            accs = expected[-1][2]
            injected = inject(accs, -1, accs[-1] + 1, f"result {len(expected) - 1} neuron {pe - 1}")
        tb = MacTB(dut, stim)
        await tb.run()
        verdict(tb.errors + check(expected, tb.seen), injected)

    mac_results, mac_results_catches_injected_fault = checker_tests(
        __name__, "mac_results",
        "Every completed fold, its fold index and its clock against the model.",
        lambda dut: run_case(dut, False), lambda dut: run_case(dut, True))


# ----------------------------------------------------------------------------- pytest runner

# (pe, p, w_bits, a_bits, folds, narrow[, style]): MULT_STYLE, "inferred" if not given
# ("ecp5": ECP5 multiplier blocks, with the model tb/hdl/MULT18X18D.vhd)
CASES = [
    (1, 1, 8, 8, 1, False),
    (4, 1, 8, 8, 3, False),
    (3, 4, 8, 8, 2, False),     # adder tree over 4 lanes
    (2, 5, 4, 8, 2, False),     # 5 lanes: an odd tree
    (5, 8, 2, 2, 1, False),
    (2, 3, 16, 16, 3, False),   # wide: numeric_std body
    (3, 1, 8, 8, 2, True),      # products wider than the accumulator
    (2, 4, 8, 8, 2, True),      # lane sums wider than the accumulator
    (2, 2, 16, 16, 2, True),    # the same in the numeric_std body
    (2, 1, 15, 15, 1, False),   # 31-bit products, integer body at its limit
    (3, 1, 8, 8, 2, False, "lut"),   # products from adders, one stage more
    (2, 4, 8, 8, 2, True, "lut"),
    (2, 3, 4, 7, 2, False, "lut"),   # odd activation width
    (1, 2, 6, 5, 1, False, "lut"),   # 5 bits: an odd level inside the product tree
    (2, 1, 8, 2, 1, False, "lut"),   # 2 bits: one level, the addend stage right after it
    (4, 1, 8, 8, 3, False, "ecp5"),
    (3, 4, 8, 8, 2, True, "ecp5"),   # lane sums wider than the accumulator
    (1, 1, 15, 15, 1, False, "ecp5"),  # the widest operands of the integer MAC
    (2, 1, 18, 11, 1, False, "ecp5"),  # the block's widest signed port
]


def _style(c: tuple) -> str:
    return c[6] if len(c) > 6 else "inferred"


def _id(c: tuple) -> str:
    pe, p, w, a, folds, narrow = c[:6]
    style = _style(c)
    return (f"pe{pe}-p{p}-w{w}a{a}-f{folds}" + ("-narrow" if narrow else "")
            + ("" if style == "inferred" else f"-{style}"))


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_mac_array(case: tuple, request: pytest.FixtureRequest) -> None:
    """mac_array against the model for one parameter set."""
    from mnist_fpga.paths import BUILD
    from mnist_fpga.tb.common import rtl_sources, run_sim, simulator_missing
    from mnist_fpga.tb.unitwrap import write_wrapper

    if reason := simulator_missing():
        pytest.skip(reason)
    pe, p, w_bits, a_bits, folds, narrow = case[:6]
    style = _style(case)
    seed = int(os.environ.get("TB_SEED", zlib.crc32(_id(case).encode()) & 0xFFFF))
    print(f"seed {seed}")
    stim = make_stimulus(pe, p, w_bits, a_bits, folds, narrow, seed)
    acc_bits = stim["acc_bits"]
    if narrow:  # the point of these cases: sums wider than the accumulator that must fit
        widest = max(abs(lane_sum(b["w"], b["x"], e, p)) for b in stim["schedule"] if b
                     for e in range(pe))
        assert widest >= 1 << (acc_bits - 1), (widest, acc_bits)
    fold_bits = max(clog2(folds), 1)
    build = BUILD / "tb" / request.node.name.replace("[", "-").replace("]", "")
    build.mkdir(parents=True, exist_ok=True)
    (build / "stim.json").write_text(json.dumps(stim))
    generics = {"PE": pe, "P": p, "W_BITS": w_bits, "A_BITS": a_bits, "ACC_BITS": acc_bits,
                "FOLDS": folds, "FOLD_BITS": fold_bits, "MULT_STYLE": f'"{style}"'}
    ports = [("clk", "in", None), ("rst", "in", None), ("x_valid", "in", None),
             ("x_first", "in", None), ("x_last", "in", None), ("x_fold", "in", fold_bits),
             ("x_data", "in", p * a_bits), ("w_data", "in", pe * p * w_bits),
             ("bias", "in", folds * pe * acc_bits), ("res_valid", "out", None),
             ("res_fold", "out", fold_bits), ("res_data", "out", pe * acc_bits)]
    wrap = write_wrapper(build, "mac_array", generics, ports, _id(case))
    env = {"MAC_STIM": build / "stim.json", "MAC_PE": pe, "MAC_P": p, "MAC_W_BITS": w_bits,
           "MAC_A_BITS": a_bits, "MAC_SEED": seed,
           "MAC_LAT": mac_latency(style, p, a_bits)}
    run_sim(toplevel="mac_array_tb", module="test_mac_array",
            vhdl_sources=[*([str(ROOT / "tb" / "hdl" / "MULT18X18D.vhd")] if style == "ecp5"
                            else []), *rtl_sources(*MAC_RTL), str(wrap)],
            build_dir=build / "sim",
            extra_env=env, bench_dir=HERE)
