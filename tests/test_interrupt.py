"""Ctrl-C (SIGINT) during a simulation: exit status 130, one ``interrupted: ...`` line on
stderr and no traceback, no temporary file left under the build folder, no simulator or
compiler left running (GHDL's ``-r`` runs the executable as its own child).

Each test starts a real command in its own ``BUILD_DIR``, waits (bounded) until it is
where the interruption is to hit, and sends SIGINT to that one process only, as
``kill -INT`` does (a terminal's Ctrl-C reaches the whole process group).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mnist_fpga.gen.hdl.generate import MARKER
from mnist_fpga.progress import read_progress
from mnist_fpga.tb.common import descendants, simulator_missing

ROOT = Path(__file__).resolve().parent.parent
WAIT_STEPS = 6000  # x 0.05 s: the bound of every wait below (5 min on a loaded machine)


def _start(args: list[str], build: Path, **env: str) -> subprocess.Popen[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("SIM", "WAVES", "VERBOSE", "MLP_PROGRESS", "PE", "P", "IMAGES")}
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, text=True,
                            env={**clean, "BUILD_DIR": str(build), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(proc: subprocess.Popen[str], ready: Callable[[], bool], what: str) -> None:
    """Poll ``ready`` until it holds; fail if ``proc`` ends first or after WAIT_STEPS."""
    for _ in range(WAIT_STEPS):
        if ready():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"ended (exit {proc.returncode}) before {what}: {out}{err}")
        time.sleep(0.05)
    proc.kill()
    proc.communicate()
    pytest.fail(f"no {what} after {WAIT_STEPS * 0.05:.0f} s")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _running(pid: int) -> bool:
    """Alive and not a zombie (a killed orphan waits for init to reap it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _interrupt(proc: subprocess.Popen[str], needle: str) -> tuple[str, dict[int, str]]:
    """SIGINT ``proc`` once a process below it runs ``needle``; return its stderr and the
    processes that were below it, with their command lines (one runs ``needle``: the
    check that none is left is not vacuous)."""
    below = {pid: _cmdline(pid) for pid in descendants(proc.pid)}
    assert any(needle in cmd for cmd in below.values()), f"no {needle!r} below: {below}"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    return err, below


def _check_clean_stop(proc: subprocess.Popen[str], err: str, below: dict[int, str],
                      interrupted: str, build: Path) -> None:
    """Exit 130, one ``interrupted:`` line (progress lines aside), nothing left."""
    assert proc.returncode == 130, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if not line.startswith("progress: ")]
    assert lines == [interrupted], err
    left = [p for p in build.rglob("*") if p.name.endswith(".part") or ".tmp" in p.name
            or p.name.endswith("_results.xml")
            or (p.name.startswith(".") and p.name != MARKER)]
    assert not left, f"temporary files left: {left}"
    # at once: every process was killed before the command ended (a killed process is
    # gone in microseconds; one left running would live on for seconds)
    for _ in range(10):
        alive = [pid for pid in below if _running(pid)]
        if not alive:
            break
        time.sleep(0.02)
    assert not alive, [below[pid] for pid in alive]


def test_ctrl_c_during_the_simulation(tmp_path: Path) -> None:
    """``make sim IMAGES=100`` interrupted once the bench has finished an image: the
    simulator (``ghdl -r`` and the executable it runs) is killed before it finishes the
    images, cocotb-test's temporary results file is not left behind, one line names the
    run."""
    if reason := simulator_missing("ghdl"):
        pytest.skip(reason)
    build, count = tmp_path / "build", tmp_path / "count"
    proc = _start(["-m", "mnist_fpga.tb.netsim", "--net", "mlp256", "--images", "100"], build,
                  MLP_PROGRESS=str(count))
    _wait_for(proc, lambda: (read_progress(count) or 0) >= 1, "a simulated image")
    err, below = _interrupt(proc, "mlp256_tbtop")
    work = build / "sim" / "mlp256-int8-p1-ghdl"
    _check_clean_stop(proc, err, below,
                      f"interrupted: simulation of mlp256 (int8, 100 images) in {work}", build)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".count.")]
    assert not (work / "results.json").exists(), "the simulation ran to its end"


def test_ctrl_c_while_the_ghdl_library_is_built(tmp_path: Path) -> None:
    """``mnist-fpga sim`` interrupted while GHDL analyses the committed units into
    ``build/ghdl-lib/<hash>.tmp<pid>``: that folder is removed, ghdl is stopped."""
    if reason := simulator_missing("ghdl"):
        pytest.skip(reason)
    build = tmp_path / "build"
    lib = build / "ghdl-lib"
    proc = _start(["-m", "mnist_fpga", "sim", "--net", "mlp256", "--images", "20"], build)
    _wait_for(proc, lambda: lib.is_dir() and any(".tmp" in p.name for p in lib.iterdir()),
              "GHDL library being built")
    err, below = _interrupt(proc, "ghdl")
    work = build / "sim" / "mlp256-int8-p1-ghdl"
    _check_clean_stop(proc, err, below,
                      f"interrupted: simulation of mlp256 (int8, 20 images) in {work}", build)
    assert list(lib.iterdir()) == [], "the interrupted library must not look finished"


def test_ctrl_c_during_a_regression(tmp_path: Path) -> None:
    """``tb.regress`` with 2 jobs interrupted while they simulate: each job gets SIGINT
    and stops its simulator, the regression exits 130 with one line."""
    if reason := simulator_missing("ghdl"):
        pytest.skip(reason)
    build = tmp_path / "build"
    proc = _start(["-m", "mnist_fpga.tb.regress", "--net", "mlp256", "--sample", "--images",
                   "100", "--jobs", "2"], build)
    work = build / "regress" / "mlp256-int8-p1-ghdl-shard1of1"
    _wait_for(proc, lambda: any((read_progress(work / f"progress{j}") or 0) >= 1
                                for j in (0, 1)), "a simulated image")
    err, below = _interrupt(proc, "mlp256_tbtop")
    assert sum("mnist_fpga.tb.netsim" in cmd for cmd in below.values()) == 2, below
    _check_clean_stop(proc, err, below,
                      "interrupted: regression of mlp256 (int8, images 0..99 on 2 jobs)", build)
    for j in (0, 1):  # each job stopped on its own SIGINT, named in its log
        assert not (work / f"results{j}.json").exists(), f"job {j} ran to its end"
        log = (work / f"job{j}.log").read_text()
        assert log.splitlines()[-1:] == [
            f"interrupted: simulation of mlp256 (int8, 50 images) in "
            f"{build / 'sim' / f'regress-mlp256-int8-p1-ghdl-shard1of1-job{j}'}"], log
