"""result_fifo bench: the FIFO alone against a bounded Python deque, clock by clock.

Every clock the driver picks random ``in_valid`` / ``in_data`` / ``out_ready`` (phases of
mostly-push, mostly-pop and mixed traffic, so the FIFO runs full and empty), then the
checker compares ``in_ready``, ``out_valid``, ``out_data`` and ``count`` with the model
before the edge, and the model takes the handshakes that the edge performs. A reset
in the middle empties it. Generics are fixed by a generated wrapper (GHDL's llvm back
end cannot override top-level generics at run time). ``TB_SEED`` sets the seed
(default fixed per parameter set), ``TB_FIFO_CYCLES`` the clocks (default 3000).
"""

from __future__ import annotations

import os
import random
import zlib
from collections import deque
from pathlib import Path

import pytest

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ReadOnly, RisingEdge
except ImportError:  # pragma: no cover - pytest collection without cocotb
    cocotb = None

from mnist_fpga.tb.selftest import Fault, checker_tests, mismatch, verdict

CLK_NS = 10

def as_int(value) -> int | None:
    """A signal's value as an integer, None when it has unknown bits."""
    if isinstance(value, int):  # integer ports (count)
        return value
    return int(value) if value.is_resolvable else None


if cocotb is not None:

    class FifoTB:
        """Clock, reset, the random driver and the deque model of ``result_fifo_tb``."""

        def __init__(self, dut, seed: int) -> None:
            self.dut = dut
            self.width = int(os.environ["FIFO_WIDTH"])
            self.depth = int(os.environ["FIFO_DEPTH"])
            self.rng = random.Random(seed)
            self.model: deque[tuple[int, int]] = deque()  # (entry number, data)
            self.pushed = 0  # entries pushed so far: each one's number
            dut.rst.value = 1
            dut.in_valid.value = 0
            dut.in_data.value = 0
            dut.out_ready.value = 0
            Clock(dut.clk, CLK_NS, unit="ns").start()

        async def reset(self) -> None:
            self.dut.rst.value = 1
            await RisingEdge(self.dut.clk)
            self.dut.rst.value = 0
            self.model.clear()

        def drive(self, p_push: float, p_pop: float) -> tuple[int, int, int]:
            """Random inputs for the next edge."""
            v = int(self.rng.random() < p_push)
            d = self.rng.randrange(1 << self.width)
            r = int(self.rng.random() < p_pop)
            self.dut.in_valid.value, self.dut.in_data.value, self.dut.out_ready.value = v, d, r
            return v, d, r

        def check(self, errors: list[str], cycle: int) -> None:
            """The FIFO's outputs against the model, before the edge."""
            dut, m = self.dut, self.model
            exp = {"in_ready": int(len(m) < self.depth), "out_valid": int(len(m) > 0),
                   "count": len(m)}
            if m:
                exp["out_data"] = m[0][1]
            for name, e in exp.items():
                got = getattr(dut, name).value
                if (g := as_int(got)) != e:
                    site = f"clock {cycle} {name}" + (f" of entry {m[0][0]}" if m and
                                                      name == "out_data" else "")
                    errors.append(mismatch(site, e, got if g is None else g))

        def step(self, v: int, d: int, r: int) -> tuple[bool, bool]:
            """The edge's handshakes on the model: push and pop as the RTL must take them."""
            push, pop = v == 1 and len(self.model) < self.depth, r == 1 and len(self.model) > 0
            if pop:
                self.model.popleft()
            if push:
                self.model.append((self.pushed, d))
                self.pushed += 1
            return push, pop

    async def run(dut, seed: int, cycles: int, fault: bool) -> None:
        tb = FifoTB(dut, seed)
        await tb.reset()
        errors: list[str] = []
        injected = None
        pushes = pops = fulls = 0
        phases = ((0.9, 0.2), (0.2, 0.9), (0.6, 0.6), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0))
        reset_at = cycles // 2
        for cycle in range(cycles):
            if cycle == reset_at:
                await tb.reset()
            v, d, r = tb.drive(*phases[(cycle // 97) % len(phases)])
            await ReadOnly()
            if fault and injected is None and cycle >= cycles - 5 and tb.model:
                n, d = tb.model[0]  # checker self-test: one corrupted model entry
                tb.model[0] = (n, d ^ 1)
                injected = Fault(f"out_data of entry {n}", d ^ 1, d)
            tb.check(errors, cycle)
            fulls += len(tb.model) == tb.depth
            push, pop = tb.step(v, d, r)
            pushes, pops = pushes + push, pops + pop
            await RisingEdge(dut.clk)
        dut._log.warning("seed %d: %d pushes, %d pops, %d clocks full", seed, pushes, pops, fulls)
        assert fulls > 0 and pops > tb.depth, "the traffic never filled and drained the FIFO"
        verdict(errors, injected)

    def _seed() -> int:
        return int(os.environ.get("FIFO_SEED", "1"))

    fifo_random, fifo_random_catches_injected_fault = checker_tests(
        __name__, "fifo_random",
        "Random push/pop traffic and a reset, checked every clock against the deque.",
        lambda dut: run(dut, _seed(), int(os.environ.get("FIFO_CYCLES", "3000")), False),
        lambda dut: run(dut, _seed() + 1, 400, True))  # one corrupted model entry

    @cocotb.test(skip=True)  # only when named (COCOTB_TEST_FILTER): it ends in an assertion
    async def fifo_must_take(dut) -> None:
        """MUST_TAKE: traffic that never offers an entry while full is checked against the
        deque; then one in_valid while full must stop the simulation (an entry lost)."""
        tb = FifoTB(dut, _seed())
        await tb.reset()
        errors: list[str] = []
        fulls = 0
        for cycle in range(600):
            v, d, r = tb.drive(*((0.9, 0.3), (0.3, 0.9))[(cycle // 50) % 2])
            if len(tb.model) == tb.depth:  # a producer that keeps the contract
                v = dut.in_valid.value = 0
            await ReadOnly()
            tb.check(errors, cycle)
            fulls += len(tb.model) == tb.depth
            tb.step(v, d, r)
            await RisingEdge(dut.clk)
        assert fulls > 0, "the traffic never filled the FIFO"
        assert not errors, f"{len(errors)} errors: " + "; ".join(errors[:10])
        dut.out_ready.value = 0
        while len(tb.model) < tb.depth:
            dut.in_valid.value, dut.in_data.value = 1, 0
            tb.step(1, 0, 0)
            await RisingEdge(dut.clk)
        for _ in range(3):  # in_valid while full: result_fifo's assertion ends the run here
            await RisingEdge(dut.clk)
        raise AssertionError("in_valid while full (MUST_TAKE) did not stop the simulation")


# ----------------------------------------------------------------------------- pytest runner

WRAPPER = """\
-- generated by tb/result_fifo/test_result_fifo.py: result_fifo with fixed generics
library ieee;
use ieee.std_logic_1164.all;

entity result_fifo_tb is
  port (
    clk, rst, in_valid, out_ready : in std_logic;
    in_ready, out_valid : out std_logic;
    in_data  : in  std_logic_vector({width} - 1 downto 0);
    out_data : out std_logic_vector({width} - 1 downto 0);
    count    : out natural range 0 to {depth}
  );
end entity result_fifo_tb;

architecture wrap of result_fifo_tb is
begin
  u_dut : entity work.result_fifo
    generic map (WIDTH => {width}, DEPTH => {depth})
    port map (clk => clk, rst => rst, in_valid => in_valid, in_ready => in_ready,
              in_data => in_data, out_valid => out_valid, out_ready => out_ready,
              out_data => out_data, count => count);
end architecture wrap;
"""

CASES = [(1, 1), (8, 3), (6, 4), (10, 8)]  # (WIDTH, DEPTH): DEPTH 1, odd, power of two


def _run_fifo(width: int, depth: int, request: pytest.FixtureRequest,
              must_take: bool = False, **env: object) -> None:
    """The wrapper with these generics, then the cocotb module on it (``env`` added)."""
    from mnist_fpga.paths import BUILD
    from mnist_fpga.tb.common import rtl_sources, run_sim, simulator_missing

    if reason := simulator_missing():
        pytest.skip(reason)
    tag = request.node.name.replace("[", "-").replace("]", "")
    build = BUILD / "tb" / tag
    build.mkdir(parents=True, exist_ok=True)
    wrapper = build / "result_fifo_tb.vhd"
    text = WRAPPER.format(width=width, depth=depth)
    if must_take:
        generics = f"DEPTH => {depth})"
        assert text.count(generics) == 1
        text = text.replace(generics, f"DEPTH => {depth}, MUST_TAKE => true)")
    wrapper.write_text(text)
    seed = int(os.environ.get("TB_SEED", zlib.crc32(tag.encode()) & 0xFFFF))
    print(f"seed {seed} (TB_SEED={seed} replays)")
    env = {"FIFO_WIDTH": width, "FIFO_DEPTH": depth, "FIFO_SEED": seed,
           "FIFO_CYCLES": os.environ.get("TB_FIFO_CYCLES", "3000"), **env}
    run_sim(toplevel="result_fifo_tb", module="test_result_fifo",
            vhdl_sources=[*rtl_sources("result_fifo"), str(wrapper)], build_dir=build / "sim",
            extra_env=env, bench_dir=Path(__file__).resolve().parent)


@pytest.mark.parametrize(("width", "depth"), CASES, ids=[f"w{w}-d{d}" for w, d in CASES])
def test_result_fifo(width: int, depth: int, request: pytest.FixtureRequest) -> None:
    """result_fifo against a bounded deque for one parameter set."""
    _run_fifo(width, depth, request)


@pytest.mark.parametrize("depth", [1, 3], ids=lambda d: f"w8-d{d}-must-take")
def test_result_fifo_must_take(depth: int, request: pytest.FixtureRequest) -> None:
    """MUST_TAKE (the AXI4-Stream top's FIFOs): an in_valid while full is not a silent
    drop: result_fifo's assertion failure ends the simulation there."""
    with pytest.raises(SystemExit) as exc:
        _run_fifo(8, depth, request, must_take=True, COCOTB_TEST_FILTER="fifo_must_take")
    msg = str(exc.value)
    assert msg.startswith("simulator warning:") and (
        "result_fifo: in_valid while full and MUST_TAKE" in msg), msg
