"""What spin-operator's and KEDA's admission webhooks demand of a deploy, against the emulator
(which enforces them, and creates each SpinApp's Deployment as spin-operator does):
the executor a SpinApp names exists in its namespace, and a ScaledObject waits for its
Deployment."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from faasops.errors import ProviderError
from faasops.manifest import load_project
from faasops.model import Project
from faasops.plugins.kubernetes import KubernetesDeployer
from testkit.kubeapi import KubeEmulator

from kube_deployer_support import KubectlRunner, kubectl_json, only_function, render

MANAGED = {"app.kubernetes.io/managed-by": "faasops"}


def deploy_all(project: Project, deployer: KubernetesDeployer) -> None:
    for workspace in project.workspaces:
        deployer.ensure_workspace(project, workspace)
        for function in workspace.functions:
            deployer.deploy(project, function, render(project, function))


def keda_project(make_project: Callable[..., Project], kind: str = "keda") -> Project:
    return make_project([{"name": "demo", "functions": [{
        "name": "hello", "source": "functions/hello", "resources": {"requests": {"cpu": "100m"}},
        "autoscaling": {"type": kind, "min": 1, "max": 3, "cpu": 60}}]}])


class FakeClock:
    """A clock the deployer's waits advance instead of sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


# ------------------------------------------------------------------------------------ executors


def test_the_first_deploy_into_a_fresh_namespace_creates_the_executor_its_spinapp_names(
        hello: Project, deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    deploy_all(hello, deployer)

    executor = kubectl_json(kubectl, "spinappexecutors", "containerd-shim-spin", "-n", "demo", "--show-managed-fields")
    # spin-operator's config/samples/spin-shim-executor.yaml
    assert executor["spec"] == {"createDeployment": True, "deploymentConfig": {
        "runtimeClassName": "wasmtime-spin-v2", "installDefaultCACerts": True}}
    assert executor["metadata"]["labels"] == MANAGED
    assert [(e["manager"], e["operation"]) for e in executor["metadata"]["managedFields"]] == [("faasops", "Apply")]
    assert kubectl_json(kubectl, "spinapp", "hello", "-n", "demo")["spec"]["executor"] == "containerd-shim-spin"


def test_without_the_executor_spin_operators_webhook_refuses_the_spinapp(
        hello: Project, make_deployer: Callable[..., KubernetesDeployer], kubectl: KubectlRunner) -> None:
    deployer = make_deployer(create_executors=False)

    with pytest.raises(ProviderError) as refused:
        deploy_all(hello, deployer)

    assert str(refused.value) == (
        'SpinApp demo/hello was rejected (422): admission webhook "vspinapp.kb.io" denied the request: '
        'SpinApp.core.spinkube.dev "hello" is invalid: spec.executor: Invalid value: "containerd-shim-spin": '
        "executor does not exist in namespace"
    )
    assert kubectl_json(kubectl, "spinapps", "-n", "demo")["items"] == []


def test_an_executor_in_another_namespace_does_not_count(
        make_project: Callable[..., Project], make_deployer: Callable[..., KubernetesDeployer]) -> None:
    project = make_project([{"name": "one", "functions": [{"name": "a", "source": "functions/hello"}]},
                            {"name": "two", "functions": [{"name": "b", "source": "functions/hello"}]}])
    first, second = project.workspaces
    deployer = make_deployer()
    deployer.ensure_workspace(project, first)
    deployer.deploy(project, first.functions[0], render(project, first.functions[0]))
    without = make_deployer(create_executors=False)
    without.ensure_workspace(project, second)

    with pytest.raises(ProviderError, match="executor does not exist in namespace"):
        without.deploy(project, second.functions[0], render(project, second.functions[0]))


def test_a_spot_function_gets_the_spot_executor_on_the_spot_runtime_class(
        make_project: Callable[..., Project], make_deployer: Callable[..., KubernetesDeployer],
        kubectl: KubectlRunner) -> None:
    project = make_project([{"name": "demo", "functions": [
        {"name": "steady", "source": "functions/hello"},
        {"name": "cheap", "source": "functions/hello", "spot": True}]}])

    deploy_all(project, make_deployer(runtime_class="wasmtime-spin", spot_runtime_class="spin-on-spot"))

    executors = {e["metadata"]["name"]: e["spec"]["deploymentConfig"]["runtimeClassName"]
                 for e in kubectl_json(kubectl, "spinappexecutors", "-n", "demo")["items"]}
    assert executors == {"containerd-shim-spin": "wasmtime-spin", "containerd-shim-spin-spot": "spin-on-spot"}
    assert kubectl_json(kubectl, "spinapp", "cheap", "-n", "demo")["spec"]["executor"] == "containerd-shim-spin-spot"


def test_the_spot_runtime_class_defaults_to_wasmtime_spin_v2_spot(
        make_project: Callable[..., Project], deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    project = make_project([{"name": "demo", "functions": [{"name": "cheap", "source": "functions/hello", "spot": True}]}])

    deploy_all(project, deployer)

    executor = kubectl_json(kubectl, "spinappexecutor", "containerd-shim-spin-spot", "-n", "demo")
    assert executor["spec"]["deploymentConfig"]["runtimeClassName"] == "wasmtime-spin-v2-spot"


def test_functions_of_a_namespace_share_one_executor_applied_once_per_run(
        make_project: Callable[..., Project], deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    project = make_project([{"name": "demo", "functions": [
        {"name": f"fn{i}", "source": "functions/hello"} for i in range(4)]}])

    deploy_all(project, deployer)

    assert deployer.calls["GET spinappexecutors"] == 1 and deployer.calls["PATCH spinappexecutors"] == 1
    assert len(kubectl_json(kubectl, "spinappexecutors", "-n", "demo")["items"]) == 1
    assert len(kubectl_json(kubectl, "spinapps", "-n", "demo")["items"]) == 4


def test_an_executor_the_platform_created_is_left_alone(
        hello: Project, deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    deployer.ensure_workspace(hello, hello.workspaces[0])
    kubectl("apply", "--server-side", "--field-manager", "helm", "-f", "-", input="""\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata: {name: containerd-shim-spin, namespace: demo}
spec: {createDeployment: true, deploymentConfig: {runtimeClassName: platform-runtime}}
""")

    deployer.deploy(hello, only_function(hello), render(hello, only_function(hello)))

    executor = kubectl_json(kubectl, "spinappexecutor", "containerd-shim-spin", "-n", "demo", "--show-managed-fields")
    assert executor["spec"]["deploymentConfig"] == {"runtimeClassName": "platform-runtime"}
    assert [e["manager"] for e in executor["metadata"]["managedFields"]] == ["helm"]
    assert deployer.calls["PATCH spinappexecutors"] == 0


def test_a_changed_runtime_class_updates_the_executor_faasops_created(
        hello: Project, make_deployer: Callable[..., KubernetesDeployer], kubectl: KubectlRunner) -> None:
    deploy_all(hello, make_deployer())

    deploy_all(hello, make_deployer(runtime_class="wasmtime-spin-v3"))

    executor = kubectl_json(kubectl, "spinappexecutor", "containerd-shim-spin", "-n", "demo")
    assert executor["spec"]["deploymentConfig"]["runtimeClassName"] == "wasmtime-spin-v3"


def with_templates(project: Project, files: dict[str, str]) -> Project:
    """``project`` reloaded with a ``templates/`` directory holding ``files``."""
    templates = project.root / "templates"
    templates.mkdir(exist_ok=True)
    for name, text in files.items():
        (templates / name).write_text(text)
    faas = project.root / "faas.yaml"
    faas.write_text(faas.read_text().replace("backend: local\n", "backend: local\ntemplates: templates\n"))
    return load_project(project.root)


def test_the_project_template_overrides_the_executor(
        hello: Project, deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    project = with_templates(hello, {"spinappexecutor.yaml.j2": """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata: {name: {{ executor }}, namespace: {{ namespace }}, labels: {{ labels }}}
spec:
  createDeployment: true
  deploymentConfig: {runtimeClassName: {{ runtime_class }}, caCertSecret: "corporate-ca"}
"""})

    deploy_all(project, deployer)

    executor = kubectl_json(kubectl, "spinappexecutor", "containerd-shim-spin", "-n", "demo")
    assert executor["spec"]["deploymentConfig"] == {"runtimeClassName": "wasmtime-spin-v2", "caCertSecret": "corporate-ca"}


def test_an_empty_executor_template_leaves_executors_to_the_platform(
        hello: Project, deployer: KubernetesDeployer) -> None:
    project = with_templates(hello, {"spinappexecutor.yaml.j2": "{# the platform installs executors #}\n"})

    with pytest.raises(ProviderError, match="executor does not exist in namespace"):
        deploy_all(project, deployer)
    assert deployer.calls["PATCH spinappexecutors"] == 0


def test_an_executor_template_naming_another_executor_is_refused(hello: Project, deployer: KubernetesDeployer) -> None:
    project = with_templates(hello, {"spinappexecutor.yaml.j2": """\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata: {name: something-else, namespace: {{ namespace }}}
spec: {createDeployment: true}
"""})

    with pytest.raises(ProviderError, match=r"templates/spinappexecutor\.yaml\.j2: the SpinAppExecutor must be "
                                            r"demo/containerd-shim-spin \(the SpinApp's executor\)"):
        deploy_all(project, deployer)


def test_executors_go_with_the_namespace_faasops_created(
        hello: Project, deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    deploy_all(hello, deployer)
    deployer.undeploy(hello, "demo", "demo", "hello")

    deployer.delete_workspace(hello, "demo", "demo")

    assert kubectl("get", "namespace", "demo", check=False).returncode == 1


def test_leaving_a_namespace_faasops_did_not_create_deletes_only_the_executors_it_alone_wrote(
        make_project: Callable[..., Project], deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    kubectl("create", "namespace", "demo")
    kubectl("apply", "--server-side", "--field-manager", "helm", "-f", "-", input="""\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinAppExecutor
metadata: {name: platform-executor, namespace: demo, labels: {app.kubernetes.io/managed-by: faasops}}
spec: {createDeployment: true}
""")
    project = make_project([{"name": "demo", "functions": [{"name": "hello", "source": "functions/hello"}]}])
    deploy_all(project, deployer)
    deployer.undeploy(project, "demo", "demo", "hello")

    deployer.delete_workspace(project, "demo", "demo")

    assert kubectl("get", "namespace", "demo", check=False).returncode == 0
    left = [e["metadata"]["name"] for e in kubectl_json(kubectl, "spinappexecutors", "-n", "demo")["items"]]
    assert left == ["platform-executor"]


def test_leaving_a_namespace_that_still_runs_spinapps_keeps_the_executors(
        hello: Project, deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    kubectl("create", "namespace", "demo")
    deploy_all(hello, deployer)
    kubectl("apply", "--server-side", "-f", "-", input="""\
apiVersion: core.spinkube.dev/v1alpha1
kind: SpinApp
metadata: {name: theirs, namespace: demo}
spec: {executor: containerd-shim-spin, image: reg.local/theirs:1, replicas: 1}
""")
    deployer.undeploy(hello, "demo", "demo", "hello")

    deployer.delete_workspace(hello, "demo", "demo")

    assert [e["metadata"]["name"] for e in kubectl_json(kubectl, "spinappexecutors", "-n", "demo")["items"]] == [
        "containerd-shim-spin"]


# ------------------------------------------------------------------------------------ KEDA ordering


@pytest.fixture()
def slow_operator(tmp_path: Path) -> Iterator[tuple[KubeEmulator, Path]]:
    """An emulator whose spin-operator creates Deployments a second after each SpinApp write."""
    with KubeEmulator(port=0, spin_operator_delay=1.0) as emulator:
        yield emulator, emulator.write_kubeconfig(tmp_path / "slow-kubeconfig")


def test_a_scaled_object_waits_for_the_deployment_spin_operator_creates(
        make_project: Callable[..., Project], slow_operator: tuple[KubeEmulator, Path]) -> None:
    emulator, kubeconfig = slow_operator
    project = keda_project(make_project)
    deployer = KubernetesDeployer({"kubeconfig": str(kubeconfig)})

    deploy_all(project, deployer)

    assert deployer.calls["GET deployments"] >= 2  # missing at first: applying then was refused
    assert emulator.cluster.store.get(("keda.sh", "scaledobjects"), "demo", "hello") is not None
    deployment = emulator.cluster.store.get(("apps", "deployments"), "demo", "hello")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["resources"] == {"requests": {"cpu": "100m"}}


def test_a_scaled_object_applied_before_its_deployment_is_refused_by_kedas_webhook(
        make_project: Callable[..., Project], slow_operator: tuple[KubeEmulator, Path]) -> None:
    """What the wait avoids: the ScaledObject applied right after the SpinApp."""
    _, kubeconfig = slow_operator
    project = keda_project(make_project)
    deployer = KubernetesDeployer({"kubeconfig": str(kubeconfig)})
    deployer.ensure_workspace(project, project.workspaces[0])
    spinapp, scaled_object = render(project, only_function(project))
    deployer.deploy(project, only_function(project), [spinapp])

    with pytest.raises(ProviderError) as refused:
        deployer._apply(scaled_object)

    assert str(refused.value) == ('ScaledObject demo/hello was rejected (404): admission webhook "vscaledobject.kb.io" '
                                  'denied the request: deployments.apps "hello" not found')


def test_a_deployment_that_never_comes_fails_after_keda_target_timeout_naming_it(
        make_project: Callable[..., Project], tmp_path: Path) -> None:
    clock = FakeClock()
    with KubeEmulator(port=0, spin_operator=False) as emulator:
        project = keda_project(make_project)
        deployer = KubernetesDeployer({"kubeconfig": str(emulator.write_kubeconfig(tmp_path / "k")),
                                       "keda_target_timeout_seconds": 30})
        deployer.clock, deployer.sleep = clock, clock.sleep

        with pytest.raises(ProviderError) as failed:
            deploy_all(project, deployer)

        message = str(failed.value)
        assert message.startswith("ScaledObject demo/hello: the Deployment demo/hello it scales does not exist after 30s")
        assert "keda_target_timeout_seconds" in message and "\n" not in message
        assert 0 < sum(clock.slept) <= 30 and deployer.calls["GET deployments"] == len(clock.slept) + 1
        assert emulator.cluster.store.get(("keda.sh", "scaledobjects"), "demo", "hello") is None


def test_an_hpa_is_applied_at_once_the_hpa_api_accepts_a_missing_target(
        make_project: Callable[..., Project], tmp_path: Path) -> None:
    with KubeEmulator(port=0, spin_operator=False) as emulator:
        project = keda_project(make_project, kind="hpa")
        deployer = KubernetesDeployer({"kubeconfig": str(emulator.write_kubeconfig(tmp_path / "k"))})

        deploy_all(project, deployer)

        assert deployer.calls["GET deployments"] == 0
        assert emulator.cluster.store.get(("autoscaling", "horizontalpodautoscalers"), "demo", "hello") is not None


@pytest.mark.parametrize("value", [0, -1, "soon", True])
def test_keda_target_timeout_must_be_positive_seconds(value: object) -> None:
    with pytest.raises(ProviderError, match="keda_target_timeout_seconds"):
        KubernetesDeployer({"keda_target_timeout_seconds": value})


@pytest.mark.parametrize("option", ["runtime_class", "spot_runtime_class"])
def test_runtime_classes_must_be_names(option: str) -> None:
    with pytest.raises(ProviderError, match=f"providers.deployer.{option} must be a name"):
        KubernetesDeployer({option: ""})
