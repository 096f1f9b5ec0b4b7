"""The Platform API on the aws backend, exactly as the CLI runs it in tests/test_cloud_e2e.py:
moto (DynamoDB state, S3 sources, ECR), a real OCI registry and the Kubernetes API emulator,
checked with kubectl. A function written through the API lands in git, DynamoDB, the registry
and the cluster — and only that function."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from api_support import HELLO_SOURCE, ApiServer, b64, git, make_git_project
from test_cloud_e2e import Cloud, cloud  # noqa: F401  (cloud: the module-scoped services fixture)


def _state_keys(cloud: Cloud) -> set[str]:  # noqa: F811
    dynamodb = cloud.moto.client("dynamodb", "eu-west-1")
    items = dynamodb.query(TableName="faasops-state", KeyConditionExpression="pk = :pk",
                           ExpressionAttributeValues={":pk": {"S": "PROJECT#shop"}})["Items"]
    return {i["sk"]["S"] for i in items}


@pytest.mark.slow
def test_function_crud_through_the_api_lands_in_git_dynamodb_registry_and_cluster(
        cloud: Cloud, tmp_path: Path, start_api: Callable[..., ApiServer]) -> None:  # noqa: F811
    cloud.moto.reset()
    cloud.kube.reset()
    project = make_git_project(tmp_path, "cloud")
    cloud.overlay(project)
    git(project, "commit", "-qam", "point the providers at the test services")
    api = start_api(project, env=cloud.env, environment="local").client()

    created = api.post("/api/workspaces/storefront/functions", params={"wait": "true"},
                       json={"name": "from-api", "code": b64(HELLO_SOURCE), "replicas": 2})

    assert created.status_code == 201, created.text
    assert git(project, "log", "-1", "--format=%an|%s") == "admin|Create function storefront/from-api\n"
    found = cloud.kubectl("-n", "storefront", "get", "spinapp", "from-api", "-o", "json")
    assert found.returncode == 0, found.stderr
    app = json.loads(found.stdout)
    assert app["spec"]["replicas"] == 2
    assert app["spec"]["image"].startswith(cloud.registry.url.removeprefix("http://") + "/faasops/shop/storefront/from-api@sha256:")
    assert "WS#storefront#FN#from-api" in _state_keys(cloud)
    # Exactly that target: the example's own functions were not applied.
    assert "WS#storefront#FN#hello" not in _state_keys(cloud)
    assert cloud.kubectl("-n", "storefront", "get", "spinapp", "hello").returncode != 0
    view = api.get("/api/workspaces/storefront/functions/from-api", params={"refresh": "true"}).json()
    assert view["status"] == "synced" and view["plan"]["action"] == "no-op"

    patched = api.patch("/api/workspaces/storefront/functions/from-api", params={"wait": "true"}, json={"replicas": 3})
    assert patched.status_code == 200, patched.text
    live = json.loads(cloud.kubectl("-n", "storefront", "get", "spinapp", "from-api", "-o", "json").stdout)
    assert live["spec"]["replicas"] == 3

    deleted = api.delete("/api/workspaces/storefront/functions/from-api", params={"wait": "true"})
    assert deleted.status_code == 200, deleted.text
    assert cloud.kubectl("-n", "storefront", "get", "spinapp", "from-api").returncode != 0
    assert "WS#storefront#FN#from-api" not in _state_keys(cloud)
    assert git(project, "log", "--format=%s").splitlines()[:3] == [
        "Delete function storefront/from-api", "Update function storefront/from-api (replicas)",
        "Create function storefront/from-api"]
