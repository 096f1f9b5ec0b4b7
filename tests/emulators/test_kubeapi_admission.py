"""The emulator enforces spin-operator's and KEDA's validating webhooks, answering as the API
server answers a webhook's denial; checked with real kubectl (and the raw Status over HTTP)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from testkit.kubeapi import KubeEmulator

from .conftest import KubectlRunner

EXECUTOR = """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata: {{name: {name}, namespace: {namespace}}}
spec: {{createDeployment: true, deploymentConfig: {{runtimeClassName: wasmtime-spin-v2}}}}
"""


def spinapp(namespace: str, spec: str, name: str = "hello") -> str:
    return f"""\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata: {{name: {name}, namespace: {namespace}}}
spec: {spec}
"""


def scaled_object(namespace: str, triggers: str = "[{type: cpu, metricType: Utilization, metadata: {value: '60'}}]",
                  min_replicas: int = 1) -> str:
    return f"""\
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {{name: hello, namespace: {namespace}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: hello}}
  minReplicaCount: {min_replicas}
  maxReplicaCount: 3
  triggers: {triggers}
"""


@pytest.fixture()
def bare_ns(kubectl: KubectlRunner) -> Iterator[str]:
    """A namespace with nothing in it: no executor."""
    name = f"a-{uuid.uuid4().hex[:10]}"
    kubectl("create", "namespace", name)
    yield name
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def apply(kubectl: KubectlRunner, manifest: str, *flags: str) -> Any:
    return kubectl("apply", "--server-side", *flags, "-f", "-", input=manifest, check=False)


def raw_apply(emulator: KubeEmulator, path: str, manifest: str) -> tuple[int, dict[str, Any]]:
    """A server-side apply over plain HTTP: the status code and the Status body."""
    request = urllib.request.Request(f"{emulator.url}{path}?fieldManager=test", data=manifest.encode(), method="PATCH",
                                     headers={"Content-Type": "application/apply-patch+yaml"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def with_executor_and_deployment(kubectl: KubectlRunner, namespace: str, spec: str) -> None:
    """The executor, the SpinApp, and — once the emulated spin-operator made it — its Deployment."""
    assert apply(kubectl, EXECUTOR.format(name="containerd-shim-spin", namespace=namespace)).returncode == 0
    assert apply(kubectl, spinapp(namespace, spec)).returncode == 0
    kubectl("wait", "--for=create", "deployment/hello", "-n", namespace, "--timeout=30s")


# ------------------------------------------------------------------------------------ spin-operator


def test_a_spinapp_whose_executor_is_not_in_its_namespace_is_refused(kubectl: KubectlRunner, bare_ns: str) -> None:
    other = f"{bare_ns}-x"
    kubectl("create", "namespace", other)
    try:
        apply(kubectl, EXECUTOR.format(name="containerd-shim-spin", namespace=other))  # elsewhere: no help

        result = apply(kubectl, spinapp(bare_ns, "{executor: containerd-shim-spin, image: reg.local/h:1, replicas: 1}"))

        assert result.returncode == 1
        assert 'The SpinApp "hello" is invalid: spec.executor: Invalid value: "containerd-shim-spin": ' \
               "executor does not exist in namespace" in result.stderr
    finally:
        kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_the_denial_is_the_webhooks_invalid_status_prefixed_as_the_api_server_does(
        kube_emulator: KubeEmulator, bare_ns: str) -> None:
    code, status = raw_apply(kube_emulator, f"/apis/core.spinkube.dev/v1alpha1/namespaces/{bare_ns}/spinapps/hello",
                             spinapp(bare_ns, "{executor: containerd-shim-spin, image: reg.local/h:1, replicas: 0}"))

    assert code == 422 and status["code"] == 422
    assert status["reason"] == "Invalid" and status["status"] == "Failure"
    assert status["message"] == (
        'admission webhook "vspinapp.kb.io" denied the request: SpinApp.core.spinkube.dev "hello" is invalid: '
        '[spec.executor: Invalid value: "containerd-shim-spin": executor does not exist in namespace, '
        "spec.replicas: Invalid value: 0: replicas must be > 0]"
    )
    assert status["details"] == {"name": "hello", "group": "core.spinkube.dev", "kind": "SpinApp", "causes": [
        {"reason": "FieldValueInvalid", "message": 'Invalid value: "containerd-shim-spin": executor does not exist in namespace',
         "field": "spec.executor"},
        {"reason": "FieldValueInvalid", "message": "Invalid value: 0: replicas must be > 0", "field": "spec.replicas"}]}


@pytest.mark.parametrize(("spec", "problem"), [
    ("{executor: containerd-shim-spin, image: reg.local/h:1, replicas: 0}",
     "spec.replicas: Invalid value: 0: replicas must be > 0"),
    ("{executor: containerd-shim-spin, image: reg.local/h:1}",  # unset is 0 to the operator's int32
     "spec.replicas: Invalid value: 0: replicas must be > 0"),
    ("{executor: containerd-shim-spin, image: reg.local/h:1, replicas: 2, enableAutoscaling: true}",
     "spec.replicas: Invalid value: 2: replicas cannot be set when autoscaling is enabled"),
    ("{executor: containerd-shim-spin, replicas: 1}", "spec.image: Required value"),
], ids=["replicas-zero", "replicas-unset", "replicas-with-autoscaling", "no-image"])
def test_spinapp_rules_of_spin_operator_and_its_crd(kubectl: KubectlRunner, bare_ns: str, spec: str, problem: str) -> None:
    apply(kubectl, EXECUTOR.format(name="containerd-shim-spin", namespace=bare_ns))

    result = apply(kubectl, spinapp(bare_ns, spec))

    assert result.returncode == 1 and problem in result.stderr, result.stderr


def test_an_autoscaled_spinapp_without_replicas_is_admitted(kubectl: KubectlRunner, bare_ns: str) -> None:
    apply(kubectl, EXECUTOR.format(name="containerd-shim-spin", namespace=bare_ns))

    result = apply(kubectl, spinapp(bare_ns, "{executor: containerd-shim-spin, image: reg.local/h:1, enableAutoscaling: true}"))

    assert result.returncode == 0, result.stderr


# ------------------------------------------------------------------------------------ spin-operator's Deployment


def test_the_operator_creates_the_deployment_with_the_spinapps_resources_and_deletes_it_with_the_spinapp(
        kubectl: KubectlRunner, bare_ns: str) -> None:
    with_executor_and_deployment(kubectl, bare_ns, "{executor: containerd-shim-spin, image: reg.local/h:1, replicas: 2, "
                                                   "resources: {requests: {cpu: 100m}, limits: {memory: 64Mi}}}")

    deployment = json.loads(kubectl("get", "deployment", "hello", "-n", bare_ns, "-o", "json").stdout)
    pod = deployment["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "wasmtime-spin-v2" and deployment["spec"]["replicas"] == 2
    assert pod["containers"][0]["name"] == "hello" and pod["containers"][0]["image"] == "reg.local/h:1"
    assert pod["containers"][0]["resources"] == {"requests": {"cpu": "100m"}, "limits": {"memory": "64Mi"}}
    (owner,) = deployment["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("SpinApp", "hello", True)

    kubectl("delete", "spinapp", "hello", "-n", bare_ns)

    assert kubectl("get", "deployment", "hello", "-n", bare_ns, check=False).returncode == 1


# ------------------------------------------------------------------------------------ KEDA


def test_a_scaled_object_whose_deployment_is_missing_is_refused_with_the_get_not_found(
        kubectl: KubectlRunner, bare_ns: str) -> None:
    result = apply(kubectl, scaled_object(bare_ns))

    assert result.returncode == 1
    assert 'Error from server (NotFound): admission webhook "vscaledobject.kb.io" denied the request: ' \
           'deployments.apps "hello" not found' in result.stderr, result.stderr


def test_kedas_checks_are_skipped_on_a_dry_run_as_keda_does(kubectl: KubectlRunner, bare_ns: str) -> None:
    result = apply(kubectl, scaled_object(bare_ns), "--dry-run=server")

    assert result.returncode == 0, result.stderr


def test_a_cpu_trigger_needs_a_cpu_request_on_the_targets_containers(kubectl: KubectlRunner, bare_ns: str) -> None:
    with_executor_and_deployment(kubectl, bare_ns, "{executor: containerd-shim-spin, image: reg.local/h:1, replicas: 1, "
                                                   "resources: {requests: {memory: 64Mi}}}")

    cpu = apply(kubectl, scaled_object(bare_ns))
    memory = apply(kubectl, scaled_object(bare_ns, "[{type: memory, metricType: Utilization, metadata: {value: '60'}}]"))

    assert cpu.returncode == 1
    assert 'Error from server (Forbidden): admission webhook "vscaledobject.kb.io" denied the request: the scaledobject ' \
           "has a cpu trigger but the container hello doesn't have the cpu request defined" in cpu.stderr, cpu.stderr
    assert memory.returncode == 0, memory.stderr


def test_a_limit_range_default_satisfies_kedas_resource_check(kubectl: KubectlRunner, bare_ns: str) -> None:
    with_executor_and_deployment(kubectl, bare_ns, "{executor: containerd-shim-spin, image: reg.local/h:1, replicas: 1}")
    kubectl("apply", "-f", "-", input=f"""\
apiVersion: v1
kind: LimitRange
metadata: {{name: defaults, namespace: {bare_ns}}}
spec: {{limits: [{{type: Container, defaultRequest: {{cpu: 50m}}}}]}}
""")

    assert apply(kubectl, scaled_object(bare_ns)).returncode == 0


def test_only_cpu_memory_triggers_with_min_zero_are_refused(kubectl: KubectlRunner, bare_ns: str) -> None:
    with_executor_and_deployment(kubectl, bare_ns, "{executor: containerd-shim-spin, image: reg.local/h:1, replicas: 1, "
                                                   "resources: {requests: {cpu: 100m}}}")

    result = apply(kubectl, scaled_object(bare_ns, min_replicas=0))

    assert result.returncode == 1
    assert "scaledobject has only cpu/memory triggers AND minReplica is 0 (scale to zero doesn't work in this case)" \
        in result.stderr


def test_an_hpa_whose_target_is_missing_is_accepted_as_by_the_hpa_api(kubectl: KubectlRunner, bare_ns: str) -> None:
    result = apply(kubectl, f"""\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: hello, namespace: {bare_ns}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: hello}}
  maxReplicas: 3
  metrics: [{{type: Resource, resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 60}}}}}}]
""")

    assert result.returncode == 0, result.stderr


def test_the_webhooks_can_be_turned_off_per_emulator() -> None:
    with KubeEmulator(port=0, spin_operator_webhook=False, keda_webhook=False, spin_operator=False) as emulator:
        code, _ = raw_apply(emulator, "/apis/core.spinkube.dev/v1alpha1/namespaces/default/spinapps/hello",
                            spinapp("default", "{executor: nowhere, image: reg.local/h:1}"))
        so_code, _ = raw_apply(emulator, "/apis/keda.sh/v1alpha1/namespaces/default/scaledobjects/hello",
                               scaled_object("default"))

    assert (code, so_code) == (201, 201)
