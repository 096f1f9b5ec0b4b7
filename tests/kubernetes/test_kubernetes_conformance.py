"""The kubernetes deployer meets the Deployer contract (faasops.conformance) on the Kubernetes
API emulator, with the SpinKube scaffolder's manifests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from faasops.plugins.kubernetes import KubernetesDeployer

from faasops.conformance import DeployerContract
from faasops.model import Project


class TestKubernetesDeployer(DeployerContract):
    @pytest.fixture
    def deployer(self, conformance_project: Project, make_deployer: Callable[..., KubernetesDeployer]) -> Any:
        return make_deployer()
