"""`faasops up` bounds what a client or a function can make it spend, over real HTTP with real
components: per-function concurrency, instance memory, request bodies, request time, and it
refuses ambiguous request framing and response heads that could split the response."""

from __future__ import annotations

import shutil
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

from cli_support import REPO, run_faasops
from up_support import UpProcess, running_up

HANDLERS = REPO / "tests" / "runtime" / "handlers"

MANIFEST = """\
apiVersion: faasops/v1
project: limits
workspaces:
  - name: demo
    functions:
      - name: hello
        source: functions/hello
      - name: echo
        source: functions/echo
      - name: busy
        source: functions/busy
        timeout: 3s
      - name: limits
        source: functions/limits
        resources: {limits: {memory: 128Mi}}
"""


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    """One applied project served with a small concurrency and body limit."""
    root = tmp_path_factory.mktemp("up-limits") / "project"
    for name in ("hello", "echo", "busy", "limits"):
        shutil.copytree(HANDLERS / name, root / "functions" / name)
    (root / "faas.yaml").write_text(MANIFEST)
    applied = run_faasops("-C", str(root), "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    with running_up(root, "--no-apply", "--concurrency", "2", "--max-body-size", "1Mi") as server:
        yield server


def get(url: str, data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def raw(up: UpProcess, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send a hand-written request; return the status and everything the server answered
    until it closed the connection (it does after refusing a request, or on Connection: close)."""
    address = urlsplit(up.url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode("latin-1") + b"\r\n" + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1."), received
    return int(received.split(b" ", 2)[1]), received


def test_a_saturated_function_answers_503_while_other_functions_still_answer(up: UpProcess) -> None:
    answers: list[tuple[int, dict[str, str], bytes]] = []
    spinning = [threading.Thread(target=lambda: answers.append(get(up.url + "/demo/busy/spin")))
                for _ in range(6)]
    for thread in spinning:
        thread.start()
    try:
        # While busy holds both of its slots (3 s each), hello still gets one of its own.
        assert get(up.url + "/demo/hello/")[::2] == (200, b"Hello from Blue FaaS!")
    finally:
        for thread in spinning:
            thread.join()
    statuses = sorted(status for status, _, _ in answers)
    assert statuses.count(503) >= 3, statuses
    refused = next(a for a in answers if a[0] == 503)
    assert refused[1]["retry-after"] == "1"
    assert b"per-function concurrency limit" in refused[2]


def test_the_function_timeout_from_the_manifest_stops_a_looping_request(up: UpProcess) -> None:
    status, _, body = get(up.url + "/demo/busy/spin")
    assert (status, body) == (500, b"request exceeded the time limit of 3 s\n")
    assert "demo/busy answered 500: request exceeded the time limit of 3 s" in up.log()


def test_a_memory_bomb_gets_500_naming_the_limit_and_the_server_keeps_serving(up: UpProcess) -> None:
    status, _, body = get(up.url + "/demo/limits/bomb")
    assert (status, body) == (500, b"request exceeded the memory limit of 128 MiB\n")
    assert "demo/limits answered 500: request exceeded the memory limit of 128 MiB" in up.log()
    assert get(up.url + "/demo/limits/")[::2] == (200, b"ok")


def test_a_body_within_the_limit_reaches_the_function(up: UpProcess) -> None:
    body = b"x" * (1 << 20)
    status, _, echoed = get(up.url + "/demo/echo/", body)
    assert (status, echoed) == (200, body)
    chunked = "POST /demo/echo/ HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\nConnection: close\n"
    status, answer = raw(up, chunked, b"3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\n\r\n")
    assert status == 200, answer


@pytest.mark.parametrize("headers, body", [
    ("Content-Length: 1048577", b""),
    ("Content-Length: 99999999999999", b""),
    ("Content-Length: 1048577\nExpect: 100-continue", b""),
    ("Transfer-Encoding: chunked", b"FFFFFFFFFFFF\r\n"),
    ("Transfer-Encoding: chunked", b"80000\r\n" + b"x" * 0x80000 + b"\r\n80001\r\n"),
], ids=["content-length", "huge-content-length", "expect-continue", "huge-chunk", "chunks-add-up"])
def test_a_body_over_the_limit_is_refused_with_413(up: UpProcess, headers: str, body: bytes) -> None:
    status, answer = raw(up, f"POST /demo/echo/ HTTP/1.1\nHost: x\n{headers}\n", body)
    assert status == 413, answer
    assert b"exceeds the limit of 1 MiB" in answer


@pytest.mark.parametrize("headers, body", [
    ("Content-Length: -1", b""),
    ("Content-Length: 1e12", b""),
    ("Content-Length: +5", b"hello"),
    ("Content-Length: 5\nContent-Length: 6", b"hello!"),
    ("Content-Length: 5, 6", b"hello!"),
    ("Content-Length: 5\nTransfer-Encoding: chunked", b"0\r\n\r\n"),
    ("Transfer-Encoding: gzip, chunked", b"0\r\n\r\n"),
    ("Transfer-Encoding: chunked", b"zz\r\n"),
    ("Transfer-Encoding: chunked", b"-1\r\n"),
    ("Transfer-Encoding: chunked", b"1FFFFFFFFFFFFFFFF\r\n"),
    ("Transfer-Encoding: chunked", b"3\r\nabcXY0\r\n\r\n"),
], ids=["negative", "exponent", "plus-sign", "two-lengths", "length-list", "length-and-chunked",
        "unknown-coding", "hex-garbage", "negative-chunk", "overlong-chunk-size", "unterminated-chunk"])
def test_ambiguous_or_malformed_framing_is_refused_with_400(up: UpProcess, headers: str, body: bytes) -> None:
    status, answer = raw(up, f"POST /demo/echo/ HTTP/1.1\nHost: x\n{headers}\n", body)
    assert status == 400, answer
    assert b"Traceback" not in answer
    assert get(up.url + "/demo/hello/")[0] == 200


@pytest.mark.parametrize("path", ["/header/crlf", "/header/lf", "/header/nul", "/header/name", "/status/700"])
def test_a_response_head_a_server_must_not_send_becomes_500(up: UpProcess, path: str) -> None:
    status, answer = raw(up, f"GET /demo/limits{path} HTTP/1.1\nHost: x\nConnection: close\n")
    assert status == 500, answer
    head = answer.split(b"\r\n\r\n", 1)[0].lower()
    assert b"set-cookie" not in head and b"x-note" not in head and b"x-bad" not in head
    assert get(up.url + "/demo/limits/")[::2] == (200, b"ok")


@pytest.mark.parametrize("value", ["0s", "3601s", "61m", "2h", "30", "1.5m", '"30s\\n"', "-5s"])
def test_a_timeout_outside_1s_to_1h_is_a_located_validation_error(tmp_path: Path, value: str) -> None:
    shutil.copytree(HANDLERS / "hello", tmp_path / "functions" / "hello")
    (tmp_path / "faas.yaml").write_text(
        f"apiVersion: faasops/v1\nproject: t\ndefaults:\n  timeout: {value}\nworkspaces:\n  - name: demo\n"
        "    functions:\n      - name: hello\n        source: functions/hello\n        timeout: 2m\n")
    result = run_faasops("-C", str(tmp_path), "validate")
    assert result.code == 1, result.output
    assert "faas.yaml:4:" in result.err and "timeout" in result.err and "1s to 1h" in result.err
    assert "Traceback" not in result.err


def test_changing_the_timeout_alone_reaches_the_running_server(up: UpProcess) -> None:
    project = Path(up.log_path).parent / "project"
    manifest = project / "faas.yaml"
    manifest.write_text(manifest.read_text().replace("timeout: 3s", "timeout: 1s"))
    plan = run_faasops("-C", str(project), "plan")
    assert "demo/busy" in plan.out and "timeout" in plan.out, plan.output
    applied = run_faasops("-C", str(project), "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    assert run_faasops("-C", str(project), "plan", "--detailed-exitcode").code == 0
    answers = [get(up.url + "/demo/busy/spin")[2] for _ in range(3)]  # the swap takes a poll
    assert b"request exceeded the time limit of 1 s\n" in answers, answers
