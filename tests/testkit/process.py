"""Process plumbing shared by the test services that run a server binary (docker-registry,
Prometheus …) and by tests that start the CLI in the background.

Every process a test starts must be stopped in its teardown (a ``finally`` or a fixture) with
:func:`terminate`, even when the test fails; and a test must pass when pytest itself was started
with SIGINT ignored (``nohup … &``, a CI shell's background job), which children inherit.
"""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` of a service's log file ("" when it has none yet)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def terminate(process: subprocess.Popen[Any] | None, grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; a process already gone is fine."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace_s)


def as_foreground_job() -> None:
    """``preexec_fn`` for a child that a test stops with SIGINT, as Ctrl-C stops a terminal's
    foreground job: undo an inherited "SIGINT ignored"."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
