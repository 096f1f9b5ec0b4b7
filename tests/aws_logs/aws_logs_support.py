"""What the logs tests share (imported by name: several test folders have a conftest)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cli_support import Result, copy_example, run_faasops

from testkit.availability import unavailable
from testkit.moto import MotoServer, MotoServerNotFound
from testkit.process import as_foreground_job, terminate

TABLE = "faasops-logs"
WS = "storefront"
# Nothing listens on port 9 (discard): a provider that tried to reach it would fail the test.
DEAD_ENDPOINT = "http://127.0.0.1:9"


def start_moto_server() -> MotoServer:
    """A started moto server; when moto_server is missing, a skip — but a failure under CI=true."""
    try:
        return MotoServer().start()
    except MotoServerNotFound as exc:
        unavailable(str(exc))


def logs_project(tmp_path: Path, logs: dict[str, Any]) -> Path:
    """The cloud example with a ``faas.local.yaml`` overlay setting ``providers.logs`` — and
    pointing state and sources at a dead endpoint, to prove `faasops logs` needs neither."""
    project = copy_example("cloud", tmp_path)
    overlay = {"providers": {
        "logs": logs,
        "state": {"type": "dynamodb", "table": "faasops-state", "endpoint_url": DEAD_ENDPOINT, "max_attempts": 1},
        "sources": {"type": "s3", "bucket": "nowhere", "endpoint_url": DEAD_ENDPOINT, "max_attempts": 1},
    }}
    (project / "faas.local.yaml").write_text(json.dumps(overlay))
    return project


def run_logs(project: Path, *args: str) -> Result:
    """``faasops -C PROJECT -e local logs ARGS…`` in a subprocess."""
    return run_faasops("-C", str(project), "-e", "local", "logs", *args, timeout=120)


class CliFollower:
    """``faasops logs … --follow`` running in a subprocess, its stdout read line by line.

    Every follower still running after a test is stopped by the ``stop_followers`` fixture."""

    running: list["CliFollower"] = []

    def __init__(self, project: Path, *args: str):
        CliFollower.running.append(self)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "faasops.cli", "-C", str(project), "-e", "local", "logs", *args, "--follow"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            preexec_fn=as_foreground_job,  # stop() presses Ctrl-C, even under `nohup pytest &`
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, count: int, timeout_s: float = 30.0) -> list[str]:
        """Block until ``count`` lines have been printed in all; return every line so far."""
        deadline = time.monotonic() + timeout_s
        while len(self.lines) < count:
            try:
                line = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"waited {timeout_s:.0f} s for {count} lines, got {self.lines}; "
                                     f"stderr: {self._stderr_so_far()}") from None
            if line is None:
                raise AssertionError(f"the CLI exited ({self.proc.wait()}) after {self.lines}: {self._stderr_so_far()}")
            self.lines.append(line)
        return list(self.lines)

    def _stderr_so_far(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def stop(self, quiet_s: float = 1.0) -> tuple[int, list[str], str]:
        """Wait ``quiet_s`` for stray lines, interrupt the CLI (Ctrl-C); return its exit code,
        every line it printed and its stderr."""
        time.sleep(quiet_s)
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        while True:
            line = self._queue.get(timeout=5)
            if line is None:
                break
            self.lines.append(line)
        return self.proc.returncode, list(self.lines), err


def stop_followers() -> None:
    """Terminate every follower a test left running (its assertions failed before stop())."""
    while CliFollower.running:
        terminate(CliFollower.running.pop().proc)
