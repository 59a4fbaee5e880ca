"""The package map holds: each package imports only what its docstring's "May import" allows.

The map is written once, in the packages' own docstrings (gen/__init__.py lists them);
this test reads it from there, so that the docs and the code cannot drift apart.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [p.parent for p in sorted((ROOT / "gen").glob("*/__init__.py"))] + [
    ROOT / "gen", ROOT / "tb", ROOT / "train"]
# Modules over the ~400-line budget, each at most its size today: they are to be split,
# and none may grow. A new module stays under the budget.
BUDGET = 400
OVERSIZE = {
    "gen/eda/synth.py": 725, "gen/hdl/generate.py": 520,
    "gen/reports/report.py": 430, "tb/regress.py": 460,
    "train/qat.py": 565, "tb/common.py": 475, "tb/netsim.py": 435,
}


def unit(module: str) -> str:
    """The map's name of an imported module: ``gen.<package>``, ``tb``, ``train``, ``paths``."""
    parts = module.split(".")[1:]
    return ".".join(parts[:2]) if parts[0] == "gen" and len(parts) > 1 else parts[0]


def allowed(package: Path) -> set[str]:
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    m = re.search(r"^May import: (.*)$", doc, re.M)
    assert m, f"{package.relative_to(ROOT)}/__init__.py has no 'May import:' line"
    return {s.strip() for s in m.group(1).split(",") if s.strip() and "(" not in s}


def own_modules(package: Path) -> list[Path]:
    """The package's modules, not those of its subpackages (gen's are checked on their own)."""
    subs = [p.parent for p in package.glob("*/__init__.py")]
    return [f for f in package.rglob("*.py") if not any(f.is_relative_to(s) for s in subs)
            and "__pycache__" not in f.parts]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_package_imports_only_what_its_docstring_allows(package: Path) -> None:
    me = unit("mnist_fpga." + ".".join(package.relative_to(ROOT).parts))
    ok = allowed(package) | {me, "paths", "files", "progress"}  # leaf helpers of mnist_fpga
    bad = []
    for f in own_modules(package):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and \
                    node.module.startswith("mnist_fpga."):
                target = unit(node.module)
                if package == ROOT / "gen" and target.startswith("gen."):
                    continue  # gen's own modules may use its subpackages
                if target not in ok:
                    bad.append(f"{f.relative_to(ROOT)}:{node.lineno} imports {node.module}")
    assert not bad, f"{me} may import {sorted(ok)}: " + "; ".join(bad)


def test_modules_stay_small() -> None:
    sizes = {f.relative_to(ROOT).as_posix(): len(f.read_text().splitlines())
             for top in ("gen", "tb", "train", "mnist_fpga") for f in (ROOT / top).rglob("*.py")
             if "__pycache__" not in f.parts and not f.name.startswith("test_")}
    over = {f: n for f, n in sizes.items() if n > OVERSIZE.get(f, BUDGET)}
    assert not over, f"modules over their line budget: {over}"


def _modules() -> list[str]:
    names = []
    for top in ("gen", "tb", "train", "mnist_fpga"):
        for f in (ROOT / top).rglob("*.py"):
            rel = f.relative_to(ROOT).with_suffix("")
            if "__pycache__" in rel.parts or f.name.startswith("test_") or f.name == "conftest.py":
                continue
            if not (f.parent / "__init__.py").is_file():
                continue  # a bench folder: its pytest module is imported by pytest
            parts = [p for p in rel.parts if p != "__init__"]
            names.append("mnist_fpga" if parts == ["mnist_fpga"] else
                         ".".join(parts) if parts[0] == "mnist_fpga" else
                         "mnist_fpga." + ".".join(parts))
    return sorted(set(names))


@pytest.mark.parametrize("name", _modules())
def test_every_module_imports(name: str) -> None:
    """A stale module path anywhere (after a move) fails here, not in a user's run."""
    if name.startswith("mnist_fpga.train") or name.endswith("export_onnx"):
        pytest.importorskip("torch", reason="optional: torch is not installed")
    if name == "mnist_fpga.__main__":
        return  # running it is the command; tests/test_package.py runs it
    mod = importlib.import_module(name)
    assert Path(mod.__file__).resolve().is_relative_to(ROOT), mod.__file__
