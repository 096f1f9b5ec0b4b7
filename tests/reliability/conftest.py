"""Fixtures of the reliability tests: the real test services (moto, docker-registry, the
Kubernetes emulator), each behind its own fault-injecting proxy."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fault_support import FaultyCloud, start_faulty_cloud

from testkit.availability import unavailable
from testkit.moto import MotoServer, MotoServerNotFound, aws_env


@pytest.fixture(scope="session")
def moto_service() -> Iterator[MotoServer]:
    os.environ.update(aws_env())
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)
    try:
        server = MotoServer().start()
    except MotoServerNotFound as exc:
        unavailable(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def faulty_cloud(moto_service: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultyCloud]:
    cloud = start_faulty_cloud(moto_service, tmp_path_factory.mktemp("faulty-cloud"), unavailable)
    yield cloud
    cloud.stop()


@pytest.fixture
def cloud(faulty_cloud: FaultyCloud) -> FaultyCloud:
    """The services wiped, the proxies without rules and with fresh stats."""
    faulty_cloud.reset()
    return faulty_cloud
