"""Shared checking pieces of the whole-network benches: the model's expectations and a
per-layer accumulator monitor that compares every strobe with them, in order.

The AXI4-Stream bench (tb/mlp_axis) uses these; they only need the network's
``acc<K>_valid`` / ``acc<K>_flat`` handles, wherever they sit in the hierarchy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

try:
    import cocotb
    from cocotb.triggers import RisingEdge
except ImportError:  # pragma: no cover - pytest collection without cocotb
    cocotb = None

from tb.common import decode_flat


def expectations(qnet_path: Path, pixels: np.ndarray) -> tuple[object, list[list[list[int]]],
                                                               list[int]]:
    """The network, every layer's accumulators (``[layer][image][neuron]``) and the classes.

    ``pixels`` is (N, n_in) uint8, the exact input vectors the network sees.
    """
    from gen.model import QNet, classify, forward

    qnet = QNet.load(Path(qnet_path))
    accs = forward(qnet, pixels)
    classes = [int(c) for c in classify(qnet, accs[-1])]
    return qnet, [a.tolist() for a in accs], classes


if cocotb is not None:

    class AccMonitor:
        """Layer ``k``'s accumulators, sampled at every clock edge where ``valid`` is '1'.

        The j-th strobe is compared with image j's expected accumulators; unknown bits,
        extra strobes and wrong values are recorded in ``mismatches`` (never raised, so
        that the bench reports them all at the end).
        """

        def __init__(self, clk, valid, flat, k: int, n: int, bits: int,
                     expected: list[list[int]]) -> None:
            self.clk, self.valid, self.flat = clk, valid, flat
            self.k, self.n, self.bits, self.expected = k, n, bits, expected
            self.seen = 0
            self.mismatches: list[str] = []
            cocotb.start_soon(self._run())

        async def _run(self) -> None:
            while True:
                await RisingEdge(self.clk)  # values sampled as a flip-flop sees them
                v = self.valid.value
                if not v.is_resolvable:
                    if self.seen:  # before reset the strobe may be undefined
                        self.mismatches.append(f"layer {self.k}: acc_valid is {v}")
                    continue
                if int(v) != 1:
                    continue
                self.check(self.seen, self.flat.value)
                self.seen += 1

        def check(self, j: int, value) -> None:
            """Compare strobe ``j`` with image j's accumulators."""
            if j >= len(self.expected):
                self.mismatches.append(f"layer {self.k}: extra result #{j}")
                return
            if not value.is_resolvable:
                self.mismatches.append(f"image {j} layer {self.k}: accumulators {value}")
                return
            got = decode_flat(value.to_unsigned(), self.n, self.bits)
            for neuron, (e, g) in enumerate(zip(self.expected[j], got, strict=True)):
                if e != g:
                    self.mismatches.append(
                        f"image {j} layer {self.k} neuron {neuron}: expected {e} got {g}")
