"""The hand-written RTL refuses illegal generics at elaboration (assert ... severity failure)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("ghdl") is None, reason="ghdl not installed")

WRAPPER = """\
library ieee;
use ieee.std_logic_1164.all;
entity narrow_tb is end entity;
architecture sim of narrow_tb is
  signal clk, rst, v, r, re, av, ov, orr, ol : std_logic := '0';
  signal x : std_logic_vector(7 downto 0);
  signal a : std_logic_vector(3 downto 0);
  signal rd : std_logic_vector(2 * 8 - 1 downto 0);
  signal b, af : std_logic_vector(2 * {acc} - 1 downto 0);
  signal od : std_logic_vector({acc} - 1 downto 0);
begin
  u : entity work.mlp_layer
    generic map (N_IN => 9, N_OUT => 2, W_BITS => 8, A_BITS => 8, ACC_BITS => {acc},
                 ACC_BITS_MIN => {need}, ADDR_BITS => 4)
    port map (clk, rst, v, r, x, a, re, rd, b, af, av, ov, orr, od, ol);
end architecture;
"""


@pytest.mark.parametrize(("acc", "need", "fails"), [(18, 20, True), (20, 20, False)])
def test_layer_refuses_narrow_accumulator(tmp_path: Path, acc: int, need: int,
                                          fails: bool) -> None:
    (tmp_path / "narrow_tb.vhd").write_text(WRAPPER.format(acc=acc, need=need))
    from mnist_fpga.gen.hdl.sources import LAYER_RTL  # mlp_layer and the units it instantiates

    layer = [str(ROOT / "rtl" / f"{n}.vhd") for n in LAYER_RTL]
    run = [["ghdl", "-a", "--std=08", *layer, "narrow_tb.vhd"],
           ["ghdl", "-e", "--std=08", "narrow_tb"],
           ["ghdl", "-r", "--std=08", "narrow_tb", "--stop-time=1ns"]]
    out = ""
    rc = 0
    for cmd in run:
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
        out += proc.stdout + proc.stderr
        rc = proc.returncode
        if rc:
            break
    if fails:
        assert rc != 0 and f"ACC_BITS={acc} is too narrow" in out, out
    else:
        assert rc == 0, out


MAC_WRAPPER = """\
library ieee;
use ieee.std_logic_1164.all;
entity style_tb is end entity;
architecture sim of style_tb is
  signal clk, rst, v, f, l, rv : std_logic := '0';
  signal fold, rf : std_logic_vector(0 downto 0) := "0";
  signal x : std_logic_vector({a} - 1 downto 0) := (others => '0');
  signal w : std_logic_vector({w} - 1 downto 0) := (others => '0');
  signal b, rd : std_logic_vector({acc} - 1 downto 0) := (others => '0');
begin
  u : entity work.mac_array
    generic map (PE => 1, P => 1, W_BITS => {w}, A_BITS => {a}, ACC_BITS => {acc},
                 MULT_STYLE => "{style}")
    port map (clk, rst, v, f, l, fold, x, w, b, rv, rf, rd);
end architecture;
"""


@pytest.mark.parametrize(("style", "w", "a", "acc", "message"), [
    ("dsp", 8, 8, 24, 'mac_mult: MULT_STYLE "dsp" is unknown: choose "inferred", "ecp5" or "lut"'),
    ("LUT", 8, 8, 24, 'mac_mult: MULT_STYLE "LUT" is unknown'),  # the names are case-sensitive
    ("lut", 16, 16, 40, 'mac_mult: MULT_STYLE "lut" needs the integer MAC'),  # int16
    ("ecp5", 16, 16, 40, 'mac_mult: MULT_STYLE "ecp5" needs the integer MAC'),
    ("ecp5", 20, 8, 30, 'mac_mult: MULT_STYLE "ecp5" needs W_BITS <= 18 and A_BITS <= 17 '
                        "(one MULT18X18D), got W_BITS=20 A_BITS=8"),
    ("lut", 8, 1, 12, 'mac_mult: MULT_STYLE "lut" needs A_BITS >= 2'),
    ("inferred", 16, 16, 40, None),
    ("lut", 8, 8, 24, None),
    ("ecp5", 18, 11, 31, None),
])
def test_mac_refuses_unsupported_styles(tmp_path: Path, style: str, w: int, a: int, acc: int,
                                        message: str | None) -> None:
    """An unknown MULT_STYLE or one the widths do not allow stops at elaboration with the
    reason (instead of another style in its place); the supported ones elaborate."""
    (tmp_path / "style_tb.vhd").write_text(MAC_WRAPPER.format(style=style, w=w, a=a, acc=acc))
    units = ["mlp_common", "ecp5_mult", "mac_ctrl", "mac_mult", "mac_tree", "mac_acc",
             "mac_array"]
    srcs = [str(ROOT / "tb" / "hdl" / "MULT18X18D.vhd"),
            *(str(ROOT / "rtl" / f"{n}.vhd") for n in units), "style_tb.vhd"]
    out, rc = "", 0
    for cmd in (["ghdl", "-a", "--std=08", *srcs], ["ghdl", "-e", "--std=08", "style_tb"],
                ["ghdl", "-r", "--std=08", "style_tb", "--stop-time=1ns"]):
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
        out += proc.stdout + proc.stderr
        rc = proc.returncode
        if rc:
            break
    if message:
        assert rc != 0 and message in out and "(assertion failure)" in out, out
    else:
        assert rc == 0 and "assertion" not in out, out
