"""Fixtures for the AWS providers: one real moto server per session, wiped before every test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_support import BUCKET, TABLE, StateFactory, StoreFactory, start_moto_server
from faasops.plugins.aws import DynamoDBState, S3SourceStore

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


@pytest.fixture()
def dynamodb(moto: MotoServer) -> Any:
    """A raw boto3 client, to look at what the backend wrote."""
    return moto.client("dynamodb")


@pytest.fixture()
def s3(moto: MotoServer) -> Any:
    return moto.client("s3")


@pytest.fixture()
def make_state(moto: MotoServer) -> Iterator[StateFactory]:
    """``make_state(project="shop", **options)``: a DynamoDB backend on moto, closed afterwards."""
    made: list[DynamoDBState] = []

    def make(project: str = "shop", table: str = TABLE, **options: Any) -> DynamoDBState:
        options = {"endpoint_url": moto.url, "create_table": True, **options}
        state = DynamoDBState(project, table, **options)
        made.append(state)
        return state

    yield make
    for state in made:
        state.close()


@pytest.fixture()
def make_store(moto: MotoServer) -> StoreFactory:
    def make(bucket: str = BUCKET, **options: Any) -> S3SourceStore:
        return S3SourceStore(bucket, **{"endpoint_url": moto.url, "create_bucket": True, **options})

    return make
