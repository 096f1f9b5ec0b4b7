"""The kubernetes deployer against the API emulator, checked with real kubectl."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from faasops.diff import live_fingerprint, manifest_drift
from faasops.errors import ProviderError
from faasops.model import Project
from faasops.plugins.kubernetes import KubernetesDeployer
from testkit.kubeapi import KubeEmulator

from kube_deployer_support import ARTIFACT, OTHER_ARTIFACT, KubectlRunner, kubectl_json, only_function, render

MANAGED = {"app.kubernetes.io/managed-by": "faasops"}


def deployed(project: Project, deployer: KubernetesDeployer, artifact: str = ARTIFACT) -> list[dict]:
    """Ensure every workspace and deploy every function of ``project``; the last manifests."""
    manifests: list[dict] = []
    for workspace in project.workspaces:
        deployer.ensure_workspace(project, workspace)
        for function in workspace.functions:
            manifests = render(project, function, artifact)
            deployer.deploy(project, function, manifests)
    return manifests


def autoscaled(make_project: Callable[..., Project], autoscaling: dict | None) -> Project:
    function = {"name": "hello", "source": "functions/hello"}
    if autoscaling is not None:
        function["autoscaling"] = autoscaling
        function["resources"] = {"requests": {"cpu": "100m"}}  # a cpu target needs a cpu request
    return make_project([{"name": "demo", "functions": [function]}])


@pytest.fixture()
def shared(make_project: Callable[..., Project]) -> Project:
    """Two workspaces in one namespace."""
    return make_project("""\
        - name: alpha
          namespace: shared
          functions: [{name: one, source: functions/hello}]
        - name: beta
          namespace: shared
          functions: [{name: two, source: functions/hello}]
        """)


# ------------------------------------------------------------------------------------ namespaces


def test_ensure_workspace_creates_the_namespace_labelled_as_faasops(
        make_project: Callable[..., Project], deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    project = make_project("""\
        - name: demo
          namespace: demo-ns
          labels: {team: payments}
        """)
    deployer.ensure_workspace(project, project.workspaces[0])
    deployer.ensure_workspace(project, project.workspaces[0])  # idempotent

    namespace = kubectl_json(kubectl, "namespace", "demo-ns")
    assert namespace["metadata"]["labels"] == {
        **MANAGED, "workspace_id": "demo", "team": "payments", "kubernetes.io/metadata.name": "demo-ns",
    }
    namespace = kubectl_json(kubectl, "namespace", "demo-ns", "--show-managed-fields")
    assert {(e["manager"], e["operation"]) for e in namespace["metadata"]["managedFields"]} >= {("faasops", "Apply")}


def test_delete_workspace_deletes_a_namespace_faasops_created(
        hello: Project, deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    deployed(hello, deployer)
    deployer.delete_workspace(hello, "demo", "demo")
    assert kubectl("get", "namespace", "demo", check=False).returncode == 1
    deployer.delete_workspace(hello, "demo", "demo")  # already gone: fine


def test_delete_workspace_keeps_a_namespace_faasops_did_not_create(
        hello: Project, deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    kubectl("create", "namespace", "demo")
    deployer.ensure_workspace(hello, hello.workspaces[0])
    labels = kubectl_json(kubectl, "namespace", "demo")["metadata"]["labels"]
    assert labels.get("workspace_id") == "demo"
    assert "app.kubernetes.io/managed-by" not in labels  # not claimed

    deployer.delete_workspace(hello, "demo", "demo")

    labels = kubectl_json(kubectl, "namespace", "demo")["metadata"]["labels"]
    assert labels == {"kubernetes.io/metadata.name": "demo"}  # kept, and faasops' label given up


def test_delete_workspace_keeps_a_namespace_labelled_by_someone_else(
        hello: Project, deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    kubectl("create", "namespace", "demo")
    kubectl("label", "namespace", "demo", "app.kubernetes.io/managed-by=helm")
    deployer.delete_workspace(hello, "demo", "demo")
    assert kubectl_json(kubectl, "namespace", "demo")["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "helm"


def test_delete_workspace_keeps_a_namespace_another_workspace_still_uses(
        shared: Project, deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    project = shared
    deployed(project, deployer)
    deployer.undeploy(project, "alpha", "shared", "one")

    deployer.delete_workspace(project, "alpha", "shared")
    assert [s["metadata"]["name"] for s in kubectl_json(kubectl, "spinapps", "-n", "shared")["items"]] == ["two"]

    deployer.undeploy(project, "beta", "shared", "two")
    deployer.delete_workspace(project, "beta", "shared")
    assert kubectl("get", "namespace", "shared", check=False).returncode == 1


# ------------------------------------------------------------------------------------ deploy


def test_deploy_creates_the_spinapp_by_server_side_apply(
        hello: Project, deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    manifests = deployed(hello, deployer)

    listed = kubectl_json(kubectl, "spinapps", "-l", "function_id=demo.hello", "-n", "demo", "--show-managed-fields")
    (spinapp,) = listed["items"]
    assert spinapp["spec"] == manifests[0]["spec"]
    assert spinapp["spec"]["image"] == ARTIFACT and spinapp["spec"]["replicas"] == 1
    assert spinapp["metadata"]["labels"] == manifests[0]["metadata"]["labels"]
    assert [(e["manager"], e["operation"]) for e in spinapp["metadata"]["managedFields"]] == [("faasops", "Apply")]
    assert deployer.calls["PATCH spinapps"] == 1


def test_redeploying_unchanged_manifests_leaves_the_object_untouched(
        hello: Project, deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    manifests = deployed(hello, deployer)
    before = kubectl_json(kubectl, "spinapp", "hello", "-n", "demo")

    deployer.deploy(hello, only_function(hello), manifests)

    after = kubectl_json(kubectl, "spinapp", "hello", "-n", "demo")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["metadata"]["generation"] == before["metadata"]["generation"]


def test_deploying_a_new_image_updates_the_spinapp(
        hello: Project, deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    deployed(hello, deployer)
    deployed(hello, deployer, OTHER_ARTIFACT)
    spinapp = kubectl_json(kubectl, "spinapp", "hello", "-n", "demo")
    assert spinapp["spec"]["image"] == OTHER_ARTIFACT
    assert spinapp["metadata"]["generation"] == 2


def test_observe_returns_the_deployed_manifests_without_drift(hello: Project, deployer: KubernetesDeployer) -> None:
    manifests = deployed(hello, deployer)

    live = deployer.observe(hello, hello.workspaces)

    assert list(live) == ["demo/hello"]
    (spinapp,) = live["demo/hello"].manifests
    assert "status" not in spinapp
    assert not {"managedFields", "resourceVersion", "uid", "creationTimestamp", "generation"} & set(spinapp["metadata"])
    assert manifest_drift(manifests, live["demo/hello"].manifests) == []


def test_a_kubectl_patch_is_drift_that_force_conflicts_takes_back(
        hello: Project, make_deployer: Callable[..., KubernetesDeployer], kubectl: KubectlRunner) -> None:
    deployer = make_deployer()
    manifests = deployed(hello, deployer)
    # spin-operator's webhook admits only an executor of the namespace.
    kubectl("apply", "--server-side", "-f", "-", input="""\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata: {name: other, namespace: demo}
spec: {createDeployment: true, deploymentConfig: {runtimeClassName: other-runtime}}
""")
    kubectl("patch", "spinapp", "hello", "-n", "demo", "--type", "merge", "-p", '{"spec":{"executor":"other"}}')

    drift = manifest_drift(manifests, deployer.observe(hello, hello.workspaces)["demo/hello"].manifests)
    assert drift == ["SpinApp hello: spec.executor is 'other', want 'containerd-shim-spin'"]

    with pytest.raises(ProviderError) as refused:
        deployer.deploy(hello, only_function(hello), manifests)
    message = str(refused.value)
    assert "\n" not in message
    assert "SpinApp demo/hello" in message and "kubectl-patch owns .spec.executor" in message
    assert "force_conflicts: true" in message and "--force-conflicts" in message
    assert kubectl_json(kubectl, "spinapp", "hello", "-n", "demo")["spec"]["executor"] == "other"

    make_deployer(force_conflicts=True).deploy(hello, only_function(hello), manifests)

    assert kubectl_json(kubectl, "spinapp", "hello", "-n", "demo")["spec"]["executor"] == "containerd-shim-spin"
    assert manifest_drift(manifests, deployer.observe(hello, hello.workspaces)["demo/hello"].manifests) == []


@pytest.mark.parametrize("autoscaling", [None, {"type": "hpa", "min": 1, "max": 3, "cpu": 80},
                                         {"type": "keda", "min": 1, "max": 3, "cpu": 60}],
                         ids=["replicas", "hpa", "keda"])
def test_deploy_answers_the_objects_as_observe_then_finds_them(
        make_project: Callable[..., Project], deployer: KubernetesDeployer, kubectl: KubectlRunner,
        autoscaling: dict | None) -> None:
    # A plan skips rendering a function whose live objects fingerprint as its deploy did; that
    # only holds if deploy's answer and observe's view are the same objects, stripped the same.
    project = autoscaled(make_project, autoscaling)
    deployer.ensure_workspace(project, project.workspaces[0])
    function = only_function(project)

    answered = deployer.deploy(project, function, render(project, function))
    observed = deployer.observe(project, project.workspaces)["demo/hello"]

    assert [m["kind"] for m in answered] == [m["kind"] for m in observed.manifests]
    assert observed.fingerprint == live_fingerprint(answered)
    kubectl("label", "spinapp", "hello", "-n", "demo", "team=other")
    relabelled = deployer.observe(project, project.workspaces)["demo/hello"]
    assert relabelled.fingerprint != live_fingerprint(answered)


def test_a_spinapp_deleted_with_kubectl_is_missing_from_observe(
        hello: Project, deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    manifests = deployed(hello, deployer)
    kubectl("delete", "spinapp", "hello", "-n", "demo")

    live = deployer.observe(hello, hello.workspaces)

    assert live == {}
    assert manifest_drift(manifests, ()) == ["SpinApp hello is missing from the cluster"]


def test_deploy_into_a_missing_namespace_says_so(hello: Project, deployer: KubernetesDeployer) -> None:
    # The executor goes first, so it is what meets the missing namespace.
    with pytest.raises(ProviderError, match=r"^SpinAppExecutor demo/containerd-shim-spin: namespace demo does not exist "
                                            r"\(apply its workspace first\)$"):
        deployer.deploy(hello, only_function(hello), render(hello, only_function(hello)))


# ------------------------------------------------------------------------------------ autoscaling


def test_hpa_autoscaling_creates_the_hpa_and_leaves_replicas_to_it(
        make_project: Callable[..., Project], deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    project = autoscaled(make_project, {"type": "hpa", "min": 2, "max": 5, "cpu": 70})
    manifests = deployed(project, deployer)

    spinapp = kubectl_json(kubectl, "spinapp", "hello", "-n", "demo")
    assert spinapp["spec"]["enableAutoscaling"] is True
    assert "replicas" not in spinapp["spec"]
    (hpa,) = kubectl_json(kubectl, "hpa", "-l", "function_id=demo.hello", "-n", "demo")["items"]
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 5
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello"}

    live = deployer.observe(project, project.workspaces)["demo/hello"].manifests
    assert [m["kind"] for m in live] == ["SpinApp", "HorizontalPodAutoscaler"]
    assert manifest_drift(manifests, live) == []


def test_turning_autoscaling_on_drops_the_replicas_faasops_set(
        make_project: Callable[..., Project], deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    deployed(autoscaled(make_project, None), deployer)
    assert kubectl_json(kubectl, "spinapp", "hello", "-n", "demo")["spec"]["replicas"] == 1

    deployed(autoscaled(make_project, {"type": "hpa", "min": 1, "max": 3, "cpu": 80}), deployer)

    spec = kubectl_json(kubectl, "spinapp", "hello", "-n", "demo")["spec"]
    assert spec["enableAutoscaling"] is True and "replicas" not in spec


def test_turning_autoscaling_on_while_kubectl_owns_replicas_says_how_to_clear_them(
        make_project: Callable[..., Project], deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    deployed(autoscaled(make_project, None), deployer)
    kubectl("patch", "spinapp", "hello", "-n", "demo", "--type", "merge", "-p", '{"spec":{"replicas":3}}')

    with pytest.raises(ProviderError) as refused:
        deployed(autoscaled(make_project, {"type": "hpa", "min": 1, "max": 3, "cpu": 80}), deployer)

    message = str(refused.value)
    assert message.startswith("SpinApp demo/hello was rejected (422): admission webhook")
    assert message.endswith("""another field manager still sets spec.replicas: remove it with `kubectl patch spinapp hello """
                            """-n demo --type json -p '[{"op":"remove","path":"/spec/replicas"}]'`""")


def test_replicas_an_autoscaler_writes_on_the_spinapp_are_not_drift(
        make_project: Callable[..., Project], tmp_path) -> None:
    # A cluster whose spin-operator runs without its validating webhook lets the replica count
    # land on the SpinApp itself.
    with KubeEmulator(port=0, spin_operator_webhook=False) as cluster:
        deployer = KubernetesDeployer({"kubeconfig": str(cluster.write_kubeconfig(tmp_path / "config"))})
        project = autoscaled(make_project, {"type": "hpa", "min": 1, "max": 5, "cpu": 80})
        manifests = deployed(project, deployer)
        KubernetesDeployer({"kubeconfig": str(tmp_path / "config"), "field_manager": "hpa-controller"})._apply({
            "apiVersion": "core.spinkube.dev/v1alpha1", "kind": "SpinApp",
            "metadata": {"name": "hello", "namespace": "demo"}, "spec": {"replicas": 4},
        })

        live = deployer.observe(project, project.workspaces)["demo/hello"].manifests

        assert "replicas" not in live[0]["spec"]  # the autoscaler's, not faasops'
        assert manifest_drift(manifests, live) == []
        deployer.deploy(project, only_function(project), manifests)  # and no conflict over it


def test_switching_from_hpa_to_keda_deletes_the_hpa(
        make_project: Callable[..., Project], deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    deployed(autoscaled(make_project, {"type": "hpa", "min": 1, "max": 3, "cpu": 80}), deployer)
    project = autoscaled(make_project, {"type": "keda", "min": 1, "max": 3, "cpu": 60})

    manifests = deployed(project, deployer)

    assert kubectl_json(kubectl, "hpa", "-n", "demo")["items"] == []
    (scaled,) = kubectl_json(kubectl, "scaledobjects", "-n", "demo")["items"]
    assert scaled["spec"]["maxReplicaCount"] == 3
    live = deployer.observe(project, project.workspaces)["demo/hello"].manifests
    assert [m["kind"] for m in live] == ["SpinApp", "ScaledObject"]
    assert manifest_drift(manifests, live) == []


def test_turning_autoscaling_off_deletes_the_autoscaler_but_not_kedas_own_hpa(
        make_project: Callable[..., Project], deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    deployed(autoscaled(make_project, {"type": "keda", "min": 1, "max": 3, "cpu": 80}), deployer)
    scaled = kubectl_json(kubectl, "scaledobject", "hello", "-n", "demo")
    # KEDA creates an HPA carrying the ScaledObject's labels and owned by it.
    kubectl("apply", "--server-side", "--field-manager", "keda-operator", "-f", "-", input=f"""\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: keda-hpa-hello
  namespace: demo
  labels: {{function_id: demo.hello, workspace_id: demo, app.kubernetes.io/managed-by: faasops}}
  ownerReferences:
    - {{apiVersion: keda.sh/v1alpha1, kind: ScaledObject, name: hello, uid: {scaled['metadata']['uid']}, controller: true}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: hello}}
  maxReplicas: 3
""")
    live = deployer.observe(autoscaled(make_project, None), ["demo"])["demo/hello"].manifests
    assert [m["kind"] for m in live] == ["SpinApp", "ScaledObject"]  # KEDA's HPA is KEDA's

    deployed(autoscaled(make_project, None), deployer)

    assert kubectl_json(kubectl, "scaledobjects", "-n", "demo")["items"] == []
    assert [h["metadata"]["name"] for h in kubectl_json(kubectl, "hpa", "-n", "demo")["items"]] == ["keda-hpa-hello"]
    assert kubectl_json(kubectl, "spinapp", "hello", "-n", "demo")["spec"]["replicas"] == 1


# ------------------------------------------------------------------------------------ undeploy


def test_undeploy_removes_the_spinapp_and_its_autoscalers_only(
        make_project: Callable[..., Project], deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    project = make_project("""\
        - name: demo
          functions:
            - {name: hello, source: functions/hello, autoscaling: {type: hpa, min: 1, max: 3, cpu: 80}, resources: {requests: {cpu: 100m}}}
            - {name: other, source: functions/hello, autoscaling: {type: keda, min: 1, max: 3, cpu: 80}, resources: {requests: {cpu: 100m}}}
        """)
    deployed(project, deployer)

    deployer.undeploy(project, "demo", "demo", "hello")
    deployer.undeploy(project, "demo", "demo", "hello")  # already gone: fine

    for kind in ("spinapps", "hpa", "scaledobjects"):
        assert kubectl_json(kubectl, kind, "-l", "function_id=demo.hello", "-n", "demo")["items"] == []
    assert [s["metadata"]["name"] for s in kubectl_json(kubectl, "spinapps", "-n", "demo")["items"]] == ["other"]
    assert len(kubectl_json(kubectl, "scaledobjects", "-l", "function_id=demo.other", "-n", "demo")["items"]) == 1
    assert list(deployer.observe(project, project.workspaces)) == ["demo/other"]


# ------------------------------------------------------------------------------------ observe


def test_observe_keeps_to_faasops_objects_of_the_asked_workspaces(
        shared: Project, deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    project = shared
    deployed(project, deployer)
    kubectl("apply", "--server-side", "-f", "-", input="""\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata: {name: handmade, namespace: shared, labels: {function_id: alpha.handmade, workspace_id: alpha}}
spec: {executor: containerd-shim-spin, image: reg.local/x:1, replicas: 1}
""")
    deployer.calls.clear()

    assert list(deployer.observe(project, project.workspaces)) == ["alpha/one", "beta/two"]
    assert list(deployer.observe(project, ["beta"])) == ["beta/two"]
    assert deployer.calls == {"LIST spinapps": 2, "LIST horizontalpodautoscalers": 2, "LIST scaledobjects": 2}


def test_observe_of_a_missing_namespace_is_nothing_live(hello: Project, deployer: KubernetesDeployer) -> None:
    assert deployer.observe(hello, hello.workspaces) == {}


def test_observe_counts_one_list_per_namespace_and_kind_whatever_the_number_of_functions(
        make_project: Callable[..., Project], make_deployer: Callable[..., KubernetesDeployer], kube: KubeEmulator) -> None:
    def project_with(functions_per_namespace: int) -> Project:
        return make_project([
            {"name": f"ws{n}", "functions": [
                {"name": f"fn{i}", "source": "functions/hello",
                 **({"autoscaling": {"type": "hpa", "max": 3, "cpu": 80},
                     "resources": {"requests": {"cpu": "100m"}}} if i % 2 else {})}
                for i in range(functions_per_namespace)]}
            for n in range(3)
        ])

    expected = {"list spinapps.core.spinkube.dev": 3, "list horizontalpodautoscalers.autoscaling": 3,
                "list scaledobjects.keda.sh": 3}
    for size in (50, 5):
        kube.reset()
        project = project_with(size)
        deployer = make_deployer()  # one per run, as faasops makes it: it remembers the executors it made
        deployed(project, deployer)
        kube.reset_stats()

        live = deployer.observe(project, project.workspaces)

        assert len(live) == 3 * size
        assert kube.stats()["requests"] == expected, size
        assert sum(len(v.manifests) for v in live.values()) == 3 * (size + size // 2)


# ------------------------------------------------------------------------------------ wait


def test_deploy_with_wait_returns_once_the_spinapp_is_ready(
        hello: Project, make_deployer: Callable[..., KubernetesDeployer], kube: KubeEmulator) -> None:
    deployer = make_deployer(wait=True, wait_timeout_seconds=10)
    deployer.ensure_workspace(hello, hello.workspaces[0])

    def operator() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                kube.mark_spinapp_ready("demo", "hello")
                return
            except Exception:  # not created yet
                time.sleep(0.02)

    thread = threading.Thread(target=operator)
    thread.start()
    started = time.monotonic()
    deployer.deploy(hello, only_function(hello), render(hello, only_function(hello)))
    thread.join()

    assert time.monotonic() - started < 5
    assert deployer.calls["GET spinapps"] >= 1


def test_deploy_with_wait_times_out_with_a_clear_error(
        hello: Project, make_deployer: Callable[..., KubernetesDeployer]) -> None:
    deployer = make_deployer(wait=True, wait_timeout_seconds=0.3)
    deployer.ensure_workspace(hello, hello.workspaces[0])

    started = time.monotonic()
    with pytest.raises(ProviderError) as timed_out:
        deployer.deploy(hello, only_function(hello), render(hello, only_function(hello)))

    assert 0.3 <= time.monotonic() - started < 3
    assert str(timed_out.value).startswith("SpinApp demo/hello is not ready after 0.3s (0/1 replicas ready)")


def test_wait_counts_ready_replicas_against_the_desired_count(
        make_project: Callable[..., Project], make_deployer: Callable[..., KubernetesDeployer],
        kube: KubeEmulator) -> None:
    project = make_project("""\
        - name: demo
          functions: [{name: hello, source: functions/hello, replicas: 3}]
        """)
    deployed(project, make_deployer())
    kube.mark_spinapp_ready("demo", "hello", ready_replicas=2)
    waiting = make_deployer(wait=True, wait_timeout_seconds=0.2)
    with pytest.raises(ProviderError, match=r"2/3 replicas ready, Available=True"):
        waiting.deploy(project, only_function(project), render(project, only_function(project)))

    kube.mark_spinapp_ready("demo", "hello", ready_replicas=3)
    waiting.deploy(project, only_function(project), render(project, only_function(project)))


def test_wait_accepts_an_autoscaled_spinapp_held_at_zero_replicas_once_available(
        make_project: Callable[..., Project], make_deployer: Callable[..., KubernetesDeployer],
        kube: KubeEmulator) -> None:
    project = autoscaled(make_project, {"type": "keda", "min": 1, "max": 3, "cpu": 80})
    deployed(project, make_deployer())
    kube.mark_spinapp_ready("demo", "hello", ready_replicas=0)  # Available=True, scaled to zero

    make_deployer(wait=True, wait_timeout_seconds=2).deploy(project, only_function(project), render(project, only_function(project)))


def test_observe_lists_namespaces_concurrently_with_the_same_result(
        make_project: Callable[..., Project], make_deployer: Callable[..., KubernetesDeployer]) -> None:
    project = make_project([{"name": f"team-{i}", "functions": [{"name": f"fn-{j}", "source": "functions/hello"}
                                                               for j in range(3)]} for i in range(5)])
    deployed(project, make_deployer())
    one_at_a_time = make_deployer(observe_concurrency=1)
    concurrent = make_deployer(observe_concurrency=4)

    serial_view = one_at_a_time.observe(project, project.workspaces)
    concurrent_view = concurrent.observe(project, project.workspaces)

    assert list(concurrent_view) == [f"team-{i}/fn-{j}" for i in range(5) for j in range(3)]
    assert concurrent_view == serial_view
    assert concurrent.calls == one_at_a_time.calls == {"LIST spinapps": 5, "LIST horizontalpodautoscalers": 5,
                                                       "LIST scaledobjects": 5}


@pytest.mark.parametrize("value", [0, 65, "4", 2.5, True])
def test_observe_concurrency_must_be_a_small_whole_number(value: object) -> None:
    with pytest.raises(ProviderError, match="providers.deployer.observe_concurrency must be a whole number from 1 to 64"):
        KubernetesDeployer({"observe_concurrency": value})
