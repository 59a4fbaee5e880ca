"""Full regression: MNIST test images through the RTL, every layer checked, on all cores.

Usage::

    MNIST_DIR=... python -m tb.regress [--net mlp256] [--format int8] [--images 10000] [--jobs 2]

Splits the images over ``--jobs`` parallel simulator processes (``tb.netsim``), draws
a progress bar, then prints the coverage bins, the RTL and model accuracies (they
must be equal) and a last ``SUMMARY`` line as ``make sim`` does. Exits non-zero if
any image is not bit-exact.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from gen.coverage import coverage, format_coverage
from gen.errors import UserError, cli_main
from gen.formats import parse_format
from gen.generate import DEFAULT_SAMPLE, load_sample
from gen.mnist import load_mnist
from gen.model import accuracy
from gen.quant import quantize_file
from tb.common import BUILD, ROOT, env_int, simulator, simulator_missing
from tb.netsim import bits_label, summary_line


def split(n: int, jobs: int) -> list[tuple[int, int]]:
    """(first, count) slices of ``range(n)`` for ``jobs`` workers, as even as possible."""
    base, extra = divmod(n, jobs)
    out, first = [], 0
    for j in range(jobs):
        count = base + (j < extra)
        if count:
            out.append((first, count))
        first += count
    return out


def bar(done: int, total: int, t0: float, width: int = 40) -> str:
    frac = done / total if total else 1.0
    elapsed = time.perf_counter() - t0
    eta = elapsed / frac - elapsed if frac > 0 else float("nan")
    fill = int(width * frac)
    return (f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} images "
            f"{100 * frac:5.1f}%  {elapsed:5.0f} s elapsed, ETA {eta:5.0f} s")


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m tb.regress", description=__doc__.split("\n")[0])
    ap.add_argument("--net", default=os.environ.get("NET", "mlp256"))
    ap.add_argument("--format", default=os.environ.get("BITS", "int8"))
    ap.add_argument("--images", type=int, default=10000, help="first N test images")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--p", type=int, default=env_int("P", 1, lo=1),
                    help="inputs per clock of every layer")
    ap.add_argument("--sample", action="store_true",
                    help="use the committed 100-image sample instead of the MNIST test set")
    args = ap.parse_args()
    fmt = parse_format(args.format)
    if reason := simulator_missing():
        raise UserError(reason)
    if args.sample:
        images, labels = load_sample(DEFAULT_SAMPLE)
    else:
        images, labels = load_mnist("test")
    if not 1 <= args.images <= len(images):
        raise UserError(f"--images must be 1..{len(images)}, got {args.images}")
    if args.jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {args.jobs}")
    images, labels = images[: args.images], labels[: args.images]
    work = BUILD / "regress" / f"{args.net}-{fmt.name}-{simulator()}"
    work.mkdir(parents=True, exist_ok=True)
    vectors = work / "images.npz"
    np.savez(vectors, images=images, labels=labels)
    qnet = quantize_file(ROOT / "models" / f"{args.net}.npz", fmt, args.net,
                         calib_images=load_sample(DEFAULT_SAMPLE)[0])

    t0 = time.perf_counter()
    procs = []
    for j, (first, count) in enumerate(split(len(images), args.jobs)):
        progress, out = work / f"progress{j}", work / f"results{j}.json"
        for f in (progress, out):
            f.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "tb.netsim", "--net", args.net, "--format", fmt.name,
               "--sample", str(vectors), "--first", str(first), "--images", str(count),
               "--p", str(args.p),
               "--tag", f"regress-{args.net}-{fmt.name}-job{j}", "--json", str(out), "--quiet"]
        env = {**os.environ, "MLP_PROGRESS": str(progress)}
        log = (work / f"job{j}.log").open("w")
        procs.append((subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log),
                      progress, out, log))
    tty = sys.stderr.isatty()
    shown = -1  # without a terminal: one line per 5 % step
    while any(p.poll() is None for p, *_ in procs):
        done = sum(int(f.read_text() or 0) for _, f, *_ in procs if f.exists())
        step = 20 * done // len(images)
        if tty or step != shown:
            print(bar(done, len(images), t0), end="" if tty else "\n", file=sys.stderr,
                  flush=True)
            shown = step
        time.sleep(1.0)
    print(bar(len(images), len(images), t0), file=sys.stderr)
    wall = time.perf_counter() - t0

    results = []
    for j, (_p, _, out, log) in enumerate(procs):
        log.close()
        if not out.exists():
            raise UserError(f"simulation job {j} failed without results (log: {work}/job{j}.log)")
        results += json.loads(out.read_text())["images"]
    doc = {"net": args.net, "images": results, "wall_s": wall}
    exact = [r["index"] for r in results if r["bit_exact"]]
    for r in results:
        if not r["bit_exact"]:
            print(f"image {r['index']}: NOT bit-exact: {'; '.join(r['mismatches'][:3])}")
    rtl_acc = sum(r["rtl_correct"] for r in results) / len(results)
    model_acc = accuracy(qnet, images, labels)
    print(format_coverage(qnet, coverage(qnet, images[exact])) + "  (bit-exact images only)")
    print(f"ACCURACY rtl={100 * rtl_acc:.2f}% model={100 * model_acc:.2f}% "
          f"{'equal' if rtl_acc == model_acc else 'DIFFERENT'} over {len(results)} images; "
          f"wall {wall:.0f} s with {len(procs)} jobs")
    print(summary_line(doc, bits_label(fmt.name)))
    ok = len(exact) == len(images) and rtl_acc == model_acc
    return 0 if ok else 1


if __name__ == "__main__":
    cli_main(main)
