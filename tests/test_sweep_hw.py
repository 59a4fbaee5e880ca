"""bench.sweep_hw's pure parts: point parsing, images/s from measured figures, the best point."""

from __future__ import annotations

import pytest

from mnist_fpga.bench.sweep_hw import Point, best, parse_point
from mnist_fpga.gen.core.errors import UserError


def point(**kw) -> Point:
    base = dict(net="mlp256", format="int8", p=1, pe=64, mult="dsp", latency=3417,
                interval=3136.0, bit_exact=True, lut=1, ff=1, dsp=76, bram=118.0,
                fmax_mhz=100.0, fits=True, reason="")
    return Point(**{**base, **kw})


def test_parse_point() -> None:
    assert parse_point("2x64") == (2, 64, False)
    assert parse_point("4x64:lut") == (4, 64, True)
    assert parse_point("1xfull") == (1, None, False)
    for bad in ("0x64", "2x0", "2*64", "x64", "2x64:dsp"):
        with pytest.raises(UserError, match="give PxPE"):
            parse_point(bad)


def test_images_per_s_is_fmax_over_interval() -> None:
    assert point(fmax_mhz=125.0, interval=1568.0).images_per_s == pytest.approx(125e6 / 1568)
    assert point(fmax_mhz=None).images_per_s is None
    assert point(fits=False).images_per_s is None  # a design that does not fit has none
    assert "images_per_s=31888" in point().line()


def test_best_needs_bit_exact_fit_and_100_mhz() -> None:
    slow = point(p=2, interval=1568.0, fmax_mhz=99.9)       # fastest, but under 100 MHz
    wrong = point(p=4, interval=784.0, bit_exact=False)      # not bit-exact
    nofit = point(p=8, interval=392.0, fits=False, reason="x")
    ok1, ok2 = point(), point(pe=128, interval=1568.0, fmax_mhz=101.0)
    assert best([slow, wrong, nofit, ok1, ok2]) is ok2
    assert best([slow, wrong, nofit]) is None
