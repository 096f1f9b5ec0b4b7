"""The kubernetes deployer as a plugin: registration, options, connection and cluster errors."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from faasops.errors import ProviderError
from faasops.model import Project, ProviderConfig
from faasops.plugin_manager import create_plugin_manager, create_provider, provider_types
from faasops.plugins.kubernetes import KubernetesDeployer
from testkit.kubeapi import KubeEmulator

from kube_deployer_support import KubectlRunner, only_function, render


def test_the_plugin_serves_the_kubernetes_deployer_type(hello: Project, kubeconfig: Path) -> None:
    pm = create_plugin_manager()
    assert ("kubernetes", "server-side applies SpinApps (and HPA/KEDA autoscalers) to a Kubernetes cluster") in (
        provider_types(pm)["deployer"])

    deployer = create_provider(pm, hello, "deployer")  # hello's faas.yaml says type: kubernetes

    assert isinstance(deployer, KubernetesDeployer)
    assert (deployer.field_manager, deployer.force_conflicts, deployer.wait, deployer.wait_timeout) == (
        "faasops", False, False, 300.0)
    assert pm.hook.faasops_deployer(config=ProviderConfig("deployer", "local"), project=hello) is not None
    assert not isinstance(pm.hook.faasops_deployer(config=ProviderConfig("deployer", "local"), project=hello),
                          KubernetesDeployer)


def test_loading_the_plugin_does_not_import_the_kubernetes_client() -> None:
    probe = "import sys, faasops.plugins.kubernetes; print('kubernetes' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("options, message", [
    ({"wait_timeout_seconds": "soon"},
     "providers.deployer.wait_timeout_seconds must be a positive number of seconds, not 'soon'"),
    ({"request_timeout_seconds": 0}, "providers.deployer.request_timeout_seconds must be a positive number of seconds, not 0"),
    ({"force_conflicts": "yes"}, "providers.deployer.force_conflicts must be true or false, not 'yes'"),
])
def test_invalid_options_are_reported(options: dict, message: str) -> None:
    with pytest.raises(ProviderError) as invalid:
        KubernetesDeployer(options)
    assert str(invalid.value) == message


def test_the_context_option_picks_the_kubeconfig_context(
        hello: Project, kube: KubeEmulator, tmp_path: Path, kubectl: KubectlRunner) -> None:
    config = yaml.safe_load(kube.write_kubeconfig(tmp_path / "good").read_text())
    config["clusters"].append({"name": "dead", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}})
    config["contexts"].append({"name": "dead", "context": {"cluster": "dead", "user": config["users"][0]["name"]}})
    config["current-context"] = "dead"
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(config))

    KubernetesDeployer({"kubeconfig": str(path), "context": "faasops-emulator"}).ensure_workspace(
        hello, hello.workspaces[0])

    assert kubectl("get", "namespace", "demo").returncode == 0
    with pytest.raises(ProviderError, match="cannot reach"):
        KubernetesDeployer({"kubeconfig": str(path)}).ensure_workspace(hello, hello.workspaces[0])


def test_a_relative_kubeconfig_is_relative_to_the_project_root(hello: Project, kubeconfig: Path) -> None:
    (hello.root / "cluster.yaml").write_text(kubeconfig.read_text())
    pm = create_plugin_manager()
    deployer = pm.hook.faasops_deployer(
        config=ProviderConfig("deployer", "kubernetes", {"kubeconfig": "cluster.yaml"}), project=hello)
    assert deployer.kubeconfig == hello.root / "cluster.yaml"
    assert deployer.observe(hello, hello.workspaces) == {}


def test_kubeconfig_defaults_to_the_kubeconfig_environment_variable(
        hello: Project, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    assert KubernetesDeployer({}).observe(hello, hello.workspaces) == {}


def test_a_missing_kubeconfig_file_is_reported(hello: Project, tmp_path: Path) -> None:
    with pytest.raises(ProviderError, match=r"kubeconfig .*nowhere does not exist \(providers.deployer.kubeconfig\)"):
        KubernetesDeployer({"kubeconfig": str(tmp_path / "nowhere")}).observe(hello, hello.workspaces)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_api_server_is_one_line_naming_the_url(hello: Project, tmp_path: Path) -> None:
    port = free_port()
    with KubeEmulator(port=port) as cluster:  # a real kubeconfig for a server that then goes away
        path = cluster.write_kubeconfig(tmp_path / "config")
    deployer = KubernetesDeployer({"kubeconfig": str(path)})

    started = time.monotonic()
    with pytest.raises(ProviderError) as unreachable:
        deployer.observe(hello, hello.workspaces)

    assert str(unreachable.value) == f"cannot reach the Kubernetes API server at http://127.0.0.1:{port}: connection refused"
    assert time.monotonic() - started < 3


def test_rejected_credentials_are_one_line_without_the_token(hello: Project, tmp_path: Path) -> None:
    with KubeEmulator(port=0, token="the-right-token") as cluster:
        path = cluster.write_kubeconfig(tmp_path / "config")
        path.write_text(path.read_text().replace("the-right-token", "a-wrong-token"))
        with pytest.raises(ProviderError) as rejected:
            KubernetesDeployer({"kubeconfig": str(path)}).ensure_workspace(hello, hello.workspaces[0])

    message = str(rejected.value)
    assert message == (f"the Kubernetes API server at {cluster.url} rejected the credentials (401 Unauthorized) "
                       "for get namespaces: check the kubeconfig user or the service account token")
    assert "token" not in message.replace("service account token", "")


class Forbidding(BaseHTTPRequestHandler):
    """An API server whose RBAC allows nothing: every request answers 403 with a Status."""

    def do_GET(self) -> None:  # noqa: N802 - BaseHTTPRequestHandler's naming
        body = json.dumps({
            "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden", "code": 403,
            "message": 'spinapps.core.spinkube.dev is forbidden: User "system:serviceaccount:ci:faasops" '
                       'cannot list resource "spinapps" in API group "core.spinkube.dev" in the namespace "demo"',
        }).encode()
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def test_a_forbidden_request_names_the_verb_and_resource(hello: Project, tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Forbidding)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "c", "user": {"token": "t0ken"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "c"}}],
    }))
    try:
        with pytest.raises(ProviderError) as forbidden:
            KubernetesDeployer({"kubeconfig": str(path)}).observe(hello, hello.workspaces)
    finally:
        server.shutdown()
        server.server_close()

    assert str(forbidden.value) == (
        "forbidden: faasops may not list spinapps in namespace demo (403): grant it RBAC permission; the server "
        'said: spinapps.core.spinkube.dev is forbidden: User "system:serviceaccount:ci:faasops" cannot list '
        'resource "spinapps" in API group "core.spinkube.dev" in the namespace "demo"'
    )


def test_a_cluster_without_the_spinapp_crd_says_to_install_spinkube(
        hello: Project, deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    kubectl("delete", "crd", "spinapps.core.spinkube.dev")
    deployer.ensure_workspace(hello, hello.workspaces[0])

    assert deployer.observe(hello, hello.workspaces) == {}  # nothing live, not an error
    with pytest.raises(ProviderError) as missing:
        deployer.deploy(hello, only_function(hello), render(hello, only_function(hello)))
    assert str(missing.value) == "the cluster has no SpinApp CRD (core.spinkube.dev/v1alpha1): install SpinKube"
    deployer.undeploy(hello, "demo", "demo", "hello")  # nothing to delete: fine


def test_a_cluster_without_keda_says_to_install_it(
        make_project: Callable[..., Project], deployer: KubernetesDeployer, kubectl: KubectlRunner) -> None:
    project = make_project("""\
        - name: demo
          functions: [{name: hello, source: functions/hello, autoscaling: {type: keda, max: 3, cpu: 80}, resources: {requests: {cpu: 100m}}}]
        """)
    kubectl("delete", "crd", "scaledobjects.keda.sh")
    deployer.ensure_workspace(project, project.workspaces[0])
    with pytest.raises(ProviderError, match=r"^the cluster has no ScaledObject CRD \(keda.sh/v1alpha1\): install KEDA"):
        deployer.deploy(project, only_function(project), render(project, only_function(project)))
