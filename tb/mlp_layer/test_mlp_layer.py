"""mlp_layer bench: one layer with its generated weight ROM against ``acc = b + W @ x``.

A random layer per parameter set, whose first neurons hold all-maximum and
all-minimum weights with biases chosen so that an all-maximum image drives
their accumulators exactly to the bounds of ACC_BITS (``gen.quant.acc_bits_for``).
Images (all-maximum, all-zero, then random with varying sparsity) are sent back
to back with random valid gaps and junk data, against random ``out_ready``
back-pressure. Every ``acc_valid`` strobe's ``acc_flat`` and every ``out_*``
transfer (value, ``out_last`` on the last neuron) is compared with the model; a
stalled output must hold still. A second test resets in the middle of an image
and in the middle of the output stream.

Sizes reach the Python side through ``LAYER_*`` environment variables and the
layer as a ``qnet.json``; the VHDL side gets them from a generated package used by
the hand-written wrapper ``mlp_layer_tb.vhd``. ``TB_LAYER_IMAGES`` sets the image count
(default: 5, more for small layers), ``TB_SEED`` the seed (default: fixed per parameter set).
"""

from __future__ import annotations

import os
import random
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ReadOnly, RisingEdge, with_timeout
except ImportError:  # pragma: no cover - pytest collection without cocotb
    cocotb = None

if TYPE_CHECKING:
    from mnist_fpga.gen.model import QLayer

from mnist_fpga.tb.common import decode_flat
from mnist_fpga.tb.selftest import checker_tests, inject, verdict

CLK_NS = 10
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NET = "tb_layer"  # not "mlp_layer_tb": its generated package would share our package name
ROM_ENTITY = f"{NET}_l0_rom"  # the generator's ROM entity name for layer 0


def make_layer(n_in: int, n_out: int, w_bits: int, a_bits: int, seed: int) -> QLayer:
    """A random layer whose first neurons reach both accumulator bounds on an all-max image.

    Neuron 0 has every weight at the maximum and neuron 1 every weight at the minimum
    (a single neuron: the minimum); their biases put ``b + n_in * x_max * w`` exactly
    on ``2**(ACC-1) - 1`` and ``-2**(ACC-1)``. The other weights are random over the
    full two's-complement range (a fifth of them zero), the other biases random.
    """
    from mnist_fpga.gen.model import QLayer
    from mnist_fpga.gen.quant import acc_bits_for

    rng = np.random.default_rng(seed)
    wlo, whi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    x_max = (1 << a_bits) - 1
    w = rng.integers(wlo, whi, size=(n_out, n_in), endpoint=True, dtype=np.int64)
    w[rng.random(w.shape) < 0.2] = 0
    extremes = [wlo] if n_out == 1 else [whi, wlo]
    span = 1 << (w_bits + a_bits - 2)
    b = rng.integers(-span, span, size=n_out, dtype=np.int64)
    for n, v in enumerate(extremes):
        w[n, :] = v
        b[n] = 0
    acc_bits = acc_bits_for(w, b, x_max, w_bits)
    for n, v in enumerate(extremes):
        bound = (1 << (acc_bits - 1)) - 1 if v > 0 else -(1 << (acc_bits - 1))
        b[n] = bound - n_in * x_max * v
    assert acc_bits_for(w, b, x_max, w_bits) == acc_bits  # the bounds are reached, not passed
    return QLayer(w=w, b=b, w_bits=w_bits, a_bits=a_bits, acc_bits=acc_bits, hidden=False)


def make_images(n_in: int, a_bits: int, count: int, seed: int) -> np.ndarray:
    """All-maximum, all-zero, then random inputs (sparse, half, dense; some at 1 and the max)."""
    rng = np.random.default_rng(seed)
    x_max = (1 << a_bits) - 1
    imgs = [np.full(n_in, x_max, dtype=np.int64), np.zeros(n_in, dtype=np.int64)]
    for k in range(max(count - 2, 0)):
        density = (0.15, 0.5, 1.0)[k % 3]
        x = rng.integers(1, x_max, size=n_in, endpoint=True, dtype=np.int64)
        x *= rng.random(n_in) < density
        x[rng.random(n_in) < 0.05] = x_max
        x[rng.random(n_in) < 0.05] = 1  # the smallest product the zero-skip must not drop
        imgs.append(x)
    return np.array(imgs[:max(count, 1)])


def layer_acc(layer: QLayer, x: np.ndarray) -> np.ndarray:
    """The model's accumulation (numerics.md 3, as in gen.model.forward): b + W @ x per image."""
    return np.asarray(x, dtype=np.int64) @ layer.w.T + layer.b


if cocotb is not None:

    class LayerTB:
        """Clock, reset and the input driver of ``mlp_layer_tb``."""

        def __init__(self, dut, layer: QLayer, seed: int) -> None:
            self.dut, self.layer = dut, layer
            self.rng = random.Random(seed)
            self.sent = 0   # inputs accepted so far
            self.waits = 0  # clocks with in_valid=1, in_ready=0
            dut.rst.value = 1
            dut.in_valid.value = 0
            dut.in_data.value = 0
            dut.out_ready.value = 0
            Clock(dut.clk, CLK_NS, unit="ns").start()

        async def reset(self, cycles: int = 3) -> None:
            self.dut.rst.value = 1
            for _ in range(cycles):
                await RisingEdge(self.dut.clk)
            self.dut.rst.value = 0
            await RisingEdge(self.dut.clk)

        async def send(self, values: list[int]) -> None:
            """One beat of P inputs per accepted clock; runs of 32 beats with no, some and
            many gaps. ``values`` are whole images; each image's last beat is padded with
            junk, which the layer's zero weights must cancel."""
            dut, x_max = self.dut, (1 << self.layer.a_bits) - 1
            p, a = _p(), self.layer.a_bits
            n_in = self.layer.n_in
            beats = []
            for i in range(0, len(values), n_in):
                img = list(values[i:i + n_in])
                img += [self.rng.randint(0, x_max) for _ in range(-len(img) % p)]
                beats += [sum(img[j + q] << (a * q) for q in range(p))
                          for j in range(0, len(img), p)]
            for v in beats:
                p_gap = (0.0, 0.3, 0.7)[(self.sent // 32) % 3]
                while self.rng.random() < p_gap:
                    dut.in_valid.value = 0
                    dut.in_data.value = self.rng.randint(0, (1 << (a * p)) - 1)  # junk: ignored
                    await RisingEdge(dut.clk)
                dut.in_valid.value = 1
                dut.in_data.value = int(v)
                while True:
                    await ReadOnly()
                    taken = dut.in_ready.value == 1
                    self.waits += not taken
                    await RisingEdge(dut.clk)
                    if taken:
                        break
                self.sent += 1
            dut.in_valid.value = 0

    class AccMonitor:
        """acc_flat in every clock where acc_valid is '1' (a stuck strobe counts twice)."""

        def __init__(self, dut, layer: QLayer) -> None:
            self.dut, self.layer = dut, layer
            self.seen: list[list[int]] = []
            cocotb.start_soon(self._run())

        async def _run(self) -> None:
            n, bits = self.layer.n_out, self.layer.acc_bits
            while True:
                await RisingEdge(self.dut.clk)
                await ReadOnly()
                if self.dut.acc_valid.value == 1:
                    self.seen.append(decode_flat(self.dut.acc_flat.value.to_unsigned(), n, bits))

    class OutSink:
        """Random out_ready back-pressure; collects (out_data, out_last) transfers.

        While out_valid is '1' and out_ready '0' the output must not change.
        """

        def __init__(self, dut, seed: int) -> None:
            self.dut = dut
            self.rng = random.Random(seed)
            self.got: list[tuple[int, int]] = []
            self.errors: list[str] = []
            self.stalls = 0
            cocotb.start_soon(self._run())

        async def _run(self) -> None:
            dut, held, cycle = self.dut, None, 0
            while True:
                p_ready = (1.0, 0.5, 0.1)[(cycle // 16) % 3]  # runs: none, some, heavy
                ready = self.rng.random() < p_ready
                dut.out_ready.value = int(ready)
                await ReadOnly()
                now = None
                if dut.out_valid.value == 1:
                    lanes = decode_flat(dut.out_data.value.to_unsigned(), _q(),
                                        len(dut.out_data.value) // _q())
                    now = (tuple(lanes), int(dut.out_last.value == 1))
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
            while len(self.got) < n:
                await RisingEdge(self.dut.clk)

    def check(
        expected: np.ndarray, accs: list[list[int]], outs: list[tuple[tuple[int, ...], int]]
    ) -> list[str]:
        """Every strobe and every streamed accumulator against the model, image by image.

        Outputs come Q per beat, neuron b*Q+q in lane q; lanes past N_OUT must be 0.
        """
        n_img, n_out = expected.shape
        q = _q()
        n_beats = -(-n_out // q)
        errors = []
        if len(accs) != n_img:
            errors.append(f"expected {n_img} acc_valid strobes, got {len(accs)}")
        if len(outs) != n_img * n_beats:
            errors.append(f"expected {n_img * n_beats} output transfers, got {len(outs)}")
        for j in range(n_img):
            for n in range(n_out):
                e = int(expected[j, n])
                if j < len(accs) and accs[j][n] != e:
                    errors.append(f"image {j} neuron {n}: acc_flat expected {e} got {accs[j][n]}")
            for b in range(n_beats):
                k = j * n_beats + b
                if k >= len(outs):
                    continue
                lanes, last = outs[k]
                for lane, got in enumerate(lanes):
                    n = b * q + lane
                    e = int(expected[j, n]) if n < n_out else 0
                    if got != e:
                        errors.append(f"image {j} neuron {n}: out_data expected {e} got {got}")
                if last != (b == n_beats - 1):
                    errors.append(f"image {j} beat {b}: out_last expected "
                                  f"{int(b == n_beats - 1)} got {last}")
        return errors

    def _p() -> int:
        return int(os.environ.get("LAYER_P", "1"))

    def _q() -> int:
        return int(os.environ.get("LAYER_Q", "1"))

    def _layer() -> QLayer:
        from mnist_fpga.gen.model import QNet

        return QNet.load(Path(os.environ["LAYER_QNET"])).layers[0]

    def _seed() -> int:
        return int(os.environ.get("LAYER_SEED", "1"))

    def _timeout_ns(layer: QLayer, n_images: int) -> int:
        """Generous: every input and output at the slowest driver and sink rates, plus slack."""
        return (n_images * (layer.n_in * 20 + layer.n_out * 40) + 200) * CLK_NS

    async def run_images(dut, seed: int, count: int, fault: bool) -> None:
        """Back-to-back images with gaps and back-pressure, every result checked."""
        layer = _layer()
        images = make_images(layer.n_in, layer.a_bits, count, seed)
        expected = layer_acc(layer, images)
        injected = None
        if fault:  # self-test of the checker: one wrong expectation
            injected = inject(expected, (-1, -1), int(expected[-1, -1]) + 1,
                              f"image {len(images) - 1} neuron {layer.n_out - 1}")
        tb = LayerTB(dut, layer, seed)
        await tb.reset()
        accs, sink = AccMonitor(dut, layer), OutSink(dut, seed + 1)
        await with_timeout(tb.send([int(v) for v in images.reshape(-1)]),
                           _timeout_ns(layer, len(images)), "ns")
        n_beats = expected.shape[0] * -(-layer.n_out // _q())
        await with_timeout(sink.wait_for(n_beats), _timeout_ns(layer, 1), "ns")
        for _ in range(5):  # a stray strobe or output would show up here
            await RisingEdge(dut.clk)
        errors = sink.errors + check(expected, accs.seen, sink.got)
        if not fault and not sink.stalls:
            errors.append("back-pressure not exercised: no clock with out_valid=1, out_ready=0")
        dut._log.info("%d output stalls, %d input waits", sink.stalls, tb.waits)
        verdict(errors, injected)

    layer_images, layer_images_catches_injected_fault = checker_tests(
        __name__, "layer_images", "LAYER_IMAGES images through the layer against b + W @ x.",
        lambda dut: run_images(dut, _seed(), int(os.environ.get("LAYER_IMAGES", "5")), False),
        lambda dut: run_images(dut, _seed() + 1, 1, True))  # one corrupted accumulator

    @cocotb.test()
    async def layer_reset_mid_stream(dut) -> None:
        """Reset mid-image and mid-output: the partial results vanish, later images are exact."""
        layer = _layer()
        images = make_images(layer.n_in, layer.a_bits, 5, _seed() + 2)
        tb = LayerTB(dut, layer, _seed() + 2)
        limit = _timeout_ns(layer, 1)  # every step below must finish: no hang on a bad reset

        async def until_out_valid() -> None:
            while True:
                await ReadOnly()
                if dut.out_valid.value == 1:
                    return
                await RisingEdge(dut.clk)

        await tb.reset()
        half = [int(v) for v in images[2, : layer.n_in // 2]]
        await with_timeout(tb.send(half), limit, "ns")  # half an image
        await tb.reset(cycles=1)
        # a whole image whose output is never taken (out_ready stays '0'), reset mid-output
        await with_timeout(tb.send([int(v) for v in images[3]]), limit, "ns")
        await with_timeout(until_out_valid(), limit, "ns")
        await RisingEdge(dut.clk)
        await tb.reset(cycles=1)
        await ReadOnly()
        assert dut.out_valid.value == 0, "out_valid still '1' after a reset"
        await RisingEdge(dut.clk)
        accs, sink = AccMonitor(dut, layer), OutSink(dut, _seed() + 3)
        checked = images[[4, 0]]
        await with_timeout(tb.send([int(v) for v in checked.reshape(-1)]),
                           _timeout_ns(layer, len(checked)), "ns")
        await with_timeout(sink.wait_for(checked.shape[0] * -(-layer.n_out // _q())), limit,
                           "ns")
        errors = sink.errors + check(layer_acc(layer, checked), accs.seen, sink.got)
        assert not errors, f"{len(errors)} errors after reset: " + "; ".join(errors[:10])


# ----------------------------------------------------------------------------- pytest runner

PKG = """\
-- generated by tb/mlp_layer/test_mlp_layer.py ({case}) - do not edit
library ieee;
use ieee.std_logic_1164.all;

package mlp_layer_tb_pkg is
  constant N_IN      : positive := {n_in};
  constant N_OUT     : positive := {n_out};
  constant W_BITS    : positive := {w_bits};
  constant A_BITS    : positive := {a_bits};
  constant ACC_BITS  : positive := {acc_bits};
  constant P         : positive := {p};
  constant PE        : positive := {pe};  -- neurons in parallel (<= N_OUT)
  constant Q         : positive := {q};
  constant ADDR_BITS : positive := {addr_bits};
  constant MULT_STYLE : string  := "{style}";  -- mac_mult's multipliers
  -- neuron n's bias at bits [(n+1)*ACC_BITS-1 : n*ACC_BITS]
  constant BIAS : std_logic_vector(N_OUT * ACC_BITS - 1 downto 0) :=
    {bias};
end package mlp_layer_tb_pkg;
"""

# (n_in, n_out, w_bits, a_bits, p, q, pe): p inputs, q outputs and pe neurons per clock
CASES = [
    (1, 1, 8, 8, 1, 1, 1),
    (5, 3, 8, 8, 1, 1, 3),
    (784, 10, 8, 8, 1, 1, 10),   # the l10 network's only layer
    (784, 10, 8, 8, 8, 2, 10),   # P and Q that divide the counts
    (784, 10, 8, 8, 8, 2, 5),    # PE dividing N_OUT: 2 folds
    (37, 16, 4, 8, 1, 1, 16),
    (37, 16, 4, 8, 4, 3, 16),    # P and Q that do not divide 37 and 16
    (37, 16, 4, 8, 4, 3, 3),     # PE not dividing 16: 6 folds, the last one with 1 neuron
    (20, 7, 2, 2, 3, 7, 7),      # P not dividing, all outputs in one beat
    (20, 7, 2, 2, 3, 7, 1),      # one neuron at a time
    (5, 9, 8, 8, 2, 2, 4),       # 3 beats per fold: shorter than the MAC pipeline
    (1, 2, 16, 15, 1, 1, 2),     # a 31-bit accumulator, a 32-bit product: numeric_std
    (3, 2, 15, 15, 1, 1, 2),     # 31-bit products: the limit of the integer datapath
    (9, 3, 16, 16, 2, 2, 3),     # wider than 31 bits: the numeric_std datapath
    (9, 3, 16, 16, 2, 2, 2),     # ... folded
    # (..., MULT_STYLE): 3 beats per fold with the "lut" pipeline (GUARD from its latency)
    (5, 9, 8, 8, 2, 2, 4, "lut"),
    (1, 3, 8, 3, 1, 1, 1, "lut"),
    (5, 9, 8, 8, 2, 2, 4, "ecp5"),
]


def _id(case: tuple) -> str:
    from mnist_fpga.gen.formats import Format

    n_in, n_out, w_bits, a_bits, p, q, pe = case[:7]
    par = "" if p == q == 1 else f"-p{p}q{q}"
    par += "" if pe == n_out else f"-pe{pe}"
    par += f"-{case[7]}" if len(case) > 7 else ""
    return f"n{n_in}x{n_out}-{Format(w_bits, a_bits).name}{par}"


def _tag(request: pytest.FixtureRequest) -> str:
    """The build folder name: the pytest id without brackets."""
    return request.node.name.replace("[", "-").replace("]", "")


def render_rom(layer: QLayer, p: int = 1, pe: int | None = None) -> str:
    """The layer's weight ROM (entity ``ROM_ENTITY``), rendered by gen.generate.

    Through render_network, the generator's own path, so the bench follows whatever
    arguments the template needs (a one-layer network; its package and top are unused).
    """
    from mnist_fpga.gen.formats import Format
    from mnist_fpga.gen.generate import render_network
    from mnist_fpga.gen.model import QNet

    qnet = QNet(NET, Format(layer.w_bits, layer.a_bits), [layer])
    return render_network(qnet, "a random layer of tb/mlp_layer", p=p, pe=pe)[
        f"{ROM_ENTITY}.vhd"]


def render_pkg(layer: QLayer, case_id: str, p: int = 1, q: int = 1,
               pe: int | None = None, style: str = "inferred") -> str:
    """The wrapper's package: sizes and the bias constant."""
    from mnist_fpga.gen.generate import clog2, pack, vhdl_literal

    bits = layer.n_out * layer.acc_bits
    pe = min(pe or layer.n_out, layer.n_out)
    folds = -(-layer.n_out // pe)
    return PKG.format(case=case_id, n_in=layer.n_in, n_out=layer.n_out, w_bits=layer.w_bits,
                      a_bits=layer.a_bits, acc_bits=layer.acc_bits, p=p, q=q, pe=pe,
                      addr_bits=clog2(folds * -(-layer.n_in // p)), style=style,
                      bias=vhdl_literal(pack(layer.b, layer.acc_bits), bits))


def _images(n_in: int) -> int:
    """Images per run: TB_LAYER_IMAGES, else more of them for small layers."""
    return int(os.environ.get("TB_LAYER_IMAGES", max(5, 120 // n_in)))


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_mlp_layer(case: tuple, request: pytest.FixtureRequest) -> None:
    """mlp_layer + generated ROM against b + W @ x for one parameter set."""
    from mnist_fpga.gen.formats import Format
    from mnist_fpga.gen.generate import LAYER_RTL
    from mnist_fpga.gen.model import QNet
    from mnist_fpga.tb.common import BUILD, rtl_sources, run_sim, simulator_missing

    if reason := simulator_missing():
        pytest.skip(reason)
    n_in, n_out, w_bits, a_bits, p, q, pe = case[:7]
    style = case[7] if len(case) > 7 else "inferred"
    seed = int(os.environ.get("TB_SEED", zlib.crc32(_id(case).encode()) & 0xFFFF))
    layer = make_layer(n_in, n_out, w_bits, a_bits, seed)
    extremes = layer_acc(layer, make_images(n_in, a_bits, 1, seed))[0]
    assert extremes.min() == -(1 << (layer.acc_bits - 1))
    assert n_out == 1 or extremes.max() == (1 << (layer.acc_bits - 1)) - 1

    build = BUILD / "tb" / _tag(request)
    build.mkdir(parents=True, exist_ok=True)
    QNet(NET, Format(w_bits, a_bits), [layer]).save(build / "qnet.json")
    (build / "mlp_layer_tb_pkg.vhd").write_text(render_pkg(layer, _id(case), p, q, pe, style))
    (build / f"{ROM_ENTITY}.vhd").write_text(render_rom(layer, p, pe))
    model = [str(ROOT / "tb" / "hdl" / "MULT18X18D.vhd")] if style == "ecp5" else []
    sources = [*model, *rtl_sources(*LAYER_RTL), str(build / "mlp_layer_tb_pkg.vhd"),
               str(build / f"{ROM_ENTITY}.vhd"), str(HERE / "mlp_layer_tb.vhd")]
    env = {"LAYER_QNET": build / "qnet.json", "LAYER_SEED": seed,
           "LAYER_IMAGES": _images(n_in), "LAYER_P": p, "LAYER_Q": q}
    run_sim(toplevel="mlp_layer_tb", module="test_mlp_layer", vhdl_sources=sources,
            build_dir=build / "sim", extra_env=env, bench_dir=HERE)
