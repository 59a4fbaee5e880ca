"""Run the whole-network bench and report per image: ``make sim`` and the pytest runner.

Usage::

    mnist-fpga sim --net mlp256 --format int8 --images 20
    mnist-fpga sim --weights build/mlp64x32.npz --format int8   # net named after the file
    mnist-fpga sim --format w2a2 --prefer-qat   # models/mlp256_qat_w2a2.npz if committed
    mnist-fpga sim --image my_digit.png         # your own image (gen/data/image.py), no label
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from jinja2 import StrictUndefined, Template

from mnist_fpga.files import work_lock, write_atomic
from mnist_fpga.gen.core.errors import UserError, activity, cli_main
from mnist_fpga.gen.core.formats import Format, parse_format
from mnist_fpga.gen.core.model import QNet, check_images
from mnist_fpga.gen.core.quant import accuracy_warning, load_float_weights, quantize_file
from mnist_fpga.gen.data.image import load_image
from mnist_fpga.gen.data.sample import load_sample
from mnist_fpga.gen.hdl.generate import (
    TECH_CHOICES,
    check_net_name,
    check_rtl_limits,
    display_path,
    generate,
    neurons_parallel,
    parallelism,
)
from mnist_fpga.gen.hdl.sources import hdl_sources
from mnist_fpga.paths import BUILD, DEFAULT_SAMPLE
from mnist_fpga.progress import Progress
from mnist_fpga.tb.common import (
    ROOT,
    env_int,
    netlist_simulator,
    run_sim,
    simulator,
    simulator_missing,
)
from mnist_fpga.tb.coverage import coverage, format_coverage
from mnist_fpga.tb.faults import Faults, parse_faults, rom_fault
from mnist_fpga.tb.simreport import print_report

MODELS = ROOT / "models"
FEEDER = ROOT / "tb" / "hdl" / "pixel_feeder.vhd"
# <net>_tbtop: the generated top behind the bench's pixel feeder (simulation only)
FEEDER_TOP = Template((ROOT / "tb" / "hdl" / "feeder_top.vhd.j2").read_text(),
                      undefined=StrictUndefined, keep_trailing_newline=True)
MULT18X18D_MODEL = ROOT / "tb" / "hdl" / "MULT18X18D.vhd"  # for tech="ecp5"


def feeder_wrapper(qnet: QNet, out: Path) -> Path:
    """Write ``<net>_tbtop``: ``<net>_top`` fed by the bench's VHDL pixel feeder.

    Simulation only (tb/hdl/pixel_feeder.vhd): the bench loads a whole image per
    handshake instead of driving every beat from Python. The sizes come from the
    network's package (GHDL's llvm back end cannot set top-level generics at run time).
    Returns the file; the top instance is ``u_top``.
    """
    name = qnet.name
    text = FEEDER_TOP.render(name=name)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}_tbtop.vhd"
    write_atomic(path, text)
    return path


# From this many images (make sim's 20, the regression's jobs) GHDL compiles the generated
# units for run time: 0.1 s more to analyse mlp256's ROM, 10 % faster per image after.
OPTIMIZE_FROM = 20


def run_network_sim(
    net: str, fmt: str, n_images: int, first: int = 0, tag: str | None = None,
    weights: Path | None = None, sample: Path = DEFAULT_SAMPLE, faults: Faults | None = None,
    p: int = 1, announce: Callable[[str], None] | None = None, netlist: bool = False,
    pe: int | None = None, lut_mult: bool = False, tech: str = "generic",
    user_images: np.ndarray | None = None, warn: Callable[[str], None] | None = None,
    progress: bool = False,
) -> dict:
    """Generate ``net``/``fmt``, simulate ``n_images`` sample images, return the bench's results.

    ``user_images`` (uint8, (N, 28, 28), e.g. :func:`gen.data.image.load_image`'s) are simulated
    instead of the sample's, without labels; the sample still calibrates the network and
    checks the format (:func:`gen.core.quant.accuracy_warning`, in ``doc["warning"]``, handed to
    ``warn`` with ``announce``'s timing: after every input check).

    ``netlist`` simulates the Verilog that ``ghdl --synth`` writes (NETLIST_SIM,
    default Icarus) instead of the VHDL. Raises :class:`UserError` on bad input and
    ``AssertionError`` when the simulation fails without results. ``announce`` is
    called once every input is checked, before anything is written, with what is
    simulated: for a netlist, its path and the Verilog simulator. ``tech="ecp5"``
    simulates the code of the ECP5 synthesis flow: multiplier blocks (with
    tb/hdl/MULT18X18D.vhd) and sliced weight ROMs. ``progress`` shows the images done
    on stderr while the simulator runs (:class:`mnist_fpga.progress.Progress`).
    """
    fmt_ = parse_format(fmt)
    if tech not in TECH_CHOICES:
        raise UserError(f"tech={tech!r}: choose one of {', '.join(TECH_CHOICES)}")
    if tech != "generic" and netlist:
        raise UserError("the netlist simulation covers the generic code only (no Verilog "
                        "model of the ECP5 multiplier block here): drop --tech or --netlist")
    check_net_name(net)
    weights = Path(weights) if weights else MODELS / f"{net}.npz"
    if n_images < 1:
        raise UserError(f"--images must be >= 1 (images to simulate), got {n_images}")
    images, labels = load_sample(sample)
    if user_images is not None:
        first, n_images = 0, len(user_images)
    elif first < 0 or first + n_images > images.shape[0]:
        raise UserError(
            f"images {first}..{first + n_images - 1} requested, the sample {sample} has "
            f"{images.shape[0]} (indices 0..{images.shape[0] - 1})"
        )
    qnet = quantize_model(weights, fmt_, net)
    check_rtl_limits(qnet)
    parallelism(qnet, p)  # a bad P or PE is named before anything is printed
    neurons_parallel(qnet, pe)
    warning = accuracy_warning(load_float_weights(weights), qnet, images, labels)
    sim = netlist_simulator(sum(la.n_out for la in qnet.layers)) if netlist else simulator()
    if reason := simulator_missing(sim):  # after the input checks: bad input is named first
        raise UserError(reason)
    if netlist and (reason := simulator_missing("ghdl")):  # ghdl --synth writes the netlist
        raise UserError(reason)
    # one build folder per parameter set
    default = (f"{net}-{fmt_.name}-p{p}" + (f"-pe{pe}" if pe else "")
               + ("-lutmult" if lut_mult else "") + ("" if tech == "generic" else f"-{tech}")
               + f"-{'netlist-' if netlist else ''}{sim}")
    if weights.stem != net:  # another model of the same network: its own folder
        default += f"-{weights.stem}"
    if faults and faults.describe():
        spec = faults.describe().replace(" ", "-").replace(":", "").replace(",", "_")
        default += f"-fault-{spec}"
    work = BUILD / "sim" / (tag or default)
    if announce is not None:
        verilog = work / "netlist" / f"{net}_top.v"  # ROOT-relative, or absolute outside it
        shown = verilog.relative_to(ROOT) if verilog.is_relative_to(ROOT) else verilog
        announce(f"netlist: {shown} (ghdl --synth "
                 f"of {net}_top), simulated with {sim}" if netlist else f"simulator: {sim}")
    if warning and warn is not None:
        warn(warning)
    if user_images is not None:
        sample = unlabeled_sample(user_images)
    doc = simulate_qnet(qnet, work, sample, first, n_images, display_path(weights), faults, p,
                        pe, lut_mult, netlist=sim if netlist else None, tech=tech,
                        progress=progress)
    doc["warning"] = warning
    return doc


def quantize_model(weights: Path, fmt: Format, net: str) -> QNet:
    """The integer network that ``make sim``, the regression and their jobs simulate.

    A weights file without ``calib<k>`` arrays is calibrated on the committed sample,
    whatever images a run simulates: the calibration belongs to the model, so that every
    slice of a regression (and the regression's own accuracy figures) has the same integers.
    """
    return quantize_file(weights, fmt, net, calib_images=load_sample(DEFAULT_SAMPLE)[0])


def unlabeled_sample(images: np.ndarray) -> Path:
    """``images`` as a sample ``.npz`` with label -1 (none), under build/sim/images/.

    Named by its content and moved into place whole, so runs that share it agree on it.
    """
    data = {"images": check_images(np.ascontiguousarray(images)).reshape(-1, 28, 28),
            "labels": np.full(len(images), -1, dtype=np.int64)}
    digest = hashlib.sha256(data["images"].tobytes()).hexdigest()[:16]
    path = BUILD / "sim" / "images" / f"{digest}.npz"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.npz")
        np.savez(tmp, **data)
        os.replace(tmp, path)
    return path


def simulate_qnet(
    qnet: QNet, work: Path, sample: Path, first: int, n_images: int, source: str,
    faults: Faults | None = None, p: int | list[int] = 1, pe: int | list[int] | None = None,
    lut_mult: bool = False, netlist: str | None = None, tech: str = "generic",
    progress: bool = False,
) -> dict:
    """Generate ``qnet`` into ``work/gen`` and run the whole-network bench on sample images.

    ``netlist`` (a Verilog simulator, ``icarus`` or ``verilator``): simulate the
    ``ghdl --synth`` Verilog of the top (in ``work/netlist``) through a
    simulation-only wrapper that exposes the layer accumulators.

    ``sample`` holds ``images`` (uint8, 28x28 or one row of ``n_in`` inputs per image)
    and ``labels``. Returns the bench's results with ``failure`` (None when it passed)
    and a ``coverage`` line. Another run using ``work`` is waited for (:func:`work_lock`).

    The bench reports its images done to the file ``MLP_PROGRESS`` names (``tb.regress``
    sets it for its jobs), else, with ``progress``, to ``work/progress``, shown on stderr
    while the simulator runs. On Ctrl-C the simulator is stopped (:func:`tb.common.run_sim`)
    and ``KeyboardInterrupt`` raised, named ``simulation of <net> ...``
    (:func:`gen.core.errors.activity`).
    """
    shown = work.relative_to(ROOT) if work.is_relative_to(ROOT) else work
    what = f"simulation of {qnet.name} ({qnet.fmt.name}, {n_images} images) in {shown}"
    count_file = Path(os.environ.get("MLP_PROGRESS") or work / "progress")
    # the folder is this run's until it returns
    with activity(what), work_lock(work), _no_count_temporaries(count_file):
        faults = faults or Faults()
        ps = parallelism(qnet, p)
        pes = neurons_parallel(qnet, pe)
        gen_dir = generate(qnet, work / "gen", source, fault=rom_fault(qnet, faults), p=ps, pe=pes,
                           lut_mult=lut_mult, tech=tech)
        rtl = None
        if faults.mutants:  # a scratch copy of rtl/ with the mutants applied
            from mnist_fpga.tb.mutants import mutated_rtl

            rtl = mutated_rtl(faults.mutants, work)
        results = work / "results.json"
        results.unlink(missing_ok=True)
        env = {
            "MLP_QNET": gen_dir / "qnet.json", "MLP_SAMPLE": Path(sample).resolve(),
            "MLP_FIRST": first, "MLP_COUNT": n_images, "MLP_RESULTS": results, "MLP_P": ps[0],
        }
        if faults.expected is not None:
            env["MLP_FAULT_EXPECTED"] = faults.expected
        display = None
        if progress:
            count_file.unlink(missing_ok=True)  # a count of an earlier run is not this one's
            env["MLP_PROGRESS"] = count_file
            display = Progress([count_file], n_images, stream=sys.stderr)
        t0 = time.perf_counter()
        failure = None
        # The VHDL top is fed by the bench's VHDL pixel feeder (a few Python wake-ups per image
        # instead of one per clock); the Verilog netlist keeps the Python pixel driver.
        wrapper = feeder_wrapper(qnet, work / "tb")
        sources = {"toplevel": f"{qnet.name}_tbtop",
                   "vhdl_sources": ([str(MULT18X18D_MODEL)] if tech == "ecp5" else [])
                   + [str(p) for p in hdl_sources(gen_dir, qnet, rtl)]
                   + [str(FEEDER), str(wrapper)]}
        env["MLP_FEEDER"] = 1
        if netlist:
            from mnist_fpga.gen.eda.synth import ghdl_synth, netsim_wrapper

            syn = ghdl_synth(qnet, gen_dir, work / "netlist", quiet=True)
            wrapper = work / "netlist" / f"{qnet.name}_netsim.v"
            sources = {"toplevel": netsim_wrapper(qnet, syn["verilog"], wrapper),
                       "vhdl_sources": [], "verilog_sources": [str(syn["verilog"]), str(wrapper)],
                       "netlist_sim": netlist}
            env["MLP_FEEDER"] = 0
            t0 = time.perf_counter()  # the simulation, not the synthesis
        try:
            run_sim(
                module="test_mlp_top", **sources,
                build_dir=work / "sim", extra_env=env, bench_dir=ROOT / "tb" / "mlp_top",
                optimize=n_images >= OPTIMIZE_FROM, progress=display,
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
        if (errors := doc.get("errors")) and failure:  # missing, extra, duplicate results
            failure = (f"{len(errors)} results missing or extra: {'; '.join(errors[:5])}; "
                       f"{failure}")
        doc["total_s"] = time.perf_counter() - t0
        doc["failure"] = failure
        doc["n_classes"] = qnet.n_classes
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


@contextlib.contextmanager
def _no_count_temporaries(count_file: Path) -> Iterator[None]:
    """On Ctrl-C the simulator is killed, maybe while the bench renamed its count into
    place: remove such a temporary (``.<name>.<pid>.<random>.part``) of ``count_file``."""
    try:
        yield
    except KeyboardInterrupt:
        for tmp in count_file.parent.glob(f".{count_file.name}.*.part"):
            tmp.unlink(missing_ok=True)
        raise





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
    ap = argparse.ArgumentParser(prog="mnist-fpga sim", description=__doc__.split("\n")[0])
    ap.add_argument("--net", default=None,
                    help="network name (default: the --weights file's stem, else $NET or mlp256)")
    ap.add_argument("--format", default=os.environ.get("BITS", "int8"))
    ap.add_argument("--images", type=int, help="sample images to simulate (default $IMAGES or 20)")
    ap.add_argument("--first", type=int, help="the first sample image (default 0)")
    ap.add_argument("--image", action="append", type=Path, metavar="PATH",
                    help="your own image (PNG, PGM, ...; gen/data/image.py makes it 28x28), "
                         "without a label, instead of the sample's; repeatable")
    ap.add_argument("--weights", type=Path, help="float .npz (default models/<net>.npz)")
    ap.add_argument("--prefer-qat", action="store_true",
                    help="without --weights: models/<net>_qat_<format>.npz when it exists")
    ap.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE)
    ap.add_argument("--fault", action="append", metavar="SPEC",
                    help="inject a fault to see the bench fail (tb/faults.py), repeatable")
    ap.add_argument("--p", type=int, default=env_int("P", 1, lo=1),
                    help="inputs per clock of every layer (default 1)")
    ap.add_argument("--netlist", action="store_true",
                    default=os.environ.get("NETLIST", "0") == "1",
                    help="simulate the ghdl --synth netlist (Verilog, NETLIST_SIM)")
    # PE unset or empty: all neurons; any set value, 0 and negative ones too, goes to
    # neurons_parallel, whose one message covers PE < 1 from make (--pe) and from PE=.
    pe_env = env_int("PE", 0) if os.environ.get("PE", "").strip() else None
    ap.add_argument("--pe", type=int, default=pe_env,
                    help="neurons in parallel, clamped to each layer's neurons "
                         "(default: all of them)")
    ap.add_argument("--lut-mult", action="store_true",
                    default=os.environ.get("LUT_MULT", "0") == "1",
                    help="products from adders (one register per level), no DSP multipliers")
    ap.add_argument("--tech", choices=TECH_CHOICES, default="generic",
                    help="ecp5: the code of the ECP5 synthesis flow (multiplier blocks, with "
                         "their simulation model; sliced ROMs)")
    ap.add_argument("--tag", help="build folder name under build/sim/")
    ap.add_argument("--json", type=Path, help="also write the results here")
    ap.add_argument("--quiet", action="store_true", help="no table, no progress, only errors")
    args = ap.parse_args()
    user_images = None
    if args.image:
        if args.images is not None or args.first is not None:
            raise UserError("--image simulates the given image files: drop --images and --first")
        user_images = np.stack([load_image(path) for path in args.image])
    if user_images is not None:
        n_images = len(user_images)
    else:
        n_images = env_int("IMAGES", 20) if args.images is None else args.images
    net = net_name(args.net, args.weights)
    weights, note = choose_model(net, args.format, args.weights, args.prefer_qat)
    doc = run_network_sim(net, args.format, n_images, args.first or 0, tag=args.tag,
                          weights=weights, sample=args.sample,
                          faults=parse_faults(args.fault), p=args.p, pe=args.pe,
                          lut_mult=args.lut_mult, netlist=args.netlist, tech=args.tech,
                          progress=not args.quiet,
                          announce=None if args.quiet else lambda what: print(
                              f"{what}; {note}" if args.netlist else note, flush=True),
                          user_images=user_images,
                          warn=None if args.quiet else lambda w: print(w, file=sys.stderr,
                                                                       flush=True))
    if args.json:
        write_atomic(args.json, json.dumps(doc))
    if args.quiet:
        rc = 0 if all(r["bit_exact"] for r in doc["images"]) else 1
    else:
        rc = print_report(doc, args.format, [str(p) for p in args.image or []] or None)
    if doc["failure"] and rc == 0:
        print(f"error: simulation failed: {doc['failure']}", file=sys.stderr)
        rc = 1
    return rc


if __name__ == "__main__":
    cli_main(main)
