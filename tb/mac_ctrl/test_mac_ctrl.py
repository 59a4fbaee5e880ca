"""mac_ctrl bench: the control pipeline against a timeline model, every output every clock.

The stimulus is folds of 1..4 beats (x_first on the first, x_last on the last, x_fold
driven only right on the first beat and junk on the others: it must be latched there),
all-zero beats, gaps with junk on every input, and one reset in the middle. The model
(:func:`expected`) does not keep the pipeline's registers: it reads the beat list. A
beat driven in clock c is at stage s in clock c + 2 + s, so in clock t

- ``en(s)`` = beat t-2-s is valid and has a non-zero input (``live``);
- ``x0`` = the input of the last live beat driven up to clock t-2;
- ``acc_en`` = beat t-2-STAGES is valid and live, first or last; then ``acc_first``,
  ``acc_last`` and ``acc_fold`` are its own (its fold: that of its fold's first beat);
- ``clr`` = beat t-1-STAGES (entering stage STAGES at the next edge) is a valid zero
  beat that starts or ends a fold, and the addends are not 0 already: they are 0 after
  a clear and until a live beat enters stage STAGES, and unknown after a reset.

A reset drops every beat driven up to its clock from the pipeline (x0 keeps its value,
and still takes the beat that was at stage -1). ``TB_SEED`` overrides the fixed seed.
"""

from __future__ import annotations

import os
import random
import zlib
from dataclasses import dataclass
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
CLK_NS = 10


@dataclass
class Beat:
    """What the bench drives in one clock."""

    valid: bool
    first: bool
    last: bool
    fold: int
    data: int  # the P lanes, packed
    rst: bool = False

    @property
    def live(self) -> bool:
        return self.valid and self.data != 0


def stimulus(p: int, a_bits: int, fold_bits: int, seed: int, n_folds: int = 40) -> list[Beat]:
    """Folds with gaps, zero beats and junk; a reset in the middle."""
    rng = random.Random(seed)
    width = p * a_bits
    beats = [Beat(False, False, False, 0, 0, rst=True) for _ in range(3)]
    for f in range(n_folds):
        n = rng.randint(1, 4)
        fold = rng.getrandbits(fold_bits)
        for j in range(n):
            while rng.random() < 0.3:  # a gap: junk everywhere but x_valid
                beats.append(Beat(False, rng.random() < 0.5, rng.random() < 0.5,
                                  rng.getrandbits(fold_bits), rng.getrandbits(width)))
            data = 0 if rng.random() < 0.4 else rng.choice(
                (1, 1 << (width - 1), rng.getrandbits(width) | 1))
            beats.append(Beat(True, j == 0, j == n - 1,
                              fold if j == 0 else rng.getrandbits(fold_bits), data))
        if f == n_folds // 2:
            beats.append(Beat(rng.random() < 0.5, True, True, 0, rng.getrandbits(width),
                              rst=True))
    return beats + [Beat(False, False, False, 0, 0)] * 12


def expected(beats: list[Beat], stages: int) -> list[dict]:
    """Every output in every clock, from the beat list (a key missing: not defined then)."""
    n = len(beats)
    resets = [r for r, b in enumerate(beats) if b.rst]
    fold_of, cur = [0] * n, 0  # each valid beat's fold: that of its fold's first beat
    for c, b in enumerate(beats):
        if b.valid and b.first:
            cur = b.fold
        fold_of[c] = cur

    def beat(c: int, t: int) -> Beat | None:
        """Beat c as clock t sees it: None if invalid or taken out by a reset since."""
        if not 0 <= c < n or not beats[c].valid or any(c <= r < t for r in resets):
            return None
        return beats[c]

    out, x0, z, clr_prev = [], None, False, False
    for t in range(n):
        # edge t: stage 0 loads x0 from stage -1 (which a reset one clock earlier emptied)
        if t >= 2 and beats[t - 2].live and not beats[t - 2].rst:
            x0 = beats[t - 2].data
        # the addends after edge t: the live beat entering stage S loads them, clr clears
        entering = beat(t - 2 - stages, t - 1)
        if (t >= 1 and beats[t - 1].rst) or (entering is not None and entering.live):
            z = False
        elif clr_prev:
            z = True
        nxt = beat(t - 1 - stages, t)
        acc = beat(t - 2 - stages, t)
        row = {"en": [beat(t - 2 - s, t) is not None and beats[t - 2 - s].live
                      for s in range(stages)],
               "clr": bool(nxt is not None and not nxt.live and (nxt.first or nxt.last)
                           and not z),
               "acc_en": bool(acc is not None and (acc.live or acc.first or acc.last)),
               "x0": x0}
        if row["acc_en"]:
            row |= {"acc_first": acc.first, "acc_last": acc.last,
                    "acc_fold": fold_of[t - 2 - stages]}
        clr_prev = row["clr"]
        out.append(row if t >= 3 else {})  # the first reset: nothing defined before
    return out


if cocotb is not None:

    def _env(name: str) -> int:
        return int(os.environ[name])

    async def run(dut, fault: bool) -> None:
        p, a_bits, fold_bits, stages = (_env(k) for k in ("MC_P", "MC_A", "MC_F", "MC_S"))
        beats = stimulus(p, a_bits, fold_bits, _env("MC_SEED"))
        want = expected(beats, stages)
        injected = None
        if fault:  # self-test: one acc_en strobe expected a clock late
            t = next(t for t in range(len(want) // 2, len(want)) if want[t].get("acc_en"))
            want[t]["acc_en"] = False
            injected = Fault(f"clock {t} acc_en", 0, 1)
        Clock(dut.clk, CLK_NS, unit="ns").start()
        errors: list[str] = []
        for t, b in enumerate(beats):
            dut.rst.value = int(b.rst)
            dut.x_valid.value, dut.x_first.value = int(b.valid), int(b.first)
            dut.x_last.value, dut.x_fold.value, dut.x_data.value = int(b.last), b.fold, b.data
            await ReadOnly()
            row = want[t]
            got_en = str(dut.en.value)  # en(0) first
            for s, e in enumerate(row.get("en", [])):
                if got_en[s] != str(int(e)):
                    errors.append(mismatch(f"clock {t} en({s})", int(e), got_en[s]))
            for name in ("clr", "acc_en", "acc_first", "acc_last"):
                if name in row and str(getattr(dut, name).value) != str(int(row[name])):
                    errors.append(mismatch(f"clock {t} {name}", int(row[name]),
                                           getattr(dut, name).value))
            for name in ("acc_fold", "x0"):
                if row.get(name) is not None:
                    v = getattr(dut, name).value
                    got = int(v) if v.is_resolvable else str(v)
                    if got != row[name]:
                        errors.append(mismatch(f"clock {t} {name}", row[name], got))
            await RisingEdge(dut.clk)
        verdict(errors, injected)

    mac_ctrl_timeline, mac_ctrl_timeline_catches_injected_fault = checker_tests(
        __name__, "mac_ctrl_timeline",
        "Folds, zero beats, gaps and a reset; every output checked every clock.",
        lambda dut: run(dut, False), lambda dut: run(dut, True))


# ----------------------------------------------------------------------------- pytest runner

# (P, A_BITS, FOLD_BITS, STAGES): STAGES = mult stages + ceil(log2 P) in mac_array
CASES = [
    (1, 8, 1, 4),   # "inferred", P = 1
    (3, 4, 2, 6),   # P = 3: two tree levels
    (2, 1, 1, 2),   # the fewest stages ("lut" with 2-bit inputs)
    (8, 8, 3, 7),
]


def _id(c: tuple) -> str:
    p, a, f, s = c
    return f"p{p}-a{a}-f{f}-s{s}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_mac_ctrl(case: tuple, request: pytest.FixtureRequest) -> None:
    """mac_ctrl against the timeline model for one parameter set."""
    from mnist_fpga.paths import BUILD
    from mnist_fpga.tb.common import rtl_sources, run_sim, simulator_missing
    from mnist_fpga.tb.unitwrap import write_wrapper

    if reason := simulator_missing():
        pytest.skip(reason)
    p, a_bits, fold_bits, stages = case
    tag = request.node.name.replace("[", "-").replace("]", "")
    build = BUILD / "tb" / tag
    seed = int(os.environ.get("TB_SEED", zlib.crc32(_id(case).encode()) & 0xFFFF))
    print(f"seed {seed} (TB_SEED={seed} replays)")
    generics = {"P": p, "A_BITS": a_bits, "FOLD_BITS": fold_bits, "STAGES": stages}
    ports = [("clk", "in", None), ("rst", "in", None), ("x_valid", "in", None),
             ("x_first", "in", None), ("x_last", "in", None), ("x_fold", "in", fold_bits),
             ("x_data", "in", p * a_bits), ("x0", "out", p * a_bits), ("en", "out", stages),
             ("clr", "out", None), ("acc_en", "out", None), ("acc_first", "out", None),
             ("acc_last", "out", None), ("acc_fold", "out", fold_bits)]
    wrap = write_wrapper(build, "mac_ctrl", generics, ports, _id(case))
    run_sim(toplevel="mac_ctrl_tb", module="test_mac_ctrl",
            vhdl_sources=[*rtl_sources("mac_ctrl"), str(wrap)], build_dir=build / "sim",
            extra_env={"MC_P": p, "MC_A": a_bits, "MC_F": fold_bits, "MC_S": stages,
                       "MC_SEED": seed},
            bench_dir=HERE)
