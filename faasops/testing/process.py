"""Process plumbing shared by the test services that run a server binary (docker-registry,
Prometheus …)."""

from __future__ import annotations

import subprocess
from pathlib import Path


def log_tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` of a service's log file ("" when it has none yet)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def terminate(process: subprocess.Popen[bytes] | None, grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``; a process already gone is fine."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace_s)
