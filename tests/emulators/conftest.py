"""Fixtures for the Kubernetes API emulator tests: one emulator per session, real clients."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from testkit.availability import kubectl_binary as find_kubectl
from testkit.kubeapi import KubeEmulator


@pytest.fixture(scope="session")
def kube_emulator() -> Iterator[KubeEmulator]:
    with KubeEmulator(port=0) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def kubeconfig(kube_emulator: KubeEmulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kube_emulator.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


@pytest.fixture(scope="session")
def api_client(kube_emulator: KubeEmulator) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    configuration.host = kube_emulator.url
    configuration.api_key = {"authorization": "Bearer anything"}
    with client.ApiClient(configuration) as api:
        yield api


@pytest.fixture()
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture()
def custom(api_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client)


EXECUTOR = "containerd-shim-spin"


def create_executor(custom: client.CustomObjectsApi, namespace: str, name: str = EXECUTOR) -> None:
    """The SpinAppExecutor spin-operator's webhook wants in a SpinApp's own namespace."""
    custom.create_namespaced_custom_object("core.spinkube.dev", "v1alpha1", namespace, "spinappexecutors", {
        "apiVersion": "core.spinkube.dev/v1alpha1", "kind": "SpinAppExecutor", "metadata": {"name": name},
        "spec": {"createDeployment": True, "deploymentConfig": {"runtimeClassName": "wasmtime-spin-v2"}},
    })


@pytest.fixture()
def namespace(core: client.CoreV1Api, custom: client.CustomObjectsApi) -> Iterator[str]:
    """A fresh namespace for one test, with the executor SpinApps name, deleted (with its
    contents) afterwards."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    create_executor(custom, name)
    yield name
    try:
        core.delete_namespace(name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise



KubectlRunner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def kubectl_binary() -> str:
    return find_kubectl()


@pytest.fixture(scope="session")
def kubectl(kubectl_binary: str, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> KubectlRunner:
    """Run real kubectl against the emulator: ``kubectl("get", "ns", input=…, check=…, extra_env=…)``."""
    cache = tmp_path_factory.mktemp("kubecache")
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(cache), "HOME": str(cache)}

    def run(*args: str, input: str | None = None, check: bool = True,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [kubectl_binary, *args], input=input, env={**env, **(extra_env or {})},
            capture_output=True, text=True, timeout=60,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result

    return run
