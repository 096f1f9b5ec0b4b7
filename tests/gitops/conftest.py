"""Fixtures for the GitOps hand-off tests: an API emulator with real kubectl, local bare git
repositories, and projects made from the hello example with a chosen deployer.

No ``__init__.py`` here, as in tests/kubernetes: the directory must not shadow a package.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from faasops.testing.kubeapi import KubeEmulator
from faasops.testing.kubectl import KubectlRunner, kubectl_runner


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
