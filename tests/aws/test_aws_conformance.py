"""The AWS providers meet the provider contracts (faasops.conformance), on the moto server:
the DynamoDB state backend and the S3 source store."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import pytest
from aws_support import BUCKET, TABLE
from faasops.plugins.aws import DynamoDBState, S3SourceStore

from faasops.conformance import SourceStoreContract, StateBackendContract
from testkit.moto import MotoServer


class TestDynamoDBState(StateBackendContract):
    @pytest.fixture
    def state_factory(self, moto: MotoServer) -> Any:
        return lambda lease_s: DynamoDBState("shop", TABLE, endpoint_url=moto.url, create_table=True, lease_s=lease_s)


class TestS3SourceStore(SourceStoreContract):
    @pytest.fixture
    def source_store(self, moto: MotoServer) -> S3SourceStore:
        return S3SourceStore(BUCKET, endpoint_url=moto.url, create_bucket=True)

    @pytest.fixture
    def read_source(self, s3: Any) -> Any:
        def read(uri: str) -> bytes:
            parts = urlparse(uri)
            assert parts.scheme == "s3", uri
            return s3.get_object(Bucket=parts.netloc, Key=parts.path.lstrip("/"))["Body"].read()

        return read
