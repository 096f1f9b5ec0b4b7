"""The cloud example end to end: plan → apply → plan against real services started here —
moto (DynamoDB, S3, ECR API), Debian's docker-registry (OCI push with the ECR token) and the
project's Kubernetes API emulator, checked with real kubectl."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import urllib3
import yaml

from cli_support import EXAMPLES, Result, run_faasops
from testkit.availability import unavailable, kubectl_binary
from faasops.engine import Engine
from faasops.manifest import load_project
from testkit.kubeapi import KubeEmulator
from testkit.moto import MotoServer, MotoServerNotFound, aws_env
from testkit.registry import OciRegistry, RegistryUnavailable

PLANTED_SECRET = "sk_live_PLANTED_d0_not_leak_4242"
OCI_ACCEPT = "application/vnd.oci.image.manifest.v1+json"






class Cloud:
    """moto + registry + Kubernetes emulator, and how to run faasops and kubectl against them."""

    def __init__(self, moto: MotoServer, registry: OciRegistry, kube: KubeEmulator, kubeconfig: Path,
                 registry_password: str):
        self.moto, self.registry, self.kube, self.kubeconfig = moto, registry, kube, kubeconfig
        self.registry_password = registry_password  # moto's ECR token password, user AWS
        self.env = {**aws_env(), "KUBECONFIG": str(kubeconfig)}
        self.outputs: list[str] = []

    def overlay(self, project: Path) -> None:
        """faas.local.yaml: the example's providers pointed at the local services."""
        (project / "faas.local.yaml").write_text(yaml.safe_dump({"providers": {
            "state": {"endpoint_url": self.moto.url, "create_table": True},
            "sources": {"endpoint_url": self.moto.url, "create_bucket": True},
            "registry": {"endpoint_url": self.moto.url, "registry_url": self.registry.url},
            "deployer": {"kubeconfig": str(self.kubeconfig)},
        }}))

    def faasops(self, project: Path, *args: str) -> Result:
        result = run_faasops("-C", str(project), "-e", "local", *args, env=self.env)
        self.outputs.append(result.output)
        return result

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([kubectl_binary(), *args], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "KUBECONFIG": str(self.kubeconfig)})
        self.outputs.append(result.stdout + result.stderr)
        return result


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    os.environ.update(aws_env())
    try:
        moto = MotoServer().start()
    except MotoServerNotFound as exc:
        unavailable(str(exc))
    token = moto.client("ecr", "eu-west-1").get_authorization_token()["authorizationData"][0]["authorizationToken"]
    password = base64.b64decode(token).decode().partition(":")[2]
    try:
        registry = OciRegistry({"AWS": password})
    except RegistryUnavailable as exc:
        moto.stop()
        unavailable(str(exc))
    kube = KubeEmulator(port=0).start()
    kubeconfig = kube.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
    try:
        yield Cloud(moto, registry, kube, kubeconfig, password)
    finally:
        kube.stop()
        registry.stop()
        moto.stop()


@pytest.fixture
def cloud_project(cloud: Cloud, tmp_path: Path) -> Path:
    cloud.moto.reset()
    cloud.kube.reset()
    project = tmp_path / "cloud"
    shutil.copytree(EXAMPLES / "cloud", project)
    cloud.overlay(project)
    # A Secret the checkout function references, with a value faasops must never see or show.
    assert cloud.kubectl("create", "namespace", "storefront").returncode == 0
    created = cloud.kubectl("-n", "storefront", "create", "secret", "generic", "stripe",
                            f"--from-literal=api-key={PLANTED_SECRET}")
    assert created.returncode == 0, created.stderr
    return project


def test_cloud_example_plan_apply_plan_lands_everywhere(cloud: Cloud, cloud_project: Path) -> None:
    plan = cloud.faasops(cloud_project, "plan", "--detailed-exitcode")
    assert plan.code == 2, plan.output
    assert "Plan: 3 to add, 0 to change, 0 to destroy." in plan.out

    applied = cloud.faasops(cloud_project, "apply", "--auto-approve")
    assert applied.code == 0, applied.output

    again = cloud.faasops(cloud_project, "plan", "--detailed-exitcode")
    assert again.code == 0, again.output
    assert "No changes." in again.out

    # State in DynamoDB, one item per workspace and function.
    dynamodb = cloud.moto.client("dynamodb", "eu-west-1")
    items = dynamodb.query(TableName="faasops-state", KeyConditionExpression="pk = :pk",
                           ExpressionAttributeValues={":pk": {"S": "PROJECT#shop"}})["Items"]
    keys = sorted(i["sk"]["S"] for i in items)
    assert "WS#storefront" in keys and "WS#storefront#FN#hello" in keys and "WS#storefront#FN#checkout" in keys

    # Sources in S3, content-addressed and encrypted.
    s3 = cloud.moto.client("s3", "eu-west-1")
    objects = s3.list_objects_v2(Bucket="acme-faasops-sources")["Contents"]
    assert len(objects) == 2 and all(o["Key"].startswith("sources/") for o in objects)
    head = s3.head_object(Bucket="acme-faasops-sources", Key=objects[0]["Key"])
    assert head["ServerSideEncryption"] == "AES256"

    # The SpinApp in the cluster, found by kubectl through the function_id label.
    found = cloud.kubectl("get", "spinapps", "-A", "-l", "function_id=storefront.hello", "-o", "json")
    assert found.returncode == 0, found.stderr
    apps = json.loads(found.stdout)["items"]
    assert [a["metadata"]["name"] for a in apps] == ["hello"]
    image = apps[0]["spec"]["image"]
    assert image.startswith(cloud.registry.url.removeprefix("http://") + "/faasops/shop/storefront/hello@sha256:")
    checkout = json.loads(cloud.kubectl("-n", "storefront", "get", "spinapp", "checkout", "-o", "json").stdout)
    assert checkout["spec"]["enableAutoscaling"] is True and "replicas" not in checkout["spec"]
    assert cloud.kubectl("-n", "storefront", "get", "hpa", "checkout").returncode == 0

    # The pushed manifest pulled back: Spin media types, same digest as deployed.
    repository, _, digest = image.partition("/")[2].partition("@")
    http = urllib3.PoolManager()
    auth = urllib3.make_headers(basic_auth=f"AWS:{cloud.registry_password}")
    pulled = http.request("GET", f"{cloud.registry.url}/v2/{repository}/manifests/{digest}",
                          headers={**auth, "Accept": OCI_ACCEPT})
    assert pulled.status == 200
    manifest = json.loads(pulled.data)
    assert {layer["mediaType"] for layer in manifest["layers"]} == {
        "application/vnd.wasm.content.layer.v1+wasm", "application/vnd.fermyon.spin.application.v1+config"}
    assert pulled.headers["Docker-Content-Digest"] == digest

    # Nothing faasops wrote or printed holds the secret's value.
    assert_secret_absent(cloud, cloud_project)


def test_drift_made_with_kubectl_shows_in_plan_and_apply_restores_it(cloud: Cloud, cloud_project: Path) -> None:
    assert cloud.faasops(cloud_project, "apply", "--auto-approve").code == 0
    patched = cloud.kubectl("-n", "storefront", "patch", "spinapp", "hello", "--type", "merge",
                            "-p", '{"spec":{"replicas":5}}')
    assert patched.returncode == 0, patched.stderr

    drift = cloud.faasops(cloud_project, "plan", "--detailed-exitcode")
    assert drift.code == 2, drift.output
    assert "~ function storefront/hello will be updated in place" in drift.out
    assert "drift: SpinApp hello: spec.replicas is 5, want 2" in drift.out

    conflict = cloud.faasops(cloud_project, "apply", "--auto-approve")
    assert conflict.code == 1
    assert "kubectl-patch" in conflict.err and "--force-conflicts" in conflict.err

    restored = cloud.faasops(cloud_project, "apply", "--auto-approve", "--force-conflicts")
    assert restored.code == 0, restored.output
    live = json.loads(cloud.kubectl("-n", "storefront", "get", "spinapp", "hello", "-o", "json").stdout)
    assert live["spec"]["replicas"] == 2
    assert cloud.faasops(cloud_project, "plan", "--detailed-exitcode").code == 0

    assert cloud.kubectl("-n", "storefront", "delete", "spinapp", "checkout").returncode == 0
    missing = cloud.faasops(cloud_project, "plan")
    assert "drift: SpinApp checkout is missing from the cluster" in missing.out
    assert cloud.faasops(cloud_project, "apply", "--auto-approve").code == 0
    assert cloud.kubectl("-n", "storefront", "get", "spinapp", "checkout").returncode == 0
    assert_secret_absent(cloud, cloud_project)


def test_no_op_plan_api_calls_do_not_grow_with_functions_per_workspace(cloud: Cloud, tmp_path: Path) -> None:
    counts = {}
    for n in (2, 20):
        cloud.moto.reset()
        cloud.kube.reset()
        project = tmp_path / f"n{n}"
        shutil.copytree(EXAMPLES / "cloud", project)
        cloud.overlay(project)
        manifest = yaml.safe_load((project / "faas.yaml").read_text())
        manifest["workspaces"][0]["functions"] = [
            {"name": f"fn{i}", "source": "functions/hello"} for i in range(n)]
        (project / "faas.yaml").write_text(yaml.safe_dump(manifest))
        assert cloud.faasops(project, "apply", "--auto-approve").code == 0

        engine = Engine(load_project(project, "local"))
        cloud.kube.reset_stats()
        plan = engine.plan()
        assert not plan.has_changes
        state_calls = sum(engine.providers.state.calls.values())
        kube_calls = cloud.kube.stats()["total"]
        engine.close()
        counts[n] = (state_calls, kube_calls)
        print(f"no-op plan with {n} functions: {state_calls} DynamoDB calls, {kube_calls} Kubernetes API calls")
    assert counts[2] == counts[20]


def assert_secret_absent(cloud: Cloud, project: Path) -> None:
    for output in cloud.outputs:
        assert PLANTED_SECRET not in output
    for path in project.rglob("*"):
        if path.is_file():
            assert PLANTED_SECRET.encode() not in path.read_bytes(), path
    dump = json.dumps(cloud.moto.client("dynamodb", "eu-west-1").scan(TableName="faasops-state")["Items"])
    assert PLANTED_SECRET not in dump


def test_apply_wait_waits_for_readiness_and_times_out_clearly(cloud: Cloud, cloud_project: Path) -> None:
    overlay = yaml.safe_load((cloud_project / "faas.local.yaml").read_text())
    overlay["providers"]["deployer"]["wait_timeout_seconds"] = 2
    (cloud_project / "faas.local.yaml").write_text(yaml.safe_dump(overlay))
    # No operator runs in the emulator, so nothing becomes ready on its own.
    result = cloud.faasops(cloud_project, "apply", "--auto-approve", "--wait", "-t", "storefront/hello")
    assert result.code == 1
    assert "SpinApp storefront/hello is not ready after 2s" in result.err
    assert "Traceback" not in result.err
    # The deploy happened but is not recorded as applied: the next plan still shows it.
    assert "storefront/hello" in cloud.faasops(cloud_project, "plan", "-t", "storefront/hello").out

    cloud.kube.mark_spinapp_ready("storefront", "hello")
    ready = cloud.faasops(cloud_project, "apply", "--auto-approve", "--wait", "-t", "storefront/hello")
    assert ready.code == 0, ready.output
