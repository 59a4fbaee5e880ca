"""The ``mnist-fpga`` command: one subcommand per ``make`` job.

``mnist-fpga sim --images 5`` is ``make sim IMAGES=5``; ``mnist-fpga <cmd> --help``
lists a subcommand's options. Each subcommand is the command line of one module,
imported only when it runs.
"""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module, what it does); the make target of the same name calls the module
COMMANDS: dict[str, tuple[str, str]] = {
    "sim": ("mnist_fpga.tb.netsim", "simulate MNIST images through the RTL, bit-exact check"),
    "regress": ("mnist_fpga.tb.regress", "the 10,000 test images in parallel jobs"),
    "gen": ("mnist_fpga.gen.hdl.generate", "write the VHDL, ROMs and memory files of a network"),
    "import": ("mnist_fpga.gen.frontends.import_model",
               "ONNX or PyTorch model/state_dict -> weights .npz"),
    "synth": ("mnist_fpga.gen.eda.synth", "synthesis and place-and-route with open tools"),
    "train": ("mnist_fpga.train.train", "train a float MLP on MNIST (needs torch)"),
    "qat": ("mnist_fpga.train.qat", "quantization-aware training (needs torch)"),
    "export-onnx": ("mnist_fpga.train.export_onnx", "weights .npz -> ONNX (needs torch)"),
    "evaluate": ("mnist_fpga.gen.reports.evaluate", "accuracy of the integer model on MNIST"),
    "report": ("mnist_fpga.gen.reports.report", "the models report (build/report by default)"),
    "mnist": ("mnist_fpga.gen.data.mnist", "write a sample .npz of MNIST test images"),
}


def usage() -> str:
    """The top-level help text."""
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {what}" for name, (_, what) in COMMANDS.items())
    return (f"usage: mnist-fpga <command> [options]   (mnist-fpga <command> --help)\n\n"
            f"commands:\n{rows}\n")


def main(argv: list[str] | None = None) -> None:
    """Dispatch to the subcommand's module; exits with its status."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage(), end="")
        sys.exit(0 if argv else 2)
    if argv[0] == "--version":
        from mnist_fpga import __version__

        print(f"mnist-fpga {__version__}")
        sys.exit(0)
    name, *rest = argv
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}: choose one of {', '.join(COMMANDS)}",
              file=sys.stderr)
        sys.exit(2)
    from mnist_fpga.gen.core.errors import cli_main

    try:
        module = importlib.import_module(COMMANDS[name][0])
    except ModuleNotFoundError as exc:  # an optional dependency (torch, onnx) is absent
        extra = {"torch": "train", "onnx": "onnx"}.get(exc.name or "", "")
        hint = f" (pip install 'mnist-fpga[{extra}]')" if extra else ""
        print(f"error: mnist-fpga {name} needs the Python package {exc.name!r}{hint}",
              file=sys.stderr)
        sys.exit(2)
    sys.argv = [f"mnist-fpga {name}", *rest]
    cli_main(module.main)


if __name__ == "__main__":
    main()
