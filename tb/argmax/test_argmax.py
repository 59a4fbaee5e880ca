"""argmax bench: the decision unit alone against :func:`gen.core.model.classify`.

Vectors of N_IN signed values (random, all-equal, duplicated maxima, the extremes
of ACC_BITS) are streamed with random valid gaps, junk on the bus while
``in_valid`` is low, and back to back. Each ``done`` strobe must come one clock
after the vector's last value with the model's class (lowest index wins a tie;
N_IN = 1: class 1 iff value > 0). A second test resets in the middle of a vector.

The harness is tb/bench.py (the wrapper with the generics, the parameters, the
seed). ``TB_ARGMAX_VECTORS`` (default 200) sets the count, ``TB_SEED`` the seed
(default: fixed per parameter set).
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from mnist_fpga.tb.bench import CLK_NS, HAVE_COCOTB, UnitRun, params, phases, run_size
from mnist_fpga.tb.selftest import checker_tests, inject, verdict

LATENCY = 3  # rtl/argmax.vhd: input register, compare, class register


def make_vectors(n_in: int, acc_bits: int, count: int, seed: int) -> list[list[int]]:
    """Directed corner vectors, then random ones up to ``count`` (half of them ties-prone)."""
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    rng = random.Random(seed)
    if n_in == 1:
        vecs = [[v] for v in (0, 1, -1, lo, hi, 0)]
    else:
        vecs = [
            [0] * n_in,                              # all equal: index 0
            [lo] * n_in,                             # all at the minimum: index 0
            [hi] * n_in,                             # all at the maximum: index 0
            [lo] * (n_in - 1) + [hi],                # maximum last
            [hi] + [lo] * (n_in - 1),                # maximum first
            [lo] * (n_in - 1) + [lo + 1],            # one step above the minimum, last
            list(range(lo, lo + n_in)),              # strictly increasing: last wins
            [hi - i for i in range(n_in)],           # strictly decreasing: first wins
            [lo] + [hi] * (n_in - 1),                # tie of n_in-1 maxima: index 1
        ]
        a, b = sorted(rng.sample(range(n_in), 2))    # duplicated maximum at a and b
        v = [rng.randint(lo, hi - 1) for _ in range(n_in)]
        v[a] = v[b] = hi
        vecs.append(v)
    vecs = [[min(max(x, lo), hi) for x in v] for v in vecs]  # ACC_BITS=2 clips the ramps
    while len(vecs) < count:
        if rng.random() < 0.5:  # a tiny range around a random centre makes ties frequent
            c = rng.randint(lo, hi)
            vecs.append([min(max(c + rng.randint(-1, 1), lo), hi) for _ in range(n_in)])
        else:
            vecs.append([rng.randint(lo, hi) for _ in range(n_in)])
    return vecs


def expected_classes(vecs: list[list[int]]) -> list[int]:
    """The model's decision for every vector (gen.core.model.classify)."""
    from mnist_fpga.gen.core.formats import Format
    from mnist_fpga.gen.core.model import QLayer, QNet, classify

    n = len(vecs[0])
    layer = QLayer(w=np.zeros((n, 1), dtype=np.int64), b=np.zeros(n, dtype=np.int64),
                   w_bits=2, a_bits=2, acc_bits=2, hidden=False)
    qnet = QNet("argmax_tb", Format(2, 2), [layer])
    return [int(c) for c in classify(qnet, np.array(vecs, dtype=np.int64))]


if HAVE_COCOTB:
    import cocotb
    from cocotb.triggers import with_timeout
    from cocotb.utils import get_sim_time

    from mnist_fpga.tb.bench import TB, StreamDriver, StrobeMonitor

    class ArgmaxTB(TB):
        """Clock, reset and the value driver of ``argmax_tb`` (always ready)."""

        def __init__(self, dut, seed: int) -> None:
            super().__init__(dut, seed, ("in_valid", "in_data", "in_last"))
            self.n_in, self.acc_bits = params()["n_in"], params()["acc_bits"]
            self.lanes = params()["lanes"]
            self.source = StreamDriver(dut, self.rng, self._junk, ready=False)
            self.sent_at: list[int] = []  # sim time (ns) of the edge taking a last value

        def _junk(self) -> None:
            """Random data and last while in_valid is low: must be ignored."""
            self.dut.in_data.value = self.rng.randint(0, (1 << (self.acc_bits * self.lanes)) - 1)
            self.dut.in_last.value = self.rng.randint(0, 1)

        async def send(self, vec: list[int], p_gap: float, last: bool = True) -> None:
            """One vector, LANES values per clock (value i*LANES+l in lane l, junk in the
            lanes past N_IN), with random idle clocks before each beat."""
            bits, lanes = self.acc_bits, self.lanes
            mask = (1 << bits) - 1
            beats = [vec[i:i + lanes] for i in range(0, len(vec), lanes)]
            for i, beat in enumerate(beats):
                await self.source.idle(p_gap)
                beat = beat + [self.rng.randint(0, mask) for _ in range(lanes - len(beat))]
                is_last = last and i == len(beats) - 1
                await self.source.beat(sum((v & mask) << (lane * bits)
                                           for lane, v in enumerate(beat)), int(is_last))
                if is_last:
                    self.sent_at.append(round(get_sim_time(unit="ns")))
            self.dut.in_valid.value = 0
            self._junk()

    def done_monitor(dut) -> StrobeMonitor:
        """(sim time, class_out) of every clock where done is '1'."""
        return StrobeMonitor(dut.clk, dut.done, lambda: (
            round(get_sim_time(unit="ns")), int(dut.class_out.value.to_unsigned())))

    def check(vecs: list[list[int]], expected: list[int], sent_at: list[int],
              seen: list[tuple[int, int]]) -> list[str]:
        """Compare every decision with the model; a done must come LATENCY clocks after the
        clock that carried its last value (that clock counted as the first)."""
        errors = []
        if len(seen) != len(vecs):
            errors.append(f"expected {len(vecs)} done strobes, got {len(seen)}")
        for j, (vec, e) in enumerate(zip(vecs, expected, strict=True)):
            if j >= len(seen):
                break
            t, got = seen[j]
            if got != e:
                errors.append(f"vector {j} {vec}: class expected {e} got {got}")
            want = sent_at[j] + (LATENCY - 1) * CLK_NS
            if t != want:
                errors.append(f"vector {j}: done at {t} ns, expected at {want} ns "
                              f"({LATENCY} clocks from its last value)")
        return errors

    async def run_vectors(dut, fault: bool) -> None:
        """Corner and random vectors, back to back and with gaps, checked against the model."""
        seed, count = run_size(fault, params()["vectors"], 12, offset=2)  # +1: the reset test
        tb, mon = ArgmaxTB(dut, seed), done_monitor(dut)
        vecs = make_vectors(tb.n_in, tb.acc_bits, count, seed)
        expected = expected_classes(vecs)
        injected = None
        if fault:  # self-test of the checker: one wrong expectation
            injected = inject(expected, -1, (expected[-1] + 1) % max(tb.n_in, 2),
                              f"vector {len(vecs) - 1}")
        await tb.reset()
        for j, vec in enumerate(vecs):
            # runs of 8 vectors: no gaps (back to back), some gaps, many gaps
            await tb.send(vec, p_gap=phases((0.0, 0.3, 0.7), 8)(j))
        await with_timeout(mon.wait_for(len(vecs)), 20 * CLK_NS, "ns")
        await tb.clocks(3)  # a stray late strobe would show up here
        verdict(check(vecs, expected, tb.sent_at, mon.seen), injected)

    argmax_vectors, argmax_vectors_catches_injected_fault = checker_tests(
        __name__, "argmax_vectors", "TB_ARGMAX_VECTORS vectors against gen.core.model.classify.",
        run_vectors)

    @cocotb.test()
    async def argmax_reset_mid_vector(dut) -> None:
        """A reset drops a partly sent vector: the next N_IN values form a fresh decision."""
        seed = params()["seed"] + 1
        tb, mon = ArgmaxTB(dut, seed), done_monitor(dut)
        lo, hi = -(1 << (tb.acc_bits - 1)), (1 << (tb.acc_bits - 1)) - 1
        # First after the reset: the maximum last. A stale index or best value from the
        # unfinished vector (all maxima) would make the answer 0 instead of N_IN - 1.
        vecs = [[lo] * (tb.n_in - 1) + [hi], *make_vectors(tb.n_in, tb.acc_bits, 12, seed)]
        expected = expected_classes(vecs)
        await tb.reset()
        await tb.send([hi] * max(tb.n_in - 1, 1), p_gap=0.0, last=False)  # never finished
        await tb.reset(cycles=1)
        for vec in vecs:
            await tb.send(vec, p_gap=0.2)
        await with_timeout(mon.wait_for(len(vecs)), 20 * CLK_NS, "ns")
        verdict(check(vecs, expected, tb.sent_at, mon.seen), what="errors after reset")


# ----------------------------------------------------------------------------- pytest runner

# (n_in, format, acc_bits, lanes): ACC_BITS as a last layer of that format could need it.
CASES = [
    (10, "int8", 26, 1),   # l10: 784 -> 10
    (1, "int8", 26, 1),    # zero: one output, class 1 iff value > 0
    (16, "int2", 2, 1),    # CLASS_BITS full (4), the narrowest accumulator: ties everywhere
    (2, "int16", 31, 1),   # the widest accumulator the layer RTL supports
    (10, "int8", 20, 3),   # three values per beat, the last beat one lane full
    (16, "int2", 3, 4),    # lanes dividing N_IN, ties everywhere
]


def _id(case: tuple[int, str, int, int]) -> str:
    n_in, fmt, acc, lanes = case
    return f"n{n_in}-{fmt}-acc{acc}" + (f"-lanes{lanes}" if lanes > 1 else "")


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_argmax(case: tuple[int, str, int, int], request: pytest.FixtureRequest) -> None:
    """argmax against gen.core.model.classify for one parameter set."""
    from mnist_fpga.gen.hdl.memories import class_bits
    from mnist_fpga.tb.common import env_int, rtl_sources

    run = UnitRun(request, seed_key=_id(case))
    n_in, _, acc_bits, lanes = case
    cb = class_bits(n_in)
    ports = [("in_valid", "in", None), ("in_last", "in", None),
             ("in_data", "in", lanes * acc_bits), ("done", "out", None),
             ("class_out", "out", cb)]
    wrap = run.wrapper("argmax", {"N_IN": n_in, "ACC_BITS": acc_bits, "CLASS_BITS": cb,
                                  "LANES": lanes}, ports)
    run.run("argmax_tb", [*rtl_sources("argmax"), wrap],
            {"n_in": n_in, "acc_bits": acc_bits, "lanes": lanes,
             "vectors": env_int("TB_ARGMAX_VECTORS", 200, lo=1)})
