"""layer_input bench: the beats issued to the MAC array, fold by fold, against a model.

Random images stream in (random gaps, junk on in_data while in_valid is '0') while
fin_block toggles in random runs. The model (``expected_beats``): image by image,
fold f = 0 .. FOLDS-1, beat j = 0 .. BEATS-1 with x_first = (j == 0), x_last =
(j == BEATS-1), x_fold = f, x_data = the image's beat j, and the ROM address f*BEATS + j
in the clock before the beat shows on x_* (the ROM reads synchronously). The
checker also enforces the hand-shake rules of the result stage: a fold-completing
beat is never issued while fin_block is '1', nor within GUARD clocks of the previous
one; and the replayed folds run at one beat per clock unless such a rule holds them.
``TB_SEED`` overrides the fixed per-case seed.
"""

from __future__ import annotations

import random

import pytest

from mnist_fpga.tb.bench import CLK_NS, HAVE_COCOTB, UnitRun, params
from mnist_fpga.tb.selftest import Fault, checker_tests, mismatch, verdict

ISSUE_TO_X = 2  # clocks from a beat's issue (the edge that takes it) to x_valid
FIELDS = ("addr", "first", "last", "fold", "data")  # of a beat, as expected_beats gives them


def make_images(beats: int, p: int, a_bits: int, count: int, seed: int) -> list[list[int]]:
    """``count`` images of ``beats`` beats of ``p`` lanes (some all-zero beats)."""
    rng = random.Random(seed)
    return [[0 if rng.random() < 0.2 else rng.getrandbits(p * a_bits) for _ in range(beats)]
            for _ in range(count)]


def expected_beats(images: list[list[int]], folds: int) -> list[tuple[int, int, int, int, int]]:
    """(address, first, last, fold, data) of every issued beat, in order."""
    out = []
    for img in images:
        beats = len(img)
        for f in range(folds):
            for j, x in enumerate(img):
                out.append((f * beats + j, int(j == 0), int(j == beats - 1), f, x))
    return out


if HAVE_COCOTB:
    import cocotb
    from cocotb.triggers import ReadOnly, RisingEdge, with_timeout

    from mnist_fpga.tb.bench import TB, StreamDriver

    class InputTB(TB):
        """Clock, reset, the in_* driver and the fin_block driver."""

        def __init__(self, dut, seed: int) -> None:
            super().__init__(dut, seed, ("in_valid", "in_data", "fin_block"))
            self.width = params()["p"] * params()["a_bits"]
            self.source = StreamDriver(dut, self.rng, self._junk)

        def _junk(self) -> None:
            """Random data while in_valid is '0': must be ignored."""
            self.dut.in_data.value = self.rng.getrandbits(self.width)

        async def send(self, beats: list[int]) -> None:
            await self.source.send(beats, lambda _: 0.3)

        async def block(self) -> None:
            """fin_block in runs: mostly free, sometimes held for a while."""
            while True:
                run = self.rng.choice((1, 2, 5, 20))
                val = int(self.rng.random() < 0.3)
                for _ in range(run):
                    self.dut.fin_block.value = val
                    await RisingEdge(self.dut.clk)

    class BeatMonitor:
        """Every clock: x_* when x_valid, with rom_addr, rom_en and fin_block of the clock
        before; and the clocks in which rom_en was '1'."""

        def __init__(self, dut) -> None:
            self.dut = dut
            self.beats: list[tuple[int, int, int, int, int]] = []
            self.ens: list[int] = []          # rom_en in the clock each beat was issued
            self.en_clocks = 0                # clocks with rom_en = '1'
            self.clocks: list[int] = []       # clock of each beat on x_*
            self.blocked_at: set[int] = set()  # clocks with fin_block = '1'
            cocotb.start_soon(self._run())

        async def _run(self) -> None:
            dut, clk, addr, en = self.dut, 0, None, 0
            while True:
                await ReadOnly()
                if dut.x_valid.value == 1:
                    self.beats.append((addr, int(dut.x_first.value), int(dut.x_last.value),
                                       int(dut.x_fold.value.to_unsigned()),
                                       int(dut.x_data.value.to_unsigned())))
                    self.ens.append(en)
                    self.clocks.append(clk)
                if dut.fin_block.value == 1:
                    self.blocked_at.add(clk)
                addr = int(dut.rom_addr.value.to_unsigned())
                en = 1 if dut.rom_en.value == 1 else 0  # '0' for 'U'/'X' too: then a miss
                self.en_clocks += en
                await RisingEdge(dut.clk)
                clk += 1

    def check(expected, mon: BeatMonitor, guard: int, beats: int) -> list[str]:
        errors = []
        got = mon.beats
        if len(got) != len(expected):
            errors.append(f"expected {len(expected)} beats, got {len(got)}")
        for i, (e, g) in enumerate(zip(expected, got, strict=False)):
            errors += [mismatch(f"beat {i} {name}", a, b)
                       for name, a, b in zip(FIELDS, e, g, strict=True) if a != b]
        last_fin = None
        for i, (g, c) in enumerate(zip(got, mon.clocks, strict=False)):
            if g[2]:  # a fold-completing beat, issued in clock c-ISSUE_TO_X
                if c - ISSUE_TO_X in mon.blocked_at:
                    errors.append(f"beat {i}: completes a fold although fin_block was '1'")
                if last_fin is not None and c - last_fin <= guard:
                    errors.append(f"beat {i}: completes a fold {c - last_fin} clocks after "
                                  f"the previous one (GUARD {guard})")
                last_fin = c
            elif g[3] > 0 and i > 0 and g[1] == 0 and c != mon.clocks[i - 1] + 1:
                errors.append(f"beat {i}: a replayed beat that is not back to back")
        # The ROM read enable: every beat whose weights the MAC uses (non-zero inputs, or a
        # replayed fold) reads its word; a streamed all-zero beat and a clock without an
        # issue do not (what makes the enable worth having).
        for i, (g, en) in enumerate(zip(got, mon.ens, strict=False)):
            want = int(g[4] != 0 or g[3] > 0)
            if en != want:
                errors.append(f"beat {i} (fold {g[3]}, data {g[4]:#x}): rom_en {en}, "
                              f"expected {want}")
        reads = sum(int(g[4] != 0 or g[3] > 0) for g in got)
        if mon.en_clocks != reads:
            errors.append(f"rom_en was '1' in {mon.en_clocks} clocks for {reads} reads")
        return errors

    async def run_case(dut, fault: bool) -> None:
        prm = params()
        beats = -(-prm["n_in"] // prm["p"])
        folds, guard, seed = prm["folds"], prm["guard"], prm["seed"]
        images = make_images(beats, prm["p"], prm["a_bits"], prm["images"], seed)
        expected = expected_beats(images, folds)
        injected = None
        if fault:  # self-test of the checker: one wrong expected input beat
            a, f, la, fo, x = expected[-1]
            expected[-1] = (a, f, la, fo, x ^ 1)
            injected = Fault(f"beat {len(expected) - 1} data", x ^ 1, x)
        tb = InputTB(dut, seed)
        await tb.reset()
        mon = BeatMonitor(dut)
        cocotb.start_soon(tb.block())
        n = len(expected)
        budget = (n * 2 + len(images) * beats * 3 + n // max(beats, 1) * (guard + 40) + 200)
        await with_timeout(tb.send([x for img in images for x in img]), budget * CLK_NS, "ns")

        async def drained() -> None:
            while len(mon.beats) < n:
                await RisingEdge(dut.clk)
        await with_timeout(drained(), budget * CLK_NS, "ns")
        await tb.clocks(guard + 5)  # a stray beat would show up here
        verdict(check(expected, mon, guard, beats), injected)

    input_beats, input_beats_catches_injected_fault = checker_tests(
        __name__, "input_beats",
        "Every issued beat, its address and flags against the model; hand-shake rules.", run_case)


# ----------------------------------------------------------------------------- pytest runner

# (n_in, p, a_bits, folds, guard)
CASES = [
    (1, 1, 8, 1, 5),
    (7, 1, 8, 1, 5),
    (7, 3, 8, 1, 6),     # P not dividing N_IN
    (10, 2, 8, 3, 7),    # 3 folds replayed from the RAM
    (13, 4, 4, 2, 7),
    (2, 1, 8, 4, 5),     # folds shorter than GUARD: the guard throttles
    (1, 1, 2, 3, 5),     # one beat per fold
]


def _id(c: tuple) -> str:
    n_in, p, a, folds, guard = c
    return f"n{n_in}-p{p}-a{a}-f{folds}-g{guard}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_layer_input(case: tuple, request: pytest.FixtureRequest) -> None:
    """layer_input against the model for one parameter set."""
    from mnist_fpga.gen.hdl.memories import clog2
    from mnist_fpga.tb.common import rtl_sources

    run = UnitRun(request, seed_key=_id(case))
    n_in, p, a_bits, folds, guard = case
    beats = -(-n_in // p)
    fold_bits, addr_bits = clog2(folds), clog2(folds * beats)
    generics = {"N_IN": n_in, "P": p, "A_BITS": a_bits, "FOLDS": folds,
                "FOLD_BITS": fold_bits, "ADDR_BITS": addr_bits, "GUARD": guard}
    ports = [("in_valid", "in", None), ("in_ready", "out", None),
             ("in_data", "in", p * a_bits), ("fin_block", "in", None),
             ("rom_addr", "out", addr_bits), ("rom_en", "out", None),
             ("x_valid", "out", None), ("x_first", "out", None), ("x_last", "out", None),
             ("x_fold", "out", fold_bits), ("x_data", "out", p * a_bits)]
    wrap = run.wrapper("layer_input", generics, ports)
    run.run("layer_input_tb", [*rtl_sources("layer_input"), wrap],
            {"n_in": n_in, "p": p, "a_bits": a_bits, "folds": folds, "guard": guard,
             "images": max(4, 60 // (beats * folds))})
