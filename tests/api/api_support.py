"""What the Platform API tests share: git-initialised example projects, ``faasops api serve`` as a
real subprocess on a free port, tokens, and readers of git and the state.

The fixtures built on them are in conftest.py.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cli_support import EXAMPLES, run_faasops

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
HELLO_SOURCE = (EXAMPLES / "hello" / "functions" / "hello" / "app.py").read_bytes()
# The one other handler the API tests build (shared build cache: built once per toolchain).
HELLO_V2_SOURCE = HELLO_SOURCE.replace(b"Hello from Blue FaaS!", b"Hello again from the API!")
# name -> scopes of the tokens in the ``token_server``'s tokens file.
SCOPED = {"root": ["admin"], "shop-writer": ["write:shop"], "demo-reader": ["read:demo"],
          "demo-writer": ["write:demo"]}
_LISTENING = re.compile(r"faasops api listening on (http://\S+)")
START_TIMEOUT_S = 120.0


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def git(project: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=project, check=True, capture_output=True, text=True).stdout


def make_git_project(dest: Path, example: str = "hello") -> Path:
    """A copy of ``examples/<example>`` as its own git repository with one commit."""
    project = dest / example
    shutil.copytree(EXAMPLES / example, project, ignore=shutil.ignore_patterns(".faasops", "__pycache__"))
    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.name", "Test Setup")
    git(project, "config", "user.email", "setup@example.com")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "initial project")
    return project


@dataclass
class ApiServer:
    """A running ``faasops api serve``."""

    project: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""
    clients: list[httpx.Client] = field(default_factory=list)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self, token: str | None = ADMIN_TOKEN, timeout: float = 600.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        made = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self.clients.append(made)
        return made

    def stop(self) -> None:
        for made in self.clients:
            made.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        else:
            self.kill()  # whatever it left running in its group

    def kill(self) -> None:
        """SIGKILL to the server and everything it started (its process group): a crash, no
        shutdown code runs."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)


def start_server(project: Path, args: tuple[str, ...], env: dict[str, str | None], log_path: Path,
                 environment: str | None = None) -> ApiServer:
    """``faasops -C project [-e environment] api serve --port 0 ARGS`` with ``env`` over this
    process's environment (None removes a variable); returns once it listens."""
    variables = {**os.environ}
    for key, value in env.items():
        if value is None:
            variables.pop(key, None)
        else:
            variables[key] = value
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "faasops.cli", "-C", str(project), *(["-e", environment] if environment else []),
             "api", "serve", "--port", "0", *args],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=variables,
            start_new_session=True,  # its own process group: kill() takes its builds down with it
        )
    server = ApiServer(project, process, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        found = _LISTENING.search(server.log())
        if found and "Application startup complete" in server.log():
            server.url = found.group(1)
            return server
        if process.poll() is not None:
            raise AssertionError(f"faasops api serve exited {process.returncode}:\n{server.log()}")
        time.sleep(0.1)
    server.stop()
    raise AssertionError(f"faasops api serve did not start in {START_TIMEOUT_S} s:\n{server.log()}")


def faasops_json(project: Path, *args: str) -> Any:
    """``faasops -C project ARGS --format json``, parsed."""
    import json

    result = run_faasops("-C", str(project), *args, "--format", "json")
    assert result.code == 0, result.output
    return json.loads(result.out)


def wait_for_task(project: Path, task_id: str, timeout_s: float = 600.0) -> dict[str, Any]:
    """The task from the state (what `faasops tasks` shows) once it is completed or failed."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = faasops_json(project, "tasks", "--id", task_id)
        assert len(found) == 1, found
        if found[0]["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return found[0]
        time.sleep(0.3)
