"""Helpers for the Builder service tests: the real ``faasops builder serve`` in a subprocess on
127.0.0.1, raw HTTP against it, and projects pointed at it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import urllib3
import yaml
from cli_support import Result, copy_example, run_faasops

TOKEN = "test-builder-token-7f3a9c21e5b04d6f"
TOKEN_ENV = "FAASOPS_TEST_BUILDER_TOKEN"
HERE = Path(__file__).resolve().parent
START_TIMEOUT_S = 60.0
MAX_UPLOAD_BYTES = 256 * 1024  # the local test service's limit
_LISTENING = re.compile(r"faasops builder listening on (http://127\.0\.0\.1:\d+)")

# A handler that meets the contract (faasops validate passes) but cannot build: componentize-py
# imports the module at build time and the import fails. (Imported by name at run time: validate
# flags a plain `import` of a module nothing provides.)
IMPORT_ERROR_HANDLER = '''\
import importlib

from spin_sdk import http
from spin_sdk.http import Request, Response

importlib.import_module("faasops_builder_test_missing_module")  # no such module: the build fails here


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        return Response(200, {"content-type": "text/plain"}, b"unreachable")
'''


class BuilderServer:
    """``faasops builder serve --config FILE --port 0``, as an operator starts it."""

    def __init__(self, workdir: Path, config: dict[str, Any], env: dict[str, str] | None = None,
                 pythonpath: tuple[Path, ...] = ()):
        self.workdir = workdir
        self.config_path = workdir / "builder.yaml"
        self.log_path = workdir / "builder.log"
        self.config = {"apiVersion": "faasops/builder/v1", "data_dir": str(workdir / "data"),
                       "auth": {"token_env": TOKEN_ENV}, **config}
        self.env = {**os.environ, TOKEN_ENV: TOKEN, **(env or {})}
        if pythonpath:
            self.env["PYTHONPATH"] = os.pathsep.join([*map(str, pythonpath), self.env.get("PYTHONPATH", "")])
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self.http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=60))

    def start(self) -> BuilderServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config))
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "faasops.cli", "builder", "serve", "--config", str(self.config_path),
                 "--host", "127.0.0.1", "--port", "0"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            found = _LISTENING.search(self.log())
            if found:
                self.url = found.group(1)
                if self._answers():
                    return self
            if self._proc.poll() is not None:
                raise RuntimeError(f"faasops builder serve exited with {self._proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"faasops builder serve did not start within {START_TIMEOUT_S:g} s:\n{self.log()}")

    def _answers(self) -> bool:
        try:
            return self.http.request("GET", self.url + "/healthz").status == 200
        except urllib3.exceptions.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM (graceful: open tasks are marked interrupted), SIGKILL after 15 s."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)

    def __enter__(self) -> BuilderServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------------- raw HTTP

    def request(self, method: str, path: str, *, token: str | None = TOKEN, json_body: Any = None,
                body: bytes | None = None, headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers["Content-Type"] = "application/json"
        return self.http.request(method, self.url + path, body=body, headers=all_headers)

    def upload(self, path: str, archive: bytes, spec: dict[str, Any], token: str | None = TOKEN) -> urllib3.BaseHTTPResponse:
        body, content_type = urllib3.encode_multipart_formdata({
            "spec": json.dumps(spec), "source": ("source.tar.gz", archive, "application/gzip")})
        return self.request("POST", path, token=token, body=body, headers={"Content-Type": content_type})

    def wait_task(self, task_id: str, timeout_s: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            task = json.loads(self.request("GET", f"/api/v1/tasks/{task_id}").data)
            if task["status"] in ("completed", "failed"):
                return task
            time.sleep(0.1)
        raise AssertionError(f"task {task_id} did not finish within {timeout_s} s")

    def workspace_tasks(self, workspace: str) -> list[dict[str, Any]]:
        response = self.request("GET", f"/api/v1/workspaces/{workspace}/tasks")
        assert response.status == 200, response.data
        return json.loads(response.data)["tasks"]


def local_service_config(**limits: int) -> dict[str, Any]:
    """Every provider on the service's embedded local backend (under its data_dir)."""
    return {"limits": limits, "providers": {
        "state": {"type": "local"}, "sources": {"type": "local"},
        "registry": {"type": "local"}, "deployer": {"type": "local"},
    }}


def function_spec(workspace: str = "demo", name: str = "hello", **settings: Any) -> dict[str, Any]:
    return {"workspace": workspace, "name": name, **settings}


def remote_project(tmp_path: Path, server_url: str, *, example: str = "hello", overlay: str = "remote",
                   handler_source: str | None = None, **builder_options: Any) -> Path:
    """An example project whose ``faas.<overlay>.yaml`` selects the remote builder."""
    project = copy_example(example, tmp_path)
    if handler_source is not None:
        (project / "functions" / "hello" / "app.py").write_text(handler_source)
    options = {"url": server_url, "token_env": TOKEN_ENV, "poll_interval_seconds": 0.2, **builder_options}
    (project / f"faas.{overlay}.yaml").write_text(yaml.safe_dump({"providers": {"builder": {"type": "remote", **options}}}))
    return project


def faasops(project: Path, *args: str, env: dict[str, str] | None = None, overlay: str = "remote") -> Result:
    return run_faasops("-C", str(project), "-e", overlay, *args, env={TOKEN_ENV: TOKEN, **(env or {})})
