"""requant bench: ReLU + requantization alone against an independent reference.

The expected outputs come from :func:`reference`, numerics.md section 5 written with
Python ints and floor division (not :func:`gen.core.model.requantize`, which a unit test
compares with the same reference). Parameter sets: one (MULT, SHIFT) per layer with
right shifts, left shifts (SHIFT <= 0) and shifts past the product width; per-neuron
constants with several lanes per beat (lane l of beat i is neuron i*LANES+l), so a
requantizer that ignores the lane index fails; and shift-only (MULT = 1).

Accumulators: negative (ReLU), zero, the extremes of ACC_BITS, both sides of the
saturation boundary, exact rounding ties (``r*MULT + 2**(SHIFT-1)`` a multiple of
``2**SHIFT``, where "round half up" matters) and their neighbours, then random
ones. The input side has random valid gaps with junk data; the output side
random ``out_ready`` back-pressure, during which the output must hold still.

The harness is tb/bench.py (the wrapper with the generics and per-neuron constants,
the parameters, the seed). ``TB_REQUANT_ITEMS`` (default 400) sets the number of
random accumulators, ``TB_SEED`` the seed (default: fixed per parameter set).
"""

from __future__ import annotations

import random
import re
import zlib
from dataclasses import asdict, dataclass

import numpy as np
import pytest

from mnist_fpga.tb.bench import (
    CLK_NS,
    HAVE_COCOTB,
    UnitRun,
    case_seed,
    params,
    phases,
    run_size,
)
from mnist_fpga.tb.selftest import checker_tests, inject, verdict


def reference(acc: int, mult: int, shift: int, out_bits: int) -> int:
    """numerics.md section 5 with Python ints: floor division, never a shift operator."""
    r = max(acc, 0) * mult
    y = (r + 2 ** (shift - 1)) // 2**shift if shift >= 1 else r * 2 ** (-shift)
    return min(y, 2**out_bits - 1)


@dataclass(frozen=True)
class RqCase:
    """One parameter set of the requantizer.

    ``neurons`` > 0 selects per-neuron constants (PER_NEURON), drawn from the case id.
    """

    fmt: str
    acc_bits: int
    out_bits: int
    mult: int
    shift: int
    lanes: int = 1
    neurons: int = 0
    mult_bits: int = 16

    @property
    def id(self) -> str:
        if self.neurons:
            return f"{self.fmt}-acc{self.acc_bits}-pn{self.neurons}-lanes{self.lanes}"
        return f"{self.fmt}-acc{self.acc_bits}-m{self.mult}-s{self.shift}-lanes{self.lanes}"

    def constants(self) -> tuple[list[int], list[int]]:
        """Per neuron (mult, shift): shifts from a saturating left shift to past the product."""
        if not self.neurons:
            return [self.mult], [self.shift]
        rng = random.Random(zlib.crc32(self.id.encode()))
        pw = self.acc_bits - 1 + self.mult_bits
        top = (1 << self.mult_bits) - 1
        mults = [rng.randint(1, top) for _ in range(self.neurons)]
        shifts = [rng.randint(-self.out_bits - 2, pw + 3) for _ in range(self.neurons)]
        # every neuron differs from its lane neighbours, so a lane mix-up shows
        shifts[:4] = [0, 1, -1, pw + 1][: self.neurons]
        return mults, shifts

    def shift_bits(self) -> int:
        return 1 + max(max(abs(v).bit_length() for v in self.constants()[1]), 1)

    def y(self, r: int) -> int:
        """Unsaturated output for r >= 0 (choosing stimuli only; per-layer constants)."""
        if self.shift <= 0:
            return r * self.mult << -self.shift
        return (r * self.mult + (1 << (self.shift - 1))) >> self.shift

    def r_sat(self) -> int:
        """The smallest r that saturates: y(r) > 2**OUT_BITS - 1."""
        if self.shift <= 0:
            return -(-(1 << self.out_bits) // (self.mult << -self.shift))
        need = ((1 << self.out_bits) << self.shift) - (1 << (self.shift - 1))
        return -(-need // self.mult)

    def ties(self) -> tuple[int, int] | None:
        """``(first, period)`` of the r >= 0 whose product lands exactly on a rounding tie."""
        t = (self.mult & -self.mult).bit_length() - 1  # MULT = m * 2**t, m odd
        if self.shift < 1 or t > self.shift - 1:
            return None
        mod = 1 << (self.shift - t)
        first = ((1 << (self.shift - 1 - t)) * pow(self.mult >> t, -1, mod)) % mod
        return first, mod


def make_accs(case: RqCase, count: int, seed: int) -> list[int]:
    """Directed corner accumulators, then ``count`` random ones."""
    rng = random.Random(seed)
    lo, hi = -(1 << (case.acc_bits - 1)), (1 << (case.acc_bits - 1)) - 1
    accs = [0, -1, 1, lo, hi, lo + 1, hi - 1, 0]
    rs = case.r_sat()
    accs += [rs - 2, rs - 1, rs, rs + 1]
    if tie := case.ties():
        first, period = tie
        last = min(hi, rs - 1)
        n = (last - first) // period + 1 if last >= first else 0
        picks = {0, n - 1} | {rng.randrange(n) for _ in range(12)} if n > 0 else set()
        for k in sorted(picks):
            r = first + k * period
            accs += [r - 1, r, r + 1]
        accs += [first + (n + k) * period for k in range(2)]  # ties in the saturated region
    for _ in range(count):
        u = rng.random()
        if u < 0.4:    # the interesting part: 0 .. a little past saturation
            accs.append(rng.randint(0, min(hi, rs + 4)))
        elif u < 0.6:  # negative
            accs.append(rng.randint(lo, -1))
        else:
            accs.append(rng.randint(lo, hi))
    return [a for a in accs if lo <= a <= hi]


def expected_outputs(case: RqCase, accs: list[int]) -> list[int]:
    """The independent reference on the stream: value j is neuron j mod N of its image."""
    mults, shifts = case.constants()
    n = len(mults)
    return [reference(a, mults[j % n], shifts[j % n], case.out_bits)
            for j, a in enumerate(accs)]


if HAVE_COCOTB:
    import cocotb
    from cocotb.triggers import with_timeout

    from mnist_fpga.tb.bench import TB, StreamDriver, StreamSink

    class RequantTB(TB):
        """Clock, reset and the accumulator driver of ``requant_tb``."""

        def __init__(self, dut, case: RqCase, seed: int) -> None:
            super().__init__(dut, seed, ("in_valid", "in_data", "in_last", "out_ready"))
            self.case = case
            self.source = StreamDriver(dut, self.rng, self._junk)

        def _junk(self) -> None:
            """Random data and last while in_valid is '0': must be ignored."""
            mask = (1 << (self.case.acc_bits * self.case.lanes)) - 1
            self.dut.in_data.value = junk = self.rng.randint(0, mask)
            self.dut.in_last.value = junk & 1

        async def send(self, beats: list[int], lasts: list[int] | None = None) -> None:
            """One beat per accepted clock; runs of no, some and many idle clocks.

            ``lasts``: in_last of each beat (default: on the last beat of each image).
            """
            if lasts is None:
                per_image = -(-(self.case.neurons or self.case.lanes) // self.case.lanes)
                lasts = [int(j % per_image == per_image - 1) for j in range(len(beats))]
            await self.source.send(beats, phases((0.0, 0.3, 0.7), 16), lasts)

    def out_sink(dut, seed: int) -> StreamSink:
        """Random out_ready back-pressure; collects out_data transfers (a stall holds)."""
        return StreamSink(dut, seed, lambda: int(dut.out_data.value.to_unsigned()),
                          phases((1.0, 0.5, 0.1), 16))

    def _case() -> RqCase:
        return RqCase(**{k: params()[k] for k in RqCase.__dataclass_fields__})

    def to_beats(case: RqCase, accs: list[int], rng: random.Random) -> list[int]:
        """Images of N values (N neurons, or LANES), LANES per beat; padding lanes get junk."""
        n, lanes, bits = case.neurons or case.lanes, case.lanes, case.acc_bits
        beats = []
        for img in range(len(accs) // n):
            vals = accs[img * n:(img + 1) * n]
            vals += [rng.randint(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
                     for _ in range(-len(vals) % lanes)]
            for b in range(0, len(vals), lanes):
                beats.append(sum((v & ((1 << bits) - 1)) << (lane * bits)
                                 for lane, v in enumerate(vals[b:b + lanes])))
        return beats

    def from_beats(case: RqCase, beats: list[int]) -> list[int]:
        """Output beats back to values, padding lanes of an image's last beat dropped."""
        n, lanes, bits = case.neurons or case.lanes, case.lanes, case.out_bits
        per_image = -(-n // lanes)
        out = []
        for k, beat in enumerate(beats):
            used = min(lanes, n - (k % per_image) * lanes)
            out += [(beat >> (lane * bits)) & ((1 << bits) - 1) for lane in range(used)]
        return out

    async def run_accs(dut, fault: bool) -> None:
        """Stream the accumulators through and compare every output, in order."""
        seed, count = run_size(fault, params()["items"], 10)
        case = _case()
        accs = make_accs(case, count, seed)
        n = case.neurons or case.lanes
        accs += accs[: -len(accs) % n]  # whole images
        expected = expected_outputs(case, accs)
        injected = None
        if fault:  # self-test of the checker: one wrong expectation
            injected = inject(expected, -1, expected[-1] ^ 1, f"item {len(accs) - 1}")
        tb = RequantTB(dut, case, seed)
        beats = to_beats(case, accs, random.Random(seed + 7))
        await tb.reset()
        sink = out_sink(dut, seed + 1000)
        await with_timeout(tb.send(beats), 40 * len(beats) * CLK_NS, "ns")
        await with_timeout(sink.wait_for(len(beats)), 200 * CLK_NS, "ns")
        await tb.clocks(5)  # an extra output would show up here
        got = from_beats(case, sink.got)
        errors = list(sink.errors)
        if not fault and not (sink.stalls and tb.source.waits):
            errors.append(f"back-pressure not exercised: {sink.stalls} output stalls, "
                          f"{tb.source.waits} input waits")
        if len(got) != len(accs):
            errors.append(f"expected {len(accs)} outputs, got {len(got)}")
        errors += [f"item {j}: acc {a}: expected {e} got {g}"
                   for j, (a, e, g) in enumerate(zip(accs, expected, got, strict=False))
                   if e != g]
        verdict(errors, injected)

    requant_stream, requant_stream_catches_injected_fault = checker_tests(
        __name__, "requant_stream",
        "Corner and random accumulators with gaps and back-pressure against the model.", run_accs)

    # An image cut short (in_last early) and one without in_last, between whole images
    # (beats per image, in_last on its last beat): the beat after each must be neuron 0.
    def last_plan(beats: int) -> list[tuple[int, bool]]:
        return [(beats, True), (beats // 2, True), (beats, True), (beats, False),
                (beats, True), (beats, True)]

    @cocotb.test(skip=True)  # only when named (COCOTB_TEST_FILTER): it raises assertions
    async def requant_last_realigns(dut) -> None:
        """PER_NEURON: after an early in_last and after a missing one, the next image's
        constants start again at neuron 0 (against the reference, image by image)."""
        case = _case()
        seed = params()["seed"]
        mults, shifts = case.constants()
        per_image = -(-case.neurons // case.lanes)
        pool = make_accs(case, 200, seed)
        rng = random.Random(seed + 7)
        mask, bits = (1 << case.acc_bits) - 1, case.acc_bits
        beats, lasts, expected = [], [], []
        for n_beats, last in last_plan(per_image):
            vals = [pool[(len(expected) + j) % len(pool)] for j in range(n_beats * case.lanes)]
            # neuron j of the image for lanes that hold one; padding lanes get junk
            vals = [v if j < case.neurons else rng.randint(-(1 << (bits - 1)), mask >> 1)
                    for j, v in enumerate(vals)]
            for b in range(n_beats):
                lanes = vals[b * case.lanes:(b + 1) * case.lanes]
                beats.append(sum((v & mask) << (lane * bits) for lane, v in enumerate(lanes)))
                lasts.append(int(last and b == n_beats - 1))
            expected.append([reference(v, mults[j], shifts[j], case.out_bits) if
                             j < case.neurons else None for j, v in enumerate(vals)])
        tb = RequantTB(dut, case, seed)
        await tb.reset()
        sink = out_sink(dut, seed + 1000)
        await with_timeout(tb.send(beats, lasts), 40 * len(beats) * CLK_NS, "ns")
        await with_timeout(sink.wait_for(len(beats)), 200 * CLK_NS, "ns")
        ob, got = case.out_bits, list(sink.got)
        errors = list(sink.errors)
        for i, exp in enumerate(expected):
            n_beats = len(exp) // case.lanes
            out, got = got[:n_beats], got[n_beats:]
            vals = [(beat >> (lane * ob)) & ((1 << ob) - 1)
                    for beat in out for lane in range(case.lanes)]
            errors += [f"image {i} neuron {j}: expected {e} got {g}"
                       for j, (e, g) in enumerate(zip(exp, vals, strict=True))
                       if e is not None and e != g]
        verdict(errors)


# ----------------------------------------------------------------------------- pytest runner

def bits_literal(values: list[int], bits: int) -> str:
    """A VHDL binary string, value 0 in the low bits (written here, not by gen/hdl/generate.py)."""
    return '"' + "".join(format(v & ((1 << bits) - 1), f"0{bits}b") for v in reversed(values)) + '"'


def wrapper_args(case: RqCase) -> tuple[dict[str, int | str], list, dict[str, str]]:
    """The wrapper's generics, ports and (per-neuron) constant inputs for the case."""
    generics: dict[str, int | str] = {"ACC_BITS": case.acc_bits, "OUT_BITS": case.out_bits,
                                      "MULT_BITS": case.mult_bits, "LANES": case.lanes}
    tied = {}
    if case.neurons:
        mults, shifts = case.constants()
        sb = case.shift_bits()
        generics |= {"PER_NEURON": "true", "N_NEURONS": case.neurons, "SHIFT_BITS": sb}
        tied = {"mults": bits_literal(mults, case.mult_bits), "shifts": bits_literal(shifts, sb)}
    else:
        generics |= {"MULT": case.mult, "SHIFT": case.shift}
    ports = [("in_valid", "in", None), ("in_ready", "out", None),
             ("in_data", "in", case.lanes * case.acc_bits), ("in_last", "in", None),
             ("out_valid", "out", None), ("out_ready", "in", None),
             ("out_data", "out", case.lanes * case.out_bits)]
    return generics, ports, tied


CASES = [
    RqCase("int8", 20, 8, 49152, 18),   # MULT = 3 * 2**14: a rounding tie every 16 values of r
    RqCase("int8", 26, 8, 46341, 24),   # an odd MULT as gen.core.quant.requant_params makes them
    RqCase("int4", 14, 4, 40960, 15),   # MULT = 5 * 2**13: ties at r = 2, 6, 10
    RqCase("int2", 2, 2, 32769, 1),     # the narrowest accumulator and the smallest SHIFT
    RqCase("int16", 31, 16, 65535, 29),  # the widest accumulator, largest MULT: 47-bit product
    RqCase("int16", 40, 16, 65521, 38),  # 39-bit ReLU output: three 17-bit partial products
    RqCase("int4", 14, 4, 40000, -1),   # a left shift with a multiplier
    RqCase("int8", 20, 8, 50000, 36),   # SHIFT = PW + 1: every output 0
    RqCase("int8", 20, 8, 50000, 200),  # far past the product width
    RqCase("int8-shift", 20, 8, 1, 5, mult_bits=1),   # shift-only, right shift
    RqCase("int8-shift", 12, 8, 1, -2, mult_bits=1),  # shift-only, left shift (ratio 4)
    RqCase("int8-pn", 20, 8, 40000, 18, lanes=3, neurons=10),  # lanes do not divide neurons
    RqCase("int8-pn", 24, 8, 40000, 20, lanes=1, neurons=5),
    RqCase("int4-pn-shift", 12, 4, 1, 3, lanes=2, neurons=7, mult_bits=1),
]


def _items() -> int:
    from mnist_fpga.tb.common import env_int

    return env_int("TB_REQUANT_ITEMS", 400, lo=1)


def _run_case(run: UnitRun, case: RqCase, **env: object) -> None:
    """The case's wrapper in the build folder, then the cocotb module on it (``env`` added)."""
    from mnist_fpga.tb.common import rtl_sources

    generics, ports, tied = wrapper_args(case)
    wrap = run.wrapper("requant", generics, ports, tied)
    run.run("requant_tb", [*rtl_sources("requant"), wrap],
            {**asdict(case), "items": _items()}, **env)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_requant(case: RqCase, request: pytest.FixtureRequest) -> None:
    """requant against the independent reference for one parameter set."""
    _run_case(UnitRun(request, seed_key=case.id), case)


# the per-neuron cases with more than one beat per image: the beat counter matters
LAST_CASES = [c for c in CASES if c.neurons and c.neurons > c.lanes]


@pytest.mark.parametrize("case", LAST_CASES, ids=[c.id for c in LAST_CASES])
def test_requant_realigns_on_last(case: RqCase, request: pytest.FixtureRequest) -> None:
    """An image cut short by in_last and one without in_last: each raises its assertion
    error once, and the images after them are bit-exact (the counter starts again)."""
    from mnist_fpga.tb.common import simulator

    run = UnitRun(request, seed_key=case.id)
    if simulator() != "ghdl":  # NVC's default --exit-severity=error ends the run there
        pytest.skip("the images after the assertion need a simulator that goes on (GHDL)")
    with pytest.raises(SystemExit) as exc:
        _run_case(run, case, COCOTB_TEST_FILTER="requant_last_realigns")
    # only the RTL's assertion failed the run: the cocotb test (the images) passed
    msg = str(exc.value)
    assert msg.startswith("simulator warning:") and "(simulator log:" not in msg, msg
    log = (run.build / "sim" / "ghdl" / "sim.log").read_text(errors="replace")
    beats = -(-case.neurons // case.lanes)
    early = re.findall(r"\(assertion error\): requant: in_last on beat (\d+) \(from 0\) of an "
                       r"image of (\d+)", log)
    assert early == [(str(beats // 2 - 1), str(beats))], early
    assert log.count("(assertion error): requant: no in_last on the image's last beat") == 1


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_requant_stimulus_covers_corners(case: RqCase) -> None:
    """The stimulus holds negatives, zero, both sides of saturation and every reachable tie kind."""
    accs = make_accs(case, _items(), case_seed(case.id))
    hi = (1 << (case.acc_bits - 1)) - 1
    top = (1 << case.out_bits) - 1
    rs = case.r_sat()
    assert min(accs) < 0 and 0 in accs and hi in accs
    if rs <= hi:
        assert rs in accs and rs - 1 in accs and case.y(rs - 1) <= top < case.y(rs)
    tie = case.ties()
    if tie and tie[0] < min(rs, hi + 1):  # a tie exists below saturation: it must be driven
        ties = [a for a in accs if 0 <= a < rs and (a * case.mult) % (1 << case.shift)
                == 1 << (case.shift - 1)]
        assert ties, f"{case.id}: no unsaturated rounding tie in the stimulus"


def test_model_requantize_matches_reference() -> None:
    """gen.core.model.requantize agrees with the bench's reference on every case's stimulus."""
    from mnist_fpga.gen.core.model import QLayer, requantize

    for case in CASES:
        mults, shifts = case.constants()
        n = len(mults)
        accs = make_accs(case, 100, case_seed(case.id))
        accs += accs[: -len(accs) % n]
        per = case.neurons > 0
        layer = QLayer(w=np.zeros((n, 1), dtype=np.int64), b=np.zeros(n, dtype=np.int64),
                       w_bits=2, a_bits=2, acc_bits=case.acc_bits, hidden=True,
                       rq_mult=mults if per else mults[0], rq_shift=shifts if per else shifts[0],
                       out_bits=case.out_bits)
        got = requantize(np.array(accs, dtype=np.int64).reshape(-1, n), layer).reshape(-1)
        assert got.tolist() == expected_outputs(case, accs), case.id


def test_some_cases_have_unsaturated_ties() -> None:
    """At least two parameter sets exercise round-half-up on values that are not clipped."""
    assert sum(1 for c in CASES if (t := c.ties()) and t[0] < c.r_sat()) >= 2
