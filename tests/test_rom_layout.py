"""ROM layout with neuron folding (PE) and input lanes (P), against the documented formula.

Word f*BEATS + j holds w(f*PE + e, j*P + q) at field e*P + q (0 past N_OUT and N_IN),
docs/architecture.md; the expected words are built here field by field, independently of
gen.hdl.generate.pack.
"""

from __future__ import annotations

import numpy as np
import pytest

from mnist_fpga.gen.core.model import QLayer
from mnist_fpga.gen.hdl.generate import neurons_parallel, rom_words


def _layer(n_out: int, n_in: int, w_bits: int, seed: int) -> QLayer:
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    w = rng.integers(lo, hi, size=(n_out, n_in), endpoint=True, dtype=np.int64)
    return QLayer(w=w, b=np.zeros(n_out, dtype=np.int64), w_bits=w_bits, a_bits=8,
                  acc_bits=24, hidden=False)


@pytest.mark.parametrize(("n_out", "n_in", "p", "pe"), [
    (10, 7, 1, 10), (10, 7, 3, 4), (10, 7, 2, 5), (3, 5, 5, 1), (7, 9, 4, 3), (4, 4, 1, 9),
])
def test_rom_words_fold_layout(n_out: int, n_in: int, p: int, pe: int) -> None:
    w_bits = 5
    layer = _layer(n_out, n_in, w_bits, seed=n_out * 100 + n_in)
    pe_n = min(pe, n_out)
    beats, folds = -(-n_in // p), -(-n_out // pe_n)
    words = rom_words(layer, p, pe)
    assert len(words) == folds * beats
    mask = (1 << w_bits) - 1
    for f in range(folds):
        for j in range(beats):
            word = words[f * beats + j]
            for e in range(pe_n):
                for q in range(p):
                    n, i = f * pe_n + e, j * p + q
                    want = int(layer.w[n, i]) if n < n_out and i < n_in else 0
                    field = (word >> ((e * p + q) * w_bits)) & mask
                    assert field == want & mask, (f, j, e, q)
            assert word >> (pe_n * p * w_bits) == 0


def test_rom_words_default_is_one_fold() -> None:
    layer = _layer(6, 5, 4, seed=1)
    assert rom_words(layer, 2) == rom_words(layer, 2, 6) == rom_words(layer, 2, 99)


def test_neurons_parallel_clamps_and_checks() -> None:
    from mnist_fpga.gen.core.errors import UserError
    from mnist_fpga.gen.core.formats import Format
    from mnist_fpga.gen.core.model import QNet

    qnet = QNet("t", Format(8, 8), [_layer(6, 5, 8, 1), _layer(3, 6, 8, 2)])
    assert neurons_parallel(qnet, None) == [6, 3]
    assert neurons_parallel(qnet, 4) == [4, 3]
    assert neurons_parallel(qnet, [2, 1]) == [2, 1]
    for bad in (0, [1], [1, 2, 3]):
        with pytest.raises(UserError):
            neurons_parallel(qnet, bad)
