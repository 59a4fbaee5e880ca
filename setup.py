"""Packaging: the checkout's folders become the one import name ``mnist_fpga``.

``gen/``, ``tb/`` and ``train/`` install as ``mnist_fpga.gen`` and so on, with ``rtl/``,
``models/`` and the committed sample as package data beside them, so that an installed
copy has the checkout's layout under ``site-packages/mnist_fpga/`` (``mnist_fpga.paths``
finds its files the same way in both). ``bench/`` and ``tests/`` stay in the checkout.
The metadata is in ``pyproject.toml``.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PARTS = ("gen", "tb", "train", "rtl", "models", "data")
SKIP = {"__pycache__", "build", "sim_build"}

packages, package_dir, package_data = ["mnist_fpga"], {"mnist_fpga": "mnist_fpga"}, {}
for part in PARTS:
    folders = [ROOT / part, *sorted(p for p in (ROOT / part).rglob("*") if p.is_dir())]
    for folder in folders:
        rel = folder.relative_to(ROOT)
        if SKIP & set(rel.parts):
            continue
        name = "mnist_fpga." + ".".join(rel.parts)
        packages.append(name)
        package_dir[name] = rel.as_posix()
        package_data[name] = [p.name for p in folder.iterdir() if p.is_file()
                              and p.suffix not in (".py", ".pyc")]



class FreshBuildPy(build_py):
    """Start from an empty build folder: a file removed from the checkout must not ship."""

    def run(self) -> None:
        shutil.rmtree(self.build_lib, ignore_errors=True)
        super().run()


setup(packages=packages, package_dir=package_dir, package_data=package_data,
      cmdclass={"build_py": FreshBuildPy},
      # setuptools' scratch files go under build/ (git-ignored) with ours, in their own folder
      options={"build": {"build_base": "build/setuptools"}})
