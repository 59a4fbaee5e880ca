"""The progress of long simulations (mnist_fpga.progress): what ``make sim`` and
``tb.regress`` show on stderr, with a fake clock; then a real ``make sim`` run."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_fpga.progress import DELAY_S, EVERY_S, Progress, bar_line, plain_line, write_progress
from mnist_fpga.tb.common import simulator_missing

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r"progress: \d+/\d+ images, \d+ s( \(compiling\))?")


class FakeClock:
    """A clock the test sets: ``clock.now = 7.0``."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Tty(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def _shown(tmp_path: Path, stream: io.StringIO, steps: list[tuple[float, int | None]],
           stage: str = "") -> str:
    """What a Progress over one count file writes to ``stream`` at the (time, count) steps."""
    clock, count = FakeClock(), tmp_path / "progress"
    prog = Progress([count], 100, stream=stream, clock=clock)
    prog.stage = stage
    for now, done in steps:
        clock.now = now
        if done is not None:
            write_progress(count, done)
        prog.poll()
    prog.close()
    return stream.getvalue()


def test_plain_lines_without_a_terminal(tmp_path: Path) -> None:
    """Not a terminal: nothing before DELAY_S, then one line, then one every EVERY_S."""
    steps = [(0.5, None), (DELAY_S - 0.1, 3), (DELAY_S, 5), (DELAY_S + 1, 9),
             (DELAY_S + EVERY_S - 0.1, 30), (DELAY_S + EVERY_S, 40), (30.0, 100)]
    assert _shown(tmp_path, io.StringIO(), steps).splitlines() == [
        "progress: 5/100 images, 2 s", "progress: 40/100 images, 7 s",
        "progress: 100/100 images, 30 s"]
    assert plain_line(40, 100, 12.4) == "progress: 40/100 images, 12 s"


def test_compiling_until_the_first_image(tmp_path: Path) -> None:
    """The stage (``compiling``) is named while no image is done."""
    lines = _shown(tmp_path, io.StringIO(), [(2.0, None), (7.0, 0), (12.0, 1)],
                   stage="compiling").splitlines()
    assert lines == ["progress: 0/100 images, 2 s (compiling)",
                     "progress: 0/100 images, 7 s (compiling)", "progress: 1/100 images, 12 s"]
    assert all(LINE.fullmatch(line) for line in lines)


def test_a_short_run_shows_nothing(tmp_path: Path) -> None:
    """A run that ends before DELAY_S prints nothing, on a terminal or not."""
    for stream in (io.StringIO(), Tty()):
        assert _shown(tmp_path, stream, [(0.5, 10), (1.0, 60), (DELAY_S - 0.01, 100)]) == ""


def test_quiet_shows_nothing(tmp_path: Path) -> None:
    """Without a stream (``--quiet``, regress's jobs) nothing is written, thread or not."""
    clock, count = FakeClock(), tmp_path / "progress"
    prog = Progress([count], 10, clock=clock)
    prog.start()
    clock.now = 60.0
    write_progress(count, 5)
    prog.poll()
    prog.close()
    assert prog.done() == 5  # it still counts


def test_terminal_bar_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A terminal: the bar is redrawn in place (carriage returns, no new line), fits the
    terminal's width, and is erased at the end, so only the results stay."""
    monkeypatch.setenv("COLUMNS", "60")
    out = _shown(tmp_path, Tty(), [(2.0, 0), (2.5, 0), (4.0, 20), (6.0, 60)], stage="compiling")
    assert "\n" not in out
    bars = out.split("\r")[1:]
    assert bars[0].startswith("[") and "0/100 images" in bars[0] and "compiling" in bars[0]
    assert len(bars) == 5, bars  # 2.5 s drew the same bar again: not written twice
    assert "60/100 images  60.0%  6 s, ETA 2 s" in bars[2], bars[2]  # 40 images in 2 s
    assert all(len(b) < 60 for b in bars), [len(b) for b in bars]
    assert bars[-2].strip() == "" and bars[-1] == "", bars[-2:]  # erased
    assert bar_line(50, 100, 10.0, columns=200).startswith(f"[{'#' * 20}{'.' * 20}]")


def _env(build: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("SIM", "WAVES", "VERBOSE", "MLP_PROGRESS", "PE", "P")}
    return {**env, "BUILD_DIR": str(build)}


def test_make_sim_shows_progress_on_stderr_only(tmp_path: Path) -> None:
    """A real ``make sim`` (mlp256, 20 images) without a terminal: stdout as the README
    shows it (a row per image, COVERAGE, TIMING, SUMMARY), stderr only progress lines,
    and the bench's count reached 20. With ``--quiet`` (regress's jobs): nothing at all."""
    if reason := simulator_missing("ghdl"):
        pytest.skip(reason)
    proc = subprocess.run([sys.executable, "-m", "mnist_fpga.tb.netsim", "--net", "mlp256",
                           "--images", "20"], cwd=ROOT, env=_env(tmp_path), text=True,
                          capture_output=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(LINE.fullmatch(line) for line in proc.stderr.splitlines()), proc.stderr
    out = proc.stdout.splitlines()
    assert out[0].startswith("model: models/mlp256.npz, float, quantized to int8"), out[0]
    assert out[1].split() == ["image", "label", "rtl", "model", "bit_exact", "cycles"]
    assert [row.split()[0] for row in out[2:22]] == [str(i) for i in range(20)]
    assert [line.split()[0] for line in out[22:]] == ["COVERAGE", "TIMING", "SUMMARY"], out
    assert out[-1].startswith("SUMMARY net=mlp256 format=int8 images=20 bit_exact=20 ")
    count = tmp_path / "sim" / "mlp256-int8-p1-ghdl" / "progress"
    assert count.read_text() == "20", "the bench did not report its images"

    quiet = subprocess.run([sys.executable, "-m", "mnist_fpga.tb.netsim", "--net", "mlp256",
                            "--images", "20", "--quiet", "--tag", "quiet"], cwd=ROOT,
                           env=_env(tmp_path), text=True, capture_output=True, timeout=600)
    assert quiet.returncode == 0, quiet.stdout + quiet.stderr
    assert (quiet.stdout, quiet.stderr) == ("", "")
    assert not (tmp_path / "sim" / "quiet" / "progress").exists(), "quiet, yet counted"
