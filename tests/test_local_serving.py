"""The embedded default end to end: apply, then call functions with `faasops invoke` and
`faasops up`, read `faasops logs` and `faasops metrics` — real builds, real wasmtime."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from cli_support import REPO, run_faasops
from up_support import start_up, up_file

from testkit.process import terminate

HANDLERS = REPO / "tests" / "runtime" / "handlers"

MANIFEST = """\
apiVersion: faasops/v1
project: serving
workspaces:
  - name: demo
    functions:
      - name: hello
        source: functions/hello
      - name: echo
        source: functions/echo
      - name: failing
        source: functions/failing
      - name: counter
        source: functions/counter
        key_value_stores: [default]
      - name: counter-undeclared
        source: functions/counter
      - name: settings
        source: functions/settings
        env: {GREETING: Hej}
        variables: {audience: platform team}
"""


@pytest.fixture(scope="module")
def served_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One applied project with five functions, shared by the tests of this module."""
    root = tmp_path_factory.mktemp("serving")
    for name in ("hello", "echo", "failing", "counter", "settings"):
        shutil.copytree(HANDLERS / name, root / "functions" / name)
    (root / "faas.yaml").write_text(MANIFEST)
    applied = run_faasops("-C", str(root), "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    return root


def http(url: str, data: bytes | None = None, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_readme_main_job_applies_hello_and_invoke_prints_the_greeting(hello_project: Path) -> None:
    assert run_faasops("-C", str(hello_project), "apply", "--auto-approve").code == 0
    result = run_faasops("-C", str(hello_project), "invoke", "demo/hello")
    assert result.code == 0, result.output
    assert result.out == "Hello from Blue FaaS!"


def test_invoke_passes_method_path_query_headers_and_body(served_project: Path, tmp_path: Path) -> None:
    payload = tmp_path / "payload.json"
    payload.write_text('{"id": 7}')
    result = run_faasops("-C", str(served_project), "invoke", "demo/echo", "-X", "PUT", "-d", f"@{payload}",
                         "-H", "content-type: application/json", "-H", "x-trace: abc", "--path", "/items?id=7", "-i")
    assert result.code == 0, result.output
    head, _, body = result.out.partition("\n\n")
    assert head.splitlines()[0] == "HTTP 200"
    headers = dict(line.split(": ", 1) for line in head.splitlines()[1:])
    assert headers["x-echo-method"] == "PUT"
    assert headers["x-echo-uri"] == "/items?id=7"
    seen = json.loads(headers["x-echo-headers"])
    assert seen["x-trace"] == "abc" and seen["content-type"] == "application/json"
    assert body == '{"id": 7}'


def test_failing_handler_answers_500_and_its_traceback_is_in_logs(served_project: Path) -> None:
    failed = run_faasops("-C", str(served_project), "invoke", "demo/failing", "--path", "/boom", "-i")
    assert failed.code == 22, failed.output  # curl -f's code: a 5xx is a failed call
    assert failed.out.startswith("HTTP 500")
    ok = run_faasops("-C", str(served_project), "invoke", "demo/failing")
    assert ok.out == "still alive"
    logs = run_faasops("-C", str(served_project), "logs", "demo/failing", "--limit", "2")
    assert logs.code == 0, logs.output
    assert "GET /demo/failing/boom 500" in logs.out
    assert "ValueError: kaboom from the guest" in logs.out
    assert "about to fail" in logs.out
    entries = [json.loads(l) for l in run_faasops("-C", str(served_project), "logs", "demo", "failing", "--format", "json").out.splitlines()]
    assert [e["status"] for e in entries][-2:] == [500, 200]
    assert {e["function_id"] for e in entries} == {"demo.failing"}


def test_function_sees_its_env_and_variables_from_the_manifest(served_project: Path) -> None:
    result = run_faasops("-C", str(served_project), "invoke", "demo/settings")
    assert result.code == 0, result.output
    assert result.out == "Hej, platform team!"


def test_key_value_store_persists_across_invocations(served_project: Path) -> None:
    first = int(run_faasops("-C", str(served_project), "invoke", "demo/counter").out)
    second = int(run_faasops("-C", str(served_project), "invoke", "demo/counter").out)
    assert second == first + 1


def test_a_store_the_function_does_not_declare_is_access_denied_as_in_spin(served_project: Path) -> None:
    """Same code as demo/counter, no `key_value_stores`: Spin's `access-denied`, an exception
    the handler could catch (here it doesn't, so spin-sdk answers 500)."""
    result = run_faasops("-C", str(served_project), "invoke", "demo/counter-undeclared")
    assert result.code == 22, result.output
    logs = run_faasops("-C", str(served_project), "logs", "demo/counter-undeclared")
    assert "Error_AccessDenied" in logs.out, logs.output


def test_declared_stores_are_in_the_locked_app_for_the_cluster(served_project: Path) -> None:
    index = json.loads((served_project / ".faasops" / "oci" / "index.json").read_text())
    blobs = served_project / ".faasops" / "oci" / "blobs" / "sha256"

    def metadata(function: str) -> dict:
        entry = [m for m in index["manifests"]
                 if m["annotations"]["org.opencontainers.image.ref.name"].split("/")[-1].startswith(f"{function}:")][-1]
        manifest = json.loads((blobs / entry["digest"].removeprefix("sha256:")).read_bytes())
        locked = json.loads((blobs / manifest["layers"][-1]["digest"].removeprefix("sha256:")).read_bytes())
        return locked["components"][0].get("metadata") or {}

    assert metadata("counter")["key_value_stores"] == ["default"]
    assert "key_value_stores" not in metadata("counter-undeclared")


def test_metrics_count_requests_and_cpu(served_project: Path) -> None:
    for _ in range(3):
        assert run_faasops("-C", str(served_project), "invoke", "demo/hello").code == 0
    result = run_faasops("-C", str(served_project), "metrics", "demo/hello", "--since", "10m", "--step", "1m", "--format", "json")
    assert result.code == 0, result.output
    series = {s["name"]: s for s in json.loads(result.out)["series"]}
    assert sum(v for _, v in series["requests"]["points"]) >= 3
    assert sum(v for _, v in series["cpu_cores"]["points"]) > 0
    assert series["cpu_cores"]["unit"] == "cores"
    table = run_faasops("-C", str(served_project), "metrics", "demo/hello", "--since", "10m")
    assert table.out.startswith("demo/hello (step 60s)")
    assert "cpu_cores" in table.out and "REQUESTS" in table.out
    bad = run_faasops("-C", str(served_project), "metrics", "demo/hello", "--since", "ten minutes")
    assert bad.code == 1 and "invalid duration 'ten minutes'" in bad.err


def test_metrics_plot_writes_a_png(served_project: Path, tmp_path: Path) -> None:
    plot = tmp_path / "hello.png"
    result = run_faasops("-C", str(served_project), "metrics", "demo/hello", "--since", "10m", "--plot", str(plot))
    assert result.code == 0, result.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_logs_grep_and_since_filter(served_project: Path) -> None:
    assert run_faasops("-C", str(served_project), "invoke", "demo/failing", "--path", "/boom").code == 22  # a 500
    found = run_faasops("-C", str(served_project), "logs", "demo/failing", "--grep", "kaboom", "--since", "5m")
    assert found.code == 0, found.output
    assert "kaboom" in found.out and "still alive" not in found.out
    assert all("/boom" in line for line in found.out.splitlines() if line.startswith("20"))


def test_invoke_unknown_function_is_a_clear_error(served_project: Path) -> None:
    result = run_faasops("-C", str(served_project), "invoke", "demo/nope")
    assert result.code == 1
    assert "function demo/nope is not deployed" in result.err and "Traceback" not in result.err


def test_up_serves_functions_and_apply_swaps_versions_without_dropping_requests(hello_project: Path) -> None:
    up = start_up(hello_project)
    try:
        url = up.url + "/demo/hello/"
        assert http(url) == (200, b"Hello from Blue FaaS!")
        assert run_faasops("-C", str(hello_project), "invoke", "demo/hello").out == "Hello from Blue FaaS!"

        statuses: list[int] = []
        bodies: set[bytes] = set()
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                status, body = http(url)
                statuses.append(status)
                bodies.add(body)

        thread = threading.Thread(target=hammer)
        thread.start()
        new_text = f"Hello again {uuid.uuid4()}"
        handler = hello_project / "functions" / "hello" / "app.py"
        handler.write_text(handler.read_text().replace("Hello from Blue FaaS!", new_text))
        applied = run_faasops("-C", str(hello_project), "apply", "--auto-approve")
        assert applied.code == 0, applied.output
        deadline = time.monotonic() + 120
        while new_text.encode() not in bodies and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        thread.join()
        assert new_text.encode() in bodies
        assert set(statuses) == {200}, f"requests failed during the swap: {sorted(set(statuses))}"
        assert http(url) == (200, new_text.encode())
    finally:
        terminate(up.process, grace_s=30)
    assert up.process.returncode == 0, up.log()
    assert not up_file(hello_project).exists()
