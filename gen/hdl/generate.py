"""Generator: a quantized network -> weight ROMs, network package and top (VHDL), .coe/.mif/.mem.

Usage::

    mnist-fpga gen --weights models/mlp256.npz --format int8 --out build/gen/mlp256_int8
    mnist-fpga gen --qnet my_qnet.json --out build/gen/my_net

``--qnet`` takes a quantized network as ``qnet.json`` (one this command wrote, or one made
by hand) and generates it as it is: no quantization, the same legality check
(gen/core/legal.py, docs/numerics.md section 7).

The output folder is written as a whole (into a temporary sibling, then renamed),
so a failed run never leaves files that look valid. A folder is only replaced if
it carries our marker file, which lists the files this command wrote (its manifest):
a user's folder is never overwritten, and the files a user added to one of ours (a
wrapper, notes) are carried over into the new folder untouched. Only the listed files
are replaced or removed (they say "do not edit"); a user's file where the new run
would write one is refused.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from mnist_fpga.gen.core.errors import UserError, check_creatable, cli_main
from mnist_fpga.gen.core.formats import parse_format
from mnist_fpga.gen.core.legal import acc_bits_for, check_qnet, clamp_per_layer
from mnist_fpga.gen.core.model import QLayer, QNet, check_images, pixels_to_input
from mnist_fpga.gen.core.quant import (
    accuracy_warning,
    int_to_vhdl_hex,
    load_float_weights,
    quantize_file,
)
from mnist_fpga.gen.data.sample import load_sample
from mnist_fpga.gen.hdl.axis import AxisConfig, render_axis
from mnist_fpga.gen.hdl.memories import DP16KD_TDP, class_bits, clog2
from mnist_fpga.gen.hdl.mlp_common import mult_style_for
from mnist_fpga.paths import DEFAULT_SAMPLE
from mnist_fpga.paths import PKG_ROOT as ROOT

TECH_CHOICES = ("generic", "ecp5")  # device-specific code: see render_network
TEMPLATES = Path(__file__).resolve().parent / "templates"
MARKER = ".mnist-fpga-output"
_VHDL_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*")  # VHDL basic identifier


# GHDL refuses bit-string literals wider than 2,048 bits since 3.0 (4.1: "bit string
# size is too large (> 2048)"); wider values are written as a concatenation of chunks.
LITERAL_MAX_BITS = 2048


def vhdl_literal(value: int, width: int) -> str:
    """A bit-string literal of ``width`` bits for a non-negative ``value`` (VHDL-2008 sized).

    Wider than :data:`LITERAL_MAX_BITS`: a parenthesised concatenation of literals of at
    most that many bits, the most significant first, e.g. ``(5x"1F" & x"00...")``.
    """
    value = int(value)
    if not 0 <= value < 1 << width:  # never truncate silently
        raise ValueError(f"{value} does not fit in {width} unsigned bits")
    if width > LITERAL_MAX_BITS:
        chunks = []
        for lo in range(0, width, LITERAL_MAX_BITS):
            bits = min(LITERAL_MAX_BITS, width - lo)
            chunks.append(vhdl_literal((value >> lo) & ((1 << bits) - 1), bits))
        return "(" + " & ".join(reversed(chunks)) + ")"
    digits = int_to_vhdl_hex(value, width + 1)[-((width + 3) // 4):]  # unsigned view
    return f'x"{digits}"' if width % 4 == 0 else f'{width}x"{digits}"'


def pack(values: list[int] | np.ndarray, bits: int) -> int:
    """Concatenate two's-complement fields, element 0 in the least significant bits."""
    arr = np.asarray(values).reshape(-1)
    if arr.size == 0:
        return 0
    if bits <= 62 and arr.dtype.kind in "iu":  # the ROM words: vectorised (mlp256: 8x faster)
        field_bits = (arr.astype(np.int64)[:, None] >> np.arange(bits)) & 1  # two's complement
        return int.from_bytes(np.packbits(field_bits.astype(np.uint8).reshape(-1),
                                          bitorder="little").tobytes(), "little")
    mask = (1 << bits) - 1
    word = 0
    for n, v in enumerate(arr.tolist()):
        word |= (int(v) & mask) << (n * bits)
    return word


def rom_words(layer: QLayer, p: int = 1, pe: int | None = None) -> list[int]:
    """One word per fold f and beat j: w(f*pe+e, j*p+q) of lane e, input q at field e*p+q.

    ``pe`` neurons are computed in parallel (default and any value >= n_out: all of
    them, one fold); the word of fold f, beat j sits at address f*beats + j with
    beats = ceil(n_in/p). With one fold and ``p = 1`` neuron n sits at bits
    [(n+1)W-1 : nW]. Inputs past ``n_in`` and neurons past ``n_out`` get weight 0.
    """
    pe = layer.n_out if pe is None else min(pe, layer.n_out)
    beats, folds = -(-layer.n_in // p), -(-layer.n_out // pe)
    w = np.zeros((folds * pe, beats * p), dtype=np.int64)
    w[: layer.n_out, : layer.n_in] = layer.w
    w = w.reshape(folds, pe, beats, p)  # [f, e, j, q]
    return [pack(w[f, :, j, :].reshape(-1), layer.w_bits)
            for f in range(folds) for j in range(beats)]


def parallelism(qnet: QNet, p: int | list[int]) -> list[int]:
    """Inputs per clock of every layer from one value or a per-layer list.

    Each is clamped to its layer's input count: a narrow layer takes all its inputs in
    one beat (gen/core/legal.py).
    """
    return clamp_per_layer(p, [layer.n_in for layer in qnet.layers], "parallelism")


def neurons_parallel(qnet: QNet, pe: int | list[int] | None) -> list[int]:
    """Neurons in parallel (PE) of every layer, clamped to its neuron count.

    ``None`` means every layer fully parallel (PE = N_OUT); otherwise one value for all
    layers or one per layer.
    """
    if pe is None:
        return [layer.n_out for layer in qnet.layers]
    pes = [pe] * len(qnet.layers) if isinstance(pe, int) else list(pe)
    if len(pes) != len(qnet.layers) or any(not isinstance(v, int) or v < 1 for v in pes):
        raise UserError(f"neurons in parallel (PE) {pe!r}: give one integer >= 1 or one per "
                        f"layer ({len(qnet.layers)} layers)")
    return [min(v, layer.n_out) for v, layer in zip(pes, qnet.layers, strict=True)]


def write_coe(path: Path, words: list[int], width: int) -> None:
    """Xilinx .coe: radix 16, comma-separated, final semicolon."""
    digits = (width + 3) // 4
    body = ",\n".join(f"{w:0{digits}X}" for w in words)
    path.write_text(
        f"; {path.name}: {len(words)} words of {width} bits\n"
        "memory_initialization_radix=16;\n"
        f"memory_initialization_vector=\n{body};\n"
    )


def write_mif(path: Path, words: list[int], width: int) -> None:
    """Intel (Quartus) .mif: unsigned decimal addresses, hex data, one word per line."""
    digits = (width + 3) // 4
    body = "".join(f"  {a} : {w:0{digits}X};\n" for a, w in enumerate(words))
    path.write_text(
        f"-- {path.name}: {len(words)} words of {width} bits\n"
        f"WIDTH={width};\nDEPTH={len(words)};\n"
        "ADDRESS_RADIX=UNS;\nDATA_RADIX=HEX;\n"
        f"CONTENT BEGIN\n{body}END;\n"
    )


def write_mem(path: Path, words: list[int], width: int) -> None:
    """$readmemh-style .mem: one hex word per line."""
    digits = (width + 3) // 4
    path.write_text("".join(f"{w:0{digits}X}\n" for w in words))


@dataclass
class LayerView:
    """What the templates need of one layer."""

    k: int
    layer: QLayer
    p: int  # inputs per clock
    q: int  # outputs per clock (the next layer's p; 1 for the last layer)
    pe: int  # neurons in parallel (<= n_out)
    addr_bits: int
    rom_entity: str
    bias_bits: int
    bias: str
    acc_bits_min: int = 2  # from the integer weights (numerics.md 3)
    mult_style: str = "inferred"  # mac_mult's MULT_STYLE (gen.hdl.mlp_common.mult_style_for)
    per_neuron: bool = False  # requantization constants per neuron (flat vectors below)
    mult_bits: int = 16
    mults: str = ""
    shift_bits: int = 8
    shifts: str = ""


def requant_view(layer: QLayer) -> dict:
    """Requantizer constants of a hidden layer for the templates.

    Per-neuron shifts are signed fields just wide enough for the layer's shifts.
    """
    mults = np.atleast_1d(layer.rq_mult).tolist()
    shifts = np.atleast_1d(layer.rq_shift).tolist()
    mult_bits = max(1, max(mults).bit_length())
    if not isinstance(layer.rq_mult, list):  # one integer; a list is per neuron (legal.rq_values)
        return {"mult_bits": mult_bits}
    shift_bits = 1 + max(max(s.bit_length() for s in shifts), 1)
    return {
        "per_neuron": True, "mult_bits": mult_bits, "shift_bits": shift_bits,
        "mults": vhdl_literal(pack(mults, mult_bits), len(mults) * mult_bits),
        "shifts": vhdl_literal(pack(shifts, shift_bits), len(shifts) * shift_bits),
    }


@functools.cache
def _env() -> Environment:
    """One environment per process: it keeps the compiled templates (compiling them was
    40 ms of every generated network) and reloads a template whose file changed."""
    return Environment(
        loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined,
        keep_trailing_newline=True, trim_blocks=False, autoescape=False,
    )


def rom_slice_bits(addr_bits: int) -> int:
    """Width of a ROM slice one DP16KD deep for a ROM of 2**addr_bits words."""
    return max([w for d, w in DP16KD_TDP if d >= 1 << addr_bits], default=1)


def rom_slices(words: list[int], width: int, addr_bits: int) -> list[dict]:
    """The ROM cut into slices of :func:`rom_slice_bits` bits (the last one narrower):
    ``lo``, ``bits`` and the VHDL ``lines`` of each slice's words (8 per line)."""
    step = rom_slice_bits(addr_bits)
    out = []
    for lo in range(0, width, step):
        bits = min(step, width - lo)
        lits = [vhdl_literal((w >> lo) & ((1 << bits) - 1), bits) for w in words]
        out.append({"lo": lo, "bits": bits,
                    "lines": [", ".join(lits[i:i + 8]) for i in range(0, len(lits), 8)]})
    return out


def render_network(
    qnet: QNet, source: str, fault: tuple[QNet, str] | None = None, p: int | list[int] = 1,
    pe: int | list[int] | None = None, lut_mult: bool = False,
    axis: AxisConfig | None = None, tech: str = "generic",
) -> dict[str, str]:
    """Render every VHDL file of ``qnet``: ``{file name: text}``.

    ``fault`` (negative tests only, tb/faults.py) is a network whose weights and biases go
    into the ROMs and package instead of ``qnet``'s, and its description for the header.
    ``p`` inputs and ``pe`` neurons per clock (see :func:`rom_words`); ``lut_mult``
    builds the products from adders, one register per level, instead of DSP multipliers
    (MULT_STYLE "lut"); ``tech="ecp5"`` (the ECP5 synthesis flow) puts them in ECP5
    multiplier blocks with their registers (MULT_STYLE "ecp5"; both per layer where the
    widths allow, :func:`gen.hdl.mlp_common.mult_style_for`) and splits each weight ROM into
    slices one block RAM deep (:func:`rom_slice_bits`).
    ``axis`` sets the defaults of the AXI4-Stream top's generics.
    """
    env = _env()
    header = (
        f"-- generated by gen/hdl/generate.py from {source} ({qnet.fmt.name}) - do not edit"
    )
    check_qnet(qnet)
    if fault is not None:
        qnet, what = fault
        check_qnet(qnet)
        header += f"\n-- FAULT INJECTED for a negative test: {what}"
    ps = parallelism(qnet, p)
    pes = neurons_parallel(qnet, pe)
    if tech not in TECH_CHOICES:
        raise UserError(f"tech={tech!r}: choose one of {', '.join(TECH_CHOICES)}")
    views = []
    for k, layer in enumerate(qnet.layers):
        bias_bits = layer.n_out * layer.acc_bits
        folds = -(-layer.n_out // pes[k])
        views.append(LayerView(
            k=k, layer=layer, p=ps[k], q=ps[k + 1] if k + 1 < len(ps) else 1, pe=pes[k],
            addr_bits=clog2(folds * -(-layer.n_in // ps[k])),
            rom_entity=f"{qnet.name}_l{k}_rom", bias_bits=bias_bits,
            bias=vhdl_literal(pack(layer.b, layer.acc_bits), bias_bits),
            acc_bits_min=acc_bits_for(layer.w, layer.b, (1 << layer.a_bits) - 1, layer.w_bits),
            mult_style=mult_style_for(lut_mult, tech, layer.w_bits, layer.a_bits,
                                      layer.acc_bits, ps[k]),
            **(requant_view(layer) if layer.hidden else {}),
        ))
    files = {}
    for v in views:
        width = v.pe * v.p * v.layer.w_bits
        ints = rom_words(v.layer, v.p, v.pe)
        words = [vhdl_literal(w, width) for w in ints]
        slices = rom_slices(ints, width, v.addr_bits) if tech == "ecp5" else []
        files[f"{v.rom_entity}.vhd"] = env.get_template("rom.vhd.j2").render(
            header=header, k=v.k, layer=v.layer, entity=v.rom_entity, p=v.p, pe=v.pe,
            beats=-(-v.layer.n_in // v.p),
            addr_bits=v.addr_bits, word_bits=width, words=words, slices=slices,
        )
    pkg = f"{qnet.name}_pkg"
    common = dict(header=header, net=qnet, layers=views, pkg=pkg)
    files[f"{pkg}.vhd"] = env.get_template("pkg.vhd.j2").render(
        **common, class_bits=class_bits(qnet.n_classes),
    )
    files[f"{qnet.name}_top.vhd"] = env.get_template("top.vhd.j2").render(
        **common, entity=f"{qnet.name}_top", a_bits=qnet.fmt.a_bits,
        n_pixels=qnet.layers[0].n_in,
    )
    files[f"{qnet.name}_axis.vhd"] = render_axis(env, common, qnet, ps[0], axis)
    return files


def check_net_name(name: str) -> None:
    """The network name prefixes every entity: it must be a VHDL basic identifier."""
    if not isinstance(name, str) or not _VHDL_NAME.fullmatch(name):
        raise UserError(
            f"network name {name!r} is not a valid VHDL identifier "
            "(ASCII letter first, then letters, digits and single underscores, no trailing _)"
        )


def _check_out_dir(out: Path) -> None:
    """Refuse to replace anything that is not a previous output of ours."""
    check_creatable(out, "output folder")
    if out.exists():
        if not out.is_dir():
            raise UserError(f"output path {out} exists and is not a folder")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise UserError(
                f"output folder {out} exists and was not written by gen/hdl/generate.py; "
                "refusing to overwrite it (choose another --out or remove it)"
            )


def _manifest(folder: Path) -> set[str] | None:
    """The files (POSIX paths relative to ``folder``) its marker says a previous run wrote.

    None without a list (no marker, or one of a version before the manifest).
    """
    try:
        files = json.loads((folder / MARKER).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return {f for f in files if isinstance(f, str)} if isinstance(files, list) else None


def _carry_over(out: Path, tmp: Path, ours: set[str]) -> None:
    """Hard-link (or copy) every file and folder of ``out`` that is not in ``ours`` into
    ``tmp``, the new output; refuse one that would take the place of a new file."""
    for top, dirs, files in os.walk(out):
        here = Path(top)
        for name in [d for d in dirs if (here / d).is_symlink()]:  # a link, not a folder
            dirs.remove(name)
            files.append(name)
        for name in dirs + files:
            src = here / name
            rel = src.relative_to(out)
            dst = tmp / rel
            is_dir = name in dirs
            if not is_dir and (rel.as_posix() in ours or rel.as_posix() == MARKER):
                continue
            if dst.is_symlink() or (dst.exists() and not (is_dir and dst.is_dir())):
                raise UserError(
                    f"output folder {out} holds {rel.as_posix()}, which gen/hdl/generate.py did "
                    "not write; refusing to overwrite it (move it away or choose another --out)"
                )
            if is_dir:
                dst.mkdir(exist_ok=True)
            elif src.is_symlink():
                os.symlink(os.readlink(src), dst)
            else:
                try:
                    os.link(src, dst)  # the same file: nothing copied, nothing lost
                except FileExistsError:
                    raise
                except OSError:  # a file system without hard links
                    shutil.copy2(src, dst)


def _swap_in(tmp: Path, out: Path) -> None:
    """Rename ``tmp`` to ``out``; an existing ``out`` is moved aside first, then deleted
    (it is put back if the rename fails)."""
    if not out.exists():
        tmp.rename(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    out.replace(old)  # onto the empty folder mkdtemp made
    try:
        tmp.rename(out)
    except OSError:
        old.rename(out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def generate(
    qnet: QNet, out: Path, source: str, images: np.ndarray | None = None,
    fault: tuple[QNet, str] | None = None, p: int | list[int] = 1,
    pe: int | list[int] | None = None, lut_mult: bool = False, axis: AxisConfig | None = None,
    tech: str = "generic",
) -> Path:
    """Write all outputs for ``qnet`` to ``out`` (replaced as a whole). Returns ``out``.

    Files of a previous output that its marker does not list (the user's) are kept.

    ``qnet.json`` is always the true model, also when a ``fault`` changes the RTL.
    ``p`` is the inputs per clock, ``pe`` the neurons in parallel (default all), each
    one for all layers or one per layer. ``tech``: see :func:`render_network`.
    """
    out = Path(out)
    check_qnet(qnet)
    ps = parallelism(qnet, p)
    pes = neurons_parallel(qnet, pe)
    _check_out_dir(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise UserError(f"cannot write output folder {out}: {exc.strerror}") from None
    try:
        hdl, coe, mif, mem = tmp / "hdl", tmp / "coe", tmp / "mif", tmp / "mem"
        for d in (hdl, coe, mif, mem):
            d.mkdir()
        for name, text in render_network(qnet, source, fault, ps, pes, lut_mult,
                                         axis, tech).items():
            (hdl / name).write_text(text)
        for k, layer in enumerate(qnet.layers):
            words, width = rom_words(layer, ps[k], pes[k]), pes[k] * ps[k] * layer.w_bits
            write_coe(coe / f"{qnet.name}_l{k}_weights.coe", words, width)
            write_mif(mif / f"{qnet.name}_l{k}_weights.mif", words, width)
            write_mem(mem / f"{qnet.name}_l{k}_weights.mem", words, width)
        if images is not None:
            x = pixels_to_input(check_images(images), qnet.fmt.a_bits)
            for i, row in enumerate(x):
                words = [int(v) for v in row]
                write_coe(coe / f"test_input_{i}.coe", words, qnet.fmt.a_bits)
                write_mif(mif / f"test_input_{i}.mif", words, qnet.fmt.a_bits)
                write_mem(mem / f"test_input_{i}.mem", words, qnet.fmt.a_bits)
        qnet.save(tmp / "qnet.json")
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        (tmp / MARKER).write_text(json.dumps({"generator": "gen/hdl/generate.py", "source": source,
                                              "files": files}, indent=1) + "\n")
        if out.exists():  # the user's files in a folder of ours go into the new one
            # without a manifest only the files written now are taken for ours
            old = _manifest(out)
            _carry_over(out, tmp, set(files) if old is None else old)
        tmp.chmod(0o755)  # mkdtemp makes it private; the output is an ordinary folder
        _swap_in(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot write output folder {out}: {exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def main() -> int:
    ap = argparse.ArgumentParser(prog="mnist-fpga gen", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", type=Path, help="float weights .npz")
    src.add_argument("--qnet", type=Path,
                     help="a quantized network (qnet.json) to generate as it is, instead of "
                          "quantizing --weights")
    ap.add_argument("--format", help="int<B> or w<W>a<A> (default int8; a --qnet carries its "
                                     "own)")
    ap.add_argument("--name", help="network name, prefix of every entity (default: file stem, "
                                   "or the --qnet's name)")
    ap.add_argument("--out", required=True, type=Path,
                    help="output folder (replaced; files you added to it are kept)")
    ap.add_argument("--images", type=Path, default=DEFAULT_SAMPLE,
                    help="image sample .npz: calibration fallback and test inputs")
    ap.add_argument("--test-inputs", type=int, default=1,
                    help="how many sample images to export as test-input .coe/.mif/.mem")
    ap.add_argument("--p", type=int, nargs="+", default=[1], metavar="P",
                    help="inputs per clock: one for all layers or one per layer (default 1)")
    ap.add_argument("--pe", type=int, nargs="+", metavar="PE",
                    help="neurons in parallel: one for all layers or one per layer, clamped "
                         "to each layer's neurons (default: all of them)")
    ap.add_argument("--lut-mult", action="store_true",
                    help="products from adders (one register per level) instead of DSP "
                         "multipliers (higher clock, no DSP blocks, more LUTs)")
    args = ap.parse_args()
    if args.qnet and args.format:
        raise UserError(f"--qnet {args.qnet} carries its own format: drop --format")
    fmt = parse_format(args.format or "int8")
    images, labels = load_sample(args.images)
    warning = None
    if args.qnet:
        qnet = QNet.load(args.qnet)
        qnet.name = args.name or qnet.name
        check_net_name(qnet.name)
        fmt, name, source = qnet.fmt, qnet.name, args.qnet
    else:
        name, source = args.name or args.weights.stem, args.weights
        check_net_name(name)
        qnet = quantize_file(args.weights, fmt, name, calib_images=images)
        warning = accuracy_warning(load_float_weights(args.weights), qnet, images, labels)
    check_rtl_limits(qnet)
    generate(qnet, args.out, display_path(source), images[: max(args.test_inputs, 0)],
             p=args.p[0] if len(args.p) == 1 else args.p,
             pe=None if not args.pe else args.pe[0] if len(args.pe) == 1 else args.pe,
             lut_mult=args.lut_mult)
    print(f"generated {name} ({fmt.name}) in {args.out}")
    if warning:  # after the output is written: a failed run prints its error line only
        print(warning, file=sys.stderr)
    return 0


def check_rtl_limits(qnet: QNet) -> None:
    """Refuse, in one line, a network the RTL would not compute exactly (gen/core/legal.py)."""
    check_qnet(qnet)


def display_path(path: Path) -> str:
    """Path as shown in headers: relative to the repository when inside it."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return Path(path).name


if __name__ == "__main__":
    cli_main(main)

