"""The `remote` builder provider against a real `faasops builder serve` (and, for protocol
compatibility only, a stub of an older Builder server): token errors, failing builds with the
server's log, polling timeouts, `done` as success, retries, and downloads for a local registry."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
from builder_support import (
    IMPORT_ERROR_HANDLER,
    MAX_UPLOAD_BYTES,
    TOKEN,
    TOKEN_ENV,
    BuilderServer,
    faasops,
    remote_project,
)
from cli_support import copy_example
from faasops.plugins.componentize import toolchain_version
from faasops.plugins.local import LocalState
from faasops.plugins.remote_builder import RemoteOptions

from faasops.errors import ProviderError
from faasops.manifest import load_project
from faasops.model import ProviderConfig
from faasops.plugin_manager import create_plugin_manager, create_provider
from faasops.source import snapshot_directory

# Distinct from every example's handler, so the service really builds it (once per build cache).
DOWNLOADED_HANDLER = '''\
from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        return Response(200, {"content-type": "text/plain"}, b"built by the remote builder")
'''


def test_a_wrong_or_missing_token_fails_with_a_message_naming_the_variable_not_the_token(
        local_builder: BuilderServer, tmp_path: Path) -> None:
    project = remote_project(tmp_path, local_builder.url)
    wrong = "sk-not-the-builder-token-31337"
    result = faasops(project, "apply", "--auto-approve", env={TOKEN_ENV: wrong})
    assert result.code == 1
    assert f"rejected the token in ${TOKEN_ENV} (HTTP 401: invalid bearer token)" in result.err
    assert wrong not in result.output and TOKEN not in result.output

    missing = faasops(project, "plan", env={TOKEN_ENV: ""})
    assert missing.code == 1
    assert f"set the environment variable {TOKEN_ENV}" in missing.err


def test_a_source_over_the_services_upload_limit_is_refused_before_uploading(local_builder: BuilderServer,
                                                                            tmp_path: Path) -> None:
    project = remote_project(tmp_path, local_builder.url, cache_dir=str(tmp_path / "cache"))
    noise = hashlib.shake_256(b"incompressible").digest(MAX_UPLOAD_BYTES + 4096)
    (project / "functions" / "hello" / "data.bin").write_bytes(noise)
    before = len(local_builder.workspace_tasks("demo"))
    result = faasops(project, "apply", "--auto-approve")
    assert result.code == 1
    assert f"the builder accepts at most {MAX_UPLOAD_BYTES}" in result.err
    assert len(local_builder.workspace_tasks("demo")) == before


@pytest.mark.slow  # a real (failing) componentize-py build
def test_a_failing_build_fails_the_step_with_the_servers_log_excerpt(local_builder: BuilderServer, tmp_path: Path) -> None:
    project = remote_project(tmp_path, local_builder.url, handler_source=IMPORT_ERROR_HANDLER)
    assert faasops(project, "validate").code == 0  # the contract holds; only the build can tell

    result = faasops(project, "apply", "--auto-approve")
    assert result.code == 1, result.output
    assert "demo/hello: the remote build failed (task " in result.err
    assert "No module named 'faasops_builder_test_missing_module'" in result.err
    assert "demo/hello: build task" in result.err and "running" in result.err  # progress was shown

    task = local_builder.workspace_tasks("demo")[0]
    assert task["kind"] == "build" and task["status"] == "failed"
    assert "faasops_builder_test_missing_module" in task["log"]
    # Nothing was recorded as applied: the next plan still wants to create the function.
    assert faasops(project, "plan", "--detailed-exitcode").code == 2


def test_a_task_that_never_finishes_times_out_cleanly(slow_builder: BuilderServer, tmp_path: Path) -> None:
    # A private client cache: the session's shared one may hold this build already.
    project = remote_project(tmp_path, slow_builder.url, timeout_seconds=2, poll_interval_seconds=0.25, cache_dir=str(tmp_path / "cache"))
    started = time.monotonic()
    result = faasops(project, "apply", "--auto-approve")
    elapsed = time.monotonic() - started
    assert result.code == 1
    assert "demo/hello: the remote build did not finish within 2 s (task " in result.err
    assert "is still running" in result.err and "Traceback" not in result.err
    assert elapsed < 30, elapsed
    [task] = slow_builder.workspace_tasks("demo")
    assert task["status"] == "running"

    # Stopping the service fails its open tasks instead of leaving them running forever.
    slow_builder.stop()
    state = LocalState(Path(slow_builder.config["data_dir"]) / ".faasops" / "state.db")
    [recorded] = state.list_tasks(workspace="demo")
    state.close()
    assert recorded.status == "failed" and recorded.message.startswith("interrupted")


def test_a_remote_build_is_downloaded_for_a_local_registry_and_reused(local_builder: BuilderServer, tmp_path: Path) -> None:
    cache = tmp_path / "client-cache"
    project = remote_project(tmp_path, local_builder.url, handler_source=DOWNLOADED_HANDLER, cache_dir=str(cache))
    applied = faasops(project, "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    [wasm] = cache.glob("*.wasm")
    sidecar = json.loads(wasm.with_suffix(".json").read_text())
    assert sidecar["wasm_digest"] == "sha256:" + hashlib.sha256(wasm.read_bytes()).hexdigest()
    assert wasm.stat().st_size > 1_000_000
    assert faasops(project, "plan", "--detailed-exitcode").code == 0

    # Same key, component in the local cache: no remote task at all.
    before = len(local_builder.workspace_tasks("demo"))
    (project / ".faasops" / "state.db").unlink()
    again = faasops(project, "apply", "--auto-approve")
    assert again.code == 0, again.output
    assert "1 reused from cache" in again.out
    assert len(local_builder.workspace_tasks("demo")) == before


# ------------------------------------------------------------------------------------------------
# Protocol compatibility: an older Builder server that answers `done`, and flaky networks
# ------------------------------------------------------------------------------------------------


class OlderBuilder(ThreadingHTTPServer):
    """A stub of an older Builder server: answers `done` for finished tasks, and 503 to the first
    `flaky` polls."""

    def __init__(self, build_key: str, component: bytes, flaky: int):
        super().__init__(("127.0.0.1", 0), _OlderBuilderHandler)
        self.build_key, self.component, self.flaky = build_key, component, flaky
        self.polls = 0
        self.seen_tokens: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _OlderBuilderHandler(BaseHTTPRequestHandler):
    server: OlderBuilder

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.seen_tokens.add(self.headers.get("Authorization", ""))
        stub = self.server
        if self.path == "/api/v1/info":
            self._send(200, json.dumps({"toolchain": toolchain_version()}).encode())
        elif self.path == "/api/v1/tasks/legacy-task-1":
            stub.polls += 1
            if stub.polls <= stub.flaky:
                self._send(503, b'{"detail": "busy"}')
            elif stub.polls == stub.flaky + 1:
                self._send(200, json.dumps({"task_id": "legacy-task-1", "status": "running"}).encode())
            else:
                digest = "sha256:" + hashlib.sha256(stub.component).hexdigest()
                self._send(200, json.dumps({"task_id": "legacy-task-1", "status": "done",
                                            "result": {"build_key": stub.build_key, "wasm_digest": digest}}).encode())
        elif self.path == f"/api/v1/builds/{stub.build_key}/component":
            self._send(200, stub.component, "application/wasm")
        else:
            self._send(404, b'{"detail": "not found"}')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self._send(202, json.dumps({"task_id": "legacy-task-1", "status": "pending"}).encode())


@pytest.fixture
def hello(tmp_path: Path) -> Path:
    return copy_example("hello", tmp_path)


@pytest.fixture
def older_builder(hello: Path) -> Iterator[OlderBuilder]:
    project = load_project(hello)
    fn = project.functions()[0]
    key = create_provider(create_plugin_manager(), project, "builder").build_key(fn, snapshot_directory(fn.source_dir))
    stub = OlderBuilder(key, component=b"\0asm-not-really-a-component", flaky=2)
    thread = threading.Thread(target=stub.serve_forever, daemon=True)
    thread.start()
    yield stub
    stub.shutdown()
    stub.server_close()


def test_done_from_an_older_builder_counts_as_success_and_5xx_polls_are_retried(
        older_builder: OlderBuilder, hello: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    project = load_project(hello)
    options = {"url": older_builder.url, "token_env": TOKEN_ENV, "poll_interval_seconds": 0.05, "backoff_seconds": 0.01,
               "cache_dir": str(tmp_path / "cache"), "progress": False}
    project = project.__class__(**{**project.__dict__, "providers": {
        **project.providers, "builder": ProviderConfig("builder", "remote", options)}})
    builder = create_provider(create_plugin_manager(), project, "builder")
    fn = project.functions()[0]

    build = builder.build(fn, snapshot_directory(fn.source_dir))

    assert build.build_key == older_builder.build_key
    assert build.wasm_path.read_bytes() == older_builder.component
    assert older_builder.polls == 4  # two 503s retried, `running`, then `done`
    assert older_builder.seen_tokens == {f"Bearer {TOKEN}"}


def test_an_unreachable_builder_is_retried_then_named(hello: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]  # bound, then closed: nobody listens there
    options = RemoteOptions.parse(ProviderConfig("builder", "remote", {
        "url": f"http://127.0.0.1:{port}", "token_env": TOKEN_ENV, "retries": 3, "backoff": 0.01}))
    from faasops.plugins.remote_builder import BuilderClient

    sleeps: list[float] = []
    client = BuilderClient(options, sleep=sleeps.append)
    with pytest.raises(ProviderError, match=rf"cannot reach the builder at http://127.0.0.1:{port} .*gave up after 3 attempts"):
        client.info()
    assert len(sleeps) == 2 and 0.005 <= sleeps[0] <= 0.01 and 0.01 <= sleeps[1] <= 0.02  # doubling, with jitter


@pytest.mark.parametrize(("options", "message"), [
    ({}, "providers.builder: missing required option 'url'"),
    ({"url": "http://builder.example.com"}, "refusing to send the builder token over plain http"),
    ({"url": "https://b.example", "token": "x"}, "remove 'token'"),
    ({"url": "https://b.example", "poll_every": 3}, "providers.builder.poll_every: unknown option 'poll_every'"),
    ({"url": "https://b.example", "timeout": 0}, r"providers.builder.timeout: must be more than 0 \(got 0\)"),
    ({"url": "https://b.example", "timeout_seconds": 0}, r"providers.builder.timeout_seconds: must be more than 0"),
])
def test_remote_builder_options_are_checked(hello: Path, options: dict[str, Any], message: str) -> None:
    config = ProviderConfig("builder", "remote", options)
    with pytest.raises(ProviderError, match=message):
        create_provider(create_plugin_manager(), load_project(hello), "builder", config)
    assert RemoteOptions.parse(ProviderConfig("builder", "remote", {"url": "http://b.svc:8080", "insecure": True}))
