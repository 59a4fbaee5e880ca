"""Where a whole-network simulation's time goes: simulator vs the cocotb (Python) harness.

Usage::

    python -m mnist_fpga.bench.profile_sim [--net mlp256] [--format int8] [--images 100] [--ps 1 8]
                                [--sims ghdl nvc]

For each simulator (those installed) and P: the cocotb bench's wall time for the
images (timed inside the cocotb test, start-up excluded), the plain VHDL testbench's
wall time for the same RTL and images (its start-up, measured with ``--stop-time=0ns``,
subtracted) and the share of the cocotb run that the plain simulation does not explain
(the Python harness: driver, monitors, checker, scheduler and the VPI/VHPI calls),
from CPU times (the simulator process's), which a busy shared machine disturbs less
than wall clock. Compare figures within one run.
"""

from __future__ import annotations

import argparse
import os

from mnist_fpga.bench.plain import plain_run
from mnist_fpga.gen.core.errors import UserError, cli_main
from mnist_fpga.gen.core.formats import parse_format
from mnist_fpga.gen.core.quant import quantize_file
from mnist_fpga.gen.data.sample import load_sample
from mnist_fpga.gen.hdl.generate import ROOT
from mnist_fpga.paths import BUILD, DEFAULT_SAMPLE
from mnist_fpga.tb.common import SIMULATORS, simulator_missing
from mnist_fpga.tb.netsim import run_network_sim


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m mnist_fpga.bench.profile_sim",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--net", default="mlp256")
    ap.add_argument("--format", default="int8")
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--ps", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--sims", nargs="+", default=list(SIMULATORS), choices=SIMULATORS)
    args = ap.parse_args()
    images, _ = load_sample(DEFAULT_SAMPLE)
    if not 1 <= args.images <= len(images):
        raise UserError(f"--images must be 1..{len(images)}, got {args.images}")
    qnet = quantize_file(ROOT / "models" / f"{args.net}.npz", parse_format(args.format),
                         args.net, calib_images=images)
    sims = [s for s in args.sims if not simulator_missing(s)]
    for s in set(args.sims) - set(sims):
        print(f"# {s}: skipped, {simulator_missing(s)}")
    if not sims:
        raise UserError("no simulator installed among " + ", ".join(args.sims))
    print(f"# {args.net} {args.format}, {args.images} images, {os.cpu_count()} cores")
    print(f"{'sim':<5} {'P':>3} {'cocotb_s':>9} {'cocotb_cpu_s':>12} {'cocotb_img/s':>12} "
          f"{'plain_s':>8} {'plain_cpu_s':>11} {'plain_img/s':>11} {'startup_s':>9} "
          f"{'harness_share_cpu':>17} {'bit_exact':>9}")
    rc = 0
    saved = os.environ.get("SIM")
    try:
        for sim in sims:
            os.environ["SIM"] = sim
            for p in args.ps:
                tag = f"profile-{args.net}-{args.format}-p{p}-{sim}"
                doc = run_network_sim(args.net, args.format, args.images, tag=tag, p=p)
                exact = sum(r["bit_exact"] for r in doc["images"])
                plain = plain_run(sim, qnet, BUILD / "sim" / tag / "gen", p,
                                  images[: args.images], BUILD / "bench" / f"{tag}-plain")
                share = 1 - plain.sim_cpu_s / doc["cpu_s"]
                n = args.images
                print(f"{sim:<5} {p:>3} {doc['wall_s']:>9.2f} {doc['cpu_s']:>12.2f} "
                      f"{n / doc['wall_s']:>12.1f} {plain.sim_s:>8.2f} {plain.sim_cpu_s:>11.2f} "
                      f"{n / plain.sim_s:>11.1f} {plain.startup_s:>9.2f} {100 * share:>16.0f}% "
                      f"{exact:>5}/{n:<3}", flush=True)
                rc |= exact != n or not plain.ok
    finally:
        if saved is None:
            os.environ.pop("SIM", None)
        else:
            os.environ["SIM"] = saved
    return rc


if __name__ == "__main__":
    cli_main(main)
