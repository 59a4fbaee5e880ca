"""pytest-xdist scheduling for ``make test`` (``-n auto --dist loadgroup``).

Tests that share state run on one worker, in order:

- ``tests/test_bad_input.py`` runs every row's command from one module fixture; on
  several workers each would run all of them again.
- ``tb/fuzz`` simulates every example in one build folder (``build/fuzz/<sim>-current``).

Every other test has its own build folder (``build/tb/<test id>``, ``build/sim/<tag>``,
pytest's ``tmp_path``) and may run beside any other.
"""

from __future__ import annotations

import pytest

GROUPS = {"tests/test_bad_input.py": "bad_input", "tb/fuzz/": "fuzz"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for prefix, group in GROUPS.items():
            if item.nodeid.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))
