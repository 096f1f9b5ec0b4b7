"""The Builder API inside the Platform API (`faasops api serve`), over real HTTP with httpx:
served in-process with the project's providers, or passed on to a remote `faasops builder
serve`; the task endpoints answering both builder tasks and the API's write tasks, within the
token's scope."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api_support import ApiServer
from cli_support import EXAMPLES
from faasops.api.access import create_token
from faasops.source import snapshot_directory
from observe_support import closed_port_url, set_providers, shared_server

sys.path.append(str(Path(__file__).resolve().parent.parent / "builder"))
from builder_support import TOKEN, TOKEN_ENV, BuilderServer, local_service_config  # noqa: E402

HELLO_SOURCE = EXAMPLES / "hello" / "functions" / "hello"
IMAGE = "registry.example/faasops/hello/demo/hello@sha256:" + "a" * 64
SCAFFOLD = {"project": "hello", "workspace": {"name": "demo"}, "function": {"workspace": "demo", "name": "hello"},
            "image": IMAGE}


def upload(api: httpx.Client, path: str, spec: dict[str, Any]) -> httpx.Response:
    archive = snapshot_directory(HELLO_SOURCE).archive
    return api.post(path, files={"source": ("source.tar.gz", archive, "application/gzip")},
                    data={"spec": json.dumps(spec)})


def finished(api: httpx.Client, task_id: str, timeout_s: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        answer = api.get(f"/api/v1/tasks/{task_id}")
        assert answer.status_code == 200, answer.text
        task = answer.json()
        assert task["status"] in ("pending", "running", "completed", "failed")
        if task["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return task
        time.sleep(0.2)


# ---------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, Path]]:
    """One API on examples/hello (in-process builder) and its tokens file."""
    yield from shared_server(tmp_path_factory.mktemp("builder-api"))


@pytest.fixture()
def api(shared: tuple[ApiServer, Path]) -> httpx.Client:
    return shared[0].client()


@pytest.fixture(scope="module")
def remote_builder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuilderServer]:
    with BuilderServer(tmp_path_factory.mktemp("remote-builder"), local_service_config()) as server:
        yield server


@pytest.fixture()
def proxied(api_project: Path, start_api: Callable[..., ApiServer], remote_builder: BuilderServer) -> httpx.Client:
    """An API whose project builds on the remote builder."""
    set_providers(api_project, {"builder": {"type": "remote", "url": remote_builder.url, "token_env": TOKEN_ENV}})
    return start_api(api_project, env={TOKEN_ENV: TOKEN}).client()


# ---------------------------------------------------------------------------------- in process


def test_scaffold_renders_with_the_projects_scaffolder(api: httpx.Client) -> None:
    answer = api.post("/api/v1/scaffold", json=SCAFFOLD)
    assert answer.status_code == 200, answer.text
    spinapp = next(m for m in answer.json()["manifests"] if m["kind"] == "SpinApp")
    assert spinapp["metadata"]["labels"]["function_id"] == "demo.hello"
    assert spinapp["spec"]["image"] == IMAGE


@pytest.mark.slow
def test_build_runs_in_process_as_a_task_polled_at_the_tasks_endpoint(api: httpx.Client) -> None:
    accepted = upload(api, "/api/v1/build", {"project": "hello", "function": {"workspace": "demo", "name": "hello"}})
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert body["status"] == "pending" and accepted.headers["Location"] == f"/api/v1/tasks/{body['task_id']}"

    task = finished(api, body["task_id"])

    assert task["status"] == "completed", task
    assert task["kind"] == "build" and task["result"]["build_key"].startswith("sha256:")
    listed = api.get("/api/v1/workspaces/demo/tasks").json()["tasks"]
    assert body["task_id"] in [t["task_id"] for t in listed]


def test_the_tasks_endpoints_serve_the_apis_write_tasks(api: httpx.Client) -> None:
    created = api.post("/api/workspaces", json={"name": "extra"})
    assert created.status_code == 202, created.text
    task_id = created.json()["task_id"]

    task = finished(api, task_id)

    assert task["status"] == "completed", task
    assert task["workspace_id"] == "extra"
    listed = api.get("/api/v1/workspaces/extra/tasks")
    assert listed.status_code == 200
    # With the apply's own step tasks, newest first.
    assert task_id in [t["task_id"] for t in listed.json()["tasks"]]


def test_tasks_and_builds_outside_the_tokens_scope_answer_404(shared: tuple[ApiServer, Path], api: httpx.Client) -> None:
    server, tokens = shared
    created = api.post("/api/workspaces", json={"name": "private"})
    assert created.status_code == 202, created.text
    task_id = created.json()["task_id"]
    finished(api, task_id)
    outsider = server.client(create_token(tokens, "outsider", ["write:shop"]))
    reader = server.client(create_token(tokens, "private-reader", ["read:private"]))

    hidden = outsider.get(f"/api/v1/tasks/{task_id}")
    assert hidden.status_code == 404 and hidden.json()["detail"] == f"no task {task_id}"
    assert outsider.get("/api/v1/workspaces/private/tasks").status_code == 404
    assert reader.get(f"/api/v1/tasks/{task_id}").status_code == 200
    assert reader.get("/api/v1/workspaces/private/tasks").status_code == 200
    # Reading a workspace does not allow building or deploying in it; rendering is a read.
    spec = {"project": "hello", "function": {"workspace": "private", "name": "hello"}}
    assert upload(reader, "/api/v1/build", spec).status_code == 404
    assert reader.post("/api/v1/deploy", json={**SCAFFOLD, "workspace": {"name": "private"},
                                                "function": {"workspace": "private", "name": "hello"}}).status_code == 404
    assert reader.post("/api/v1/scaffold", json={**SCAFFOLD, "workspace": {"name": "private"},
                                                  "function": {"workspace": "private", "name": "hello"}}).status_code == 200
    assert outsider.get("/api/v1/tasks/" + task_id, headers={"Authorization": ""}).status_code == 401


def test_bad_task_ids_and_requests_answer_4xx(api: httpx.Client) -> None:
    assert api.get("/api/v1/tasks/not-a-task").status_code == 422
    unknown = api.get("/api/v1/tasks/" + "0" * 32)
    assert unknown.status_code == 404 and "no task" in unknown.json()["detail"]
    assert api.get("/api/v1/workspaces/Bad_Name/tasks").status_code == 422
    assert api.get("/api/v1/workspaces/demo/tasks", params={"limit": 0}).status_code == 422
    bad_spec = upload(api, "/api/v1/build", {"project": "hello", "function": {"workspace": "demo"}})
    assert bad_spec.status_code == 422 and "spec" in bad_spec.json()["detail"]
    assert api.post("/api/v1/scaffold", json={**SCAFFOLD, "function": {"workspace": "demo", "name": "Bad_Name"}}).status_code == 422
    push = api.post("/api/v1/push", json={"project": "hello", "function": {"workspace": "demo", "name": "hello"},
                                          "build_key": "sha256:" + "0" * 64})
    assert push.status_code == 404 and "build it first" in push.json()["detail"]


# ---------------------------------------------------------------------------------- remote


def test_a_remote_builder_answers_through_the_api(proxied: httpx.Client, remote_builder: BuilderServer) -> None:
    through_api = proxied.post("/api/v1/scaffold", json=SCAFFOLD)
    direct = remote_builder.request("POST", "/api/v1/scaffold", json_body=SCAFFOLD)
    assert through_api.status_code == 200, through_api.text
    assert through_api.json() == json.loads(direct.data)
    # The remote's own refusals come back as they are.
    unknown = proxied.post("/api/v1/push", json={"project": "hello", "function": {"workspace": "demo", "name": "hello"},
                                                 "build_key": "sha256:" + "0" * 64})
    assert unknown.status_code == 404 and "build it first" in unknown.json()["detail"]
    assert proxied.get("/api/v1/tasks/" + "1" * 32).status_code == 404


@pytest.mark.slow
def test_a_remote_build_is_a_task_of_the_remote_listed_with_the_apis_own(proxied: httpx.Client) -> None:
    written = proxied.post("/api/workspaces", json={"name": "remote-ws"})
    assert written.status_code == 202, written.text
    assert finished(proxied, written.json()["task_id"])["status"] == "completed"
    accepted = upload(proxied, "/api/v1/build", {"project": "hello",
                                                 "function": {"workspace": "remote-ws", "name": "hello"}})
    assert accepted.status_code == 202, accepted.text

    task = finished(proxied, accepted.json()["task_id"])

    assert task["status"] == "completed", task
    listed = proxied.get("/api/v1/workspaces/remote-ws/tasks").json()["tasks"]
    assert {written.json()["task_id"], accepted.json()["task_id"]} <= {t["task_id"] for t in listed}


def test_an_unreachable_remote_builder_answers_502(api_project: Path, start_api: Callable[..., ApiServer]) -> None:
    url = closed_port_url()
    set_providers(api_project, {"builder": {"type": "remote", "url": url, "token_env": TOKEN_ENV}})
    api = start_api(api_project, env={TOKEN_ENV: TOKEN}).client()
    answer = api.post("/api/v1/scaffold", json=SCAFFOLD)
    assert answer.status_code == 502
    assert f"cannot reach the builder at {url}" in answer.json()["detail"]


def test_a_remote_builder_refusing_the_apis_token_answers_502_without_the_token(
        api_project: Path, start_api: Callable[..., ApiServer], remote_builder: BuilderServer) -> None:
    wrong = "wrong-builder-token-3b1e0c7d9a"
    set_providers(api_project, {"builder": {"type": "remote", "url": remote_builder.url, "token_env": TOKEN_ENV}})
    api = start_api(api_project, env={TOKEN_ENV: wrong}).client()
    answer = api.post("/api/v1/scaffold", json=SCAFFOLD)
    assert answer.status_code == 502
    assert TOKEN_ENV in answer.json()["detail"] and wrong not in answer.text
