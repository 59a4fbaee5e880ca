"""mnist-fpga: quantization, the numpy integer model and the VHDL generator."""
