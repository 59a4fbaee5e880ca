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
