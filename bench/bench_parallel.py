"""Throughput sweep of mlp256: inputs per clock P, latency, interval, speed, resources.

Usage::

    python -m mnist_fpga.bench.bench_parallel [--images 20] [--ps 1 2 4 8 16] [--net mlp256]

For each P: latency and initiation interval in clocks (measured by the cocotb bench,
images back to back), simulated images/s (wall clock inside the simulation), the
images/s the RTL would reach at 100 MHz, and a resource estimate from the generator's
own count: multipliers (MAC lanes and requantizers), ROM bits, and 36 Kb block RAMs
(the best of the 512x72 .. 32Kx1 shapes per ROM). Then, at the last P, the cost of the
cocotb harness: the same RTL and images under a plain VHDL testbench that reads the
pixels from a file, and the ratio cocotb / plain.
"""

from __future__ import annotations

import argparse
import os

from mnist_fpga.bench.plain import plain_run
from mnist_fpga.gen.core.errors import UserError, cli_main
from mnist_fpga.gen.core.formats import parse_format
from mnist_fpga.gen.core.model import QNet
from mnist_fpga.gen.core.quant import quantize_file
from mnist_fpga.gen.data.sample import load_sample
from mnist_fpga.gen.hdl.generate import ROOT, parallelism
from mnist_fpga.paths import BUILD, DEFAULT_SAMPLE
from mnist_fpga.tb.common import simulator, simulator_missing
from mnist_fpga.tb.netsim import run_network_sim

BRAM36_SHAPES = [(512, 72), (1024, 36), (2048, 18), (4096, 9), (8192, 4), (16384, 2),
                 (32768, 1)]


def resources(qnet: QNet, ps: list[int]) -> dict[str, int]:
    """Multipliers, ROM bits and 36 Kb block RAMs of the generated network."""
    mults = rom_bits = brams = 0
    for k, (layer, p) in enumerate(zip(qnet.layers, ps, strict=True)):
        mults += layer.n_out * p
        if layer.hidden:
            mults += ps[k + 1]  # one requantizer per output lane
        depth, width = -(-layer.n_in // p), layer.n_out * p * layer.w_bits
        rom_bits += depth * width
        brams += min(-(-depth // d) * -(-width // w) for d, w in BRAM36_SHAPES)
    return {"multipliers": mults, "rom_bits": rom_bits, "bram36": brams}


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m mnist_fpga.bench.bench_parallel",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--net", default="mlp256")
    ap.add_argument("--format", default="int8")
    ap.add_argument("--images", type=int, default=int(os.environ.get("IMAGES", "20")))
    ap.add_argument("--ps", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    args = ap.parse_args()
    if reason := simulator_missing():
        raise UserError(reason)
    images, _ = load_sample(DEFAULT_SAMPLE)
    qnet = quantize_file(ROOT / "models" / f"{args.net}.npz", parse_format(args.format),
                         args.net, calib_images=images)
    print(f"# {args.net} {args.format}, {args.images} images back to back; resources from "
          "the generator's own count (yosys did not finish on the 2048-bit-wide ROM within "
          "5 minutes here)")
    print(f"{'P':>3} {'latency':>8} {'interval':>9} {'img/s@100MHz':>13} {'sim img/s':>10} "
          f"{'bit_exact':>9} {'mults':>6} {'ROM bits':>9} {'BRAM36':>7}")
    rc = 0
    doc = None
    for p in args.ps:
        ps = parallelism(qnet, p)
        doc = run_network_sim(args.net, args.format, args.images,
                              tag=f"bench-par-{args.net}-p{p}", p=p)
        imgs = doc["images"]
        exact = sum(r["bit_exact"] for r in imgs)
        lat = max(r["cycles"] for r in imgs)
        ii = doc["interval"] or float("nan")
        res = resources(qnet, ps)
        print(f"{p:>3} {lat:>8} {ii:>9.1f} {100e6 / ii:>13,.0f} {len(imgs) / doc['wall_s']:>10.2f} "
              f"{exact:>6}/{len(imgs):<2} {res['multipliers']:>6} {res['rom_bits']:>9} "
              f"{res['bram36']:>7}")
        rc |= exact != len(imgs)
    p = args.ps[-1]
    gen_dir = BUILD / "sim" / f"bench-par-{args.net}-p{p}" / "gen"
    plain = plain_run(simulator(), qnet, gen_dir, p, images[: args.images],
                      BUILD / "bench" / f"plain-{args.net}-p{p}-{simulator()}")
    ratio = doc["wall_s"] / plain.sim_s
    print(f"harness at P={p}: cocotb {doc['wall_s']:.2f} s, plain VHDL testbench "
          f"{plain.sim_s:.2f} s (start-up of {plain.startup_s:.2f} s excluded; classes "
          f"{'match' if plain.ok else 'DIFFER'}), ratio cocotb/plain {ratio:.2f}")
    return rc | (not plain.ok)


if __name__ == "__main__":
    cli_main(main)
