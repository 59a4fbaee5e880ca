"""The plain VHDL testbench (``bench/tb_plain.vhd``) under GHDL or NVC: the simulator alone.

Used by the benches to split a cocotb run's wall time into the simulator's share and
the Python harness's share: the same RTL and images, driven from a text file by VHDL.
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.model import QNet, classify, forward
from mnist_fpga.gen.hdl.generate import ROOT
from mnist_fpga.gen.hdl.memories import clog2
from mnist_fpga.gen.hdl.sources import hdl_sources


@dataclass
class PlainRun:
    """Seconds of the plain testbench: start-up only (stop at 0 ns) and the full run.

    ``*_s`` are wall clock, ``*_cpu_s`` the simulator process's CPU time (user + system),
    which a busy shared machine disturbs less.
    """

    startup_s: float
    run_s: float
    startup_cpu_s: float
    run_cpu_s: float
    ok: bool  # classes equal to the model's

    @property
    def sim_s(self) -> float:
        """Simulation time without the start-up (elaboration, loading the ROM constants)."""
        return max(self.run_s - self.startup_s, 1e-9)

    @property
    def sim_cpu_s(self) -> float:
        """CPU time of the simulation without the start-up."""
        return max(self.run_cpu_s - self.startup_cpu_s, 1e-9)


def _timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds, CPU seconds of the child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _commands(sim: str, srcs: list[str], top: str) -> tuple[list[list[str]], list[str]]:
    """(compile commands, run command) of ``top`` in the current folder."""
    if sim == "ghdl":
        return ([["ghdl", "-a", "--std=08", *srcs], ["ghdl", "-e", "--std=08", top]],
                ["ghdl", "-r", "--std=08", top])
    if sim == "nvc":
        return ([["nvc", "--std=2008", "-a", *srcs], ["nvc", "--std=2008", "-e", top]],
                ["nvc", "--std=2008", "-r", top])
    raise UserError(f"plain testbench: unknown simulator {sim!r}")


def plain_run(sim: str, qnet: QNet, gen_dir: Path, p: int, images: np.ndarray,
              work: Path) -> PlainRun:
    """Compile ``tb_plain`` around the generated top in ``work`` and time it on ``images``."""
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    text = (ROOT / "bench" / "tb_plain.vhd").read_text().replace("dut_top", f"{qnet.name}_top")
    n_classes = max(qnet.n_classes, 2)
    text = text.replace("P          : positive := 1;", f"P          : positive := {p};")
    text = text.replace("CLASS_BITS : positive := 4;",
                        f"CLASS_BITS : positive := {clog2(n_classes)};")
    text = text.replace("N_IMAGES   : positive := 1", f"N_IMAGES   : positive := {len(images)}")
    (work / "tb_plain.vhd").write_text(text)
    lines = []
    for img in images.reshape(len(images), -1):
        px = [int(v) for v in img] + [0] * (-img.size % p)
        lines += [str(v) for v in px]
    (work / "pixels.txt").write_text("\n".join(lines) + "\n")
    srcs = [str(s) for s in hdl_sources(gen_dir, qnet)] + [str(work / "tb_plain.vhd")]
    compile_cmds, run_cmd = _commands(sim, srcs, "tb_plain")
    for cmd in compile_cmds:
        subprocess.run(cmd, cwd=work, check=True, capture_output=True)
    startup, startup_cpu = _timed([*run_cmd, "--stop-time=0ns"], work)
    wall, cpu = _timed(run_cmd, work)
    got = [int(v) for v in (work / "classes.txt").read_text().split()]
    want = classify(qnet, forward(qnet, images)[-1]).tolist()
    return PlainRun(startup, wall, startup_cpu, cpu, got == want)
