"""Bench-wide pytest hooks: numeric environment variables are checked before collection."""

from __future__ import annotations

import time

import pytest

from mnist_fpga.gen.core.errors import UserError
from mnist_fpga.paths import BUILD
from mnist_fpga.tb.common import env_int

# Variables the benches read as integers, with their lower bounds.
INT_VARS = {"TB_IMAGES": 1, "FUZZ_EXAMPLES": 0, "FUZZ_SEED": 0, "FUZZ_SEED_BASE": 0,
            "TB_SEED": 0, "TB_REQUANT_ITEMS": 1}


def pytest_configure(config: pytest.Config) -> None:
    """A bad value stops the run with one line (exit 4), before any bench runs."""
    for name, lo in INT_VARS.items():
        try:
            env_int(name, 0, lo=lo)
        except UserError as exc:
            # pytest prints a usage error as one line, "ERROR: <message>", and exits 4
            raise pytest.UsageError(str(exc)) from None


_START = time.time()


def pytest_terminal_summary(terminalreporter) -> None:
    """The fuzz bins reached by this run (written by tb/fuzz's test_fuzz_bins)."""
    bins = BUILD / "fuzz" / "bins.txt"
    if bins.exists() and bins.stat().st_mtime >= _START:
        terminalreporter.write_line(bins.read_text().strip())
