"""The Platform API's observe endpoints over real HTTP (`faasops api serve`, driven with httpx
as a client of the old platform would): invoke, logs (the local invocation log), Loki logs (the
Loki double) and metrics (the local log, and a real Prometheus fed by remote write)."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from api_support import ApiServer
from cli_support import run_faasops
from faasops.api.access import create_token
from testkit.availability import unavailable
from testkit.loki import NS, LokiDouble
from testkit.metrics_exporter import MIB, FunctionLoad
from testkit.prometheus import PrometheusServer, PrometheusUnavailable
from observe_support import closed_port_url, seed_invocations, set_providers, shared_server

HELLO_LABELS = {"function_id": "demo.hello", "workspace_id": "demo", "pod": "hello-5d8f7c9b6-x2x4z"}
SHOP_LABELS = {"function_id": "shop.hello", "workspace_id": "shop", "pod": "hello-6f5e4d3c2-q9w8e"}


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def loki_double() -> Iterator[LokiDouble]:
    with LokiDouble() as double:
        yield double


@pytest.fixture()
def loki(loki_double: LokiDouble) -> LokiDouble:
    loki_double.reset()
    return loki_double


@pytest.fixture(scope="module")
def prometheus() -> Iterator[PrometheusServer]:
    """Debian's Prometheus holding 30 minutes of demo/hello's pods (2 pods, 0.25 cores each)."""
    try:
        server = PrometheusServer()
    except PrometheusUnavailable as exc:
        unavailable(str(exc))
    now = time.time()
    try:
        load = FunctionLoad("demo", "hello", pods=2, cpu_cores=0.25, memory_bytes=48 * MIB, started=now - 1200)
        server.remote_write(load.history(now - 1200, now + 600, 5.0))
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, Path]]:
    """One API on examples/hello for the tests that change nothing, and its tokens file."""
    yield from shared_server(tmp_path_factory.mktemp("observe-api"))


@pytest.fixture()
def api(shared: tuple[ApiServer, Path]) -> httpx.Client:
    return shared[0].client()


@pytest.fixture()
def tokens_file(shared: tuple[ApiServer, Path]) -> Path:
    return shared[1]


@pytest.fixture()
def own_api(api_project: Path, start_api: Callable[..., ApiServer]) -> httpx.Client:
    """An API of the test's own (for tests that seed logs or apply)."""
    return start_api(api_project).client()


def serve_with(project: Path, start_api: Callable[..., ApiServer], providers: dict) -> httpx.Client:
    set_providers(project, providers)
    return start_api(project).client()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------------------------- logs


def test_function_logs_come_from_the_local_log_newest_first_and_limited(api_project: Path, own_api: httpx.Client) -> None:
    seed_invocations(api_project, 5)

    answer = own_api.get("/api/workspaces/demo/functions/hello/logs", params={"limit": 3})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["workspace_id"], body["function"], body["source"]) == ("demo", "hello", "local")
    entries = body["entries"]
    assert len(entries) == 3
    assert [e["function_id"] for e in entries] == ["demo.hello"] * 3
    assert "call 4" in entries[0]["message"] and "call 2" in entries[2]["message"]
    assert entries[0]["time"] > entries[1]["time"] > entries[2]["time"]
    assert entries[0]["timestamp"].endswith("Z") and entries[0]["status"] == 200


def test_workspace_logs_answer_every_function_of_the_workspace(api_project: Path, own_api: httpx.Client) -> None:
    seed_invocations(api_project, 2)
    answer = own_api.get("/api/workspaces/demo/logs")
    assert answer.status_code == 200, answer.text
    assert answer.json()["function"] is None
    assert len(answer.json()["entries"]) == 2


def test_logs_of_a_declared_function_without_invocations_are_empty(api: httpx.Client) -> None:
    answer = api.get("/api/workspaces/demo/functions/hello/logs")
    assert answer.status_code == 200, answer.text
    assert answer.json()["entries"] == []


@pytest.mark.parametrize("limit", ["0", "-1", "10001", "many", "1.5"])
def test_a_bad_limit_is_a_4xx_with_a_message(api: httpx.Client, limit: str) -> None:
    answer = api.get("/api/workspaces/demo/functions/hello/logs", params={"limit": limit})
    assert 400 <= answer.status_code < 500
    assert "limit" in str(answer.json()["detail"])
    assert "Traceback" not in answer.text


def test_a_bad_since_is_a_422_naming_it(api: httpx.Client) -> None:
    answer = api.get("/api/workspaces/demo/logs", params={"since": "yesterday"})
    assert answer.status_code == 422
    assert "since" in answer.json()["detail"] and "yesterday" in answer.json()["detail"]


@pytest.mark.parametrize("path", ["/api/workspaces/nowhere/logs", "/api/workspaces/demo/functions/nobody/logs"])
def test_logs_of_what_is_neither_declared_nor_deployed_answer_404(api: httpx.Client, path: str) -> None:
    answer = api.get(path)
    assert answer.status_code == 404
    assert "not found" in answer.json()["detail"]


def test_a_bad_name_answers_a_4xx_never_a_500(api: httpx.Client) -> None:
    for path in ["/api/workspaces/Demo_X/logs", "/api/workspaces/demo/functions/Hello!/logs",
                 "/api/workspaces/demo/functions/" + "a" * 64 + "/logs"]:
        answer = api.get(path)
        assert 400 <= answer.status_code < 500, (path, answer.text)


def test_logs_need_a_token_and_read_scope_on_the_workspace(tokens_file: Path, api: httpx.Client) -> None:
    other = create_token(tokens_file, "other-team", ["write:shop"])
    reader = create_token(tokens_file, "reader", ["read:demo"])

    assert api.get("/api/workspaces/demo/logs", headers={"Authorization": ""}).status_code == 401
    assert api.get("/api/workspaces/demo/logs", headers=_bearer("not-a-token-at-all")).status_code == 401
    outside = api.get("/api/workspaces/demo/functions/hello/logs", headers=_bearer(other))
    assert outside.status_code == 404 and outside.json()["detail"] == "workspace 'demo' not found"
    assert api.get("/api/workspaces/demo/functions/hello/logs", headers=_bearer(reader)).status_code == 200
    # Read does not include invoke.
    call = api.post("/api/workspaces/demo/functions/hello/invoke", json={}, headers=_bearer(reader))
    assert call.status_code == 404


# ---------------------------------------------------------------------------------- Loki


def test_loki_logs_select_on_the_function_id_label(api_project: Path, start_api: Callable[..., ApiServer],
                                                    loki: LokiDouble) -> None:
    api = serve_with(api_project, start_api, {"logs": {"type": "local", "loki": {"url": loki.url}}})
    now = time.time_ns()
    loki.push(HELLO_LABELS, [(now - 30 * NS, "GET / 200 first"), (now - 10 * NS, "GET / 200 second")])
    loki.push(SHOP_LABELS, [(now - 5 * NS, "another workspace's hello")])

    answer = api.get("/api/functions/demo.hello/loki-logs", params={"limit": 10})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source"] == "loki"
    assert [e["message"] for e in body["entries"]] == ["GET / 200 second", "GET / 200 first"]
    assert body["entries"][0]["labels"]["pod"] == HELLO_LABELS["pod"]
    sent = [r.params["query"] for r in loki.requests if r.path == "/loki/api/v1/query_range"]
    assert sent == [['{function_id="demo.hello"}']]


def test_unreachable_loki_answers_502_with_a_clear_message(api_project: Path,
                                                           start_api: Callable[..., ApiServer]) -> None:
    url = closed_port_url()
    api = serve_with(api_project, start_api, {"logs": {"type": "local", "loki": {"url": url, "timeout_seconds": 2}}})
    answer = api.get("/api/functions/demo.hello/loki-logs")
    assert answer.status_code == 502
    assert f"cannot reach Loki at {url}" in answer.json()["detail"]
    assert "Traceback" not in answer.text


def test_loki_without_configuration_answers_503(api: httpx.Client) -> None:
    answer = api.get("/api/functions/demo.hello/loki-logs")
    assert answer.status_code == 503
    assert "loki" in answer.json()["detail"] and "url" in answer.json()["detail"]


def test_loki_credentials_never_appear_in_answers(api_project: Path, start_api: Callable[..., ApiServer],
                                                  loki: LokiDouble) -> None:
    secret = "s3cr3t-loki-token-value"
    set_providers(api_project, {"logs": {"type": "local", "loki": {"url": loki.url, "token_env": "LOKI_TOKEN_FOR_TEST"}}})
    api = start_api(api_project, env={"LOKI_TOKEN_FOR_TEST": secret}).client()
    loki.fail_next(500, "upstream refused")
    failed = api.get("/api/functions/demo.hello/loki-logs")
    worked = api.get("/api/functions/demo.hello/loki-logs")
    assert failed.status_code == 502 and worked.status_code == 200, (failed.text, worked.text)
    assert secret not in failed.text and secret not in worked.text
    assert loki.requests[-1].headers.get("Authorization") == f"Bearer {secret}"


@pytest.mark.parametrize("function_id", ["demo", "demo.", ".hello", "Demo.Hello", "demo.hel lo"])
def test_a_function_id_that_is_not_ws_dot_fn_answers_4xx(api: httpx.Client, function_id: str) -> None:
    for endpoint in ("loki-logs", "metrics"):
        answer = api.get(f"/api/functions/{function_id}/{endpoint}")
        assert 400 <= answer.status_code < 500, (function_id, endpoint, answer.text)
        assert answer.json()["detail"]


def test_global_function_ids_outside_the_scope_answer_404_before_anything_else(tokens_file: Path,
                                                                              api: httpx.Client) -> None:
    token = create_token(tokens_file, "shop-reader", ["read:shop"])
    for endpoint in ("loki-logs", "metrics"):
        answer = api.get(f"/api/functions/demo.hello/{endpoint}", headers=_bearer(token))
        assert answer.status_code == 404 and answer.json()["detail"] == "workspace 'demo' not found"


# ---------------------------------------------------------------------------------- metrics


def test_metrics_read_prometheus_cpu_of_the_functions_pods(api_project: Path, start_api: Callable[..., ApiServer],
                                                           prometheus: PrometheusServer) -> None:
    api = serve_with(api_project, start_api, {"metrics": {"type": "prometheus", "url": prometheus.url}})
    answer = api.get("/api/functions/demo.hello/metrics", params={"since": "5m", "step": "30s"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["function_id"], body["step_seconds"], body["source"]) == ("demo.hello", 30, "prometheus")
    series = {s["name"]: s for s in body["series"]}
    assert series["cpu_cores"]["unit"] == "cores"
    assert len(series["cpu_cores"]["points"]) == 11
    assert all(v == pytest.approx(0.5, rel=1e-6) for _, v in series["cpu_cores"]["points"])
    assert all(v == 2 for _, v in series["replicas"]["points"])


def test_unreachable_prometheus_answers_502(api_project: Path, start_api: Callable[..., ApiServer]) -> None:
    url = closed_port_url()
    api = serve_with(api_project, start_api, {"metrics": {"type": "prometheus", "url": url, "timeout_seconds": 2}})
    answer = api.get("/api/functions/demo.hello/metrics")
    assert answer.status_code == 502
    assert f"cannot reach Prometheus at {url}" in answer.json()["detail"]


def test_local_metrics_count_the_invocations(api_project: Path, own_api: httpx.Client) -> None:
    seed_invocations(api_project, 4)
    answer = own_api.get("/api/functions/demo.hello/metrics", params={"since": "10m", "step": "10m"})
    assert answer.status_code == 200, answer.text
    requests = next(s for s in answer.json()["series"] if s["name"] == "requests")
    assert sum(v for _, v in requests["points"]) == 4


@pytest.mark.parametrize("params", [{"since": "forever"}, {"step": "0s"}, {"since": "30d", "step": "1s"}])
def test_bad_metric_windows_answer_422(api: httpx.Client, params: dict[str, str]) -> None:
    answer = api.get("/api/functions/demo.hello/metrics", params=params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]


# ---------------------------------------------------------------------------------- invoke


def test_invoke_bad_requests_answer_4xx_before_calling_anything(api: httpx.Client) -> None:
    cases = [
        ({"body": "x", "body_base64": "eA=="}, 422),
        ({"body_base64": "not base64!"}, 400),
        ({"method": "GE T"}, 422),
        ({"headers": {"bad name": "x"}}, 422),
        ({"headers": {"x-ok": "line\r\nbreak"}}, 422),
        ({"unknown": 1}, 422),
    ]
    for body, status in cases:
        answer = api.post("/api/workspaces/demo/functions/hello/invoke", json=body)
        assert answer.status_code == status, (body, answer.text)
        assert answer.json()["detail"]
    missing = api.post("/api/workspaces/demo/functions/nobody/invoke", json={})
    assert missing.status_code == 404


def test_invoke_before_apply_answers_409_saying_it_is_not_deployed(api: httpx.Client) -> None:
    answer = api.post("/api/workspaces/demo/functions/hello/invoke", json={})
    assert answer.status_code == 409
    assert "not deployed" in answer.json()["detail"]


@pytest.mark.slow
def test_invoke_answers_what_the_function_answered_and_lands_in_the_logs(api_project: Path,
                                                                         start_api: Callable[..., ApiServer]) -> None:
    applied = run_faasops("-C", str(api_project), "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    tokens = api_project.parent / "api-tokens"
    caller = create_token(tokens, "caller", ["invoke:demo"])
    api = start_api(api_project, "--tokens", str(tokens)).client(caller)
    answer = api.post("/api/workspaces/demo/functions/hello/invoke",
                      json={"method": "POST", "path": "/items?id=7", "headers": {"x-trace": "héllo"},
                            "body_base64": base64.b64encode(b"\x00\x01binary").decode()})
    logs = api.get("/api/workspaces/demo/functions/hello/logs")

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["status"] == 200 and body["error"] is None
    assert body["body"] == "Hello from Blue FaaS!"
    assert base64.b64decode(body["body_base64"]) == b"Hello from Blue FaaS!"
    assert ["content-type", "text/plain"] in [[k.lower(), v] for k, v in body["headers"]]
    assert logs.status_code == 200, logs.text
    [entry] = logs.json()["entries"]
    assert entry["status"] == 200 and entry["function_id"] == "demo.hello"
