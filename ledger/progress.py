"""A dependency-free progress bar on stderr, drawn only when stderr is a terminal or when forced."""

from __future__ import annotations

import sys
import time


class ProgressBar:
    """Redraws at most ten times a second; prints one final line when done."""

    def __init__(self, label: str, total: int, *, stream=None, force: bool = False, width: int = 30):
        self.label, self.total, self.width = label, max(total, 1), width
        self.stream = stream or sys.stderr
        self.enabled = force or self.stream.isatty()
        self.started = time.monotonic()
        self._last_draw = 0.0

    def update(self, done: int, total: int | None = None) -> None:
        if total is not None:
            self.total = max(total, 1)
        now = time.monotonic()
        if not self.enabled or (now - self._last_draw < 0.1 and done < self.total):
            return
        self._last_draw = now
        filled = int(self.width * min(done, self.total) / self.total)
        bar = "#" * filled + "-" * (self.width - filled)
        rate = done / max(now - self.started, 1e-9)
        self.stream.write(f"\r{self.label:<28} [{bar}] {done}/{self.total} {rate:,.0f}/s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
