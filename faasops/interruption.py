"""What SIGINT and SIGTERM do to a run that holds the state lock.

The rule: the lock is never free while this process can still write. So a signal never unwinds
the main thread while worker threads are applying steps:

- While nothing is being applied (planning, the confirmation prompt, after the last step), the
  first signal unwinds at once: :class:`RunInterrupted` is raised, the lock is released on the
  way out, the CLI exits 130 (SIGINT) or 143 (SIGTERM).
- While steps run, the first signal only asks the executor to stop: no new step starts, running
  steps finish and are recorded, then the lock is released and the CLI exits 130/143 with what
  was done. A second signal aborts: child processes (builds) are killed and the running steps'
  tasks are marked interrupted; if the workers then end within :data:`ABORT_GRACE_S`, the lock is
  released as usual, else the process exits holding it (:class:`RunAbandoned`) — a lock whose
  process is gone is stale, exactly as after ``kill -9``.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar

T = TypeVar("T")

# How long a second signal waits for the workers to end after killing child processes, before
# the process exits and leaves its (then stale) lock behind.
ABORT_GRACE_S = 5.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def exit_code(signum: int) -> int:
    """The shell's convention for a process ended by a signal: 128 + its number."""
    return 128 + signum


class RunInterrupted(BaseException):
    """A signal stopped the run: raised by the handler itself when no step was running, else
    by :meth:`faasops.engine.Engine.locked` once the running steps ended and the lock is released.

    A BaseException, like KeyboardInterrupt: it is not an error and no ``except Exception``
    may swallow it on its way out (through the lock release)."""

    def __init__(self, signum: int):
        super().__init__(signal_name(signum))
        self.signum = signum


class RunAbandoned(BaseException):
    """A second signal aborted the run and some worker was still inside a step after the
    grace period: the process must exit now, *without* releasing the lock."""

    def __init__(self, signum: int, running: list[str]):
        super().__init__(signal_name(signum))
        self.signum = signum
        self.running = running


class _Abort(BaseException):
    """Raised by the handler of the second signal into the main thread, which is only waiting
    for the workers at that moment (see :meth:`Interruption.run_workers`)."""

    def __init__(self, signum: int):
        super().__init__(signal_name(signum))
        self.signum = signum


class Interruption:
    """The signal handling of one locked run. ``stop`` is set by the first signal; ``signum``
    is the first signal received (None when none was)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.stop = threading.Event()
        # "planning" (nothing is written yet), "applying" (steps run in worker threads),
        # "aborting" (a second signal is being acted on), "finishing" (the workers ended).
        self.phase = "planning"

    @contextmanager
    def installed(self) -> Iterator["Interruption"]:
        """Handle SIGINT and SIGTERM inside the block (see :func:`signals_handled`)."""
        with signals_handled(self._handle):
            yield self

    def _handle(self, signum: int, frame: object) -> None:
        first = self.signum is None
        if first:
            self.signum = signum
        self.stop.set()
        if self.phase == "planning":
            if first:
                raise RunInterrupted(signum)
            return  # already unwinding: the lock release is quick
        if self.phase != "applying":
            # Aborting is bounded by ABORT_GRACE_S; after the workers ended, only the snapshot,
            # the post-apply hooks and the lock release remain, and the CLI exits 130/143.
            return
        if first:
            _say(f"faasops: {signal_name(signum)} received: finishing the running steps, starting no new ones; "
                 f"the state lock is released when they end (send {signal_name(signum)} again to abort them)")
            return
        raise _Abort(signum)

    def run_workers(self, work: Callable[[], T], abort: Callable[[], list[str]]) -> T:
        """Run ``work`` (which starts the worker threads and waits for them) in a thread of its
        own while the main thread only waits, so that a signal handler can act on the main
        thread without interrupting a step. ``abort`` kills what runs and returns the running
        steps (``address step``)."""
        outcome: dict[str, object] = {}
        # Waited for through an Event, not Thread.join: a join interrupted by an exception from a
        # signal handler marks a live thread as stopped (CPython 3.11, bpo-45274's fix).
        done = threading.Event()

        def target() -> None:
            try:
                outcome["value"] = work()
            except BaseException as exc:  # re-raised in the main thread
                outcome["error"] = exc
            finally:
                done.set()

        runner = threading.Thread(target=target, name="faasops-apply-run")
        self.phase = "applying"  # before the start: from here on a signal never unwinds this thread
        try:
            runner.start()
            done.wait()
        except _Abort as exc:
            self.phase = "aborting"
            _say(f"faasops: {signal_name(exc.signum)} received again: aborting the running steps")
            running = abort()
            if not done.wait(ABORT_GRACE_S):
                raise RunAbandoned(self.signum or exc.signum, running) from None
        self.phase = "finishing"
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        return outcome["value"]  # type: ignore[return-value]


@contextmanager
def signals_handled(handler: Callable[[int, object], None]) -> Iterator[None]:
    """Route SIGINT and SIGTERM to ``handler`` inside the block, then restore the previous
    handlers (main thread only; elsewhere a no-op: the embedding program owns signals).

    Installed even when a signal was ignored at start (a background job in a script gets
    SIGINT ignored): an explicit ``kill -INT`` to an apply must stop it safely."""
    previous = {}
    for sig in SIGNALS:
        try:
            previous[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread
            pass
    try:
        yield
    finally:
        for sig, restored in previous.items():
            signal.signal(sig, restored)


def kill_child_processes() -> int:
    """SIGKILL this process's children (componentize-py builds, git); how many were found.
    Linux only (reads /proc); elsewhere nothing is killed and the workers are waited for."""
    me = str(os.getpid())
    killed = 0
    try:
        entries = list(Path("/proc").iterdir())
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            # The parent pid is the 2nd field after the parenthesised command name.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == me:
            try:
                os.kill(int(entry.name), signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


def _say(text: str) -> None:
    """A line on stderr from a signal handler: the main thread is only waiting when this runs,
    so it cannot be in the middle of writing to stderr itself."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError, RuntimeError):
        pass
