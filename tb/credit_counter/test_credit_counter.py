"""credit_counter bench: the counter alone against a Python integer, clock by clock.

A random caller that keeps the unit's contract (``take`` only while ``ok`` is '1',
``give`` only while something is taken) runs through phases that fill the counter to
LIMIT and drain it, with takes and gives in the same clock; every clock ``ok`` and
``used`` are compared with the model before the edge. A reset in the middle clears it.
Generics are fixed by a generated wrapper. ``TB_SEED`` sets the seed (default fixed per
parameter set).
"""

from __future__ import annotations

import pytest

from mnist_fpga.tb.bench import HAVE_COCOTB, UnitRun, params, run_size
from mnist_fpga.tb.selftest import Fault, checker_tests, mismatch, verdict

CYCLES = 2000


def check(cycle: int, n: int, limit: int, exp_used: int, ok, used) -> list[str]:
    """``ok`` and ``used`` before the edge against the count ``n`` (``exp_used`` expected)."""
    errors = []
    if not ok.is_resolvable or int(ok) != int(n < limit):
        errors.append(mismatch(f"clock {cycle} ok", int(n < limit), ok))
    if int(used) != exp_used:
        errors.append(mismatch(f"clock {cycle} used", exp_used, int(used)))
    return errors


if HAVE_COCOTB:
    from cocotb.triggers import ReadOnly, RisingEdge

    from mnist_fpga.tb.bench import TB

    class CreditTB(TB):
        """Clock, reset and a random caller that keeps the counter's contract."""

        def __init__(self, dut, seed: int) -> None:
            super().__init__(dut, seed, ("take", "give"))
            self.limit = params()["limit"]

        def drive(self, n: int, p_take: float, p_give: float) -> tuple[int, int]:
            """take only below LIMIT, give only while something is taken (``n`` taken)."""
            take = int(n < self.limit and self.rng.random() < p_take)
            give = int(n > 0 and self.rng.random() < p_give)
            self.dut.take.value, self.dut.give.value = take, give
            return take, give

    async def run(dut, fault: bool) -> None:
        seed, cycles = run_size(fault, CYCLES, 300)
        tb = CreditTB(dut, seed)
        limit = tb.limit
        await tb.reset(cycles=1, after=0)
        n, errors, at_limit, injected = 0, [], 0, None  # n: the model, credits taken
        phases = ((0.9, 0.1), (0.1, 0.9), (0.5, 0.5), (1.0, 1.0))
        for cycle in range(cycles):
            if cycle == cycles // 2:  # reset with a take pending: it must not count
                dut.take.value, dut.give.value = int(n < limit), 0
                await tb.reset(cycles=1, after=0)
                n = 0
            take, give = tb.drive(n, *phases[(cycle // 50) % len(phases)])
            await ReadOnly()
            exp_used = n
            if fault and cycle == cycles - 3:  # checker self-test: one wrong expected count
                exp_used = n + 1
                injected = Fault(f"clock {cycle} used", exp_used, n)
            errors += check(cycle, n, limit, exp_used, dut.ok.value, dut.used.value)
            at_limit += n == limit
            n += take - give
            await RisingEdge(dut.clk)
        dut._log.warning("seed %d: %d clocks at LIMIT", seed, at_limit)
        assert at_limit > 0, "the traffic never reached LIMIT"
        verdict(errors, injected)

    credit_random, credit_random_catches_injected_fault = checker_tests(
        __name__, "credit_random",
        "Random takes and gives within the contract, checked every clock.", run)


# ----------------------------------------------------------------------------- pytest runner

@pytest.mark.parametrize("limit", [1, 2, 5], ids=lambda v: f"limit{v}")
def test_credit_counter(limit: int, request: pytest.FixtureRequest) -> None:
    """credit_counter against an integer model for one LIMIT."""
    from mnist_fpga.tb.common import rtl_sources

    run = UnitRun(request)
    ports = [("take", "in", None), ("give", "in", None), ("ok", "out", None),
             ("used", "out", f"natural range 0 to {limit}")]
    wrap = run.wrapper("credit_counter", {"LIMIT": limit}, ports)
    run.run("credit_counter_tb", [*rtl_sources("credit_counter"), wrap], {"limit": limit})
