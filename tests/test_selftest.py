"""The checkers' self-tests (tb/selftest.py) pass on the mismatch they injected, only.

``expect_fail=True`` passed on any ``AssertionError``: a count mismatch, a mismatch in
another lane or a broken assertion also "caught" the injected fault. Here the verdict
is fed such failures (cheap, no simulator), and two benches run under an RTL mutant
that breaks them elsewhere: their self-test, which passed before, now fails (and the
mutant is still killed).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mnist_fpga.tb.selftest import Fault, FaultCaught, checker_tests, inject, mismatch, verdict

ROOT = Path(__file__).resolve().parent.parent
LANE3 = Fault("image 0 lane 3", 18, 17)  # corrupted 17 to 18: a correct DUT gives 17


def test_verdict_accepts_exactly_the_injected_fault() -> None:
    errors = [mismatch("image 0 lane 3", 18, 17), "image 0 lane 3 acc_flat: expected 18 got 17"]
    with pytest.raises(FaultCaught, match="2 errors, each the injected fault"):
        verdict(errors, LANE3)


@pytest.mark.parametrize(("errors", "why"), [
    ([], "went unreported"),
    ([mismatch("image 0 lane 2", 18, 17)], "other than"),             # another lane
    ([mismatch("image 0 lane 3", 18, 16)], "other than"),             # another value
    ([mismatch("image 10 lane 3", 18, 17)], "other than"),            # "image 0" not a prefix
    ([mismatch("image 0 lane 3", 18, 17), "expected 4 output transfers, got 3"],
     "other than"),                                                   # plus a count mismatch
    (["only 3 images of 4 in 500 clocks"], "other than"),            # a timeout as a message
])
def test_verdict_rejects_any_other_failure(errors: list[str], why: str) -> None:
    """Each of these is an AssertionError, which expect_fail took for the fault."""
    with pytest.raises(AssertionError, match=f"checker self-test: .*{why}"):
        verdict(errors, LANE3)


def test_verdict_of_a_bench_run() -> None:
    verdict([])
    with pytest.raises(AssertionError, match=r"^1 errors: clock 3 p: expected 1 got 0$"):
        verdict([mismatch("clock 3 p", 1, 0)])


def test_inject_returns_the_fault() -> None:
    values = [5, 6, 7]
    assert inject(values, -1, 8, "item 2") == Fault("item 2", 8, 7)
    assert values == [5, 6, 8]
    with pytest.raises(ValueError, match="equals the true one"):
        inject(values, 0, 5, "item 0")


def _outcome(run) -> str:
    """The self-test of checker_tests around the faulted run ``run``: "passed" or the error."""
    _, selftest = checker_tests(__name__, "demo", "demo", run, run)
    try:
        asyncio.run(selftest.func(None))
    except Exception as exc:  # the outcome is the point
        return f"{type(exc).__name__}: {exc}"
    return "passed"


def test_checker_tests_selftest_outcomes() -> None:
    """Only a faulted run that ends in the verdict on its own fault passes."""
    from cocotb.triggers import SimTimeoutError

    async def caught(dut) -> None:
        verdict([str(LANE3)], LANE3)

    async def no_fault(dut) -> None:  # a bench that forgot to inject, or never checked
        verdict([])

    async def timeout(dut) -> None:
        raise SimTimeoutError

    async def other_assertion(dut) -> None:
        raise AssertionError("the traffic never reached LIMIT")

    assert _outcome(caught) == "passed"
    assert "the faulted run passed" in _outcome(no_fault)
    assert _outcome(timeout).startswith("SimTimeoutError")
    assert _outcome(other_assertion) == "AssertionError: the traffic never reached LIMIT"
    bench, selftest = checker_tests("tb.x", "demo", "the doc", caught, caught)
    assert (bench.name, selftest.name) == ("demo", "demo_catches_injected_fault")
    assert bench.module == selftest.module == "tb.x"


def test_checker_tests_of_one_run() -> None:
    """The benches' form: one ``run(dut, fault)`` makes both tests, the self-test with
    ``fault=True``; a run that ignores the flag fails its self-test."""
    seen = []

    async def run(dut, fault: bool) -> None:
        seen.append(fault)
        verdict([str(LANE3)] if fault else [], LANE3 if fault else None)

    bench, selftest = checker_tests(__name__, "demo", "the doc", run)
    asyncio.run(bench.func(None))
    asyncio.run(selftest.func(None))
    assert seen == [False, True]
    assert (bench.name, selftest.name) == ("demo", "demo_catches_injected_fault")

    async def ignores_the_flag(dut, fault: bool) -> None:
        verdict([])

    _, selftest = checker_tests(__name__, "demo", "the doc", ignores_the_flag)
    with pytest.raises(AssertionError, match="the faulted run passed"):
        asyncio.run(selftest.func(None))


def _under_mutant(node: str, mutant: str, tmp: Path) -> tuple[int, dict[str, str | None]]:
    """Run one bench case with ``mutant``: pytest's exit code, and each cocotb test's
    failure message (None: passed)."""
    from mnist_fpga.tb.mutants import mutated_rtl

    rtl = mutated_rtl([mutant], tmp)
    env = {**os.environ, "MNIST_FPGA_RTL": str(rtl), "BUILD_DIR": str(tmp / "build")}
    rc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p",
                         "no:cacheprovider", node], cwd=ROOT, env=env,
                        capture_output=True).returncode
    results = {}
    for xml in (tmp / "build" / "tb").glob("*/sim/*/*results.xml"):
        for case in ET.parse(xml).iter("testcase"):
            fail = case.find("failure")
            results[case.get("name")] = None if fail is None else fail.get("message")
    return rc, results


@pytest.mark.parametrize(("node", "mutant", "selftest"), [
    # ties resolved to the last index: wrong classes at other vectors than the corrupted one
    ("tb/argmax/test_argmax.py::test_argmax[n10-int8-acc26]", "argmax-tie-to-last",
     "argmax_vectors_catches_injected_fault"),
    # full one entry early: in_ready and count mismatches, no corrupted entry among them
    ("tb/result_fifo/test_result_fifo.py::test_result_fifo[w1-d1]", "fifo-drops-when-full",
     "fifo_random_catches_injected_fault"),
])
def test_selftest_fails_on_a_failure_elsewhere(node: str, mutant: str, selftest: str,
                                                tmp_path: Path) -> None:
    """Under a mutant that breaks the bench elsewhere, the self-test fails (with
    expect_fail it passed) and the mutant is still killed."""
    from mnist_fpga.tb.common import simulator_missing

    if reason := simulator_missing("ghdl"):
        pytest.skip(reason)
    rc, results = _under_mutant(node, mutant, tmp_path)
    assert rc == 1, f"pytest exit {rc}: the mutant {mutant} survived"
    assert results[selftest] is not None, f"{selftest} passed under {mutant}"
    assert results[selftest].startswith("checker self-test: the checker reported"), results
