"""result_fifo bench: the FIFO alone against a bounded Python deque, clock by clock.

Every clock the driver picks random ``in_valid`` / ``in_data`` / ``out_ready`` (phases of
mostly-push, mostly-pop and mixed traffic, so the FIFO runs full and empty), then the
checker compares ``in_ready``, ``out_valid``, ``out_data`` and ``count`` with the model
before the edge, and the model takes the handshakes that the edge performs. A reset
in the middle empties it. The harness is tb/bench.py (the wrapper with
the generics, the parameters, the seed). ``TB_SEED`` sets the seed
(default fixed per parameter set), ``TB_FIFO_CYCLES`` the clocks (default 3000).
"""

from __future__ import annotations

from collections import deque

import pytest

from mnist_fpga.tb.bench import HAVE_COCOTB, UnitRun, params, run_size
from mnist_fpga.tb.selftest import Fault, checker_tests, mismatch, verdict


def as_int(value) -> int | None:
    """A signal's value as an integer, None when it has unknown bits."""
    if isinstance(value, int):  # integer ports (count)
        return value
    return int(value) if value.is_resolvable else None


class FifoModel:
    """The FIFO as it must behave: a deque of at most ``depth`` (entry number, data)."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.entries: deque[tuple[int, int]] = deque()
        self.pushed = 0  # entries pushed so far: each one's number

    def full(self) -> bool:
        return len(self.entries) == self.depth

    def outputs(self) -> dict[str, int]:
        """in_ready, out_valid, count and (unless empty) out_data, before the edge."""
        m = self.entries
        exp = {"in_ready": int(len(m) < self.depth), "out_valid": int(len(m) > 0),
               "count": len(m)}
        if m:
            exp["out_data"] = m[0][1]
        return exp

    def step(self, v: int, d: int, r: int) -> tuple[bool, bool]:
        """The edge's handshakes: push and pop as the RTL must take them."""
        push, pop = v == 1 and len(self.entries) < self.depth, r == 1 and len(self.entries) > 0
        if pop:
            self.entries.popleft()
        if push:
            self.entries.append((self.pushed, d))
            self.pushed += 1
        return push, pop


def check(dut, model: FifoModel, cycle: int) -> list[str]:
    """The FIFO's outputs against the model, before the edge."""
    errors = []
    m = model.entries
    for name, e in model.outputs().items():
        got = getattr(dut, name).value
        if (g := as_int(got)) != e:
            site = f"clock {cycle} {name}" + (f" of entry {m[0][0]}" if m and
                                              name == "out_data" else "")
            errors.append(mismatch(site, e, got if g is None else g))
    return errors


if HAVE_COCOTB:
    import cocotb
    from cocotb.triggers import ReadOnly, RisingEdge

    from mnist_fpga.tb.bench import TB

    class FifoTB(TB):
        """Clock, reset and the random driver of ``result_fifo_tb``; the model it feeds."""

        def __init__(self, dut, seed: int) -> None:
            super().__init__(dut, seed, ("in_valid", "in_data", "out_ready"))
            self.width = params()["width"]
            self.model = FifoModel(params()["depth"])

        async def reset(self) -> None:
            """One clock of reset (no clock after it): the model empties too."""
            await super().reset(cycles=1, after=0)
            self.model.entries.clear()

        def drive(self, p_push: float, p_pop: float) -> tuple[int, int, int]:
            """Random inputs for the next edge."""
            v = int(self.rng.random() < p_push)
            d = self.rng.randrange(1 << self.width)
            r = int(self.rng.random() < p_pop)
            self.dut.in_valid.value, self.dut.in_data.value, self.dut.out_ready.value = v, d, r
            return v, d, r

    async def run(dut, fault: bool) -> None:
        seed, cycles = run_size(fault, params()["cycles"], 400)
        tb = FifoTB(dut, seed)
        model = tb.model
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
            if fault and injected is None and cycle >= cycles - 5 and model.entries:
                n, d = model.entries[0]  # checker self-test: one corrupted model entry
                model.entries[0] = (n, d ^ 1)
                injected = Fault(f"out_data of entry {n}", d ^ 1, d)
            errors += check(dut, model, cycle)
            fulls += model.full()
            push, pop = model.step(v, d, r)
            pushes, pops = pushes + push, pops + pop
            await RisingEdge(dut.clk)
        dut._log.warning("seed %d: %d pushes, %d pops, %d clocks full", seed, pushes, pops, fulls)
        assert fulls > 0 and pops > model.depth, "the traffic never filled and drained the FIFO"
        verdict(errors, injected)

    fifo_random, fifo_random_catches_injected_fault = checker_tests(
        __name__, "fifo_random",
        "Random push/pop traffic and a reset, checked every clock against the deque.", run)

    @cocotb.test(skip=True)  # only when named (COCOTB_TEST_FILTER): it ends in an assertion
    async def fifo_must_take(dut) -> None:
        """MUST_TAKE: traffic that never offers an entry while full is checked against the
        deque; then one in_valid while full must stop the simulation (an entry lost)."""
        tb = FifoTB(dut, params()["seed"])
        model = tb.model
        await tb.reset()
        errors: list[str] = []
        fulls = 0
        for cycle in range(600):
            v, d, r = tb.drive(*((0.9, 0.3), (0.3, 0.9))[(cycle // 50) % 2])
            if model.full():  # a producer that keeps the contract
                v = dut.in_valid.value = 0
            await ReadOnly()
            errors += check(dut, model, cycle)
            fulls += model.full()
            model.step(v, d, r)
            await RisingEdge(dut.clk)
        assert fulls > 0, "the traffic never filled the FIFO"
        verdict(errors)
        dut.out_ready.value = 0
        while not model.full():
            dut.in_valid.value, dut.in_data.value = 1, 0
            model.step(1, 0, 0)
            await RisingEdge(dut.clk)
        await tb.clocks(3)  # in_valid while full: result_fifo's assertion ends the run here
        raise AssertionError("in_valid while full (MUST_TAKE) did not stop the simulation")


# ----------------------------------------------------------------------------- pytest runner

CASES = [(1, 1), (8, 3), (6, 4), (10, 8)]  # (WIDTH, DEPTH): DEPTH 1, odd, power of two


def _run_fifo(width: int, depth: int, request: pytest.FixtureRequest,
              must_take: bool = False, **env: object) -> None:
    """The wrapper with these generics, then the cocotb module on it (``env`` added)."""
    from mnist_fpga.tb.common import env_int, rtl_sources

    run = UnitRun(request)
    generics: dict[str, int | str] = {"WIDTH": width, "DEPTH": depth}
    if must_take:
        generics["MUST_TAKE"] = "true"
    ports = [("in_valid", "in", None), ("in_ready", "out", None), ("in_data", "in", width),
             ("out_valid", "out", None), ("out_ready", "in", None), ("out_data", "out", width),
             ("count", "out", f"natural range 0 to {depth}")]
    wrap = run.wrapper("result_fifo", generics, ports)
    run.run("result_fifo_tb", [*rtl_sources("result_fifo"), wrap],
            {"width": width, "depth": depth, "cycles": env_int("TB_FIFO_CYCLES", 3000, lo=1)},
            **env)


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
