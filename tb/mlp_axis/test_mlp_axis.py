"""AXI4-Stream top bench: ``<net>_axis`` driven and read by cocotbext-axi.

An ``AxiStreamSource`` sends real MNIST images as packets with random idle cycles, an
``AxiStreamSink`` takes the results with random back-pressure (and, in the stall
tests, none at all for a long time), an ``AxiStreamMonitor`` records the packets the
top accepted on ``s_axis``. Checked against the numpy model (``gen/core/model.py``):

- every layer's accumulators inside ``u_top``, bit-exact, for every image in order;
- one result per packet, in order: class = the model's class of the pixels the network
  really saw, ``tuser`` = '1' exactly for the packets with an early or late tlast; no
  result lost, none duplicated (counts equal, nothing more after a quiet period);
- the buffer bound: with the consumer stalled, exactly RESULT_DEPTH packets get in.

Packets (``AXIS_PLAN``, see :func:`plan_packets`): ``ok:i`` image i; ``short:i:n``
its first n beats then tlast (the top pads with zeros); ``long:i:k`` the image plus k
junk beats before tlast (dropped); ``merge:i:j`` image i without tlast followed by
image j (j is dropped); with TLAST_BATCH ``batch:i,j,k[:n]`` images back to back, the
last one cut after n beats. Seeds: ``TB_SEED`` or fixed per test, printed.
"""

from __future__ import annotations

import json
import os
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from mnist_fpga.tb.bench import (
    CLK_NS,
    HAVE_COCOTB,
    build_tag,
    case_seed,
    skip_without_simulator,
)

if HAVE_COCOTB:
    import cocotb
    from cocotb.triggers import ClockCycles
    from cocotb.utils import get_time_from_sim_steps
    from cocotbext.axi import (
        AxiStreamBus,
        AxiStreamFrame,
        AxiStreamMonitor,
        AxiStreamSink,
        AxiStreamSource,
    )

    from mnist_fpga.tb.bench import TB

N_PIXELS = 784


@dataclass
class Plan:
    """Packets to send and, per result, what the network must see and report."""

    packets: list[bytes] = field(default_factory=list)
    inputs: list[np.ndarray] = field(default_factory=list)  # 784 pixels the network sees
    flags: list[int] = field(default_factory=list)  # expected m_axis_tuser
    lasts: list[int] = field(default_factory=list)  # expected m_axis_tlast

    def add(self, pixels: np.ndarray, flag: int, last: int = 1) -> None:
        self.inputs.append(pixels)
        self.flags.append(flag)
        self.lasts.append(last)


def plan_packets(plan: list[str], images: np.ndarray, p: int, seed: int) -> Plan:
    """The packets of ``plan`` and the results they must give (docs/integration.md).

    ``images`` is (N, 784) uint8. This is the bench's own statement of the tlast rules,
    independent of the RTL: a cut image is seen with zeros after its last pixel, a long
    one without its extra beats.
    """
    beats = -(-N_PIXELS // p)
    full = beats * p  # bytes of a whole image on the bus (last beat padded)
    rng = random.Random(seed)
    out = Plan()
    for item in plan:
        kind, *args = item.split(":")
        if kind == "batch":  # batch:i,j,k[:n]  (TLAST_BATCH), the last image cut to n beats
            idx = [int(v) for v in args[0].split(",")]
            cut = int(args[1]) if len(args) > 1 else None
            body = b""
            for r, i in enumerate(idx):
                img = images[i].astype(np.uint8)
                final = r == len(idx) - 1
                if final and cut is not None:
                    seen = np.zeros(N_PIXELS, dtype=np.uint8)
                    seen[: cut * p] = img[: cut * p]
                    body += bytes(img[: cut * p])
                    out.add(seen, 1)
                else:
                    body += bytes(img) + (b"" if final else bytes(full - N_PIXELS))
                    out.add(img, 0, int(final))
            out.packets.append(body)
            continue
        a = [int(v) for v in args]
        img = images[a[0]].astype(np.uint8)
        padded = bytes(img) + bytes(full - N_PIXELS)
        if kind == "ok":
            out.packets.append(bytes(img))
            out.add(img, 0)
        elif kind == "short":
            n = a[1]
            if not 1 <= n < beats:
                raise ValueError(f"{item}: a short packet has 1..{beats - 1} beats")
            seen = np.zeros(N_PIXELS, dtype=np.uint8)
            seen[: n * p] = img[: n * p]
            out.packets.append(bytes(img[: n * p]))
            out.add(seen, 1)
        elif kind == "long":
            out.packets.append(padded + bytes(rng.randrange(256) for _ in range(a[1] * p)))
            out.add(img, 1)
        elif kind == "merge":
            out.packets.append(padded + bytes(images[a[1]].astype(np.uint8)))
            out.add(img, 1)
        else:
            raise ValueError(f"unknown packet kind {item!r}")
    return out


def pauses(rng: random.Random, prob: float, burst: int):
    """An endless pause pattern: with probability ``prob`` a run of 1..``burst`` paused clocks."""
    while True:
        if rng.random() < prob:
            for _ in range(rng.randint(1, burst)):
                yield True
        else:
            yield False


if HAVE_COCOTB:

    def clocks(steps: int) -> int:
        """Simulator time steps to clock periods."""
        return round(get_time_from_sim_steps(steps, "ns") / CLK_NS)

    class AxisTB(TB):
        """Clock, reset, the cocotbext-axi source / sink / monitor and the layer monitors."""

        def __init__(self, dut, seed: int, in_idle: float, out_stall: float,
                     stall_cycles: int) -> None:
            super().__init__(dut, seed)
            self.source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk,
                                          dut.rst)
            self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
            self.accepted = AxiStreamMonitor(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk,
                                             dut.rst)
            self.source.set_pause_generator(pauses(random.Random(seed), in_idle, 8))
            out = pauses(random.Random(seed + 1), out_stall, 20)
            self.sink.set_pause_generator(
                v for gen in ((True for _ in range(stall_cycles)), out) for v in gen)

    @cocotb.test()
    async def run_packets(dut) -> None:
        """Send the planned packets, check every layer, every result and the buffer bound."""
        from mnist_fpga.gen.data.sample import load_sample
        from mnist_fpga.tb.netcheck import AccMonitor, ResultCollector, Stuck, expectations

        env = os.environ
        p, depth, seed = int(env["MLP_P"]), int(env["AXIS_DEPTH"]), int(env["AXIS_SEED"])
        stall = int(env.get("AXIS_STALL", "0"))
        images, _ = load_sample(Path(env["MLP_SAMPLE"]))
        plan = plan_packets(json.loads(env["AXIS_PLAN"]), images.reshape(-1, N_PIXELS), p, seed)
        packets, n_res = plan.packets, len(plan.inputs)
        qnet, accs, classes = expectations(Path(env["MLP_QNET"]), np.array(plan.inputs))
        dut._log.warning("seed %d, %d packets, P=%d, RESULT_DEPTH=%d", seed, len(packets), p,
                         depth)
        tb = AxisTB(dut, seed, float(env["AXIS_IN_IDLE"]), float(env["AXIS_OUT_STALL"]), stall)
        mons = [AccMonitor(dut.clk, getattr(dut.u_top, f"acc{k}_valid"),
                           getattr(dut.u_top, f"acc{k}_flat"), k, layer.n_out, layer.acc_bits,
                           accs[k])
                for k, layer in enumerate(qnet.layers)]
        await tb.reset()
        for pkt in packets:
            await tb.source.send(AxiStreamFrame(pkt))

        beats = -(-N_PIXELS // p)
        sent_beats = sum(-(-len(pkt) // p) for pkt in packets)
        budget = stall + 4 * (sent_beats + n_res * beats) + 2000 * len(qnet.layers)

        in_stall: list[int] = []

        async def watch_stall() -> None:  # packets taken in while nothing could leave
            await ClockCycles(dut.clk, stall - 10)
            in_stall.extend([tb.accepted.count(), tb.sink.count() + len(frames)])

        frames: list[AxiStreamFrame] = []

        async def next_frame() -> list[tuple[int, int, int]]:
            """(class, tuser, tlast) of each result of the next frame on m_axis."""
            f = await tb.sink.recv(compact=False)
            frames.append(f)
            return [(c, u, int(i == len(f.tdata) - 1))
                    for i, (c, u) in enumerate(zip(f.tdata, f.tuser, strict=True))]

        # the whole run's budget for the first result (a stall holds them all back); after
        # the last one, anything within an image's beats (and the pipeline) is a duplicate
        collector = ResultCollector(
            dut.clk, n_res, budget, quiet=lambda: 2 * beats + 300, next_results=next_frame,
            on_result=lambda j, r: None, clk_ns=CLK_NS,
            stuck_message=lambda j, what: f"only {j} results of {n_res}: {what}")
        if stall:
            cocotb.start_soon(watch_stall())
        errors = []
        try:
            await collector.run()
        except Stuck as exc:
            errors.append(str(exc))
        rtl = collector.results[:n_res]

        errors += [e for mon in mons for e in mon.errors()]
        errors += collector.extra
        if not tb.sink.empty():
            errors.append(f"results more than the {n_res} images")
        expected = list(zip(classes, plan.flags, plan.lasts, strict=True))
        for r, (got, exp) in enumerate(zip(rtl, expected, strict=False)):
            if got != exp:
                errors.append(f"result {r}: (class, tuser, tlast) = {got}, expected {exp}")
        frames_in = [tb.accepted.recv_nowait() for _ in range(tb.accepted.count())]
        taken = [bytes(f.tdata) for f in frames_in]
        if len(taken) != len(packets):
            errors.append(f"s_axis accepted {len(taken)} packets of {len(packets)}")
        else:  # the monitor sees whole beats: the padding lanes of a last beat are zero
            errors += [f"packet {i} changed on s_axis" for i, (a, b) in
                       enumerate(zip(taken, packets, strict=True))
                       if a[: len(b)] != b or any(a[len(b):])]
        if stall and len(in_stall) != 2:
            errors.append("the run ended before the stall did")
        elif stall:
            if in_stall[1] != 0:
                errors.append(f"{in_stall[1]} results left while m_axis_tready was low")
            # a packet is one image unless TLAST_BATCH: then images, not packets, are bounded
            if env.get("AXIS_BATCH") != "1" and in_stall[0] != min(depth, len(packets)):
                errors.append(f"{in_stall[0]} packets accepted during the stall, "
                              f"expected RESULT_DEPTH = {depth}")
        dut._log.warning("results %s", rtl)
        if out := env.get("MLP_RESULTS"):
            Path(out).write_text(json.dumps({
                "results": rtl, "expected": expected,
                "in_stall": in_stall, "errors": errors,
                # clocks of each packet's first accepted beat and of each result's transfer
                "first_beat": [clocks(f.sim_time_start) for f in frames_in],
                "result": [clocks(f.sim_time_end) for f in frames],
            }))
        assert not errors, f"{len(errors)} errors: " + "; ".join(errors[:10])


# ----------------------------------------------------------------------------- pytest runner

ROOT = Path(__file__).resolve().parent.parent.parent


def run_axis(net: str, fmt: str, p: int, plan: list[str], request, *, in_idle: float = 0.3,
             out_stall: float = 0.5, stall: int = 0, depth: int | None = None,
             batch: bool = False, mutant: str | None = None) -> dict:
    """Generate ``net``, run the plan through ``<net>_axis``; return the bench's results.

    Skips without a simulator; the build folder and the seed come from the test id.

    ``depth`` and ``batch`` are the top's RESULT_DEPTH and TLAST_BATCH. ``mutant``: the id
    of an RTL mutant (tb/mutants/mutants.toml) to compile instead (negative tests).
    ``failure`` is None when the cocotb test passed.
    """
    from mnist_fpga.gen.core.formats import parse_format
    from mnist_fpga.gen.core.quant import quantize_file
    from mnist_fpga.gen.data.sample import load_sample
    from mnist_fpga.gen.hdl.axis import AxisConfig, default_axis_depth
    from mnist_fpga.gen.hdl.generate import generate
    from mnist_fpga.gen.hdl.sources import axis_sources
    from mnist_fpga.paths import BUILD, DEFAULT_SAMPLE
    from mnist_fpga.tb.common import run_sim

    skip_without_simulator()
    tag = build_tag(request, sim=True)
    images, _ = load_sample(DEFAULT_SAMPLE)
    qnet = quantize_file(ROOT / "models" / f"{net}.npz", parse_format(fmt), net,
                         calib_images=images)
    work = BUILD / "tb" / tag
    gen_dir = generate(qnet, work / "gen", f"models/{net}.npz", p=p,
                       axis=AxisConfig(depth, batch))
    sources = [str(s) for s in axis_sources(gen_dir, qnet)]
    if mutant:  # a scratch copy of rtl/ with one mutant of tb/mutants/mutants.toml
        from mnist_fpga.tb.mutants import mutated_rtl

        rtl = mutated_rtl([mutant], work / "mutant")
        sources = [str(s) for s in axis_sources(gen_dir, qnet, rtl)]
    seed = case_seed(tag)
    results = work / "results.json"
    results.unlink(missing_ok=True)
    env = {
        "MLP_QNET": gen_dir / "qnet.json", "MLP_SAMPLE": DEFAULT_SAMPLE, "MLP_P": p,
        "MLP_RESULTS": results, "AXIS_PLAN": json.dumps(plan), "AXIS_SEED": seed,
        "AXIS_IN_IDLE": in_idle, "AXIS_OUT_STALL": out_stall, "AXIS_STALL": stall,
        "AXIS_DEPTH": depth or default_axis_depth(qnet), "AXIS_BATCH": int(batch),
    }
    failure = None
    try:
        run_sim(toplevel=f"{net}_axis", module="test_mlp_axis", vhdl_sources=sources,
                build_dir=work / "sim", extra_env=env, bench_dir=Path(__file__).parent)
    except SystemExit as exc:
        failure = str(exc)
    doc = json.loads(results.read_text()) if results.exists() else {"errors": []}
    doc["failure"] = failure
    return doc


_N = int(os.environ.get("TB_IMAGES", "3"))
NET_CASES = [  # (net, P): P = 3 does not divide 784 (padded last beat)
    pytest.param("zero", 1, id="zero-int8-p1-axis"),
    pytest.param("l10", 3, id="l10-int8-p3-axis"),
    pytest.param("mlp256", 1, id="mlp256-int8-p1-axis"),
]


@pytest.mark.parametrize(("net", "p"), NET_CASES)
def test_mlp_axis(net: str, p: int, request) -> None:
    """Well-formed packets with random idle input and random back-pressure: all bit-exact."""
    res = run_axis(net, "int8", p, [f"ok:{i}" for i in range(_N)], request)
    assert res["failure"] is None, (res["failure"], res["errors"][:5])


TLAST_PLAN = ["ok:0", "short:1:50", "ok:2", "long:3:7", "merge:4:5", "short:6:1", "ok:7"]


@pytest.mark.parametrize("p", [pytest.param(4, id="l10-int8-p4-axis-tlast")])
def test_mlp_axis_tlast(p: int, request) -> None:
    """Early, late and missing tlast: padded / truncated images flagged, stream resynchronised."""
    res = run_axis("l10", "int8", p, TLAST_PLAN, request)
    assert res["failure"] is None, (res["failure"], res["errors"][:5])
    assert [f for _, f, _ in res["results"]] == [0, 1, 0, 1, 1, 1, 0]


BATCH_PLAN = ["batch:0,1,2", "batch:3", "batch:4,5:30", "batch:6,7", "batch:8:1"]


@pytest.mark.parametrize("p", [pytest.param(3, id="l10-int8-p3-axis-batch")])
def test_mlp_axis_batch(p: int, request) -> None:
    """TLAST_BATCH: images back to back, tlast per batch; a cut image padded and flagged."""
    res = run_axis("l10", "int8", p, BATCH_PLAN, request, batch=True)
    assert res["failure"] is None, (res["failure"], res["errors"][:5])
    assert [(f, t) for _, f, t in res["results"]] == [
        (0, 0), (0, 0), (0, 1), (0, 1), (0, 0), (1, 1), (0, 0), (0, 1), (1, 1)]


# The wrapper must not slow the network down when the consumer keeps up: mlp256 at P = 8
# has an initiation interval of 98 clocks in <net>_top (tb/mlp_top's target: <= 100).
INTERVAL_MAX_P8 = 100


@pytest.mark.parametrize("p", [pytest.param(8, id="mlp256-int8-p8-axis-throughput")])
def test_mlp_axis_throughput(p: int, request) -> None:
    """Back-to-back images, consumer always ready: the interval of the simple top is kept."""
    res = run_axis("mlp256", "int8", p, [f"ok:{i}" for i in range(5)], request,
                   in_idle=0.0, out_stall=0.0)
    assert res["failure"] is None, (res["failure"], res["errors"][:5])
    done = res["result"]
    interval = (done[-1] - done[1]) / (len(done) - 2)
    latency = [d - f + 1 for d, f in zip(done, res["first_beat"], strict=True)]
    print(f"AXIS mlp256 P={p}: latency {latency} clocks, interval {interval:.1f} clocks")
    assert interval <= INTERVAL_MAX_P8, interval


STALL_PLAN = [f"ok:{i}" for i in range(6)]


@pytest.mark.parametrize("depth", [pytest.param(d, id=f"zero-int8-p8-axis-stall-d{d}")
                                   for d in (1, 2, 3)])
def test_mlp_axis_stall(depth: int, request) -> None:
    """Consumer stalled for a long time: exactly RESULT_DEPTH packets get in, none is lost."""
    res = run_axis("zero", "int8", 8, STALL_PLAN, request, stall=3000, depth=depth)
    assert res["failure"] is None, (res["failure"], res["errors"][:5])
    assert res["in_stall"] == [depth, 0]


# Negative tests: each mutant of the hand-written AXI units must turn the bench red.
MUTANTS = [
    # a result pushed into the FIFO it thinks full: its MUST_TAKE assertion ends the run
    pytest.param("fifo-drops-when-full", "MUST_TAKE: an entry is lost",
                 id="fifo-drops-when-full-axis-mutant"),
    pytest.param("fifo-ignores-tready", "results of|during the stall",
                 id="fifo-ignores-tready-axis-mutant"),
    pytest.param("framer-early-tlast-not-padded", "result",
                 id="early-tlast-not-padded-axis-mutant"),
    pytest.param("framer-late-tlast-not-dropped", "result",
                 id="late-tlast-not-dropped-axis-mutant"),
    pytest.param("framer-late-tlast-not-flagged", "tuser",
                 id="late-tlast-not-flagged-axis-mutant"),
]


BATCH_MUTANTS = [
    pytest.param("framer-batch-drops", "result", id="batch-drops-axis-mutant"),
    pytest.param("framer-batch-tlast-every-result", "tlast",
                 id="batch-tlast-every-result-axis-mutant"),
]


@pytest.mark.parametrize(("mutant", "expect"), MUTANTS + BATCH_MUTANTS)
def test_axis_catches_mutant(mutant: str, expect: str, request) -> None:
    """A stall and every tlast case on a broken copy of one unit: the bench must fail."""
    batch = "batch" in request.node.callspec.id
    res = run_axis("zero", "int8", 8, BATCH_PLAN if batch else TLAST_PLAN, request,
                   stall=2000, depth=2, batch=batch, mutant=mutant)
    assert res["failure"] is not None, f"bench passed with mutant {mutant}"
    if expect:
        seen = [*res["errors"], res["failure"]]  # the bench's errors, an RTL assertion
        assert any(re.search(expect, e) for e in seen), seen[:5]
