"""Functions served by the local runtime, reached through the Kubernetes API emulator's service
proxy as they would be in a cluster.

The served project (workspace ``demo``: hello, echo) is applied on the local backend and served
by ``faasops.serving.LocalServer``, which routes ``/demo/<function>/…``; the emulator's Service
``<function>`` in a workspace's namespace forwards to ``<server>/demo/<function>``, so what the
proxy passes below ``…/proxy`` lands below the function's route.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from cli_support import EXAMPLES, run_faasops
from cluster_invoke_test_support import HANDLERS, spin_service
from faasops.engine import Engine
from faasops.serving import LocalServer, open_local
from testkit.kubeapi import KubeEmulator

SERVED_MANIFEST = """\
apiVersion: faasops/v1
project: served
workspaces:
  - name: demo
    functions:
      - name: hello
        source: functions/hello
      - name: echo
        source: functions/echo
"""


@pytest.fixture(scope="session")
def served_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a local server running demo/hello and demo/echo (real components)."""
    root = tmp_path_factory.mktemp("served")
    shutil.copytree(EXAMPLES / "hello" / "functions" / "hello", root / "functions" / "hello")
    shutil.copytree(HANDLERS / "echo", root / "functions" / "echo")
    (root / "faas.yaml").write_text(SERVED_MANIFEST)
    applied = run_faasops("-C", str(root), "apply", "--auto-approve")
    assert applied.code == 0, applied.output
    with Engine.load(root) as engine, open_local(engine) as (functions, log), LocalServer(functions, log) as server:
        yield server.url


@pytest.fixture(scope="session")
def invoke_kube() -> Iterator[KubeEmulator]:
    with KubeEmulator(port=0) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def invoke_kubeconfig(invoke_kube: KubeEmulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return invoke_kube.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


@pytest.fixture
def deploy_service(invoke_kube: KubeEmulator, invoke_kubeconfig: Path,
                   served_url: str) -> Callable[..., None]:
    """``deploy_service("hello", "storefront")``: the Service of a function, its endpoints the
    served demo function of that name (``backend=False``: a Service with no ready pods)."""
    invoke_kube.reset()
    api = client.CoreV1Api(config.new_client_from_config(str(invoke_kubeconfig)))

    def deploy(name: str, namespace: str, backend: bool = True) -> None:
        if not any(ns.metadata.name == namespace for ns in api.list_namespace().items):
            api.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        api.create_namespaced_service(namespace, spin_service(name, namespace))
        if backend:
            invoke_kube.set_service_backend(namespace, name, f"{served_url}/demo/{name}")

    return deploy
