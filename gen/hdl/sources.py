"""The one list of VHDL sources: hand-written units in compile order, then the generated files.

Every flow (simulation, synthesis, the unit benches, the mutants) takes its file list from
here, so that a new RTL unit is named once.
"""

from __future__ import annotations

import os
from pathlib import Path

from mnist_fpga.gen.core.model import QNet
from mnist_fpga.paths import RTL

RTL_ENV = "MNIST_FPGA_RTL"  # a mutated copy of rtl/ for negative tests (tb/mutants)
# hand-written units, in compile order: the layer and its parts, then what the top adds
LAYER_RTL = ("mlp_common", "layer_input", "ecp5_mult", "mac_ctrl", "mac_mult", "mac_tree",
             "mac_acc", "mac_array", "acc_serializer", "mlp_layer")
HAND_RTL = (*LAYER_RTL, "requant", "argmax")
AXIS_RTL = ("result_fifo", "credit_counter", "axis_framer")  # what the AXI4-Stream top adds


def rtl_dir() -> Path:
    """The hand-written RTL: ``rtl/``, or the mutated copy named by ``MNIST_FPGA_RTL``."""
    return Path(os.environ.get(RTL_ENV) or RTL)


def hdl_sources(out: Path, qnet: QNet, rtl: Path | None = None) -> list[Path]:
    """Every VHDL file of the generated network in compile order: hand-written RTL first.

    ``out`` is the generator's output folder; ``rtl`` overrides :func:`rtl_dir` (a mutated
    copy for a negative test).
    """
    hdl = Path(out) / "hdl"
    rtl = Path(rtl) if rtl else rtl_dir()
    gen = [hdl / f"{qnet.name}_pkg.vhd"]
    gen += [hdl / f"{qnet.name}_l{k}_rom.vhd" for k in range(len(qnet.layers))]
    return [rtl / f"{n}.vhd" for n in HAND_RTL] + gen + [hdl / f"{qnet.name}_top.vhd"]


def axis_sources(out: Path, qnet: QNet, rtl: Path | None = None) -> list[Path]:
    """:func:`hdl_sources` plus the AXI4-Stream units and ``<net>_axis``, in order."""
    base = hdl_sources(out, qnet, rtl)
    rtl = base[0].parent
    return base + [rtl / f"{n}.vhd" for n in AXIS_RTL] + [
        Path(out) / "hdl" / f"{qnet.name}_axis.vhd"]
