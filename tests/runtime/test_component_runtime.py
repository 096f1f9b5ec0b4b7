"""ComponentRuntime / LoadedApp against real componentize-py builds and real wasmtime."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import pytest

from faasops.runtime import ComponentLoadError, ComponentRuntime, HttpRequest, LoadedApp

AppFactory = Callable[..., LoadedApp]


def test_hello_answers_with_its_greeting(app: AppFactory) -> None:
    response = app("hello").handle(HttpRequest("GET", "/ws/hello/", base_path="/ws/hello"))

    assert response.status == 200
    assert response.body == b"Hello from Blue FaaS!"
    assert response.header("content-type") == "text/plain"
    assert response.error is None
    assert response.duration_s > 0 and response.cpu_s > 0


def test_echo_sees_method_path_below_the_mount_query_headers_and_body(app: AppFactory) -> None:
    request = HttpRequest(
        "PUT", "/team/echo/items/7?color=blue&x=1",
        headers=[("Host", "faas.local:8080"), ("Content-Type", "text/plain"), ("X-Trace", "abc")],
        body=b"payload \x00\xff bytes", base_path="/team/echo", client_addr="10.1.2.3:5555")

    response = app("echo").handle(request)

    assert response.status == 200
    assert response.body == b"payload \x00\xff bytes"
    assert response.header("x-echo-method") == "PUT"
    assert response.header("x-echo-uri") == "/items/7?color=blue&x=1"  # as on the cluster (route /...)
    seen = json.loads(response.header("x-echo-headers") or "{}")
    assert seen["x-trace"] == "abc" and seen["content-type"] == "text/plain"
    assert seen["spin-full-url"] == "http://faas.local:8080/items/7?color=blue&x=1"
    assert seen["spin-path-info"] == "/items/7"
    assert seen["spin-component-route"] == ""
    assert seen["spin-matched-route"] == "/..."
    assert seen["spin-base-path"] == "/"
    assert seen["spin-client-addr"] == "10.1.2.3:5555"
    assert response.stdout == "echo PUT /items/7?color=blue&x=1 (16 bytes)\n"


def test_spin_headers_sent_by_a_client_are_followed_by_the_triggers_values(app: AppFactory) -> None:
    request = HttpRequest("GET", "/ws/echo/x", headers=[("spin-path-info", "/forged")],
                          base_path="/ws/echo")

    seen = json.loads(app("echo").handle(request).header("x-echo-headers") or "{}")

    assert seen["spin-path-info"] == "/x"


def test_guest_exception_gives_500_with_traceback_and_next_request_works(app: AppFactory) -> None:
    failing = app("failing")

    crashed = failing.handle(HttpRequest("GET", "/ws/failing/boom"))
    after = failing.handle(HttpRequest("GET", "/ws/failing/ok"))

    assert crashed.status == 500
    assert crashed.error is not None
    assert "Traceback (most recent call last)" in crashed.error
    assert "ValueError: kaboom from the guest" in crashed.error
    assert "about to fail" in crashed.stderr
    assert (after.status, after.body, after.error) == (200, b"still alive", None)
    assert after.stderr == ""  # output is captured per request


def test_key_value_counter_persists_across_requests(app: AppFactory, tmp_path: Path) -> None:
    kv = tmp_path / "kv.sqlite"
    counter = app("counter", kv_path=kv, kv_namespace="team/counter")

    first = counter.handle(HttpRequest("GET", "/team/counter"))
    second = counter.handle(HttpRequest("GET", "/team/counter"))

    assert (first.status, first.body) == (200, b"1")
    assert (second.status, second.body) == (200, b"2")
    assert second.header("x-keys") == "counter"


def test_key_value_namespaces_isolate_apps_sharing_a_file(app: AppFactory, tmp_path: Path) -> None:
    kv = tmp_path / "kv.sqlite"
    one = app("counter", kv_path=kv, kv_namespace="ws/one")
    other = app("counter", kv_path=kv, kv_namespace="ws/other")

    one.handle(HttpRequest("GET", "/"))
    one.handle(HttpRequest("GET", "/"))

    assert other.handle(HttpRequest("GET", "/")).body == b"1"


def test_key_value_without_a_store_is_access_denied(app: AppFactory) -> None:
    response = app("counter").handle(HttpRequest("GET", "/"))

    assert response.status == 500
    assert response.error is not None and "Error_AccessDenied" in response.error


def test_variables_are_readable_and_errors_typed(app: AppFactory) -> None:
    variables = app("variables", variables={"greeting": "hej från faasops"})

    assert variables.handle(HttpRequest("GET", "/v/greeting")).body == "hej från faasops".encode()
    assert variables.handle(HttpRequest("GET", "/v/missing")).body == b"Error_Undefined"
    assert variables.handle(HttpRequest("GET", "/v/Bad-Name")).body == b"Error_InvalidName"


@pytest.mark.parametrize("route, interface, error", [
    ("/llm", "fermyon:spin/llm@2.0.0 (infer) is not supported", "spin_sdk.wit.types.Err: Error_InvalidInput("),
    ("/http", "outbound request to https://example.com/ denied", "spin_sdk.wit.types.Err: ErrorCode_HttpRequestDenied()"),
])
def test_an_unsupported_or_denied_host_call_raises_in_the_guest_and_is_logged(
        app: AppFactory, route: str, interface: str, error: str) -> None:
    unsupported = app("unsupported")

    response = unsupported.handle(HttpRequest("GET", route))
    after = unsupported.handle(HttpRequest("GET", "/fine"))

    # The handler does not catch it, so spin-sdk answers 500 with the traceback in the logs.
    assert response.status == 500
    assert response.error is not None and error in response.error
    assert f"[faasops] {interface}" in response.stderr
    assert (after.status, after.body) == (200, b"nothing unsupported here")


def test_five_megabyte_body_round_trips_through_echo(app: AppFactory) -> None:
    echo = app("echo")
    body = bytes(range(256)) * (5 * 1024 * 1024 // 256)

    started = time.perf_counter()
    response = echo.handle(HttpRequest("POST", "/ws/echo/big", body=body))
    elapsed = time.perf_counter() - started

    print(f"\n5 MB echo round trip: {elapsed * 1000:.0f} ms (cpu {response.cpu_s * 1000:.0f} ms)")
    assert response.status == 200
    assert response.body == body


def test_concurrent_requests_from_threads_get_their_own_answers(app: AppFactory) -> None:
    echo = app("echo")

    def call(i: int) -> tuple[int, bytes, str]:
        response = echo.handle(HttpRequest("POST", f"/ws/echo/{i}", body=f"body-{i}".encode() * 100))
        return response.status, response.body, response.stdout

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(call, range(64)))

    for i, (status, body, stdout) in enumerate(results):
        assert status == 200
        assert body == f"body-{i}".encode() * 100
        assert stdout == f"echo POST /ws/echo/{i} ({len(body)} bytes)\n"


@pytest.mark.slow  # compiles a real component with wasmtime
def test_second_runtime_reuses_the_compiled_artifact(
        component: Callable[[str], Path], tmp_path: Path) -> None:
    wasm = component("hello")
    first = ComponentRuntime(tmp_path / "compiled")
    loaded_first = first.load(wasm)
    second = ComponentRuntime(tmp_path / "compiled")
    loaded_second = second.load(wasm)

    assert (first.compile_count, loaded_first.compiled_from_cache) == (1, False)
    assert (second.compile_count, loaded_second.compiled_from_cache) == (0, True)
    assert loaded_second.handle(HttpRequest("GET", "/")).body == b"Hello from Blue FaaS!"
    first.close()
    second.close()


def test_loading_something_that_is_not_a_component_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.wasm"
    bogus.write_bytes(b"\x00asm not really")
    runtime = ComponentRuntime(tmp_path / "compiled")

    with pytest.raises(ComponentLoadError, match="cannot compile"):
        runtime.load(bogus)
    runtime.close()


@pytest.mark.parametrize("route", ["/spin", "/sleep"])
def test_request_exceeding_the_time_limit_is_stopped(
        component: Callable[[str], Path], compiled_cache_dir: Path, route: str) -> None:
    runtime = ComponentRuntime(compiled_cache_dir, timeout_s=0.3)
    try:
        response = runtime.load(component("busy")).handle(HttpRequest("GET", route))
    finally:
        runtime.close()

    assert response.status == 500
    assert "time limit" in response.body.decode()
    assert response.duration_s < 5


def test_every_request_gets_a_fresh_instance(app: AppFactory) -> None:
    stateful = app("stateful")

    answers = {stateful.handle(HttpRequest("GET", f"/s/{i}")).body for i in range(5)}

    assert answers == {b"1"}
