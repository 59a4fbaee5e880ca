"""Reports: accuracy of the float and integer models on MNIST, the models report.

May import: gen.core, gen.data, gen.hdl
"""
