"""The cloud example's services with a fault-injecting proxy in front of each: moto (DynamoDB,
S3, the ECR API), docker-registry and the Kubernetes emulator. faasops talks to the proxies only:
``endpoint_url``/``registry_url`` and the kubeconfig's server name them."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import urllib3
import yaml
from cli_support import EXAMPLES, Result, run_faasops

from testkit.faultproxy import FaultProxy
from testkit.kubeapi import KubeEmulator
from testkit.moto import MotoServer, aws_env
from testkit.registry import OciRegistry, RegistryUnavailable

TABLE = "faasops-state"
BUCKET = "acme-faasops-sources"
REGION = "eu-west-1"
NAMESPACE = "storefront"
FUNCTIONS = ("checkout", "hello")


class FaultyCloud:
    """The services, their proxies, and how to run faasops against the proxies."""

    def __init__(self, moto: MotoServer, registry: OciRegistry, kube: KubeEmulator, registry_password: str,
                 workdir: Path):
        self.moto, self.registry, self.kube = moto, registry, kube
        self.registry_password = registry_password
        self.aws = FaultProxy(moto.url, seed=1).start()
        self.oci = FaultProxy(registry.url, seed=2).start()
        self.k8s = FaultProxy(kube.url, seed=3).start()
        self.kubeconfig = kube.write_kubeconfig(workdir / "kubeconfig")
        config = yaml.safe_load(self.kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = self.k8s.url
        self.kubeconfig.write_text(yaml.safe_dump(config, sort_keys=False))
        self.env = {**aws_env(), "KUBECONFIG": str(self.kubeconfig)}

    @property
    def proxies(self) -> tuple[FaultProxy, FaultProxy, FaultProxy]:
        return self.aws, self.oci, self.k8s

    def reset(self) -> None:
        self.moto.reset()
        self.kube.reset()
        # The registry keeps no cache by default (no `cache:` in its config): emptying its
        # storage directory empties it.
        shutil.rmtree(self.registry.root / "storage", ignore_errors=True)
        for proxy in self.proxies:
            proxy.clear()
            proxy.enable()
            proxy.reset_stats()

    def stop(self) -> None:
        for proxy in self.proxies:
            proxy.stop()
        self.kube.stop()
        self.registry.stop()

    def disable_faults(self) -> None:
        for proxy in self.proxies:
            proxy.disable()

    def project(self, tmp_path: Path, **overrides: dict[str, Any]) -> Path:
        """The cloud example with ``faas.local.yaml`` pointing every provider at a proxy;
        ``overrides`` adds provider options per slot (``deployer={"request_timeout_seconds": 1}``)."""
        project = tmp_path / "cloud"
        shutil.copytree(EXAMPLES / "cloud", project, ignore=shutil.ignore_patterns(".faasops", "__pycache__"))
        providers: dict[str, dict[str, Any]] = {
            "state": {"endpoint_url": self.aws.url, "create_table": True, "timeout_seconds": 10},
            "sources": {"endpoint_url": self.aws.url, "create_bucket": True, "timeout_seconds": 10},
            "registry": {"endpoint_url": self.aws.url, "registry_url": self.oci.url, "timeout_seconds": 30},
            "deployer": {"kubeconfig": str(self.kubeconfig), "request_timeout_seconds": 10},
        }
        for slot, options in overrides.items():
            providers[slot].update(options)
        (project / "faas.local.yaml").write_text(yaml.safe_dump({"providers": providers}))
        return project

    def faasops(self, project: Path, *args: str) -> Result:
        return run_faasops("-C", str(project), "-e", "local", *args, env=self.env)

    def stats(self) -> dict[str, dict[str, Any]]:
        return {"aws": self.aws.stats(), "registry": self.oci.stats(), "kubernetes": self.k8s.stats()}

    # ------------------------------------------------------------------------- what landed

    def state_items(self) -> dict[str, dict[str, Any]]:
        dynamodb = self.moto.client("dynamodb", REGION)
        items = dynamodb.query(TableName=TABLE, KeyConditionExpression="pk = :pk",
                               ExpressionAttributeValues={":pk": {"S": "PROJECT#shop"}}, ConsistentRead=True)["Items"]
        return {item["sk"]["S"]: item for item in items}

    def tasks(self) -> list[dict[str, Any]]:
        dynamodb = self.moto.client("dynamodb", REGION)
        return dynamodb.query(TableName=TABLE, KeyConditionExpression="pk = :pk",
                              ExpressionAttributeValues={":pk": {"S": "TASKS#shop"}}, ConsistentRead=True)["Items"]

    def lock_item(self) -> dict[str, Any] | None:
        dynamodb = self.moto.client("dynamodb", REGION)
        return dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "LOCK#shop"}, "sk": {"S": "LOCK"}},
                                 ConsistentRead=True).get("Item")

    def spinapps(self) -> dict[str, dict[str, Any]]:
        http = urllib3.PoolManager()
        response = http.request("GET", f"{self.kube.url}/apis/core.spinkube.dev/v1alpha1/namespaces/{NAMESPACE}/spinapps")
        return {item["metadata"]["name"]: item for item in json.loads(response.data).get("items", [])}

    def registry_tags(self, repository: str) -> list[str]:
        http = urllib3.PoolManager()
        auth = urllib3.make_headers(basic_auth=f"AWS:{self.registry_password}")
        response = http.request("GET", f"{self.registry.url}/v2/{repository}/tags/list", headers=auth)
        if response.status == 404:
            return []
        return sorted(json.loads(response.data).get("tags") or [])

    def consistency_problems(self) -> list[str]:
        """Everything declared is recorded, deployed and pushed exactly once, and the records,
        the cluster and the registry agree; no lock, no open task."""
        problems = []
        items = self.state_items()
        records = {sk.rpartition("#FN#")[2]: item["artifact"]["S"] for sk, item in items.items() if "#FN#" in sk}
        workspaces = sorted(sk for sk in items if sk.startswith("WS#") and "#FN#" not in sk)
        if sorted(records) != sorted(FUNCTIONS) or workspaces != [f"WS#{NAMESPACE}"]:
            problems.append(f"state records {sorted(items)}")
        apps = self.spinapps()
        if sorted(apps) != sorted(FUNCTIONS):
            problems.append(f"SpinApps {sorted(apps)}, want {sorted(FUNCTIONS)}")
        for name, artifact in records.items():
            image = apps.get(name, {}).get("spec", {}).get("image")
            if image != artifact:
                problems.append(f"{name}: the cluster runs {image}, the state records {artifact}")
            tags = self.registry_tags(f"faasops/shop/{NAMESPACE}/{name}")
            if len(tags) != 1:
                problems.append(f"{name}: registry tags {tags}, want one")
        if self.lock_item() is not None:
            problems.append(f"the lock is still held: {self.lock_item()}")
        open_tasks = [t for t in self.tasks() if t["status"]["S"] in ("pending", "running")]
        if open_tasks:
            problems.append(f"open tasks: {[(t['kind']['S'], t.get('function', {}).get('S')) for t in open_tasks]}")
        return problems


def start_faulty_cloud(moto: MotoServer, workdir: Path, unavailable: Callable[[str], None]) -> FaultyCloud:
    token = moto.client("ecr", REGION).get_authorization_token()["authorizationData"][0]["authorizationToken"]
    password = base64.b64decode(token).decode().partition(":")[2]
    try:
        registry = OciRegistry({"AWS": password})
    except RegistryUnavailable as exc:
        unavailable(str(exc))
        raise
    kube = KubeEmulator(port=0).start()
    return FaultyCloud(moto, registry, kube, password, workdir)
