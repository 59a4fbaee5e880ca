"""Unit tests of gen.hdl.generate: literals, ROM layout, .coe/.mem, VHDL, output folder, CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mnist_fpga.gen.hdl.generate as generator
from mnist_fpga.gen.core.errors import UserError, cli_main
from mnist_fpga.gen.core.formats import Format
from mnist_fpga.gen.core.model import QLayer, QNet, pixels_to_input
from mnist_fpga.gen.core.quant import quantize_file
from mnist_fpga.gen.hdl.generate import MARKER, generate, pack, rom_words, vhdl_literal
from tests.nets import float_arrays

REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- helpers


def write_float_npz(path: Path, seed: int = 0, sizes: tuple[int, ...] = (784, 16, 10),
                    **override: np.ndarray) -> Path:
    """A small random float network in the weights-file layout (calib for hidden layers)."""
    arrays = float_arrays(np.random.default_rng(seed), sizes)
    arrays.update(override)
    np.savez(path, **arrays)
    return path


def write_sample(path: Path, n: int = 3, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    np.savez(path, images=images, labels=rng.integers(0, 10, n).astype(np.uint8))
    return path


def make_qnet(tmp_path: Path, fmt: Format | None = None, name: str = "net") -> QNet:
    return quantize_file(write_float_npz(tmp_path / "net.npz"), fmt or Format(8, 8), name)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder``: relative path -> bytes."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def signed_field(word: int, n: int, bits: int) -> int:
    """Field n (bits [(n+1)*bits-1 : n*bits]) of ``word``, as two's complement."""
    v = (word >> (n * bits)) & ((1 << bits) - 1)
    return v - (1 << bits) if v >> (bits - 1) else v


def parse_coe(text: str) -> list[str]:
    """A strict little .coe reader: radix 16 header, comma-separated hex words, final ';'."""
    lines = [ln.strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(";")]  # ';' starts a comment
    assert lines[0] == "memory_initialization_radix=16;"
    assert lines[1] == "memory_initialization_vector="
    body = "".join(lines[2:])
    assert body.endswith(";") and body.count(";") == 1, body[-40:]
    words = body[:-1].split(",")
    for w in words:
        assert re.fullmatch(r"[0-9A-F]+", w), w
    return words


def parse_literal(text: str) -> tuple[int, int]:
    """A VHDL bit-string literal ``x"F4"`` or ``10x"3FF"``, or a parenthesised
    concatenation of them (most significant first) -> (width, value)."""
    if text.startswith("(") and text.endswith(")"):
        width = value = 0
        for part in text[1:-1].split(" & "):
            w, v = parse_literal(part)
            width, value = width + w, (value << w) | v
        return width, value
    m = re.fullmatch(r'(\d*)x"([0-9A-F]+)"', text)
    assert m, text
    digits = m.group(2)
    width = int(m.group(1)) if m.group(1) else 4 * len(digits)
    assert len(digits) == (width + 3) // 4
    value = int(digits, 16)
    assert value < 1 << width
    return width, value


# ---------------------------------------------------------------- literals and layout


@pytest.mark.parametrize(
    ("value", "width", "text"),
    [(0xF4, 8, 'x"F4"'), (5, 3, '3x"5"'), (0x3FF, 10, '10x"3FF"'), (1, 1, '1x"1"'),
     (0, 16, 'x"0000"'), (0x1FFFF, 17, '17x"1FFFF"'), (2**64 - 1, 64, 'x"' + "F" * 16 + '"')],
)
def test_vhdl_literal_examples(value: int, width: int, text: str) -> None:
    assert vhdl_literal(value, width) == text


@pytest.mark.parametrize("width", range(1, 14))
def test_vhdl_literal_all_values(width: int) -> None:
    for value in range(1 << width):
        assert parse_literal(vhdl_literal(value, width)) == (width, value)


@pytest.mark.parametrize("width", [2047, 2048, 2049, 2773, 4096, 6145])
def test_vhdl_literal_wide_values_are_split(width: int) -> None:
    """Past 2,048 bits (GHDL >= 3 refuses wider bit strings): chunks of at most 2,048 bits,
    most significant first, that concatenate to the same width and value."""
    rng = np.random.default_rng(width)
    value = int.from_bytes(rng.bytes((width + 7) // 8), "little") & ((1 << width) - 1)
    for v in (value, 0, (1 << width) - 1, 1 << (width - 1)):
        text = vhdl_literal(v, width)
        assert parse_literal(text) == (width, v)
        parts = text[1:-1].split(" & ") if text.startswith("(") else [text]
        assert len(parts) == -(-width // 2048)
        assert all(parse_literal(part)[0] <= 2048 for part in parts)


@pytest.mark.parametrize(("value", "width"), [(16, 4), (-1, 8), (256, 8), (8, 3), (2, 1)])
def test_vhdl_literal_refuses_out_of_range(value: int, width: int) -> None:
    with pytest.raises(ValueError):
        vhdl_literal(value, width)


def test_pack_examples() -> None:
    assert pack([-12], 8) == 0xF4
    assert pack([1, -1, 2], 4) == 0x2F1
    assert pack(np.array([-1, 0, -1]), 3) == 0b111_000_111
    assert pack([], 8) == 0


@pytest.mark.parametrize("bits", [1, 2, 3, 5, 8, 13, 16, 31, 48, 62, 63])
def test_pack_round_trip(bits: int) -> None:
    rng = np.random.default_rng(bits)
    values = rng.integers(-(2 ** (bits - 1)), 2 ** (bits - 1), 23)
    word = pack(values, bits)
    assert word < 1 << (23 * bits)
    assert [signed_field(word, n, bits) for n in range(23)] == values.tolist()


@pytest.mark.parametrize("w_bits", [2, 5, 8, 16])
def test_rom_words_layout(w_bits: int) -> None:
    rng = np.random.default_rng(w_bits)
    qmax = 2 ** (w_bits - 1) - 1
    w = rng.integers(-qmax, qmax + 1, (3, 7))
    layer = QLayer(w=w, b=np.zeros(3, dtype=np.int64), w_bits=w_bits, a_bits=8, acc_bits=20,
                   hidden=False)
    words = rom_words(layer)
    assert len(words) == 7  # one word per input
    for i, word in enumerate(words):
        assert 0 <= word < 1 << (3 * w_bits)
        for n in range(3):  # neuron n at bits [(n+1)W-1 : nW]
            assert signed_field(word, n, w_bits) == w[n, i]
    # explicit: neuron 0 in the low bits
    layer.w = np.array([[1], [-1], [qmax]])
    mask = (1 << w_bits) - 1
    assert rom_words(layer) == [(qmax << 2 * w_bits) | (mask << w_bits) | 1]


# ---------------------------------------------------------------- generated files


@pytest.fixture
def qnet(tmp_path: Path) -> QNet:
    return make_qnet(tmp_path)


def test_coe_and_mem_hold_the_weights(tmp_path: Path, qnet: QNet) -> None:
    out = generate(qnet, tmp_path / "out", "models/net.npz")
    for k, layer in enumerate(qnet.layers):
        width = layer.n_out * layer.w_bits
        coe = (out / "coe" / f"net_l{k}_weights.coe").read_text()
        assert "radix=32" not in coe and 'x"' not in coe  # the original scripts' bugs
        words = parse_coe(coe)
        assert len(words) == layer.n_in
        assert all(len(w) == (width + 3) // 4 for w in words)
        values = [int(w, 16) for w in words]
        assert values == rom_words(layer)
        for i, word in enumerate(values):
            assert [signed_field(word, n, layer.w_bits) for n in range(layer.n_out)] == \
                layer.w[:, i].tolist()
        mem = (out / "mem" / f"net_l{k}_weights.mem").read_text()
        assert mem.endswith("\n")
        lines = mem.splitlines()
        assert all(re.fullmatch(f"[0-9A-F]{{{(width + 3) // 4}}}", ln) for ln in lines)
        assert [int(ln, 16) for ln in lines] == values


@pytest.mark.parametrize("fmt", [Format(8, 8), Format(4, 6), Format(2, 2), Format(16, 12)],
                         ids=lambda f: f.name)
def test_test_inputs_and_widths(tmp_path: Path, fmt: Format) -> None:
    qnet = make_qnet(tmp_path, fmt)
    images = np.random.default_rng(1).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    out = generate(qnet, tmp_path / "out", "net.npz", images)
    x = pixels_to_input(images, fmt.a_bits)
    for i in range(2):
        words = parse_coe((out / "coe" / f"test_input_{i}.coe").read_text())
        assert [int(w, 16) for w in words] == x[i].tolist()
        assert all(len(w) == (fmt.a_bits + 3) // 4 for w in words)
        mem = (out / "mem" / f"test_input_{i}.mem").read_text().splitlines()
        assert [int(w, 16) for w in mem] == x[i].tolist()
    for k, layer in enumerate(qnet.layers):
        words = parse_coe((out / "coe" / f"net_l{k}_weights.coe").read_text())
        assert [int(w, 16) for w in words] == rom_words(layer)
    assert not (out / "coe" / "test_input_2.coe").exists()


def test_vhdl_files(tmp_path: Path, qnet: QNet) -> None:
    out = generate(qnet, tmp_path / "out", "models/net.npz")
    hdl = out / "hdl"
    assert sorted(p.name for p in hdl.iterdir()) == [
        "net_axis.vhd", "net_l0_rom.vhd", "net_l1_rom.vhd", "net_pkg.vhd", "net_top.vhd"]
    header = "-- generated by gen/hdl/generate.py from models/net.npz (int8) - do not edit"
    for p in hdl.iterdir():
        assert p.read_text().splitlines()[0] == header, p.name
    pkg = (hdl / "net_pkg.vhd").read_text()
    for k, layer in enumerate(qnet.layers):
        rom = (hdl / f"net_l{k}_rom.vhd").read_text()
        assert 'attribute rom_style of ROM : constant is "block";' in rom
        assert 'attribute romstyle of ROM : constant is "M20K";' in rom
        assert f"entity net_l{k}_rom is" in rom
        entries = re.findall(r"^\s*(\d+) => (\d*x\"[0-9A-F]+\"),$", rom, re.MULTILINE)
        assert [int(a) for a, _ in entries] == list(range(layer.n_in))
        width = layer.n_out * layer.w_bits
        assert [parse_literal(lit) for _, lit in entries] == [(width, w) for w in
                                                               rom_words(layer)]
        m = re.search(rf"L{k}_BIAS\s*:\s*std_logic_vector\((\d+) - 1 downto 0\) :=\s*"
                      r"(\d*x\"[0-9A-F]+\");", pkg)
        assert m, f"L{k}_BIAS"
        bias_width, bias = parse_literal(m.group(2))
        assert bias_width == int(m.group(1)) == layer.n_out * layer.acc_bits
        assert [signed_field(bias, n, layer.acc_bits) for n in range(layer.n_out)] == \
            layer.b.tolist()
        assert f"L{k}_ACC_BITS  : positive := {layer.acc_bits};" in pkg
        if layer.hidden:
            assert f"L{k}_RQ_MULT   : natural  := {layer.rq_mult};" in pkg
            assert f"L{k}_RQ_SHIFT  : integer  := {layer.rq_shift};" in pkg
    assert "entity net_top is" in (hdl / "net_top.vhd").read_text()
    saved = QNet.load(out / "qnet.json")
    assert saved.to_json() == qnet.to_json()
    assert (out / MARKER).is_file()


def test_generation_is_reproducible(tmp_path: Path) -> None:
    images = np.random.default_rng(3).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    a = generate(make_qnet(tmp_path), tmp_path / "a", "net.npz", images)
    first = snapshot(a)
    generate(make_qnet(tmp_path), tmp_path / "a", "net.npz", images)  # replaces itself
    assert snapshot(a) == first
    b = generate(make_qnet(tmp_path), tmp_path / "sub" / "b", "net.npz", images)
    assert snapshot(b) == first
    # hdl (with the axis top), weights and inputs as coe+mif+mem, json+marker
    assert len(first) == 5 + 3 * 2 + 3 * 2 + 2


# ---------------------------------------------------------------- the output folder


def leftovers(parent: Path, name: str) -> list[str]:
    """Temporary siblings generate() might have left next to ``parent / name``."""
    return [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def test_rerun_replaces_its_files_and_keeps_the_users(tmp_path: Path, qnet: QNet) -> None:
    """A rerun replaces or removes only the files its marker lists; the user's stay as they are.

    The generated part must equal a fresh output in a new folder (the reference)."""
    images = np.random.default_rng(5).integers(0, 256, (2, 28, 28), dtype=np.uint8)
    out = generate(qnet, tmp_path / "out", "net.npz", images)  # 2 test inputs
    listed = json.loads((out / MARKER).read_text())["files"]
    assert sorted(listed) == sorted(set(snapshot(out)) - {MARKER})
    mine = {"notes.txt": b"my notes\n", "hdl/wrapper.vhd": b"-- my board wrapper\n",
            "extra/data.bin": bytes(range(256))}
    for rel, data in mine.items():
        (out / rel).parent.mkdir(exist_ok=True)
        (out / rel).write_bytes(data)
    (out / "empty").mkdir()
    (out / "link").symlink_to("notes.txt")
    (out / "hdl" / "net_top.vhd").write_text("-- edited, although it says do not edit\n")
    generate(qnet, out, "net.npz", images[:1])  # 1 test input: test_input_1.* are stale
    fresh = snapshot(generate(qnet, tmp_path / "fresh", "net.npz", images[:1]))
    now = snapshot(out)
    assert {k: now[k] for k in mine} == mine
    assert {k: v for k, v in now.items() if k not in {*mine, "link"}} == fresh
    assert not any("test_input_1" in k for k in now)
    assert (out / "empty").is_dir() and os.readlink(out / "link") == "notes.txt"
    assert leftovers(tmp_path, "out") == []
    assert oct(out.stat().st_mode & 0o777) == oct(0o755)


def test_rerun_refuses_a_users_file_where_it_would_write(tmp_path: Path, qnet: QNet) -> None:
    images = np.zeros((2, 28, 28), np.uint8)
    out = generate(qnet, tmp_path / "out", "net.npz", images[:1])
    (out / "coe" / "test_input_1.coe").write_text("; mine\n")
    before = snapshot(out)
    with pytest.raises(UserError, match=r"holds coe/test_input_1\.coe, which gen/hdl/generate\.py "
                                        r"did not write; refusing"):
        generate(qnet, out, "net.npz", images)
    assert snapshot(out) == before
    assert leftovers(tmp_path, "out") == []


def test_marker_without_manifest_keeps_all_but_the_new_files(tmp_path: Path, qnet: QNet) -> None:
    """A folder of a version before the manifest: only the files written now count as ours."""
    out = generate(qnet, tmp_path / "out", "net.npz")
    (out / MARKER).write_text(json.dumps({"generator": "gen/hdl/generate.py", "source": "x"}))
    (out / "hdl" / "mine.vhd").write_text("-- mine\n")
    generate(qnet, out, "net.npz")
    assert (out / "hdl" / "mine.vhd").read_text() == "-- mine\n"
    assert "hdl/mine.vhd" not in json.loads((out / MARKER).read_text())["files"]


def test_empty_existing_folder_is_used(tmp_path: Path, qnet: QNet) -> None:
    (tmp_path / "out").mkdir()
    generate(qnet, tmp_path / "out", "net.npz")
    assert (tmp_path / "out" / MARKER).is_file()


def test_user_folder_is_refused_and_untouched(tmp_path: Path, qnet: QNet) -> None:
    user = tmp_path / "mine"
    (user / "hdl").mkdir(parents=True)
    (user / "notes.txt").write_text("precious")
    (user / "hdl" / "net_pkg.vhd").write_text("-- hand written")
    before = snapshot(user)
    with pytest.raises(UserError, match=r"not written by gen/hdl/generate\.py; refusing"):
        generate(qnet, user, "net.npz")
    assert snapshot(user) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "net.npz"]


def test_output_path_is_a_file(tmp_path: Path, qnet: QNet) -> None:
    (tmp_path / "out").write_text("a file")
    with pytest.raises(UserError, match="is not a folder"):
        generate(qnet, tmp_path / "out", "net.npz")
    assert (tmp_path / "out").read_text() == "a file"


def _boom(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


@pytest.mark.parametrize("victim", ["write_mem", "write_coe", "write_mif", "render_network"])
def test_failed_generation_leaves_nothing(tmp_path: Path, qnet: QNet,
                                          monkeypatch: pytest.MonkeyPatch, victim: str) -> None:
    monkeypatch.setattr(generator, victim, _boom)
    with pytest.raises(RuntimeError, match="boom"):
        generate(qnet, tmp_path / "out", "net.npz")
    assert not (tmp_path / "out").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]  # no temporary folder


def test_failed_generation_keeps_previous_output(tmp_path: Path, qnet: QNet,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    out = generate(qnet, tmp_path / "out", "net.npz")
    before = snapshot(out)

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(generator, "write_mem", disk_full)
    with pytest.raises(UserError, match="cannot write output folder"):
        generate(qnet, out, "net.npz")
    assert snapshot(out) == before
    assert leftovers(tmp_path, "out") == []


# ---------------------------------------------------------------- the command line


def cli_args(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "mnist_fpga.gen.hdl.generate", *map(str, args)]


def _nan_weights(folder: Path) -> Path:
    w0 = np.random.default_rng(0).normal(0, 0.1, (16, 784)).astype(np.float32)
    w0[3, 5] = np.nan
    return write_float_npz(folder / "nan.npz", W0=w0)


# case: (weights, format, expected message); each run in its own folder
CLI_ERRORS = {
    "int1": ("good", "int1", r"unsupported weight width 1 in 'int1': widths must be 2\.\.16"),
    "int17": ("good", "int17", r"unsupported weight width 17 in 'int17'"),
    "foo": ("good", "foo", r"unknown number format 'foo'"),
    "missing-weights": ("missing", "int8", r"weights file .*nope\.npz does not exist"),
    "nan-weights": ("nan", "int8", r"W0 contains NaN or infinite values"),
}


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, tuple]]:
    """Every subprocess case of this module, run in parallel (a process start costs ~0.5 s).

    Returns ``{case: (its folder, (returncode, stdout, stderr))}``.
    """
    started = {}
    for case in [*CLI_ERRORS, "ok", "user-folder"]:
        folder = tmp_path_factory.mktemp(case)
        sample = write_sample(folder / "sample.npz")
        weights = write_float_npz(folder / "net.npz")
        out, fmt = folder / "build" / "out", "int8"
        if case in CLI_ERRORS:
            kind, fmt, _ = CLI_ERRORS[case]
            weights = {"good": weights, "missing": folder / "nope.npz",
                       "nan": _nan_weights(folder)}[kind]
        elif case == "ok":
            fmt = "w4a8"
        else:
            out.mkdir(parents=True)
            (out / "keep.txt").write_text("mine")
        extra = ["--test-inputs", "2"] if case == "ok" else []
        args = cli_args("--weights", weights, "--format", fmt, "--out", out, "--images", sample,
                        *extra)
        started[case] = (folder, subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE,
                                                  stderr=subprocess.PIPE, text=True))
    results = {}
    for case, (folder, proc) in started.items():
        stdout, stderr = proc.communicate(timeout=120)
        results[case] = (folder, (proc.returncode, stdout, stderr))
    return results


@pytest.mark.parametrize("case", CLI_ERRORS, ids=list(CLI_ERRORS))
def test_cli_bad_input(cli_runs: dict, case: str) -> None:
    folder, (rc, stdout, stderr) = cli_runs[case]
    assert rc == 2
    assert stdout == ""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert re.search(CLI_ERRORS[case][2], lines[0]), lines[0]
    assert not (folder / "build" / "out").exists()
    assert not (folder / "build").exists() or not any((folder / "build").iterdir())


def test_cli_generates(cli_runs: dict) -> None:
    folder, (rc, stdout, stderr) = cli_runs["ok"]
    out = folder / "build" / "out"
    assert rc == 0, stderr
    assert stderr == ""
    assert stdout.strip() == f"generated net (w4a8) in {out}"
    assert (out / MARKER).is_file()
    top = (out / "hdl" / "net_top.vhd").read_text()
    assert top.splitlines()[0] == \
        "-- generated by gen/hdl/generate.py from net.npz (w4a8) - do not edit"
    assert (out / "coe" / "test_input_1.coe").is_file()
    assert not (out / "coe" / "test_input_2.coe").exists()
    assert QNet.load(out / "qnet.json").to_json() == quantize_file(
        folder / "net.npz", Format(4, 8), "net").to_json()
    assert leftovers(out.parent, "out") == []


def test_cli_refuses_user_folder(cli_runs: dict) -> None:
    folder, (rc, _, stderr) = cli_runs["user-folder"]
    out = folder / "build" / "out"
    assert rc == 2
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: output folder"), stderr
    assert snapshot(out) == {"keep.txt": b"mine"}
    assert leftovers(out.parent, "out") == []


def _truncated_sample(folder: Path) -> Path:
    data = write_sample(folder / "s.npz").read_bytes()
    (folder / "cut.npz").write_bytes(data[: len(data) // 2])
    return folder / "cut.npz"


def _npy_sample(folder: Path) -> Path:
    path = folder / "one.npz"
    with path.open("wb") as f:
        np.save(f, np.zeros((3, 28, 28), dtype=np.uint8))
    return path


def _no_labels(folder: Path) -> Path:
    np.savez(folder / "nolabels.npz", images=np.zeros((3, 28, 28), dtype=np.uint8))
    return folder / "nolabels.npz"


def _float_images(folder: Path) -> Path:
    np.savez(folder / "f.npz", images=np.zeros((3, 28, 28)), labels=np.zeros(3))
    return folder / "f.npz"


# more bad inputs, through main() in this process: (extra arguments, images, message)
MAIN_ERRORS = {
    "w8a1": (["--format", "w8a1"], None, r"unsupported activation width 1"),
    "name-double-underscore": (["--name", "my__net"], None, r"'my__net' is not a valid VHDL"),
    "name-trailing-underscore": (["--name", "net_"], None, r"not a valid VHDL identifier"),
    "name-digit-first": (["--name", "2net"], None, r"not a valid VHDL identifier"),
    "name-non-ascii": (["--name", "r\u00e9seau"], None, r"not a valid VHDL identifier"),
    "images-missing": ([], lambda f: f / "none.npz", r"image sample .*none\.npz does not exist"),
    "images-truncated": ([], _truncated_sample, r"is not a readable \.npz"),
    "images-npy": ([], _npy_sample, r"single array, not a \.npz"),
    "images-no-labels": ([], _no_labels, r"'labels'"),
    "images-float": ([], _float_images, r"images must be uint8"),
}


@pytest.mark.parametrize("case", MAIN_ERRORS, ids=list(MAIN_ERRORS))
def test_main_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                        capsys: pytest.CaptureFixture[str], case: str) -> None:
    extra, images, message = MAIN_ERRORS[case]
    sample = images(tmp_path) if images else write_sample(tmp_path / "sample.npz")
    out = tmp_path / "out"
    monkeypatch.setattr(sys, "argv", ["gen.hdl.generate", "--weights",
                                      str(write_float_npz(tmp_path / "net.npz")),
                                      "--out", str(out), "--images", str(sample), *extra])
    with pytest.raises(SystemExit) as info:
        cli_main(generator.main)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert re.search(message, lines[0]), lines[0]
    assert not out.exists() and leftovers(tmp_path, "out") == []


def test_main_accepts_good_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sample = write_sample(tmp_path / "sample.npz")
    weights = write_float_npz(tmp_path / "net.npz")
    for name in ["mlp256", "zero", "a_b_c", "Net2"]:
        monkeypatch.setattr(sys, "argv", ["gen.hdl.generate", "--weights", str(weights), "--name",
                                          name, "--out", str(tmp_path / name), "--images",
                                          str(sample)])
        assert generator.main() == 0
        assert (tmp_path / name / "hdl" / f"{name}_top.vhd").is_file()
