"""`faasops up`'s server streams a response as the guest writes it, over real HTTP.

Ordering is proven with events, never with timing: the guest blocks on an outbound request to a
gate server on 127.0.0.1 that answers only once the test let it, and the test lets it only after
it read the first chunk, so that chunk reached the client while the guest was still running.
"""

from __future__ import annotations

import hashlib
import http.client
import socket
from typing import Callable, Iterator

import pytest
from streaming_support import GATE_WAIT_S, Gate, gate  # noqa: F401  (gate is a fixture)

from faasops.runtime import LoadedApp
from faasops.runtime.server import InvocationRecord, RuntimeServer

pytestmark = pytest.mark.slow

AppFactory = Callable[..., LoadedApp]
Served = tuple[RuntimeServer, list[InvocationRecord]]


@pytest.fixture
def served(app: AppFactory) -> Iterator[Served]:
    """A server with the chunked handler, the spin-sdk streaming example, and a chunked handler
    whose time limit is 1 s."""
    allowed = ["http://127.0.0.1:*"]
    apps = {
        "chunks": app("chunks", allowed_outbound_hosts=allowed),
        "streaming": app("streaming", allowed_outbound_hosts=allowed),
        "hello": app("hello"),
        "quick": app("chunks", allowed_outbound_hosts=allowed, timeout_s=1.0),
    }
    records: list[InvocationRecord] = []
    with RuntimeServer("127.0.0.1", 0, lambda ws, fn: apps.get(fn) if ws == "s" else None,
                       records.append) as server:
        yield server, records


def _open(server: RuntimeServer, method: str, path: str, headers: dict[str, str] | None = None,
          body: bytes | None = None) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=GATE_WAIT_S * 2)
    conn.request(method, path, body=body, headers=headers or {})
    return conn, conn.getresponse()


def test_chunks_reach_the_client_while_the_guest_still_runs(served: Served, gate: Gate) -> None:
    server, records = served
    conn, response = _open(server, "GET", "/s/chunks/", {"x-gate": gate.url + "/gate"})
    try:
        assert response.status == 200
        assert response.getheader("transfer-encoding") == "chunked"
        assert response.getheader("content-length") is None

        first = response.readline()
        assert not gate.released.is_set()
        gate.release()
        rest = response.read()
    finally:
        conn.close()

    assert (first, rest) == (b"first\n", b"second:released\n")
    assert [(r.function, r.status, r.error) for r in records] == [("chunks", 200, None)]


def test_a_declared_content_length_is_written_through_without_chunks(served: Served, gate: Gate) -> None:
    server, _records = served
    conn, response = _open(server, "GET", "/s/chunks/length", {"x-gate": gate.url + "/gate"})
    try:
        assert response.getheader("content-length") == str(len(b"first\nsecond:released\n"))
        assert response.getheader("transfer-encoding") is None

        first = response.read(len(b"first\n"))
        assert not gate.released.is_set()
        gate.release()
        rest = response.read()
    finally:
        conn.close()

    assert first + rest == b"first\nsecond:released\n"


def test_the_connection_is_reused_after_a_streamed_response(served: Served, gate: Gate) -> None:
    server, _records = served
    gate.release()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=GATE_WAIT_S * 2)
    try:
        bodies = []
        for path in ("/s/chunks/", "/s/chunks/length", "/s/hello"):
            conn.request("GET", path, headers={"x-gate": gate.url + "/gate"})
            bodies.append(conn.getresponse().read())
    finally:
        conn.close()

    assert bodies == [b"first\nsecond:released\n", b"first\nsecond:released\n", b"Hello from Blue FaaS!"]


@pytest.mark.parametrize(
    ("path", "sent", "reason"),
    [
        ("/crash", b"first\n", "guest crashed"),
        ("/unfinished", b"first\n", "guest returned without finishing the response body"),
        ("/overflow", b"", "the guest wrote more than its Content-Length of 4 bytes"),
    ],
)
def test_a_guest_failing_after_its_head_went_out_cuts_the_connection(
        served: Served, gate: Gate, path: str, sent: bytes, reason: str) -> None:
    server, records = served
    gate.release()
    conn, response = _open(server, "GET", "/s/chunks" + path, {"x-gate": gate.url + "/gate"})
    try:
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
    finally:
        conn.close()

    assert cut.value.partial == sent
    (record,) = records
    assert record.status == 200 and reason in (record.error or "")


def test_a_body_shorter_than_its_content_length_is_cut(served: Served, gate: Gate) -> None:
    server, records = served
    gate.release()
    conn, response = _open(server, "GET", "/s/chunks/short", {"x-gate": gate.url + "/gate"})
    try:
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
    finally:
        conn.close()

    assert cut.value.partial == b"first\nsecond:released\n"
    assert "after 22 of the 100 bytes its Content-Length announced" in (records[0].error or "")


def test_the_time_limit_cuts_a_response_whose_head_went_out(served: Served) -> None:
    server, records = served
    conn, response = _open(server, "GET", "/s/quick/spin")
    try:
        assert response.status == 200
        assert response.readline() == b"first\n"
        with pytest.raises(http.client.IncompleteRead):
            response.read()
    finally:
        conn.close()

    assert "request exceeded the time limit of 1 s" in (records[0].error or "")


def test_head_requests_are_answered_whole(served: Served, gate: Gate) -> None:
    server, _records = served
    gate.release()
    conn, response = _open(server, "HEAD", "/s/chunks/", {"x-gate": gate.url + "/gate"})
    try:
        assert response.status == 200
        assert response.getheader("content-length") == str(len(b"first\nsecond:released\n"))
        assert response.getheader("transfer-encoding") is None
        assert response.read() == b""
    finally:
        conn.close()


def test_spin_sdk_streaming_example_echoes_the_body_byte_for_byte(served: Served) -> None:
    server, records = served
    payload = bytes(range(256)) * 300
    conn, response = _open(server, "POST", "/s/streaming/echo", {"content-type": "application/octet-stream"},
                           payload)
    try:
        assert response.status == 200
        assert response.getheader("content-type") == "application/octet-stream"
        assert response.getheader("transfer-encoding") == "chunked"
        body = response.read()
    finally:
        conn.close()

    assert body == payload
    assert [(r.function, r.status, r.error) for r in records] == [("streaming", 200, None)]


def test_spin_sdk_streaming_example_sends_its_head_before_the_downloads_finish(
        served: Served, gate: Gate) -> None:
    server, _records = served
    url = gate.url + "/gate"
    conn, response = _open(server, "GET", "/s/streaming/hash-all", {"url": url})
    try:
        assert response.status == 200
        assert response.getheader("content-type") == "text/plain"
        assert not gate.released.is_set()
        gate.release()
        body = response.read()
    finally:
        conn.close()

    assert body == f"{url}: {hashlib.sha256(b'released').hexdigest()}\n".encode()


def test_spin_sdk_streaming_example_hashes_every_url(served: Served, gate: Gate) -> None:
    server, _records = served
    urls = [gate.url + "/a", gate.url + "/b/c"]
    conn = http.client.HTTPConnection(server.host, server.port, timeout=GATE_WAIT_S * 2)
    try:
        conn.putrequest("GET", "/s/streaming/hash-all")
        for url in urls:
            conn.putheader("url", url)
        conn.endheaders()
        response = conn.getresponse()
        lines = response.read().decode().splitlines()
        status = response.status
    finally:
        conn.close()

    assert status == 200
    assert sorted(lines) == sorted(f"{url}: {hashlib.sha256(url[len(gate.url):].encode()).hexdigest()}"
                                   for url in urls)


def test_spin_sdk_streaming_example_answers_400_elsewhere(served: Served) -> None:
    server, _records = served
    conn, response = _open(server, "GET", "/s/streaming/other")
    try:
        assert (response.status, response.read()) == (400, b"")
    finally:
        conn.close()


def test_an_http_1_0_client_gets_a_body_of_unknown_length_whole(served: Served, gate: Gate) -> None:
    server, _records = served
    gate.release()
    with socket.create_connection((server.host, server.port), timeout=GATE_WAIT_S * 2) as sock:
        sock.sendall(f"GET /s/chunks/ HTTP/1.0\r\nx-gate: {gate.url}/gate\r\n\r\n".encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk

    head, _, body = received.partition(b"\r\n\r\n")
    assert head.split(b"\r\n")[0] == b"HTTP/1.1 200 OK"
    assert b"transfer-encoding" not in head.lower()
    assert b"content-length: 22" in head.lower()
    assert body == b"first\nsecond:released\n"
