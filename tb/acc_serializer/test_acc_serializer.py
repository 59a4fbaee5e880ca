"""acc_serializer bench: fold results in, acc_flat and the Q-per-clock stream out.

The driver plays the MAC array: per image, folds 0 .. FOLDS-1 of PE random
ACC_BITS-wide accumulators (0 for neurons past N_OUT, as the zero weights and
biases give), each a one-clock res_valid with res_data held until the next one. Like
the input stage it never completes a fold while fin_block is '1' or within two clocks
of the previous one. The sink applies random out_ready back-pressure in runs (heavy
runs make the hand-over wait for the holding register). The model: image i's
accumulators are its folds' values in order, the first N_OUT of them. The checker
compares every acc_valid strobe's acc_flat, every out_* transfer (lanes past N_OUT
are 0, out_last on the last beat), and that a stalled output holds still.
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
    from cocotb.triggers import ReadOnly, RisingEdge, with_timeout
except ImportError:  # pragma: no cover - pytest collection without cocotb
    cocotb = None

from mnist_fpga.tb.common import decode_flat
from mnist_fpga.tb.selftest import checker_tests, inject, mismatch, verdict

HERE = Path(__file__).resolve().parent
CLK_NS = 10


def make_images(n_out: int, pe: int, acc_bits: int, count: int, seed: int) -> list[list[int]]:
    """Per image FOLDS*PE accumulators (extremes included), 0 past N_OUT."""
    rng = random.Random(seed)
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    folds = -(-n_out // pe)
    return [[rng.choice((lo, hi, 0, rng.randint(lo, hi))) if n < n_out else 0
             for n in range(folds * pe)] for _ in range(count)]


def expected_beats(images: list[list[int]], n_out: int, q: int) -> list[tuple[tuple, int]]:
    """(lanes, last) of every output transfer."""
    beats = -(-n_out // q)
    out = []
    for img in images:
        vals = img[:n_out] + [0] * (beats * q - n_out)
        out += [(tuple(vals[b * q:(b + 1) * q]), int(b == beats - 1)) for b in range(beats)]
    return out


if cocotb is not None:

    def _env(name: str) -> int:
        return int(os.environ[name])

    class SerTB:
        """Clock, reset and the fold-result driver."""

        def __init__(self, dut, seed: int) -> None:
            self.dut = dut
            self.rng = random.Random(seed)
            self.pe, self.acc_bits = _env("SER_PE"), _env("SER_ACC_BITS")
            dut.rst.value = 1
            dut.res_valid.value = 0
            dut.res_fold.value = 0
            dut.res_data.value = 0
            dut.out_ready.value = 0
            Clock(dut.clk, CLK_NS, unit="ns").start()

        async def reset(self) -> None:
            for _ in range(3):
                await RisingEdge(self.dut.clk)
            self.dut.rst.value = 0
            await RisingEdge(self.dut.clk)

        async def send(self, images: list[list[int]]) -> None:
            dut, pe, mask = self.dut, self.pe, (1 << self.acc_bits) - 1
            for img in images:
                for f in range(len(img) // pe):
                    for _ in range(self.rng.choice((0, 0, 1, 3, 8))):
                        await RisingEdge(dut.clk)
                    while True:  # the input stage's rule: no completed fold while blocked
                        await ReadOnly()
                        if dut.fin_block.value == 0:
                            break
                        await RisingEdge(dut.clk)
                    await RisingEdge(dut.clk)
                    dut.res_valid.value = 1
                    dut.res_fold.value = f
                    dut.res_data.value = sum((v & mask) << (e * self.acc_bits)
                                             for e, v in enumerate(img[f * pe:(f + 1) * pe]))
                    await RisingEdge(dut.clk)
                    dut.res_valid.value = 0
                    await RisingEdge(dut.clk)  # fin_block shows this fold from the next clock

    class AccMonitor:
        def __init__(self, dut, n_out: int, bits: int) -> None:
            self.dut, self.n, self.bits = dut, n_out, bits
            self.seen: list[list[int]] = []
            cocotb.start_soon(self._run())

        async def _run(self) -> None:
            while True:
                await RisingEdge(self.dut.clk)
                await ReadOnly()
                if self.dut.acc_valid.value == 1:
                    self.seen.append(decode_flat(self.dut.acc_flat.value.to_unsigned(),
                                                 self.n, self.bits))

    class OutSink:
        """Random out_ready in runs; collects (lanes, last); a stalled output must hold."""

        def __init__(self, dut, q: int, bits: int, seed: int) -> None:
            self.dut, self.q, self.bits = dut, q, bits
            self.rng = random.Random(seed)
            self.got: list[tuple[tuple, int]] = []
            self.errors: list[str] = []
            self.stalls = 0
            cocotb.start_soon(self._run())

        async def _run(self) -> None:
            dut, held, cycle = self.dut, None, 0
            while True:
                ready = self.rng.random() < (1.0, 0.5, 0.05)[(cycle // 24) % 3]
                dut.out_ready.value = int(ready)
                await ReadOnly()
                now = None
                if dut.out_valid.value == 1:
                    now = (tuple(decode_flat(dut.out_data.value.to_unsigned(), self.q,
                                             self.bits)), int(dut.out_last.value))
                if held is not None and now != held:
                    self.errors.append(f"output {len(self.got)} changed while stalled")
                if now is not None and ready:
                    self.got.append(now)
                held = now if now is not None and not ready else None
                self.stalls += held is not None
                await RisingEdge(dut.clk)
                cycle += 1

    async def run_case(dut, corrupt: bool) -> None:
        n_out, pe, q, bits = _env("SER_N_OUT"), _env("SER_PE"), _env("SER_Q"), _env(
            "SER_ACC_BITS")
        seed = _env("SER_SEED")
        images = make_images(n_out, pe, bits, _env("SER_IMAGES"), seed)
        exp_beats = expected_beats(images, n_out, q)
        exp_flat = [img[:n_out] for img in images]
        injected = None
        if corrupt:  # self-test of the checker: one wrong expected accumulator
            injected = inject(exp_flat[-1], -1, exp_flat[-1][-1] ^ 1,
                              f"image {len(images) - 1} neuron {n_out - 1}")
        tb = SerTB(dut, seed)
        await tb.reset()
        accs = AccMonitor(dut, n_out, bits)
        sink = OutSink(dut, q, bits, seed + 1)
        budget = (len(images) * (len(images[0]) // pe * 20 + len(exp_beats) * 40) + 500)
        await with_timeout(tb.send(images), budget * CLK_NS, "ns")

        async def drained() -> None:
            while len(sink.got) < len(exp_beats):
                await RisingEdge(dut.clk)
        await with_timeout(drained(), budget * CLK_NS, "ns")
        for _ in range(10):
            await RisingEdge(dut.clk)
        errors = list(sink.errors)
        if len(accs.seen) != len(exp_flat):
            errors.append(f"{len(accs.seen)} acc_valid strobes for {len(exp_flat)} images")
        for i, (exp, got) in enumerate(zip(exp_flat, accs.seen, strict=False)):
            errors += [mismatch(f"image {i} neuron {n} acc_flat", e, g)
                       for n, (e, g) in enumerate(zip(exp, got, strict=True)) if e != g]
        if len(sink.got) != len(exp_beats):
            errors.append(f"{len(sink.got)} output transfers for {len(exp_beats)}")
        for k, ((exp, e_last), (got, g_last)) in enumerate(zip(exp_beats, sink.got,
                                                                strict=False)):
            errors += [mismatch(f"transfer {k} lane {lane} out_data", e, g)
                       for lane, (e, g) in enumerate(zip(exp, got, strict=True)) if e != g]
            if e_last != g_last:
                errors.append(mismatch(f"transfer {k} out_last", e_last, g_last))
        if not corrupt and not sink.stalls:
            errors.append("back-pressure not exercised")
        verdict(errors, injected)

    serializer_images, serializer_images_catches_injected_fault = checker_tests(
        __name__, "serializer_images",
        "Fold results in, every acc_flat strobe and every output transfer checked.",
        lambda dut: run_case(dut, False), lambda dut: run_case(dut, True))


# ----------------------------------------------------------------------------- pytest runner

# (n_out, pe, q, acc_bits, group): group = beats per group of the output multiplexer
CASES = [
    (1, 1, 1, 8, 16),
    (5, 5, 1, 12, 16),
    (5, 5, 2, 12, 16),     # Q not dividing N_OUT
    (10, 5, 3, 20, 16),    # 2 folds
    (16, 3, 4, 9, 16),     # 6 folds, the last one with 1 neuron
    (7, 2, 8, 40, 16),     # Q > N_OUT, accumulators wider than 31 bits
    (12, 1, 5, 5, 16),     # one neuron per fold
    (40, 16, 1, 10, 16),   # 3 groups of the default 16 beats, the last of 8
    (37, 37, 2, 12, 2),    # 19 beats in groups of 2, the last of 1
    (24, 5, 1, 11, 8),     # 3 full groups, 5 folds
    (9, 9, 1, 7, 1),       # groups of one beat
]


def _id(c: tuple) -> str:
    n_out, pe, q, bits, group = c
    return f"n{n_out}-pe{pe}-q{q}-acc{bits}-g{group}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_acc_serializer(case: tuple, request: pytest.FixtureRequest) -> None:
    """acc_serializer against the model for one parameter set."""
    from mnist_fpga.gen.hdl.memories import clog2
    from mnist_fpga.paths import BUILD
    from mnist_fpga.tb.common import rtl_sources, run_sim, simulator_missing
    from mnist_fpga.tb.unitwrap import write_wrapper

    if reason := simulator_missing():
        pytest.skip(reason)
    n_out, pe, q, bits, group = case
    seed = int(os.environ.get("TB_SEED", zlib.crc32(_id(case).encode()) & 0xFFFF))
    print(f"seed {seed}")
    folds = -(-n_out // pe)
    fold_bits = max(clog2(folds), 1)
    build = BUILD / "tb" / request.node.name.replace("[", "-").replace("]", "")
    generics = {"N_OUT": n_out, "PE": pe, "FOLDS": folds, "FOLD_BITS": fold_bits,
                "ACC_BITS": bits, "Q": q, "MUX_GROUP": group}
    ports = [("clk", "in", None), ("rst", "in", None), ("res_valid", "in", None),
             ("res_fold", "in", fold_bits), ("res_data", "in", pe * bits),
             ("fin_block", "out", None), ("acc_flat", "out", n_out * bits),
             ("acc_valid", "out", None), ("out_valid", "out", None), ("out_ready", "in", None),
             ("out_data", "out", q * bits), ("out_last", "out", None)]
    wrap = write_wrapper(build, "acc_serializer", generics, ports, _id(case))
    env = {"SER_N_OUT": n_out, "SER_PE": pe, "SER_Q": q, "SER_ACC_BITS": bits,
           "SER_SEED": seed, "SER_IMAGES": 12}
    run_sim(toplevel="acc_serializer_tb", module="test_acc_serializer",
            vhdl_sources=[*rtl_sources("acc_serializer"), str(wrap)], build_dir=build / "sim",
            extra_env=env, bench_dir=HERE)
