"""Check that synthesis accepts a generated network: ``ghdl --synth`` to Verilog.

Usage::

    python -m gen.synth --net mlp256 --format int8

Writes ``build/synth/<net>_<format>/<net>_top.v`` and ``synth.log`` and prints the
ROMs GHDL inferred. Exits non-zero unless every layer's weight ROM is inferred as a ROM.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import time
from pathlib import Path

from gen.errors import UserError, cli_main
from gen.formats import parse_format
from gen.generate import (
    DEFAULT_SAMPLE,
    ROOT,
    check_net_name,
    check_rtl_limits,
    clog2,
    display_path,
    generate,
    hdl_sources,
    load_sample,
)
from gen.model import QNet
from gen.quant import quantize_file

ROM_RE = re.compile(r'found ROM "[^"]*", width: (\d+) bits, depth: (\d+)')


def require_ghdl() -> None:
    """Raise :class:`UserError` when ``ghdl`` is not on ``PATH``."""
    if shutil.which("ghdl") is None:
        raise UserError("simulator 'ghdl' not found on PATH (apt-get install -y ghdl-llvm ghdl)")


def synth(qnet: QNet, gen_dir: Path, work: Path) -> dict:
    """Run ``ghdl --synth`` on the generated top; return the inferred ROMs and timing."""
    require_ghdl()
    work.mkdir(parents=True, exist_ok=True)
    top = f"{qnet.name}_top"
    cmd = ["ghdl", "--synth", "--std=08", "--out=verilog"]
    cmd += [str(p) for p in hdl_sources(gen_dir, qnet)] + ["-e", top]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
    seconds = time.perf_counter() - t0
    (work / "synth.log").write_text(proc.stderr)
    if proc.returncode != 0:
        last = proc.stderr.strip().splitlines()[-1:] or ["(no message)"]
        raise UserError(f"ghdl --synth rejected {top}: {last[0]} (log: {work / 'synth.log'})")
    (work / f"{top}.v").write_text(proc.stdout)
    roms = [(int(w), int(d)) for w, d in ROM_RE.findall(proc.stderr)]
    return {"top": top, "roms": roms, "seconds": seconds, "verilog": work / f"{top}.v"}


def expected_roms(qnet: QNet, p: int = 1) -> list[tuple[int, int]]:
    """(width, depth) of every layer's weight ROM as the generator writes it."""
    return [(layer.n_out * p * layer.w_bits, 1 << clog2(-(-layer.n_in // p)))
            for layer in qnet.layers]


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m gen.synth", description=__doc__.split("\n")[0])
    ap.add_argument("--net", default="mlp256")
    ap.add_argument("--format", default="int8")
    ap.add_argument("--weights", type=Path, help="float .npz (default models/<net>.npz)")
    ap.add_argument("--p", type=int, default=1, help="inputs per clock of every layer")
    args = ap.parse_args()
    fmt = parse_format(args.format)
    check_net_name(args.net)
    weights = args.weights or ROOT / "models" / f"{args.net}.npz"
    images, _ = load_sample(DEFAULT_SAMPLE)
    qnet = quantize_file(weights, fmt, args.net, calib_images=images)
    check_rtl_limits(qnet)
    require_ghdl()  # before anything is written
    work = ROOT / "build" / "synth" / f"{args.net}_{fmt.name}_p{args.p}"
    gen_dir = generate(qnet, work / "gen", display_path(weights), p=args.p)
    res = synth(qnet, gen_dir, work / "out")
    for w, d in res["roms"]:
        print(f"ROM inferred: {w} bits x {d} words")
    want = expected_roms(qnet, args.p)
    missing = [r for r in want if r not in res["roms"]]
    print(f"ghdl --synth accepted {res['top']} in {res['seconds']:.1f} s; "
          f"{len(want) - len(missing)}/{len(want)} weight ROMs inferred as ROMs; "
          f"netlist {display_path(res['verilog'])}")
    return 1 if missing else 0


if __name__ == "__main__":
    cli_main(main)
