"""mlp_layer bench: one layer with its generated weight ROM against ``acc = b + W @ x``.

A random layer per parameter set, whose first neurons hold all-maximum and
all-minimum weights with biases chosen so that an all-maximum image drives
their accumulators exactly to the bounds of ACC_BITS (``gen.core.quant.acc_bits_for``).
Images (all-maximum, all-zero, then random with varying sparsity) are sent back
to back with random valid gaps and junk data, against random ``out_ready``
back-pressure. Every ``acc_valid`` strobe's ``acc_flat`` and every ``out_*``
transfer (value, ``out_last`` on the last neuron) is compared with the model; a
stalled output must hold still. A second test resets in the middle of an image
and in the middle of the output stream.

Sizes reach the cocotb side as tb/bench.py's parameters and the layer as a
``qnet.json``; the VHDL side gets them from a generated package used by
the hand-written wrapper ``mlp_layer_tb.vhd``. ``TB_LAYER_IMAGES`` sets the image count
(default: 5, more for small layers), ``TB_SEED`` the seed (default: fixed per parameter set).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from mnist_fpga.gen.core.model import QLayer

from mnist_fpga.tb.bench import CLK_NS, HAVE_COCOTB, UnitRun, params, phases, run_size
from mnist_fpga.tb.common import decode_flat
from mnist_fpga.tb.selftest import checker_tests, inject, verdict

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
    from mnist_fpga.gen.core.legal import acc_bits_for
    from mnist_fpga.gen.core.model import QLayer

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
    """The model's accumulation (numerics.md 3, as gen.core.model.forward): b + W @ x per image."""
    return np.asarray(x, dtype=np.int64) @ layer.w.T + layer.b


if HAVE_COCOTB:
    import cocotb
    from cocotb.triggers import ReadOnly, RisingEdge, with_timeout

    from mnist_fpga.tb.bench import TB, StreamDriver, StreamSink, StrobeMonitor

    class LayerTB(TB):
        """Clock, reset and the input driver of ``mlp_layer_tb``."""

        def __init__(self, dut, layer: QLayer, seed: int) -> None:
            super().__init__(dut, seed, ("in_valid", "in_data", "out_ready"))
            self.layer = layer
            self.source = StreamDriver(dut, self.rng, self._junk)

        def _junk(self) -> None:
            """Random data while in_valid is '0': must be ignored."""
            self.dut.in_data.value = self.rng.randint(0, (1 << (self.layer.a_bits * _p())) - 1)

        async def send(self, values: list[int]) -> None:
            """One beat of P inputs per accepted clock; runs of 32 beats with no, some and
            many gaps. ``values`` are whole images; each image's last beat is padded with
            junk, which the layer's zero weights must cancel."""
            x_max = (1 << self.layer.a_bits) - 1
            p, a = _p(), self.layer.a_bits
            n_in = self.layer.n_in
            beats = []
            for i in range(0, len(values), n_in):
                img = list(values[i:i + n_in])
                img += [self.rng.randint(0, x_max) for _ in range(-len(img) % p)]
                beats += [int(sum(img[j + q] << (a * q) for q in range(p)))
                          for j in range(0, len(img), p)]
            await self.source.send(beats, phases((0.0, 0.3, 0.7), 32))

    def acc_monitor(dut, layer: QLayer) -> StrobeMonitor:
        """acc_flat in every clock where acc_valid is '1' (a stuck strobe counts twice)."""
        return StrobeMonitor(dut.clk, dut.acc_valid, lambda: decode_flat(
            dut.acc_flat.value.to_unsigned(), layer.n_out, layer.acc_bits))

    def out_sink(dut, seed: int) -> StreamSink:
        """Random out_ready back-pressure (runs: none, some, heavy); collects (lanes,
        out_last) transfers; a stalled output must hold still."""
        def sample() -> tuple[tuple[int, ...], int]:
            lanes = decode_flat(dut.out_data.value.to_unsigned(), _q(),
                                len(dut.out_data.value) // _q())
            return tuple(lanes), int(dut.out_last.value == 1)

        return StreamSink(dut, seed, sample, phases((1.0, 0.5, 0.1), 16))

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
        return params()["p"]

    def _q() -> int:
        return params()["q"]

    def _layer() -> QLayer:
        from mnist_fpga.gen.core.model import QNet

        return QNet.load(Path(params()["qnet"])).layers[0]

    def _timeout_ns(layer: QLayer, n_images: int) -> int:
        """Generous: every input and output at the slowest driver and sink rates, plus slack."""
        return (n_images * (layer.n_in * 20 + layer.n_out * 40) + 200) * CLK_NS

    async def run_images(dut, fault: bool) -> None:
        """Back-to-back images with gaps and back-pressure, every result checked."""
        seed, count = run_size(fault, params()["images"], 1)
        layer = _layer()
        images = make_images(layer.n_in, layer.a_bits, count, seed)
        expected = layer_acc(layer, images)
        injected = None
        if fault:  # self-test of the checker: one wrong expectation
            injected = inject(expected, (-1, -1), int(expected[-1, -1]) + 1,
                              f"image {len(images) - 1} neuron {layer.n_out - 1}")
        tb = LayerTB(dut, layer, seed)
        await tb.reset()
        accs, sink = acc_monitor(dut, layer), out_sink(dut, seed + 1)
        await with_timeout(tb.send([int(v) for v in images.reshape(-1)]),
                           _timeout_ns(layer, len(images)), "ns")
        n_beats = expected.shape[0] * -(-layer.n_out // _q())
        await with_timeout(sink.wait_for(n_beats), _timeout_ns(layer, 1), "ns")
        await tb.clocks(5)  # a stray strobe or output would show up here
        errors = sink.errors + check(expected, accs.seen, sink.got)
        if not fault and not sink.stalls:
            errors.append("back-pressure not exercised: no clock with out_valid=1, out_ready=0")
        dut._log.info("%d output stalls, %d input waits", sink.stalls, tb.source.waits)
        verdict(errors, injected)

    layer_images, layer_images_catches_injected_fault = checker_tests(
        __name__, "layer_images", "TB_LAYER_IMAGES images through the layer against b + W @ x.",
        run_images)

    @cocotb.test()
    async def layer_reset_mid_stream(dut) -> None:
        """Reset mid-image and mid-output: the partial results vanish, later images are exact."""
        layer = _layer()
        seed = params()["seed"]
        images = make_images(layer.n_in, layer.a_bits, 5, seed + 2)
        tb = LayerTB(dut, layer, seed + 2)
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
        accs, sink = acc_monitor(dut, layer), out_sink(dut, seed + 3)
        checked = images[[4, 0]]
        await with_timeout(tb.send([int(v) for v in checked.reshape(-1)]),
                           _timeout_ns(layer, len(checked)), "ns")
        await with_timeout(sink.wait_for(checked.shape[0] * -(-layer.n_out // _q())), limit,
                           "ns")
        verdict(sink.errors + check(layer_acc(layer, checked), accs.seen, sink.got),
                what="errors after reset")


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
    from mnist_fpga.gen.core.formats import Format

    n_in, n_out, w_bits, a_bits, p, q, pe = case[:7]
    par = "" if p == q == 1 else f"-p{p}q{q}"
    par += "" if pe == n_out else f"-pe{pe}"
    par += f"-{case[7]}" if len(case) > 7 else ""
    return f"n{n_in}x{n_out}-{Format(w_bits, a_bits).name}{par}"


def render_rom(layer: QLayer, p: int = 1, pe: int | None = None) -> str:
    """The layer's weight ROM (entity ``ROM_ENTITY``), rendered by gen.hdl.generate.

    Through render_network, the generator's own path, so the bench follows whatever
    arguments the template needs (a one-layer network; its package and top are unused).
    """
    from mnist_fpga.gen.core.formats import Format
    from mnist_fpga.gen.core.model import QNet
    from mnist_fpga.gen.hdl.generate import render_network

    qnet = QNet(NET, Format(layer.w_bits, layer.a_bits), [layer])
    return render_network(qnet, "a random layer of tb/mlp_layer", p=p, pe=pe)[
        f"{ROM_ENTITY}.vhd"]


def render_pkg(layer: QLayer, case_id: str, p: int = 1, q: int = 1,
               pe: int | None = None, style: str = "inferred") -> str:
    """The wrapper's package: sizes and the bias constant."""
    from mnist_fpga.gen.hdl.generate import pack, vhdl_literal
    from mnist_fpga.gen.hdl.memories import clog2

    bits = layer.n_out * layer.acc_bits
    pe = min(pe or layer.n_out, layer.n_out)
    folds = -(-layer.n_out // pe)
    return PKG.format(case=case_id, n_in=layer.n_in, n_out=layer.n_out, w_bits=layer.w_bits,
                      a_bits=layer.a_bits, acc_bits=layer.acc_bits, p=p, q=q, pe=pe,
                      addr_bits=clog2(folds * -(-layer.n_in // p)), style=style,
                      bias=vhdl_literal(pack(layer.b, layer.acc_bits), bits))


def _images(n_in: int) -> int:
    """Images per run: TB_LAYER_IMAGES, else more of them for small layers."""
    from mnist_fpga.tb.common import env_int

    return env_int("TB_LAYER_IMAGES", max(5, 120 // n_in), lo=1)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_mlp_layer(case: tuple, request: pytest.FixtureRequest) -> None:
    """mlp_layer + generated ROM against b + W @ x for one parameter set."""
    from mnist_fpga.gen.core.formats import Format
    from mnist_fpga.gen.core.model import QNet
    from mnist_fpga.gen.hdl.sources import LAYER_RTL
    from mnist_fpga.tb.common import rtl_sources

    run = UnitRun(request, seed_key=_id(case))
    n_in, n_out, w_bits, a_bits, p, q, pe = case[:7]
    style = case[7] if len(case) > 7 else "inferred"
    layer = make_layer(n_in, n_out, w_bits, a_bits, run.seed)
    extremes = layer_acc(layer, make_images(n_in, a_bits, 1, run.seed))[0]
    assert extremes.min() == -(1 << (layer.acc_bits - 1))
    assert n_out == 1 or extremes.max() == (1 << (layer.acc_bits - 1)) - 1

    build = run.build
    QNet(NET, Format(w_bits, a_bits), [layer]).save(build / "qnet.json")
    (build / "mlp_layer_tb_pkg.vhd").write_text(render_pkg(layer, _id(case), p, q, pe, style))
    (build / f"{ROM_ENTITY}.vhd").write_text(render_rom(layer, p, pe))
    model = [ROOT / "tb" / "hdl" / "MULT18X18D.vhd"] if style == "ecp5" else []
    sources = [*model, *rtl_sources(*LAYER_RTL), build / "mlp_layer_tb_pkg.vhd",
               build / f"{ROM_ENTITY}.vhd", HERE / "mlp_layer_tb.vhd"]
    run.run("mlp_layer_tb", sources,
            {"qnet": build / "qnet.json", "images": _images(n_in), "p": p, "q": q})
