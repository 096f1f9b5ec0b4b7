"""Function CRUD through the Platform API, as a client of the old platform drives it: every
write is a commit in the project's git repository plus an apply of exactly that function."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from cli_support import run_faasops
from api_support import HELLO_SOURCE, HELLO_V2_SOURCE, ApiServer, b64, faasops_json, git, wait_for_task


def _tar_gz(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def _invoke(project: Path, address: str) -> str:
    result = run_faasops("-C", str(project), "invoke", address)
    assert result.code == 0, result.output
    return result.out


def _commits(project: Path) -> list[str]:
    return git(project, "log", "--format=%an|%s").splitlines()


def _clean(project: Path) -> bool:
    return git(project, "status", "--porcelain") == ""


@pytest.mark.slow
def test_create_with_base64_module_commits_applies_and_serves(api_server: ApiServer) -> None:
    project = api_server.project
    api = api_server.client()

    answer = api.post("/api/workspaces/demo/functions", params={"wait": "true"},
                      json={"name": "greeter", "code": b64(HELLO_SOURCE), "env": {"GREETING": "hi"}})

    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["status"] == "completed" and body["result"]["applied"] == ["demo/greeter"]
    assert _commits(project)[0] == "admin|Create function demo/greeter"
    assert git(project, "show", "--format=%(trailers)", "-s", "HEAD").strip() == "Faasops-Target: demo/greeter"
    assert (project / "functions/demo/greeter/app.py").read_bytes() == HELLO_SOURCE
    manifest = (project / "faas.yaml").read_text()
    assert manifest.startswith("# yaml-language-server: $schema=")  # the file's comment is kept
    assert "  - name: demo\n    functions:\n      - name: hello\n        source: functions/hello\n" \
           "      - name: greeter\n        source: functions/demo/greeter\n        env:\n          GREETING: hi\n" in manifest
    assert _clean(project)
    deployed = {f["name"]: f for f in faasops_json(project, "get", "functions", "demo")}
    assert set(deployed) == {"greeter"}  # exactly that target: hello was not applied
    assert _invoke(project, "demo/greeter") == "Hello from Blue FaaS!"
    view = api.get("/api/workspaces/demo/functions/greeter").json()
    assert view["status"] == "synced" and view["deployed"]["artifact"] == deployed["greeter"]["artifact"]
    assert api.get("/api/workspaces/demo/functions/hello").json()["status"] == "pending-create"
    live = project / ".faasops/deploy/demo/greeter.yaml"  # what the local deployer made live
    live.write_text(live.read_text().replace("replicas: 1", "replicas: 3"))
    drifted = api.get("/api/workspaces/demo/functions/greeter", params={"refresh": "true"}).json()
    assert drifted["status"] == "drift"
    assert drifted["plan"]["reasons"] == ["drift: SpinApp greeter: spec.replicas is 3, want 1"]


@pytest.mark.slow
def test_write_without_wait_answers_202_with_a_task_that_completes(api_server: ApiServer) -> None:
    api = api_server.client()

    answer = api.post("/api/workspaces/demo/functions", json={"name": "later", "code": b64(HELLO_SOURCE)})

    assert answer.status_code == 202, answer.text
    task_id = answer.json()["task_id"]
    assert answer.headers["location"] == f"/api/v1/tasks/{task_id}"
    assert answer.json()["commit"] == git(api_server.project, "rev-parse", "HEAD").strip()
    task = wait_for_task(api_server.project, task_id)
    assert task["status"] == "completed", task
    assert task["kind"] == "api-write" and task["workspace"] == "demo" and task["function"] == "later"
    polled = api.get(f"/api/v1/tasks/{task_id}")  # the same record, through the API
    assert polled.status_code == 200, polled.text
    assert polled.json()["status"] == "completed"
    assert _invoke(api_server.project, "demo/later") == "Hello from Blue FaaS!"


@pytest.mark.slow
def test_patch_code_as_tar_gz_then_config_then_delete(api_server: ApiServer) -> None:
    project = api_server.project
    api = api_server.client()
    assert run_faasops("-C", str(project), "apply", "--auto-approve").code == 0

    answer = api.patch("/api/workspaces/demo/functions/hello", params={"wait": "true"},
                       json={"code": b64(_tar_gz({"app.py": HELLO_V2_SOURCE, "README.txt": b"notes"}))})
    assert answer.status_code == 200, answer.text
    assert _commits(project)[0] == "admin|Update function demo/hello (code)"
    assert sorted(p.name for p in (project / "functions/hello").iterdir()) == ["README.txt", "app.py"]
    assert _invoke(project, "demo/hello") == "Hello again from the API!"

    answer = api.patch("/api/workspaces/demo/functions/hello", params={"wait": "true"},
                       json={"env": {"MODE": "fast"}, "replicas": 2})
    assert answer.status_code == 200, answer.text
    assert _commits(project)[0] == "admin|Update function demo/hello (env, replicas)"
    assert "        env:\n          MODE: fast\n        replicas: 2\n" in (project / "faas.yaml").read_text()
    spec = next(f for f in faasops_json(project, "get", "functions") if f["name"] == "hello")
    assert spec["applied_at"]

    answer = api.delete("/api/workspaces/demo/functions/hello", params={"wait": "true"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["result"]["deleted"] == ["demo/hello"]
    assert _commits(project)[0] == "admin|Delete function demo/hello"
    assert not (project / "functions/hello").exists()
    assert git(project, "ls-files", "functions/hello") == ""
    assert "name: hello" not in (project / "faas.yaml").read_text()
    assert faasops_json(project, "get", "functions") == []
    assert api.get("/api/workspaces/demo/functions/hello").status_code == 404
    assert _clean(project)


@pytest.mark.slow
def test_zip_code_is_accepted(api_server: ApiServer) -> None:
    api = api_server.client()
    answer = api.post("/api/workspaces/demo/functions", params={"wait": "true"},
                      json={"name": "zipped", "code": b64(_zip({"app.py": HELLO_SOURCE}))})
    assert answer.status_code == 201, answer.text
    assert _invoke(api_server.project, "demo/zipped") == "Hello from Blue FaaS!"


BAD_SYNTAX = b"from spin_sdk import http\n\nclass IncomingHandler(http.IncomingHandler)\n    pass\n"
NO_HANDLER = b"def handle(request):\n    return None\n"
UNKNOWN_IMPORT = HELLO_SOURCE.replace(b"from spin_sdk import http", b"import requests\nfrom spin_sdk import http", 1)


@pytest.mark.parametrize(("body", "status", "needle"), [
    ({"name": "x", "code": "%%% not base64 %%%"}, 400, "not valid Base64"),
    ({"name": "x", "code": b64(BAD_SYNTAX)}, 422, "app.py:3:"),
    ({"name": "x", "code": b64(NO_HANDLER)}, 422, "IncomingHandler"),
    ({"name": "x", "code": b64(_tar_gz({"../evil.py": b"x", "app.py": HELLO_SOURCE}))}, 422, "evil.py"),
    ({"name": "x", "code": b64(_tar_gz({"other.py": HELLO_SOURCE}))}, 422, "no app.py"),
    ({"name": "x", "code": b64(_zip({"app.py": BAD_SYNTAX}))}, 422, "app.py:3:"),
    ({"name": "x", "code": b64(b"\x1f\x8bnot gzip at all")}, 422, "code:"),
    ({"name": "x", "code": b64(UNKNOWN_IMPORT)}, 422, "app.py:1:1: imports `requests`"),
    ({"name": "x", "code": b64(HELLO_SOURCE), "colour": "blue"}, 422, "unknown field(s) for a function: colour"),
    ({"name": "Bad_Name", "code": b64(HELLO_SOURCE)}, 422, "not a valid function name"),
    ({"code": b64(HELLO_SOURCE)}, 422, "needs a `name`"),
    ({"name": "x"}, 422, "needs its `code`"),
    ({"name": "x", "code": b64(HELLO_SOURCE), "source": "../../outside"}, 422, "outside the project"),
    ({"name": "x", "code": b64(HELLO_SOURCE), "source": "/etc"}, 422, "relative path"),
    ({"name": "x", "code": b64(HELLO_SOURCE), "source": ".git/hooks"}, 422, "not a place"),
    ({"name": "x", "code": b64(HELLO_SOURCE), "replicas": "many"}, 422, "faas.yaml:"),
    ({"name": "hello", "code": b64(HELLO_SOURCE)}, 409, "exists already"),
    ({"name": "x", "code": b64(HELLO_SOURCE), "source": "functions/hello"}, 409, "demo/hello"),
    ({"name": "x", "code": 42}, 400, "must be a string"),
])
def test_bad_input_is_a_4xx_with_a_message_and_nothing_is_committed(
        shared_api_server: ApiServer, body: dict[str, object], status: int, needle: str) -> None:
    project = shared_api_server.project
    before = git(project, "rev-parse", "HEAD")

    answer = shared_api_server.client().post("/api/workspaces/demo/functions", json=body, params={"wait": "true"})

    assert answer.status_code == status, answer.text
    assert needle in answer.json()["detail"]
    assert git(project, "rev-parse", "HEAD") == before
    assert _clean(project), git(project, "status", "--porcelain")
    assert not (project / "functions/demo").exists()


def test_bodies_that_are_not_json_objects_or_too_large_are_4xx(shared_api_server: ApiServer) -> None:
    api_server = shared_api_server
    api = api_server.client()
    assert api.post("/api/workspaces/demo/functions", content=b"{not json",
                    headers={"content-type": "application/json"}).status_code == 400
    assert api.post("/api/workspaces/demo/functions", json=["a", "list"]).status_code == 422
    huge = api.post("/api/workspaces/demo/functions", json={"name": "x", "code": "A" * (16 * 1024 * 1024)})
    assert huge.status_code == 413 and "larger than" in huge.json()["detail"]
    assert api.patch("/api/workspaces/demo/functions/hello", json={}).status_code == 422
    assert api.patch("/api/workspaces/demo/functions/hello", json={"name": "renamed"}).status_code == 422
    assert api.patch("/api/workspaces/demo/functions/nope", json={"replicas": 2}).status_code == 404
    assert api.delete("/api/workspaces/demo/functions/nope").status_code == 404
    assert api.post("/api/workspaces/nope/functions", json={"name": "x", "code": b64(HELLO_SOURCE)}).status_code == 404
    assert "Traceback" not in api_server.log()
    assert _clean(api_server.project)


def test_a_protected_function_is_not_deleted(api_project: Path, start_api) -> None:  # type: ignore[no-untyped-def]
    manifest = api_project / "faas.yaml"
    manifest.write_text(manifest.read_text().replace("source: functions/hello", "source: functions/hello\n        protect: true"))
    git(api_project, "commit", "-qam", "protect hello")
    server = start_api(api_project)

    answer = server.client().delete("/api/workspaces/demo/functions/hello")

    assert answer.status_code == 409 and "protect" in answer.json()["detail"]
    assert _commits(api_project)[0] == "Test Setup|protect hello"


def test_reads_show_declared_and_deployed(shared_api_server: ApiServer) -> None:
    api = shared_api_server.client()
    listed = api.get("/api/workspaces/demo/functions").json()["functions"]
    assert [(f["name"], f["status"], f["deployed"]) for f in listed] == [("hello", "pending-create", None)]
    assert listed[0]["declared"]["source"] == "functions/hello"
    assert listed[0]["id"] == "demo.hello"


def test_a_workspace_that_is_not_a_git_work_tree_serves_reads_and_refuses_writes(tmp_path: Path, start_api) -> None:  # type: ignore[no-untyped-def]
    from cli_support import copy_example

    project = copy_example("hello", tmp_path / "plain")
    server = start_api(project)
    api = server.client()
    assert api.get("/api/workspaces").status_code == 200
    answer = api.post("/api/workspaces", json={"name": "shop"})
    assert answer.status_code == 409 and "git work tree" in answer.json()["detail"]
