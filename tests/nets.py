"""Shared test data: small random float networks in the weights-file layout."""

from __future__ import annotations

import itertools

import numpy as np


def float_arrays(rng: np.random.Generator, sizes: tuple[int, ...] = (784, 16, 10)) -> dict:
    """A small random float network in the weights-file layout (with calib for hidden layers)."""
    arrays: dict[str, np.ndarray] = {}
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        arrays[f"W{k}"] = rng.normal(0.0, 0.1, (n_out, n_in)).astype(np.float32)
        arrays[f"b{k}"] = rng.normal(0.0, 0.1, n_out).astype(np.float32)
        if k < len(sizes) - 2:
            arrays[f"calib{k}"] = np.float32(2.5)
    return arrays
