"""``faasops up`` in a subprocess for tests: started, waited for, and always stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from testkit.process import log_tail, terminate

START_TIMEOUT_S = 180


@dataclass
class UpProcess:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def up_file(project: Path) -> Path:
    return project / ".faasops" / "up.json"


def start_up(project: Path, *args: str, preexec_fn: Callable[[], Any] | None = None,
             start_timeout_s: float = START_TIMEOUT_S) -> UpProcess:
    """Start ``faasops -C PROJECT up --port 0 ARGS…`` and wait (up to ``start_timeout_s``) until
    it serves. The caller must :func:`testkit.process.terminate` it (see :func:`running_up`)."""
    log_path = project.parent / f"up-{project.name}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "faasops.cli", "-C", str(project), "up", "--port", "0", *args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, preexec_fn=preexec_fn,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                info = json.loads(up_file(project).read_text())
                if info.get("pid") == process.pid:
                    return UpProcess(process, info["url"], log_path)
            except (FileNotFoundError, ValueError):
                pass
            if process.poll() is not None:
                raise AssertionError(f"faasops up exited with {process.returncode}:\n{log_tail(log_path)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"faasops up did not serve within {start_timeout_s} s:\n{log_tail(log_path)}")
            time.sleep(0.1)
    except BaseException:
        terminate(process)
        raise


@contextmanager
def running_up(project: Path, *args: str, start_timeout_s: float = START_TIMEOUT_S) -> Iterator[UpProcess]:
    """``faasops up`` serving ``project`` for the block; SIGTERM (then SIGKILL) afterwards."""
    up = start_up(project, *args, start_timeout_s=start_timeout_s)
    try:
        yield up
    finally:
        terminate(up.process, grace_s=15)
