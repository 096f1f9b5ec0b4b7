"""Authentication and scopes of the Platform API: hashed tokens in a file, 401 without a valid
one, 404 (never 403) outside a token's scope, and tokens that never show up anywhere."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from api_support import ADMIN_TOKEN, ApiServer, faasops_json, git
from cli_support import run_faasops

Server = tuple[ApiServer, dict[str, str]]


def test_requests_without_a_valid_token_get_401(token_server: Server) -> None:
    server, _ = token_server
    client = server.client(token=None)
    # (the environment's admin token is not configured for this server)
    headers = [{}, {"Authorization": "Bearer not-a-token-at-all"}, {"Authorization": "Basic YWRtaW46YWRtaW4="},
               {"Authorization": "Bearer"}, {"Authorization": f"Bearer {ADMIN_TOKEN}"}]
    requests = [(header, method, path) for header in headers for method, path in [
        ("GET", "/api/workspaces"), ("POST", "/api/workspaces"), ("GET", "/api/workspaces/demo"),
        ("DELETE", "/api/workspaces/demo/functions/hello"), ("GET", "/api/status")]]

    for header, method, path in requests:
        answer = client.request(method, path, headers=header, json={"name": "shop"} if method == "POST" else None)
        assert answer.status_code == 401, (method, path, answer.text)
        assert answer.headers["www-authenticate"] == "Bearer"
        assert "token" in answer.json()["detail"]


def test_docs_and_health_need_no_token(shared_api_server: ApiServer) -> None:
    client = shared_api_server.client(token=None)
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths["/api/workspaces"]) == {"get", "post"}
    assert set(paths["/api/workspaces/{workspace_id}"]) == {"get", "patch", "delete"}
    assert set(paths["/api/workspaces/{workspace_id}/functions"]) == {"get", "post"}
    assert set(paths["/api/workspaces/{workspace_id}/functions/{function_id}"]) == {"get", "patch", "delete"}


def test_outside_its_scope_a_token_gets_404_exactly_as_for_a_missing_workspace(token_server: Server) -> None:
    server, tokens = token_server
    root = server.client(tokens["root"])
    assert root.post("/api/workspaces", params={"wait": "true"}, json={"name": "shop"}).status_code == 201
    reader, shop = server.client(tokens["demo-reader"]), server.client(tokens["shop-writer"])

    assert [w["name"] for w in reader.get("/api/workspaces").json()["workspaces"]] == ["demo"]
    assert [w["name"] for w in shop.get("/api/workspaces").json()["workspaces"]] == ["shop"]
    hidden, missing = reader.get("/api/workspaces/shop"), reader.get("/api/workspaces/nope")
    assert (hidden.status_code, hidden.json()) == (404, {"detail": "workspace 'shop' not found"})
    assert (missing.status_code, missing.json()) == (404, {"detail": "workspace 'nope' not found"})
    assert reader.get("/api/workspaces/demo/functions/hello").status_code == 200
    # Read is not write; and writes elsewhere look like missing workspaces too.
    for answer in [reader.patch("/api/workspaces/demo", json={"labels": {"a": "b"}}),
                   reader.delete("/api/workspaces/demo/functions/hello"),
                   shop.post("/api/workspaces", json={"name": "blog"}),
                   shop.post("/api/workspaces/demo/functions", json={"name": "x", "source": "functions/hello"}),
                   shop.get("/api/status")]:
        assert answer.status_code == 404, answer.text
    assert git(server.project, "log", "--format=%an|%s").splitlines() == [
        "root|Create workspace shop", "Test Setup|initial project"]


def test_a_scoped_writer_commits_under_its_own_name(token_server: Server) -> None:
    server, tokens = token_server
    writer = server.client(tokens["demo-writer"])

    answer = writer.patch("/api/workspaces/demo", params={"wait": "true"}, json={"labels": {"owner": "team-a"}})

    assert answer.status_code == 200, answer.text
    assert git(server.project, "log", "-1", "--format=%an <%ae>|%s") == \
        "demo-writer <demo-writer@faasops-api>|Update workspace demo (labels)\n"
    assert writer.get("/api/workspaces/demo").json()["deployed"]["labels"] == {"owner": "team-a"}


def test_tokens_are_stored_hashed_and_appear_in_no_log_commit_task_or_answer(
        token_server: Server, tokens: tuple[Path, dict[str, str]]) -> None:
    server, printed = token_server
    path, _ = tokens
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert [e["name"] for e in entries] == list(printed)
    assert all(len(e["sha256"]) == 64 for e in entries)
    root = server.client(printed["root"])
    answers = [root.post("/api/workspaces", params={"wait": "true"}, json={"name": "shop"}).text,
               root.post("/api/workspaces", json={"name": printed["root"]}).text,  # echoed in an error?
               root.get("/api/workspaces").text,
               server.client(printed["demo-reader"]).delete("/api/workspaces/demo").text]
    history = git(server.project, "log", "-p", "--all")
    tasks = json.dumps(faasops_json(server.project, "tasks"))
    for token in printed.values():
        assert token not in path.read_text()
        assert token not in server.log()
        assert token not in history
        assert token not in tasks
        assert all(token not in answer for answer in answers)
    assert "[token]" in answers[1]  # the refused name is not repeated


def test_a_token_added_while_the_api_runs_works_at_once(token_server: Server,
                                                        tokens: tuple[Path, dict[str, str]]) -> None:
    server, _ = token_server
    path, _ = tokens
    result = run_faasops("api", "token", "create", "late", "--scope", "read:*", "--tokens", str(path))
    assert result.code == 0, result.output

    assert server.client(result.out.strip()).get("/api/workspaces/demo").status_code == 200


@pytest.mark.parametrize(("args", "message"), [
    (["x", "--scope", "delete:shop"], "invalid scope 'delete:shop'"),
    (["x", "--scope", "write"], "invalid scope 'write'"),
    (["root", "--scope", "admin"], "a token named 'root' exists already"),
    (["has space", "--scope", "admin"], "invalid token name"),
])
def test_token_create_refuses_bad_scopes_and_names(tokens: tuple[Path, dict[str, str]], args: list[str],
                                                   message: str) -> None:
    path, _ = tokens
    before = path.read_text()
    result = run_faasops("api", "token", "create", *args, "--tokens", str(path))
    assert result.code == 1 and message in result.err, result.output
    assert "Traceback" not in result.err
    assert path.read_text() == before


def test_token_create_prints_the_token_once_on_stdout(tmp_path: Path) -> None:
    result = run_faasops("-C", str(tmp_path), "api", "token", "create", "ci", "--scope", "admin")
    assert result.code == 0, result.output
    token = result.out.strip()
    assert token.startswith("fo_") and len(token) >= 40 and "\n" not in token
    assert token not in result.err
    assert (tmp_path / ".faasops" / "api-tokens").is_file()


def test_serve_refuses_to_start_without_any_token(api_project: Path) -> None:
    result = run_faasops("-C", str(api_project), "api", "serve", "--port", "0", env={"FAASOPS_API_TOKEN": ""})
    assert result.code == 1
    assert "no API token configured" in result.err and "Traceback" not in result.err
