"""The generator side of mnist-fpga: everything that runs before (or without) a simulator.

Packages by job; an arrow may only point down this list (tests/test_structure.py checks
every import against the "May import" line of each package):

- ``gen.core``: the numerics contract in code: formats, legality, the bit-true integer
  model, quantization, the error type. Imports nothing of ours.
- ``gen.data``: MNIST (IDX files, download, checksums) and image samples.
- ``gen.frontends``: float models from elsewhere (ONNX, PyTorch state_dict) into our
  weights ``.npz``.
- ``gen.hdl``: the HDL writer: ROMs, package, top, AXI4-Stream top, memory files, and
  the one list of RTL sources.
- ``gen.eda``: the open synthesis flow (GHDL, yosys, nextpnr), its netlist fixes and
  run cache.
- ``gen.reports``: accuracy reports and evaluation.

Simulation, benches, fault injection and coverage live in ``tb/``, training in
``train/``; nothing under ``gen/`` imports them.

May import: (its subpackages only)
"""
