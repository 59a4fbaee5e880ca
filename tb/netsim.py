"""Run the whole-network bench and report per image: ``make sim`` and the pytest runner.

Usage::

    python -m tb.netsim --net mlp256 --format int8 --images 20
    python -m tb.netsim --weights build/mlp64x32.npz --format int8   # net named after the file
    python -m tb.netsim --format w2a2 --prefer-qat   # models/mlp256_qat_w2a2.npz if committed
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gen.coverage import coverage, format_coverage
from gen.errors import UserError, cli_main
from gen.faults import Faults, parse_faults
from gen.formats import parse_format
from gen.generate import (
    DEFAULT_SAMPLE,
    check_net_name,
    check_rtl_limits,
    display_path,
    generate,
    hdl_sources,
    load_sample,
    neurons_parallel,
    parallelism,
)
from gen.model import QNet, check_images
from gen.quant import quantize_file
from tb.common import (
    BUILD,
    ROOT,
    env_int,
    netlist_simulator,
    run_sim,
    simulator,
    simulator_missing,
)

MODELS = ROOT / "models"


def run_network_sim(
    net: str, fmt: str, n_images: int, first: int = 0, tag: str | None = None,
    weights: Path | None = None, sample: Path = DEFAULT_SAMPLE, faults: Faults | None = None,
    p: int = 1, announce: Callable[[], None] | None = None, netlist: bool = False,
    pe: int | None = None, lut_mult: bool = False,
) -> dict:
    """Generate ``net``/``fmt``, simulate ``n_images`` sample images, return the bench's results.

    ``netlist`` simulates the Verilog that ``ghdl --synth`` writes (NETLIST_SIM,
    default Icarus) instead of the VHDL. Raises :class:`UserError` on bad input and
    ``AssertionError`` when the simulation fails without results. ``announce`` is
    called once every input is checked, before anything is written.
    """
    fmt_ = parse_format(fmt)
    check_net_name(net)
    weights = Path(weights) if weights else MODELS / f"{net}.npz"
    images, _ = load_sample(sample)
    if n_images < 1 or first < 0 or first + n_images > images.shape[0]:
        raise UserError(
            f"images {first}..{first + n_images - 1} requested, the sample {sample} has "
            f"{images.shape[0]} (indices 0..{images.shape[0] - 1})"
        )
    qnet = quantize_file(weights, fmt_, net, calib_images=images)
    check_rtl_limits(qnet)
    parallelism(qnet, p)  # a bad P is named before anything is printed
    sim = netlist_simulator(sum(la.n_out for la in qnet.layers)) if netlist else simulator()
    if reason := simulator_missing(sim):  # after the input checks: bad input is named first
        raise UserError(reason)
    if netlist and (reason := simulator_missing("ghdl")):  # ghdl --synth writes the netlist
        raise UserError(reason)
    if announce is not None:
        announce()
    # one build folder per parameter set
    default = (f"{net}-{fmt_.name}-p{p}" + (f"-pe{pe}" if pe else "")
               + ("-lutmult" if lut_mult else "") + f"-{'netlist-' if netlist else ''}{sim}")
    if weights.stem != net:  # another model of the same network: its own folder
        default += f"-{weights.stem}"
    if faults and faults.describe():
        spec = faults.describe().replace(" ", "-").replace(":", "").replace(",", "_")
        default += f"-fault-{spec}"
    work = BUILD / "sim" / (tag or default)
    return simulate_qnet(qnet, work, sample, first, n_images, display_path(weights), faults, p,
                         pe, lut_mult, netlist=sim if netlist else None)


def simulate_qnet(
    qnet: QNet, work: Path, sample: Path, first: int, n_images: int, source: str,
    faults: Faults | None = None, p: int | list[int] = 1, pe: int | list[int] | None = None,
    lut_mult: bool = False, netlist: str | None = None,
) -> dict:
    """Generate ``qnet`` into ``work/gen`` and run the whole-network bench on sample images.

    ``netlist`` (a Verilog simulator, ``icarus`` or ``verilator``): simulate the
    ``ghdl --synth`` Verilog of the top (in ``work/netlist``) through a
    simulation-only wrapper that exposes the layer accumulators.

    ``sample`` holds ``images`` (uint8, 28x28 or one row of ``n_in`` inputs per image)
    and ``labels``. Returns the bench's results with ``failure`` (None when it passed)
    and a ``coverage`` line.
    """
    faults = faults or Faults()
    ps = parallelism(qnet, p)
    pes = neurons_parallel(qnet, pe)
    gen_dir = generate(qnet, work / "gen", source, faults=faults, p=ps, pe=pes,
                       lut_mult=lut_mult)
    rtl = None
    if faults.mutants:  # a scratch copy of rtl/ with the mutants applied
        from tb.mutants import mutated_rtl

        rtl = mutated_rtl(faults.mutants, work)
    results = work / "results.json"
    results.unlink(missing_ok=True)
    env = {
        "MLP_QNET": gen_dir / "qnet.json", "MLP_SAMPLE": Path(sample).resolve(),
        "MLP_FIRST": first, "MLP_COUNT": n_images, "MLP_RESULTS": results, "MLP_P": ps[0],
    }
    if faults.expected is not None:
        env["MLP_FAULT_EXPECTED"] = faults.expected
    t0 = time.perf_counter()
    failure = None
    sources = {"toplevel": f"{qnet.name}_top",
               "vhdl_sources": [str(p) for p in hdl_sources(gen_dir, qnet, rtl)]}
    if netlist:
        from gen.synth import ghdl_synth, netsim_wrapper

        syn = ghdl_synth(qnet, gen_dir, work / "netlist", quiet=True)
        wrapper = work / "netlist" / f"{qnet.name}_netsim.v"
        sources = {"toplevel": netsim_wrapper(qnet, syn["verilog"], wrapper), "vhdl_sources": [],
                   "verilog_sources": [str(syn["verilog"]), str(wrapper)], "netlist_sim": netlist}
        t0 = time.perf_counter()  # the simulation, not the synthesis
    try:
        run_sim(
            module="test_mlp_top", **sources,
            build_dir=work / "sim", extra_env=env, bench_dir=ROOT / "tb" / "mlp_top",
        )
    except SystemExit as exc:  # cocotb-test reports failed tests this way
        failure = str(exc)
    if not results.exists():
        raise AssertionError(
            f"simulation of {qnet.name} ({qnet.fmt.name}) produced no results: {failure}"
        )
    doc = json.loads(results.read_text())
    if doc.get("stuck") and failure:
        failure = f"deadlock: {doc['stuck']}; {failure}"
    doc["total_s"] = time.perf_counter() - t0
    doc["failure"] = failure
    doc["p"] = ps
    doc["pe"] = pes
    done = [r["done_cycle"] for r in doc["images"]]
    # steady-state initiation interval: clocks between consecutive results
    doc["interval"] = (done[-1] - done[1]) / (len(done) - 2) if len(done) > 2 else None
    exact = [r["index"] for r in doc["images"] if r["bit_exact"]]
    if exact:
        with np.load(sample) as npz:
            vectors = check_images(npz["images"], qnet.layers[0].n_in)[exact]
        doc["coverage"] = format_coverage(qnet, coverage(qnet, vectors))
    else:
        doc["coverage"] = ""
    return doc


def summary_line(doc: dict, bits: str, extra: str = "") -> str:
    """The last line of ``make sim`` (format fixed by the README).

    ``extra`` (e.g. ``shard=1/4``) goes before ``images=``.
    """
    imgs = doc["images"]
    n = len(imgs)
    exact = sum(r["bit_exact"] for r in imgs)
    correct = sum(r["rtl_correct"] for r in imgs)
    cycles = sum(r["cycles"] for r in imgs) / n
    ips = n / doc["wall_s"] if doc["wall_s"] > 0 else float("inf")
    return (
        f"SUMMARY net={doc['net']} bits={bits} {extra + ' ' if extra else ''}images={n} "
        f"bit_exact={exact} "
        f"rtl_correct={correct} cycles_per_image={cycles:.0f} images_per_s={ips:.2f}"
    )


def print_report(doc: dict, bits: str) -> int:
    """Print one row per image and the SUMMARY line; return the exit status."""
    print(f"{'image':>5} {'label':>5} {'rtl':>4} {'model':>5} {'bit_exact':>9} {'cycles':>6}")
    for r in doc["images"]:
        print(f"{r['index']:>5} {r['label']:>5} {r['rtl_class']:>4} {r['model_class']:>5} "
              f"{'yes' if r['bit_exact'] else 'NO':>9} {r['cycles']:>6}")
        for m in r["mismatches"][:5]:
            print(f"      mismatch: {m}")
    if doc.get("coverage"):
        print(doc["coverage"] + "  (bit-exact images only)")
    lat = max(r["cycles"] for r in doc["images"])
    ii = f"{doc['interval']:.1f}" if doc.get("interval") else "n/a (needs 3 images)"
    pe = ",".join(map(str, doc.get("pe", [])))
    print(f"TIMING p={','.join(map(str, doc['p']))} pe={pe} latency_cycles={lat} "
          f"initiation_interval_cycles={ii}")
    print(summary_line(doc, bits))
    return 0 if all(r["bit_exact"] for r in doc["images"]) else 1


def bits_label(fmt: str) -> str:
    """``bits=`` of the SUMMARY line: the width for int<B>, else the format name."""
    f = parse_format(fmt)
    return str(f.w_bits) if f.name == f"int{f.w_bits}" else f.name


def qat_models(net: str) -> dict[str, Path]:
    """Committed QAT models of ``net``: ``models/<net>_qat_<format>.npz`` by format name."""
    found = {}
    for path in sorted(MODELS.glob(f"{net}_qat_*.npz")):
        try:
            found[parse_format(path.stem.removeprefix(f"{net}_qat_")).name] = path
        except UserError:  # not a format suffix: not one of ours
            continue
    return found


def choose_model(net: str, fmt: str, weights: Path | None, prefer_qat: bool) -> tuple[Path, str]:
    """The weights file to simulate and one line saying which it is and how to pick another.

    With ``prefer_qat`` and no ``weights``, a committed QAT model for the format
    (``models/<net>_qat_<format>.npz``, e.g. ``w2a2`` for ``int2``) wins over the float
    model ``models/<net>.npz``.
    """
    name = parse_format(fmt).name
    shown = name if fmt == name else f"{fmt} (= {name})"
    if weights is not None:
        return weights, f"model: {display_path(weights)} as network {net} ({name})"
    qats = qat_models(net) if prefer_qat else {}
    float_model = MODELS / f"{net}.npz"
    if name in qats:
        return qats[name], (f"model: {display_path(qats[name])}, the QAT model for {shown}; "
                            f"WEIGHTS={display_path(float_model)} quantizes the float model "
                            "instead, WEIGHTS=path.npz any other")
    suffixes = ", ".join(p.stem.removeprefix(f"{net}_qat_") for p in qats.values())
    hint = f" (QAT models exist for BITS={suffixes})" if qats else ""
    return float_model, (f"model: {display_path(float_model)}, float, quantized to {shown} "
                         f"after training{hint}; WEIGHTS=path.npz picks another")


def net_name(net: str | None, weights: Path | None) -> str:
    """``--net``, else the weights file's stem, else ``$NET``, else mlp256."""
    if net is not None:
        return net
    if weights is None:
        return os.environ.get("NET") or "mlp256"
    try:
        check_net_name(weights.stem)
    except UserError:
        raise UserError(
            f"network name {weights.stem!r} (the file name of {weights}) is not a valid VHDL "
            "identifier; name the network with NET=<name> (--net)"
        ) from None
    return weights.stem


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m tb.netsim", description=__doc__.split("\n")[0])
    ap.add_argument("--net", default=None,
                    help="network name (default: the --weights file's stem, else $NET or mlp256)")
    ap.add_argument("--format", default=os.environ.get("BITS", "int8"))
    ap.add_argument("--images", type=int, default=env_int("IMAGES", 20))
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--weights", type=Path, help="float .npz (default models/<net>.npz)")
    ap.add_argument("--prefer-qat", action="store_true",
                    help="without --weights: models/<net>_qat_<format>.npz when it exists")
    ap.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    ap.add_argument("--fault", action="append", metavar="SPEC",
                    help="inject a fault to see the bench fail (gen/faults.py), repeatable")
    ap.add_argument("--p", type=int, default=env_int("P", 1, lo=1),
                    help="inputs per clock of every layer (default 1)")
    ap.add_argument("--netlist", action="store_true",
                    default=os.environ.get("NETLIST", "0") == "1",
                    help="simulate the ghdl --synth netlist (Verilog, NETLIST_SIM)")
    ap.add_argument("--pe", type=int, default=env_int("PE", 0, lo=0) or None,
                    help="neurons in parallel, clamped to each layer's neurons "
                         "(default: all of them)")
    ap.add_argument("--lut-mult", action="store_true",
                    default=os.environ.get("LUT_MULT", "0") == "1",
                    help="products from adders (two pipeline stages), no DSP multipliers")
    ap.add_argument("--tag", help="build folder name under build/sim/")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--quiet", action="store_true", help="no table, only errors")
    args = ap.parse_args()
    net = net_name(args.net, args.weights)
    weights, note = choose_model(net, args.format, args.weights, args.prefer_qat)
    doc = run_network_sim(net, args.format, args.images, args.first, tag=args.tag,
                          weights=weights, sample=args.sample,
                          faults=parse_faults(args.fault), p=args.p, pe=args.pe,
                          lut_mult=args.lut_mult, netlist=args.netlist,
                          announce=None if args.quiet else lambda: print(note, flush=True))
    if args.json:
        args.json.write_text(json.dumps(doc))
    if args.quiet:
        rc = 0 if all(r["bit_exact"] for r in doc["images"]) else 1
    else:
        rc = print_report(doc, bits_label(args.format))
    if doc["failure"] and rc == 0:
        print(f"error: simulation failed: {doc['failure']}", file=sys.stderr)
        rc = 1
    return rc


if __name__ == "__main__":
    cli_main(main)
