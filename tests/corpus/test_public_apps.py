"""Issue 20: public Spin Python apps answer under ``faasops up`` exactly as under Spin.

The apps are vendored byte for byte in tests/corpus/apps (provenance, licences and the expected
behaviour of each in tests/corpus/CORPUS.md). All of them are built in one project, so a session
builds each once (shared build cache), and served by one ``faasops up``. Each function is an app
of its own with route ``/...`` as on the cluster, so an app sees ``request.uri`` = the path and
query below ``/corpus/<app>``.

What Spin answers was derived from the app's code and spin-sdk 3.4.1's ``http.IncomingHandler``
(``spin_sdk/http/__init__.py``): it adds ``content-length`` when the app sets none, and any
exception escaping ``handle_request`` becomes a 500 with no headers and an empty body (the
traceback goes to stderr). Apps calling a host API faasops does not offer (LLM, Redis, MySQL,
PostgreSQL, MQTT) get Spin's error value as a Python exception they could catch; these apps
don't catch it, so they answer that 500, and the request's log names the interface.

Apps that use dependencies, SQLite and streaming are in
test_public_apps_with_dependencies_sqlite_streaming.py.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from cli_support import run_faasops
from corpus_support import (
    FACT, UP_START_TIMEOUT_S, Answer, Upstream, applied_project, last_log, request, write_project,
)
from up_support import UpProcess, running_up

SERVED = (
    "sdk-hello", "sdk-http-py-template", "sdk-outgoing-request", "sdk-spin-kv", "sdk-spin-variables",
    "sdk-spin-llm", "sdk-spin-mysql", "sdk-spin-outbound-mqtt", "sdk-spin-postgres", "sdk-spin-redis",
    "ws-hello-python", "ws-magic8-json", "ws-magic8-ai", "ws-magic8-kv",
    "docs-request-json", "docs-redis-variables", "docs-kv-tutorial", "docs-kv-guide", "docs-variables-send",
    "docs-ai-api-guide", "docs-ai-hello", "docs-quickstart", "dev-pw-checker",
)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Path:
    return applied_project(tmp_path_factory.mktemp("corpus") / "project", SERVED, upstream)


@pytest.fixture(scope="module")
def up(project: Path) -> Iterator[UpProcess]:
    with running_up(project, start_timeout_s=UP_START_TIMEOUT_S) as server:
        yield server


@dataclass(frozen=True)
class Exchange:
    """A request to one app and the answer Spin gives, byte for byte."""

    app: str
    method: str
    target: str
    status: int
    body: bytes
    content_type: str | None = None  # None: the answer has no content-type
    request_body: bytes | None = None

    def __str__(self) -> str:
        return f"{self.app} {self.method} {self.target}"


def assert_answer(answer: Answer, expected: Exchange) -> None:
    assert (answer.status, answer.body) == (expected.status, expected.body)
    assert answer.header("content-type") == expected.content_type
    if expected.content_type is not None:  # spin-sdk sets it from the body it sends
        assert answer.header("content-length") == str(len(expected.body))


EXCHANGES = [
    Exchange("sdk-hello", "GET", "/", 200, b"Hello from Python!", "text/plain"),
    Exchange("sdk-http-py-template", "GET", "/any/path?x=1", 200, b"Hello from Python!", "text/plain"),
    Exchange("docs-quickstart", "GET", "/", 200, b"Hello from the Python SDK!", "text/plain"),
    Exchange("ws-hello-python", "POST", "/", 200, b"Hello, WebAssembly", "text/plain", b"ignored"),
    Exchange("sdk-outgoing-request", "GET", "/", 400, b"Please specify `url` header", "text/plain"),
    Exchange("sdk-spin-kv", "GET", "/", 200, b"Hello from Python!", "text/plain"),
    Exchange("sdk-spin-variables", "GET", "/", 200, b"Hello from Python!", "text/plain"),
    Exchange("docs-kv-guide", "GET", "/", 200, b"hello world!", "text/plain"),
    Exchange("docs-request-json", "POST", "/", 200, b"Practicing reading the request object", "text/plain",
             b'{"name": "Fermyon"}'),
    Exchange("docs-request-json", "GET", "/", 200, b"Practicing reading the request object", "text/plain"),
    # json.loads fails in handle_request: spin-sdk's 500
    Exchange("docs-request-json", "POST", "/", 500, b"", None, b"not json"),
    Exchange("dev-pw-checker", "POST", "/", 200, b'{"authentication": "accepted"}', "application/json", b"123"),
    Exchange("dev-pw-checker", "POST", "/", 200, b'{"authentication": "denied"}', "application/json", b"1234"),
    Exchange("ws-magic8-ai", "POST", "/", 400, b"No question provided", "text/plain", b""),
    Exchange("ws-magic8-kv", "POST", "/", 400, b"No question asked", "application/json", b""),
    # `llm.LLMInferencingParams` is not in spin-sdk 3.4.1 (AttributeError before any host call)
    Exchange("docs-ai-hello", "GET", "/", 500, b""),
]


@pytest.mark.slow
@pytest.mark.parametrize("exchange", EXCHANGES, ids=str)
def test_public_app_answers_as_under_spin(up: UpProcess, exchange: Exchange) -> None:
    answer = request(up, exchange.app, exchange.target, exchange.method, exchange.request_body)
    assert_answer(answer, exchange)


@pytest.mark.slow
def test_spin_kv_example_prints_what_it_did_with_the_default_store(project: Path, up: UpProcess) -> None:
    assert request(up, "sdk-spin-kv").status == 200
    log = last_log(project, "sdk-spin-kv")
    assert [line.strip() for line in log.splitlines() if "stdout|" in line] == [
        "stdout| ['test']", "stdout| True", "stdout| b'hello world!'", "stdout| []"]


@pytest.mark.slow
def test_spin_variables_example_reads_the_declared_variable(project: Path, up: UpProcess) -> None:
    assert request(up, "sdk-spin-variables").status == 200
    assert "stdout| hello, world!" in last_log(project, "sdk-spin-variables")


@pytest.mark.slow
def test_kv_tutorial_keys_are_the_request_uri_below_the_route(up: UpProcess) -> None:
    """The tutorial's keys are ``request.uri``; its POST, HEAD, DELETE and fallback branches build
    ``Response(status, headers)`` without a body, which spin-sdk 3.4.1 refuses (TypeError → 500)
    *after* the store call, so the write still happens — as under Spin."""
    text = "text/plain"
    steps = [
        Exchange("docs-kv-tutorial", "GET", "/greeting", 404, b"", text),
        Exchange("docs-kv-tutorial", "POST", "/greeting", 500, b"", None, b"hi there"),
        Exchange("docs-kv-tutorial", "GET", "/greeting", 200, b"hi there", text),
        Exchange("docs-kv-tutorial", "GET", "/greeting?lang=en", 404, b"", text),  # the query is part of the key
        Exchange("docs-kv-tutorial", "GET", "/greeting/", 404, b"", text),
        Exchange("docs-kv-tutorial", "HEAD", "/greeting", 500, b""),
        Exchange("docs-kv-tutorial", "PUT", "/greeting", 500, b"", None, b"x"),
        Exchange("docs-kv-tutorial", "DELETE", "/greeting", 500, b""),
        Exchange("docs-kv-tutorial", "GET", "/greeting", 404, b"", text),
    ]
    for step in steps:
        answer = request(up, step.app, step.target, step.method, step.request_body)
        assert (str(step), answer.status, answer.body) == (str(step), step.status, step.body)
        assert answer.header("content-type") == step.content_type, step


@pytest.mark.slow
def test_magic_eight_ball_answers_one_of_its_answers_as_json(up: UpProcess) -> None:
    answers = {"Ask again later.", "Absolutely!", "Unlikely", "Simply put, no"}
    for _ in range(3):
        answer = request(up, "ws-magic8-json", "/magic-8")
        assert (answer.status, answer.header("content-type")) == (200, "application/json")
        assert json.loads(answer.body)["answer"] in answers
        assert answer.body == json.dumps({"answer": json.loads(answer.body)["answer"]}).encode()


@pytest.mark.slow
def test_outgoing_request_example_returns_the_upstream_answer(up: UpProcess, upstream: Upstream) -> None:
    answer = request(up, "sdk-outgoing-request", headers=[("url", f"{upstream.url}/fact")])
    assert (answer.status, answer.body) == (201, FACT)
    assert answer.header("content-type") == "application/json"
    assert answer.header("x-upstream") == "yes"
    assert answer.header("content-length") == str(len(FACT))
    # The upstream's Server and Date pass through once: Spin's server adds no Server header and a
    # date only to a response that has none.
    assert answer.headers["server"] == [answer.headers["server"][0]] and "faasops" not in answer.headers["server"][0]
    assert len(answer.headers["date"]) == 1


@pytest.mark.slow
def test_the_server_adds_a_date_and_no_server_header_as_spins_does(up: UpProcess) -> None:
    answer = request(up, "sdk-hello")
    assert answer.status == 200
    assert "server" not in answer.headers
    assert len(answer.headers["date"]) == 1 and answer.headers["date"][0].endswith(" GMT")


@pytest.mark.slow
def test_outgoing_request_to_a_closed_port_is_spin_sdks_500(project: Path, up: UpProcess) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    answer = request(up, "sdk-outgoing-request", headers=[("url", f"http://127.0.0.1:{closed}/")])
    assert (answer.status, answer.body, answer.header("content-type")) == (500, b"", None)
    assert "spin_sdk.wit.types.Err: ErrorCode_ConnectionRefused" in last_log(project, "sdk-outgoing-request")


@pytest.mark.slow
def test_variables_page_sample_calls_its_api_with_the_bearer_token(up: UpProcess, upstream: Upstream) -> None:
    answer = request(up, "docs-variables-send")
    assert_answer(answer, Exchange("docs-variables-send", "GET", "/", 200, b"Used an API", "text/plain"))
    assert {"path": "/v1", "authorization": "Bearer s3cr3t-t0ken"} in upstream.seen


UNSUPPORTED = [
    # app, request body, interface and function named in the log, error value the app got
    ("sdk-spin-llm", None, "fermyon:spin/llm@2.0.0 (infer)", "invalid-input", "Error_InvalidInput"),
    ("docs-ai-api-guide", None, "fermyon:spin/llm@2.0.0 (infer)", "invalid-input", "Error_InvalidInput"),
    ("ws-magic8-ai", b"Will it rain?", "fermyon:spin/llm@2.0.0 (infer)", "invalid-input", "Error_InvalidInput"),
    ("ws-magic8-kv", b"Will it rain?", "fermyon:spin/llm@2.0.0 (infer)", "invalid-input", "Error_InvalidInput"),
    ("sdk-spin-redis", None, "fermyon:spin/redis@2.0.0 ([static]connection.open)", "invalid-address",
     "Error_InvalidAddress"),
    ("docs-redis-variables", None, "fermyon:spin/redis@2.0.0 ([static]connection.open)", "invalid-address",
     "Error_InvalidAddress"),
    ("sdk-spin-mysql", None, "fermyon:spin/mysql@2.0.0 ([static]connection.open)", "connection-failed",
     "Error_ConnectionFailed"),
    ("sdk-spin-postgres", None, "fermyon:spin/postgres@2.0.0 ([static]connection.open)", "connection-failed",
     "Error_ConnectionFailed"),
    ("sdk-spin-outbound-mqtt", None, "fermyon:spin/mqtt@2.0.0 ([static]connection.open)", "connection-failed",
     "Error_ConnectionFailed"),
]


@pytest.mark.slow
@pytest.mark.parametrize("app, body, interface, error, exception", UNSUPPORTED, ids=[u[0] for u in UNSUPPORTED])
def test_app_calling_an_unsupported_host_api_gets_spins_error_as_an_exception(
        project: Path, up: UpProcess, app: str, body: bytes | None, interface: str, error: str,
        exception: str) -> None:
    answer = request(up, app, "/", "POST" if body is not None else "GET", body)
    assert (answer.status, answer.body, answer.header("content-type")) == (500, b"", None)
    log = last_log(project, app)
    assert (f"[faasops] {interface} is not supported by faasops' local runtime: "
            f"returned error {error} to the function") in log
    # raised in the guest as a Python exception (which the app could have caught), not a trap
    assert f"spin_sdk.wit.types.Err: {exception}" in log


@pytest.mark.slow
def test_invoke_gives_the_same_bytes_as_http(project: Path, up: UpProcess) -> None:
    invoked = run_faasops("-C", str(project), "invoke", "corpus/dev-pw-checker", "-d", "123")
    assert (invoked.code, invoked.out.rstrip("\n")) == (0, '{"authentication": "accepted"}'), invoked.output
    invoked = run_faasops("-C", str(project), "invoke", "corpus/docs-kv-tutorial", "--path", "/nothing-here")
    assert (invoked.code, invoked.out.strip()) == (0, ""), invoked.output


OTHER_SDK_GENERATIONS = [
    ("sdk-v4-hello", "functions/sdk-v4-hello/app.py:4:1: this is a spin-sdk 4/5 handler"),
    ("sdk-v2-hello-world", "functions/sdk-v2-hello-world/app.py:4:1: this is a spin-sdk 1.x handler"),
]


@pytest.mark.parametrize("app, message", OTHER_SDK_GENERATIONS, ids=[a for a, _ in OTHER_SDK_GENERATIONS])
def test_app_for_another_spin_sdk_generation_is_refused_by_validate_with_a_named_message(
        tmp_path: Path, app: str, message: str) -> None:
    root = write_project(tmp_path / "project", [app])
    validated = run_faasops("-C", str(root), "validate")
    assert validated.code == 1
    assert message in validated.output
    assert "faasops builds handlers for spin-sdk 3.4.1" in validated.output
    assert "Traceback" not in validated.output
