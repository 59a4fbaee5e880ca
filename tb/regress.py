"""Full regression: MNIST test images through the RTL, every layer checked, on all cores.

Usage::

    MNIST_DIR=... python -m mnist_fpga.tb.regress [--net mlp256] [--format int8] [--images 10000]
                                       [--jobs 2] [--shard i/n] [--results R.json] [--junit J.xml]
                                       [--force]
    mnist-fpga regress --merge R1.json R2.json ... [--junit J.xml]

Takes the first ``--images`` test images, or with ``--shard i/n`` the i-th of n
contiguous slices of them (for machines that each run one shard), splits that slice
over ``--jobs`` parallel simulator processes (``tb.netsim``) the same way, shows the
progress on stderr (:class:`mnist_fpga.progress.Progress`), then prints the coverage
bins, the RTL and model accuracies (they must be equal) and a last ``SUMMARY`` line as
``make sim`` does (with ``shard=i/n``). It
writes the results JSON (every image, for ``--merge``) and a JUnit XML (one test case
per image, one for the accuracy and one per failed job). Exits non-zero if any image is
not bit-exact or any job failed: a job that exits non-zero, reports a failure (a
simulator warning, a metavalue, an RTL assertion, a cocotb failure, a deadlock) or
whose logs hold a simulator warning fails the run, named with its image range and the
first warning line, even when every image it returned is bit-exact.

An existing ``--results`` or ``--junit`` file is replaced only when tb.regress wrote it
(a results JSON of its kind, a JUnit XML whose root is named ``mnist-fpga regress``),
any other only with ``--force``. Ctrl-C stops every job (each stops its simulator) and
ends with one ``interrupted:`` line, exit status 130.

``--merge`` combines the results of all n shards of one run into one coverage line,
one ACCURACY line and one ``SUMMARY`` line (``shards=n``; images/s over the slowest
shard's wall time, as the shards run in parallel) plus a JUnit XML.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from mnist_fpga.files import write_atomic
from mnist_fpga.gen.core.errors import UserError, activity, check_creatable, cli_main
from mnist_fpga.gen.core.formats import parse_format
from mnist_fpga.gen.core.model import QNet, classify, forward, is_correct
from mnist_fpga.gen.data.mnist import load_mnist
from mnist_fpga.gen.data.sample import load_sample
from mnist_fpga.paths import BUILD, DEFAULT_SAMPLE, subprocess_env
from mnist_fpga.progress import Progress
from mnist_fpga.tb.common import (
    ROOT,
    descendants,
    env_int,
    first_sim_warning,
    kill_processes,
    sigint_ignored,
    simulator,
    simulator_missing,
)
from mnist_fpga.tb.coverage import BINS, format_coverage
from mnist_fpga.tb.coverage import coverage as count_coverage
from mnist_fpga.tb.netsim import quantize_model
from mnist_fpga.tb.simreport import summary_line

KIND = "mnist-fpga regress results"
VERSION = 2  # 2: job_failures (a version-1 file cannot say a job failed)
JUNIT_NAME = "mnist-fpga regress"  # <testsuites name=...> of our JUnit files: ours to replace
# After Ctrl-C: a job's own grace (it got the terminal's SIGINT too), then how long a job
# has to stop its simulator after ours, before it is killed with its processes
JOB_GRACE_S = 1.0
JOB_STOP_S = 20.0


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


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` as (i, n) with 1 <= i <= n; :class:`UserError` otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m:
        raise UserError(f"--shard {text!r} is not i/n (shard i of n, from 1), e.g. 1/4")
    i, n = int(m[1]), int(m[2])
    if n < 1:
        raise UserError(f"--shard {text}: the number of shards must be >= 1")
    if not 1 <= i <= n:
        raise UserError(f"--shard {text}: the shard number must be 1..{n}")
    return i, n


def shard_slice(n_images: int, i: int, n: int) -> tuple[int, int]:
    """(first, count) of shard ``i`` of ``n`` over ``range(n_images)``: contiguous, even."""
    base, extra = divmod(n_images, n)
    first = (i - 1) * base + min(i - 1, extra)
    return first, base + (i <= extra)


def job_failure(rc: int | None, results: Path, logs: list[Path]) -> str | None:
    """Why a simulation job failed, or None: its exit status, the failure its results
    report, or the first simulator warning in its logs (the first one found is named)."""
    reason = None
    if results.exists():
        try:
            reason = json.loads(results.read_text()).get("failure")
        except (OSError, json.JSONDecodeError):
            reason = f"unreadable results file {results}"
    else:
        reason = "no results written"
    warning = next((w for log in logs if (w := first_sim_warning(log))), None)
    if warning and (not reason or warning not in reason):
        reason = f"simulator warning: {warning}" + (f"; {reason}" if reason else "")
    if rc and not reason:
        reason = f"exit status {rc}"
    return reason


def junit_xml(doc: dict) -> str:
    """JUnit XML of a results document: a test case per image plus the accuracy check,
    and one failed test case per failed job."""
    name = f"regress.{doc['net']}.{doc['format']}.p{doc['p']}.{doc['sim']}"
    cases = []
    for r in sorted(doc["images"], key=lambda r: r["index"]):
        case = ET.Element("testcase", classname=name, name=f"image{r['index']:05d}")
        if not r["bit_exact"]:
            msg = "; ".join(r["mismatches"][:5]) or (
                f"class expected {r['model_class']} got {r['rtl_class']}")
            ET.SubElement(case, "failure", message=f"not bit-exact: {msg}")
        cases.append(case)
    acc = ET.Element("testcase", classname=name, name="rtl_accuracy_equals_model")
    if doc["rtl_correct"] != doc["model_correct"]:
        ET.SubElement(acc, "failure", message=(
            f"rtl correct {doc['rtl_correct']}, model correct {doc['model_correct']}"))
    cases.append(acc)
    for f in doc["job_failures"]:
        case = ET.Element("testcase", classname=name, name=f"job{f['shard']}.{f['job']}")
        ET.SubElement(case, "failure", message=f"{job_label(f)} failed: {f['reason']}")
        cases.append(case)
    failures = sum(len(c) for c in cases)
    suite = ET.Element("testsuite", name=name, tests=str(len(cases)), failures=str(failures),
                       errors="0", time=f"{doc['wall_s']:.1f}")
    suite.extend(cases)
    root = ET.Element("testsuites", name=JUNIT_NAME)
    root.append(suite)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def job_label(f: dict) -> str:
    """``job 1 of shard 2/4 (images 2500..3749)`` for a failed job's record."""
    last = f["first"] + f["count"] - 1
    shard = f" of shard {f['shard']}/{f['shards']}" if f["shards"] > 1 else ""
    return f"job {f['job']}{shard} (images {f['first']}..{last})"


def report(doc: dict, qnet: QNet, extra: str) -> int:
    """Print mismatches, failed jobs, coverage, ACCURACY and SUMMARY of ``doc``; return
    the exit status."""
    imgs = doc["images"]
    for r in imgs:
        if not r["bit_exact"]:
            print(f"image {r['index']}: NOT bit-exact: {'; '.join(r['mismatches'][:3])}")
    for f in doc["job_failures"]:
        print(f"FAILED {job_label(f)}: {f['reason']} (log: {f['log']})")
    n = len(imgs)
    print(format_coverage(qnet, doc["coverage"]) + "  (bit-exact images only)")
    equal = doc["rtl_correct"] == doc["model_correct"]
    print(f"ACCURACY rtl={100 * doc['rtl_correct'] / n:.2f}% "
          f"model={100 * doc['model_correct'] / n:.2f}% {'equal' if equal else 'DIFFERENT'} "
          f"over {n} images; wall {doc['wall_s']:.0f} s with {doc['jobs']} jobs")
    print(summary_line(doc, doc["format"], extra=extra))
    ok = all(r["bit_exact"] for r in imgs) and equal and not doc["job_failures"]
    return 0 if ok else 1


def ours(path: Path, junit: bool) -> bool:
    """Was ``path`` written by tb.regress: a results JSON of ``KIND``, or a JUnit XML
    whose root is ``<testsuites name="mnist-fpga regress">``?"""
    try:
        if junit:
            root = ET.parse(path).getroot()
            return root.tag == "testsuites" and root.get("name") == JUNIT_NAME
        doc = json.loads(Path(path).read_text())
        return isinstance(doc, dict) and doc.get("kind") == KIND
    except (OSError, ValueError, ET.ParseError):  # ValueError: not JSON, not UTF-8
        return False


def check_outputs(results: Path | None, junit: Path | None, force: bool = False) -> None:
    """Refuse output paths that could not be written, before any work is done.

    An existing file that tb.regress did not write (see :func:`ours`) may be the user's:
    it is replaced only with ``force``.
    """
    for path, what, is_junit in ((results, "results file", False), (junit, "JUnit file", True)):
        if path is None:
            continue
        check_creatable(path, what)
        if path.is_dir():
            raise UserError(f"{what} {path} exists and is a folder")
        if (path.exists() or path.is_symlink()) and not force and not ours(path, is_junit):
            raise UserError(f"{what} {path} exists and was not written by tb.regress; "
                            "refusing to overwrite it (--force replaces it)")


def load_qnet(net: str, fmt: str) -> QNet:
    """The integer network of ``net`` in ``fmt``: the one its jobs simulate."""
    return quantize_model(ROOT / "models" / f"{net}.npz", parse_format(fmt), net)


def stop_jobs(procs: list[subprocess.Popen]) -> None:
    """After Ctrl-C: give every job still running ``JOB_GRACE_S`` to stop on its own (a
    terminal's Ctrl-C reached it too), then SIGINT, on which a job stops its simulator
    and removes its temporary files; a job still there after ``JOB_STOP_S`` is killed
    with all its processes."""
    for wait, then in ((JOB_GRACE_S, signal.SIGINT), (JOB_STOP_S, signal.SIGKILL)):
        deadline = time.monotonic() + wait
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        for proc in procs:
            if proc.poll() is None:
                if then == signal.SIGKILL:
                    kill_processes([proc.pid, *descendants(proc.pid)])
                else:
                    proc.send_signal(then)
    for proc in procs:
        proc.wait()


def run(args: argparse.Namespace) -> int:
    """One shard (or all images) on ``args.jobs`` local simulator processes."""
    shard = parse_shard(args.shard) if args.shard else (1, 1)
    if args.jobs < 1:
        raise UserError(f"--jobs must be >= 1, got {args.jobs}")
    check_outputs(args.results, args.junit, args.force)
    fmt = parse_format(args.format)
    if reason := simulator_missing():
        raise UserError(reason)
    if args.sample:
        images, labels = load_sample(DEFAULT_SAMPLE)
    else:
        images, labels = load_mnist("test")
    if not 1 <= args.images <= len(images):
        raise UserError(f"--images must be 1..{len(images)}, got {args.images}")
    first, count = shard_slice(args.images, *shard)
    if count == 0:
        raise UserError(f"--shard {shard[0]}/{shard[1]} of {args.images} images is empty")
    sim = simulator()
    name = f"{args.net}-{fmt.name}-p{args.p}-{sim}-shard{shard[0]}of{shard[1]}"
    work = BUILD / "regress" / name
    vectors = work / "images.npz"
    npz = io.BytesIO()
    np.savez(npz, images=images[: args.images], labels=labels[: args.images])
    write_atomic(vectors, npz.getvalue())
    qnet = load_qnet(args.net, fmt.name)
    what = (f"regression of {args.net} ({fmt.name}, images {first}..{first + count - 1} "
            f"on {len(split(count, args.jobs))} jobs)")
    with activity(what):
        return run_jobs(args, work, vectors, qnet, shard, first, count, sim, name, images,
                        labels)


def run_jobs(args: argparse.Namespace, work: Path, vectors: Path, qnet: QNet,
             shard: tuple[int, int], first: int, count: int, sim: str, name: str,
             images: np.ndarray, labels: np.ndarray) -> int:
    """Start the jobs of :func:`run`, show their progress, collect and report the results."""
    fmt = qnet.fmt
    t0 = time.perf_counter()
    procs = []
    for j, (off, cnt) in enumerate(split(count, args.jobs)):
        progress, out = work / f"progress{j}", work / f"results{j}.json"
        for f in (progress, out):
            f.unlink(missing_ok=True)
        tag = f"regress-{name}-job{j}"
        cmd = [sys.executable, "-m", "mnist_fpga.tb.netsim", "--net", args.net,
               "--format", fmt.name,
               "--sample", str(vectors), "--first", str(first + off), "--images", str(cnt),
               "--p", str(args.p), "--tag", tag, "--json", str(out), "--quiet",
               *(f"--fault={spec}" for spec in args.fault or [])]
        env = {**subprocess_env(), "MLP_PROGRESS": str(progress), "BUILD_DIR": str(BUILD)}
        log = (work / f"job{j}.log").open("w")
        try:
            procs.append((subprocess.Popen(cmd, env=env, stdout=log, stderr=log),
                          out, log, BUILD / "sim" / tag / "sim" / sim / "sim.log"))
        except BaseException:
            log.close()
            stop_jobs([proc for proc, *_ in procs])
            raise
    progress = Progress([work / f"progress{j}" for j in range(len(procs))], count,
                        stream=sys.stderr)
    try:
        while any(proc.poll() is None for proc, *_ in procs):
            progress.poll()
            time.sleep(0.5)
    except KeyboardInterrupt:
        progress.close()
        with sigint_ignored():
            stop_jobs([proc for proc, *_ in procs])
        raise
    progress.close()
    wall = time.perf_counter() - t0

    results, failures = [], []
    for j, ((proc, out, log, sim_log), (off, cnt)) in enumerate(
            zip(procs, split(count, args.jobs), strict=True)):
        log.close()
        job_log = work / f"job{j}.log"
        if reason := job_failure(proc.returncode, out, [job_log, sim_log]):
            failures.append({"job": j, "shard": shard[0], "shards": shard[1],
                             "first": first + off, "count": cnt, "reason": reason,
                             "log": str(job_log)})
        if not out.exists():
            label = job_label(failures[-1])
            raise UserError(f"simulation {label} failed without results: {reason} "
                            f"(log: {job_log})")
        results += json.loads(out.read_text())["images"]
    idx = [r["index"] for r in results]
    if idx != list(range(first, first + count)):
        raise UserError(f"simulation jobs returned images {idx[:3]}... instead of "
                        f"{first}..{first + count - 1} (logs: {work})")
    exact = [r["index"] for r in results if r["bit_exact"]]
    cov = count_coverage(qnet, images[exact]) if exact else dict.fromkeys(BINS, 0)
    shard_images = images[first: first + count]
    model_classes = classify(qnet, forward(qnet, shard_images)[-1])
    doc = {
        "kind": KIND, "version": VERSION, "net": args.net, "format": fmt.name, "p": args.p,
        "sim": sim, "source": "sample" if args.sample else "mnist",
        "total_images": args.images, "shard": list(shard), "first": first, "count": count,
        "jobs": len(procs), "wall_s": wall,
        "rtl_correct": sum(bool(r["rtl_correct"]) for r in results),
        "model_correct": int(np.sum(is_correct(qnet, model_classes,
                                               labels[first: first + count]))),
        "coverage": cov,
        "classes_seen": sorted({r["rtl_class"] for r in results if r["bit_exact"]}),
        "job_failures": failures,
        "images": results,
    }
    write_atomic(args.results or work / "results.json", json.dumps(doc))
    write_atomic(args.junit or work / "junit.xml", junit_xml(doc))
    extra = f"shard={shard[0]}/{shard[1]}" if args.shard else ""
    return report(doc, qnet, extra)


MERGE_KEYS = ("net", "format", "p", "sim", "source", "total_images")


def read_results(path: Path) -> dict:
    """A results JSON written by ``tb.regress``; :class:`UserError` if it is not one."""
    try:
        doc = json.loads(Path(path).read_text())
    except OSError as exc:
        raise UserError(f"cannot read results file {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"results file {path} is not JSON") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise UserError(f"results file {path} was not written by tb.regress")
    if doc.get("version") != VERSION:
        raise UserError(f"results file {path} has version {doc.get('version')!r}, "
                        f"expected {VERSION}")
    return doc


def merge_docs(docs: list[dict], paths: list[Path]) -> dict:
    """One results document from all shards of one run (checked: same run, every shard once)."""
    ref = docs[0]
    for doc, path in zip(docs, paths, strict=True):
        for key in (*MERGE_KEYS, "shard"):
            mine, theirs = doc[key], ref[key]
            if key == "shard":
                mine, theirs = mine[1], theirs[1]
            if mine != theirs:
                raise UserError(f"results file {path} is from another run: {key}={mine!r}, "
                                f"{paths[0]} has {key}={theirs!r}")
    n = ref["shard"][1]
    have = sorted(d["shard"][0] for d in docs)
    if dup := sorted({i for i in have if have.count(i) > 1}):
        raise UserError(f"shard {dup[0]}/{n} given more than once")
    if missing := sorted(set(range(1, n + 1)) - set(have)):
        raise UserError(f"shard {missing[0]}/{n} missing: {len(missing)} of {n} shards not given")
    images = sorted((r for d in docs for r in d["images"]), key=lambda r: r["index"])
    if [r["index"] for r in images] != list(range(ref["total_images"])):
        raise UserError(f"the shards do not hold images 0..{ref['total_images'] - 1} once each")
    cov = {k: sum(d["coverage"][k] for d in docs) for k in BINS}
    classes = sorted({c for d in docs for c in d["classes_seen"]})
    cov["all_classes"] = len(classes)
    return {
        **{k: ref[k] for k in ("kind", "version", *MERGE_KEYS)},
        "shard": [0, n], "first": 0, "count": len(images),
        "jobs": sum(d["jobs"] for d in docs), "wall_s": max(d["wall_s"] for d in docs),
        "rtl_correct": sum(d["rtl_correct"] for d in docs),
        "model_correct": sum(d["model_correct"] for d in docs),
        "coverage": cov, "classes_seen": classes,
        "job_failures": [f for d in docs for f in d["job_failures"]], "images": images,
    }


def merge(paths: list[Path], junit: Path | None, results: Path | None,
          force: bool = False) -> int:
    """Merge shard results; print one report with ``shards=n``; write JUnit XML and JSON."""
    check_outputs(results, junit, force)
    docs = [read_results(p) for p in paths]
    doc = merge_docs(docs, paths)
    qnet = load_qnet(doc["net"], doc["format"])
    work = BUILD / "regress" / f"{doc['net']}-{doc['format']}-p{doc['p']}-{doc['sim']}-merged"
    write_atomic(junit or work / "junit.xml", junit_xml(doc))
    write_atomic(results or work / "results.json", json.dumps(doc))
    return report(doc, qnet, f"shards={doc['shard'][1]}")


def main() -> int:
    ap = argparse.ArgumentParser(prog="mnist-fpga regress", description=__doc__.split("\n")[0])
    ap.add_argument("--net", default=os.environ.get("NET", "mlp256"))
    ap.add_argument("--format", default=os.environ.get("BITS", "int8"))
    ap.add_argument("--images", type=int, default=10000, help="first N test images")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="parallel simulator processes on this machine")
    ap.add_argument("--p", type=int, default=env_int("P", 1, lo=1),
                    help="inputs per clock of every layer")
    ap.add_argument("--shard", help="run only shard i of n (i/n, from 1) of the images")
    ap.add_argument("--sample", action="store_true",
                    help="use the committed 100-image sample instead of the MNIST test set")
    ap.add_argument("--results", type=Path,
                    help="results JSON (default build/regress/<run>/results.json); an "
                         "existing file not written by tb.regress only with --force")
    ap.add_argument("--junit", type=Path,
                    help="JUnit XML (default build/regress/<run>/junit.xml); an existing "
                         "file not written by tb.regress only with --force")
    ap.add_argument("--force", action="store_true",
                    help="replace an existing --results or --junit file of any origin")
    ap.add_argument("--fault", action="append", metavar="SPEC",
                    help="inject a fault into every job (as tb.netsim --fault): negative tests")
    ap.add_argument("--merge", type=Path, nargs="+", metavar="RESULTS_JSON",
                    help="merge the results of all shards of a run instead of simulating")
    args = ap.parse_args()
    if args.merge:
        if args.shard:
            raise UserError("--merge combines finished shards: it takes no --shard")
        return merge(args.merge, args.junit, args.results, args.force)
    return run(args)


if __name__ == "__main__":
    cli_main(main)
