"""Simulation speed of the whole-network bench: GHDL, and NVC where installed.

Usage::

    python -m mnist_fpga.bench.bench_sim [--images 20] [--format int8] [--ps 1 8] [--sims ghdl nvc]

Prints, per simulator, network and P, the RTL cycles per image (latency, first pixel
to done) and the simulated images per second: from the wall clock of the cocotb run
(compile and start-up excluded) and from the simulator process's CPU time (which a
busy shared machine disturbs less). A simulator that is not installed gets one
``skipped`` line.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess

from mnist_fpga.gen.core.errors import UserError, cli_main
from mnist_fpga.tb.common import SIMULATORS, simulator_missing
from mnist_fpga.tb.netsim import run_network_sim

NETS = ("zero", "l10", "mlp256")


def sim_version(sim: str) -> str:
    """The simulator's version line (GHDL's names its back end: mcode, llvm or gcc)."""
    return ghdl_backend() if sim == "ghdl" else _first_line(["nvc", "--version"])


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True).stdout
    except OSError:
        return f"{cmd[0]} not found"
    return out.splitlines()[0] if out else "?"


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
        prog="python -m mnist_fpga.bench.bench_sim", description=__doc__.split("\n")[0]
    )
    ap.add_argument("--images", type=int, default=int(os.environ.get("IMAGES", "20")))
    ap.add_argument("--format", default=os.environ.get("BITS", "int8"))
    ap.add_argument("--ps", type=int, nargs="+", default=[1, 8],
                    help="inputs per clock (default 1 8)")
    ap.add_argument("--sims", nargs="+", default=list(SIMULATORS), choices=SIMULATORS)
    ap.add_argument("--nets", nargs="+", default=list(NETS))
    args = ap.parse_args()
    sims = []
    for sim in args.sims:
        if reason := simulator_missing(sim):
            print(f"# {sim}: skipped, {reason}")
        else:
            sims.append(sim)
    if not sims:
        raise UserError("no simulator installed among " + ", ".join(args.sims))
    print(f"# {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"images={args.images}, format={args.format}")
    for sim in sims:
        print(f"# {sim}: {sim_version(sim)}")
    print(f"{'sim':<5} {'net':<8} {'P':>3} {'images':>6} {'bit_exact':>9} {'cycles/image':>12} "
          f"{'images/s':>9} {'images/s_cpu':>12} {'sim_wall_s':>10} {'total_s':>8}")
    rc = 0
    saved = os.environ.get("SIM")
    try:
        for sim in sims:
            os.environ["SIM"] = sim
            for net in args.nets:
                for p in args.ps:
                    doc = run_network_sim(net, args.format, args.images, p=p,
                                          tag=f"bench-{net}-{args.format}-p{p}-{sim}")
                    imgs = doc["images"]
                    exact = sum(r["bit_exact"] for r in imgs)
                    cycles = sum(r["cycles"] for r in imgs) / len(imgs)
                    print(f"{sim:<5} {net:<8} {p:>3} {len(imgs):>6} {exact:>9} {cycles:>12.0f} "
                          f"{len(imgs) / doc['wall_s']:>9.1f} "
                          f"{len(imgs) / doc['cpu_s']:>12.1f} {doc['wall_s']:>10.2f} "
                          f"{doc['total_s']:>8.2f}", flush=True)
                    rc |= exact != len(imgs) or doc["failure"] is not None
    finally:
        if saved is None:
            os.environ.pop("SIM", None)
        else:
            os.environ["SIM"] = saved
    return rc


if __name__ == "__main__":
    cli_main(main)
