"""The unit benches' harness: what every ``tb/<unit>/test_<unit>.py`` shares, once.

A bench file holds both sides of a run. The pytest side (:class:`UnitRun`) skips without
a simulator, names the build folder after the test id (:func:`build_tag`), fixes the
case's seed (:func:`case_seed`: ``TB_SEED``, else a CRC of a key, printed), writes the
wrapper that fixes the generics (tb/unitwrap.py) and calls :func:`tb.common.run_sim`
with the parameters as one JSON environment variable. The cocotb side, in cocotb's
example style, reads them (:func:`params`) and builds its bench from small pieces:
:class:`TB` (clock, inputs at rest, reset; each bench's own class adds its driver),
:class:`StreamDriver` (a valid/ready source with random idle clocks and junk data),
:class:`StreamSink` (random ready back-pressure; a stalled output must hold still) and
:class:`StrobeMonitor` (a sample in every clock a strobe is '1'); the model and the
checker stay in the bench, the checker's self-test is :func:`tb.selftest.checker_tests`.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import random
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

CLK_NS = 10  # every bench's clock period
CLOCK_RESET = [("clk", "in", None), ("rst", "in", None)]  # every unit's first ports
PARAMS_VAR = "BENCH_PARAMS"  # the pytest side's parameters, as JSON, for the cocotb side
# cocotb is missing only where pytest collects the benches without simulating them
HAVE_COCOTB = importlib.util.find_spec("cocotb") is not None


# ----------------------------------------------------------------------------- pytest side

def build_tag(request: Any, sim: bool = False) -> str:
    """The build folder's name: the pytest id without brackets.

    ``sim``: the simulator after a double dash (the network benches keep one folder per
    simulator; the unit benches' run_sim has a subfolder per simulator instead).
    """
    tag = request.node.name.replace("[", "-").replace("]", "")
    if sim:
        from mnist_fpga.tb.common import simulator

        tag += f"--{simulator()}"
    return tag


def case_seed(key: str) -> int:
    """The seed of one case: ``TB_SEED``, else fixed per ``key`` (a CRC); printed."""
    from mnist_fpga.tb.common import env_int

    seed = env_int("TB_SEED", zlib.crc32(key.encode()) & 0xFFFF, lo=0)
    print(f"seed {seed} (TB_SEED={seed} replays)")
    return seed


def skip_without_simulator() -> None:
    """Skip the test (one line, why) when the selected simulator is not installed."""
    import pytest

    from mnist_fpga.tb.common import simulator_missing

    if reason := simulator_missing():
        pytest.skip(reason)


class UnitRun:
    """One parameter set of a unit bench, on the pytest side.

    The build folder is ``build/tb/<tag>``; the seed is fixed per ``seed_key`` (default
    the tag). The cocotb module is the test's own file (``request.path``).
    """

    def __init__(self, request: Any, seed_key: str | None = None) -> None:
        from mnist_fpga.paths import BUILD

        skip_without_simulator()
        self.tag = build_tag(request)
        self.build = BUILD / "tb" / self.tag
        self.build.mkdir(parents=True, exist_ok=True)
        self.bench = Path(request.path)
        self.seed = case_seed(seed_key or self.tag)

    def wrapper(self, unit: str, generics: dict[str, int | str], ports: list,
                tied: dict[str, str] | None = None) -> Path:
        """``<unit>_tb`` with these generics in the build folder (tb/unitwrap.py): clk,
        rst and ``ports`` passed through, ``tied`` inputs held at constants."""
        from mnist_fpga.tb.unitwrap import write_wrapper

        return write_wrapper(self.build, unit, generics, [*CLOCK_RESET, *ports], self.tag, tied)

    def run(self, toplevel: str, sources: Sequence[str | Path], params: dict[str, Any],
            **env: Any) -> None:
        """Simulate the cocotb module on ``toplevel``; ``params`` (with the seed) reach
        :func:`params`, ``env`` the environment (``COCOTB_TEST_FILTER``)."""
        from mnist_fpga.tb.common import run_sim

        doc = json.dumps({"seed": self.seed, **params}, default=str)
        run_sim(toplevel=toplevel, module=self.bench.stem,
                vhdl_sources=[str(s) for s in sources], build_dir=self.build / "sim",
                extra_env={PARAMS_VAR: doc, **env}, bench_dir=self.bench.parent)


# ----------------------------------------------------------------------------- cocotb side

def phases(values: Sequence[float], length: int) -> Callable[[int], float]:
    """A probability per clock (or beat) ``n`` in runs of ``length``: ``values`` in turn."""
    return lambda n: values[(n // length) % len(values)]


@functools.cache
def params() -> dict[str, Any]:
    """The parameters :meth:`UnitRun.run` handed to this simulation (``seed`` included)."""
    return json.loads(os.environ[PARAMS_VAR])


def run_size(fault: bool, count: int, fault_count: int, offset: int = 1) -> tuple[int, int]:
    """(seed, count) of a bench's run: the case's seed and ``count``; for the checker's
    self-test (``fault``) a run of its own, seed + ``offset`` and ``fault_count`` items."""
    seed = params()["seed"]
    return (seed + offset, fault_count) if fault else (seed, count)


if HAVE_COCOTB:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ReadOnly, RisingEdge

    class TB:
        """Clock, reset and a random source: the base of every bench's TB class.

        ``inputs`` (other than clk and rst) are driven '0' from the start, rst '1'
        (``has_reset=False``: a unit without rst, the ROM). ``clock_impl="gpi"`` runs the
        clock in the simulator interface rather than in a Python task (same edges, less
        CPU in long runs).
        """

        def __init__(self, dut: Any, seed: int = 0, inputs: Iterable[str] = (),
                     clock_impl: str | None = None, has_reset: bool = True) -> None:
            self.dut = dut
            self.rng = random.Random(seed)
            if has_reset:
                dut.rst.value = 1
            for name in inputs:
                getattr(dut, name).value = 0
            Clock(dut.clk, CLK_NS, unit="ns", impl=clock_impl).start()

        async def reset(self, cycles: int = 3, after: int = 1) -> None:
            """rst '1' for ``cycles`` rising edges, then '0' for ``after`` more."""
            self.dut.rst.value = 1
            for _ in range(cycles):
                await RisingEdge(self.dut.clk)
            self.dut.rst.value = 0
            for _ in range(after):
                await RisingEdge(self.dut.clk)

        async def clocks(self, n: int) -> None:
            """Wait ``n`` rising edges (a stray late output would show up meanwhile)."""
            for _ in range(n):
                await RisingEdge(self.dut.clk)

    class StreamDriver:
        """The ``in_valid``/``in_data`` (``in_last``) side of a unit, with ``in_ready``
        unless the unit is always ready (``ready=False``: every beat taken at its edge).

        Before each beat, idle clocks with probability ``p_gap`` each, in which
        ``junk()`` drives data the unit must ignore. ``sent`` counts the beats taken,
        ``waits`` the clocks a beat waited for ``in_ready``.
        """

        def __init__(self, dut: Any, rng: random.Random, junk: Callable[[], None],
                     ready: bool = True) -> None:
            self.dut, self.rng, self.junk, self.ready = dut, rng, junk, ready
            self.sent = 0
            self.waits = 0

        async def idle(self, p_gap: float) -> None:
            """Idle clocks (``in_valid`` '0', junk on the bus), each with ``p_gap``."""
            while self.rng.random() < p_gap:
                self.dut.in_valid.value = 0
                self.junk()
                await RisingEdge(self.dut.clk)

        async def beat(self, data: int, last: int | None = None) -> None:
            """One beat, held until the edge that takes it."""
            dut = self.dut
            dut.in_valid.value = 1
            dut.in_data.value = data
            if last is not None:
                dut.in_last.value = last
            while True:
                await ReadOnly()
                taken = not self.ready or dut.in_ready.value == 1
                self.waits += not taken
                await RisingEdge(dut.clk)
                if taken:
                    break
            self.sent += 1

        async def send(self, beats: Iterable[int], p_gap: Callable[[int], float],
                       lasts: Sequence[int] | None = None) -> None:
            """The beats in order, idle clocks before each (``p_gap(sent)``), then idle."""
            for k, data in enumerate(beats):
                await self.idle(p_gap(self.sent))
                await self.beat(data, None if lasts is None else lasts[k])
            self.dut.in_valid.value = 0

    class StreamSink:
        """The ``out_valid``/``out_ready`` side: random back-pressure, every transfer kept.

        ``out_ready`` is '1' with probability ``p_ready(clock)`` (runs of none, some and
        heavy back-pressure); ``sample()`` reads a transfer in the ReadOnly phase. While
        ``out_valid`` is '1' and ``out_ready`` '0' the output must not change (an error);
        ``stalls`` counts those clocks.
        """

        def __init__(self, dut: Any, seed: int, sample: Callable[[], Any],
                     p_ready: Callable[[int], float]) -> None:
            self.dut, self.sample, self.p_ready = dut, sample, p_ready
            self.rng = random.Random(seed)
            self.got: list[Any] = []
            self.errors: list[str] = []
            self.stalls = 0
            cocotb.start_soon(self._run())

        async def _run(self) -> None:
            dut, held, cycle = self.dut, None, 0
            while True:
                ready = self.rng.random() < self.p_ready(cycle)
                dut.out_ready.value = int(ready)
                await ReadOnly()
                now = self.sample() if dut.out_valid.value == 1 else None
                if held is not None and now != held:
                    self.errors.append(f"output {len(self.got)}: changed from {held} to {now} "
                                       "while stalled (out_valid=1, out_ready=0)")
                if now is not None and ready:
                    self.got.append(now)
                held = now if now is not None and not ready else None
                self.stalls += held is not None
                await RisingEdge(dut.clk)
                cycle += 1

        async def wait_for(self, n: int) -> None:
            """Until ``n`` transfers are in (bound it with ``with_timeout``)."""
            while len(self.got) < n:
                await RisingEdge(self.dut.clk)

    class StrobeMonitor:
        """``sample()`` after every rising edge where ``valid`` is '1' (a strobe stuck
        at '1' counts once per clock)."""

        def __init__(self, clk: Any, valid: Any, sample: Callable[[], Any]) -> None:
            self.clk, self.valid, self.sample = clk, valid, sample
            self.seen: list[Any] = []
            cocotb.start_soon(self._run())

        async def _run(self) -> None:
            while True:
                await RisingEdge(self.clk)
                await ReadOnly()
                if self.valid.value == 1:
                    self.seen.append(self.sample())

        async def wait_for(self, n: int) -> None:
            """Until ``n`` strobes are in (bound it with ``with_timeout``)."""
            while len(self.seen) < n:
                await RisingEdge(self.clk)
