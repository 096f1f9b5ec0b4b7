"""The registry providers meet the Registry contract (faasops.conformance): ``ecr`` with the ECR
API on moto and a Debian docker-registry holding the images, and ``oci`` with basic auth."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from faasops.conformance import RegistryContract
from faasops.model import Project, ProviderConfig
from faasops.plugin_manager import create_provider
from testkit.moto import MotoServer
from testkit.registry import OciRegistry
from registry_support import PASSWORD_ENV, start_registry

USER, SECRET = "conformance", "conformance-secret"


def created_provider(plugin_manager: Any, project: Project, type_: str, **options: Any) -> Any:
    """The registry faasops creates for ``project`` (entry point → ``faasops_registry``)."""
    configured = replace(
        project, providers={**project.providers, "registry": ProviderConfig("registry", type_, options)}
    )
    return create_provider(plugin_manager, configured, "registry")


class TestEcrRegistry(RegistryContract):
    @pytest.fixture
    def registry_provider(
        self, plugin_manager: Any, conformance_project: Project, aws: MotoServer, registry: OciRegistry
    ) -> Iterator[Any]:
        provider = created_provider(
            plugin_manager, conformance_project, "ecr", endpoint_url=aws.url, registry_url=registry.url
        )
        yield provider
        provider.close()


class TestOciRegistry(RegistryContract):
    @pytest.fixture
    def registry_provider(
        self, plugin_manager: Any, conformance_project: Project, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[Any]:
        server = start_registry({USER: SECRET})
        monkeypatch.setenv(PASSWORD_ENV, SECRET)
        provider = created_provider(
            plugin_manager,
            conformance_project,
            "oci",
            registry_url=server.url,
            username=USER,
            password_env=PASSWORD_ENV,
        )
        yield provider
        provider.close()
        server.stop()
