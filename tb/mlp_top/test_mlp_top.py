"""Whole-network bench: real MNIST images through the generated top, every layer checked.

The cocotb part (driver, monitors, checker) runs inside the simulator; the pytest
part below sweeps network x format x image count. ``make sim`` uses the same
bench through :mod:`tb.netsim`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from mnist_fpga.progress import write_progress
from mnist_fpga.tb.bench import CLK_NS, HAVE_COCOTB, build_tag, skip_without_simulator
from mnist_fpga.tb.common import env_int

if HAVE_COCOTB:
    import cocotb
    from cocotb.triggers import RisingEdge, with_timeout
    from cocotb.utils import get_sim_time

    from mnist_fpga.tb.bench import TB
    from mnist_fpga.tb.netcheck import (
        RESOLVABLE,
        TO_01,
        AccMonitor,
        ResultCollector,
        Stuck,
        strobes,
    )

PROGRESS_S = 0.5  # wall seconds between two writes of the progress count
# Clocks after the slowest image's latency in which the bench waits for anything more: a
# further done or accumulator strobe then is an extra (duplicate) result.
QUIET_MARGIN = 64


def pack_beats(pixels, p: int) -> list[int]:
    """Pixels as beats of ``p`` bytes, pixel j*p+q in byte q; the last beat padded with 0."""
    px = [int(v) for v in pixels]
    px += [0] * (-len(px) % p)
    return [sum(px[j + q] << (8 * q) for q in range(p)) for j in range(0, len(px), p)]


@dataclass
class ImageResult:
    """What the bench saw for one image."""

    index: int
    label: int
    model_class: int
    rtl_class: int = -1
    cycles: int = -1  # latency: first accepted pixel to done, inclusive
    done_cycle: int = -1  # clock of the done strobe (differences give the interval)
    mismatches: list[str] = field(default_factory=list)
    layers_seen: int = 0

    def bit_exact(self, n_layers: int) -> bool:
        return not self.mismatches and self.layers_seen == n_layers and (
            self.rtl_class == self.model_class
        )


def clock_budget(qnet) -> int:
    """Clocks a healthy top may take without visible progress: a deadlock is declared past it.

    The slowest legal schedule computes one product per clock (one input and one neuron
    at a time) in every layer, so ``sum(n_in * n_out)`` plus the serializers bounds the
    latency of one image for any P (and neuron folding), with a margin for pipelining.
    """
    work = sum(layer.n_in * layer.n_out + layer.n_in + 2 * layer.n_out for layer in qnet.layers)
    return 2 * work + 1000


if HAVE_COCOTB:

    class NetTB(TB):
        """Clock, reset and the pixel driver of ``<net>_top``.

        With ``feeder`` the toplevel is ``<net>_tbtop`` (tb/netsim.py): the VHDL pixel
        feeder streams whole images that :meth:`load_image` hands over, and ``top`` is the
        ``<net>_top`` instance inside it. Without it (the Verilog netlist), Python drives
        every beat (:meth:`send_image`).
        """

        def __init__(self, dut, feeder: bool) -> None:
            # The clock in the GPI (C) rather than a Python task: same edges, same
            # cycle counts, 20 % (GHDL) to 55 % (NVC) less CPU at P=1 (docs/simspeed.md).
            super().__init__(dut, inputs=("load_valid",) if feeder else ("s_valid", "s_data"),
                             clock_impl="gpi")
            self.feeder = feeder
            self.top = dut.u_top if feeder else dut

        async def send_image(self, beats: list[int], on_first, budget: int) -> None:
            """Stream one image, a beat per accepted clock; ``on_first`` at its first handshake.

            Raises :class:`Stuck` when ``s_ready`` stays low for ``budget`` clocks.
            """
            dut, clk = self.dut, self.dut.clk
            dut.s_valid.value = 1
            first = True
            last = None
            for p in beats:
                if p != last:  # most MNIST pixels repeat (zeros): skip redundant writes
                    dut.s_data.value = p
                    last = p
                await RisingEdge(clk)
                waited = 0
                while not dut.s_ready.value:
                    waited += 1
                    if waited > budget:
                        raise Stuck(f"s_ready low for {budget} clocks")
                    await RisingEdge(clk)
                if first:
                    on_first()
                    first = False
            dut.s_valid.value = 0

        async def load_image(self, pixels: np.ndarray, p: int, budget: int) -> None:
            """Hand one image to the feeder (beat j's byte q = pixel j*p+q, the last beat
            padded with 0); returns once it is taken, the next image may follow at once.

            Raises :class:`Stuck` when no image slot frees up within ``budget`` clocks.
            """
            dut, clk = self.dut, self.dut.clk
            px = np.zeros(-(-pixels.size // p) * p, dtype=np.uint8)
            px[:pixels.size] = pixels
            # little-endian bytes: pixel j*p+q lands at bits 8*(j*p+q) = beat j, byte q
            dut.load_data.value = int.from_bytes(px.tobytes(), "little")
            dut.load_valid.value = 1
            await RisingEdge(clk)  # load_ready as the feeder saw it at this edge
            if not dut.load_ready.value:
                try:  # a slot frees when the image before the queued one is streamed out
                    await with_timeout(RisingEdge(dut.load_ready), budget * CLK_NS, "ns")
                except cocotb.triggers.SimTimeoutError:
                    raise Stuck(f"the pixel feeder's image slots stayed full for {budget} "
                                "clocks (s_ready low)") from None
                await RisingEdge(clk)  # taken at this edge: load_ready stays '1' until then
            dut.load_valid.value = 0

    @cocotb.test()
    async def run_images(dut) -> None:
        """Drive the configured sample images and check every layer and the class."""
        from mnist_fpga.gen.core.model import QNet, check_images, classify, forward, is_correct
        from mnist_fpga.gen.data.sample import load_sample

        qnet = QNet.load(Path(os.environ["MLP_QNET"]))
        qnet_n_in = qnet.layers[0].n_in
        if qnet_n_in == 28 * 28:
            images, labels = load_sample(Path(os.environ["MLP_SAMPLE"]))
        else:  # fuzzed networks: raw input vectors of any length
            with np.load(os.environ["MLP_SAMPLE"]) as npz:
                images, labels = check_images(npz["images"], qnet_n_in), npz["labels"]
        first = int(os.environ.get("MLP_FIRST", "0"))
        count = int(os.environ.get("MLP_COUNT", "20"))
        idx = list(range(first, min(first + count, images.shape[0])))
        assert idx, f"no images selected (first={first}, count={count}, sample has {len(images)})"
        accs = forward(qnet, images[idx])
        model_classes = classify(qnet, accs[-1])
        fault = os.environ.get("MLP_FAULT_EXPECTED", "")
        if fault:  # negative test of the checker itself: corrupt one expected value
            accs[int(fault)][0, 0] += 1
        expected = [a.tolist() for a in accs]
        results = [
            ImageResult(index=i, label=int(labels[i]), model_class=int(model_classes[j]))
            for j, i in enumerate(idx)
        ]
        tb = NetTB(dut, feeder=os.environ.get("MLP_FEEDER", "0") == "1")
        top = tb.top
        monitors = [AccMonitor(top.clk, getattr(top, f"acc{k}_valid"),
                               getattr(top, f"acc{k}_flat"), k, layer.n_out, layer.acc_bits,
                               expected[k], names=idx)
                    for k, layer in enumerate(qnet.layers)]
        await tb.reset()
        budget = clock_budget(qnet)

        def stuck_message(j: int, what: str) -> str:
            """Name the image and the first layer that has not finished it."""
            layer = next((m.k for m in monitors if m.count <= j), None)
            where = (f"layer {layer} never delivered its accumulators" if layer is not None
                     else "every layer delivered its accumulators; the class never came")
            return f"image {idx[j]}: no progress: {what}; {where}"

        # Cycles of an image: from its first accepted pixel to its done strobe, inclusive.
        starts: list[float] = []

        # images done, for the progress of make sim and tb/regress.py (mnist_fpga.progress):
        # after the first image, then at most every PROGRESS_S of wall time, and the last
        progress = os.environ.get("MLP_PROGRESS")
        written = [-PROGRESS_S]
        done = strobes(dut.done, dut.clk)

        async def next_class() -> list[tuple[str, float]]:
            await anext(done)  # in the ReadOnly phase of the done clock
            return [(str(dut.class_out.value), get_sim_time(unit="ns"))]

        def on_class(j: int, result: tuple[str, float]) -> None:
            cls, now = result
            if not RESOLVABLE.issuperset(cls):
                results[j].mismatches.append(f"image {idx[j]}: metavalue in class_out ({cls})")
                results[j].rtl_class = -2
            else:
                results[j].rtl_class = int(cls.translate(TO_01), 2)
            results[j].cycles = round((now - starts[j]) / CLK_NS) + 1 if j < len(starts) else -1
            results[j].done_cycle = round(now / CLK_NS)
            if progress and (j in (0, len(idx) - 1)
                             or time.monotonic() - written[0] >= PROGRESS_S):
                write_progress(progress, j + 1)  # atomic: the count never goes back
                written[0] = time.monotonic()

        classes = ResultCollector(
            dut.clk, len(idx), budget, next_results=next_class, on_result=on_class,
            quiet=lambda: max(r.cycles for r in results) + QUIET_MARGIN,
            stuck_message=stuck_message, clk_ns=CLK_NS)

        async def record_starts() -> None:
            """The feeder's first_taken: one strobe per image, at its first beat's edge."""
            async for _ in strobes(dut.first_taken, dut.clk):
                starts.append(get_sim_time(unit="ns"))

        collector = cocotb.start_soon(classes.run())
        if tb.feeder:
            cocotb.start_soon(record_starts())
        t0, cpu0 = time.perf_counter(), time.process_time()
        stuck = None
        p = int(os.environ.get("MLP_P", "1"))
        try:
            for j, i in enumerate(idx):
                try:
                    if tb.feeder:
                        await tb.load_image(images[i].reshape(-1), p, budget)
                    else:
                        await tb.send_image(pack_beats(images[i].reshape(-1), p),
                                            lambda: starts.append(get_sim_time(unit="ns")),
                                            budget)
                except Stuck as exc:
                    # the feeder holds two images: the oldest one not done is the stuck one
                    first_open = sum(r.cycles >= 0 for r in results) if tb.feeder else j
                    raise Stuck(stuck_message(first_open, str(exc))) from None
            await collector
        except Stuck as exc:
            stuck = str(exc)
            collector.cancel()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        for j, r in enumerate(results):  # what each layer's monitor saw of image j
            r.layers_seen = sum(m.count > j for m in monitors)
            r.mismatches[:0] = [msg for m in monitors for msg in m.by_image.get(j, [])]
        # missing, extra and duplicate results of the run (not of one image)
        errors = [e for m in monitors for e in m.errors() if not e.startswith("image ")]
        errors += classes.extra

        out = os.environ.get("MLP_RESULTS")
        if out:
            doc = {
                "net": qnet.name, "format": qnet.fmt.name, "n_layers": len(qnet.layers),
                "wall_s": wall, "cpu_s": cpu, "stuck": stuck,  # cpu: this process
                "errors": errors,
                "images": [
                    {
                        **r.__dict__, "bit_exact": r.bit_exact(len(qnet.layers)),
                        # None: an image without a label (a user's, label -1)
                        "rtl_correct": None if r.label < 0 else bool(
                            is_correct(qnet, [r.rtl_class], [r.label])[0]),
                    }
                    for r in results
                ],
            }
            Path(out).write_text(json.dumps(doc, indent=1))
        assert stuck is None, f"deadlock: {stuck}"
        assert not errors, f"{len(errors)} results missing or extra: " + "; ".join(errors[:10])
        bad = [r for r in results if not r.bit_exact(len(qnet.layers))]
        msgs = [m for r in bad for m in r.mismatches[:3]]
        msgs += [
            f"image {r.index}: class expected {r.model_class} got {r.rtl_class}"
            for r in bad if r.rtl_class != r.model_class
        ]
        assert not bad, f"{len(bad)} of {len(results)} images not bit-exact: " + "; ".join(
            msgs[:10]
        )


# ----------------------------------------------------------------------------- pytest runner

NETS = ("zero", "l10", "mlp256")
# Formats (docs/numerics.md): int8 on every network; a representative slice of the
# others by default, the full network x format matrix with TB_FULL=1.
FORMATS = ("int8", "int4", "int16", "w4a8", "w2a2", "q1_7", "int8-pn", "int8-shift",
           "int4-pn-shift")
SLICE = {("mlp256", f) for f in FORMATS} | {(n, f) for n in NETS for f in ("int8", "int4", "q1_7")}
FULL = os.environ.get("TB_FULL", "0") == "1"
NET_FORMATS = [
    pytest.param(n, f, id=f"{n}-{f}") for n in NETS for f in FORMATS if FULL or (n, f) in SLICE
]
# Image sets (first index, count) of the committed sample; TB_IMAGES sets the count.
_N = env_int("TB_IMAGES", 5, lo=1)
IMAGE_SETS = [pytest.param((0, _N), id=f"img{_N}")]


def simulate(request, net: str, fmt: str, **kw) -> dict:
    """:func:`tb.netsim.run_network_sim` in the test's build folder (skips without a
    simulator); ``kw`` as there."""
    from mnist_fpga.tb.netsim import run_network_sim

    skip_without_simulator()
    return run_network_sim(net, fmt, tag=build_tag(request, sim=True), **kw)


@pytest.mark.parametrize("images", IMAGE_SETS)
@pytest.mark.parametrize(("net", "fmt"), NET_FORMATS)
def test_mlp_top(net: str, fmt: str, images: tuple[int, int], request) -> None:
    """Generate ``net`` in ``fmt`` and run real MNIST images through the RTL, bit-exact."""
    first, count = images
    res = simulate(request, net, fmt, n_images=count, first=first)
    assert res["failure"] is None, res["failure"]
    assert [r["index"] for r in res["images"]] == list(range(first, first + count))
    bad = [m for r in res["images"] for m in r["mismatches"]]
    assert all(r["bit_exact"] for r in res["images"]), bad[:5]


# Negative tests: each injected fault must make the bench fail, at the layer it hits.
FAULT_CASES = [
    pytest.param("weight:0,3,300", 0, id="weight-rom"),   # pixel 300 of image 0 is not 0
    pytest.param("bias:1,2", 1, id="bias-off-by-one"),
    pytest.param("round", 1, id="requant-rounding"),
    pytest.param("addr", 0, id="address-off-by-one"),
    pytest.param("expected:1", 1, id="model-expectation"),
    pytest.param("mutant:layer-acc-undefined", 0, id="acc-metavalue"),
]


@pytest.mark.parametrize(("fault", "layer"), FAULT_CASES)
def test_bench_catches_fault(fault: str, layer: int, request) -> None:
    """mlp256 int8 with one fault injected: the checker must report image 0 not bit-exact."""
    from mnist_fpga.tb.faults import parse_faults
    res = simulate(request, "mlp256", "int8", n_images=1, faults=parse_faults([fault]))
    img = res["images"][0]
    assert res["failure"] is not None, "the cocotb test passed with a fault injected"
    assert not img["bit_exact"]
    assert img["mismatches"], "no accumulator mismatch reported"
    assert img["mismatches"][0].startswith(f"image 0 layer {layer}"), img["mismatches"][0]


# The bench cannot hang or look away: a deadlock fails within its clock budget naming the
# image and the layer, a metavalue on class_out fails, an IEEE warning alone fails, a
# result announced twice fails (one image: only the quiet period after it can see that).
HARNESS_CASES = [
    pytest.param("requant-never-ready", "deadlock: image 0: no progress", "layer 1 never",
                 2, id="deadlock"),
    pytest.param("argmax-class-undefined", "FAILED", "metavalue in class_out", 2,
                 id="class-metavalue"),
    pytest.param("requant-relu-warns", "simulator warning", "vector truncated", 2,
                 id="ieee-warning"),
    pytest.param("argmax-done-twice", "1 results missing or extra",
                 "extra result #2 for 1 images", 1, id="duplicate-done"),
]


@pytest.mark.parametrize(("mutant", "failure", "detail", "n_images"), HARNESS_CASES)
def test_bench_cannot_look_away(mutant: str, failure: str, detail: str, n_images: int,
                                request) -> None:
    """l10 int8 (quick) with an RTL mutant: the run fails and says why."""
    from mnist_fpga.tb.faults import parse_faults
    net = "mlp256" if mutant.startswith("requant") else "l10"  # l10 has no requantizer
    # how fast it fails is a goal of bench/bench_goals.py, not of this test
    res = simulate(request, net, "int8", n_images=n_images,
                   faults=parse_faults([f"mutant:{mutant}"]))
    text = (res["failure"] or "") + " " + json.dumps(res["images"])
    assert res["failure"] is not None and failure in res["failure"], res["failure"]
    assert detail in text, text[:500]


# Input parallelism P (inputs per clock) and overlapped layers: bit-exact for P that do
# and do not divide the layers' input counts, and the cycle targets of the throughput
# design (deterministic clock counts measured by the bench, not wall time).
PARALLEL_CASES = [
    pytest.param("mlp256", 1, None, id="mlp256-int8-p1"),
    pytest.param("mlp256", 8, None, id="mlp256-int8-p8"),
    pytest.param("mlp256", 5, None, id="mlp256-int8-p5"),   # 784 and 256 not multiples of 5
    pytest.param("l10", 3, None, id="l10-int8-p3"),
    pytest.param("zero", 16, None, id="zero-int8-p16"),
    # neuron folding: PE neurons at a time (clamped to each layer's neurons)
    pytest.param("mlp256", 16, 64, id="mlp256-int8-p16-pe64"),  # divides 256, not 10
    pytest.param("mlp256", 8, 48, id="mlp256-int8-p8-pe48"),    # divides neither
    pytest.param("l10", 4, 3, id="l10-int8-p4-pe3"),            # 4 folds, the last of 1
]
# mlp256 at P=1: 784 + 256 beats, 16 clocks of hand-over, requantizer and argmax, and
# since the pipelined MAC (rtl/mac_array.vhd) 4 more register stages per layer (ROM word,
# operands, products, result register) and the output register: 1053 before, 1063 with
# them; 1065 with the three-stage requantizer, 1067 with argmax's input and class registers,
# 1068 with the requantizer's partial products, 1072 with a second register on each side
# of the multiplier blocks, 1074 with a second register after the block RAMs, 1078 with
# the registered ROM address and the registered hand-over to the holding register.
LATENCY_MAX_P1 = 784 + 256 + 16 + 2 * 8 + 7
INTERVAL_MAX_P8 = 100  # mlp256 at P=8


@pytest.mark.parametrize(("net", "p", "pe"), PARALLEL_CASES)
def test_mlp_top_parallel(net: str, p: int, pe: int | None, request) -> None:
    """Images back to back at P inputs and PE neurons per clock: bit-exact, latency and
    interval on target (with PE: about ceil(N_OUT/PE) x ceil(N_IN/P) clocks per layer)."""
    res = simulate(request, net, "int8", n_images=4, p=p, pe=pe)
    assert res["failure"] is None, res["failure"]
    assert all(r["bit_exact"] for r in res["images"])
    latency = max(r["cycles"] for r in res["images"])
    n_in = 784
    assert latency >= -(-n_in // p), "faster than the input stream: the count is wrong"
    assert res["interval"] <= latency
    if net == "mlp256" and p == 1 and pe is None:
        assert latency <= LATENCY_MAX_P1, latency
    if net == "mlp256" and p == 8 and pe is None:
        assert res["interval"] <= INTERVAL_MAX_P8, res["interval"]
    if pe is not None:  # the slowest layer's folds x beats, plus a pipeline's worth
        from mnist_fpga.gen.core.model import QNet
        from mnist_fpga.gen.hdl.generate import neurons_parallel
        from mnist_fpga.paths import BUILD

        qnet = QNet.load(BUILD / "sim" / build_tag(request, sim=True) / "gen" / "qnet.json")
        pes = neurons_parallel(qnet, pe)
        slowest = max(-(-ly.n_out // e) * -(-ly.n_in // p)
                      for ly, e in zip(qnet.layers, pes, strict=True))
        assert slowest <= res["interval"] <= slowest + 16, (res["interval"], slowest)


# Networks at the edges of what the tools accept (issue "every network the tools accept is
# bit-exact"): each was once refused or computed wrongly; each is now bit-exact.
def _edge_weights(case: str) -> tuple[dict, str, int]:
    """Float weights, format and P of one edge case."""
    rng = np.random.default_rng(5)
    if case == "wide-product":  # one product wider than the accumulator it lands in
        w0 = np.zeros((1, 784), dtype=np.float32)
        w0[0, 0] = 1.0
        return {"W0": w0, "b0": np.array([-0.50195], dtype=np.float32)}, "int16", 1
    net = {"W0": rng.normal(0, 0.1, (16, 784)).astype(np.float32),
           "b0": rng.normal(0, 0.1, 16).astype(np.float32), "calib0": np.float32(2.5),
           "W1": rng.normal(0, 0.3, (10, 16)).astype(np.float32),
           "b1": rng.normal(0, 0.1, 10).astype(np.float32)}
    if case in ("tiny-q1_15", "tiny-q2_6"):  # every first-layer weight quantizes to 0
        net["W0"] *= 1e-6
        return net, case.split("-")[1], 1
    if case == "zero-last-layer":  # an all-zero logits layer: ACC = W + 1
        net["W1"][:] = 0
        net["b1"][:] = 0
        return net, "int8", 1
    if case == "p16-narrow":  # P = 16 on a 7-input hidden layer
        net["W0"], net["b0"] = net["W0"][:7], net["b0"][:7]
        net["W1"] = net["W1"][:, :7]
        return net, "int8", 16
    if case == "shift-left":  # ratio > 0.5 in shift-only requantization: a left shift
        net["calib0"] = np.float32(1e-3)
        return net, "int8-shift", 1
    if case == "shift-huge":  # a shift past the product width (calib0 = 1e6)
        net["calib0"] = np.float32(1e6)
        return net, "int8", 1
    if case == "pn-shift-huge":  # per-neuron shifts above 255 before: now clamped exactly
        net["calib0"] = np.float64(1e80)  # shifts near 280 before the clamp
        return net, "int8-pn", 4
    raise ValueError(case)


EDGE_CASES = ["wide-product", "tiny-q1_15", "tiny-q2_6", "zero-last-layer", "p16-narrow",
              "shift-left", "shift-huge", "pn-shift-huge"]


@pytest.mark.parametrize("case", EDGE_CASES)
def test_edge_network(case: str, tmp_path: Path, request) -> None:
    """An edge-case network through generator, RTL and model: bit-exact at every layer."""
    weights, fmt, p = _edge_weights(case)
    np.savez(tmp_path / "w.npz", **weights)
    from mnist_fpga.gen.data.sample import load_sample

    images, labels = load_sample(Path(__file__).resolve().parents[2] / "data"
                                 / "mnist_test_100.npz")
    images = images[:3].copy()
    images[:, 0, 0] = 255  # the pixel the wide-product network multiplies by its weight
    np.savez(tmp_path / "sample.npz", images=images, labels=labels[:3])
    res = simulate(request, "edge", fmt, n_images=3, weights=tmp_path / "w.npz",
                   sample=tmp_path / "sample.npz", p=p)
    assert res["failure"] is None, res["failure"]
    bad = [m for r in res["images"] for m in r["mismatches"]]
    assert all(r["bit_exact"] for r in res["images"]), bad[:5]


@pytest.mark.parametrize(("net", "p", "pe"), [
    pytest.param("l10", 2, 4, id="l10-int8-p2-pe4-lutmult"),
    pytest.param("mlp256", 4, 64, id="mlp256-int8-p4-pe64-lutmult"),
])
def test_mlp_top_lut_mult(net: str, p: int, pe: int, request) -> None:
    """Products from adders (MULT_STYLE "lut"): bit-exact at every layer like DSP products."""
    res = simulate(request, net, "int8", n_images=3, p=p, pe=pe, lut_mult=True)
    assert res["failure"] is None, res["failure"]
    assert all(r["bit_exact"] for r in res["images"])


@pytest.mark.parametrize(("net", "p", "pe"), [
    pytest.param("l10", 1, None, id="l10-int8-p1-ecp5"),       # ROM slices of 18 bits
    pytest.param("l10", 1, 4, id="l10-int8-p1-pe4-ecp5"),      # 4-bit slices, 3 folds
    pytest.param("l10", 1, 5, id="l10-int8-p1-pe5-ecp5"),      # 9-bit slices, the last 4
    pytest.param("l10", 3, 7, id="l10-int8-p3-pe7-ecp5"),      # 18-bit slices, lane tree
])
# (mlp256 with tech="ecp5" is bit-exact too, but GHDL takes minutes to compile its 128
# ROM slices: python -m mnist_fpga.tb.netsim --net mlp256 --pe 64 --tech ecp5)
def test_mlp_top_tech_ecp5(net: str, p: int, pe: int | None, request) -> None:
    """The code of the ECP5 synthesis flow (MULT_STYLE "ecp5": multiplier blocks with
    their registers, simulated with tb/hdl/MULT18X18D.vhd; weight ROMs in slices one
    block RAM deep): bit-exact at every layer."""
    res = simulate(request, net, "int8", n_images=3, p=p, pe=pe, tech="ecp5")
    assert res["failure"] is None, res["failure"]
    assert all(r["bit_exact"] for r in res["images"])
