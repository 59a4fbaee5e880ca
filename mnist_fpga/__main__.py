"""``python -m mnist_fpga`` is the ``mnist-fpga`` command."""

from mnist_fpga.cli import main

main()
