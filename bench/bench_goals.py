"""Speed goals: measured and reported here, never asserted in a test (a loaded machine
makes a wall-clock assertion fail at random; tests/test_setup.py keeps them out).

Usage::

    python -m mnist_fpga.bench.bench_goals [--goals mnist-load fails-fast]

Each goal prints the measured figure next to the goal; the exit status is 1 when a goal
is missed. A goal whose inputs are missing (the MNIST files, a simulator) prints
``skipped`` and why.

- ``mnist-load``: loading the MNIST test split (10,000 images, checksums checked) takes
  less than 1 s (was ``tests/test_mnist.py``).
- ``fails-fast``: the whole-network bench with each harness mutant of
  ``tb/mlp_top/test_mlp_top.py`` (a deadlock, a metavalue on ``class_out``, an IEEE
  warning) fails within 120 s, compilation included (was ``test_bench_cannot_look_away``).
"""

from __future__ import annotations

import argparse
import time

from mnist_fpga.gen.core.errors import cli_main
from mnist_fpga.gen.data import mnist

MNIST_LOAD_S = 1.0
FAILS_FAST_S = 120.0
# (mutant, network) of the harness cases: mlp256 where the mutant is in the requantizer
HARNESS_MUTANTS = [("requant-never-ready", "mlp256"), ("argmax-class-undefined", "l10"),
                   ("requant-relu-warns", "mlp256")]
GOALS = ("mnist-load", "fails-fast")


def report(goal: str, seconds: float, limit: float, ok: bool = True) -> bool:
    """Print one goal's line; True when it is met."""
    met = ok and seconds < limit
    print(f"{goal:<40} {seconds:8.2f} s   goal < {limit:g} s   {'ok' if met else 'MISSED'}",
          flush=True)
    return met


def mnist_load() -> bool:
    """Time ``load_mnist("test")`` from local files (never a download)."""
    folder, _ = mnist.resolve_dir()
    names = [mnist.FILES[k].name for k in ("test-images", "test-labels")]
    if not all((folder / n).is_file() for n in names):
        print(f"{'mnist-load':<40} skipped: no MNIST test files in {folder} (set MNIST_DIR)")
        return True
    t0 = time.perf_counter()
    images, _ = mnist.load_mnist("test", folder)
    return report("mnist-load", time.perf_counter() - t0, MNIST_LOAD_S, len(images) == 10000)


def fails_fast() -> bool:
    """Time each harness mutant's failing run of the whole-network bench (2 images)."""
    from mnist_fpga.tb.common import simulator, simulator_missing
    from mnist_fpga.tb.faults import parse_faults
    from mnist_fpga.tb.netsim import run_network_sim

    if reason := simulator_missing():
        print(f"{'fails-fast':<40} skipped: {reason}")
        return True
    met = True
    for mutant, net in HARNESS_MUTANTS:
        t0 = time.perf_counter()
        res = run_network_sim(net, "int8", n_images=2, tag=f"bench-goal-{mutant}-{simulator()}",
                              faults=parse_faults([f"mutant:{mutant}"]))
        seconds = time.perf_counter() - t0
        failed = res["failure"] is not None
        met &= report(f"fails-fast {net} {mutant}", seconds, FAILS_FAST_S, failed)
        if not failed:
            print(f"  {mutant}: the bench did not fail")
    return met


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m mnist_fpga.bench.bench_goals",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--goals", nargs="+", choices=GOALS, default=list(GOALS))
    args = ap.parse_args()
    runs = {"mnist-load": mnist_load, "fails-fast": fails_fast}
    met = [runs[g]() for g in args.goals]
    return 0 if all(met) else 1


if __name__ == "__main__":
    cli_main(main)
