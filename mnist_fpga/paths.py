"""Where the project's files are, the same in a checkout and in an installed copy.

``PKG_ROOT`` holds ``gen/``, ``tb/``, ``rtl/``, ``models/`` and ``data/``: the checkout,
or ``site-packages/mnist_fpga`` when installed. ``IMPORT_ROOT`` is the folder to put on
``PYTHONPATH`` for a subprocess (or a simulator's Python) to import ``mnist_fpga``.
Generated files go to ``BUILD``: ``$BUILD_DIR`` if set, else ``build/`` of the checkout,
or of the current folder for an installed copy (never into site-packages).
"""

from __future__ import annotations

import os
from pathlib import Path

_HERE = Path(__file__).resolve().parent
IN_CHECKOUT = not (_HERE / "gen").is_dir()
PKG_ROOT = _HERE.parent if IN_CHECKOUT else _HERE
IMPORT_ROOT = _HERE.parent
RTL = PKG_ROOT / "rtl"
MODELS = PKG_ROOT / "models"
DATA = PKG_ROOT / "data"
DEFAULT_SAMPLE = DATA / "mnist_test_100.npz"


def build_root() -> Path:
    """The folder for generated files (read when called: tests change ``BUILD_DIR``)."""
    env = os.environ.get("BUILD_DIR")
    if env:
        return Path(env)
    return PKG_ROOT / "build" if IN_CHECKOUT else Path.cwd() / "build"


BUILD = build_root()


def subprocess_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) with ``IMPORT_ROOT`` first on ``PYTHONPATH``."""
    env = dict(os.environ if env is None else env)
    old = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(IMPORT_ROOT) + (os.pathsep + old if old else "")
    return env
