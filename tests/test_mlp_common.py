"""rtl/mlp_common.vhd and gen/hdl/mlp_common.py: the same functions, value for value.

GHDL runs a testbench that prints the VHDL package's clog2, mac_int, mult_stages,
mac_latency and mult_error over a grid of arguments (every style, an unknown one
included); each line is compared with the Python function. Then the generator's
mapping of ``--lut-mult`` and ``tech`` onto a style (``mult_style_for``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mnist_fpga.gen.hdl import mlp_common as mc

ROOT = Path(__file__).resolve().parent.parent
STYLES = (*mc.MULT_STYLES, "dsp")  # "dsp": not a style (mult_error names it)
PS = (1, 2, 3, 4, 5, 8, 9, 16, 17)
A_BITS = range(1, 21)
W_BITS = (2, 3, 8, 15, 16, 18, 19, 20, 30)
ACC_BITS = (8, 17, 24, 30, 31, 32, 40)

TB = """\
library ieee;
use ieee.std_logic_1164.all;
use std.textio.all;
use work.mlp_common.all;
entity common_tb is end entity;
architecture sim of common_tb is
  type list_t is array (natural range <>) of positive;
  constant PS   : list_t := ({ps});
  constant WS   : list_t := ({ws});
  constant ACCS : list_t := ({accs});

  function img(n : integer) return string is
  begin
    return integer'image(n);
  end function;
begin
  process
    variable l : line;
    procedure put(s : string) is
    begin
      write(l, s);
      writeline(output, l);
    end procedure;
  begin
    for n in 1 to 70 loop
      put("clog2 " & img(n) & " " & img(clog2(n)));
    end loop;
{styles}
    for a in 1 to {a_max} loop
      for wi in WS'range loop
        for ci in ACCS'range loop
          for pi in PS'range loop
            put("int " & img(WS(wi)) & " " & img(a) & " " & img(ACCS(ci)) & " " &
                img(PS(pi)) & " " & boolean'image(mac_int(WS(wi), a, ACCS(ci), PS(pi))));
          end loop;
        end loop;
      end loop;
    end loop;
    wait;
  end process;
end architecture;
"""

STYLE = """\
    for a in 1 to {a_max} loop
      put("stages {s} " & img(a) & " " & img(mult_stages("{s}", a)));
      for pi in PS'range loop
        put("latency {s} " & img(PS(pi)) & " " & img(a) & " " &
            img(mac_latency("{s}", PS(pi), a)));
      end loop;
      for wi in WS'range loop
        put("error {s} " & img(WS(wi)) & " " & img(a) & " false |" &
            mult_error("{s}", WS(wi), a, false) & "|");
        put("error {s} " & img(WS(wi)) & " " & img(a) & " true |" &
            mult_error("{s}", WS(wi), a, true) & "|");
      end loop;
    end loop;"""


def _testbench() -> str:
    """The VHDL testbench: one printed line per function and argument set."""
    a_max = A_BITS.stop - 1
    return TB.format(ps=", ".join(map(str, PS)), ws=", ".join(map(str, W_BITS)),
                     accs=", ".join(map(str, ACC_BITS)), a_max=a_max,
                     styles="\n".join(STYLE.format(s=s, a_max=a_max) for s in STYLES))


def _expected() -> list[str]:
    """The same lines from gen/hdl/mlp_common.py, in the testbench's order."""
    lines = [f"clog2 {n} {mc.clog2(n)}" for n in range(1, 71)]
    for s in STYLES:
        for a in A_BITS:
            lines.append(f"stages {s} {a} {mc.mult_stages(s, a)}")
            lines += [f"latency {s} {p} {a} {mc.mac_latency(s, p, a)}" for p in PS]
            for w in W_BITS:
                lines += [f"error {s} {w} {a} {str(b).lower()} |{mc.mult_error(s, w, a, b)}|"
                          for b in (False, True)]
    for a in A_BITS:
        lines += [f"int {w} {a} {acc} {p} {str(mc.mac_int(w, a, acc, p)).lower()}"
                  for w in W_BITS for acc in ACC_BITS for p in PS]
    return lines


@pytest.mark.skipif(shutil.which("ghdl") is None, reason="ghdl not installed")
def test_vhdl_and_python_agree(tmp_path: Path) -> None:
    """Every value of the VHDL package equals the Python mirror's."""
    from mnist_fpga.gen.hdl.sources import rtl_dir  # the mutated copy under tb/mutants

    (tmp_path / "common_tb.vhd").write_text(_testbench())
    out = ""
    for cmd in (["ghdl", "-a", "--std=08", str(rtl_dir() / "mlp_common.vhd"), "common_tb.vhd"],
                ["ghdl", "-e", "--std=08", "common_tb"],
                ["ghdl", "-r", "--std=08", "common_tb"]):
        proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        out = proc.stdout
    got, want = out.splitlines(), _expected()
    assert len(got) == len(want), (len(got), len(want))
    diff = [(g, w) for g, w in zip(got, want, strict=True) if g != w]
    assert not diff, f"{len(diff)} lines differ, first: VHDL {diff[0][0]!r}, Python {diff[0][1]!r}"


def test_latency_of_the_styles() -> None:
    """The figures the docs give: 7 + ceil(log2 P) clocks, "lut" 4 + ceil(log2 P) + ceil(log2 A)."""
    assert mc.mac_latency("inferred", 1, 8) == mc.mac_latency("ecp5", 1, 8) == 7
    assert mc.mac_latency("inferred", 8, 8) == 10
    assert mc.mac_latency("lut", 1, 8) == 7
    assert mc.mac_latency("lut", 4, 2) == 7


@pytest.mark.parametrize(("lut", "tech", "w", "a", "acc", "p", "style"), [
    (False, "generic", 8, 8, 24, 1, "inferred"),
    (True, "generic", 8, 8, 24, 1, "lut"),
    (False, "ecp5", 8, 8, 24, 8, "ecp5"),
    (True, "ecp5", 8, 8, 24, 8, "lut"),          # lut first, as mac_array did
    (True, "generic", 16, 16, 40, 1, "inferred"),  # int16: no integer MAC
    (False, "ecp5", 16, 16, 40, 1, "inferred"),
    (False, "ecp5", 20, 8, 30, 1, "inferred"),   # wider than the block
    (True, "ecp5", 20, 8, 30, 1, "lut"),
    (True, "generic", 8, 1, 12, 1, "inferred"),  # 1-bit inputs: no "lut"
    (False, "ecp5", 15, 15, 31, 2, "inferred"),  # 32-bit lane sums: wide
    (False, "ecp5", 15, 15, 31, 1, "ecp5"),
])
def test_style_for_a_layer(lut: bool, tech: str, w: int, a: int, acc: int, p: int,
                           style: str) -> None:
    """The generator's one mapping of --lut-mult and tech onto MULT_STYLE."""
    assert mc.mult_style_for(lut, tech, w, a, acc, p) == style
