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


def test_mnist_fpga_sim_takes_image(tmp_path: Path) -> None:
    """``mnist-fpga sim --image`` reaches tb.netsim's option (a missing file: its line)."""
    proc = run(["-m", "mnist_fpga", "sim", "--image", str(tmp_path / "nope.png")],
               {"BUILD_DIR": str(tmp_path / "build")})
    assert one_error_line(proc) == f"error: image file {tmp_path / 'nope.png'} does not exist"


@pytest.mark.parametrize(("fmt", "warning"), [
    ("q8_0", "warning: q8_0 gives 13.0 % on the sample's 100 images (float: 96.0 %): this "
             "format loses the network's accuracy"),
    ("int8", None),
])
def test_gen_warns_of_a_format_that_loses_the_accuracy(fmt: str, warning: str | None,
                                                      tmp_path: Path) -> None:
    """``mnist-fpga gen`` of l10: q8_0 is generated (exit 0) with one warning line; int8 quiet."""
    out = tmp_path / "out"
    proc = run(["-m", "mnist_fpga.gen.hdl.generate", "--weights", "models/l10.npz", "--format", fmt,
                "--out", str(out)])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ([warning] if warning else [])
    assert (out / "qnet.json").is_file()
