"""RTL mutants: bench-built copies of rtl/ with one deliberate change each.

The list lives in ``tb/mutants/mutants.toml``. :func:`mutated_rtl` writes a scratch
copy of ``rtl/`` with the chosen mutants applied; the benches compile that copy
instead of ``rtl/`` when ``MNIST_FPGA_RTL`` points at it (:func:`gen.hdl.generate.rtl_dir`).
The production RTL carries no test hooks: negative tests (``--fault round``) and
``make mutants`` (``tb/mutants/run.py``) both go through here.
"""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.paths import PKG_ROOT as ROOT

LIST = Path(__file__).resolve().parent / "mutants.toml"


@dataclass(frozen=True)
class Mutant:
    """One change to one RTL file: ``find`` (exactly once) becomes ``replace``."""

    id: str
    file: str
    what: str
    find: str
    replace: str
    equivalent: str = ""  # a one-line argument that no input can tell it apart


def load_mutants(path: Path = LIST) -> dict[str, Mutant]:
    """Every mutant of the list, by id."""
    doc = tomllib.loads(Path(path).read_text())
    out = {}
    for entry in doc.get("mutant", []):
        m = Mutant(**entry)
        if m.id in out:
            raise ValueError(f"{path}: mutant id {m.id!r} appears twice")
        out[m.id] = m
    return out


def mutate(text: str, m: Mutant) -> str:
    """``text`` with the mutant applied; the pattern must occur exactly once."""
    n = text.count(m.find)
    if n != 1:
        raise UserError(f"mutant {m.id!r} no longer applies: its pattern occurs {n} times in "
                        f"{m.file} (update tb/mutants/mutants.toml)")
    return text.replace(m.find, m.replace)


def mutated_rtl(ids: list[str] | tuple[str, ...], dest: Path) -> Path:
    """Copy ``rtl/`` to ``dest/rtl`` with the mutants ``ids`` applied; return the folder."""
    known = load_mutants()
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise UserError(f"unknown mutant {unknown[0]!r}: see tb/mutants/mutants.toml")
    rtl = Path(dest) / "rtl"
    if rtl.exists():
        shutil.rmtree(rtl)
    shutil.copytree(ROOT / "rtl", rtl)
    for i in ids:
        m = known[i]
        f = Path(dest) / m.file
        f.write_text(mutate(f.read_text(), m))
    return rtl
