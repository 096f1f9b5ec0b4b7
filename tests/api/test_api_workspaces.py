"""Workspace CRUD through the Platform API: commits in git, applies of exactly that workspace,
and reads that show what is declared next to what is deployed."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from api_support import ApiServer, faasops_json, git
from cli_support import run_faasops


def _subjects(project: Path) -> list[str]:
    return git(project, "log", "--format=%an|%s").splitlines()


def test_create_patch_and_delete_an_empty_workspace(api_server: ApiServer) -> None:
    project = api_server.project
    api = api_server.client()

    created = api.post("/api/workspaces", params={"wait": "true"},
                       json={"name": "shop", "namespace": "shop-ns", "labels": {"team": "web"}})
    assert created.status_code == 201, created.text
    assert _subjects(project)[0] == "admin|Create workspace shop"
    manifest = (project / "faas.yaml").read_text()
    assert manifest.startswith("# yaml-language-server:")
    assert manifest.endswith("  - name: shop\n    namespace: shop-ns\n    labels:\n      team: web\n")
    deployed = {w["name"]: w for w in faasops_json(project, "get", "workspaces")}
    assert deployed["shop"]["namespace"] == "shop-ns" and "demo" not in deployed  # exactly that target
    assert api.get("/api/workspaces/shop").json()["status"] == "synced"

    patched = api.patch("/api/workspaces/shop", params={"wait": "true"}, json={"labels": {"team": "ops"}})
    assert patched.status_code == 200, patched.text
    assert _subjects(project)[0] == "admin|Update workspace shop (labels)"
    assert "    labels:\n      team: ops\n" in (project / "faas.yaml").read_text()
    assert api.get("/api/workspaces/shop").json()["deployed"]["labels"] == {"team": "ops"}

    deleted = api.delete("/api/workspaces/shop", params={"wait": "true"})
    assert deleted.status_code == 200, deleted.text
    assert _subjects(project)[0] == "admin|Delete workspace shop and its 0 function(s)"
    assert "shop" not in (project / "faas.yaml").read_text()
    assert "shop" not in {w["name"] for w in faasops_json(project, "get", "workspaces")}
    assert api.get("/api/workspaces/shop").status_code == 404
    assert git(project, "status", "--porcelain") == ""


@pytest.mark.slow
def test_delete_a_workspace_deletes_its_functions_first(api_server: ApiServer) -> None:
    project = api_server.project
    assert run_faasops("-C", str(project), "apply", "--auto-approve").code == 0
    assert [f["name"] for f in faasops_json(project, "get", "functions")] == ["hello"]

    answer = api_server.client().delete("/api/workspaces/demo", params={"wait": "true"})

    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["deleted"] == ["demo", "demo/hello"]
    assert faasops_json(project, "get", "functions") == []
    assert faasops_json(project, "get", "workspaces") == []
    assert not (project / "functions/hello").exists()
    assert (project / "faas.yaml").read_text().endswith("\nworkspaces: []\n")
    steps = [(t["function"], t["kind"]) for t in reversed(faasops_json(project, "tasks", "demo"))
             if t["kind"] == "delete"]
    assert steps == [("hello", "delete"), (None, "delete")]  # the function, then the workspace


def test_a_protected_workspace_is_refused_with_409(api_project: Path, start_api: Callable[..., ApiServer]) -> None:
    manifest = api_project / "faas.yaml"
    manifest.write_text(manifest.read_text().replace("  - name: demo\n", "  - name: demo\n    protect: true\n"))
    git(api_project, "commit", "-qam", "protect demo")
    api = start_api(api_project).client()

    answer = api.delete("/api/workspaces/demo")

    assert answer.status_code == 409 and "protect" in answer.json()["detail"]
    assert _subjects(api_project)[0] == "Test Setup|protect demo"


@pytest.mark.parametrize(("method", "path", "body", "status", "needle"), [
    ("post", "/api/workspaces", {"name": "demo"}, 409, "exists already"),
    ("post", "/api/workspaces", {"name": "Not A Label"}, 422, "not a valid name"),
    ("post", "/api/workspaces", {"name": "x" * 64}, 422, "63"),
    ("post", "/api/workspaces", {"name": "shop", "functions": []}, 422, "unknown field(s) for a workspace: functions"),
    ("post", "/api/workspaces", {"name": "shop", "protect": "yes"}, 422, "faas.yaml:"),
    ("post", "/api/workspaces", {"name": "../etc"}, 422, "not a valid name"),
    ("patch", "/api/workspaces/demo", {"name": "other"}, 422, "renamed"),
    ("patch", "/api/workspaces/demo", {}, 422, "nothing to change"),
    ("patch", "/api/workspaces/nope", {"protect": True}, 404, "workspace 'nope' not found"),
    ("delete", "/api/workspaces/nope", None, 404, "workspace 'nope' not found"),
    ("get", "/api/workspaces/nope", None, 404, "workspace 'nope' not found"),
    ("get", "/api/workspaces/..%2F..%2Fetc", None, 404, "Not Found"),
    ("get", "/api/workspaces/a%00b", None, 404, "workspace 'a\x00b' not found"),
])
def test_bad_workspace_requests_are_4xx_and_commit_nothing(shared_api_server: ApiServer, method: str, path: str,
                                                         body: dict[str, object] | None, status: int,
                                                         needle: str) -> None:
    project = shared_api_server.project
    before = git(project, "rev-parse", "HEAD")

    answer = shared_api_server.client().request(method.upper(), path, json=body)

    assert answer.status_code == status, answer.text
    assert needle in answer.json()["detail"]
    assert git(project, "rev-parse", "HEAD") == before
    assert git(project, "status", "--porcelain") == ""


def test_reads_show_what_is_pending_next_to_what_is_deployed(api_server: ApiServer) -> None:
    project = api_server.project
    api = api_server.client()
    assert api.post("/api/workspaces", params={"wait": "true"}, json={"name": "shop"}).status_code == 201
    # Someone edits faas.yaml by hand (not applied): the API shows the difference.
    manifest = project / "faas.yaml"
    manifest.write_text(manifest.read_text().replace("  - name: shop\n", "  - name: shop\n    labels:\n      tier: gold\n"))

    listed = {w["name"]: w for w in api.get("/api/workspaces").json()["workspaces"]}

    assert listed["demo"]["status"] == "pending-create" and listed["demo"]["deployed"] is None
    assert listed["shop"]["status"] == "pending-update"
    assert listed["shop"]["declared"]["labels"] == {"tier": "gold"}
    assert listed["shop"]["deployed"]["labels"] == {}


def test_push_sends_every_commit_to_the_remote(api_project: Path, tmp_path: Path,
                                               start_api: Callable[..., ApiServer]) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(api_project, "remote", "add", "origin", str(remote))
    api = start_api(api_project, "--push", "origin", "main").client()

    assert api.post("/api/workspaces", params={"wait": "true"}, json={"name": "shop"}).status_code == 201
    assert api.post("/api/workspaces", params={"wait": "true"}, json={"name": "blog"}).status_code == 201

    assert git(remote, "log", "--format=%an|%s", "main").splitlines() == [
        "admin|Create workspace blog", "admin|Create workspace shop", "Test Setup|initial project"]


def test_a_failed_apply_leaves_the_commit_and_a_failed_task(api_server: ApiServer) -> None:
    project = api_server.project
    blocker = project / ".faasops" / "deploy" / "shop"  # where the local deployer makes the namespace
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a directory")
    api = api_server.client()

    answer = api.post("/api/workspaces", params={"wait": "true"}, json={"name": "shop"})

    assert answer.status_code == 502, answer.text
    body = answer.json()
    assert body["status"] == "failed" and body["commit"] == git(project, "rev-parse", "HEAD").strip()
    assert f"commit {body['commit']} is in git, but its apply failed" in body["detail"]
    assert _subjects(project)[0] == "admin|Create workspace shop"
    task = next(t for t in faasops_json(project, "tasks", "shop") if t["id"] == body["task_id"])
    assert task["status"] == "failed" and ".faasops/deploy/shop" in task["message"]
    assert "shop" not in {w["name"] for w in faasops_json(project, "get", "workspaces")}
    assert api.get("/api/workspaces/shop").json()["status"] == "pending-create"

    blocker.unlink()  # the next write of the workspace applies it
    assert api.patch("/api/workspaces/shop", params={"wait": "true"}, json={"labels": {"a": "b"}}).status_code == 200
    assert api.get("/api/workspaces/shop").json()["status"] == "synced"


def test_a_write_that_changes_nothing_makes_no_commit(api_server: ApiServer) -> None:
    project = api_server.project
    api = api_server.client()
    assert api.patch("/api/workspaces/demo", params={"wait": "true"}, json={"labels": {"a": "b"}}).status_code == 200
    head = git(project, "rev-parse", "HEAD")

    again = api.patch("/api/workspaces/demo", json={"labels": {"a": "b"}})

    assert again.status_code == 200 and again.json()["status"] == "unchanged", again.text
    assert git(project, "rev-parse", "HEAD") == head
    assert git(project, "status", "--porcelain") == ""
