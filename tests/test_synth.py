"""The synthesis flow (gen/eda/synth.py) and the netlist simulation, on real tool runs.

``test_l10_flow`` takes l10 int8 through ghdl --synth, yosys synth_ecp5, nextpnr-ecp5
(LFE5UM-85F) and yosys synth_xilinx, and checks the figures against bounds that do
not depend on the datapath's details and against the BRAM count expected from the
ROM sizes. ``test_netlist_sim`` runs the whole-network cocotb bench on the Verilog
that ghdl --synth writes (NETLIST_NETS, NETLIST_IMAGES widen it).
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mnist_fpga.gen.eda.synth as gs
from mnist_fpga.files import work_lock
from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.formats import parse_format
from mnist_fpga.gen.core.quant import quantize_file
from mnist_fpga.gen.data.sample import load_sample
from mnist_fpga.gen.hdl.generate import ROOT, display_path
from mnist_fpga.paths import DEFAULT_SAMPLE
from mnist_fpga.tb.common import simulator_missing

NO_GHDL = shutil.which("ghdl") is None
SYNTH_RE = re.compile(
    r"^SYNTH net=\w+ format=\S+ p=\S+ pe=\S+ device=\S+ lut=\d+ ff=\d+ dsp=\d+ "
    r"bram=[\d.]+ fmax_mhz=(\d+\.\d|n/a) fit=(yes|no \(.+\))$"
)


def qnet_of(net: str, fmt: str = "int8"):
    images, _ = load_sample(DEFAULT_SAMPLE)
    return quantize_file(ROOT / "models" / f"{net}.npz", parse_format(fmt), net,
                         calib_images=images)


# ----------------------------------------------------------------- pure pieces

def test_expected_bram_geometry() -> None:
    """The expectation formula on hand-checked ROMs (DP16KD / RAMB18E1 / RAMB36E1 geometry)."""
    assert gs.blocks(80, 1024, gs.DP16KD) == 5        # 1024 x 18: 5 blocks
    assert gs.blocks(80, 256, gs.DP16KD) == 3         # 512 x 36: 3 blocks
    assert gs.blocks(2048, 1024, gs.DP16KD) == 114
    assert gs.blocks(8, 1024, gs.DP16KD) == 1         # 2048 x 9
    assert gs.blocks(1, 16385, gs.DP16KD) == 2
    assert gs.expected_bram([(2048, 1024), (80, 256)], "ecp5") == 117
    assert gs.expected_bram([(80, 1024)], "xc7") == 2.5   # 5 RAMB18E1
    assert gs.expected_bram([(72, 512)], "xc7") == 1.0    # one RAMB36E1 as 512 x 72
    qnet = qnet_of("mlp256")
    assert gs.expected_roms(qnet, 1) == [(2048, 1024), (80, 256)]
    assert gs.expected_roms(qnet, 8) == [(16384, 128), (640, 32)]
    # PE = 64: layer 0 in 4 folds (64 x 8 bits a word, 4 x 784 words) plus its replay RAM;
    # layer 1 (10 neurons) is not folded. 118 DP16KD, as make synth PE=64 measured.
    assert gs.expected_roms(qnet, 1, 64) == [(512, 4096), (8, 784), (80, 256)]
    assert gs.expected_bram(gs.expected_roms(qnet, 1, 64), "ecp5") == 118
    # the ECP5 flow's ROM slices, one block deep: 128 x (4 x 4096), 5 x (<= 18 x 256)
    assert gs.expected_roms(qnet, 1, 64, "ecp5") == (
        [(4, 4096)] * 128 + [(8, 784)] + [(18, 256)] * 4 + [(8, 256)])
    assert gs.expected_bram(gs.expected_roms(qnet, 1, 64, "ecp5"), "ecp5") == 134


def test_mult_inputs_must_be_in_the_netlist() -> None:
    """The keep selection's register (mac_mult's p_mult xr) missing from a netlist that
    should have it stops the flow: ``select -assert-min`` alone also counts other wires."""
    qnet = qnet_of("l10")
    with_xr = "reg [79:0] g_int_g_inferred_p_mult_xr;"
    gs.check_mult_inputs(qnet, [1], False, "generic", with_xr)
    with pytest.raises(RuntimeError, match="p_mult_xr"):
        gs.check_mult_inputs(qnet, [1], False, "generic", "reg [79:0] g_int_p_mac_xr;")
    with pytest.raises(RuntimeError, match="p_mult_xr"):  # "lut" has the registers too
        gs.check_mult_inputs(qnet, [1], True, "ecp5", "")
    gs.check_mult_inputs(qnet, [1], False, "ecp5", "")  # "ecp5": the blocks' inputs instead


def test_fix_verilog_constants() -> None:
    """GHDL 2.0's string constants become binary literals; other strings stay."""
    text = ('localparam [5:0] n6_o = "0110XZ";\n  x <= "10";\n'
            '$display("hello");\n  y = 4\'b0101;\n')
    fixed, n = gs.fix_verilog_constants(text)
    assert n == 2
    assert "localparam [5:0] n6_o = 6'b0110xz;" in fixed
    assert "x <= 2'b10;" in fixed
    assert '$display("hello");' in fixed and "4'b0101" in fixed


NEXTPNR_NOFIT = """\
Info: Device utilisation:
Info: \t          TRELLIS_IO:    17/   365     4%
Info: \t              DP16KD:   117/   208    56%
Info: \t          MULT18X18D:   268/   156   171%
Info: \t          TRELLIS_FF: 11804/ 83640    14%

ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'MULT18X18D'
"""


def test_fix_vendor_cells() -> None:
    """GHDL's empty module for the ECP5 multiplier goes; its ASCII-coded generics become
    strings again; other modules and bit-vector parameters stay as they were."""
    clk0 = "".join(f"{ord(c):08b}" for c in "CLK0")
    text = ("module MULT18X18D\n  #(parameter\n    REG_INPUTA_CLK)\n  (input  A0);\nendmodule\n\n"
            "module top (input a);\n"
            f"  MULT18X18D #(\n    .REG_INPUTA_CLK(32'b{clk0}),\n    .W(4'b0101))\n"
            "    u_mult (\n    .A0(a));\n"
            "  other #(\n    .S(32'b" + clk0 + "))\n    u_o (\n    .x(a));\nendmodule\n")
    out = gs.fix_vendor_cells(text)
    assert "module MULT18X18D" not in out
    assert '.REG_INPUTA_CLK("CLK0")' in out
    assert ".W(4'b0101)" in out  # not a whole number of characters: left alone
    assert f".S(32'b{clk0})" in out  # not a vendor cell: left alone
    assert out.startswith("\nmodule top") or out.startswith("module top")


def _bram_doc(ff_ce: object = "1", second_sink: bool = False, ff_clk: int = 2,
              clk_mux: str = "CLKA", regset: str = "RESET") -> dict:
    """A yosys JSON netlist: one DP16KD whose two used outputs DOA0/DOA1 each drive a
    TRELLIS_FF (nets 10, 11 -> Q nets 20, 21)."""
    cells = {"bram": {"type": "DP16KD",
                      "parameters": {"DATA_WIDTH_A": f"{18:032b}", "REGMODE_A": "NOREG",
                                     "REGMODE_B": "NOREG", "CLKAMUX": clk_mux},
                      "port_directions": {"CLKA": "input", "OCEA": "input", "RSTA": "input",
                                          "DOA0": "output", "DOA1": "output",
                                          "DOA2": "output"},
                      "connections": {"CLKA": [2], "OCEA": ["1"], "RSTA": ["0"], "DOA0": [10],
                                      "DOA1": [11], "DOA2": [12]}}}
    for i in range(2):
        cells[f"ff{i}"] = {"type": "TRELLIS_FF",
                           "parameters": {"CEMUX": "CE", "CLKMUX": "CLK", "LSRMUX": "LSR",
                                          "REGSET": regset},
                           "port_directions": {"CLK": "input", "CE": "input", "LSR": "input",
                                               "DI": "input", "Q": "output"},
                           "connections": {"CLK": [ff_clk], "CE": [ff_ce], "LSR": ["0"],
                                           "DI": [10 + i], "Q": [20 + i]}}
    if second_sink:
        cells["lut"] = {"type": "LUT4", "parameters": {}, "port_directions": {"A": "input"},
                        "connections": {"A": [11]}}
    return {"modules": {"top": {"attributes": {"top": "1"}, "cells": cells}}}


def test_absorb_bram_output_registers() -> None:
    """The flip-flops behind a DP16KD port go into its output register only when each
    used output drives one flip-flop on the same clock without enable or reset."""
    doc = _bram_doc()
    assert gs.absorb_bram_output_registers(doc) == (1, 2)
    cells = doc["modules"]["top"]["cells"]
    assert set(cells) == {"bram"}
    assert cells["bram"]["parameters"]["REGMODE_A"] == "OUTREG"
    assert cells["bram"]["connections"]["DOA0"] == [20]
    assert cells["bram"]["connections"]["DOA1"] == [21]
    for bad in (_bram_doc(ff_ce=5), _bram_doc(second_sink=True), _bram_doc(ff_clk=3),
                _bram_doc(clk_mux="INV"), _bram_doc(regset="SET")):
        before = json.dumps(bad)
        assert gs.absorb_bram_output_registers(bad) == (0, 0)
        assert json.dumps(bad) == before


def test_readmem_keeps_the_memory_contents(tmp_path) -> None:
    """yosys reads the same memory contents from GHDL's initial blocks and from the
    .mem files that replace them (l10's ROM slices, tech="ecp5")."""
    if NO_GHDL:
        pytest.skip("ghdl not installed")
    from mnist_fpga.gen.hdl.generate import generate

    qnet = qnet_of("l10")
    gen_dir = generate(qnet, tmp_path / "gen", "models/l10.npz", pe=5, tech="ecp5")
    net = gs.ghdl_synth(qnet, gen_dir, tmp_path / "a", quiet=True)
    mem = gs.ghdl_synth(qnet, gen_dir, tmp_path / "b", quiet=True, readmem=True)
    assert len(list((tmp_path / "b").glob("*.mem"))) == 5  # 40 bits in 9-bit slices
    tools = gs.tools_for(["ecp5"])
    inits = []
    for work, v in ((tmp_path / "a", net["verilog"]), (tmp_path / "b", mem["verilog"])):
        gs.yosys(tools, f"read_verilog {v.name}\nhierarchy -top l10_top\nproc\n"
                 "memory_collect\nwrite_json mems.json\n", work, 0.0, "yosys")
        doc = json.loads((work / "mems.json").read_text())
        inits.append(sorted(c["parameters"]["INIT"] for m in doc["modules"].values()
                            for c in m["cells"].values() if c["type"] == "$mem_v2"))
    assert len(inits[0]) == 6 and any("1" in i for i in inits[0])  # and the replay RAM
    assert inits[0] == inits[1]


def test_nextpnr_utilisation_and_fit() -> None:
    """The device table is read from nextpnr's log; the reason names resource and counts."""
    util = gs.nextpnr_utilisation(NEXTPNR_NOFIT)
    assert util["MULT18X18D"] == (268, 156) and util["DP16KD"] == (117, 208)
    used = {k: u for k, (u, _) in util.items()}
    cap = {k: a for k, (_, a) in util.items()}
    assert gs.misfits(used, cap, "LFE5UM-85F") == (
        "does not fit LFE5UM-85F: 268 MULT18X18D of 156")
    assert gs.misfits({"DP16KD": 5}, {"DP16KD": 208}, "LFE5UM-85F") is None
    assert gs.misfits({"DSP48E1": 268, "LUT": 10}, gs.XC7_CAPACITY, "xc7z020") == (
        "does not fit xc7z020: 268 DSP48E1 of 220")


def test_missing_tool_is_one_line() -> None:
    with pytest.raises(UserError, match="'yowasp-nothing' not found"):
        gs.find_tool("yowasp-nothing")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnist_fpga.gen.eda.synth", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("args", "message"), [
    (["--pe", "0"], "error: neurons in parallel (PE) 0: give one integer >= 1"),
    (["--pe", "-4"], "error: neurons in parallel (PE) -4: give one integer >= 1"),
    (["--p", "0"], "error: parallelism 0: give one integer >= 1"),
    (["--freq", "0"], "error: --freq 0: give the target clock in MHz"),
    (["--target", "ice40"], "error: argument --target: invalid choice"),
], ids=["pe-0", "pe-negative", "p-0", "freq-0", "target"])
def test_cli_refuses(args: list[str], message: str) -> None:
    """Bad parameters: one error line, exit 2, no build folder for the parameter set."""
    before = set((ROOT / "build" / "synth").glob("zero_*"))
    proc = run_cli("--net", "zero", "--target", "ecp5", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr
    assert proc.stdout == ""
    assert set((ROOT / "build" / "synth").glob("zero_*")) == before


def test_a_second_synth_of_one_configuration_waits(tmp_path: Path) -> None:
    """Two ``make synth`` of one configuration at once would overwrite each other's
    netlist and logs in build/synth/<config>: while one holds the folder's lock, the
    other says that it waits and writes nothing there. Ctrl-C while it waits ends it
    with one ``interrupted:`` line and exit status 130."""
    try:
        gs.tools_for(["xc7"])
    except UserError as exc:
        pytest.skip(str(exc))
    work = tmp_path / "synth" / "zero_int8_p1_pefull_xc7"
    env = {**os.environ, "BUILD_DIR": str(tmp_path)}
    with work_lock(work):
        proc = subprocess.Popen([sys.executable, "-m", "mnist_fpga.gen.eda.synth", "--net", "zero",
                                 "--target", "xc7"], cwd=ROOT, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            ready, _, _ = select.select([proc.stderr], [], [], 300)  # bounded
            line = proc.stderr.readline() if ready else "(nothing in 300 s)"
            assert line.startswith(f"waiting for another run that uses {work} "), line
            assert not work.exists()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    assert proc.returncode == 130, err
    assert err.splitlines() == [f"interrupted: synthesis of zero (int8) for xc7 in "
                                f"{display_path(work)}"], err
    assert out == "" and not work.exists()


# ----------------------------------------------------------------- the whole flow on l10

def check_figures(r: gs.SynthResult) -> None:
    """Measured figures of l10 int8 at P=1 within sane bounds; BRAM as the ROM sizes say."""
    print(r.line())
    assert SYNTH_RE.match(r.line()), r.line()
    assert r.fits, r.reason
    # 10 neurons x 1 input per clock: 10 products. More means wide (32-bit) multipliers
    # split over several DSPs; none means the MACs went to LUTs.
    assert 1 <= r.dsp <= 10, r.dsp
    # BRAM: the weight ROM really is block RAM, as many blocks as its size needs
    assert r.bram == r.expected_bram == gs.expected_bram([(80, 1024)], r.target), (
        r.bram, r.expected_bram, r.cells)
    # at least the 10 accumulators and the 10-word holding register (23 bits each)
    assert 2 * 10 * 23 <= r.ff <= 20000, r.ff
    assert 100 <= r.lut <= 20000, r.lut
    if r.target == "ecp5":
        assert r.fmax_mhz is not None and 10 < r.fmax_mhz < 1000, r.fmax_mhz
        assert r.utilisation["MULT18X18D"] == [r.dsp, 156]  # capacity from nextpnr
        assert r.utilisation["DP16KD"] == [r.bram, 208]
    else:
        assert r.fmax_mhz is None


def test_l10_flow(tmp_path) -> None:
    """l10 int8 through ghdl, synth_ecp5 + nextpnr-ecp5 and synth_xilinx (one test: one run)."""
    if NO_GHDL:
        pytest.skip("ghdl not installed")
    results = gs.run_flow(qnet_of("l10"), "models/l10.npz", ["ecp5", "xc7"], root=tmp_path)
    assert [r.target for r in results] == ["ecp5", "xc7"]
    for r in results:
        check_figures(r)
        assert (tmp_path / f"l10_int8_p1_pefull_{r.target}" / "synth.json").exists()
    # ECP5: every multiplier is a block with its input and output registers on
    doc = json.loads((tmp_path / "l10_int8_p1_pefull_ecp5" / "ecp5.json").read_text())
    mults = [c["parameters"] for m in doc["modules"].values() for c in m["cells"].values()
             if c["type"] == "MULT18X18D"]
    assert len(mults) == results[0].dsp
    assert all(m["REG_INPUTA_CLK"] == m["REG_INPUTB_CLK"] == m["REG_OUTPUT_CLK"] == "CLK0"
               for m in mults), mults[:1]
    # ... and every weight ROM block has its output register on (the ROM slices)
    brams = [c["parameters"] for m in doc["modules"].values() for c in m["cells"].values()
             if c["type"] == "DP16KD"]
    assert len(brams) == results[0].bram
    assert all(b["REGMODE_A"] == "OUTREG" for b in brams), brams[:1]


def test_zero_rom_is_bram_on_xc7(tmp_path) -> None:
    """zero's small ROM (8 x 1024 bits): synth_xilinx would put it in LUTs, but the flow
    gives it back the rom_style that ghdl --synth drops, so it is one RAMB18E1."""
    if NO_GHDL:
        pytest.skip("ghdl not installed")
    (r,) = gs.run_flow(qnet_of("zero"), "models/zero.npz", ["xc7"], root=tmp_path)
    print(r.line())
    assert r.bram == r.expected_bram == 0.5, (r.bram, r.cells)
    assert r.cells.get("RAMB18E1") == 1, r.cells


def test_reuse_only_when_unchanged(tmp_path, capsys, monkeypatch) -> None:
    """A second run with the same netlist and options reuses the figures; reuse=False, or
    a stored key that does not match (another netlist or option), runs the tools again."""
    if NO_GHDL:
        pytest.skip("ghdl not installed")
    qnet = qnet_of("zero")
    runs = []  # yosys itself is tested by test_l10_flow: a stand-in that counts its runs

    def fake_xc7(tools, qnet, netlist, work, t0):
        runs.append(work)
        return {"lut": 1, "ff": 2, "dsp": 3, "bram": 0.5, "fmax_mhz": None, "fits": True,
                "reason": "", "cells": {"LUT1": 1}, "seconds": {"yosys": 0.0},
                "device": gs.XC7_DEVICE}

    monkeypatch.setattr(gs, "run_xc7", fake_xc7)
    first = gs.run_flow(qnet, "models/zero.npz", ["xc7"], root=tmp_path)
    assert len(runs) == 1
    assert "reused" not in capsys.readouterr().out
    again = gs.run_flow(qnet, "models/zero.npz", ["xc7"], root=tmp_path)
    assert "figures reused" in capsys.readouterr().out
    assert again[0].line() == first[0].line() and again[0].cells == first[0].cells
    assert len(runs) == 1
    gs.run_flow(qnet, "models/zero.npz", ["xc7"], root=tmp_path, reuse=False)
    assert "reused" not in capsys.readouterr().out and len(runs) == 2
    # a different netlist in the same folder: the mutated key must not match
    work = tmp_path / "zero_int8_p1_pefull_xc7"
    doc = json.loads((work / "synth.json").read_text())
    doc["key"] = "0" * 64
    (work / "synth.json").write_text(json.dumps(doc))
    gs.run_flow(qnet, "models/zero.npz", ["xc7"], root=tmp_path)
    assert "reused" not in capsys.readouterr().out and len(runs) == 3


def test_key_covers_the_memory_contents(tmp_path) -> None:
    """The ROM contents live in .mem files beside the netlist: another content, another key."""
    (tmp_path / "n1.mem").write_text("0101\n")
    net = tmp_path / "top.v"
    net.write_text('initial $readmemb("n1.mem", n1, 0, 0);\n')
    key = gs.run_key(net, "ecp5", 100.0, 1)
    assert gs.run_key(net, "ecp5", 100.0, 1) == key
    (tmp_path / "n1.mem").write_text("0111\n")
    assert gs.run_key(net, "ecp5", 100.0, 1) != key


# ----------------------------------------------------------------- netlist simulation

NETLIST_NETS = os.environ.get("NETLIST_NETS", "zero,l10").split(",")
NETLIST_IMAGES = int(os.environ.get("NETLIST_IMAGES", "3"))


def needs_netlist_sim() -> None:
    if NO_GHDL:
        pytest.skip("ghdl not installed")
    if reason := simulator_missing(os.environ.get("NETLIST_SIM", "icarus")):
        pytest.skip(reason)


@pytest.mark.parametrize("net", NETLIST_NETS)
def test_netlist_sim(net: str) -> None:
    """The ghdl --synth netlist through the whole-network bench: every layer bit-exact."""
    from mnist_fpga.tb.netsim import run_network_sim

    needs_netlist_sim()
    res = run_network_sim(net, "int8", n_images=NETLIST_IMAGES, netlist=True,
                          tag=f"test-netlist-{net}-int8")
    bad = [m for r in res["images"] for m in r["mismatches"]]
    assert res["failure"] is None, (res["failure"], bad[:5])
    assert len(res["images"]) == NETLIST_IMAGES
    assert all(r["bit_exact"] for r in res["images"]), bad[:5]


@pytest.mark.parametrize("fmt", ["int8", "int8-pn"])
def test_netlist_sim_with_requantizer(fmt: str, tmp_path: Path) -> None:
    """zero and l10 have no hidden layer: a 784-12-10 cut of mlp256 puts the synthesized
    requantizer (one multiplier and shift, or per-neuron ones) through the same bench."""
    from mnist_fpga.tb.netsim import run_network_sim

    needs_netlist_sim()
    with np.load(ROOT / "models" / "mlp256.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(W0=arrays["W0"][:12], b0=arrays["b0"][:12], W1=arrays["W1"][:, :12])
    np.savez(tmp_path / "mlp12.npz", **arrays)
    res = run_network_sim("mlp12", fmt, n_images=2, netlist=True, weights=tmp_path / "mlp12.npz",
                          tag=f"test-netlist-mlp12-{fmt}")
    bad = [m for r in res["images"] for m in r["mismatches"]]
    assert res["failure"] is None, (res["failure"], bad[:5])
    assert [r["bit_exact"] for r in res["images"]] == [True, True], bad[:5]


def test_netlist_sim_catches_wrong_netlist() -> None:
    """A netlist synthesized from a network whose neuron 3 has its bias off by one (in the
    generated package, so in the netlist): the netlist bench must name that neuron. This
    holds whatever GHDL version writes the netlist (no reliance on a GHDL bug)."""
    from mnist_fpga.tb.faults import parse_faults
    from mnist_fpga.tb.netsim import run_network_sim

    needs_netlist_sim()
    res = run_network_sim("l10", "int8", n_images=1, netlist=True, faults=parse_faults(
        ["bias:0,3"]), tag="test-netlist-l10-int8-bias-fault")
    img = res["images"][0]
    assert res["failure"] is not None and not img["bit_exact"]
    assert len(img["mismatches"]) == 1, img["mismatches"]
    m = re.fullmatch(r"image 0 layer 0 neuron 3: expected (-?\d+) got (-?\d+)",
                     img["mismatches"][0])
    assert m and abs(int(m[1]) - int(m[2])) == 1, img["mismatches"]


def test_netlist_sim_names_the_netlist_and_simulator_first(tmp_path: Path) -> None:
    """``make sim-netlist`` (``tb.netsim --netlist``): the first line names the netlist file
    it simulates and the Verilog simulator, then the model; the netlist is really there."""
    needs_netlist_sim()
    env = {k: v for k, v in os.environ.items() if k not in ("NET", "BITS", "IMAGES")}
    env |= {"BUILD_DIR": str(tmp_path / "build"), "NETLIST_SIM": "icarus"}
    proc = subprocess.run([sys.executable, "-m", "mnist_fpga.tb.netsim", "--netlist",
                           "--net", "zero",
                           "--images", "1"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first = proc.stdout.splitlines()[0]
    m = re.fullmatch(r"netlist: (\S+) \(ghdl --synth of zero_top\), simulated with icarus; "
                     r"model: models/zero\.npz, .*", first)
    assert m, first
    assert Path(m[1]).is_file() and Path(m[1]).name == "zero_top.v", m[1]
