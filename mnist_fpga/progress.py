"""Progress of long simulations: the bench's count files and what the user sees.

The whole-network bench runs inside the simulator: it writes how many images it has
finished to the file ``MLP_PROGRESS`` names (:func:`write_progress`, atomically, about
twice a second). :class:`Progress` sums such files (one per job of ``tb.regress``, one
for ``make sim``) and shows the count on stderr: on a terminal a bar redrawn in place,
otherwise a plain line every ``EVERY_S`` seconds (``progress: 40/100 images, 12 s``);
nothing during the first ``DELAY_S`` seconds, so short runs stay silent.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from mnist_fpga.files import write_atomic

DELAY_S = 2.0  # nothing shown before: a short run prints no progress at all
EVERY_S = 5.0  # without a terminal: one line this often
TICK_S = 0.25  # how often :meth:`Progress.start`'s thread looks at the count
BAR_WIDTH = 40


def write_progress(path: str | Path, done: int) -> None:
    """Write a progress count atomically (temporary sibling, then rename).

    A reader never sees a half-written file: :class:`Progress` reads these while the
    bench rewrites them.
    """
    write_atomic(Path(path), str(done))


def read_progress(path: str | Path) -> int | None:
    """The count in a progress file, or None when it is missing or unreadable."""
    try:
        return int(Path(path).read_text())
    except (OSError, ValueError):
        return None


def plain_line(done: int, total: int, elapsed: float, what: str = "images",
               stage: str = "") -> str:
    """The line shown without a terminal: ``progress: 40/100 images, 12 s``, with
    `` (<stage>)`` when one is set (``compiling``)."""
    return f"progress: {done}/{total} {what}, {elapsed:.0f} s" + (f" ({stage})" if stage else "")


def bar_line(done: int, total: int, elapsed: float, what: str = "images",
             columns: int = 80, tail: str = "") -> str:
    """The terminal's bar, as wide as fits in ``columns``:
    ``[####....] 40/100 images  40.0%  12 s, ETA 18 s`` (``tail``: ``ETA 18 s``)."""
    frac = min(done / total, 1.0) if total else 1.0
    text = f" {done}/{total} {what} {100 * frac:5.1f}%  {elapsed:.0f} s" + (
        f", {tail}" if tail else "")
    width = max(10, min(BAR_WIDTH, columns - len(text) - 3))
    fill = math.floor(width * frac)
    return f"[{'#' * fill}{'.' * (width - fill)}]{text}"


class Progress:
    """Images done, summed over progress files, never going backwards; shown on ``stream``.

    Each file's count only grows; a file that is missing, being replaced or unreadable
    keeps its last count (:func:`write_progress` writes atomically). Without ``stream``
    (``--quiet``) nothing is shown. Call :meth:`poll` often (it draws when due), or
    :meth:`start` a thread that does, and :meth:`close` at the end: it erases the bar,
    so a terminal keeps only the results.
    """

    def __init__(self, files: Sequence[Path], total: int = 0, stream: TextIO | None = None,
                 what: str = "images", clock: Callable[[], float] = time.monotonic,
                 tty: bool | None = None) -> None:
        self.files = list(files)
        self.seen = [0] * len(self.files)
        self.total, self.stream, self.what, self.clock = total, stream, what, clock
        self.tty = (stream is not None and stream.isatty()) if tty is None else tty
        self.t0 = clock()
        self.stage = ""  # what happens before the first image is done: "compiling"
        self.first: tuple[float, int] | None = None  # (elapsed, done) at the first count
        self.last_line: float | None = None  # time of the last plain line
        self.drawn = 0  # length of the bar on the terminal (0: none)
        self.bar = ""  # the bar drawn last
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def done(self) -> int:
        for j, f in enumerate(self.files):
            n = read_progress(f)
            if n is not None and n > self.seen[j]:
                self.seen[j] = n
        return sum(self.seen)

    def poll(self) -> None:
        """Show the count if it is time: the bar at every call, a plain line every
        ``EVERY_S``; nothing in the first ``DELAY_S``."""
        if self.stream is None:
            return
        elapsed = self.clock() - self.t0
        if elapsed < DELAY_S:
            return
        done = self.done()
        stage = self.stage if done == 0 else ""  # the first image ends any stage
        if done and self.first is None:
            self.first = (elapsed, done)
        if self.tty:
            cols = shutil.get_terminal_size((80, 24)).columns
            text = bar_line(done, self.total, elapsed, self.what, cols, stage or self.eta(
                elapsed, done))
            if text == self.bar:
                return
            self.stream.write("\r" + text.ljust(self.drawn))
            self.drawn, self.bar = max(self.drawn, len(text)), text
        elif self.last_line is None or elapsed - self.last_line >= EVERY_S:
            line = plain_line(done, self.total, elapsed, self.what, stage)
            self.stream.write(line + "\n")
            self.last_line = elapsed
        self.stream.flush()

    def eta(self, elapsed: float, done: int) -> str:
        """``ETA 18 s`` at the rate since the first count (compiling is no image), else ''."""
        if self.first is None or done <= self.first[1] or elapsed <= self.first[0]:
            return ""
        rate = (done - self.first[1]) / (elapsed - self.first[0])
        return f"ETA {max(self.total - done, 0) / rate:.0f} s"

    def start(self) -> None:
        """Poll every ``TICK_S`` in a thread of its own until :meth:`close`."""
        if self.stream is None or self._ticker is not None:
            return

        def tick() -> None:
            while not self._stop.wait(TICK_S):
                self.poll()

        self._ticker = threading.Thread(target=tick, name="progress", daemon=True)
        self._ticker.start()

    def close(self) -> None:
        """Stop the thread of :meth:`start` and erase the bar (a terminal); plain lines
        stay as they are."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        if self.stream is not None and self.drawn:
            self.stream.write("\r" + " " * self.drawn + "\r")
            self.stream.flush()
            self.drawn, self.bar = 0, ""
