"""tb.regress: shard slices, the monotone progress bar, merging shard results, JUnit XML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.progress import Progress, read_progress, write_progress
from mnist_fpga.tb.common import simulator_missing
from mnist_fpga.tb.coverage import BINS
from mnist_fpga.tb.regress import (
    check_outputs,
    job_failure,
    junit_xml,
    merge_docs,
    parse_shard,
    shard_slice,
    split,
)

ROOT = Path(__file__).resolve().parent.parent


@given(n_images=st.integers(1, 20000), n=st.integers(1, 64))
def test_shards_cover_every_image_once(n_images: int, n: int) -> None:
    """The n shards are contiguous, in order, differ by at most one image, cover all."""
    slices = [shard_slice(n_images, i, n) for i in range(1, n + 1)]
    covered = [k for first, count in slices for k in range(first, first + count)]
    assert covered == list(range(n_images))
    assert max(c for _, c in slices) - min(c for _, c in slices) <= 1
    # the local per-core split is the same rule
    assert [s for s in slices if s[1]] == split(n_images, n)


def test_parse_shard() -> None:
    assert parse_shard("1/4") == (1, 4)
    assert parse_shard(" 4 / 4 ") == (4, 4)
    for bad in ("0/4", "5/4", "x", "1/0", "-1/4", "1/4/2", ""):
        with pytest.raises(UserError):
            parse_shard(bad)


def test_progress_write_is_atomic(tmp_path: Path) -> None:
    """A reader racing the writer never sees a missing, empty or smaller count."""
    path = tmp_path / "progress0"
    write_progress(path, 0)
    stop = threading.Event()

    def writer() -> None:
        for n in range(1, 1500):
            write_progress(path, n)
        stop.set()

    t = threading.Thread(target=writer)
    t.start()
    seen = []
    while not stop.is_set():
        seen.append(read_progress(path))
    t.join()
    assert None not in seen, "the reader saw a half-written progress file"
    assert seen == sorted(seen), "the count went backwards"
    assert read_progress(path) == 1499
    assert not [p for p in tmp_path.iterdir() if p.name != "progress0"], "temporary left"


def test_progress_bar_never_goes_back(tmp_path: Path) -> None:
    """A job's count holds when its file is missing or unreadable; the sum only grows."""
    a, b = tmp_path / "p0", tmp_path / "p1"
    prog = Progress([a, b])
    assert prog.done() == 0
    write_progress(a, 25)
    write_progress(b, 50)
    assert prog.done() == 75
    a.write_text("")  # a foreign writer caught mid-write
    b.unlink()
    assert prog.done() == 75
    write_progress(a, 30)
    write_progress(b, 10)  # a restarted job counting from the start again
    assert prog.done() == 80


def _shard_doc(i: int, n: int, total: int, bad: int | None = None) -> dict:
    first, count = shard_slice(total, i, n)
    images = [{"index": k, "bit_exact": k != bad, "mismatches": [] if k != bad else
               [f"image {k} layer 0 neuron 3: expected 5 got 6"], "rtl_class": k % 10,
               "model_class": k % 10, "rtl_correct": True, "cycles": 1053,
               "done_cycle": 1000 * k, "label": k % 10} for k in range(first, first + count)]
    return {"kind": "mnist-fpga regress results", "version": 2, "net": "mlp256",
            "format": "int8", "p": 1, "sim": "ghdl", "source": "mnist", "total_images": total,
            "shard": [i, n], "first": first, "count": count, "jobs": 2, "wall_s": 10.0 + i,
            "rtl_correct": count, "model_correct": count,
            "coverage": dict.fromkeys(BINS, 1) | {"all_classes": 2},
            "classes_seen": sorted({k % 10 for k in range(first, first + count)}),
            "job_failures": [], "images": images}


def test_merge_docs() -> None:
    """Shards in any order merge into one run: totals, coverage, classes, slowest wall."""
    docs = [_shard_doc(i, 3, 10) for i in (3, 1, 2)]
    doc = merge_docs(docs, [Path(f"r{i}.json") for i in (3, 1, 2)])
    assert [r["index"] for r in doc["images"]] == list(range(10))
    assert doc["rtl_correct"] == doc["model_correct"] == 10
    assert doc["wall_s"] == 13.0 and doc["jobs"] == 6
    assert doc["coverage"]["relu_clipped"] == 3 and doc["coverage"]["all_classes"] == 10


def test_merge_refuses_gaps_and_overlaps() -> None:
    docs = [_shard_doc(1, 2, 10), _shard_doc(2, 2, 10)]
    docs[1]["images"] = docs[1]["images"][1:]  # shard 2 lost an image
    with pytest.raises(UserError, match="once each"):
        merge_docs(docs, [Path("a"), Path("b")])
    other = _shard_doc(2, 2, 10) | {"p": 8}
    with pytest.raises(UserError, match="another run: p=8"):
        merge_docs([_shard_doc(1, 2, 10), other], [Path("a"), Path("b")])


def test_junit_xml_names_the_failed_image() -> None:
    doc = merge_docs([_shard_doc(1, 2, 6, bad=4), _shard_doc(2, 2, 6, bad=4)],
                     [Path("a"), Path("b")])
    suite = ET.fromstring(junit_xml(doc)).find("testsuite")
    assert suite is not None and suite.get("tests") == "7" and suite.get("failures") == "1"
    failed = [c.get("name") for c in suite if c.find("failure") is not None]
    assert failed == ["image00004"]


def test_outputs_of_ours_are_replaced_others_only_with_force(tmp_path: Path) -> None:
    """``--results``/``--junit``: a missing file or one tb.regress wrote may be written;
    any other existing file (another tool's JUnit, the user's JSON, text, a symlink
    to anything) only with ``--force``."""
    doc = merge_docs([_shard_doc(1, 2, 6), _shard_doc(2, 2, 6)], [Path("a"), Path("b")])
    results, junit = tmp_path / "r.json", tmp_path / "j.xml"
    check_outputs(results, junit)
    results.write_text(json.dumps(doc))
    junit.write_text(junit_xml(doc))
    check_outputs(results, junit)  # ours: replaced without --force
    foreign = [(results, '{"kind": "something else"}'), (results, "not JSON"),
               (results, "[1, 2]"), (junit, '<testsuites name="pytest"><testsuite/></testsuites>'),
               (junit, "<testsuites/>"), (junit, "not XML"), (junit, b"\xff\xfe")]
    for path, content in foreign:
        saved = path.read_bytes()
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        args = (path, None) if path == results else (None, path)
        with pytest.raises(UserError, match=r"exists and was not written by tb\.regress; "
                                            r"refusing to overwrite it"):
            check_outputs(*args)
        check_outputs(*args, force=True)
        path.write_bytes(saved)
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "nowhere")  # a dangling link is refused as well
    with pytest.raises(UserError, match=r"not written by tb\.regress"):
        check_outputs(link, None)


def _failed_job(i: int, n: int) -> dict:
    first, count = shard_slice(10, i, n)
    return {"job": 1, "shard": i, "shards": n, "first": first, "count": count,
            "reason": "simulator warning: mac_array.vhd:120:9:@1us:(assertion warning): "
                      "NUMERIC_STD.TO_INTEGER: metavalue detected, returning 0",
            "log": "build/regress/x/job1.log"}


def test_a_failed_job_fails_the_merge_and_the_junit() -> None:
    """Every image bit-exact, but one job of shard 2 failed: the merged run fails, the
    JUnit XML has a failed case for that job naming its images and the warning."""
    docs = [_shard_doc(1, 2, 10), _shard_doc(2, 2, 10)]
    docs[1]["job_failures"] = [_failed_job(2, 2)]
    doc = merge_docs(docs, [Path("a"), Path("b")])
    assert all(r["bit_exact"] for r in doc["images"])
    assert doc["job_failures"] == [_failed_job(2, 2)]
    suite = ET.fromstring(junit_xml(doc)).find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    failed = [c for c in suite if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["job2.1"]
    msg = failed[0].find("failure").get("message")
    assert msg.startswith("job 1 of shard 2/2 (images 5..9) failed: simulator warning: "), msg
    assert "metavalue detected" in msg


def test_job_failure_reasons(tmp_path: Path) -> None:
    """A job fails on its exit status, on its results' failure, on a warning in a log."""
    out, log, sim_log = tmp_path / "r.json", tmp_path / "job0.log", tmp_path / "sim.log"
    log.write_text("")
    sim_log.write_text("compiling\n")
    out.write_text(json.dumps({"failure": None, "images": []}))
    assert job_failure(0, out, [log, sim_log]) is None
    assert job_failure(1, out, [log, sim_log]) == "exit status 1"
    assert job_failure(0, tmp_path / "none.json", [log]) == "no results written"
    sim_log.write_text("x.vhd:3:5:@20ns:(assertion warning): NUMERIC_STD.\"<\": "
                       "metavalue detected, returning FALSE\n")
    reason = job_failure(0, out, [log, sim_log])
    assert reason is not None and reason.startswith("simulator warning: x.vhd:3:5:@20ns:")
    out.write_text(json.dumps({"failure": "FAILED: run_images", "images": []}))
    assert job_failure(0, out, [log]) == "FAILED: run_images"


def _regress(args: list[str], build: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BUILD_DIR": str(build), "SIM": os.environ.get("SIM", "ghdl")}
    return subprocess.run([sys.executable, "-m", "mnist_fpga.tb.regress", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def test_shards_and_merge_through_the_rtl(tmp_path: Path) -> None:
    """Two shards of 5 sample images through the RTL, merged: one SUMMARY and JUnit XML.

    Then a merge with one image marked not bit-exact must fail and name it.
    """
    if reason := simulator_missing():
        pytest.skip(reason)
    common = ["--sample", "--net", "l10", "--images", "5", "--jobs", "2"]
    docs = []
    for i in (1, 2):
        out = tmp_path / f"r{i}.json"
        proc = _regress([*common, "--shard", f"{i}/2", "--results", str(out),
                         "--junit", str(tmp_path / f"j{i}.xml")], tmp_path / "build")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        summary = proc.stdout.strip().splitlines()[-1]
        n = 3 if i == 1 else 2
        assert f" shard={i}/2 images={n} bit_exact={n} " in summary, summary
        docs.append(out)
    merged = tmp_path / "merged.xml"
    proc = _regress(["--merge", *map(str, docs), "--junit", str(merged)], tmp_path / "build")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = proc.stdout.strip().splitlines()[-1]
    assert summary.startswith("SUMMARY net=l10 format=int8 shards=2 images=5 bit_exact=5 "), summary
    suite = ET.parse(merged).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("6", "0")

    doc = json.loads(docs[1].read_text())
    doc["images"][0]["bit_exact"] = False
    doc["images"][0]["mismatches"] = ["image 3 layer 0 neuron 1: expected 2 got 3"]
    docs[1].write_text(json.dumps(doc))
    proc = _regress(["--merge", *map(str, docs), "--junit", str(merged)], tmp_path / "build")
    assert proc.returncode == 1
    assert "image 3: NOT bit-exact" in proc.stdout
    assert " bit_exact=4 " in proc.stdout.strip().splitlines()[-1]
    suite = ET.parse(merged).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"


def _collected(*args: str) -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider",
         "-p", "no:xdist", "tb/mlp_top", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [ln for ln in proc.stdout.splitlines() if "::" in ln]


def test_pytest_shards_partition_the_tests() -> None:
    """``pytest --shard i/n`` (conftest.py): the n slices are disjoint and cover every test."""
    everything = _collected()
    slices = [_collected("--shard", f"{i}/3") for i in (1, 2, 3)]
    assert sorted(t for s in slices for t in s) == sorted(everything)
    assert all(abs(len(s) - len(everything) / 3) < 1 for s in slices)


def test_a_warning_alone_fails_the_regression(tmp_path: Path) -> None:
    """An RTL mutant whose numbers stay exact but that raises a numeric_std warning for
    every negative accumulator (mutant ``requant-relu-warns``): every image is bit-exact,
    yet the regression must fail, naming the job, its images and the warning, and its
    JUnit XML must mark the job."""
    if reason := simulator_missing():
        pytest.skip(reason)
    junit = tmp_path / "j.xml"
    proc = _regress(["--sample", "--net", "mlp256", "--images", "2", "--jobs", "1",
                     "--fault", "mutant:requant-relu-warns", "--results",
                     str(tmp_path / "r.json"), "--junit", str(junit)], tmp_path / "build")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = [ln for ln in proc.stdout.splitlines() if ln.startswith("FAILED job 0 ")]
    assert failed, proc.stdout
    assert failed[0].startswith("FAILED job 0 (images 0..1): simulator warning: "), failed[0]
    assert "vector truncated" in failed[0], failed[0]
    assert " images=2 bit_exact=2 " in proc.stdout.strip().splitlines()[-1], proc.stdout
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"


def test_jobs_and_the_regression_quantize_alike(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A weights file without calib<k>: every job of a regression simulates the same integers
    as the regression's own model, whatever slice of images the job was given (the job's
    sample used to calibrate it, the regression the committed one)."""
    import mnist_fpga.tb.netsim as netsim
    from mnist_fpga.gen.core.quant import load_float_weights
    from mnist_fpga.gen.data.sample import load_sample
    from mnist_fpga.paths import DEFAULT_SAMPLE, MODELS
    from mnist_fpga.tb.regress import load_qnet

    w = {k: v for k, v in load_float_weights(MODELS / "mlp256.npz").items()
         if not k.startswith("calib")}
    np.savez(tmp_path / "mlp256.npz", **w)
    images, labels = load_sample(DEFAULT_SAMPLE)
    np.savez(tmp_path / "slice.npz", images=images[60:], labels=labels[60:])  # a job's slice
    seen = []
    monkeypatch.setattr(netsim, "simulate_qnet", lambda qnet, *a, **k: seen.append(qnet) or {})
    monkeypatch.setattr(netsim, "simulator_missing", lambda *a: None)
    netsim.run_network_sim("mlp256", "int8", 2, weights=tmp_path / "mlp256.npz",
                           sample=tmp_path / "slice.npz", tag="calib-test")
    root = tmp_path / "root"  # the regression reads models/<net>.npz of its checkout
    (root / "models").mkdir(parents=True)
    (root / "models" / "mlp256.npz").write_bytes((tmp_path / "mlp256.npz").read_bytes())
    monkeypatch.setattr("mnist_fpga.tb.regress.ROOT", root)
    ref = load_qnet("mlp256", "int8")
    assert seen and seen[0].to_json() == ref.to_json()
