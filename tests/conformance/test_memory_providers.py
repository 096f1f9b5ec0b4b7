"""The in-memory providers of the kit (faasops.conformance.fakes) meet the contracts they fake,
so the core tests that run on them (tests/core) test the core against honest providers."""

from __future__ import annotations

from typing import Any

import pytest

from faasops.conformance import DeployerContract, RegistryContract, SourceStoreContract, StateBackendContract
from faasops.conformance.fakes import MemoryDeployer, MemoryRegistry, MemorySourceStore, MemoryState, MemoryStore
from faasops.model import Project


class TestMemoryState(StateBackendContract):
    @pytest.fixture
    def state_factory(self) -> Any:
        store = MemoryStore()
        return lambda lease_s: MemoryState(store, lease_s)


class TestMemorySourceStore(SourceStoreContract):
    @pytest.fixture
    def source_store(self) -> MemorySourceStore:
        return MemorySourceStore()

    @pytest.fixture
    def read_source(self, source_store: MemorySourceStore) -> Any:
        return source_store.fetch


class TestMemoryRegistry(RegistryContract):
    @pytest.fixture
    def registry_provider(self, conformance_project: Project) -> MemoryRegistry:
        return MemoryRegistry(conformance_project.name)


class TestMemoryDeployer(DeployerContract):
    @pytest.fixture
    def deployer(self, conformance_project: Project) -> MemoryDeployer:
        return MemoryDeployer()
