"""One error type for bad user input, the CLI wrapper that reports it, a shared path check."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn


class UserError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


@contextlib.contextmanager
def activity(what: str) -> Iterator[None]:
    """Name what the code inside does (``simulation of mlp256 (int8, 20 images) in ...``):
    a Ctrl-C there ends the command with ``interrupted: <what>`` (:func:`cli_main`).

    The innermost activity names the interruption.
    """
    try:
        yield
    except KeyboardInterrupt as exc:
        if getattr(exc, "activity", None) is None:
            exc.activity = what  # type: ignore[attr-defined]
        raise


def _parser_error(self: argparse.ArgumentParser, message: str) -> NoReturn:
    """``ArgumentParser.error`` inside :func:`cli_main`: one line instead of a usage block."""
    raise UserError(message)


def cli_main(main: Callable[[], int | None]) -> None:
    """Run ``main``; turn a :class:`UserError` into one ``error:`` line and exit 2.

    argparse's own errors (unknown option or choice, missing option, bad number) are
    reported the same way. Ctrl-C (SIGINT) gives one line, ``interrupted: <what was
    running>`` (:func:`activity`), and exit status 130, as a shell reports it; the code
    that was interrupted has stopped its child processes and removed its temporary files.
    """
    saved = argparse.ArgumentParser.error
    argparse.ArgumentParser.error = _parser_error
    try:
        rc = main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as exc:
        what = getattr(exc, "activity", None)
        print(f"interrupted: {what}" if what else "interrupted", file=sys.stderr, flush=True)
        sys.exit(130)
    finally:
        argparse.ArgumentParser.error = saved
    sys.exit(rc or 0)


def check_creatable(path: Path, what: str) -> None:
    """Refuse ``path`` early when a missing folder above it could not be made (a file is there)."""
    for parent in Path(path).parents:  # nearest first; the first existing one decides
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"cannot create {what} {path}: {parent} is not a folder")
            return
