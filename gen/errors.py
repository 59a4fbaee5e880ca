"""One error type for bad user input, and the CLI wrapper that reports it."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


def cli_main(main: Callable[[], int | None]) -> None:
    """Run ``main``; turn a :class:`UserError` into one ``error:`` line and exit 2."""
    try:
        rc = main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(rc or 0)
