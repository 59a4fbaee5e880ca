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

import random

import pytest

from mnist_fpga.tb.bench import CLK_NS, HAVE_COCOTB, UnitRun, params, phases
from mnist_fpga.tb.common import decode_flat
from mnist_fpga.tb.selftest import checker_tests, inject, mismatch, verdict


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


def check(exp_flat: list[list[int]], exp_beats: list[tuple[tuple, int]],
          accs: list[list[int]], outs: list[tuple[tuple, int]]) -> list[str]:
    """Every acc_valid strobe and every output transfer against the model, in order."""
    errors = []
    if len(accs) != len(exp_flat):
        errors.append(f"{len(accs)} acc_valid strobes for {len(exp_flat)} images")
    for i, (exp, got) in enumerate(zip(exp_flat, accs, strict=False)):
        errors += [mismatch(f"image {i} neuron {n} acc_flat", e, g)
                   for n, (e, g) in enumerate(zip(exp, got, strict=True)) if e != g]
    if len(outs) != len(exp_beats):
        errors.append(f"{len(outs)} output transfers for {len(exp_beats)}")
    for k, ((exp, e_last), (got, g_last)) in enumerate(zip(exp_beats, outs, strict=False)):
        errors += [mismatch(f"transfer {k} lane {lane} out_data", e, g)
                   for lane, (e, g) in enumerate(zip(exp, got, strict=True)) if e != g]
        if e_last != g_last:
            errors.append(mismatch(f"transfer {k} out_last", e_last, g_last))
    return errors


if HAVE_COCOTB:
    from cocotb.triggers import ReadOnly, RisingEdge, with_timeout

    from mnist_fpga.tb.bench import TB, StreamSink, StrobeMonitor

    class SerTB(TB):
        """Clock, reset and the fold-result driver (the MAC array's side)."""

        def __init__(self, dut, seed: int) -> None:
            super().__init__(dut, seed, ("res_valid", "res_fold", "res_data", "out_ready"))
            self.pe, self.acc_bits = params()["pe"], params()["acc_bits"]

        async def send(self, images: list[list[int]]) -> None:
            dut, pe, mask = self.dut, self.pe, (1 << self.acc_bits) - 1
            for img in images:
                for f in range(len(img) // pe):
                    await self.clocks(self.rng.choice((0, 0, 1, 3, 8)))
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

    async def run_case(dut, fault: bool) -> None:
        prm = params()
        n_out, pe, q, bits, seed = (prm[k] for k in ("n_out", "pe", "q", "acc_bits", "seed"))
        images = make_images(n_out, pe, bits, prm["images"], seed)
        exp_beats = expected_beats(images, n_out, q)
        exp_flat = [img[:n_out] for img in images]
        injected = None
        if fault:  # self-test of the checker: one wrong expected accumulator
            injected = inject(exp_flat[-1], -1, exp_flat[-1][-1] ^ 1,
                              f"image {len(images) - 1} neuron {n_out - 1}")
        tb = SerTB(dut, seed)
        await tb.reset()
        accs = StrobeMonitor(dut.clk, dut.acc_valid,
                             lambda: decode_flat(dut.acc_flat.value.to_unsigned(), n_out, bits))
        sink = StreamSink(dut, seed + 1, lambda: (
            tuple(decode_flat(dut.out_data.value.to_unsigned(), q, bits)),
            int(dut.out_last.value)), phases((1.0, 0.5, 0.05), 24))
        budget = (len(images) * (len(images[0]) // pe * 20 + len(exp_beats) * 40) + 500)
        await with_timeout(tb.send(images), budget * CLK_NS, "ns")
        await with_timeout(sink.wait_for(len(exp_beats)), budget * CLK_NS, "ns")
        await tb.clocks(10)
        errors = sink.errors + check(exp_flat, exp_beats, accs.seen, sink.got)
        if not fault and not sink.stalls:
            errors.append("back-pressure not exercised")
        verdict(errors, injected)

    serializer_images, serializer_images_catches_injected_fault = checker_tests(
        __name__, "serializer_images",
        "Fold results in, every acc_flat strobe and every output transfer checked.", run_case)


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
    from mnist_fpga.tb.common import rtl_sources

    run = UnitRun(request, seed_key=_id(case))
    n_out, pe, q, bits, group = case
    folds = -(-n_out // pe)
    fold_bits = clog2(folds)
    generics = {"N_OUT": n_out, "PE": pe, "FOLDS": folds, "FOLD_BITS": fold_bits,
                "ACC_BITS": bits, "Q": q, "MUX_GROUP": group}
    ports = [("res_valid", "in", None), ("res_fold", "in", fold_bits),
             ("res_data", "in", pe * bits), ("fin_block", "out", None),
             ("acc_flat", "out", n_out * bits), ("acc_valid", "out", None),
             ("out_valid", "out", None), ("out_ready", "in", None),
             ("out_data", "out", q * bits), ("out_last", "out", None)]
    wrap = run.wrapper("acc_serializer", generics, ports)
    run.run("acc_serializer_tb", [*rtl_sources("acc_serializer"), wrap],
            {"n_out": n_out, "pe": pe, "q": q, "acc_bits": bits, "images": 12})
