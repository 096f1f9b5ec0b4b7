"""The Platform API's logs endpoints on the aws logs slot: the DynamoDB logs table (moto), as
`faasops logs` reads it, over real HTTP (`faasops api serve`, httpx)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from api_support import ApiServer
from faasops.plugins.aws_logs import DEFAULT_TABLE, put_log, table_definition
from testkit.availability import unavailable
from testkit.moto import MotoServer, MotoServerNotFound, use_fake_aws
from observe_support import closed_port_url, set_providers


@pytest.fixture(scope="module")
def moto_server() -> Iterator[MotoServer]:
    try:
        server = MotoServer().start()
    except MotoServerNotFound as exc:
        unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture()
def moto(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """The module's moto server, empty, with fake credentials in the environment (which the API
    server inherits)."""
    use_fake_aws(monkeypatch)
    moto_server.reset()
    return moto_server


def test_logs_read_the_dynamodb_logs_table(api_project: Path, start_api: Callable[..., ApiServer],
                                           moto: MotoServer) -> None:
    dynamodb = moto.client("dynamodb")
    dynamodb.create_table(**table_definition(DEFAULT_TABLE))
    now = time.time()
    for i, function in enumerate(["hello", "other", "hello", "hello"]):
        put_log(dynamodb, DEFAULT_TABLE, "demo", function, f"request {i}", at=now - 10 + i, status=200)
    set_providers(api_project, {"logs": {"type": "dynamodb", "endpoint_url": moto.url}})
    api = start_api(api_project).client()

    function = api.get("/api/workspaces/demo/functions/hello/logs", params={"limit": 2})
    workspace = api.get("/api/workspaces/demo/logs")

    assert function.status_code == 200, function.text
    assert function.json()["source"] == "dynamodb"
    assert [e["message"] for e in function.json()["entries"]] == ["request 3", "request 2"]
    assert [(e["function"], e["message"]) for e in workspace.json()["entries"]] == [
        ("hello", "request 3"), ("hello", "request 2"), ("other", "request 1"), ("hello", "request 0")]


def test_an_unreachable_dynamodb_answers_502(api_project: Path, start_api: Callable[..., ApiServer],
                                             moto: MotoServer) -> None:
    url = closed_port_url()
    set_providers(api_project, {"logs": {"type": "dynamodb", "endpoint_url": url, "max_attempts": 1}})
    api = start_api(api_project).client()
    answer = api.get("/api/workspaces/demo/logs")
    assert answer.status_code == 502, answer.text
    assert answer.json()["detail"].startswith("reading logs from dynamodb failed: ")
    assert "Traceback" not in answer.text
