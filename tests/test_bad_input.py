"""Every bad input documented in docs/bad_input.md, run as a real command line.

The table in the doc is the test data: each row's command runs in a subprocess (in
parallel) in its own temporary folder ``<tmp>``, prepared by the row's builder below.
A row passes when the command exits non-zero with exactly one stderr line, equal to
the documented one, prints nothing on stdout, and leaves ``<tmp>`` exactly as it was
(no output or temporary folder left behind, nothing of the user's changed).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import re
import shlex
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "bad_input.md"
REAL_MNIST = os.environ.get("MNIST_DIR") or None
REAL_TAG = "(real MNIST)"  # rows marked so in the doc run only when MNIST_DIR is set
SYNTH_PREFIX = "badinput"  # gen.eda.synth rows use such net names: build/synth must not get one
# Variables of the caller that would change what a command does.
CLEARED_ENV = ("MNIST_DIR", "MNIST_URL", "MNIST_CACHE", "SIM", "NET", "BITS", "IMAGES",
               "BUILD_DIR", "WAVES", "VERBOSE")


@dataclass(frozen=True)
class Row:
    """One row of the table: id, what is wrong, the command, the expected stderr line."""

    id: str
    what: str
    command: str
    error: str


def _cell(text: str) -> str:
    """A table cell without its surrounding backticks."""
    text = text.strip()
    return text[1:-1] if len(text) > 1 and text[0] == text[-1] == "`" else text


def parse_doc(text: str) -> list[Row]:
    """The rows of the table whose first cell is a backticked id."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        cells = line.strip().strip("|").split(" | ")
        assert len(cells) == 4, f"docs/bad_input.md: row needs 4 cells: {line}"
        rows.append(Row(*(_cell(c) for c in cells)))
    return rows


ROWS = parse_doc(DOC.read_text())

# ---------------------------------------------------------------- files the rows need


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """An uncompressed .npz of ``arrays`` (``np.savez`` with explicit keys)."""
    with path.open("wb") as f:
        np.savez(f, **arrays)


def good_weights() -> dict[str, np.ndarray]:
    """A small valid float network 784 -> 16 ReLU -> 10 with its calibration."""
    rng = np.random.default_rng(0)
    return {
        "W0": rng.normal(0, 0.05, (16, 784)).astype(np.float32),
        "b0": rng.normal(0, 0.05, 16).astype(np.float32),
        "W1": rng.normal(0, 0.3, (10, 16)).astype(np.float32),
        "b1": rng.normal(0, 0.05, 10).astype(np.float32),
        "calib0": np.asarray(2.0, dtype=np.float32),
    }


def weights(**changes: np.ndarray | None) -> Callable[[Path], None]:
    """Builder: ``<tmp>/w.npz`` = the good weights with ``changes`` (None deletes a key)."""

    def build(d: Path) -> None:
        arrays = good_weights()
        for key, value in changes.items():
            if value is None:
                del arrays[key]
            else:
                arrays[key] = value
        save_npz(d / "w.npz", **arrays)

    return build


def sample(**changes: np.ndarray | None) -> Callable[[Path], None]:
    """Builder: ``<tmp>/sample.npz`` = 3 blank images and labels with ``changes``."""

    def build(d: Path) -> None:
        arrays = {"images": np.zeros((3, 28, 28), np.uint8), "labels": np.arange(3, dtype=np.uint8)}
        for key, value in changes.items():
            if value is None:
                del arrays[key]
            else:
                arrays[key] = value
        save_npz(d / "sample.npz", **arrays)

    return build


def write(name: str, content: bytes | Callable[[bytes], bytes]) -> Callable[[Path], None]:
    """Builder: ``<tmp>/<name>`` = ``content``, or ``content(its current bytes)``."""

    def build(d: Path) -> None:
        path = d / name
        data = content(path.read_bytes()) if callable(content) else content
        path.write_bytes(data)

    return build


def npy(d: Path) -> None:
    """``<tmp>/w.npz`` holding a bare ``np.save`` array, not an archive."""
    with (d / "w.npz").open("wb") as f:
        np.save(f, good_weights()["W0"])


def npz_text_member(d: Path) -> None:
    """``<tmp>/w.npz`` = the good weights plus a text member ``notes.txt`` (not ``.npy``)."""
    with zipfile.ZipFile(d / "w.npz", "a") as z:
        z.writestr("notes.txt", "trained on a Tuesday\n")


def npz_huge_header(d: Path) -> None:
    """``<tmp>/w.npz`` whose ``W0.npy`` header declares 200000 x 200000 float64 (298 GiB)."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (200_000, 200_000)})
    with zipfile.ZipFile(d / "w.npz", "w") as z:
        z.writestr("W0.npy", header.getvalue())  # the header only: nothing to read behind it
        for key, arr in good_weights().items():
            if key != "W0":
                member = io.BytesIO()
                np.save(member, arr)
                z.writestr(f"{key}.npy", member.getvalue())


def user_folder(name: str) -> Callable[[Path], None]:
    """Builder: a folder of the user's with a file and a subfolder."""

    def build(d: Path) -> None:
        (d / name / "sub").mkdir(parents=True)
        (d / name / "notes.txt").write_text("mine\n")
        (d / name / "sub" / "data.bin").write_bytes(bytes(range(256)))

    return build


def generated_folder(name: str, test_inputs: int) -> Callable[[Path], None]:
    """Builder: ``<tmp>/<name>`` = gen.hdl.generate's output for the good weights (network net)."""

    def build(d: Path) -> None:
        from mnist_fpga.gen.core.formats import parse_format
        from mnist_fpga.gen.core.quant import quantize_network
        from mnist_fpga.gen.hdl.generate import generate

        arrays = {k: v.astype(np.float64) for k, v in good_weights().items()}
        qnet = quantize_network(arrays, parse_format("int8"), "net")
        generate(qnet, d / name, "w.npz", np.zeros((test_inputs, 28, 28), np.uint8))

    return build


def mkdir(name: str) -> Callable[[Path], None]:
    return lambda d: (d / name).mkdir(parents=True)


def _idx(magic: int, dims: tuple[int, ...], fill: int = 0) -> bytes:
    """An uncompressed IDX file: header and ``prod(dims)`` bytes of ``fill``."""
    return struct.pack(f">{1 + len(dims)}I", magic, *dims) + bytes([fill]) * int(np.prod(dims))


_SYNTHETIC = {  # 7 items each: the right layout, the wrong count and checksum
    "t10k-images-idx3-ubyte.gz": _idx(2051, (7, 28, 28), 1),
    "t10k-labels-idx1-ubyte.gz": _idx(2049, (7,), 1),
    "train-images-idx3-ubyte.gz": _idx(2051, (7, 28, 28), 1),
    "train-labels-idx1-ubyte.gz": _idx(2049, (7,), 1),
}
T10K_IMAGES = "t10k-images-idx3-ubyte.gz"
T10K_LABELS = "t10k-labels-idx1-ubyte.gz"
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"


def mnist(broken: str = "", content: bytes | None = None, real: bool = False,
          ) -> Callable[[Path], None]:
    """Builder: ``<tmp>/mnist`` with the four file names; ``broken`` replaced by ``content``.

    The other files link to the real ones in ``$MNIST_DIR`` when it is set (``real``
    rows need it), else they are small synthetic IDX files. ``content`` None removes
    ``broken``.
    """

    def build(d: Path) -> None:
        folder = d / "mnist"
        folder.mkdir()
        for name, idx in _SYNTHETIC.items():
            if name == broken:
                if content is not None:
                    (folder / name).write_bytes(content)
            elif REAL_MNIST:
                (folder / name).symlink_to(Path(REAL_MNIST).resolve() / name)
            else:
                assert not real, "a real-MNIST row was built without MNIST_DIR"
                (folder / name).write_bytes(gzip.compress(idx, mtime=0))

    return build


def _truncated_real(name: str) -> bytes:
    data = (Path(REAL_MNIST or "") / name).read_bytes()
    return data[: len(data) // 2]


def lazy_mnist(broken: str, content: Callable[[], bytes]) -> Callable[[Path], None]:
    """:func:`mnist` with ``content`` computed at build time (it reads the real files)."""
    return lambda d: mnist(broken, content(), real=True)(d)


def steps(*builders: Callable[[Path], None]) -> Callable[[Path], None]:
    """Builder: run ``builders`` in order."""

    def build(d: Path) -> None:
        for b in builders:
            b(d)

    return build


def base(*builders: Callable[[Path], None]) -> Callable[[Path], None]:
    """Builder: good ``w.npz`` and ``sample.npz``, a regular file ``file``, then ``builders``."""
    return steps(weights(), sample(), write("file", b"a regular file\n"), *builders)


def regress_results(name: str, shard: int, n: int, fmt: str = "int8",
                    version: int | None = None) -> Callable[[Path], None]:
    """Builder: ``<tmp>/<name>`` = a tb.regress results file of shard ``shard``/``n``."""

    def build(d: Path) -> None:
        from mnist_fpga.tb.regress import KIND, VERSION

        doc = {"kind": KIND, "version": version or VERSION, "net": "l10", "format": fmt,
               "p": 1, "sim": "ghdl", "source": "sample", "total_images": n, "jobs": 1,
               "shard": [shard, n], "first": shard - 1, "count": 1, "wall_s": 1.0,
               "rtl_correct": 1, "model_correct": 1, "coverage": {}, "classes_seen": [7],
               "job_failures": [], "images": [{"index": shard - 1, "bit_exact": True}]}
        (d / name).write_text(json.dumps(doc))

    return build


def qnet_file(change: Callable[[dict], None] | None = None, fmt: str = "int8",
              ) -> Callable[[Path], None]:
    """Builder: ``<tmp>/q.json`` = the good weights quantized to ``fmt``, its JSON document
    changed by ``change``."""

    def build(d: Path) -> None:
        from mnist_fpga.gen.core.formats import parse_format
        from mnist_fpga.gen.core.quant import quantize_network

        arrays = {k: v.astype(np.float64) for k, v in good_weights().items()}
        doc = json.loads(quantize_network(arrays, parse_format(fmt), "net").to_json())
        if change is not None:
            change(doc["layers"])
        (d / "q.json").write_text(json.dumps(doc))

    return build


def _set(k: int, key: str, value: Callable[[object], object]) -> Callable[[list[dict]], None]:
    """A change of a qnet.json's layers: layer ``k``'s ``key`` = ``value(old value)``."""
    return lambda layers: layers[k].__setitem__(key, value(layers[k][key]))


def _put(k: int, key: str, index: tuple[int, ...], value: object) -> Callable[[list[dict]], None]:
    """A change of a qnet.json's layers: one entry of layer ``k``'s ``w`` or ``b``."""

    def change(layers: list[dict]) -> None:
        a = layers[k][key]
        for i in index[:-1]:
            a = a[i]
        a[index[-1]] = value

    return change


_GOOD = good_weights()
_CHECKSUM_CONTENT = gzip.compress(_idx(2051, (10000, 28, 28)), mtime=0)  # right layout, all 0

# id -> builder; every documented row has one and every builder a row
BUILDERS: dict[str, Callable[[Path], None]] = {
    # gen.hdl.generate: the weights file
    "weights-not-zip": base(write("w.npz", b"W0,b0\n1,2\n")),
    "weights-truncated": base(write("w.npz", lambda b: b[: len(b) // 2])),
    "weights-npy": base(npy),
    "weights-text-member": base(npz_text_member),
    "weights-huge-shape": base(npz_huge_header),
    "weights-folder": base(mkdir("wdir.npz")),
    "weights-empty": base(lambda d: save_npz(d / "w.npz")),
    "weights-no-W0": base(weights(W0=None)),
    "weights-no-b0": base(weights(b0=None)),
    "weights-no-b1": base(weights(b1=None)),
    "weights-W0-783-inputs": base(weights(W0=_GOOD["W0"][:, :783])),
    "weights-W0-no-neurons": base(weights(W0=np.zeros((0, 784), np.float32))),
    "weights-W1-inputs": base(weights(W1=_GOOD["W1"][:, :15])),
    "weights-b0-shape": base(weights(b0=_GOOD["b0"][:15])),
    "weights-W0-string": base(weights(W0=np.full((16, 784), "0.1"))),
    "weights-W0-object": base(lambda d: np.savez(d / "w.npz", **{
        **good_weights(), "W0": np.empty((16, 784), dtype=object)})),
    "weights-b0-bool": base(weights(b0=np.ones(16, dtype=bool))),
    "weights-W0-nan": base(weights(W0=np.where(np.eye(16, 784) > 0, np.nan, _GOOD["W0"]))),
    "weights-b1-inf": base(weights(b1=np.full(10, np.inf, np.float32))),
    "weights-calib0-negative": base(weights(calib0=np.asarray(-1.0))),
    "weights-gap": base(weights(W3=np.zeros((10, 10), np.float32), b3=np.zeros(10, np.float32))),
    "weights-unknown-key": base(weights(scale=np.asarray(2.0))),
    "weights-calib-last": base(weights(calib1=np.asarray(1.0))),
    # gen.hdl.generate: the number format
    "format-int1": base(),
    "format-int17": base(),
    "format-w0a8": base(),
    "format-w8a17": base(),
    "format-foo": base(),
    "format-q0_8": base(),
    "format-q9_8": base(),
    "format-suffix": base(),
    "format-upper": base(),
    "format-space": base(),
    "format-leading-zero": base(),
    "format-arabic-digit": base(),
    # gen.hdl.generate: the image sample
    "sample-float": base(sample(images=np.zeros((3, 28, 28)))),
    "sample-27x28": base(sample(images=np.zeros((3, 27, 28), np.uint8))),
    "sample-no-labels": base(sample(labels=None)),
    "sample-labels-count": base(sample(labels=np.arange(2, dtype=np.uint8))),
    # gen.hdl.generate: name and output folder
    "name-invalid": base(),
    "out-under-file": base(),
    "out-user-folder": base(user_folder("out")),
    "out-is-file": base(write("out", b"my notes\n")),
    "out-user-file-clash": base(generated_folder("out", 1),
                                write("out/coe/test_input_1.coe", b"; my own test input\n")),
    "generate-no-weights": base(),
    # gen.hdl.generate --qnet: a quantized network check_qnet refuses
    "qnet-weight-half": base(qnet_file(_put(0, "w", (0, 0), 0.5))),
    "qnet-weight-nan": base(qnet_file(_put(1, "w", (2, 3), float("nan")))),
    "qnet-weight-float": base(qnet_file(_set(0, "w", lambda w: [[float(v) for v in r]
                                                                  for r in w]))),
    "qnet-bias-null": base(qnet_file(_put(0, "b", (3,), None))),
    "qnet-bias-half": base(qnet_file(_put(0, "b", (3,), -0.5))),
    "qnet-bias-short": base(qnet_file(_set(0, "b", lambda b: b[:15]))),
    "qnet-weights-ragged": base(qnet_file(_put(0, "w", (3,), [0] * 5))),
    "qnet-mult-float": base(qnet_file(_set(0, "rq_mult", lambda m: 1.5))),
    "qnet-shift-float": base(qnet_file(_set(0, "rq_shift", lambda s: 9.5))),
    "qnet-mult-short": base(qnet_file(_set(0, "rq_mult", lambda m: m[:15]), "int8-pn")),
    "qnet-shift-long": base(qnet_file(_set(0, "rq_shift", lambda s: [*s, 3]), "int8-pn")),
    "qnet-mult-list-shift-int": base(qnet_file(_set(0, "rq_shift", lambda s: s[0]), "int8-pn")),
    "qnet-acc-bits-float": base(qnet_file(_set(0, "acc_bits", lambda a: 24.5))),
    "qnet-not-json": base(write("q.json", b"W0\n")),
    "qnet-missing": base(),
    "qnet-and-format": base(qnet_file()),
    # tb.netsim
    "sim-no-ghdl": base(mkdir("bin")),
    "sim-unknown-sim": base(),
    "sim-images-0": base(),
    "sim-images-env-0": base(),
    "sim-images-101": base(),
    "sim-first-negative": base(),
    "sim-images-not-int": base(),
    "sim-name-invalid": base(),
    "sim-images-env": base(),
    "sim-p-env": base(),
    "sim-p-0": base(),
    "sim-pe-0": base(),
    "sim-pe-negative": base(),
    "sim-pe-env-negative": base(),
    "sim-p-arg-0": base(),
    "sim-sample-shape": base(sample(images=np.zeros((3, 100), np.uint8))),
    "regress-jobs-0": base(),
    "pytest-tb-images": base(),
    "pytest-fuzz-examples": base(),
    # tb.regress: shards, jobs, merging shard results
    "regress-shard-0": base(),
    "regress-shard-5of4": base(),
    "regress-shard-x": base(),
    "regress-shard-of-0": base(),
    "regress-shard-empty": base(),
    "regress-shard-jobs-0": base(),
    "regress-results-under-file": base(),
    "regress-junit-is-folder": base(user_folder("out")),
    "regress-results-foreign": base(write("r.json", b'{"mine": true}\n')),
    "regress-junit-foreign": base(write("j.xml", b'<?xml version="1.0"?>\n<testsuites '
                                        b'name="pytest"><testsuite name="x" tests="0"/>'
                                        b'</testsuites>\n')),
    "regress-merge-results-foreign": base(regress_results("r1.json", 1, 2)),
    "regress-merge-junit-under-file": base(regress_results("r1.json", 1, 2)),
    "regress-merge-not-json": base(),
    "regress-merge-foreign": base(write("r1.json", b'{"net": "l10"}\n')),
    "regress-merge-missing-shard": base(regress_results("r1.json", 1, 2)),
    "regress-merge-twice": base(regress_results("r1.json", 1, 2)),
    "regress-merge-version-1": base(regress_results("r1.json", 1, 1, version=1)),
    "regress-merge-other-run": base(regress_results("r1.json", 1, 2),
                                    regress_results("r2.json", 2, 2, "int4")),
    "regress-merge-shard": base(regress_results("r1.json", 1, 2)),
    # gen.data.mnist
    "mnist-dir-missing": base(),
    "mnist-file-missing": base(mnist(T10K_IMAGES)),
    "mnist-not-gzip": base(mnist(T10K_IMAGES, b"not gzip\n")),
    "mnist-truncated": base(mnist(T10K_IMAGES, _CHECKSUM_CONTENT[: len(_CHECKSUM_CONTENT) // 2])),
    "mnist-checksum": base(mnist(T10K_IMAGES, _CHECKSUM_CONTENT)),
    "mnist-wrong-count": base(mnist(T10K_IMAGES, gzip.compress(_SYNTHETIC[T10K_IMAGES], mtime=0))),
    "mnist-labels-truncated": base(lazy_mnist(T10K_LABELS, lambda: _truncated_real(T10K_LABELS))),
    "mnist-count-0": base(mnist(real=True)),
    "mnist-count-10001": base(mnist(real=True)),
    # --out is checked before MNIST loads: a late check would fail on the synthetic files
    "mnist-out-under-file": base(mnist()),
    "mnist-out-is-folder": base(mnist(), user_folder("s.npz")),
    # train.train (broken MNIST: a run that checked --out late would fail on it instead)
    "train-out-under-file": base(mnist(TRAIN_IMAGES, b"not gzip\n")),
    # gen.reports.evaluate
    "evaluate-mnist-dir-missing": base(),
    "evaluate-unknown-net": base(),
    # gen.eda.synth
    "synth-no-ghdl": base(mkdir("bin")),
    "synth-unknown-net": base(),
    "synth-name-invalid": base(),
}

# ---------------------------------------------------------------- any MLP (issue 12)
# Imports (gen.frontends.import_model), --layers (train.train, train.qat) and WEIGHTS (tb.netsim).


def onnx_model(name: str, nodes: list[tuple], shapes: dict[str, tuple[int, ...]],
               out: str = "y", values: dict[str, np.ndarray] | None = None,
               attrs: dict[str, dict] | None = None) -> Callable[[Path], None]:
    """Builder: ``<tmp>/<name>`` = an ONNX graph of ``(op, inputs, output)`` nodes.

    ``shapes`` gives the initializers (random float32), ``values`` more of them as they
    are, ``attrs`` a node's attributes by its output; the graph input is ``x``.
    """

    def build(d: Path) -> None:
        from onnx import TensorProto, helper, numpy_helper

        rng = np.random.default_rng(0)
        inits = [numpy_helper.from_array(rng.normal(0, 0.1, shape).astype(np.float32), key)
                 for key, shape in shapes.items()]
        inits += [numpy_helper.from_array(v, key) for key, v in (values or {}).items()]
        graph_nodes = [helper.make_node(op, list(ins), [o], name=o.upper(),
                                        **({"transB": 1} if op == "Gemm" else {}),
                                        **(attrs or {}).get(o, {}))
                       for op, ins, o in nodes]
        graph = helper.make_graph(
            graph_nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 784])],
            [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 10])], inits)
        (d / name).write_bytes(helper.make_model(graph).SerializeToString())

    return build


def state_dict(name: str, shapes: dict[str, tuple[int, ...]]) -> Callable[[Path], None]:
    """Builder: ``<tmp>/<name>`` = ``torch.save`` of a state_dict of zero tensors."""

    def build(d: Path) -> None:
        import torch

        torch.save({k: torch.zeros(v) for k, v in shapes.items()}, d / name)

    return build


def torch_file(name: str, modules: Callable[[Any], list]) -> Callable[[Path], None]:
    """Builder: ``<tmp>/<name>`` = ``torch.save`` of ``nn.Sequential(*modules(nn))``."""

    def build(d: Path) -> None:
        import torch

        torch.manual_seed(0)
        torch.save(_seq(modules), d / name)

    return build


def _seq(modules: Callable[[Any], list]) -> Any:
    """``nn.Sequential(*modules(nn))``: torch is imported only when a row is built."""
    from torch import nn

    return nn.Sequential(*modules(nn))


def _mlp(nn: Any) -> list:
    return [nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10)]


def pickled_class(d: Path) -> None:
    """``<tmp>/m.pt`` = ``torch.save`` of an instance of the user's own class ``mynet.Net``."""
    import types

    import torch
    from torch import nn

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(784, 10)

    mod = types.ModuleType("mynet")
    Net.__module__, Net.__qualname__ = "mynet", "Net"
    mod.Net = Net  # type: ignore[attr-defined]
    sys.modules["mynet"] = mod
    try:
        torch.save(Net(), d / "m.pt")
    finally:
        del sys.modules["mynet"]


def torchscript(d: Path) -> None:
    """``<tmp>/m.pt`` = ``torch.jit.save`` of a scripted MLP."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit's deprecation
        torch.jit.save(torch.jit.script(_seq(_mlp)), d / "m.pt")


def torch_export(d: Path) -> None:
    """``<tmp>/m.pt2`` = ``torch.export.save`` of an exported MLP."""
    import torch

    model = _seq(_mlp)
    torch.export.save(torch.export.export(model, (torch.zeros(1, 784),)), d / "m.pt2")


def zip_without_pickle(d: Path) -> None:
    with zipfile.ZipFile(d / "m.pt", "w") as z:
        z.writestr("m/notes.txt", "not a model\n")


def torch_truncated(d: Path) -> None:
    state_dict("m.pt", _MLP_SD)(d)
    data = (d / "m.pt").read_bytes()
    (d / "m.pt").write_bytes(data[: len(data) // 2])


_MLP_SD = {"0.weight": (16, 784), "0.bias": (16,), "2.weight": (10, 16), "2.bias": (10,)}
_GEMM2 = [("Gemm", ("x", "w0", "b0"), "h0"), ("Relu", ("h0",), "r0"),
          ("Gemm", ("r0", "w1", "b1"), "y")]
_GEMM_SHAPES = {"w0": (16, 784), "b0": (16,), "w1": (10, 16), "b1": (10,)}
_BN = {"s": (16,), "t": (16,), "m": (16,), "v": (16,)}

BUILDERS.update({
    "import-onnx-conv": base(onnx_model("m.onnx", [
        ("Reshape", ("x", "shape"), "img"), ("Conv", ("img", "k"), "c"),
        ("Flatten", ("c",), "f"), ("Gemm", ("f", "w1", "b1"), "y")],
        {"shape": (4,), "k": (2, 1, 3, 3), "w1": (10, 1352), "b1": (10,)})),
    "import-onnx-tanh": base(onnx_model("m.onnx", [
        ("Gemm", ("x", "w0", "b0"), "h0"), ("Tanh", ("h0",), "t0"),
        ("Gemm", ("t0", "w1", "b1"), "y")], _GEMM_SHAPES)),
    "import-onnx-skip": base(onnx_model("m.onnx", [
        ("Gemm", ("x", "w0", "b0"), "h0"), ("Relu", ("h0",), "r0"),
        ("Gemm", ("r0", "w1", "b1"), "h1"), ("Relu", ("h1",), "r1"),
        ("Add", ("r1", "r0"), "s"), ("Gemm", ("s", "w2", "b2"), "y")],
        {**_GEMM_SHAPES, "w1": (16, 16), "b1": (16,), "w2": (10, 16), "b2": (10,)})),
    "import-onnx-sizes": base(onnx_model("m.onnx", _GEMM2, {**_GEMM_SHAPES, "w1": (10, 15)})),
    "import-onnx-not-784": base(onnx_model("m.onnx", _GEMM2, {**_GEMM_SHAPES, "w0": (16, 100)})),
    "import-onnx-garbage": base(write("m.onnx", b"not a model\n")),
    "import-missing": base(),
    "import-out-exists": base(onnx_model("m.onnx", _GEMM2, _GEMM_SHAPES),
                              write("x.npz", b"my own weights\n")),
    "import-sd-conv": base(state_dict("m.pt", {
        "0.weight": (2, 1, 3, 3), "0.bias": (2,), "2.weight": (10, 1352), "2.bias": (10,)})),
    "import-sd-prelu": base(state_dict("m.pt", {**_MLP_SD, "1.weight": (1,)})),
    "import-sd-nested": base(state_dict("m.pt", {
        "0.fc.weight": (784, 784), "0.fc.bias": (784,), "1.weight": (10, 784),
        "1.bias": (10,)})),
    "import-sd-sizes": base(state_dict("m.pt", {**_MLP_SD, "2.weight": (10, 15)})),
    "import-sd-no-activation": base(state_dict("m.pt", _MLP_SD)),
    "import-activation-other": base(state_dict("m.pt", _MLP_SD)),
    "import-torch-garbage": base(write("m.pt", b"not a torch file\n")),
    "import-torch-pickle": base(lambda d: (d / "m.pt").write_bytes(pickle.dumps({"a": 1}, 4))),
    "import-torch-empty": base(write("m.pt", b"")),
    "import-torch-truncated": base(torch_truncated),
    "import-torch-zip": base(zip_without_pickle),
    "import-torch-class": base(pickled_class),
    "import-torchscript": base(torchscript),
    "import-torch-export": base(torch_export),
    "import-module-sigmoid": base(torch_file("m.pt", lambda nn: [
        nn.Linear(784, 16), nn.Sigmoid(), nn.Linear(16, 10)])),
    "import-module-output-activation": base(torch_file("m.pt", lambda nn: [
        nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10), nn.Sigmoid()])),
    "import-module-softmax-hidden": base(torch_file("m.pt", lambda nn: [
        nn.Linear(784, 16), nn.Softmax(1), nn.Linear(16, 10)])),
    "import-module-bn-after-relu": base(torch_file("m.pt", lambda nn: [
        nn.Linear(784, 16), nn.ReLU(), nn.BatchNorm1d(16), nn.Linear(16, 10)])),
    "import-module-bn-no-stats": base(torch_file("m.pt", lambda nn: [
        nn.Linear(784, 16), nn.BatchNorm1d(16, track_running_stats=False), nn.ReLU(),
        nn.Linear(16, 10)])),
    "import-module-conv": base(torch_file("m.pt", lambda nn: [
        nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(1352, 10)])),
    "import-module-other": base(torch_file("m.pt", lambda nn: [
        nn.Linear(784, 16), nn.LayerNorm(16), nn.ReLU(), nn.Linear(16, 10)])),
    "import-module-no-relu": base(torch_file("m.pt", lambda nn: [
        nn.Linear(784, 16), nn.Linear(16, 10)])),
    "import-module-does-not-run": base(torch_file("m.pt", lambda nn: [
        nn.Linear(784, 16), nn.ReLU(), nn.Flatten(0), nn.Linear(16, 10)])),
    "import-onnx-sigmoid-output": base(onnx_model("m.onnx", [
        *_GEMM2[:2], ("Gemm", ("r0", "w1", "b1"), "h1"), ("Sigmoid", ("h1",), "y")],
        _GEMM_SHAPES)),
    "import-onnx-softmax-hidden": base(onnx_model("m.onnx", [
        ("Gemm", ("x", "w0", "b0"), "h0"), ("Softmax", ("h0",), "p0"),
        ("Gemm", ("p0", "w1", "b1"), "y")], _GEMM_SHAPES)),
    "import-onnx-argmax": base(onnx_model("m.onnx", [
        *_GEMM2[:2], ("Gemm", ("r0", "w1", "b1"), "h1"), ("ArgMax", ("h1",), "y")],
        _GEMM_SHAPES)),
    "import-onnx-normalization": base(onnx_model("m.onnx", [
        ("Sub", ("x", "mean"), "c"), ("Div", ("c", "std"), "n"),
        ("Gemm", ("n", "w0", "b0"), "h0"), *_GEMM2[1:]],
        {**_GEMM_SHAPES, "mean": (784,), "std": (784,)})),
    "import-onnx-bn-after-relu": base(onnx_model("m.onnx", [
        *_GEMM2[:2], ("BatchNormalization", ("r0", "s", "t", "m", "v"), "n"),
        ("Gemm", ("n", "w1", "b1"), "y")], {**_GEMM_SHAPES, **_BN})),
    "import-onnx-bn-training": base(onnx_model("m.onnx", [
        ("Gemm", ("x", "w0", "b0"), "h0"),
        ("BatchNormalization", ("h0", "s", "t", "m", "v"), "n"), ("Relu", ("n",), "r0"),
        _GEMM2[2]], {**_GEMM_SHAPES, **_BN}, attrs={"n": {"training_mode": 1}})),
    "import-onnx-bn-size": base(onnx_model("m.onnx", [
        ("Gemm", ("x", "w0", "b0"), "h0"),
        ("BatchNormalization", ("h0", "s", "t", "m", "v"), "n"), ("Relu", ("n",), "r0"),
        _GEMM2[2]], {**_GEMM_SHAPES, **_BN, "v": (15,)})),
    "import-onnx-dropout-training": base(onnx_model("m.onnx", [
        *_GEMM2[:2], ("Dropout", ("r0", "ratio", "train"), "d"),
        ("Gemm", ("d", "w1", "b1"), "y")], _GEMM_SHAPES,
        values={"ratio": np.array(0.5, np.float32), "train": np.array(True)})),
    "import-onnx-weight-computed": base(onnx_model("m.onnx", [
        ("NotAnOp", ("w",), "wx"), ("MatMul", ("x", "wx"), "h0"), *_GEMM2[1:]],
        {**_GEMM_SHAPES, "w": (784, 16)})),
    "import-onnx-branch": base(onnx_model("m.onnx", [
        *_GEMM2[:2], ("RandomUniform", (), "noise"), ("Gemm", ("r0", "w1", "noise"), "y")],
        _GEMM_SHAPES, attrs={"noise": {"shape": [10]}})),
    "import-onnx-does-not-run": base(onnx_model("m.onnx", [
        ("Reshape", ("x", "col"), "c"), ("Gemm", ("c", "w0", "b0"), "h0"), *_GEMM2[1:]],
        _GEMM_SHAPES, values={"col": np.array([784, -1], np.int64)})),
    # --layers is checked before MNIST loads (it is broken here: a late check fails on it)
    "train-layers-not-784": base(mnist(TRAIN_IMAGES, b"not gzip\n")),
    "train-layers-not-numbers": base(mnist(TRAIN_IMAGES, b"not gzip\n")),
    "train-layers-reference": base(mnist(TRAIN_IMAGES, b"not gzip\n")),
    "qat-layers-not-784": base(mnist(TRAIN_IMAGES, b"not gzip\n")),
    "sim-weights-missing": base(),
    "sim-weights-folder": base(mkdir("mlp.npz")),
    "sim-weights-name": base(lambda d: (d / "my-net.npz").write_bytes((d / "w.npz").read_bytes())),
})


# ---------------------------------------------------------------- a user's image (IMAGE=)


def png(name: str, shape: tuple[int, int], cut: bool = False) -> Callable[[Path], None]:
    """Builder: ``<tmp>/<name>`` = a PNG of random gray pixels; ``cut``: its first half only."""

    def build(d: Path) -> None:
        from PIL import Image

        buf = io.BytesIO()
        pixels = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
        Image.fromarray(pixels).save(buf, "PNG")
        data = buf.getvalue()
        (d / name).write_bytes(data[: len(data) // 2] if cut else data)

    return build


def no_pillow(d: Path) -> None:
    """``<tmp>/nopil/PIL``: a package that fails to import, as where Pillow is absent."""
    (d / "nopil" / "PIL").mkdir(parents=True)
    (d / "nopil" / "PIL" / "__init__.py").write_text(
        'raise ModuleNotFoundError("No module named \'PIL\'", name="PIL")\n')


BUILDERS.update({
    "image-missing": base(),
    "image-folder": base(mkdir("pics")),
    "image-not-image": base(),
    "image-pgm-header": base(write("d.pgm", b"P5\n28\n")),
    "image-pgm-truncated": base(write("d.pgm", b"P5\n28 28\n255\n" + bytes(100))),
    "image-pgm-ascii-truncated": base(write("d.pgm", b"P2\n3 3\n255\n0 1 2\n3 4\n")),
    "image-pgm-ascii-word": base(write("d.pgm", b"P2\n# a comment\n3 3 255\n0 1 2 3 x 5 6 7 8\n")),
    "image-pgm-above-maxval": base(write("d.pgm", b"P2\n2 2\n15\n0 15 16 3\n")),
    "image-pgm-maxval-0": base(write("d.pgm", b"P5 2 2 0\n" + bytes(4))),
    "image-pgm-maxval-70000": base(write("d.pgm", b"P5 2 2 70000\n" + bytes(8))),
    "image-pgm-0x0": base(write("d.pgm", b"P5\n0 0\n255\n")),
    "image-pgm-huge": base(write("d.pgm", b"P5\n5000 5000\n255\n")),
    "image-png-huge": base(png("d.png", (1, 5000))),
    "image-png-truncated": base(png("d.png", (64, 64), cut=True)),
    "image-png-no-pillow": base(png("d.png", (28, 28)), no_pillow),
    "image-and-images": base(write("d.pgm", b"P5\n28 28\n255\n" + bytes(784))),
})


# ---------------------------------------------------------------- running the rows


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under ``folder``: folders, links (target) and files (sha256)."""
    out = {}
    for top, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(top) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                out[rel] = f"link {os.readlink(path)}"
            elif path.is_dir():
                out[rel] = "folder"
            else:
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def command(row: Row, tmp: Path) -> tuple[list[str], dict[str, str]]:
    """The row's argv (``python`` is this interpreter) and environment, placeholders filled."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED_ENV}
    env |= {"BUILD_DIR": str(tmp / "build"), "MNIST_CACHE": str(tmp / "cache"),
            "MNIST_URL": "http://127.0.0.1:9/",  # nothing may be downloaded
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # quicker starts
    words = [w.replace("<tmp>", str(tmp)).replace("<repo>", str(ROOT))
             for w in shlex.split(row.command)]
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        key, value = words.pop(0).split("=", 1)
        env[key] = value
    assert words[:1] == ["python"], f"{row.id}: command must start with python"
    return [sys.executable, *words[1:]], env


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    before: dict[str, str]
    after: dict[str, str]
    tmp: Path


def _run(row: Row, tmp: Path) -> Result:
    before = snapshot(tmp)
    argv, env = command(row, tmp)
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=180)
    return Result(proc.returncode, proc.stdout, proc.stderr, before, snapshot(tmp), tmp)


def runnable(row: Row) -> bool:
    return REAL_TAG not in row.what or REAL_MNIST is not None


@pytest.fixture(scope="module")
def results(request: pytest.FixtureRequest,
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Result]:
    """Build every selected, runnable row's folder and run all commands in parallel."""
    selected = {item.callspec.params["row"].id for item in request.session.items
                if "row" in getattr(getattr(item, "callspec", None), "params", {})}
    folders = {}
    for row in ROWS:
        if runnable(row) and row.id in BUILDERS and row.id in selected:
            folders[row.id] = tmp_path_factory.mktemp(row.id, numbered=True)
            BUILDERS[row.id](folders[row.id])
    # the slow starters (torch) first, so they overlap the many short runs
    order = sorted((r for r in ROWS if r.id in folders), key=lambda r: "train." not in r.command)
    with ThreadPoolExecutor(max_workers=max(4, 2 * (os.cpu_count() or 2))) as pool:
        futures = {r.id: pool.submit(_run, r, folders[r.id]) for r in order}
        return {k: f.result() for k, f in futures.items()}


def actual_line(res: Result) -> str:
    """The stderr line with the row's folder and the repository replaced by placeholders."""
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one stderr line, got:\n{res.stderr}"
    return lines[0].replace(str(res.tmp), "<tmp>").replace(str(ROOT), "<repo>")


# ---------------------------------------------------------------- the tests


def test_doc_rows_match_builders() -> None:
    """Every documented row has a builder and every builder a row; ids are unique."""
    ids = [r.id for r in ROWS]
    assert len(ids) == len(set(ids)), "duplicate ids in docs/bad_input.md"
    assert sorted(ids) == sorted(BUILDERS)
    for row in ROWS:
        # pytest's own usage-error line for the pytest rows, ours everywhere else
        prefix = "ERROR: " if " -m pytest " in row.command else "error: "
        assert row.error.startswith(prefix), row.id
        assert re.match(r"(python |[A-Z_]+=)", row.command), row.id


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input(row: Row, results: dict[str, Result]) -> None:
    """One documented ``error:`` line, non-zero exit, no output, nothing left or changed."""
    if not runnable(row):
        pytest.skip("needs MNIST_DIR (the real MNIST files)")
    res = results[row.id]
    assert res.returncode != 0, res.stdout + res.stderr
    assert actual_line(res) == row.error
    assert res.stdout == ""
    assert res.after == res.before, "files under <tmp> were created, changed or removed"
    if "gen.eda.synth" in row.command:
        assert not list((ROOT / "build" / "synth").glob(f"*{SYNTH_PREFIX}*"))
