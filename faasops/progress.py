"""Progress output for long work: a live status line on a terminal, plain timestamped lines
in CI logs (anything that is not a TTY).

A step can run for a long time without finishing (a build: 8–45 s, a first local deploy
compiling the component), so neither display waits for steps to finish to show life: while a
step runs, the terminal's status line is redrawn every second with each running step's elapsed
time, and in CI logs a line says every 5 s what still runs (``building demo/hello … 15 s``).
Providers may say what their step is doing meanwhile with :func:`report_activity`.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Protocol, TextIO

TICK_S = 1.0
"""How often the terminal's status line is redrawn while a step runs."""
PLAIN_INTERVAL_S = 5.0
"""How often a plain (CI log) reporter says that a step still runs."""

# What a step reports while it runs, e.g. "building demo/hello … 15 s".
_VERBS = {"snapshot": "reading", "upload": "uploading", "build": "building", "push": "pushing",
          "scaffold": "rendering", "deploy": "deploying", "undeploy": "undeploying", "delete": "deleting",
          "record": "recording", "namespace": "creating the namespace of", "delete-namespace":
          "deleting the namespace of"}

_activities: dict[str, str] = {}
_activities_lock = threading.Lock()


def report_activity(address: str, activity: str) -> None:
    """Say what the running step of ``address`` does now (``installing dependencies``,
    ``componentize-py``, ``build task 1a2b3c running on the builder``): progress displays show it
    beside the step's elapsed time until the step ends. Any provider may call it, from any
    thread; without a display it costs a dict write."""
    with _activities_lock:
        _activities[address] = activity


def activity_of(address: str) -> str:
    """What :func:`report_activity` last said for ``address``'s running step, or ``""``."""
    with _activities_lock:
        return _activities.get(address, "")


def _step_ended(address: str) -> None:
    with _activities_lock:
        _activities.pop(address, None)


class Reporter(Protocol):
    def start(self, total: int) -> None: ...

    def step(self, address: str, step: str, status: str, message: str = "") -> None: ...

    def finish(self, result: Any) -> None: ...


class _Ticker:
    """Calls ``tick`` every ``period`` seconds on a daemon thread while ``busy()`` is true: the
    thread starts with the first running step (:meth:`wake`) and ends once none runs, so a
    reporter never leaves a thread behind, even when its run ends without :meth:`finish`."""

    def __init__(self, tick: Callable[[], None], busy: Callable[[], bool], period: float):
        self._tick = tick
        self._busy = busy
        self._period = period
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def wake(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="faasops-progress", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            with self._lock:  # a wake() after this check starts a new thread
                if not self._busy():
                    self._thread = None
                    return
            self._tick()


class PlainReporter:
    """One timestamped line per finished step, and one every ``interval_s`` for a step that
    still runs; safe to grep in CI logs."""

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic,
                 interval_s: float = PLAIN_INTERVAL_S):
        self.stream = stream or sys.stderr
        self.clock = clock
        self.interval_s = interval_s
        self._lock = threading.Lock()
        # address → (step, when it started, how many "still running" lines were said)
        self._running: dict[str, tuple[str, float, int]] = {}
        self._ticker = _Ticker(self.tick, lambda: bool(self._running), min(TICK_S, interval_s))

    def start(self, total: int) -> None:
        self._line(f"applying {total} change(s)")

    def step(self, address: str, step: str, status: str, message: str = "") -> None:
        if status == "running":
            with self._lock:
                self._running[address] = (step, self.clock(), 0)
            self._ticker.wake()
            return
        with self._lock:
            self._running.pop(address, None)
        _step_ended(address)
        self._line(f"{address}: {step} {status}" + (f" — {message}" if message else ""))

    def tick(self) -> None:
        """Say which steps have been running for another ``interval_s`` (called every second)."""
        now = self.clock()
        lines = []
        with self._lock:
            for address, (step, started, said) in list(self._running.items()):
                due = int((now - started) // self.interval_s)
                if due > said:
                    self._running[address] = (step, started, due)
                    activity = activity_of(address)
                    lines.append(f"{_VERBS.get(step, step)} {address}" + (f" ({activity})" if activity else "")
                                 + f" … {due * self.interval_s:g} s")
        for line in lines:
            self._line(line)

    def finish(self, result: Any) -> None:
        self._ticker.stop()
        with self._lock:
            running, self._running = list(self._running), {}
        for address in running:
            _step_ended(address)

    def _line(self, text: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:
            print(f"{stamp} {text}", file=self.stream, flush=True)


class TerminalReporter:
    """Per-function result lines plus a progress bar redrawn in place: at every step change,
    and every second while a step runs, so its clock never stands still."""

    STEPS = ("snapshot", "upload", "build", "push", "scaffold", "deploy", "record")

    def __init__(self, stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.stream = stream or sys.stderr
        self.clock = clock
        self._lock = threading.Lock()
        self.total = 0
        self.done = 0
        self.current: dict[str, tuple[str, float]] = {}  # address → (running step, since)
        self.started = clock()
        self._ticker = _Ticker(self.tick, lambda: bool(self.current), TICK_S)

    def start(self, total: int) -> None:
        self.total = total
        self.started = self.clock()

    def step(self, address: str, step: str, status: str, message: str = "") -> None:
        with self._lock:
            if status == "running":
                self.current[address] = (step, self.clock())
            else:
                _step_ended(address)
            if status == "failed":
                self.current.pop(address, None)  # a failed step ends its function's run
                self._print(f"✗ {address}: {step} failed — {message}")
            elif step == "record" or status == "skipped":
                self.current.pop(address, None)
                self.done += 1
                mark = "✓" if status == "completed" else "-"
                self._print(f"{mark} {address}" + ("" if status == "completed" else f" ({message})"))
            self._bar()
        if status == "running":
            self._ticker.wake()

    def tick(self) -> None:
        """Redraw the status line (called every second while a step runs)."""
        with self._lock:
            if self.current:
                self._bar()

    def finish(self, result: Any) -> None:
        self._ticker.stop()
        with self._lock:
            for address in self.current:
                _step_ended(address)
            self.current.clear()
            self.stream.write("\r\033[K")
            self.stream.flush()

    def _print(self, text: str) -> None:
        self.stream.write("\r\033[K" + text + "\n")

    def _bar(self) -> None:
        width = 30
        filled = int(width * self.done / self.total) if self.total else width
        now = self.clock()
        active = ", ".join(f"{address} {step}" + (f" ({activity})" if (activity := activity_of(address)) else "")
                           + f" {now - since:.0f}s"
                           for address, (step, since) in list(self.current.items())[:3])
        elapsed = now - self.started
        self.stream.write(f"\r\033[K[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} {elapsed:.0f}s {active}"[:160])
        self.stream.flush()


def reporter_for(stream: TextIO | None = None) -> Reporter:
    stream = stream or sys.stderr
    return TerminalReporter(stream) if stream.isatty() else PlainReporter(stream)
