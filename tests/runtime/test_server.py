"""RuntimeServer over real HTTP, serving real components."""

from __future__ import annotations

import http.client
import json
import threading
from typing import Callable, Iterator

import pytest

from faasops.runtime import LoadedApp
from faasops.runtime.server import InvocationRecord, RuntimeServer

AppFactory = Callable[..., LoadedApp]
Served = tuple[RuntimeServer, dict[tuple[str, str], LoadedApp], list[InvocationRecord]]


@pytest.fixture
def served(app: AppFactory) -> Iterator[Served]:
    """A server on a free port with three apps, and the invocation records it made."""
    apps = {("team", "hello"): app("hello"), ("team", "echo"): app("echo"),
            ("team", "failing"): app("failing")}
    records: list[InvocationRecord] = []
    lock = threading.Lock()

    def record(rec: InvocationRecord) -> None:
        with lock:
            records.append(rec)

    with RuntimeServer("127.0.0.1", 0, lambda ws, fn: apps.get((ws, fn)), record) as server:
        yield server, apps, records


def _request(server: RuntimeServer, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_server_routes_workspace_and_function_to_the_app(served: Served) -> None:
    server, _apps, _records = served

    status, headers, body = _request(server, "GET", "/team/hello")

    assert (status, body) == (200, b"Hello from Blue FaaS!")
    assert headers["content-type"] == "text/plain"
    assert server.port != 0


def test_server_passes_the_path_below_the_mount_query_and_body(served: Served) -> None:
    server, _apps, _records = served

    status, headers, body = _request(server, "POST", "/team/echo/a/b?q=1", body=b"data",
                                     headers={"X-Custom": "yes"})

    assert (status, body) == (200, b"data")
    assert headers["x-echo-uri"] == "/a/b?q=1"
    seen = json.loads(headers["x-echo-headers"])
    assert seen["x-custom"] == "yes"
    assert seen["spin-path-info"] == "/a/b"


def test_unknown_function_and_bad_path_are_json_404s(served: Served) -> None:
    server, _apps, _records = served

    unknown = _request(server, "GET", "/team/nope/x")
    no_function = _request(server, "GET", "/team")

    for status, headers, body in (unknown, no_function):
        assert status == 404
        assert headers["content-type"] == "application/json"
        assert "error" in json.loads(body)
    assert "team/nope" in json.loads(unknown[2])["error"]


def test_every_invocation_is_recorded(served: Served) -> None:
    server, _apps, records = served

    _request(server, "GET", "/team/hello/x?y=1")
    _request(server, "GET", "/team/failing/boom")
    _request(server, "DELETE", "/team/nope")

    by_function = {r.function: r for r in records}
    hello, failing, nope = by_function["hello"], by_function["failing"], by_function["nope"]
    assert (hello.workspace, hello.method, hello.path, hello.status) == (
        "team", "GET", "/team/hello/x?y=1", 200)
    assert hello.duration_s > 0 and hello.cpu_s > 0 and hello.error is None and hello.time > 0
    assert failing.status == 500
    assert failing.error is not None and "kaboom from the guest" in failing.error
    assert "about to fail" in failing.stderr
    assert (nope.status, nope.method) == (404, "DELETE")


def test_swapping_the_resolved_app_takes_effect_on_the_next_request(served: Served) -> None:
    server, apps, _records = served

    before = _request(server, "GET", "/team/hello")
    apps[("team", "hello")] = apps[("team", "failing")]
    after = _request(server, "GET", "/team/hello")

    assert before[2] == b"Hello from Blue FaaS!"
    assert after[2] == b"still alive"


def test_server_answers_concurrent_clients(served: Served) -> None:
    server, _apps, _records = served
    results: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def client(i: int) -> None:
        status, _headers, body = _request(server, "POST", f"/team/echo/{i}", body=b"x" * i)
        with lock:
            results.append((status, body))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == sorted((200, b"x" * i) for i in range(16))
