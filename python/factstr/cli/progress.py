"""Progress of long work (export, import, copy) on stderr: facts done, rate and estimated time
left, redrawn in place at most a few times a second, and only when stderr is a terminal (in a
log file or a pipe it would be noise)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02}:{rest % 60:02}"


class Progress:
    """``update(done)`` as work goes on, ``close()`` at the end (or on error)."""

    #: Seconds between redraws.
    INTERVAL = 0.2

    def __init__(self, what: str, total: int | None, stream: TextIO | None = None) -> None:
        self.what = what
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()
        self.drawn_at = 0.0
        self.done = 0
        self.drawn = False

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if self.enabled and now - self.drawn_at >= self.INTERVAL:
            self.drawn_at = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.what}: {self.done:,}"
        if self.total:
            text += f" / {self.total:,} facts ({100 * self.done / self.total:.0f}%)"
        else:
            text += " facts"
        text += f"  {rate:,.0f} facts/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f"  ETA {_duration((self.total - self.done) / rate)}"
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        if self.enabled and self.drawn:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
