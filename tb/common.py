"""Shared pieces of the benches: simulator selection, the cocotb-test runner, the TB class."""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path

from gen.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
RTL = ROOT / "rtl"
BUILD = Path(os.environ.get("BUILD_DIR", ROOT / "build"))
SIMULATORS = ("ghdl", "nvc")
# A warning or error from an assertion or report in the simulator's output: IEEE library
# warnings (numeric_std metavalues, truncated vectors) included. Any of them fails the run.
SIM_WARNING = re.compile(r"\((?:assertion|report) (?:warning|error|failure)\)|"
                         r"\*\* (?:Warning|Error|Failure|Fatal):")


def env_int(name: str, default: int, lo: int | None = None, hi: int | None = None) -> int:
    """An integer from the environment variable ``name``; bad values are a :class:`UserError`."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UserError(f"{name}={text!r} is not an integer") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f">= {lo}" if hi is None else f"in {lo}..{hi}" if lo is not None else f"<= {hi}"
        raise UserError(f"{name}={value} is out of range: it must be {bounds}")
    return value


def simulator() -> str:
    """The simulator from ``SIM`` (default ``ghdl``)."""
    sim = os.environ.get("SIM", "ghdl").strip().lower() or "ghdl"
    if sim not in SIMULATORS:
        raise UserError(f"SIM={sim!r} is not supported: choose one of {', '.join(SIMULATORS)}")
    return sim


def simulator_missing(sim: str | None = None) -> str | None:
    """A one-line reason when the simulator is not installed, else None."""
    sim = sim or simulator()
    if shutil.which(sim) is None:
        hint = ("apt-get install -y ghdl-llvm ghdl" if sim == "ghdl" else
                "install NVC >= 1.22: docs/simspeed.md says how")
        return f"simulator {sim!r} not found on PATH ({hint})"
    return None


def rtl_sources(*names: str) -> list[str]:
    """Hand-written RTL files by entity name (file name = entity name).

    From ``rtl/``, or from the mutated copy that ``MNIST_FPGA_RTL`` names (tb/mutants).
    """
    from gen.generate import rtl_dir

    return [str(rtl_dir() / f"{n}.vhd") for n in names]


def run_sim(
    *, toplevel: str, module: str, vhdl_sources: list[str], build_dir: Path,
    extra_env: dict[str, str] | None = None, bench_dir: Path,
) -> None:
    """Compile and run one cocotb module with cocotb-test (one build folder per parameter set).

    Each simulator works in its own subfolder ``<build_dir>/<sim>`` (GHDL's executable
    and NVC's library folder both take the top's name). ``WAVES=1`` writes a waveform
    there. The compiler and simulator output goes to ``<build_dir>/<sim>/sim.log``
    (``VERBOSE=1`` also prints it). Raises ``SystemExit`` on failed tests, naming the log.
    """
    from cocotb_test.simulator import run

    sim = simulator()
    build_dir = build_dir / sim
    env = {k: str(v) for k, v in (extra_env or {}).items()}
    # IEEE asserts stay on (numeric_std warnings are scanned below), except at time 0,
    # before reset has given every register a value.
    sim_args = ["--ieee-asserts=disable-at-0"] if sim == "ghdl" else []
    env.setdefault("COCOTB_LOG_LEVEL", os.environ.get("COCOTB_LOG_LEVEL", "WARNING"))
    # cocotb rewrites the asserts of every imported module ("*.py", numpy included) for
    # pytest-style messages; only the bench modules need it: 0.45 s less per start.
    env.setdefault("COCOTB_REWRITE_ASSERTION_FILES",
                   os.environ.get("COCOTB_REWRITE_ASSERTION_FILES", "test_*.py"))
    build_dir.mkdir(parents=True, exist_ok=True)
    # GHDL takes --std per command; NVC's --std is a global option (before -a/-e/-r),
    # which cocotb-test places from extra_args (every bench passes under NVC 1.22.1).
    compile_args = ["--std=08"] if sim == "ghdl" else []
    extra_args = [] if sim == "ghdl" else ["--std=2008"]
    log = logging.getLogger("cocotb")
    handler = logging.FileHandler(build_dir / "sim.log", mode="w")
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    quiet = os.environ.get("VERBOSE", "0") != "1"
    saved = log.propagate
    log.propagate = not quiet
    try:
        run(
            simulator=None if os.environ.get("SIM") else sim,  # cocotb-test reads SIM itself
            toplevel=toplevel.lower(),
            module=module,
            toplevel_lang="vhdl",
            vhdl_sources=vhdl_sources,
            compile_args=compile_args,
            extra_args=extra_args,
            sim_build=str(build_dir),
            extra_env=env,
            python_search=[str(bench_dir), str(ROOT)],
            waves=os.environ.get("WAVES", "0") == "1",
            force_compile=True,
            sim_args=sim_args,
        )
    except SystemExit as exc:
        failure = f"{exc} (simulator log: {build_dir / 'sim.log'})"
    else:
        failure = None
    finally:
        log.removeHandler(handler)
        handler.close()
        log.propagate = saved
    if warning := first_sim_warning(build_dir / "sim.log"):
        failure = f"simulator warning: {warning}" + (f"; {failure}" if failure else "")
    if failure:
        raise SystemExit(failure)


def first_sim_warning(log: Path) -> str | None:
    """The first assertion/report warning or error the simulator printed, or None."""
    if not log.exists():
        return None
    with log.open(errors="replace") as f:
        for line in f:
            if SIM_WARNING.search(line):
                return line.strip()
    return None


def decode_flat(value: int, n: int, bits: int) -> list[int]:
    """Split a flat vector into ``n`` signed fields, field 0 in the low bits."""
    mask, sign = (1 << bits) - 1, 1 << (bits - 1)
    out = []
    for i in range(n):
        f = (value >> (i * bits)) & mask
        out.append(f - (1 << bits) if f & sign else f)
    return out


def write_progress(path: str | Path, done: int) -> None:
    """Write a progress count atomically (temporary sibling, then rename).

    A reader never sees a half-written file: tb/regress.py's bar reads these while
    the bench rewrites them.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(str(done))
    os.replace(tmp, path)


def read_progress(path: str | Path) -> int | None:
    """The count in a progress file, or None when it is missing or unreadable."""
    try:
        return int(Path(path).read_text())
    except (OSError, ValueError):
        return None
