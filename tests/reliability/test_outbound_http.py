"""Issue 20, item 4: outbound HTTP (``spin_sdk.http.send``) under Spin's ``allowed_outbound_hosts``.

The ``outbound`` test handler (tests/runtime/handlers/outbound) forwards ``/send?url=U`` to ``U``
and answers what came back, or 502 with the exception it caught. Its function allows exactly
``http://127.0.0.1:<port>`` of an upstream server this module starts on 127.0.0.1 (and stops in
teardown), so the same server reached as ``localhost`` is a host outside the list. Requests go
through the real CLI: ``faasops invoke`` runs the deployed artifact in-process, reading the list
back from the artifact's Spin locked app.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Sequence

import pytest

from cli_support import REPO, Result, run_faasops

from faasops.oci import OciLayout
from faasops.runtime.outgoing_http import MAX_RESPONSE_BYTES

HANDLER = REPO / "tests" / "runtime" / "handlers" / "outbound" / "app.py"


class Upstream(BaseHTTPRequestHandler):
    """``/hello``: 201, ``x-up`` and the ``x-test`` it got; POST: the body back; ``/redirect``: a
    302; ``/huge``: one byte more than the runtime hands to a guest."""

    seen: list[str] = []
    release = threading.Event()  # set in teardown: a stalled answer ends then

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        Upstream.seen.append(f"{self.command} {self.headers.get('host')} {self.path}")
        if self.path == "/stall":
            Upstream.release.wait(120)
            self.answer(200, b"too late")
        elif self.path == "/redirect":
            self.answer(302, b"moved", [("location", "/hello")])
        elif self.path == "/huge":
            self.answer(200, b"x" * (MAX_RESPONSE_BYTES + 1))
        else:
            self.answer(201, b"hello from upstream",
                        [("x-up", "yes"), ("x-echo", self.headers.get("x-test", ""))])

    def do_POST(self) -> None:  # noqa: N802
        Upstream.seen.append(f"{self.command} {self.headers.get('host')} {self.path}")
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.answer(200, b"got " + body, [("x-method", self.command)])

    def answer(self, status: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    thread = threading.Thread(target=server.serve_forever, name="upstream", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        Upstream.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def manifest(allowed: str) -> str:
    return f"""\
apiVersion: faasops/v1
project: outbound
workspaces:
  - name: demo
    functions:
      - name: outbound
        source: functions/outbound
        timeout: 2s
        allowed_outbound_hosts:
{allowed}"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, upstream: int) -> Path:
    root = tmp_path_factory.mktemp("outbound")
    source = root / "functions" / "outbound"
    source.mkdir(parents=True)
    shutil.copy(HANDLER, source / "app.py")
    (root / "faas.yaml").write_text(manifest(f"          - http://127.0.0.1:{upstream}\n"))
    applied = run_faasops("-C", str(root), "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    return root


def invoke(project: Path, path: str, *args: str) -> Result:
    return run_faasops("-C", str(project), "invoke", "demo/outbound", "-i", "--path", path, *args)


def status_and_body(result: Result) -> tuple[int, str]:
    head, _, body = result.out.partition("\r\n\r\n") if "\r\n\r\n" in result.out else result.out.partition("\n\n")
    return int(head.split()[1]), body


def test_an_allowed_host_answers_with_its_status_headers_and_body(project: Path, upstream: int) -> None:
    result = invoke(project, f"/send?url=http://127.0.0.1:{upstream}/hello", "-H", "x-test: round trip")

    status, body = status_and_body(result)
    assert status == 200, result.output
    answer = json.loads(body)
    assert answer["status"] == 201
    assert answer["headers"]["x-up"] == "yes"
    assert answer["headers"]["x-echo"] == "round trip"
    assert answer["body"] == "hello from upstream"


def test_a_post_body_reaches_the_allowed_host(project: Path, upstream: int) -> None:
    result = invoke(project, f"/send?url=http://127.0.0.1:{upstream}/items", "-d", "a posted body")

    status, body = status_and_body(result)
    assert status == 200, result.output
    answer = json.loads(body)
    assert (answer["status"], answer["body"], answer["headers"]["x-method"]) == (200, "got a posted body", "POST")


def test_a_host_outside_the_list_is_an_error_the_handler_catches(project: Path, upstream: int) -> None:
    Upstream.seen.clear()

    result = invoke(project, f"/send?url=http://localhost:{upstream}/hello")

    status, body = status_and_body(result)
    # The handler's own except clause answered: spin-sdk raised Err(ErrorCode_HttpRequestDenied).
    assert (status, body.strip()) == (502, "caught Err(ErrorCode_HttpRequestDenied: )"), result.output
    assert Upstream.seen == []
    logs = run_faasops("-C", str(project), "logs", "demo/outbound", "--limit", "1")
    assert f"outbound request to http://localhost:{upstream}/hello denied" in logs.output


def test_a_redirect_is_handed_to_the_handler_not_followed(project: Path, upstream: int) -> None:
    result = invoke(project, f"/send?url=http://127.0.0.1:{upstream}/redirect")

    answer = json.loads(status_and_body(result)[1])
    assert (answer["status"], answer["headers"]["location"], answer["body"]) == (302, "/hello", "moved")


def test_a_response_over_the_size_limit_is_an_error_the_handler_catches(project: Path, upstream: int) -> None:
    result = invoke(project, f"/send?url=http://127.0.0.1:{upstream}/huge")

    status, body = status_and_body(result)
    assert (status, body.strip()) == (502, f"caught Err(ErrorCode_HttpResponseBodySize: {MAX_RESPONSE_BYTES})"), \
        result.output


def test_a_refused_connection_is_an_error_the_handler_catches(project: Path) -> None:
    # A port nothing listens on: bind, note the port, close.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    manifest_path = project / "faas.yaml"
    original = manifest_path.read_text()
    # The list is part of the function's spec: adding an entry redeploys (no rebuild: same source).
    manifest_path.write_text(original + f"          - http://127.0.0.1:{port}\n")
    try:
        assert run_faasops("-C", str(project), "apply", "--auto-approve").code == 0
        result = invoke(project, f"/send?url=http://127.0.0.1:{port}/")
    finally:
        manifest_path.write_text(original)
        assert run_faasops("-C", str(project), "apply", "--auto-approve").code == 0

    status, body = status_and_body(result)
    assert (status, body.strip()) == (502, "caught Err(ErrorCode_ConnectionRefused: )"), result.output


def test_an_upstream_that_never_answers_cannot_hold_the_request_past_its_time_limit(
        project: Path, upstream: int) -> None:
    result = invoke(project, f"/send?url=http://127.0.0.1:{upstream}/stall")

    # The read gives up at the function's deadline: the handler catches the timeout, unless the
    # runtime's own time limit stops it first (both end the request at its 2 s limit).
    assert status_and_body(result)[1].strip() in (
        "caught Err(ErrorCode_HttpResponseTimeout: )", "request exceeded the time limit of 2 s"), result.output
    assert Upstream.seen[-1].endswith("/stall")


def test_the_list_reaches_the_spin_locked_app_of_the_artifact(project: Path, upstream: int) -> None:
    layout = OciLayout(project / ".faasops" / "oci")
    refs = layout.list_refs()
    assert refs, "apply pushed no artifact"
    locked = [layout.locked_app_for(digest) for digest in refs.values()]

    components = [component for app in locked for component in app["components"]]
    # Where Spin's loader puts it (crates/loader/src/local.rs) and SpinKube's Spin reads it.
    assert [c["metadata"]["allowed_outbound_hosts"] for c in components] == [[f"http://127.0.0.1:{upstream}"]]


MALFORMED = {
    "no-scheme": ("api.example.com", "'api.example.com' is not a valid allowed_outbound_hosts entry"),
    "unknown-scheme-without-port": ("ftp://files.example.com", "'ftp://files.example.com' is not a valid"),
    "any-scheme-without-port": ("'*://example.com'", "'*://example.com' is not a valid"),
    "path": ("https://example.com:443/v1", "'https://example.com:443/v1' is not a valid"),
    "port-out-of-range": ("http://127.0.0.1:65536", "'http://127.0.0.1:65536' is not a valid"),
    "inner-wildcard": ("'https://api.*.example.com'", "'https://api.*.example.com' is not a valid"),
    "template": ("'https://{{ host }}'", "'https://{{ host }}' is not a valid allowed_outbound_hosts entry"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_entry_is_a_located_validate_error(case: str, tmp_path: Path) -> None:
    entry, message = MALFORMED[case]
    (tmp_path / "functions" / "outbound").mkdir(parents=True)
    shutil.copy(HANDLER, tmp_path / "functions" / "outbound" / "app.py")
    (tmp_path / "faas.yaml").write_text(manifest(f"          - https://ok.example.com\n          - {entry}\n"))

    result = run_faasops("-C", str(tmp_path), "validate")

    assert result.code == 1, result.output
    assert f"faas.yaml:11:13 workspaces[0].functions[0].allowed_outbound_hosts[1]: {message}" in result.output
    assert "Traceback" not in result.output


def test_defaults_give_every_function_the_list_and_spins_forms_validate(tmp_path: Path) -> None:
    (tmp_path / "functions" / "outbound").mkdir(parents=True)
    shutil.copy(HANDLER, tmp_path / "functions" / "outbound" / "app.py")
    entries = ["https://api.example.com", "http://127.0.0.1:8080", "https://*.example.com", "*://*:*",
               "redis://cache:6379", "http://10.0.0.0/8:8000..8080", "http://[::1]:3000", "postgres://db"]
    lines = "".join(f"    - '{entry}'\n" for entry in entries)
    (tmp_path / "faas.yaml").write_text(
        "apiVersion: faasops/v1\nproject: outbound\ndefaults:\n  allowed_outbound_hosts:\n" + lines
        + "workspaces:\n  - name: demo\n    functions:\n      - name: outbound\n        source: functions/outbound\n")

    result = run_faasops("-C", str(tmp_path), "plan", "--format", "json")

    assert result.code == 0, result.output
    assert entries[0] in result.out and "*://*:*" in result.out
