"""The embedded local backend (faasops.plugins.local) meets the provider contracts."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from faasops.conformance import DeployerContract, RegistryContract, SourceStoreContract, StateBackendContract
from faasops.model import Project
from faasops.plugins.local import LocalDeployer, LocalRegistry, LocalSourceStore, LocalState


class TestLocalState(StateBackendContract):
    @pytest.fixture
    def state_factory(self, tmp_path: Path) -> Any:
        return lambda lease_s: LocalState(tmp_path / "state.db", lease_s)


class TestLocalSourceStore(SourceStoreContract):
    @pytest.fixture
    def source_store(self, tmp_path: Path) -> LocalSourceStore:
        return LocalSourceStore(tmp_path / "sources")

    @pytest.fixture
    def read_source(self) -> Any:
        return lambda uri: Path(unquote(urlparse(uri).path)).read_bytes()


class TestLocalRegistry(RegistryContract):
    @pytest.fixture
    def registry_provider(self, conformance_project: Project, tmp_path: Path) -> LocalRegistry:
        return LocalRegistry(tmp_path / "oci", conformance_project)


class TestLocalDeployer(DeployerContract):
    @pytest.fixture
    def deployer(self, conformance_project: Project, tmp_path: Path) -> LocalDeployer:
        return LocalDeployer(tmp_path / "deploy")
