"""The Builder API over real HTTP: `faasops builder serve` on the embedded local backend, real
componentize-py builds. Auth, upload validation (nothing stored when refused), tasks, push by
build key, component download, scaffold and deploy."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import tarfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from builder_support import MAX_UPLOAD_BYTES, TOKEN, BuilderServer, function_spec
from cli_support import EXAMPLES

from faasops.source import snapshot_directory

HELLO_SOURCE = EXAMPLES / "hello" / "functions" / "hello"


def tar_gz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def nothing_stored(server: BuilderServer, data_dir: Path, workspace: str) -> None:
    assert server.workspace_tasks(workspace) == []
    sources = data_dir / ".faasops" / "sources"
    assert not sources.exists() or not any(p.is_file() for p in sources.rglob("*"))


def test_openapi_docs_list_every_builder_endpoint(local_builder: BuilderServer) -> None:
    docs = local_builder.request("GET", "/docs", token=None)
    assert docs.status == 200 and b"swagger" in docs.data.lower()
    schema = json.loads(local_builder.request("GET", "/openapi.json", token=None).data)
    assert {
        "/api/v1/build", "/api/v1/build-and-push", "/api/v1/push", "/api/v1/scaffold", "/api/v1/deploy",
        "/api/v1/tasks/{task_id}", "/api/v1/workspaces/{workspace_id}/tasks", "/api/v1/info",
    } <= set(schema["paths"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    upload = schema["paths"]["/api/v1/build"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"202", "401", "413", "422"} <= set(upload["responses"])
    assert set(schema["components"]["schemas"]["TaskModel"]["properties"]["status"]["enum"]) == {
        "pending", "running", "completed", "failed"}


@pytest.mark.parametrize("token", [None, "wrong-token-0000000000000000"])
def test_api_requests_without_or_with_a_wrong_token_are_refused_with_401(local_builder: BuilderServer,
                                                                         token: str | None) -> None:
    for method, path in [("GET", "/api/v1/info"), ("GET", "/api/v1/workspaces/demo/tasks"),
                         ("GET", "/api/v1/tasks/0123456789abcdef"), ("POST", "/api/v1/deploy")]:
        response = local_builder.request(method, path, token=token, json_body={} if method == "POST" else None)
        assert response.status == 401, (path, response.data)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        detail = json.loads(response.data)["detail"]
        assert ("missing" if token is None else "invalid") in detail
        if token:
            assert token not in detail
    archive = snapshot_directory(HELLO_SOURCE).archive
    assert local_builder.upload("/api/v1/build", archive, {"project": "p", "function": function_spec()}, token=token).status == 401
    assert local_builder.request("GET", "/api/v1/info").status == 200  # the right token


def test_oversized_upload_is_refused_with_413_before_its_body_is_read(local_builder: BuilderServer, data_dir: Path) -> None:
    # Only the headers are sent (as curl does with `Expect: 100-continue`): the service answers
    # from the declared length, without reading a byte of the body.
    url = urlsplit(local_builder.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.putrequest("POST", "/api/v1/build")
    connection.putheader("Authorization", f"Bearer {TOKEN}")
    connection.putheader("Content-Type", "multipart/form-data; boundary=x")
    connection.putheader("Content-Length", str(50 * 1024 * 1024))
    connection.putheader("Expect", "100-continue")
    connection.endheaders()
    answer = connection.getresponse()
    assert answer.status == 413
    assert f"at most {MAX_UPLOAD_BYTES} bytes" in json.loads(answer.read())["detail"]
    connection.close()
    nothing_stored(local_builder, data_dir, "demo")


def test_upload_that_is_not_a_tar_gz_is_refused_with_422_and_nothing_is_stored(local_builder: BuilderServer,
                                                                               data_dir: Path) -> None:
    spec = {"project": "p", "function": function_spec("notatar")}
    for junk in (b"print('not an archive')\n", gzip.compress(b"gzip, but no tar inside" * 10)):
        response = local_builder.upload("/api/v1/build", junk, spec)
        assert response.status == 422, response.data
        assert "tar" in json.loads(response.data)["detail"]
    nothing_stored(local_builder, data_dir, "notatar")


def test_archive_entries_escaping_the_source_or_unpacking_too_large_are_refused(local_builder: BuilderServer,
                                                                               data_dir: Path) -> None:
    app = (HELLO_SOURCE / "app.py").read_bytes()
    spec = {"project": "p", "function": function_spec("escape")}
    escaping = local_builder.upload("/api/v1/build", tar_gz({"app.py": app, "../evil.py": b"x = 1\n"}), spec)
    assert escaping.status == 422 and "'../evil.py'" in json.loads(escaping.data)["detail"]
    # A decompression bomb: tiny upload, 200 MiB of zeros inside.
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("zeros.bin")
        info.size = 200 << 20
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    bomb = gzip.compress(raw.getvalue(), compresslevel=9)
    assert len(bomb) < MAX_UPLOAD_BYTES
    unpacked = local_builder.upload("/api/v1/build", bomb, spec)
    assert unpacked.status == 413 and "unpacks to more than" in json.loads(unpacked.data)["detail"]
    nothing_stored(local_builder, data_dir, "escape")


def test_handler_contract_violation_is_422_with_the_located_message(local_builder: BuilderServer, data_dir: Path) -> None:
    handler = (
        "from spin_sdk import http\n"
        "\n"
        "class IncomingHandler(http.IncomingHandler):\n"
        "    async def handle_request(self, request):\n"
        "        return http.Response(200, {}, b'')\n"
    )
    response = local_builder.upload("/api/v1/build", tar_gz({"app.py": handler.encode()}),
                                    {"project": "p", "function": function_spec("contract")})
    assert response.status == 422
    detail = json.loads(response.data)["detail"]
    assert "app.py:4:5: handle_request must not be async" in detail
    missing = local_builder.upload("/api/v1/build", tar_gz({"other.py": b"x = 1\n"}),
                                   {"project": "p", "function": function_spec("contract")})
    assert missing.status == 422 and "app.py: the handler module is not in the upload" in json.loads(missing.data)["detail"]
    bad_spec = local_builder.upload("/api/v1/build", tar_gz({"app.py": handler.encode()}),
                                    {"project": "p", "function": function_spec("Bad_Name")})
    assert bad_spec.status == 422 and "spec: function.workspace" in json.loads(bad_spec.data)["detail"]
    nothing_stored(local_builder, data_dir, "contract")


def test_build_then_push_by_key_and_download_the_component(local_builder: BuilderServer) -> None:
    snapshot = snapshot_directory(HELLO_SOURCE)
    spec = {"project": "shop", "function": function_spec("builds", env={"GREETING": "hi"}),
            "source_digest": snapshot.digest}
    accepted = local_builder.upload("/api/v1/build", snapshot.archive, spec)
    assert accepted.status == 202, accepted.data
    body = json.loads(accepted.data)
    assert body["status"] == "pending" and accepted.headers["Location"] == f"/api/v1/tasks/{body['task_id']}"
    task = local_builder.wait_task(body["task_id"])
    assert task["status"] == "completed", task
    result = task["result"]
    assert result["build_key"].startswith("sha256:") and result["toolchain"] == json.loads(
        local_builder.request("GET", "/api/v1/info").data)["toolchain"]

    component = local_builder.request("GET", f"/api/v1/builds/{result['build_key']}/component")
    assert component.status == 200 and component.headers["Content-Type"] == "application/wasm"
    assert "sha256:" + hashlib.sha256(component.data).hexdigest() == result["wasm_digest"]

    pushed = local_builder.request("POST", "/api/v1/push", json_body={
        "project": "shop", "function": function_spec("builds", env={"GREETING": "hi"}),
        "build_key": result["build_key"], "created": "2024-01-01T00:00:00Z"})
    assert pushed.status == 202, pushed.data
    push_task = local_builder.wait_task(json.loads(pushed.data)["task_id"])
    assert push_task["status"] == "completed", push_task
    assert push_task["result"]["artifact"]["reference"].startswith("local/shop/builds/hello@sha256:")

    unknown = local_builder.request("POST", "/api/v1/push", json_body={
        "project": "shop", "function": function_spec("builds"), "build_key": "sha256:" + "0" * 64})
    assert unknown.status == 404 and "build it first" in json.loads(unknown.data)["detail"]
    mismatch = local_builder.upload("/api/v1/build", snapshot.archive, {**spec, "source_digest": "sha256:" + "1" * 64})
    assert mismatch.status == 422 and "digest" in json.loads(mismatch.data)["detail"]

    history = local_builder.workspace_tasks("builds")
    assert [t["kind"] for t in history] == ["push", "build"]
    assert all(t["status"] == "completed" for t in history)


def test_scaffold_and_deploy_render_function_id_autoscaling_and_spot(local_builder: BuilderServer, data_dir: Path) -> None:
    request = {
        "project": "shop",
        "workspace": {"name": "storefront", "namespace": "shop-front"},
        "function": function_spec("storefront", "checkout", spot=True,
                                  autoscaling={"type": "hpa", "min": 1, "max": 5, "cpu": 70},
                                  resources={"requests": {"cpu": "100m"}}),
        "image": "registry.example/faasops/shop/storefront/checkout@sha256:" + "a" * 64,
    }
    rendered = local_builder.request("POST", "/api/v1/scaffold", json_body=request)
    assert rendered.status == 200, rendered.data
    manifests = json.loads(rendered.data)["manifests"]
    spinapp = next(m for m in manifests if m["kind"] == "SpinApp")
    assert spinapp["metadata"]["namespace"] == "shop-front"
    assert spinapp["metadata"]["labels"]["function_id"] == "storefront.checkout"
    assert spinapp["spec"]["podLabels"]["function_id"] == "storefront.checkout"
    assert spinapp["spec"]["executor"] == "containerd-shim-spin-spot"
    assert spinapp["spec"]["enableAutoscaling"] is True and "replicas" not in spinapp["spec"]
    assert any(m["kind"] == "HorizontalPodAutoscaler" for m in manifests)

    accepted = local_builder.request("POST", "/api/v1/deploy", json_body=request)
    assert accepted.status == 202, accepted.data
    task = local_builder.wait_task(json.loads(accepted.data)["task_id"])
    assert task["status"] == "completed", task
    assert task["result"]["namespace"] == "shop-front"
    assert task["result"]["manifests"] == ["SpinApp/checkout", "HorizontalPodAutoscaler/checkout"]
    deployed = list(yaml.safe_load_all((data_dir / ".faasops" / "deploy" / "shop-front" / "checkout.yaml").read_text()))
    assert deployed == manifests

    wrong_ws = local_builder.request("POST", "/api/v1/deploy", json_body={**request, "workspace": {"name": "other"}})
    assert wrong_ws.status == 422


def test_build_and_push_locks_the_functions_spin_settings_and_files_into_the_artifact(
        local_builder: BuilderServer, data_dir: Path, tmp_path: Path) -> None:
    """What the cluster enforces comes from the locked app: a remote build must lock the same
    timeout, outbound hosts, stores, databases and files as a local one."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.py").write_bytes((HELLO_SOURCE / "app.py").read_bytes())
    (source / "static").mkdir()
    page = b"<h1>served from a file layer</h1>\n" * 8  # over 128 bytes: a layer, not inlined
    (source / "static" / "index.html").write_bytes(page)
    snapshot = snapshot_directory(source)
    settings = {"timeout": 45, "allowed_outbound_hosts": ["https://api.example.com"],
                "key_value_stores": ["default"], "sqlite_databases": ["default"], "files": ["static"]}
    spec = {"project": "shop", "function": function_spec("locked", **settings), "created": "2024-01-01T00:00:00Z"}
    accepted = local_builder.upload("/api/v1/build-and-push", snapshot.archive, spec)
    assert accepted.status == 202, accepted.data
    task = local_builder.wait_task(json.loads(accepted.data)["task_id"])
    assert task["status"] == "completed", task
    reference = task["result"]["artifact"]["reference"]

    blobs = data_dir / ".faasops" / "oci" / "blobs" / "sha256"
    manifest = json.loads((blobs / reference.rsplit("@sha256:", 1)[1]).read_bytes())
    locked = json.loads((blobs / manifest["layers"][-1]["digest"].removeprefix("sha256:")).read_bytes())
    component = locked["components"][0]
    assert component["metadata"]["allowed_outbound_hosts"] == ["https://api.example.com"]
    assert component["metadata"]["key_value_stores"] == ["default"]
    assert component["metadata"]["databases"] == ["default"]
    assert component["metadata"]["faasops_request_timeout_s"] == 45
    [mounted] = component["files"]
    assert mounted["path"] == "static/index.html"
    assert (blobs / mounted["digest"].removeprefix("sha256:")).read_bytes() == page

    by_key = local_builder.request("POST", "/api/v1/push", json_body={
        "project": "shop", "function": function_spec("locked", **settings),
        "build_key": task["result"]["build_key"]})
    assert by_key.status == 422 and "build-and-push" in json.loads(by_key.data)["detail"]

    missing = local_builder.upload("/api/v1/build-and-push", snapshot.archive,
                                   {**spec, "function": function_spec("locked", files=["nowhere"])})
    assert missing.status == 422 and "nowhere" in json.loads(missing.data)["detail"]
