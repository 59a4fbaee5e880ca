"""Property-based fuzzing of generator + RTL + model: random networks, checked bit-exactly.

Each example is a random integer network (1 to 3 layers, 1 to 64 neurons, 1 to 784
inputs, weight and activation widths 2..16: accumulators up to about 45 bits, so both
the integer and the wide datapath of rtl/mlp_layer.vhd are exercised), with random or extreme
weights (all maximum, all minimum, alternating) and inputs, and requantization
parameters that often saturate. It is generated, compiled in GHDL and run through
the whole-network bench, which checks every accumulator of every layer.

``FUZZ_EXAMPLES`` sets the number of examples (default 3 in ``make test``; run 200
with ``FUZZ_EXAMPLES=200 pytest tb/fuzz``). A failure prints the example's seed and
network; ``FUZZ_SEED=<seed>`` replays exactly that example
(``pytest tb/fuzz -k replay``).
"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gen.formats import Format
from gen.model import QLayer, QNet
from tb.common import BUILD, simulator, simulator_missing

PATTERNS = ("random", "max", "min", "alternating", "sparse")
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "3"))


def _weights(rng: np.random.Generator, shape: tuple[int, int], bits: int, pattern: str):
    qmax = (1 << (bits - 1)) - 1
    if pattern == "max":
        return np.full(shape, qmax, dtype=np.int64)
    if pattern == "min":
        return np.full(shape, -qmax, dtype=np.int64)
    if pattern == "alternating":
        sign = np.where((np.arange(shape[0])[:, None] + np.arange(shape[1])) % 2 == 0, 1, -1)
        return (sign * qmax).astype(np.int64)
    w = rng.integers(-qmax, qmax + 1, size=shape, dtype=np.int64)
    if pattern == "sparse":
        w[rng.random(shape) < 0.8] = 0
    return w


def random_network(seed: int) -> tuple[QNet, np.ndarray]:
    """A random network and its input vectors, all determined by ``seed``."""
    from gen.quant import acc_bits_for

    rng = np.random.default_rng(seed)
    n_layers = int(rng.integers(1, 4))
    sizes = [int(rng.integers(1, 785))] + [int(rng.integers(1, 65)) for _ in range(n_layers)]
    a_bits = int(rng.integers(2, 17))
    w_bits = int(rng.integers(2, 17))
    layers = []
    for k in range(n_layers):
        n_in, n_out = sizes[k], sizes[k + 1]
        pattern = PATTERNS[int(rng.integers(len(PATTERNS)))]
        w = _weights(rng, (n_out, n_in), w_bits, pattern)
        span = 1 << min(w_bits + a_bits, 28)
        b = rng.integers(-span, span + 1, size=n_out, dtype=np.int64)
        if rng.random() < 0.4:  # equal biases: identical weight rows then tie in argmax
            b[:] = 0
        acc_bits = acc_bits_for(w, b, (1 << a_bits) - 1)
        hidden = k < n_layers - 1
        layer = QLayer(w=w, b=b, w_bits=w_bits, a_bits=a_bits, acc_bits=acc_bits, hidden=hidden,
                       info={"pattern": pattern})
        if hidden:
            layer.rq_mult = int(rng.integers(1 << 15, 1 << 16))
            # small shifts saturate, large ones scale down: both ends are reached
            layer.rq_shift = int(rng.integers(1, acc_bits + 16))
            layer.out_bits = a_bits
        layers.append(layer)
    qnet = QNet(name="fuzz", fmt=Format(w_bits, a_bits), layers=layers, source=f"seed {seed}")
    n_images = 3
    kind = int(rng.integers(4))
    if kind == 0:
        x = np.full((n_images, sizes[0]), 255, dtype=np.uint8)
    elif kind == 1:
        x = (np.indices((n_images, sizes[0])).sum(axis=0) % 2 * 255).astype(np.uint8)
    else:
        x = rng.integers(0, 256, size=(n_images, sizes[0]), dtype=np.uint8)
    return qnet, x


def describe(qnet: QNet) -> str:
    sizes = [qnet.layers[0].n_in] + [layer.n_out for layer in qnet.layers]
    return (f"{' -> '.join(map(str, sizes))} {qnet.fmt.name} "
            f"acc={[layer.acc_bits for layer in qnet.layers]} "
            f"patterns={[layer.info['pattern'] for layer in qnet.layers]}")


def check_seed(seed: int) -> None:
    """Generate, simulate and check the network of ``seed``; raise with the seed on failure."""
    from tb.netsim import simulate_qnet

    qnet, x = random_network(seed)
    work = BUILD / "fuzz" / f"{simulator()}-current"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    sample = work / "vectors.npz"
    np.savez(sample, images=x, labels=np.zeros(len(x), dtype=np.uint8))
    doc = simulate_qnet(qnet, work, sample, 0, len(x), f"fuzz seed {seed}")
    bad = [m for r in doc["images"] for m in r["mismatches"]]
    bad += [f"image {r['index']}: class expected {r['model_class']} got {r['rtl_class']}"
            for r in doc["images"] if r["rtl_class"] != r["model_class"]]
    exact = all(r["bit_exact"] for r in doc["images"])
    assert exact and doc["failure"] is None, (
        f"FUZZ_SEED={seed} ({describe(qnet)}) not bit-exact: {bad[:3]} {doc['failure'] or ''}"
    )


@pytest.fixture(autouse=True)
def _need_simulator() -> None:
    if reason := simulator_missing():
        pytest.skip(reason)


@settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
          suppress_health_check=list(HealthCheck))
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_fuzz_network(seed: int) -> None:
    """Random networks through generator, RTL and model: every accumulator bit-exact."""
    check_seed(seed)


@pytest.mark.skipif("FUZZ_SEED" not in os.environ, reason="set FUZZ_SEED to replay one example")
def test_fuzz_replay() -> None:
    check_seed(int(os.environ["FUZZ_SEED"]))


def test_fuzz_extremes_reached() -> None:
    """The generator of random networks does reach the extremes it claims to (no GHDL)."""
    from gen.coverage import coverage

    seen = {"max": 0, "min": 0, "alternating": 0, "sat": 0, "wide": 0, "tie": 0, "int": 0}
    for seed in range(60):
        qnet, x = random_network(seed)
        for layer in qnet.layers:
            if layer.info["pattern"] in seen:
                seen[layer.info["pattern"]] += 1
            seen["wide"] += layer.acc_bits > 31  # numeric_std datapath
            seen["int"] += layer.acc_bits <= 31  # integer datapath
        cov = coverage(qnet, x)
        seen["sat"] += cov["requant_sat_high"] > 0
        seen["tie"] += cov["argmax_tie"] > 0
    assert all(seen.values()), seen
