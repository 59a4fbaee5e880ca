"""The AXI4-Stream top ``<net>_axis`` (docs/integration.md): its generics and its files.

``gen.hdl.generate.render_network`` renders it from ``templates/axis_top.vhd.j2`` beside
``<net>_top``, which it wraps; the hand-written units it instantiates are in ``rtl/``.
"""

from __future__ import annotations

from dataclasses import dataclass

from jinja2 import Environment

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.gen.core.model import QNet
from mnist_fpga.gen.hdl.memories import class_bits


@dataclass(frozen=True)
class AxisConfig:
    """Generic defaults of ``<net>_axis``; Vivado can change them in a block design too."""

    depth: int | None = None  # RESULT_DEPTH; None: default_axis_depth()
    batch: bool = False  # TLAST_BATCH: s_axis tlast ends a batch of images, not each image

    def __post_init__(self) -> None:
        if self.depth is not None and (
                isinstance(self.depth, bool) or not isinstance(self.depth, int)
                or self.depth < 1):
            raise UserError(f"AXI4-Stream result depth {self.depth!r}: give an integer >= 1")


def default_axis_depth(qnet: QNet) -> int:
    """RESULT_DEPTH of ``<net>_axis``: more than the images ``<net>_top`` can hold at once.

    Each layer holds at most two images (one accumulating, one in its holding register),
    so with a consumer that is always ready the credit scheme never stalls the input.
    """
    return max(8, 2 * len(qnet.layers) + 2)


def render_axis(env: Environment, common: dict, qnet: QNet, p: int,
                axis: AxisConfig | None = None) -> str:
    """The text of ``<net>_axis.vhd``; ``p`` is layer 0's inputs per clock."""
    axis = axis or AxisConfig()
    return env.get_template("axis_top.vhd.j2").render(
        **common, entity=f"{qnet.name}_axis", top=f"{qnet.name}_top", p=p,
        beats=-(-qnet.layers[0].n_in // p), out_bytes=-(-class_bits(qnet.n_classes) // 8),
        depth=axis.depth or default_axis_depth(qnet), batch=axis.batch,
    )
