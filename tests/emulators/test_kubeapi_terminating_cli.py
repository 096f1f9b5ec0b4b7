"""An apply right after a destroy, through the CLI against an emulator whose deleted namespaces
stay Terminating for a while (as on a cluster): the kubernetes deployer waits for the namespace
to be gone, saying so, and past its timeout fails with a message that says why."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_support import EXAMPLES, run_faasops
from faasops.errors import ProviderError
from faasops.manifest import load_project
from faasops.plugins.kubernetes import KubernetesDeployer
from faasops.plugins.spinkube import SpinKubeScaffolder
from testkit.kubeapi import KubeEmulator
from testkit.kubectl import kubectl_runner

# Longer than any test: a namespace stays Terminating until the test ends its termination.
TERMINATION_S = 120.0


@pytest.fixture(scope="module")
def slow_namespaces() -> Iterator[KubeEmulator]:
    with KubeEmulator(port=0, namespace_termination=TERMINATION_S) as emulator:
        yield emulator


@pytest.fixture()
def kube(slow_namespaces: KubeEmulator) -> Iterator[KubeEmulator]:
    slow_namespaces.reset()
    yield slow_namespaces
    slow_namespaces.reset()  # drops pending purges


def kubernetes_project(root: Path, kubeconfig: Path, extra_options: str = "") -> Path:
    project = root / "project"
    shutil.copytree(EXAMPLES / "hello", project, ignore=shutil.ignore_patterns(".faasops", "__pycache__"))
    (project / "faas.yaml").write_text(
        "apiVersion: faasops/v1\nproject: hello\nbackend: local\n"
        f"providers:\n  deployer:\n    type: kubernetes\n    kubeconfig: {kubeconfig}\n{extra_options}"
        "workspaces:\n  - name: demo\n    functions:\n      - name: hello\n        source: functions/hello\n"
    )
    return project


def kubectl_json(kubeconfig: Path, home: Path, *args: str) -> dict:
    return json.loads(kubectl_runner(kubeconfig, home)("get", *args, "-o", "json").stdout)


@pytest.mark.slow
def test_apply_right_after_destroy_waits_for_the_terminating_namespace(kube: KubeEmulator, tmp_path: Path) -> None:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    project = kubernetes_project(tmp_path, kubeconfig)
    assert run_faasops("-C", str(project), "apply", "--auto-approve").code == 0
    destroyed = run_faasops("-C", str(project), "destroy", "--auto-approve")
    assert destroyed.code == 0, destroyed.output
    assert kubectl_json(kubeconfig, tmp_path, "namespace", "demo")["status"]["phase"] == "Terminating"

    again = subprocess.Popen([sys.executable, "-m", "faasops.cli", "-C", str(project), "apply", "--auto-approve"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # It says it waits (instead of failing), and waits: read up to that line.
        waiting = next((line for line in again.stderr if "Terminating" in line), "")
        assert "demo: namespace demo is still Terminating (deleted at " in waiting
        assert "waiting up to 300s for it to be gone before creating it again" in waiting
        assert again.poll() is None
        assert kube.finish_namespace_termination("demo")
        out, err = again.communicate(timeout=120)
    finally:
        if again.poll() is None:
            again.kill()
            again.communicate()

    assert again.returncode == 0, out + err
    assert "demo: namespace demo is gone after " in err
    assert "Apply complete! 2 applied" in out
    assert kubectl_json(kubeconfig, tmp_path, "namespace", "demo")["status"]["phase"] == "Active"
    spinapp = kubectl_json(kubeconfig, tmp_path, "spinapp", "hello", "-n", "demo")
    assert spinapp["metadata"]["labels"]["function_id"] == "demo.hello"


@pytest.mark.slow
def test_a_namespace_terminating_past_the_timeout_is_a_clear_error(kube: KubeEmulator, tmp_path: Path) -> None:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    project = kubernetes_project(tmp_path, kubeconfig, "    namespace_terminating_timeout_seconds: 1\n")
    assert run_faasops("-C", str(project), "apply", "--auto-approve").code == 0
    assert run_faasops("-C", str(project), "destroy", "--auto-approve").code == 0

    again = run_faasops("-C", str(project), "apply", "--auto-approve")

    assert again.code == 1
    assert "Traceback" not in again.output
    assert "namespace demo is still Terminating 1s later (deleted at " in again.err
    assert "finalizers: kubernetes" in again.err
    assert "raise namespace_terminating_timeout_seconds under providers.deployer" in again.err
    assert "RBAC" not in again.output


def test_a_deploy_refused_by_a_terminating_namespace_says_so_not_rbac(kube: KubeEmulator, tmp_path: Path) -> None:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    project = load_project(kubernetes_project(tmp_path, kubeconfig))
    (function,) = project.functions()
    deployer = KubernetesDeployer({"kubeconfig": str(kubeconfig)})
    deployer.ensure_workspace(project, project.workspaces[0])
    deployer.delete_workspace(project, "demo", "demo")
    manifests = SpinKubeScaffolder().render(project, function, "registry.example/x@sha256:" + "a" * 64)

    with pytest.raises(ProviderError) as raised:
        deployer.deploy(project, function, manifests)

    message = str(raised.value)
    assert "namespace demo is being deleted (Terminating), and the API server refuses new objects in it" in message
    assert "unable to create new content in namespace demo because it is being terminated" in message
    assert "RBAC" not in message
    # A second delete of the dying namespace is no error (it is already on its way out).
    deployer.delete_workspace(project, "demo", "demo")
