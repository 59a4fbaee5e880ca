"""Writing under the build folder safely: whole files only, one run per folder.

Shared by ``gen`` and ``tb`` (``gen`` never imports ``tb``): :func:`atomic_writer` and
:func:`write_atomic` write a temporary sibling and rename it into place, deleting it
on any exception (Ctrl-C included), so a file is never half-written and no temporary
stays behind; :func:`work_lock` gives a build folder to one run at a time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_writer(dest: Path) -> Iterator[BinaryIO]:
    """Yield a binary file next to ``dest``; rename it onto ``dest`` only on success.

    On any exception the temporary file (``.<name>.<pid>.<random>.part``) is deleted,
    so ``dest`` is never half-written.
    """
    dest = Path(dest)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        with open(tmp, "xb") as f:  # "x": plain open, so the umask applies
            yield f
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(dest: Path, data: str | bytes) -> None:
    """Write ``data`` (text as UTF-8) to ``dest`` through :func:`atomic_writer`, making
    the folder above it if needed."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(dest) as f:
        f.write(data.encode() if isinstance(data, str) else data)


@contextlib.contextmanager
def work_lock(work: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<work>.lock`` while a run uses the build folder ``work``.

    Two runs of one configuration share the folder (the generated code, GHDL's library,
    the results file, the synthesis netlist) and would break each other: the second
    one says that it waits and runs when the first is done. The operating system frees
    the lock of a run that dies. The lock file stays (deleting it would let a third run
    lock another file).
    """
    work = Path(work)
    lock = work.with_name(f"{work.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another run that uses {work} (lock {lock.name})",
                  file=sys.stderr, flush=True)
            fcntl.flock(f, fcntl.LOCK_EX)
        yield  # closing the file releases the lock
