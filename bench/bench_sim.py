"""Simulation speed of the whole-network bench for the three reference networks.

Usage::

    python -m bench.bench_sim [--images 20] [--format int8]

Prints, per network, the RTL cycles per image (latency, first pixel to done) and the
simulated images per second (wall clock of the cocotb run, compile excluded), with
the simulator and GHDL back end used.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess

from gen.errors import cli_main
from tb.common import simulator
from tb.netsim import run_network_sim

NETS = ("zero", "l10", "mlp256")


def ghdl_backend() -> str:
    """The GHDL version line (names the back end: mcode, llvm or gcc)."""
    try:
        out = subprocess.run(["ghdl", "--version"], capture_output=True, text=True).stdout
    except OSError:
        return "ghdl not found"
    lines = out.splitlines()
    backend = next((ln.strip() for ln in lines if "code generator" in ln), "")
    return f"{lines[0] if lines else '?'}; {backend}"


def main() -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.bench_sim", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--images", type=int, default=int(os.environ.get("IMAGES", "20")))
    ap.add_argument("--format", default=os.environ.get("BITS", "int8"))
    args = ap.parse_args()
    print(f"# {simulator()} ({ghdl_backend()}), {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}, images={args.images}")
    print(f"{'net':<8} {'format':<6} {'images':>6} {'bit_exact':>9} {'cycles/image':>12} "
          f"{'images/s':>9} {'sim_wall_s':>10} {'total_s':>8}")
    rc = 0
    for net in NETS:
        doc = run_network_sim(net, args.format, args.images, tag=f"bench-{net}-{args.format}")
        imgs = doc["images"]
        exact = sum(r["bit_exact"] for r in imgs)
        cycles = sum(r["cycles"] for r in imgs) / len(imgs)
        print(f"{net:<8} {args.format:<6} {len(imgs):>6} {exact:>9} {cycles:>12.0f} "
              f"{len(imgs) / doc['wall_s']:>9.2f} {doc['wall_s']:>10.2f} {doc['total_s']:>8.2f}")
        rc |= exact != len(imgs)
    return rc


if __name__ == "__main__":
    cli_main(main)
