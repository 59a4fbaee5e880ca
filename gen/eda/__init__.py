"""The EDA flow: ghdl --synth, yosys (synth_ecp5, synth_xilinx), nextpnr-ecp5, run cache.

A new target (device family) gets its yosys/nextpnr steps here.

May import: gen.core, gen.data, gen.hdl
"""
