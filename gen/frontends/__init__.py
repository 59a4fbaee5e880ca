"""Front ends: float MLPs from other tools (ONNX, PyTorch state_dict) into our weights .npz.

A new front end is a module here that writes the ``.npz`` layout of docs/models.md; the
quantizer (``gen.core.quant``) then treats it like any other model.

May import: gen.core, gen.data
"""
