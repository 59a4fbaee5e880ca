"""``make mutants``: show that the suite kills every RTL mutant of tb/mutants/mutants.toml.

Usage::

    python -m mnist_fpga.tb.mutants.run [--only ID ...] [--jobs N] [--table docs/mutants.md]

For each mutant: a scratch copy of ``rtl/`` with the mutant applied
(``build/mutants/<id>/rtl``), then the kill suite of its file with ``pytest -x``
(``MNIST_FPGA_RTL`` points the benches at the copy, ``BUILD_DIR`` keeps its builds
apart). The suite kills the mutant when a test fails. A mutant marked ``equivalent``
must survive; any other survivor fails the run. The result table is written to
``--table`` (default ``docs/mutants.md``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mnist_fpga.gen.core.errors import UserError, cli_main
from mnist_fpga.paths import build_root
from mnist_fpga.tb.mutants import ROOT, Mutant, load_mutants, mutated_rtl

# The tests that should kill a mutant of each file, cheapest first (pytest -x stops at the
# first failure). The whole-network bench and a fixed fuzz slice back up the unit bench.
KILL_SUITE = {
    "rtl/layer_input.vhd": ["tb/layer_input", "tb/mlp_layer", "tb/mlp_top", "tb/fuzz"],
    "rtl/mac_ctrl.vhd": ["tb/mac_ctrl", "tb/mac_array", "tb/mlp_layer", "tb/mlp_top",
                         "tb/fuzz"],
    "rtl/mac_mult.vhd": ["tb/mac_mult", "tb/mac_array", "tb/mlp_layer", "tb/mlp_top",
                         "tb/fuzz"],
    "rtl/mac_tree.vhd": ["tb/mac_tree", "tb/mac_array", "tb/mlp_layer", "tb/mlp_top",
                         "tb/fuzz"],
    "rtl/mac_acc.vhd": ["tb/mac_acc", "tb/mac_array", "tb/mlp_layer", "tb/mlp_top",
                        "tb/fuzz"],
    "rtl/mac_array.vhd": ["tb/mac_array", "tb/mlp_layer", "tb/mlp_top", "tb/fuzz"],
    "rtl/mlp_common.vhd": ["tests/test_mlp_common.py", "tb/mac_array", "tb/mlp_layer",
                           "tb/mlp_top"],
    "rtl/ecp5_mult.vhd": ["tb/ecp5_mult", "tb/mac_mult", "tb/mac_array", "tb/mlp_top"],
    "rtl/acc_serializer.vhd": ["tb/acc_serializer", "tb/mlp_layer", "tb/mlp_top", "tb/fuzz"],
    "rtl/requant.vhd": ["tb/requant", "tb/mlp_top", "tb/fuzz"],
    "rtl/argmax.vhd": ["tb/argmax", "tb/mlp_top", "tb/fuzz"],
    "rtl/result_fifo.vhd": ["tb/result_fifo", "tb/mlp_axis"],
    "rtl/credit_counter.vhd": ["tb/credit_counter", "tb/mlp_axis"],
    "rtl/axis_framer.vhd": ["tb/axis_framer", "tb/mlp_axis"],
}
DEFAULT_SUITE = ["tb"]


def run_one(m: Mutant, work: Path) -> dict:
    """Apply ``m`` to a copy of rtl/ and run its kill suite; return the outcome."""
    dest = work / m.id
    rtl = mutated_rtl([m.id], dest)
    suite = KILL_SUITE.get(m.file, DEFAULT_SUITE)
    env = {**os.environ, "MNIST_FPGA_RTL": str(rtl), "BUILD_DIR": str(dest / "build")}
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *suite]
    t0 = time.perf_counter()
    log = dest / "pytest.log"
    with log.open("w") as f:
        rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT).returncode
    killer = ""
    for line in log.read_text().splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            killer = line.split(" ", 1)[1].split(" - ")[0]
            break
    status = {0: "survived", 1: "killed"}.get(rc, f"error (pytest exit {rc})")
    return {"mutant": m, "status": status, "killer": killer, "seconds": time.perf_counter() - t0,
            "log": log}


def verdict(res: dict) -> bool:
    """A mutant passes when it is killed, or survives and is argued equivalent."""
    m: Mutant = res["mutant"]
    return res["status"] == ("survived" if m.equivalent else "killed")


def write_table(path: Path, results: list[dict]) -> None:
    lines = [
        "# RTL mutants",
        "",
        "Written by `make mutants` (`python -m mnist_fpga.tb.mutants.run`) from "
        "`tb/mutants/mutants.toml`: each mutant is applied to a scratch copy of `rtl/` and "
        "its kill suite runs with `pytest -x`. Every mutant must be killed, or argued "
        "equivalent.",
        "",
        "| mutant | file | change | result | killed by | s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        m: Mutant = r["mutant"]
        res = r["status"] + (f" (equivalent: {m.equivalent})" if m.equivalent else "")
        lines.append(f"| `{m.id}` | `{m.file}` | {m.what} | {res} | "
                     f"{('`' + r['killer'] + '`') if r['killer'] else ''} | {r['seconds']:.0f} |")
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m mnist_fpga.tb.mutants.run",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", metavar="ID", help="run these mutants only")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--table", type=Path, default=ROOT / "docs" / "mutants.md",
                    help="result table (Markdown); '-' for none")
    args = ap.parse_args()
    if args.jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {args.jobs}")
    known = load_mutants()
    ids = args.only or list(known)
    if unknown := [i for i in ids if i not in known]:
        raise UserError(f"unknown mutant {unknown[0]!r}: see tb/mutants/mutants.toml")
    work = build_root() / "mutants"
    work.mkdir(parents=True, exist_ok=True)
    for i in ids:  # every pattern must still apply before anything runs
        mutated_rtl([i], work / i)
    print(f"{len(ids)} mutants, {args.jobs} at a time", file=sys.stderr)
    results = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for res in pool.map(lambda i: run_one(known[i], work), ids):
            ok = verdict(res)
            print(f"{'ok  ' if ok else 'FAIL'} {res['mutant'].id:28s} {res['status']:9s} "
                  f"{res['seconds']:5.0f} s  {res['killer']}", flush=True)
            results.append(res)
    if str(args.table) != "-" and not args.only:
        write_table(args.table, results)
    bad = [r for r in results if not verdict(r)]
    print(f"MUTANTS total={len(results)} killed={sum(r['status'] == 'killed' for r in results)} "
          f"equivalent={sum(bool(r['mutant'].equivalent) for r in results)} "
          f"not_killed={len(bad)}")
    for r in bad:
        print(f"  {r['mutant'].id}: {r['status']} (log: {r['log']})")
    return 1 if bad else 0


if __name__ == "__main__":
    cli_main(main)
