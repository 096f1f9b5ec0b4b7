"""Fixtures for the registry providers: a real docker-registry per test (tens of milliseconds to
start), one moto server per session for the ECR API, and the hello component built once.

The ECR flow under test: moto's GetAuthorizationToken gives ``AWS:<password>`` → the test
registry gets an htpasswd entry for ``AWS`` with that password → ``registry_url`` points the
provider at it, while credentials still come from ECR.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from faasops.model import Function, ProviderConfig
from faasops.plugin_manager import create_plugin_manager, create_provider
from faasops.plugins.componentize import ComponentizePyBuilder
from faasops.plugins.ecr import DistributionRegistry
from faasops.providers import BuildResult
from faasops.source import snapshot_directory
from testkit.moto import MotoServer, MotoServerNotFound, aws_env
from testkit.registry import OciRegistry
from registry_support import HELLO_SOURCE, make_function, make_project, start_registry, unavailable

# Settings of the developer's machine that would steer boto3 away from moto.
AWS_SETTINGS = (
    "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR", "AWS_ENDPOINT_URL_STS",
    "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME",
)


@pytest.fixture(scope="session")
def hello_build(shared_build_cache: Path) -> BuildResult:
    """The hello example, built once (and shared with other suites through the build cache)."""
    builder = ComponentizePyBuilder(shared_build_cache)
    return builder.build(make_function(), snapshot_directory(HELLO_SOURCE))


@pytest.fixture(scope="session")
def plugin_manager() -> Any:
    return create_plugin_manager()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    try:
        server = MotoServer().start()
    except MotoServerNotFound as exc:
        unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture()
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """moto, emptied, with fake static credentials in the environment."""
    for name, value in aws_env().items():
        monkeypatch.setenv(name, value)
    for name in AWS_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    moto_server.reset()
    return moto_server


@pytest.fixture()
def ecr_password(aws: MotoServer) -> str:
    """The password inside moto's ECR authorization token (``AWS:<password>``)."""
    token = aws.client("ecr").get_authorization_token()["authorizationData"][0]["authorizationToken"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    assert user == "AWS"
    return password


@pytest.fixture()
def registry(ecr_password: str) -> Iterator[OciRegistry]:
    """A docker-registry that accepts the ECR token of moto for user AWS."""
    server = start_registry({"AWS": ecr_password})
    yield server
    server.stop()


ProviderFactory = Callable[..., DistributionRegistry]


@pytest.fixture()
def make_provider(plugin_manager: Any, tmp_path: Path) -> Iterator[ProviderFactory]:
    """``make_provider(type, functions=(…), **options)``: a registry provider created the way
    faasops creates it (entry point → ``faasops_registry`` hook). Each call is a new "run"."""
    made: list[DistributionRegistry] = []

    def make(type_: str, functions: tuple[Function, ...] = (), **options: Any) -> DistributionRegistry:
        config = ProviderConfig("registry", type_, options)
        provider = create_provider(plugin_manager, make_project(tmp_path, config, functions), "registry")
        made.append(provider)
        return provider

    yield make
    for provider in made:
        provider.close()


@pytest.fixture()
def make_ecr(make_provider: ProviderFactory, aws: MotoServer, registry: OciRegistry) -> ProviderFactory:
    """An ``ecr`` provider: ECR API on moto, registry endpoint overridden to the test registry."""

    def make(functions: tuple[Function, ...] = (), **options: Any) -> DistributionRegistry:
        return make_provider("ecr", functions, **{"endpoint_url": aws.url, "registry_url": registry.url, **options})

    return make
