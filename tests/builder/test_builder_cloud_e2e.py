"""The cloud example end to end with `builder: remote`: a `faasops builder serve` started here
builds, pushes (ECR credentials from moto, into Debian's docker-registry) and records its tasks
in DynamoDB (moto); the client's apply lands the same state as the same project built locally —
same build keys, same image digests, same records. Also the deploy and push endpoints against
the Kubernetes emulator."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from builder_support import TOKEN, TOKEN_ENV, BuilderServer, function_spec
from cli_support import EXAMPLES, Result, run_faasops

from testkit.availability import unavailable, kubectl_binary
from testkit.kubeapi import KubeEmulator
from testkit.moto import MotoServer, MotoServerNotFound, aws_env
from testkit.registry import OciRegistry, RegistryUnavailable

pytestmark = pytest.mark.slow  # the cloud example end to end with a remote builder

REGION = "eu-west-1"
PINNED = {"SOURCE_DATE_EPOCH": "1700000000"}  # both runs: equal sources → equal artifact digests
BUILDER_TABLE = "faasops-builder"






class Cloud:
    def __init__(self, moto: MotoServer, registry: OciRegistry, kube: KubeEmulator, kubeconfig: Path):
        self.moto, self.registry, self.kube, self.kubeconfig = moto, registry, kube, kubeconfig
        self.env = {**aws_env(), "KUBECONFIG": str(kubeconfig)}

    def reset(self) -> None:
        self.moto.reset()
        self.kube.reset()
        # The Secret the example's checkout function references.
        for args in (["create", "namespace", "storefront"],
                     ["-n", "storefront", "create", "secret", "generic", "stripe", "--from-literal=api-key=x"]):
            assert self.kubectl(*args).returncode == 0

    def project(self, tmp_path: Path, name: str, extra_providers: dict[str, Any] | None = None) -> Path:
        """The cloud example with faas.local.yaml pointing at these services (as tests/test_cloud_e2e.py)."""
        project = tmp_path / name
        shutil.copytree(EXAMPLES / "cloud", project)
        providers = {
            "state": {"endpoint_url": self.moto.url, "create_table": True},
            "sources": {"endpoint_url": self.moto.url, "create_bucket": True},
            "registry": {"endpoint_url": self.moto.url, "registry_url": self.registry.url},
            "deployer": {"kubeconfig": str(self.kubeconfig)},
            **(extra_providers or {}),
        }
        (project / "faas.local.yaml").write_text(yaml.safe_dump({"providers": providers}))
        return project

    def faasops(self, project: Path, *args: str) -> Result:
        return run_faasops("-C", str(project), "-e", "local", *args, env={**self.env, **PINNED, TOKEN_ENV: TOKEN})

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([kubectl_binary(), *args], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "KUBECONFIG": str(self.kubeconfig)})

    def spinapps(self) -> dict[str, dict[str, Any]]:
        found = self.kubectl("get", "spinapps", "-A", "-o", "json")
        assert found.returncode == 0, found.stderr
        return {f"{a['metadata']['namespace']}/{a['metadata']['name']}": a for a in json.loads(found.stdout)["items"]}

    def function_records(self) -> dict[str, dict[str, Any]]:
        items = self.moto.client("dynamodb", REGION).scan(TableName="faasops-state")["Items"]
        return {i["sk"]["S"]: {k: v for k, v in i.items() if k not in ("applied_at",)} for i in items
                if "#FN#" in i["sk"]["S"]}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    os.environ.update(aws_env())
    kubectl_binary()
    try:
        moto = MotoServer().start()
    except MotoServerNotFound as exc:
        unavailable(str(exc))
    token = moto.client("ecr", REGION).get_authorization_token()["authorizationData"][0]["authorizationToken"]
    try:
        registry = OciRegistry({"AWS": base64.b64decode(token).decode().partition(":")[2]})
    except RegistryUnavailable as exc:
        moto.stop()
        unavailable(str(exc))
    kube = KubeEmulator(port=0).start()
    kubeconfig = kube.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
    try:
        yield Cloud(moto, registry, kube, kubeconfig)
    finally:
        kube.stop()
        registry.stop()
        moto.stop()


@pytest.fixture(scope="module")
def cloud_builder(cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuilderServer]:
    """The service as deployed in-cluster, on the test services: tasks in DynamoDB, pushes to ECR
    (credentials from the AWS chain, here moto's), deploys to the Kubernetes emulator."""
    config = {"providers": {
        "state": {"type": "dynamodb", "table": BUILDER_TABLE, "region": REGION, "endpoint_url": cloud.moto.url,
                  "create_table": True},
        "registry": {"type": "ecr", "region": REGION, "endpoint_url": cloud.moto.url,
                     "registry_url": cloud.registry.url},
        "deployer": {"type": "kubernetes", "kubeconfig": str(cloud.kubeconfig)},
    }}
    with BuilderServer(tmp_path_factory.mktemp("cloud-builder"), config, env=aws_env()) as server:
        yield server


def test_cloud_example_applies_with_the_remote_builder_to_the_same_state_as_a_local_build(
        cloud: Cloud, cloud_builder: BuilderServer, tmp_path: Path) -> None:
    # 1. The reference: the example built and pushed on this machine.
    cloud.reset()
    local = cloud.project(tmp_path, "local")
    applied = cloud.faasops(local, "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    local_apps = {address: app["spec"]["image"] for address, app in cloud.spinapps().items()}
    local_records = cloud.function_records()
    assert set(local_apps) == {"storefront/hello", "storefront/checkout"}

    # 2. The same project on fresh services, with the toolchain and registry credentials remote.
    cloud.reset()
    remote = cloud.project(tmp_path, "remote", {
        "builder": {"type": "remote", "url": cloud_builder.url, "token_env": TOKEN_ENV, "poll_interval_seconds": 0.2},
        "registry": {"type": "remote", "region": None, "endpoint_url": None, "registry_url": None},
    })
    started = time.monotonic()
    applied = cloud.faasops(remote, "apply", "--auto-approve")
    print(f"remote apply: {time.monotonic() - started:.1f} s")
    assert applied.code == 0, applied.output
    assert "build-and-push task" in applied.err

    again = cloud.faasops(remote, "plan", "--detailed-exitcode")
    assert again.code == 0, again.output
    assert "No changes." in again.out

    remote_apps = cloud.spinapps()
    assert {address: app["spec"]["image"] for address, app in remote_apps.items()} == local_apps
    assert cloud.function_records() == local_records  # specs (build inputs, toolchain) and artifacts
    hello = remote_apps["storefront/hello"]
    assert hello["metadata"]["labels"]["function_id"] == "storefront.hello"
    assert local_apps["storefront/hello"].startswith(cloud.registry.host + "/faasops/shop/storefront/hello@sha256:")

    # The service's own history: one build-and-push task per function, in its DynamoDB table.
    tasks = cloud_builder.workspace_tasks("storefront")
    assert sorted((t["function"], t["kind"], t["status"]) for t in tasks) == [
        ("checkout", "build-and-push", "completed"), ("hello", "build-and-push", "completed")]
    assert {t["result"]["artifact"]["reference"] for t in tasks} == set(local_apps.values())
    items = cloud.moto.client("dynamodb", REGION).scan(TableName=BUILDER_TABLE)["Items"]
    assert {i["task_id"]["S"] for i in items if "task_id" in i} == {t["task_id"] for t in tasks}


def test_deploy_endpoint_applies_the_spinapp_with_function_id_autoscaling_and_spot(
        cloud: Cloud, cloud_builder: BuilderServer) -> None:
    cloud.kube.reset()
    request = {
        "project": "shop",
        "workspace": {"name": "payments", "labels": {"team": "pay"}},
        "function": function_spec("payments", "refund", spot=True,
                                   autoscaling={"type": "hpa", "min": 1, "max": 4, "cpu": 60},
                                   resources={"requests": {"cpu": "100m"}}),
        "image": f"{cloud.registry.host}/faasops/shop/payments/refund@sha256:" + "b" * 64,
    }
    accepted = cloud_builder.request("POST", "/api/v1/deploy", json_body=request)
    assert accepted.status == 202, accepted.data
    task = cloud_builder.wait_task(json.loads(accepted.data)["task_id"])
    assert task["status"] == "completed", task

    namespace = json.loads(cloud.kubectl("get", "namespace", "payments", "-o", "json").stdout)
    assert namespace["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "faasops"  # created when missing
    found = cloud.kubectl("get", "spinapps", "-A", "-l", "function_id=payments.refund", "-o", "json")
    [app] = json.loads(found.stdout)["items"]
    assert app["spec"]["executor"] == "containerd-shim-spin-spot"
    assert app["spec"]["podLabels"]["faasops.dev/spot"] == "true"
    assert app["spec"]["enableAutoscaling"] is True and "replicas" not in app["spec"]
    assert cloud.kubectl("-n", "payments", "get", "hpa", "refund").returncode == 0
