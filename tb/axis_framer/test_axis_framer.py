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

import os
import random
import zlib
from pathlib import Path

import pytest

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, RisingEdge, SimTimeoutError, with_timeout
    from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamMonitor, AxiStreamSource
except ImportError:  # pragma: no cover - pytest collection without cocotb
    cocotb = None

CLK_NS = 10


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


if cocotb is not None:

    @cocotb.test()
    async def framer_packets(dut) -> None:
        """Random packets, idle input, random x_ready and credit: every image and flag checked."""
        beats, lanes = int(os.environ["FR_BEATS"]), int(os.environ["FR_LANES"])
        batch, seed = os.environ["FR_BATCH"] == "1", int(os.environ["FR_SEED"])
        count = int(os.environ.get("FR_PACKETS", "60"))
        rng = random.Random(seed)
        packets = random_packets(rng, beats, lanes, batch, count)
        expected = expected_images(packets, beats, lanes, batch)
        dut.rst.value, dut.x_ready.value, dut.credit_ok.value = 1, 0, 0
        Clock(dut.clk, CLK_NS, unit="ns").start()
        bus = AxiStreamBus.from_prefix(dut, "s")
        source = AxiStreamSource(bus, dut.clk, dut.rst)
        accepted = AxiStreamMonitor(bus, dut.clk, dut.rst)
        idle = random.Random(seed + 1)
        source.set_pause_generator(iter(lambda: idle.random() < 0.3, None))
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        for pkt in packets:
            await source.send(AxiStreamFrame(pkt))

        errors: list[str] = []
        taken: list[bytes] = []  # beats that entered the network
        ends: list[tuple[int, int]] = []
        starts = 0

        async def network_side() -> None:
            nonlocal starts
            while len(ends) < len(expected):
                await RisingEdge(dut.clk)  # sample what this edge takes, then drive anew
                if dut.x_valid.value == 1 and dut.x_ready.value == 1:
                    first = len(taken) % beats == 0
                    if first and dut.credit_ok.value != 1:
                        errors.append(f"image {len(taken) // beats} started without credit")
                    if int(dut.start.value) != int(first):
                        errors.append(f"beat {len(taken)}: start = {dut.start.value}")
                    starts += int(dut.start.value)
                    end = len(taken) % beats == beats - 1
                    if int(dut.img_end.value) != int(end):
                        errors.append(f"beat {len(taken)}: img_end = {dut.img_end.value}")
                    if end:
                        ends.append((int(dut.img_flag.value), int(dut.img_last.value)))
                    taken.append(int(dut.x_data.value).to_bytes(lanes, "little"))
                elif dut.start.value == 1 or dut.img_end.value == 1:
                    errors.append("start or img_end without a beat entering the network")
                dut.x_ready.value = int(rng.random() < 0.7)
                dut.credit_ok.value = int(rng.random() < 0.6)

        budget = 10 * (sum(len(p) for p in packets) // lanes + len(expected) * beats) + 100
        try:
            await with_timeout(network_side(), budget * CLK_NS, "ns")
        except SimTimeoutError:
            errors.append(f"only {len(ends)} images of {len(expected)} in {budget} clocks")
        try:  # the beats dropped after the last image, then a few quiet clocks
            await with_timeout(source.wait(), (4 * beats + 50) * CLK_NS, "ns")
        except SimTimeoutError:
            errors.append("the source could not finish: the framer stopped taking beats")
        await ClockCycles(dut.clk, 2 * beats + 5)
        if dut.x_valid.value != 0:
            errors.append("x_valid after the last image")
        images = [taken[i:i + beats] for i in range(0, len(taken), beats)]
        for j, (exp, got) in enumerate(zip(expected, images, strict=False)):
            if exp[0] != got:
                errors.append(f"image {j}: beats {got}, expected {exp[0]}")
        exp_ends = [(f, last) for _, f, last in expected]
        if ends != exp_ends:
            bad = next(j for j, (a, b) in enumerate(zip(ends + [None] * len(exp_ends),
                                                        exp_ends, strict=False)) if a != b)
            errors.append(f"image {bad}: (flag, last) {ends[bad:bad + 3]} expected "
                          f"{exp_ends[bad:bad + 3]}")
        if accepted.count() != len(packets):
            errors.append(f"s side accepted {accepted.count()} packets of {len(packets)}")
        if starts != len(expected):
            errors.append(f"{starts} starts for {len(expected)} images")
        dut._log.warning("seed %d: %d packets, %d images, %d flagged", seed, len(packets),
                         len(expected), sum(f for f, _ in exp_ends))
        assert not errors, f"{len(errors)} errors: " + "; ".join(errors[:8])


# ----------------------------------------------------------------------------- pytest runner

WRAPPER = """\
-- generated by tb/axis_framer/test_axis_framer.py: axis_framer with fixed generics
library ieee;
use ieee.std_logic_1164.all;

entity axis_framer_tb is
  port (
    clk, rst, s_tvalid, s_tlast, x_ready, credit_ok : in std_logic;
    s_tready, x_valid, start, img_end, img_flag, img_last : out std_logic;
    s_tdata : in  std_logic_vector({bits} - 1 downto 0);
    x_data  : out std_logic_vector({bits} - 1 downto 0)
  );
end entity axis_framer_tb;

architecture wrap of axis_framer_tb is
begin
  u_dut : entity work.axis_framer
    generic map (BEATS => {beats}, DATA_BITS => {bits}, BATCH => {batch})
    port map (clk => clk, rst => rst, s_tvalid => s_tvalid, s_tready => s_tready,
              s_tdata => s_tdata, s_tlast => s_tlast, x_valid => x_valid, x_ready => x_ready,
              x_data => x_data, credit_ok => credit_ok, start => start, img_end => img_end,
              img_flag => img_flag, img_last => img_last);
end architecture wrap;
"""

CASES = [  # (BEATS, lanes, BATCH)
    (5, 1, False), (7, 3, False), (1, 1, False), (4, 2, True), (1, 1, True), (6, 1, True),
]


def _id(case: tuple[int, int, bool]) -> str:
    beats, lanes, batch = case
    return f"beats{beats}-lanes{lanes}-{'batch' if batch else 'image'}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_axis_framer(case: tuple[int, int, bool], request: pytest.FixtureRequest) -> None:
    """axis_framer against the tlast rules for one parameter set."""
    from mnist_fpga.paths import BUILD
    from mnist_fpga.tb.common import rtl_sources, run_sim, simulator_missing

    if reason := simulator_missing():
        pytest.skip(reason)
    beats, lanes, batch = case
    tag = request.node.name.replace("[", "-").replace("]", "")
    build = BUILD / "tb" / tag
    build.mkdir(parents=True, exist_ok=True)
    wrapper = build / "axis_framer_tb.vhd"
    wrapper.write_text(WRAPPER.format(beats=beats, bits=8 * lanes,
                                      batch="true" if batch else "false"))
    seed = int(os.environ.get("TB_SEED", zlib.crc32(tag.encode()) & 0xFFFF))
    print(f"seed {seed} (TB_SEED={seed} replays)")
    env = {"FR_BEATS": beats, "FR_LANES": lanes, "FR_BATCH": int(batch), "FR_SEED": seed,
           "FR_PACKETS": os.environ.get("TB_FRAMER_PACKETS", "60")}
    run_sim(toplevel="axis_framer_tb", module="test_axis_framer",
            vhdl_sources=[*rtl_sources("axis_framer"), str(wrapper)], build_dir=build / "sim",
            extra_env=env, bench_dir=Path(__file__).resolve().parent)
