"""pytest-xdist scheduling for ``make test`` (``-n auto --dist loadgroup``), and ``--shard``.

``pytest --shard i/n`` keeps every n-th of the selected tests, starting at the i-th
(in collection order): n machines run disjoint slices of, e.g., the whole network x
format matrix (``TB_FULL=1 pytest tb/mlp_top --shard 2/4``).

Tests that share state run on one worker, in order:

- ``tests/test_bad_input.py`` runs every row's command from one module fixture; on
  several workers each would run all of them again.
Every other test, each fuzz example included (``build/fuzz/<sim>-<seed>``), has its own
build folder (``build/tb/<test id>``, ``build/sim/<tag>``,
pytest's ``tmp_path``) and may run beside any other.
"""

from __future__ import annotations

import pytest

GROUPS = {"tests/test_bad_input.py": "bad_input"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--shard", metavar="i/n",
                     help="run only the i-th of n round-robin slices of the selected tests")


# tryfirst: pytest-xdist's own hook turns the xdist_group marks into the node ids that
# --dist loadgroup schedules by; marks added after it are ignored (the bad-input module
# then ran its fixture on both workers)
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if spec := config.getoption("--shard"):
        from gen.errors import UserError
        from tb.regress import parse_shard

        try:
            i, n = parse_shard(spec)
        except UserError as exc:
            raise pytest.UsageError(str(exc)) from None
        keep = [item for k, item in enumerate(items) if k % n == i - 1]
        dropped = [item for k, item in enumerate(items) if k % n != i - 1]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    for item in items:
        for prefix, group in GROUPS.items():
            if item.nodeid.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))
