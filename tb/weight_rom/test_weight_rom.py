"""Weight-ROM bench: the entity gen.hdl.generate renders from gen/hdl/templates/rom.vhd.j2, alone.

A sequential sweep over every address (past the last word too, where the ROM
must read zero), runs of a held address, then random addresses. The read is
registered: in the clock after the address changes, dout must still hold the
previous address's word, all clock long (a combinational ROM fails here), and
then the new one. The read enable ``en`` is '0' in about a quarter of the clocks:
then dout keeps the last word read.
The expected word is rebuilt from the weight matrix by the documented layout
(neuron n at bits [(n+1)W-1 : nW]), independently of ``gen.hdl.generate.pack``.
``TB_ROM_READS`` (default 300) sets the number of random reads, ``TB_SEED`` the seed
(default: fixed per parameter set).
"""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest

from mnist_fpga.tb.bench import HAVE_COCOTB, UnitRun, params, run_size
from mnist_fpga.tb.common import decode_flat
from mnist_fpga.tb.selftest import checker_tests, inject, mismatch, verdict

NET = "weight_rom_tb"
ENTITY = f"{NET}_l0_rom"  # the generator's ROM entity name for layer 0


def make_weights(n_in: int, n_out: int, w_bits: int, seed: int) -> np.ndarray:
    """Random signed weights over the full range, with all-max, all-min and zero words."""
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1
    w = rng.integers(lo, hi, size=(n_out, n_in), endpoint=True, dtype=np.int64)
    w[:, 0] = lo if n_in == 1 else hi   # one input: the single word holds the minimum
    special = [np.full(n_out, lo), np.zeros(n_out, dtype=np.int64),
               np.where(np.arange(n_out) % 2 == 0, lo, hi)]  # alternating signs
    for i, col in enumerate(special, start=1):
        if i < n_in:
            w[:, i] = col
    return w


def render_rom(w: np.ndarray, w_bits: int) -> str:
    """The ROM entity ``ENTITY`` for weights ``w`` (n_out, n_in), rendered by gen.hdl.generate.

    Through render_network, the generator's own path, so the bench follows whatever
    arguments the template needs (a one-layer network; its package and top are unused).
    """
    from mnist_fpga.gen.core.formats import Format
    from mnist_fpga.gen.core.legal import acc_bits_for
    from mnist_fpga.gen.core.model import QLayer, QNet
    from mnist_fpga.gen.hdl.generate import render_network

    b = np.zeros(w.shape[0], dtype=np.int64)
    layer = QLayer(w=w, b=b, w_bits=w_bits, a_bits=w_bits,
                   acc_bits=acc_bits_for(w, b, (1 << w_bits) - 1, w_bits), hidden=False)
    qnet = QNet(NET, Format(w_bits, w_bits), [layer])
    return render_network(qnet, "random weights of tb/weight_rom")[f"{ENTITY}.vhd"]


def expected_word(w: np.ndarray, w_bits: int, addr: int) -> int:
    """The word at ``addr``: neuron n's two's-complement weight at bits [(n+1)W-1 : nW]."""
    n_out, n_in = w.shape
    if addr >= n_in:
        return 0
    return sum((int(w[n, addr]) % (1 << w_bits)) << (n * w_bits) for n in range(n_out))


def make_addresses(n_in: int, addr_bits: int, count: int, seed: int) -> list[int]:
    """Sweep all addresses, hold a few, then ``count`` random ones (a quarter past the end)."""
    rng = random.Random(seed)
    size = 1 << addr_bits
    addrs = list(range(size))
    for a in (0, n_in - 1, size - 1):
        addrs += [a] * 3
    for _ in range(count):
        if size > n_in and rng.random() < 0.25:
            addrs.append(rng.randrange(n_in, size))
        else:
            addrs.append(rng.randrange(n_in))
    return addrs


if HAVE_COCOTB:
    from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

    from mnist_fpga.tb.bench import TB

    async def run_reads(dut, fault: bool) -> None:
        """Drive the address list; after each change check that dout is still the old word."""
        seed, count = run_size(fault, params()["reads"], 20)
        w = np.load(params()["weights"])
        w_bits, addr_bits = params()["w_bits"], params()["addr_bits"]
        n_out, n_in = w.shape
        injected = None
        if fault:  # self-test of the checker: one wrong expected weight
            v = w[0, n_in - 1]
            injected = inject(w, (0, n_in - 1), v + 1 if v < 0 else v - 1,
                              f"address {n_in - 1} neuron 0")
        addrs = make_addresses(n_in, addr_bits, count, seed)
        # the read enable: '0' in about a quarter of the clocks, where dout must hold
        tb = TB(dut, seed ^ 0x5A5A, has_reset=False)
        ens = [1] + [int(tb.rng.random() >= 0.25) for _ in addrs[1:]]
        await tb.clocks(1)
        dut.addr.value = addrs[0]
        dut.en.value = 1
        await RisingEdge(dut.clk)  # the first address is sampled here
        errors: list[str] = []
        telling = 0  # clocks where a combinational (unregistered) read would differ
        held_telling = 0  # clocks where a ROM that ignores en would differ
        exp, exp_addr = expected_word(w, w_bits, addrs[0]), addrs[0]
        for i, (prev, addr) in enumerate(itertools.pairwise(addrs), start=1):
            dut.addr.value = addr
            dut.en.value = ens[i]
            word = expected_word(w, w_bits, prev)
            if ens[i - 1]:  # the edge that took prev read it; else dout holds
                exp, exp_addr = word, prev
            else:
                held_telling += word != exp
            telling += exp != expected_word(w, w_bits, addr)
            # Right after the edge that took `prev` (addr already shows the next address),
            # and again half a clock later: dout must be prev's word all clock long.
            for when in ("after the edge", "mid-clock"):
                if when == "mid-clock":
                    await FallingEdge(dut.clk)
                await ReadOnly()
                got = int(dut.dout.value.to_unsigned())
                # one error per wrong weight, named by the address whose word dout holds
                errors += [f"{mismatch(f'address {exp_addr} neuron {n}', e, g)} "
                           f"({when} of clock {i}: en={ens[i - 1]}, addr={addr})"
                           for n, (e, g) in enumerate(zip(decode_flat(exp, n_out, w_bits),
                                                          decode_flat(got, n_out, w_bits),
                                                          strict=True)) if e != g]
            await RisingEdge(dut.clk)
        assert telling > 0, "these addresses cannot tell a registered from a combinational read"
        assert held_telling > 0, "these reads cannot tell a ROM that ignores its enable"
        verdict(errors, injected, f"wrong weights in {2 * (len(addrs) - 1)} checks")

    rom_reads, rom_reads_catches_injected_fault = checker_tests(
        __name__, "rom_reads",
        "Every address, held addresses and random ones, against the weight matrix.", run_reads)


# ----------------------------------------------------------------------------- pytest runner

# (n_in, n_out, w_bits): 2**ADDR_BITS > n_in except n16x4, whose ROM is exactly full.
CASES = [
    (1, 1, 8),      # one word, ADDR_BITS=1: address 1 is past the end
    (784, 10, 8),   # the l10 input layer: 240 addresses past the end
    (37, 16, 4),
    (9, 5, 3),      # 15-bit words: sized literals 15x"..."
    (16, 4, 16),    # 64-bit words, every address used
]


def _id(case: tuple[int, int, int]) -> str:
    n_in, n_out, w_bits = case
    return f"n{n_in}x{n_out}-int{w_bits}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_weight_rom(case: tuple[int, int, int], request: pytest.FixtureRequest) -> None:
    """The generated ROM returns the packed word one clock after the address, zero past the end."""
    from mnist_fpga.gen.hdl.memories import clog2
    from mnist_fpga.tb.common import env_int

    run = UnitRun(request, seed_key=_id(case))
    n_in, n_out, w_bits = case
    w = make_weights(n_in, n_out, w_bits, run.seed)
    np.save(run.build / "weights.npy", w)
    rom = run.build / f"{ENTITY}.vhd"
    rom.write_text(render_rom(w, w_bits))
    run.run(ENTITY, [rom], {"weights": run.build / "weights.npy", "w_bits": w_bits,
                            "addr_bits": clog2(n_in), "reads": env_int("TB_ROM_READS", 300, lo=1)})
