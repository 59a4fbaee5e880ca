"""The numerics core: formats, legality, the bit-true integer model, quantization, errors.

docs/numerics.md is the contract; ``model.forward`` is the one implementation that the RTL,
the benches and the reports are checked against. A new format goes into ``formats.py``
(parsing) and ``legal.py`` (what the RTL computes exactly), then ``quant.py``.

May import: (nothing of ours)
"""
