"""examples/in-cluster-reconcile: the API server (emulator) accepts what it serves, kubectl
builds the kustomization, the RBAC is exactly what faasops apply needs, and the Deployment's
command line is one the real CLI accepts."""

from __future__ import annotations

from pathlib import Path

import yaml

from cli_support import EXAMPLES
from testkit.kubectl import KubectlRunner

EXAMPLE = EXAMPLES / "in-cluster-reconcile"
SERVED_BY_THE_EMULATOR = {"Namespace", "ServiceAccount", "Deployment", "Service"}


def documents() -> list[dict]:
    return [doc for name in ("rbac.yaml", "deployment.yaml") for doc in yaml.safe_load_all((EXAMPLE / name).read_text())]


def one(kind: str) -> dict:
    (found,) = [doc for doc in documents() if doc["kind"] == kind]
    return found


def test_kubectl_builds_the_kustomization_with_every_document(kubectl: KubectlRunner) -> None:
    built = list(yaml.safe_load_all(kubectl("kustomize", str(EXAMPLE)).stdout))

    assert sorted(doc["kind"] for doc in built) == sorted(doc["kind"] for doc in documents())


def test_the_api_server_accepts_the_manifests_it_serves(kubectl: KubectlRunner, tmp_path: Path) -> None:
    served = [doc for doc in documents() if doc["kind"] in SERVED_BY_THE_EMULATOR]
    assert {doc["kind"] for doc in served} == SERVED_BY_THE_EMULATOR
    namespace = [doc for doc in served if doc["kind"] == "Namespace"]
    rest = [doc for doc in served if doc["kind"] != "Namespace"]
    (tmp_path / "namespace.yaml").write_text(yaml.safe_dump_all(namespace))
    (tmp_path / "rest.yaml").write_text(yaml.safe_dump_all(rest))

    kubectl("apply", "--dry-run=server", "-f", str(tmp_path / "namespace.yaml"))
    kubectl("apply", "-f", str(tmp_path / "namespace.yaml"))  # what the others are dry-run into
    accepted = kubectl("apply", "--dry-run=server", "-f", str(tmp_path / "rest.yaml"))

    assert sorted(accepted.stdout.split("\n")) == sorted(["", "serviceaccount/faasops-reconcile created (server dry run)",
                                                          "deployment.apps/faasops-reconcile created (server dry run)",
                                                          "service/faasops-reconcile created (server dry run)"])
    assert kubectl("-n", "faasops-system", "get", "deployment", "faasops-reconcile", check=False).returncode != 0


def test_the_cluster_role_grants_exactly_what_faasops_apply_needs() -> None:
    security = [doc for doc in yaml.safe_load_all((EXAMPLES / "security" / "rbac.yaml").read_text())]
    (apply_role,) = [doc for doc in security if doc["kind"] == "ClusterRole" and doc["metadata"]["name"] == "faasops-apply"]
    role, binding, account = one("ClusterRole"), one("ClusterRoleBinding"), one("ServiceAccount")

    assert role["rules"] == apply_role["rules"]
    assert all("secrets" not in rule["resources"] for rule in role["rules"])
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["metadata"]["name"],
                                    "namespace": account["metadata"]["namespace"]}]
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")


def test_the_deployment_runs_one_reconciler_probed_on_healthz_and_scraped_through_its_service() -> None:
    import click

    from faasops.cli import cli
    from faasops.cli_reconcile import reconcile_command

    deployment, service, account = one("Deployment"), one("Service"), one("ServiceAccount")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]

    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    (port,) = container["ports"]
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == port["containerPort"]
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"] == spec["template"]["metadata"]["labels"]
    # The real CLI parses the container's command line (Kubernetes expands $(GIT_URL) first).
    args = [arg.replace("$(GIT_URL)", "https://git.example/acme/functions.git") for arg in container["args"]]
    assert args[:4] == ["faasops", "-C", "/var/lib/faasops/checkout", "reconcile"]
    assert cli.get_command(click.Context(cli), "reconcile") is reconcile_command
    with reconcile_command.make_context("reconcile", args[4:]) as parsed:
        assert parsed.params["listen"] == f"0.0.0.0:{port['containerPort']}"
        assert parsed.params["url"] == "https://git.example/acme/functions.git"
        assert parsed.params["interval"] == "1m" and parsed.params["branch"] == "main"
