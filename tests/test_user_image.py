"""A user's own image (``make sim IMAGE=``): gen/data/image.py's rule, and the RTL's class of it.

The images are made here, in ``tmp_path``, from the committed sample: no binary is committed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_fpga.gen.core.formats import parse_format
from mnist_fpga.gen.core.model import classify, forward
from mnist_fpga.gen.core.quant import quantize_file
from mnist_fpga.gen.data.image import area_weights, load_image, read_gray, to_mnist
from mnist_fpga.gen.data.sample import load_sample
from mnist_fpga.paths import DEFAULT_SAMPLE
from mnist_fpga.tb.common import simulator_missing
from mnist_fpga.tb.simreport import summary_line

ROOT = Path(__file__).resolve().parent.parent
IMAGES, LABELS = load_sample(DEFAULT_SAMPLE)
SEVEN = IMAGES[0]  # the first test image, a 7 that every committed network gets right
assert LABELS[0] == 7


def write_pgm(path: Path, gray: np.ndarray, ascii_: bool = False, maxval: int = 255) -> Path:
    """``gray`` (H, W) as a P5 (binary) or P2 (ASCII, with a comment) PGM."""
    h, w = gray.shape
    if ascii_:
        body = "\n".join(" ".join(str(int(v)) for v in row) for row in gray)
        path.write_bytes(f"P2\n# made by a test\n{w} {h}\n{maxval}\n{body}\n".encode())
    else:
        data = gray.astype(">u2" if maxval > 255 else np.uint8).tobytes()
        path.write_bytes(f"P5\n{w} {h}\n{maxval}\n".encode() + data)
    return path


def write_png(path: Path, pixels: np.ndarray) -> Path:
    """``pixels`` (H, W) gray or (H, W, 3|4) RGB(A) uint8 as a PNG (Pillow)."""
    from PIL import Image

    Image.fromarray(pixels).save(path, "PNG")
    return path


# ---------------------------------------------------------------- step 1: gray levels


def test_pgm_p5_p2_and_png_give_the_same_gray_levels(tmp_path: Path) -> None:
    """One image as P5, P2, gray PNG and RGB PNG (R = G = B): the same pixels, exactly."""
    gray = np.random.default_rng(3).integers(0, 256, (30, 20), dtype=np.uint8)
    files = [write_pgm(tmp_path / "a.pgm", gray), write_pgm(tmp_path / "b.pgm", gray, True),
             write_png(tmp_path / "c.png", gray),
             write_png(tmp_path / "d.png", np.repeat(gray[..., None], 3, axis=2))]
    for f in files:
        assert np.array_equal(read_gray(f), gray), f.name


def test_pgm_other_maxvals_scale_to_8_bits(tmp_path: Path) -> None:
    """maxval 65535 (two bytes, big-endian) and 15: ``(v * 255 + maxval // 2) // maxval``."""
    v16 = np.array([[0, 1, 128, 129], [32767, 32768, 65534, 65535]], dtype=np.int64)
    got = read_gray(write_pgm(tmp_path / "a.pgm", v16, maxval=65535))
    assert got.tolist() == [[0, 0, 0, 1], [127, 128, 255, 255]]
    v4 = np.array([[0, 1, 7, 8, 14, 15]])
    got = read_gray(write_pgm(tmp_path / "b.pgm", v4, ascii_=True, maxval=15))
    assert got.tolist() == [[0, 17, 119, 136, 238, 255]]


def test_colour_and_transparency(tmp_path: Path) -> None:
    """Integer luma of pure red, green, blue; a transparent pixel is white (then inverted)."""
    rgb = np.zeros((1, 3, 3), np.uint8)
    rgb[0, 0, 0] = rgb[0, 1, 1] = rgb[0, 2, 2] = 255
    assert read_gray(write_png(tmp_path / "rgb.png", rgb)).tolist() == [[76, 150, 29]]
    rgba = np.zeros((28, 28, 4), np.uint8)  # transparent everywhere ...
    rgba[10:18, 13:15] = (0, 0, 0, 255)     # ... but an opaque black stroke
    got = load_image(write_png(tmp_path / "t.png", rgba))
    want = np.zeros((28, 28), np.uint8)
    want[10:18, 13:15] = 255  # white paper inverted to black, the ink bright
    assert np.array_equal(got, want)


# ---------------------------------------------------------------- steps 2 to 4


def test_an_mnist_image_passes_unchanged(tmp_path: Path) -> None:
    """28x28 with a dark border: no inversion, and area averaging 28 -> 28 is the identity."""
    for img in IMAGES[:10]:
        assert np.array_equal(load_image(write_pgm(tmp_path / "x.pgm", img)), img)


def test_light_background_is_inverted_and_a_larger_image_shrinks(tmp_path: Path) -> None:
    """Dark ink on white paper, 4x larger: back to the MNIST image exactly."""
    paper = 255 - np.kron(SEVEN, np.ones((4, 4), np.uint8))
    assert np.array_equal(load_image(write_png(tmp_path / "p.png", paper)), SEVEN)


def _reference(gray: np.ndarray) -> np.ndarray:
    """Independent steps 3 and 4: pad to a square, blow every pixel up 28x28 times, take
    the mean of each (N x N) block with Python's exact integers."""
    h, w = gray.shape
    n = max(h, w)
    square = np.zeros((n, n), np.int64)
    square[(n - h) // 2:(n - h) // 2 + h, (n - w) // 2:(n - w) // 2 + w] = gray
    fine = np.kron(square, np.ones((28, 28), np.int64))  # (28 n, 28 n)
    sums = fine.reshape(28, n, 28, n).sum(axis=(1, 3))
    return np.array([[(int(s) + n * n // 2) // (n * n) for s in row] for row in sums], np.uint8)


@pytest.mark.parametrize("shape", [(40, 40), (5, 5), (1, 1), (28, 56), (57, 30), (29, 28)])
def test_area_averaging_against_a_reference(shape: tuple[int, int]) -> None:
    """Any size: centred on a black square, then area-averaged to 28x28 (seed 7)."""
    gray = np.random.default_rng(7).integers(0, 128, shape, dtype=np.uint8)  # dark: no inversion
    assert np.array_equal(to_mnist(gray), _reference(gray))


def test_area_weights_rows_cover_the_source() -> None:
    for n in (1, 5, 28, 29, 1000):
        a = area_weights(n)
        assert a.shape == (28, n) and (a.sum(axis=1) == n).all() and (a.sum(axis=0) == 28).all()


# ---------------------------------------------------------------- the SUMMARY of unlabeled images


def test_summary_counts_labelled_images_only() -> None:
    """``rtl_correct``: among the labelled images; ``-`` when none has a label."""
    row = {"bit_exact": True, "cycles": 10}
    doc = {"net": "l10", "wall_s": 1.0, "images": [{**row, "rtl_correct": None}]}
    assert " rtl_correct=- " in summary_line(doc, "int8")
    doc["images"] += [{**row, "rtl_correct": True}, {**row, "rtl_correct": False}]
    assert " rtl_correct=1 " in summary_line(doc, "int8")


# ---------------------------------------------------------------- through the RTL


def _env(tmp_path: Path) -> dict[str, str]:
    drop = ("NET", "BITS", "IMAGES", "IMAGE", "WEIGHTS", "SIM", "WAVES", "VERBOSE", "PE", "P")
    return {k: v for k, v in os.environ.items() if k not in drop} | {
        "BUILD_DIR": str(tmp_path / "build")}


def _model_class(net: str, fmt: str, image: np.ndarray) -> int:
    """The integer model's class of one image, the network calibrated as tb.netsim does."""
    qnet = quantize_file(ROOT / "models" / f"{net}.npz", parse_format(fmt), net,
                         calib_images=IMAGES)
    return int(classify(qnet, forward(qnet, image[None])[-1])[0])


def test_sim_classifies_the_users_images(tmp_path: Path) -> None:
    """l10: a 7 as a P5 PGM and as a larger PNG of dark ink on white. Each is one row with
    no label and a ``class:`` line, the integer model's class of the same pixels, bit-exact."""
    if reason := simulator_missing():
        pytest.skip(reason)
    pgm = write_pgm(tmp_path / "seven.pgm", SEVEN)
    paper = write_png(tmp_path / "paper.png", 255 - np.kron(SEVEN, np.ones((3, 3), np.uint8)))
    pixels = [load_image(pgm), load_image(paper)]
    assert all(np.array_equal(p, SEVEN) for p in pixels)
    want = _model_class("l10", "int8", pixels[0])
    proc = subprocess.run([sys.executable, "-m", "mnist_fpga.tb.netsim", "--net", "l10",
                           "--image", str(pgm), "--image", str(paper)],
                          cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    rows = [ln.split() for ln in lines if ln.split()[:1] in (["0"], ["1"])]
    assert [r[:5] for r in rows] == [[str(i), "-", str(want), str(want), "yes"] for i in (0, 1)]
    assert [ln for ln in lines if ln.startswith("class: ")] == [
        f"class: {want} ({f}: the RTL's, bit-exact with the integer model)" for f in (pgm, paper)]
    assert lines[-1].startswith("SUMMARY net=l10 format=int8 images=2 bit_exact=2 "
                                "rtl_correct=- "), lines[-1]
    assert _not_progress(proc.stderr) == []


def test_make_sim_image_default_network(tmp_path: Path) -> None:
    """``make sim IMAGE=<png>`` on the default mlp256 int8: the class line, bit-exact."""
    if reason := simulator_missing():
        pytest.skip(reason)
    png = write_png(tmp_path / "my seven.png", 255 - np.kron(SEVEN, np.ones((2, 2), np.uint8)))
    want = _model_class("mlp256", "int8", SEVEN)
    assert want == 7
    proc = subprocess.run(["make", "-s", "sim", f"IMAGE={png}"], cwd=ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert f"class: 7 ({png}: the RTL's, bit-exact with the integer model)" in lines, lines
    assert lines[-1].startswith("SUMMARY net=mlp256 format=int8 images=1 bit_exact=1 "
                                "rtl_correct=- "), lines[-1]


def test_sim_warns_of_a_format_that_loses_the_accuracy(tmp_path: Path) -> None:
    """l10 in q8_0 (legal, bit-exact, 13 % on the sample): one warning line on stderr, and
    the run passes."""
    if reason := simulator_missing():
        pytest.skip(reason)
    pgm = write_pgm(tmp_path / "seven.pgm", SEVEN)
    proc = subprocess.run([sys.executable, "-m", "mnist_fpga.tb.netsim", "--net", "l10",
                           "--format", "q8_0", "--image", str(pgm)],
                          cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _not_progress(proc.stderr) == [
        "warning: q8_0 gives 13.0 % on the sample's 100 images (float: 96.0 %): this format "
        "loses the network's accuracy"]
    assert "bit_exact=1 " in proc.stdout.splitlines()[-1]


def _not_progress(stderr: str) -> list[str]:
    """stderr's lines but the progress lines (``progress: ...``, every few seconds of a run
    without a terminal: mnist_fpga/progress.py)."""
    return [ln for ln in stderr.splitlines() if not ln.startswith("progress: ")]
