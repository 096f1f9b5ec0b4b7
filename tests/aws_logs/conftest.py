"""Fixtures for the log sources: one moto server and one Loki test double per session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_logs_support import TABLE, start_moto_server, stop_followers
from faasops.plugins.aws_logs import table_definition

from testkit.loki import LokiDouble
from testkit.moto import MotoServer, use_fake_aws


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = start_moto_server()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def moto(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """The session's moto server, empty, with fake credentials in the environment (which the
    CLI subprocesses inherit) and none of the developer's AWS settings."""
    use_fake_aws(monkeypatch)
    moto_server.reset()
    return moto_server


@pytest.fixture(autouse=True)
def no_follower_outlives_its_test() -> Iterator[None]:
    yield
    stop_followers()


@pytest.fixture()
def dynamodb(moto: MotoServer) -> Any:
    """A boto3 client with the logs table created (as the platform's runtime would find it)."""
    client = moto.client("dynamodb")
    client.create_table(**table_definition(TABLE))
    return client


@pytest.fixture(scope="session")
def loki_server() -> Iterator[LokiDouble]:
    with LokiDouble() as double:
        yield double


@pytest.fixture()
def loki(loki_server: LokiDouble) -> LokiDouble:
    loki_server.reset()
    return loki_server
