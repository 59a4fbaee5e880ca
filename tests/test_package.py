"""The installable package: one import name, the data it needs, the command, the API.

The wheel is built from this checkout (no download: the pinned setuptools, no build
isolation) and installed into a scratch folder; the checks then run from another folder
with only that copy importable, so that nothing of the checkout can stand in for it.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from mnist_fpga.cli import COMMANDS
from mnist_fpga.tb.common import simulator_missing

# one worker builds the wheel (setuptools' scratch folder build/setuptools is shared)
pytestmark = pytest.mark.xdist_group("package")
ROOT = Path(__file__).resolve().parent.parent
OURS = ("gen", "tb", "train", "bench")


def test_no_module_imports_a_bare_top_level_folder() -> None:
    """Every import of ours goes through ``mnist_fpga.``: bare ``gen`` would not install."""
    bad = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in (".venv", "build") or "__pycache__" in rel.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom)
                     and node.level == 0 else [])
            bad += [f"{rel}:{node.lineno}: {n}" for n in names if n.split(".")[0] in OURS]
    assert not bad, "imports without mnist_fpga.: " + "; ".join(bad[:10])


def test_every_command_has_a_main() -> None:
    import importlib

    for name, (module, _) in COMMANDS.items():
        if name in ("train", "qat", "export-onnx"):
            pytest.importorskip("torch", reason="optional: torch is not installed")
        assert callable(importlib.import_module(module).main), name


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mnist_fpga", *args], cwd=cwd or ROOT,
                          capture_output=True, text=True, timeout=120)


def test_cli_lists_its_commands_and_refuses_an_unknown_one() -> None:
    proc = _cli("--help")
    assert proc.returncode == 0 and all(name in proc.stdout for name in COMMANDS)
    proc = _cli("simulate")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: unknown command 'simulate': choose one of {', '.join(COMMANDS)}"]
    proc = _cli("sim", "--images", "0")
    assert proc.returncode == 2 and proc.stderr.startswith("error: "), proc.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "--no-build-isolation", "--disable-pip-version-check",
                           "-w", str(out), str(ROOT)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (whl,) = out.glob("mnist_fpga-*.whl")
    return whl


def _tracked(folder: str) -> set[str]:
    """The checkout's tracked files under ``folder`` (what the wheel must carry)."""
    out = subprocess.run(["git", "ls-files", folder], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    return {p for p in out if (ROOT / p).is_file()}


def test_wheel_holds_one_import_name_and_the_data(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names}
    assert tops == {"mnist_fpga", "mnist_fpga-0.1.0.dist-info"}, tops
    want = set()
    for folder in ("gen", "tb", "train", "rtl", "models", "data"):
        want |= {f"mnist_fpga/{p}" for p in _tracked(folder)}
    assert want, "git ls-files found nothing"
    assert not (missing := sorted(want - names)), f"missing from the wheel: {missing[:10]}"
    meta = zipfile.ZipFile(wheel).read("mnist_fpga-0.1.0.dist-info/entry_points.txt").decode()
    assert "mnist-fpga = mnist_fpga.cli:main" in meta


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                           "--disable-pip-version-check", "--target", str(target),
                           str(wheel)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return target


def _run_installed(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``python args`` in ``cwd`` with the installed copy, and not the checkout, importable."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "BUILD_DIR", "NET", "BITS", "IMAGES", "P", "PE")}
    env["PYTHONPATH"] = str(target)
    return subprocess.run([sys.executable, "-s", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=900)


def test_installed_copy_finds_its_files_and_not_the_checkout(installed: Path,
                                                             tmp_path: Path) -> None:
    proc = _run_installed(installed, tmp_path, "-c", (
        "import mnist_fpga, mnist_fpga.gen.core.model as m, mnist_fpga.paths as p;"
        "print(m.__file__); print(p.RTL); print(p.BUILD); print(p.IN_CHECKOUT)"))
    assert proc.returncode == 0, proc.stderr
    model, rtl, build, in_checkout = proc.stdout.split()
    assert Path(model).is_relative_to(installed) and Path(rtl).is_relative_to(installed)
    assert (Path(rtl) / "mlp_layer.vhd").is_file()
    assert Path(build) == tmp_path / "build" and in_checkout == "False"


@pytest.mark.skipif(bool(simulator_missing("ghdl")), reason="GHDL is not installed")
def test_installed_sim_and_api_run_from_another_folder(installed: Path,
                                                      tmp_path: Path) -> None:
    """The issue's check: ``mnist-fpga sim --images 5`` and the README's API example."""
    before = sorted(p.relative_to(installed) for p in installed.rglob("*")
                    if "__pycache__" not in p.parts)
    proc = _run_installed(installed, tmp_path, "-m", "mnist_fpga", "sim", "--images", "5")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "bit_exact=5" in proc.stdout.splitlines()[-1]
    example = (ROOT / "README.md").read_text().split("<!-- api-example -->")[1]
    code = example.split("```python")[1].split("```")[0]
    (tmp_path / "example.py").write_text(code)
    proc = _run_installed(installed, tmp_path, "example.py")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert (tmp_path / "build" / "sim").is_dir()  # generated files went to ./build
    after = sorted(p.relative_to(installed) for p in installed.rglob("*")
                   if "__pycache__" not in p.parts)
    assert [p for p in after if p not in before] == [], "the run wrote into the install"
