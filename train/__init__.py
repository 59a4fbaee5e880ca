"""PyTorch training of the reference networks (float and QAT) and a numpy float evaluator.

May import: gen.core, gen.data, gen.hdl
"""
