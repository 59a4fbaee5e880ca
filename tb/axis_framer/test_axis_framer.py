"""axis_framer bench: packets of every length through the framer alone, against the tlast rules.

An ``AxiStreamSource`` (cocotbext-axi, random idle clocks) sends random packets: exact
images, short ones, long ones, one beat, batches; the bench is the network side (random
``x_ready``) and the credit source (random ``credit_ok``). Every beat that enters the
network is recorded with ``start``, ``img_end``, ``img_flag`` and ``img_last``, and
compared with :func:`expected_images`, the bench's own statement of the rules in
docs/integration.md: images of exactly BEATS beats, zero padding after an early tlast,
truncation and dropping after a late one (or, with BATCH, every BEATS beats an image
and tlast ending the batch); ``start`` on, and only on, the first beat of each image,
which must wait for ``credit_ok``. Generics are fixed by a generated wrapper. ``TB_SEED``
sets the seed (default fixed per parameter set), ``TB_FRAMER_PACKETS`` the count (60).
"""

from __future__ import annotations

import random

import pytest

from mnist_fpga.tb.bench import CLK_NS, HAVE_COCOTB, UnitRun, params, run_size
from mnist_fpga.tb.selftest import checker_tests, inject, mismatch, verdict


def random_packets(rng: random.Random, beats: int, lanes: int, batch: bool, count: int
                   ) -> list[bytes]:
    """``count`` packets of whole beats (``lanes`` bytes each), lengths around the image size."""
    out = []
    for _ in range(count):
        kind = rng.randrange(5)
        if kind == 0 or (beats == 1 and kind == 1):
            n = beats
        elif kind == 1:
            n = rng.randint(1, beats - 1)  # short
        elif kind == 2:
            n = rng.randint(beats + 1, 3 * beats + 1)  # long, or a batch with a cut image
        elif kind == 3:
            n = beats * rng.randint(2, 3)  # a whole batch (or two merged images)
        else:
            n = 1
        out.append(bytes(rng.randrange(1, 256) for _ in range(n * lanes)))  # no zero bytes:
    return out  # padding zeros are then unmistakable


def expected_images(packets: list[bytes], beats: int, lanes: int, batch: bool
                    ) -> list[tuple[list[bytes], int, int]]:
    """(beats of the image, flag, last) for every image the framer must produce."""
    out = []
    for pkt in packets:
        bs = [pkt[i:i + lanes] for i in range(0, len(pkt), lanes)]
        if not batch:  # one image per packet
            img = bs[:beats] + [bytes(lanes)] * (beats - len(bs))
            out.append((img, int(len(bs) != beats), 1))
            continue
        chunks = [bs[i:i + beats] for i in range(0, len(bs), beats)]
        for c, chunk in enumerate(chunks):
            final = c == len(chunks) - 1
            cut = len(chunk) < beats
            out.append((chunk + [bytes(lanes)] * (beats - len(chunk)), int(cut), int(final)))
    return out


def check(expected: list[list[int]], exp_ends: list[tuple[int, int]], taken: list[int],
          ends: list[tuple[int, int]], beats: int) -> list[str]:
    """Every beat that entered the network and every image's (img_flag, img_last) against
    the model (``expected``: each image's beats as integers, lane 0 in the low byte)."""
    errors = []
    if len(taken) != len(expected) * beats:
        errors.append(f"{len(taken)} beats entered the network for {len(expected)} images "
                      f"of {beats}")
    for j, exp in enumerate(expected):
        got = taken[j * beats:(j + 1) * beats]
        errors += [mismatch(f"image {j} beat {b} x_data", e, g)
                   for b, (e, g) in enumerate(zip(exp, got, strict=False)) if e != g]
    if len(ends) != len(exp_ends):
        errors.append(f"{len(ends)} image ends for {len(exp_ends)} images")
    for j, ((e_flag, e_last), (g_flag, g_last)) in enumerate(zip(exp_ends, ends, strict=False)):
        if e_flag != g_flag:
            errors.append(mismatch(f"image {j} img_flag", e_flag, g_flag))
        if e_last != g_last:
            errors.append(mismatch(f"image {j} img_last", e_last, g_last))
    return errors


if HAVE_COCOTB:
    from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError, with_timeout
    from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamMonitor, AxiStreamSource

    from mnist_fpga.tb.bench import TB

    class FramerTB(TB):
        """Clock, reset, the packet source (cocotbext-axi, random idle clocks) with a
        monitor of the packets taken, and the network side: random x_ready and credit."""

        def __init__(self, dut, seed: int) -> None:
            super().__init__(dut, seed, ("x_ready", "credit_ok"))
            bus = AxiStreamBus.from_prefix(dut, "s")
            self.source = AxiStreamSource(bus, dut.clk, dut.rst)
            self.accepted = AxiStreamMonitor(bus, dut.clk, dut.rst)
            idle = random.Random(seed + 1)
            self.source.set_pause_generator(iter(lambda: idle.random() < 0.3, None))

        def drive_network(self) -> None:
            """The network's x_ready and the credit source's credit_ok for the next edge."""
            self.dut.x_ready.value = int(self.rng.random() < 0.7)
            self.dut.credit_ok.value = int(self.rng.random() < 0.6)

    class NetworkMonitor:
        """Every beat that enters the network (x_data), the image ends (img_flag,
        img_last), and the rules of start and img_end: on, and only on, the first and last
        beat of an image; an image starts only with credit_ok."""

        def __init__(self, dut, beats: int) -> None:
            self.dut, self.beats = dut, beats
            self.taken: list[int] = []
            self.ends: list[tuple[int, int]] = []
            self.starts = 0
            self.errors: list[str] = []

        def sample(self) -> None:
            """What the edge just passed took (called right after it)."""
            dut, beats, n = self.dut, self.beats, len(self.taken)
            if dut.x_valid.value == 1 and dut.x_ready.value == 1:
                first = n % beats == 0
                if first and dut.credit_ok.value != 1:
                    self.errors.append(f"image {n // beats} started without credit")
                if int(dut.start.value) != int(first):
                    self.errors.append(f"beat {n}: start = {dut.start.value}")
                self.starts += int(dut.start.value)
                end = n % beats == beats - 1
                if int(dut.img_end.value) != int(end):
                    self.errors.append(f"beat {n}: img_end = {dut.img_end.value}")
                if end:
                    self.ends.append((int(dut.img_flag.value), int(dut.img_last.value)))
                self.taken.append(int(dut.x_data.value))
            elif dut.start.value == 1 or dut.img_end.value == 1:
                self.errors.append("start or img_end without a beat entering the network")

    async def run_packets(dut, fault: bool) -> None:
        """Random packets, idle input, random x_ready and credit: every image and flag checked."""
        seed, count = run_size(fault, params()["packets"], 12)
        beats, lanes, batch = params()["beats"], params()["lanes"], params()["batch"]
        tb = FramerTB(dut, seed)
        packets = random_packets(tb.rng, beats, lanes, batch, count)
        expected = expected_images(packets, beats, lanes, batch)
        exp_beats = [[int.from_bytes(b, "little") for b in img] for img, _, _ in expected]
        exp_ends = [(f, last) for _, f, last in expected]
        injected = None
        if fault:  # self-test of the checker: one wrong expected beat
            injected = inject(exp_beats[-1], -1, exp_beats[-1][-1] ^ 1,
                              f"image {len(expected) - 1} beat {beats - 1} x_data")
        await tb.reset(cycles=3, after=0)
        for pkt in packets:
            await tb.source.send(AxiStreamFrame(pkt))
        net = NetworkMonitor(dut, beats)

        async def network_side() -> None:
            while len(net.ends) < len(expected):
                await RisingEdge(dut.clk)  # sample what this edge takes, then drive anew
                net.sample()
                tb.drive_network()

        errors = net.errors
        budget = 10 * (sum(len(p) for p in packets) // lanes + len(expected) * beats) + 100
        try:
            await with_timeout(network_side(), budget * CLK_NS, "ns")
        except SimTimeoutError:
            errors.append(f"only {len(net.ends)} images of {len(expected)} in {budget} clocks")
        try:  # the beats dropped after the last image, then a few quiet clocks
            await with_timeout(tb.source.wait(), (4 * beats + 50) * CLK_NS, "ns")
        except SimTimeoutError:
            errors.append("the source could not finish: the framer stopped taking beats")
        await ClockCycles(dut.clk, 2 * beats + 5)
        if dut.x_valid.value != 0:
            errors.append("x_valid after the last image")
        errors += check(exp_beats, exp_ends, net.taken, net.ends, beats)
        if tb.accepted.count() != len(packets):
            errors.append(f"s side accepted {tb.accepted.count()} packets of {len(packets)}")
        if net.starts != len(expected):
            errors.append(f"{net.starts} starts for {len(expected)} images")
        dut._log.warning("seed %d: %d packets, %d images, %d flagged", seed, len(packets),
                         len(expected), sum(f for f, _ in exp_ends))
        verdict(errors, injected)

    framer_packets, framer_packets_catches_injected_fault = checker_tests(
        __name__, "framer_packets",
        "Random packets, idle input, random x_ready and credit: every image and flag checked.",
        run_packets)


# ----------------------------------------------------------------------------- pytest runner

CASES = [  # (BEATS, lanes, BATCH)
    (5, 1, False), (7, 3, False), (1, 1, False), (4, 2, True), (1, 1, True), (6, 1, True),
]


def _id(case: tuple[int, int, bool]) -> str:
    beats, lanes, batch = case
    return f"beats{beats}-lanes{lanes}-{'batch' if batch else 'image'}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_axis_framer(case: tuple[int, int, bool], request: pytest.FixtureRequest) -> None:
    """axis_framer against the tlast rules for one parameter set."""
    from mnist_fpga.tb.common import env_int, rtl_sources

    run = UnitRun(request)
    beats, lanes, batch = case
    ports = [(n, "in", None) for n in ("s_tvalid", "s_tlast", "x_ready", "credit_ok")]
    ports += [(n, "out", None) for n in ("s_tready", "x_valid", "start", "img_end",
                                         "img_flag", "img_last")]
    ports += [("s_tdata", "in", 8 * lanes), ("x_data", "out", 8 * lanes)]
    wrap = run.wrapper("axis_framer", {"BEATS": beats, "DATA_BITS": 8 * lanes,
                                       "BATCH": "true" if batch else "false"}, ports)
    run.run("axis_framer_tb", [*rtl_sources("axis_framer"), wrap],
            {"beats": beats, "lanes": lanes, "batch": batch,
             "packets": env_int("TB_FRAMER_PACKETS", 60, lo=1)})
