"""The checking pieces that every whole-network bench shares (the VHDL top and its netlist,
tb/mlp_top; the AXI4-Stream top, tb/mlp_axis): the model's expectations, one per-layer
accumulator monitor and one result collector.

Both fail on a missing, extra, duplicate or out-of-order result: results are compared
in order with the model's (an out-of-order or duplicated one differs from the one
expected at its place), counted against the number of images, and after the last
expected result the collector waits a quiet period in which any further result, and
any further accumulator strobe, is an error. Nothing here raises inside a monitor:
the bench gathers everything and reports it at the end.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np

from mnist_fpga.tb.bench import HAVE_COCOTB
from mnist_fpga.tb.common import decode_flat

if HAVE_COCOTB:
    import cocotb
    from cocotb.triggers import ReadOnly, RisingEdge, SimTimeoutError, with_timeout
    from cocotb.utils import get_sim_time

RESOLVABLE = frozenset("01LH")  # the characters of a resolvable std_logic value
TO_01 = str.maketrans("LH", "01")


def expectations(qnet_path: Path, pixels: np.ndarray) -> tuple[object, list[list[list[int]]],
                                                               list[int]]:
    """The network, every layer's accumulators (``[layer][image][neuron]``) and the classes.

    ``pixels`` is (N, n_in) uint8, the exact input vectors the network sees.
    """
    from mnist_fpga.gen.core.model import QNet, classify, forward

    qnet = QNet.load(Path(qnet_path))
    accs = forward(qnet, pixels)
    classes = [int(c) for c in classify(qnet, accs[-1])]
    return qnet, [a.tolist() for a in accs], classes


def compare_accs(k: int, j: int, expected: list[int], value: str, n: int,
                 bits: int) -> list[str]:
    """Mismatches of strobe ``j`` of layer ``k`` (the simulator's bit string) with image j's
    expected accumulators; a metavalue is never a pass."""
    if not RESOLVABLE.issuperset(value):  # 'U'/'X'/'Z'/'W'/'-' in an accumulator
        return [f"image {j} layer {k}: metavalue in the accumulators ({value[:40]}...)"]
    got = decode_flat(int(value.translate(TO_01), 2), n, bits)
    return [f"image {j} layer {k} neuron {neuron}: expected {e} got {g}"
            for neuron, (e, g) in enumerate(zip(expected, got, strict=True)) if e != g]


if HAVE_COCOTB:

    async def strobes(valid, clk):
        """Yield (in the ReadOnly phase) once for every clock in which ``valid`` is '1'.

        A strobe can stay high for several clocks in a row (a one-beat layer hands over
        every clock), so after a rising edge of ``valid`` every clock is sampled until it
        falls; while it is low, only its next rising edge is awaited (cheap in long runs).
        """
        while True:
            await RisingEdge(valid)
            await ReadOnly()
            while valid.value == 1:
                yield
                await RisingEdge(clk)
                await ReadOnly()

    class AccMonitor:
        """Layer ``k``'s accumulators at every clock where ``valid`` is '1'.

        The j-th strobe is compared with image j's expected accumulators (``expected``,
        ``[image][neuron]``); ``names[j]`` is how image j is named in messages (default
        j). Wrong values and metavalues go to ``by_image[j]``, strobes past the expected
        count to ``extra``; ``count`` is the number of strobes seen.
        """

        def __init__(self, clk, valid, flat, k: int, n: int, bits: int,
                     expected: list[list[int]], names: list[int] | None = None) -> None:
            self.clk, self.valid, self.flat = clk, valid, flat
            self.k, self.n, self.bits, self.expected = k, n, bits, expected
            self.names = names or list(range(len(expected)))
            self.count = 0
            self.by_image: dict[int, list[str]] = {}
            self.extra: list[str] = []
            cocotb.start_soon(self._run())

        async def _run(self) -> None:
            async for _ in strobes(self.valid, self.clk):
                # the value as the simulator's string: LogicArray.is_resolvable and
                # to_unsigned build an object per bit (6,144 for mlp256's layer 0)
                value = str(self.flat.value)
                j = self.count
                self.count += 1
                if j >= len(self.expected):
                    self.extra.append(f"layer {self.k}: extra result #{j + 1} for "
                                      f"{len(self.expected)} images")
                    continue
                if bad := compare_accs(self.k, self.names[j], self.expected[j], value,
                                       self.n, self.bits):
                    self.by_image[j] = bad

        def errors(self) -> list[str]:
            """Every problem seen: wrong values, then a count that is not the image count."""
            out = [m for j in sorted(self.by_image) for m in self.by_image[j]]
            if self.count < len(self.expected):
                out.append(f"layer {self.k}: {self.count} results for "
                           f"{len(self.expected)} images")
            return out + self.extra

    class Stuck(Exception):
        """The DUT made no progress within its clock budget."""

    class ResultCollector:
        """The network's results, in order: ``expected`` of them, then a quiet period.

        ``next_results`` awaits the next result(s) (a list: an AXI4-Stream frame may
        carry several). Each result must come within ``budget`` clocks of the previous
        one, or :meth:`run` raises :class:`Stuck` naming the result it waited for (via
        ``stuck_message``). After the last expected result it waits ``quiet()`` clocks
        (a function: the bench may size it from what it measured); any result in that
        time, or past the expected count, goes to ``extra``. ``on_result(j, result)`` is
        called for each expected result as it arrives.
        """

        def __init__(self, clk, expected: int, budget: int, quiet: Callable[[], int],
                     next_results: Callable[[], Awaitable[list]],
                     on_result: Callable[[int, object], None],
                     stuck_message: Callable[[int, str], str] | None = None,
                     clk_ns: float = 10) -> None:
            self.clk, self.expected, self.budget, self.quiet = clk, expected, budget, quiet
            self.next_results, self.on_result = next_results, on_result
            self.stuck_message = stuck_message or (lambda j, what: f"result {j}: {what}")
            self.clk_ns = clk_ns
            self.results: list = []
            self.extra: list[str] = []

        def _take(self, batch: list) -> None:
            for r in batch:
                j = len(self.results)
                self.results.append(r)
                if j < self.expected:
                    self.on_result(j, r)
                else:
                    self.extra.append(f"extra result #{j + 1} for {self.expected} images: {r}")

        async def run(self) -> None:
            while len(self.results) < self.expected:
                j = len(self.results)
                try:
                    batch = await with_timeout(self.next_results(), self.budget * self.clk_ns,
                                               "ns")
                except SimTimeoutError:
                    raise Stuck(self.stuck_message(
                        j, f"no result within {self.budget} clocks")) from None
                self._take(batch)
            end = get_sim_time(unit="ns") + self.quiet() * self.clk_ns
            while (left := end - get_sim_time(unit="ns")) > 0:
                try:
                    batch = await with_timeout(self.next_results(), left, "ns")
                except SimTimeoutError:
                    break
                self._take(batch)
