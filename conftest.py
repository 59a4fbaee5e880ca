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

Under ``CI=true`` (GitHub Actions and ``.ci/run`` set it) a skip is a failure: a test
that would skip because a tool the run depends on (GHDL, the selected ``SIM``, Icarus,
Verilator, yosys, nextpnr), MNIST or a Python package is missing fails with its one-line
reason. Only skips whose reason starts with ``optional:`` stay skips there (a replay
that needs ``FUZZ_SEED``, a bins check that needs 30 examples); ``make test`` lists
every skip with its reason (``-rs``).
"""

from __future__ import annotations

import os

import pytest

OPTIONAL = "optional:"  # the reason prefix of a skip that CI may keep


def in_ci() -> bool:
    """``CI`` set to true (GitHub Actions, .ci/run): missing tools fail, not skip."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _skip_reason(longrepr: object) -> str:
    """The reason of a skip report (``(path, line, "Skipped: reason")``)."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_skip_in_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = _skip_reason(report.longrepr)
        if not reason.startswith(OPTIONAL):
            report.outcome = "failed"
            report.longrepr = f"CI=true: {reason} (under CI a missing tool fails, not skips)"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    _fail_skip_in_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> object:
    outcome = yield  # a module-level importorskip skips the whole module here
    _fail_skip_in_ci(outcome.get_result())

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
        from mnist_fpga.gen.core.errors import UserError
        from mnist_fpga.tb.regress import parse_shard

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
