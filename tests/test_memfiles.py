"""The weight memory files (.coe, .mif, .mem) parse back to the quantized model's integers.

Each format has its own small reader here, written from the format's definition and
independent of gen/hdl/generate.py's writers; the words are decoded with the ROM layout of
docs/architecture.md (word j, neuron n, lane q: w(n, j*P+q) at field n*P+q, two's
complement, zero past the last input) and compared with ``QNet.layers[k].w``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from mnist_fpga.gen.core.formats import parse_format
from mnist_fpga.gen.core.model import QNet, pixels_to_input
from mnist_fpga.gen.core.quant import quantize_file
from mnist_fpga.gen.hdl.generate import generate
from tests.nets import float_arrays

REPO = Path(__file__).resolve().parent.parent
HEX = re.compile(r"[0-9A-Fa-f]+")


def read_coe(path: Path) -> list[int]:
    """Xilinx .coe: ``;`` comments, ``memory_initialization_radix=16;``, comma-separated vector."""
    text = "\n".join(line.split(";", 1)[0] if line.lstrip().startswith(";") else line
                     for line in path.read_text().splitlines())
    m = re.fullmatch(
        r"\s*memory_initialization_radix\s*=\s*16\s*;\s*"
        r"memory_initialization_vector\s*=\s*([0-9A-Fa-f,\s]*);\s*", text)
    assert m, f"{path.name}: not a radix-16 .coe"
    words = [w.strip() for w in m.group(1).split(",")]
    assert all(HEX.fullmatch(w) for w in words), path.name
    return [int(w, 16) for w in words]


def read_mif(path: Path) -> tuple[list[int], int]:
    """Intel .mif: header ``KEY=VALUE;`` lines, ``CONTENT BEGIN``, ``addr : data;``, ``END;``.

    Returns the words (every address exactly once) and WIDTH.
    """
    lines = [ln.split("--", 1)[0].strip() for ln in path.read_text().splitlines()]
    lines = [ln for ln in lines if ln]
    begin = lines.index("CONTENT BEGIN")
    head = dict(re.fullmatch(r"(\w+)\s*=\s*(\w+);", ln).groups() for ln in lines[:begin])
    assert head["ADDRESS_RADIX"] == "UNS" and head["DATA_RADIX"] == "HEX", head
    width, depth = int(head["WIDTH"]), int(head["DEPTH"])
    assert lines[-1] == "END;"
    content: dict[int, int] = {}
    for ln in lines[begin + 1 : -1]:
        m = re.fullmatch(r"(\d+)\s*:\s*([0-9A-Fa-f]+);", ln)
        assert m, f"{path.name}: bad content line {ln!r}"
        addr, value = int(m.group(1)), int(m.group(2), 16)
        assert addr not in content and value < 1 << width
        content[addr] = value
    assert sorted(content) == list(range(depth)), f"{path.name}: addresses not 0..DEPTH-1"
    return [content[a] for a in range(depth)], width


def read_mem(path: Path) -> list[int]:
    """``$readmemh`` text: one hex word per line, no address markers."""
    lines = path.read_text().splitlines()
    assert all(HEX.fullmatch(ln) for ln in lines), path.name
    return [int(ln, 16) for ln in lines]


def decode(words: list[int], n_out: int, n_in: int, p: int, bits: int) -> np.ndarray:
    """Weights (n_out, n_in) from ROM words; asserts that the padding lanes are 0."""
    beats = -(-n_in // p)
    assert len(words) == beats
    w = np.zeros((n_out, beats * p), dtype=np.int64)
    for j, word in enumerate(words):
        assert word >> (n_out * p * bits) == 0, "bits above the last field"
        for n in range(n_out):
            for q in range(p):
                v = (word >> ((n * p + q) * bits)) & ((1 << bits) - 1)
                w[n, j * p + q] = v - (1 << bits) if v >> (bits - 1) else v
    assert not w[:, n_in:].any(), "weights past the last input must be 0"
    return w[:, :n_in]


def check_folder(out: Path, qnet: QNet, p: int) -> None:
    """Every layer's .coe, .mif and .mem decode to ``qnet``'s integer weights."""
    for k, layer in enumerate(qnet.layers):
        stem = f"{qnet.name}_l{k}_weights"
        width = layer.n_out * p * layer.w_bits
        mif, mif_width = read_mif(out / "mif" / f"{stem}.mif")
        assert mif_width == width
        for words in (read_coe(out / "coe" / f"{stem}.coe"), mif,
                      read_mem(out / "mem" / f"{stem}.mem")):
            got = decode(words, layer.n_out, layer.n_in, p, layer.w_bits)
            np.testing.assert_array_equal(got, layer.w)


@pytest.mark.parametrize("p", [1, 3])  # 3 divides neither 784 nor 16
@pytest.mark.parametrize("fmt", ["int8", "int4", "w3a5", "int16"])
def test_memory_files_parse_back(tmp_path: Path, fmt: str, p: int) -> None:
    weights = tmp_path / "net.npz"
    np.savez(weights, **float_arrays(np.random.default_rng(5), (784, 16, 10)))
    qnet = quantize_file(weights, parse_format(fmt), "net")
    assert any((layer.w < 0).any() and (layer.w > 0).any() for layer in qnet.layers)
    images = np.random.default_rng(6).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    out = generate(qnet, tmp_path / "out", "net.npz", images, p=p)
    check_folder(out, qnet, p)
    x = pixels_to_input(images, qnet.fmt.a_bits)
    for i in range(2):  # test inputs: one unsigned activation per word
        mif, width = read_mif(out / "mif" / f"test_input_{i}.mif")
        assert width == qnet.fmt.a_bits
        for words in (read_coe(out / "coe" / f"test_input_{i}.coe"), mif,
                      read_mem(out / "mem" / f"test_input_{i}.mem")):
            assert words == x[i].tolist()


def test_committed_model_parses_back(tmp_path: Path) -> None:
    """mlp256 as ``make gen`` writes it (int8, P=1) and with P=5 (divides neither 784 nor 256)."""
    for p in (1, 5):
        qnet = quantize_file(REPO / "models" / "mlp256.npz", parse_format("int8"), "mlp256")
        out = generate(qnet, tmp_path / f"p{p}", "models/mlp256.npz", p=p)
        check_folder(out, qnet, p)
