"""Checker self-tests: a bench's faulted run must fail with the mismatch it injected, only.

Each unit bench runs twice (:func:`checker_tests`): against its model, and again with
one expectation of the model corrupted (a class, an accumulator, a weight), which
shows that its checker is not vacuous. The faulted run passes only when the checker
reports that mismatch - its site (vector, image and neuron, lane, clock) with
``expected <corrupted value> got <true value>`` - and nothing else. No report, a
mismatch elsewhere (another neuron or lane, a count, a timing) or a failure of
another kind (a timeout, any other assertion) fails it: ``expect_fail=True`` passed on
any ``AssertionError``, so a bench broken in another way also "caught" its fault.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

SHOWN = 10  # errors quoted in a failure message


def mismatch(site: str, expected: object, got: object) -> str:
    """A checker's error line: ``<site>: expected <expected> got <got>``."""
    return f"{site}: expected {expected} got {got}"


def _words(text: str) -> re.Pattern[str]:
    """``text`` as whole words: "vector 1" is not in "vector 12", "got 4" not in "got -45"."""
    return re.compile(rf"(?<![\w-]){re.escape(text)}(?![\w])")


@dataclass(frozen=True)
class Fault:
    """One corrupted expectation: where the checker names it, the wrong and the true value."""

    site: str      # as the checker's error lines name it: "vector 11", "image 0 neuron 9"
    expected: int  # the corrupted expectation
    got: int       # the model's own value, which a correct DUT gives

    def __str__(self) -> str:
        return mismatch(self.site, self.expected, self.got)

    def named_by(self, error: str) -> bool:
        """Whether ``error`` reports this mismatch: its site and both values, as whole words."""
        return all(_words(part).search(error) for part in
                   (self.site, f"expected {self.expected} got {self.got}"))


def inject(values: Any, index: Any, value: int, site: str) -> Fault:
    """Corrupt the expectation ``values[index]`` to ``value``; return the :class:`Fault`."""
    true = int(values[index])
    if value == true:
        raise ValueError(f"{site}: the corrupted expectation {value} equals the true one")
    values[index] = value
    return Fault(site, value, true)


class FaultCaught(Exception):
    """A faulted run ended as it must: its checker reported exactly the injected fault."""


def verdict(errors: list[str], injected: Fault | None = None, what: str = "errors") -> None:
    """The checker's verdict on a run.

    Without ``injected`` (the bench's own run) any error fails the run. With it (the
    self-test) the run must have failed with that fault alone: then :class:`FaultCaught`
    is raised, which :func:`checker_tests` expects; anything else is an ``AssertionError``.
    """
    if injected is None:
        if errors:
            raise AssertionError(f"{len(errors)} {what}: " + "; ".join(errors[:SHOWN]))
        return
    if not errors:
        raise AssertionError(f"checker self-test: the injected fault ({injected}) went "
                             "unreported")
    if other := [e for e in errors if not injected.named_by(e)]:
        raise AssertionError(
            f"checker self-test: the checker reported {len(other)} {what} other than the "
            f"injected fault ({injected}): " + "; ".join(other[:SHOWN]))
    raise FaultCaught(f"{len(errors)} {what}, each the injected fault ({injected})")


def checker_tests(module: str, name: str, doc: str,
                  bench: Callable[..., Awaitable[None]],
                  faulted: Callable[[Any], Awaitable[None]] | None = None) -> tuple[Any, Any]:
    """The cocotb tests ``name`` (``bench(dut)``) and ``<name>_catches_injected_fault``.

    ``faulted(dut)`` is the same run with one corrupted expectation: it must end in
    :func:`verdict` with the :class:`Fault` it injected, which raises
    :class:`FaultCaught`; returning normally (no fault injected, or a checker that was
    never asked) fails the test, as does any other exception. Without ``faulted``,
    ``bench`` is one run for both, ``bench(dut, fault)`` (the benches' form: the faulted
    run picks its own, usually shorter, stimulus). Assign both to names of ``module``
    (``__name__``), where cocotb looks for tests.
    """
    import cocotb

    if faulted is None:
        run = bench

        def bench(dut: Any) -> Awaitable[None]:
            return run(dut, False)

        def faulted(dut: Any) -> Awaitable[None]:
            return run(dut, True)

    async def run_bench(dut: Any) -> None:
        await bench(dut)

    async def run_faulted(dut: Any) -> None:
        try:
            await faulted(dut)
        except FaultCaught as caught:
            logging.getLogger("cocotb.selftest").info("%s: %s", name, caught)
            return
        raise AssertionError("checker self-test: the faulted run passed (it injected no "
                             "fault, or never asked its checker)")

    tests = []
    for fn, test_name, test_doc in (
            (run_bench, name, doc),
            (run_faulted, f"{name}_catches_injected_fault",
             f"The checker of {name} reports exactly the one expectation corrupted "
             "(tb/selftest.py).")):
        fn.__name__ = fn.__qualname__ = test_name
        fn.__module__, fn.__doc__ = module, test_doc
        tests.append(cocotb.test(fn))
    return tests[0], tests[1]
