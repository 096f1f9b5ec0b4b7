"""The emulator's Terminating namespaces, as real kubectl and the python client see them: a
deleted namespace stays Terminating for a while, its contents go first, new content is
refused with the API server's 403, a second delete is a 409, then it is gone."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from testkit.kubeapi import KubeEmulator
from testkit.kubectl import KubectlRunner, kubectl_runner

TERMINATION_S = 1.5

SPINAPP = """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata: {name: late, namespace: doomed}
spec: {executor: containerd-shim-spin, image: reg.local/hello:1, replicas: 1}
"""


@pytest.fixture(scope="module")
def terminating_kube() -> Iterator[KubeEmulator]:
    with KubeEmulator(port=0, namespace_termination=TERMINATION_S) as emulator:
        yield emulator


@pytest.fixture()
def kubectl(terminating_kube: KubeEmulator, tmp_path: Path) -> KubectlRunner:
    terminating_kube.reset()
    return kubectl_runner(terminating_kube.write_kubeconfig(tmp_path / "kubeconfig"), tmp_path)


def test_kubectl_sees_a_deleted_namespace_terminating_refusing_content_then_gone(kubectl: KubectlRunner) -> None:
    kubectl("create", "namespace", "doomed")
    kubectl("-n", "doomed", "create", "configmap", "settings", "--from-literal=a=b")

    deleted = kubectl("delete", "namespace", "doomed", "--wait=false")

    assert deleted.stdout.strip() == 'namespace "doomed" deleted'
    row = kubectl("get", "namespace", "doomed", "--no-headers").stdout.split()
    assert row[:2] == ["doomed", "Terminating"]
    namespace = json.loads(kubectl("get", "namespace", "doomed", "-o", "json").stdout)
    assert namespace["status"]["phase"] == "Terminating"
    assert namespace["metadata"]["deletionTimestamp"]
    assert namespace["spec"]["finalizers"] == ["kubernetes"]
    # The namespace controller deletes the contents first.
    assert "No resources found" in kubectl("-n", "doomed", "get", "configmaps").stderr

    refused = kubectl("-n", "doomed", "create", "configmap", "late", "--from-literal=a=b", check=False)
    assert refused.returncode == 1
    assert ('configmaps "late" is forbidden: unable to create new content in namespace doomed because it is '
            "being terminated") in refused.stderr
    applied = kubectl("apply", "--server-side", "-f", "-", input=SPINAPP, check=False)
    assert applied.returncode == 1
    assert ('spinapps.core.spinkube.dev "late" is forbidden: unable to create new content in namespace doomed '
            "because it is being terminated") in applied.stderr
    again = kubectl("delete", "namespace", "doomed", "--wait=false", check=False)
    assert again.returncode == 1
    assert "The system is ensuring all content is removed from this namespace." in again.stderr

    kubectl("wait", "--for=delete", "namespace/doomed", "--timeout=30s")

    missing = kubectl("get", "namespace", "doomed", check=False)
    assert 'namespaces "doomed" not found' in missing.stderr
    assert kubectl("create", "namespace", "doomed").stdout.strip() == "namespace/doomed created"
    assert kubectl("get", "namespace", "doomed", "--no-headers").stdout.split()[1] == "Active"


def test_the_refusal_is_the_api_servers_403_with_a_namespace_terminating_cause(
        terminating_kube: KubeEmulator) -> None:
    terminating_kube.reset()
    configuration = client.Configuration()
    configuration.host = terminating_kube.url
    with client.ApiClient(configuration) as api:
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="doomed")))
        core.delete_namespace("doomed")
        assert core.read_namespace("doomed").status.phase == "Terminating"

        with pytest.raises(client.ApiException) as raised:
            core.create_namespaced_config_map("doomed", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="late")))

    assert raised.value.status == 403
    body = json.loads(raised.value.body)
    assert body["reason"] == "Forbidden"
    assert body["details"]["kind"] == "configmaps"
    assert body["details"]["causes"] == [{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                                         "message": "namespace doomed is being terminated"}]


def test_a_namespace_is_gone_at_once_by_default_and_termination_can_be_switched_on_and_ended() -> None:
    with KubeEmulator(port=0) as emulator:
        configuration = client.Configuration()
        configuration.host = emulator.url
        with client.ApiClient(configuration) as api:
            core = client.CoreV1Api(api)
            for name in ("quick", "slow"):
                core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
            core.delete_namespace("quick")
            with pytest.raises(client.ApiException) as raised:
                core.read_namespace("quick")
            assert raised.value.status == 404

            emulator.set_namespace_termination(600)
            core.delete_namespace("slow")
            assert core.read_namespace("slow").status.phase == "Terminating"
            assert emulator.finish_namespace_termination("slow")
            with pytest.raises(client.ApiException) as raised:
                core.read_namespace("slow")
            assert raised.value.status == 404
            assert not emulator.finish_namespace_termination("slow")
