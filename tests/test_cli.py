"""Command lines answer bad input with one error line and a non-zero exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=120)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode != 0
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_sim_without_ghdl(tmp_path: Path) -> None:
    """No simulator on PATH: one line naming it and the install command."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python").symlink_to(sys.executable)
    proc = run(["-m", "mnist_fpga.tb.netsim", "--images", "1"],
               {"PATH": str(bindir), "SIM": "ghdl", "BUILD_DIR": str(tmp_path / "build")})
    line = one_error_line(proc)
    assert "'ghdl' not found" in line and "apt-get install" in line
    assert not (tmp_path / "build").exists()


def test_sim_unknown_simulator(tmp_path: Path) -> None:
    proc = run(["-m", "mnist_fpga.tb.netsim", "--images", "1"],
               {"SIM": "modelsim", "BUILD_DIR": str(tmp_path / "build")})
    assert "SIM='modelsim' is not supported" in one_error_line(proc)


@pytest.mark.parametrize(("args", "needle"), [
    (["--images", "0"], "--images must be >= 1"),
    (["--images", "101"], "the sample"),
    (["--format", "int1"], "unsupported weight width 1"),
    (["--format", "int17"], "unsupported weight width 17"),
    (["--net", "nosuchnet"], "does not exist"),
])
def test_sim_bad_options(args: list[str], needle: str, tmp_path: Path) -> None:
    proc = run(["-m", "mnist_fpga.tb.netsim", *args], {"BUILD_DIR": str(tmp_path / "build")})
    assert needle in one_error_line(proc)
    assert not (tmp_path / "build").exists()
