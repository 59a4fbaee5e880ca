"""mac_acc bench: the accumulators and the result register against a Python model.

Every clock drives a random ``en`` with random ``first``, ``last`` and an in-range fold,
and PE addends of IN_BITS signed bits chosen so that every accumulator stays inside
ACC_BITS (extremes included, and addends wider than the accumulator where IN_BITS >
ACC_BITS: exact sums that only fit modulo the accumulator's width on their way); junk
on every input while ``en`` is '0' and on the port of the other arithmetic (``add_v``
when INT_MATH, ``add_i`` otherwise). The model: at ``en``, acc(e) := (first ?
bias(fold*PE + e) : acc(e)) + add(e), and with ``last`` the new values, with the fold,
are the result of the next clock (a one-clock ``res_valid``); ``res_data`` holds until
the next result. The checker compares ``res_valid`` and, every clock, ``res_data`` and
(with ``res_valid``) ``res_fold``. ``TB_SEED`` overrides the fixed per-case seed.
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

from mnist_fpga.tb.common import decode_flat
from mnist_fpga.tb.selftest import Fault, checker_tests, mismatch, verdict

HERE = Path(__file__).resolve().parent
CLK_NS = 10
CYCLES = 400


def pack(values: list[int], bits: int) -> int:
    mask = (1 << bits) - 1
    return sum((v & mask) << (i * bits) for i, v in enumerate(values))


if cocotb is not None:

    def _env(name: str) -> int:
        return int(os.environ[name])

    async def run(dut, fault: bool) -> None:
        pe, acc_bits, in_bits, folds = (_env(k) for k in ("MA_PE", "MA_ACC", "MA_IN", "MA_F"))
        int_math = _env("MA_INT") == 1
        rng = random.Random(_env("MA_SEED") + fault)
        lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
        in_lo, in_hi = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
        bias = [rng.choice((lo, hi, rng.randint(lo, hi))) for _ in range(folds * pe)]
        dut.bias.value = pack(bias, acc_bits)
        drive, junk = (dut.add_i, dut.add_v) if int_math else (dut.add_v, dut.add_i)
        Clock(dut.clk, CLK_NS, unit="ns").start()
        acc: list[int] | None = None  # unknown until a fold's first beat
        res: list[int] | None = None  # res_data: unknown until the first result
        res_valid, res_fold = False, 0
        errors: list[str] = []
        injected = None
        n_res = 0
        for cycle in range(CYCLES):
            rst = cycle < 2 or rng.random() < 0.01
            en = not rst and rng.random() < 0.7
            first = en and (acc is None or rng.random() < 0.3)
            last = rng.random() < 0.3
            fold = rng.randrange(folds) if en else rng.getrandbits(len(dut.fold))
            adds = []
            for e in range(pe):
                base = bias[fold * pe + e] if first else (acc[e] if acc else 0)
                a, b = max(in_lo, lo - base), min(in_hi, hi - base)
                adds.append(rng.choice((a, b, 0, rng.randint(a, b))))
            dut.rst.value, dut.en.value = int(rst), int(en)
            dut.first.value = int(first) if en else rng.getrandbits(1)
            dut.last.value = int(last)
            dut.fold.value = fold
            drive.value = pack(adds, in_bits) if en else rng.getrandbits(len(drive))
            junk.value = rng.getrandbits(len(junk))
            await ReadOnly()
            exp_data = list(res) if res is not None else None
            if fault and res_valid and n_res == 3:  # self-test: one wrong expected result
                injected = Fault(f"clock {cycle} neuron {pe - 1}", exp_data[-1] + 1,
                                 exp_data[-1])
                exp_data[-1] += 1
            # clock 0 shows what the previous test left; the reset defines res_valid
            if cycle > 0 and str(dut.res_valid.value) != str(int(res_valid)):
                errors.append(mismatch(f"clock {cycle} res_valid", int(res_valid),
                                       dut.res_valid.value))
            if exp_data is not None:
                v = dut.res_data.value
                got = decode_flat(v.to_unsigned(), pe, acc_bits) if v.is_resolvable else None
                for e, x in enumerate(exp_data):
                    if got is None or got[e] != x:
                        errors.append(mismatch(f"clock {cycle} neuron {e}", x,
                                               got[e] if got else str(v)))
            if res_valid and int(dut.res_fold.value) != res_fold:
                errors.append(mismatch(f"clock {cycle} res_fold", res_fold,
                                       int(dut.res_fold.value)))
            await RisingEdge(dut.clk)
            # the model, edge by edge
            n_res += res_valid
            res_valid = False
            if en:
                acc = [(bias[fold * pe + e] if first else acc[e]) + adds[e] for e in range(pe)]
                assert all(lo <= v <= hi for v in acc)  # the stimulus keeps them in range
                if last:
                    res, res_valid, res_fold = list(acc), True, fold
        if n_res < 10:
            errors.append(f"only {n_res} results: the stimulus is too thin")
        verdict(errors, injected)

    mac_acc_random, mac_acc_random_catches_injected_fault = checker_tests(
        __name__, "mac_acc_random",
        "Random enables, folds, firsts, lasts and addends; results checked every clock.",
        lambda dut: run(dut, False), lambda dut: run(dut, True))


# ----------------------------------------------------------------------------- pytest runner

# (PE, ACC_BITS, IN_BITS, FOLDS, INT_MATH)
CASES = [
    (3, 24, 17, 1, True),
    (2, 16, 20, 3, True),    # addends wider than the accumulators
    (2, 31, 31, 2, True),    # the integers' limit
    (2, 40, 33, 2, False),   # int16
    (3, 12, 18, 4, False),   # numeric_std, addends wider than the accumulators
]


def _id(c: tuple) -> str:
    pe, acc, in_bits, folds, int_math = c
    return f"pe{pe}-acc{acc}-in{in_bits}-f{folds}" + ("" if int_math else "-wide")


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_mac_acc(case: tuple, request: pytest.FixtureRequest) -> None:
    """mac_acc against the model for one parameter set."""
    from mnist_fpga.gen.hdl.mlp_common import clog2
    from mnist_fpga.paths import BUILD
    from mnist_fpga.tb.common import rtl_sources, run_sim, simulator_missing
    from mnist_fpga.tb.unitwrap import write_wrapper

    if reason := simulator_missing():
        pytest.skip(reason)
    pe, acc_bits, in_bits, folds, int_math = case
    fold_bits = max(clog2(folds), 1)
    tag = request.node.name.replace("[", "-").replace("]", "")
    build = BUILD / "tb" / tag
    seed = int(os.environ.get("TB_SEED", zlib.crc32(_id(case).encode()) & 0xFFFF))
    print(f"seed {seed} (TB_SEED={seed} replays)")
    generics = {"PE": pe, "ACC_BITS": acc_bits, "IN_BITS": in_bits, "FOLDS": folds,
                "FOLD_BITS": fold_bits, "INT_MATH": str(int_math).lower()}
    ib = min(in_bits, 31)  # integer addends: junk of at most 31 bits when they are wider
    ports = [("clk", "in", None), ("rst", "in", None), ("en", "in", None),
             ("first", "in", None), ("last", "in", None), ("fold", "in", fold_bits),
             ("add_i", "in", pe * ib), ("add_v", "in", pe * in_bits),
             ("bias", "in", folds * pe * acc_bits), ("res_valid", "out", None),
             ("res_fold", "out", fold_bits), ("res_data", "out", pe * acc_bits)]
    wrap = write_wrapper(build, "mac_acc", generics, ports, _id(case),
                         int_ports={"add_i": (pe, ib)})
    run_sim(toplevel="mac_acc_tb", module="test_mac_acc",
            vhdl_sources=[*rtl_sources("mlp_common", "mac_acc"), str(wrap)],
            build_dir=build / "sim",
            extra_env={"MA_PE": pe, "MA_ACC": acc_bits, "MA_IN": in_bits, "MA_F": folds,
                       "MA_INT": int(int_math), "MA_SEED": seed},
            bench_dir=HERE)
