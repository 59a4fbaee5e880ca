"""mnist-fpga: an MNIST MLP -> quantized weight ROMs and VHDL, verified bit-exactly.

The one import name of the project. Its parts keep the checkout's layout:
``mnist_fpga.gen`` (numerics, front ends, HDL writer, EDA flow: ``gen/``),
``mnist_fpga.tb`` (benches and the simulation path: ``tb/``), ``mnist_fpga.train``
(PyTorch training: ``train/``), with ``rtl/``, ``models/`` and the 100-image sample as
data beside them. The Python API is :mod:`mnist_fpga.api`; its main functions are
re-exported here::

    import mnist_fpga as mf
    qnet = mf.quantize("models/mlp256.npz", "int8")
    mf.generate(qnet, "build/gen/mlp256_int8")
    res = mf.simulate(qnet, images=5)
"""

from __future__ import annotations

from pathlib import Path

# In a checkout, gen/, tb/ and train/ sit beside this folder rather than inside it (the
# layout the project documents): the package's search path takes the checkout too, so
# that ``mnist_fpga.gen`` is ``gen/`` (and ``mnist_fpga.bench`` is ``bench/``). An
# installed copy holds them inside and needs nothing.
_here = Path(__file__).resolve().parent
if not (_here / "gen").is_dir() and (_here.parent / "gen" / "__init__.py").is_file():
    __path__.append(str(_here.parent))

__version__ = "0.1.0"

_API = ("quantize", "generate", "run_model", "simulate", "load_images", "ModelResult",
        "SimResult", "QNet", "UserError")


def __getattr__(name: str):
    """The API functions, imported on first use (``import mnist_fpga`` stays light)."""
    if name in _API:
        from mnist_fpga import api
        return getattr(api, name)
    raise AttributeError(f"module 'mnist_fpga' has no attribute {name!r}")


__all__ = list(_API)
