"""ghdl --synth accepts the generated mlp256 top and infers every weight ROM as a ROM."""

from __future__ import annotations

import shutil

import pytest

from gen.formats import parse_format
from gen.generate import DEFAULT_SAMPLE, ROOT, generate, load_sample
from gen.quant import quantize_file
from gen.synth import expected_roms, synth

pytestmark = pytest.mark.skipif(shutil.which("ghdl") is None, reason="ghdl not installed")


@pytest.mark.parametrize("net", ["mlp256"])
def test_synth_infers_roms(net: str, tmp_path) -> None:
    images, _ = load_sample(DEFAULT_SAMPLE)
    qnet = quantize_file(ROOT / "models" / f"{net}.npz", parse_format("int8"), net,
                         calib_images=images)
    gen_dir = generate(qnet, tmp_path / "gen", f"models/{net}.npz")
    res = synth(qnet, gen_dir, tmp_path / "synth")
    assert res["verilog"].stat().st_size > 0
    for rom in expected_roms(qnet):
        assert rom in res["roms"], f"weight ROM {rom} not inferred; got {res['roms']}"
