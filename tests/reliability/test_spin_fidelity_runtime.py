"""Issue 20, items 1 and 8: the local runtime presents a request exactly as Spin does on the
cluster (each function its own app with route ``/...``), through ``faasops up`` over HTTP and
``faasops invoke`` in-process; ``faasops invoke`` sends UTF-8 headers, prints them back as sent,
and fails like ``curl -f``.

The expected values are Spin's trigger-http (v3.6.3, ``crates/trigger-http/src/headers.rs``,
see ``faasops/runtime/http_trigger.py``), written out here so that a change of either side shows.
One function is built: the ``fidelity`` test handler, as ``handler: handlers.http`` (a dotted
module, which componentize-py takes as it is).
"""

from __future__ import annotations

import http.client
import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from cli_support import REPO, run_faasops
from up_support import UpProcess, running_up

from testkit.process import terminate

FIDELITY_HANDLER = REPO / "tests" / "runtime" / "handlers" / "fidelity" / "app.py"
MOUNT = "/demo/fidelity"

MANIFEST = """\
apiVersion: faasops/v1
project: fidelity
workspaces:
  - name: demo
    functions:
      - name: fidelity
        source: functions/fidelity
        handler: handlers.http
"""

ROUTE_HEADERS = {  # what Spin's trigger sets for route "/..." whatever the request
    "spin-matched-route": "/...",
    "spin-raw-component-route": "/...",
    "spin-component-route": "",
    "spin-base-path": "/",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fidelity")
    handlers = root / "functions" / "fidelity" / "handlers"
    handlers.mkdir(parents=True)
    shutil.copy(FIDELITY_HANDLER, handlers / "http.py")
    (root / "faas.yaml").write_text(MANIFEST)
    applied = run_faasops("-C", str(root), "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    return root


@pytest.fixture(scope="module")
def up(project: Path) -> Iterator[UpProcess]:
    with running_up(project) as server:
        yield server


def request(up: UpProcess, target: str, method: str = "GET", body: bytes | None = None,
            headers: dict[str, str | bytes] | None = None) -> tuple[int, list[tuple[str, str]], bytes]:
    """One raw request to ``faasops up`` (http.client sends the target and header bytes as given)."""
    host, port = up.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("content-length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        conn.close()


def seen(body: bytes) -> tuple[str, dict[str, str]]:
    data = json.loads(body)
    return data["uri"], data["headers"]


@pytest.mark.parametrize("target, uri", [
    (f"{MOUNT}/post", "/post"),
    (f"{MOUNT}/items/7?color=blue&x=a%20b", "/items/7?color=blue&x=a%20b"),
    (f"{MOUNT}/caf%C3%A9/a%2Fb", "/caf%C3%A9/a%2Fb"),  # still percent-encoded, as received
    (f"{MOUNT}/dir/", "/dir/"),  # a trailing slash stays
    (f"{MOUNT}/", "/"),
    (MOUNT, "/"),  # the bare mount is the app's root
    (f"{MOUNT}?q=1", "/?q=1"),
])
def test_guest_sees_the_path_below_its_route_and_spins_headers_over_http(
        up: UpProcess, target: str, uri: str) -> None:
    status, _, body = request(up, target)
    assert status == 200, body
    guest_uri, headers = seen(body)
    assert guest_uri == uri
    path = uri.partition("?")[0]
    assert {k: headers[k] for k in ROUTE_HEADERS} == ROUTE_HEADERS
    assert headers["spin-path-info"] == path  # the query is not part of it
    assert headers["spin-full-url"] == f"{up.url}{uri}"  # scheme and Host header, then path and query
    assert re.fullmatch(r"127\.0\.0\.1:\d+", headers["spin-client-addr"])
    assert "host" not in headers  # wasmtime-wasi-http keeps Host (a forbidden header) from the guest


def test_spin_headers_a_client_sends_are_overridden_for_the_guest(up: UpProcess) -> None:
    status, _, body = request(up, f"{MOUNT}/x", headers={
        "spin-path-info": "/forged", "spin-full-url": "http://evil/", "spin-client-addr": "6.6.6.6:66"})
    assert status == 200, body
    _, headers = seen(body)
    assert headers["spin-path-info"] == "/x"
    assert headers["spin-full-url"] == f"{up.url}/x"
    assert headers["spin-client-addr"] != "6.6.6.6:66"


def test_an_app_routing_on_the_exact_uri_works_locally_as_on_the_cluster(project: Path, up: UpProcess) -> None:
    status, _, body = request(up, f"{MOUNT}/multiply", "POST", b"6 7")
    assert (status, body) == (200, b"42")
    invoked = run_faasops("-C", str(project), "invoke", "demo/fidelity", "--path", "/multiply", "-d", "6 7")
    assert (invoked.code, invoked.out) == (0, "42"), invoked.output


def test_utf8_request_header_reaches_the_guest_and_other_bytes_are_refused_as_spin_does(up: UpProcess) -> None:
    status, _, body = request(up, f"{MOUNT}/h", headers={"x-uni": "héllo".encode()})
    assert status == 200, body
    assert seen(body)[1]["x-uni"] == "héllo"
    status, _, body = request(up, f"{MOUNT}/h", headers={"x-latin": "héllo".encode("latin-1")})
    assert status == 500  # Spin's trigger refuses a header value that is not UTF-8
    assert b"not UTF-8" in body


def test_invoke_through_a_running_up_presents_the_request_as_the_cluster(project: Path, up: UpProcess) -> None:
    result = run_faasops("-C", str(project), "invoke", "demo/fidelity", "--path", "/items?id=7&tag=a%20b",
                         "-H", "x-uni: héllo")
    assert result.code == 0, result.output
    uri, headers = seen(result.out.encode())
    assert uri == "/items?id=7&tag=a%20b"
    assert headers["x-uni"] == "héllo"
    assert headers["spin-path-info"] == "/items"
    assert headers["spin-full-url"] == f"{up.url}/items?id=7&tag=a%20b"


# --------------------------------------------------------------- in-process `faasops invoke`


@pytest.fixture
def stopped(project: Path, up: UpProcess) -> Iterator[Path]:
    """The project with no `faasops up` announced for it (invoke then runs in-process); the
    module's server keeps running and gets its up.json back afterwards."""
    up_json = project / ".faasops" / "up.json"
    saved = up_json.read_bytes()
    up_json.unlink()
    yield project
    up_json.write_bytes(saved)


def test_invoke_in_process_presents_the_request_as_the_cluster(stopped: Path) -> None:
    result = run_faasops("-C", str(stopped), "invoke", "demo/fidelity", "--path", "/a/b/?q=%20", "-H", "x-uni: héllo",
                         "-H", "spin-path-info: /forged")
    assert result.code == 0, result.output
    uri, headers = seen(result.out.encode())
    assert uri == "/a/b/?q=%20"
    assert {k: headers[k] for k in ROUTE_HEADERS} == ROUTE_HEADERS
    assert headers["spin-path-info"] == "/a/b/"
    assert headers["spin-full-url"] == "http://localhost/a/b/?q=%20"
    assert headers["spin-client-addr"] == "127.0.0.1:0"
    assert headers["x-uni"] == "héllo"
    bare = run_faasops("-C", str(stopped), "invoke", "demo/fidelity")
    assert seen(bare.out.encode())[0] == "/"


def test_invoke_prints_utf8_response_headers_as_sent(stopped: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "faasops.cli", "-C", str(stopped), "invoke", "demo/fidelity",
                             "--path", "/utf8-header", "-i"], capture_output=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "x-uni: héllo wörld\n".encode() in result.stdout
    assert result.stdout.endswith(b"\n\nok")


@pytest.mark.parametrize("status, args, code", [
    (500, (), 22), (503, (), 22), (404, (), 0), (404, ("--fail",), 22), (200, ("--fail",), 0), (302, ("-f",), 0),
])
def test_invoke_exits_22_on_5xx_and_on_4xx_with_fail_like_curl(stopped: Path, status: int, args: tuple[str, ...],
                                                                  code: int) -> None:
    result = run_faasops("-C", str(stopped), "invoke", "demo/fidelity", "--path", f"/status/{status}", *args)
    assert result.code == code, result.output
    assert result.out == "as asked"  # the body is printed either way
    assert (f"HTTP {status}" in result.err) == (code != 0)


def test_a_str_body_is_a_clean_500_and_the_panic_is_in_the_logs(stopped: Path) -> None:
    result = run_faasops("-C", str(stopped), "invoke", "demo/fidelity", "--path", "/str-body", "-i")
    assert result.code == 22, result.output
    head, _, body = result.out.partition("\n\n")
    assert head.splitlines()[0] == "HTTP 500"
    assert body.count("\n") == 1 and "backtrace" not in body
    assert "the response body is not bytes" in body
    logs = run_faasops("-C", str(stopped), "logs", "demo/fidelity", "--limit", "1")
    assert "GET /demo/fidelity/str-body 500" in logs.out
    assert "panicked" in logs.out and "DowncastError" in logs.out
    assert "wasm backtrace" in logs.out  # the whole trap stays available for a bug report


def test_invoke_ends_the_body_with_a_newline_on_a_terminal_only(stopped: Path) -> None:
    command = [sys.executable, "-m", "faasops.cli", "-C", str(stopped), "invoke", "demo/fidelity",
               "--path", "/multiply", "-d", "6 7"]
    piped = subprocess.run(command, capture_output=True, timeout=300)
    assert piped.stdout == b"42"
    leader, follower = pty.openpty()
    process = None
    try:
        process = subprocess.Popen(command, stdout=follower, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        os.close(follower)
        follower = -1
        output = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        assert process.wait(timeout=300) == 0
    finally:
        terminate(process)
        os.close(leader)
        if follower != -1:
            os.close(follower)
    assert output == b"42\r\n"  # the terminal turns \n into \r\n
