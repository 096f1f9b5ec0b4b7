"""Progress output for long work: a live status line on a terminal, plain timestamped lines
in CI logs (anything that is not a TTY)."""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any, Protocol, TextIO


class Reporter(Protocol):
    def start(self, total: int) -> None: ...

    def step(self, address: str, step: str, status: str, message: str = "") -> None: ...

    def finish(self, result: Any) -> None: ...


class PlainReporter:
    """One timestamped line per finished step; safe to grep in CI logs."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        self._line(f"applying {total} change(s)")

    def step(self, address: str, step: str, status: str, message: str = "") -> None:
        if status == "running":
            return
        self._line(f"{address}: {step} {status}" + (f" — {message}" if message else ""))

    def finish(self, result: Any) -> None:
        pass

    def _line(self, text: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:
            print(f"{stamp} {text}", file=self.stream, flush=True)


class TerminalReporter:
    """Per-function result lines plus a progress bar redrawn in place."""

    STEPS = ("snapshot", "upload", "build", "push", "scaffold", "deploy", "record")

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self.total = 0
        self.done = 0
        self.current: dict[str, str] = {}
        self.started = time.monotonic()

    def start(self, total: int) -> None:
        self.total = total
        self.started = time.monotonic()

    def step(self, address: str, step: str, status: str, message: str = "") -> None:
        with self._lock:
            if status == "running":
                self.current[address] = step
            elif status == "failed":
                self._print(f"✗ {address}: {step} failed — {message}")
            elif step == "record" or status == "skipped":
                self.current.pop(address, None)
                self.done += 1
                mark = "✓" if status == "completed" else "-"
                self._print(f"{mark} {address}" + ("" if status == "completed" else f" ({message})"))
            self._bar()

    def finish(self, result: Any) -> None:
        with self._lock:
            self.stream.write("\r\033[K")
            self.stream.flush()

    def _print(self, text: str) -> None:
        self.stream.write("\r\033[K" + text + "\n")

    def _bar(self) -> None:
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        active = ", ".join(f"{a} {s}" for a, s in list(self.current.items())[:3])
        elapsed = time.monotonic() - self.started
        self.stream.write(f"\r\033[K[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {elapsed:.0f}s {active}"[:160])
        self.stream.flush()


def reporter_for(stream: TextIO | None = None) -> Reporter:
    stream = stream or sys.stderr
    return TerminalReporter(stream) if stream.isatty() else PlainReporter(stream)
