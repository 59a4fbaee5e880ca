"""What ``make sim`` prints: the per-image table, the class lines and the SUMMARY line.

The SUMMARY fields are documented in the README; ``make regress-full`` prints the same line.
"""

from __future__ import annotations

from mnist_fpga.gen.core.formats import parse_format


def summary_line(doc: dict, fmt: str, extra: str = "") -> str:
    """The last line of ``make sim`` (its fields are documented in the README).

    ``fmt`` is the format as given; the line names it canonically (``format_label``).
    ``extra`` (e.g. ``shard=1/4``) goes before ``images=``.
    """
    imgs = doc["images"]
    n = len(imgs)
    exact = sum(r["bit_exact"] for r in imgs)
    labelled = [r["rtl_correct"] for r in imgs if r.get("rtl_correct") is not None]
    correct = sum(labelled) if labelled or not imgs else "-"  # "-": no image has a label
    cycles = sum(r["cycles"] for r in imgs) / n
    ips = n / doc["wall_s"] if doc["wall_s"] > 0 else float("inf")
    return (
        f"SUMMARY net={doc['net']} format={format_label(fmt)} "
        f"{extra + ' ' if extra else ''}images={n} bit_exact={exact} "
        f"rtl_correct={correct} cycles_per_image={cycles:.0f} images_per_s={ips:.2f}"
    )


def print_report(doc: dict, fmt: str, names: list[str] | None = None) -> int:
    """Print one row per image and the SUMMARY line; return the exit status.

    ``names``: the files of the user's images (no label, ``-``): one ``class:`` line each.
    """
    print(f"{'image':>5} {'label':>5} {'rtl':>4} {'model':>5} {'bit_exact':>9} {'cycles':>6}")
    for r in doc["images"]:
        label = r["label"] if r["label"] >= 0 else "-"
        print(f"{r['index']:>5} {label:>5} {r['rtl_class']:>4} {r['model_class']:>5} "
              f"{'yes' if r['bit_exact'] else 'NO':>9} {r['cycles']:>6}")
        for m in r["mismatches"][:5]:
            print(f"      mismatch: {m}")
    for r, name in zip(doc["images"], names or [], strict=False):
        print(class_line(r, name, one_output=doc.get("n_classes") == 1))
    if doc.get("coverage"):
        print(doc["coverage"] + "  (bit-exact images only)")
    lat = max(r["cycles"] for r in doc["images"])
    ii = f"{doc['interval']:.1f}" if doc.get("interval") else "n/a (needs 3 images)"
    pe = ",".join(map(str, doc.get("pe", [])))
    print(f"TIMING p={','.join(map(str, doc['p']))} pe={pe} latency_cycles={lat} "
          f"initiation_interval_cycles={ii}")
    print(summary_line(doc, fmt))
    return 0 if all(r["bit_exact"] for r in doc["images"]) else 1


def class_line(r: dict, name: str, one_output: bool = False) -> str:
    """``class: 7 (digit.png: the RTL's, bit-exact with the integer model)`` for one image."""
    meaning = {1: " = a 0", 0: " = not a 0"}.get(r["rtl_class"], "") if one_output else ""
    verdict = ("bit-exact with the integer model" if r["bit_exact"] else
               f"NOT bit-exact: the integer model says {r['model_class']}")
    return f"class: {r['rtl_class']}{meaning} ({name}: the RTL's, {verdict})"


def format_label(fmt: str) -> str:
    """``format=`` of the SUMMARY line: the canonical name (``w8a8`` is ``int8``)."""
    return parse_format(fmt).name
