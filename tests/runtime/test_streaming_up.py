"""Streaming through the real CLI: `faasops apply`, `faasops up`, then a client reading the socket,
`faasops invoke` and `faasops logs` on a response cut after its head went out."""

from __future__ import annotations

import http.client
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cli_support import run_faasops
from streaming_support import Gate, gate, handler_source  # noqa: F401  (gate is a fixture)
from up_support import running_up

pytestmark = pytest.mark.slow


MANIFEST = """\
apiVersion: faasops/v1
project: streaming
workspaces:
  - name: demo
    functions:
      - name: chunks
        source: functions/chunks
        allowed_outbound_hosts: ["http://127.0.0.1:*"]
      - name: example
        source: functions/streaming
"""


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("streaming-up")
    for name in ("chunks", "streaming"):
        shutil.copytree(handler_source(name), root / "functions" / name)
    (root / "faas.yaml").write_text(MANIFEST)
    applied = run_faasops("-C", str(root), "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    return root


def test_faasops_up_sends_each_chunk_as_the_function_writes_it(project: Path, gate: Gate) -> None:
    with running_up(project) as up:
        address = urlsplit(up.url)
        conn = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
        try:
            conn.request("GET", "/demo/chunks/", headers={"x-gate": gate.url + "/gate"})
            response = conn.getresponse()
            status, encoding = response.status, response.getheader("transfer-encoding")
            first = response.readline()
            released_before_first_chunk = gate.released.is_set()
            gate.release()
            rest = response.read()
        finally:
            conn.close()

    assert (status, encoding, released_before_first_chunk) == (200, "chunked", False)
    assert first + rest == b"first\nsecond:released\n"


def test_invoke_and_logs_say_why_a_streamed_response_was_cut(project: Path, gate: Gate) -> None:
    gate.release()
    with running_up(project):
        invoked = run_faasops("-C", str(project), "invoke", "demo/chunks", "--path", "/unfinished")
        logs = run_faasops("-C", str(project), "logs", "demo/chunks", "--format", "json")

    assert invoked.code == 1
    assert "was cut short (HTTP 200 sent" in invoked.err
    assert "Traceback" not in invoked.err
    assert "guest returned without finishing the response body" in logs.out


def test_spin_sdk_streaming_example_echoes_through_faasops_up(project: Path) -> None:
    payload = b"hello streaming\n" * 1000
    with running_up(project) as up:
        address = urlsplit(up.url)
        conn = http.client.HTTPConnection(address.hostname, address.port, timeout=120)
        try:
            conn.request("POST", "/demo/example/echo", body=payload, headers={"content-type": "text/plain"})
            response = conn.getresponse()
            status, body = response.status, response.read()
        finally:
            conn.close()

    assert (status, body) == (200, payload)
