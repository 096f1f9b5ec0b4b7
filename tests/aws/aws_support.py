"""What the AWS provider tests share (imported by name: several test folders have a conftest)."""

from __future__ import annotations

from collections.abc import Callable

from faasops.plugins.aws import DynamoDBState, S3SourceStore

from testkit.availability import unavailable
from testkit.moto import MotoServer, MotoServerNotFound

TABLE = "faasops-state"
BUCKET = "faasops-sources"

StateFactory = Callable[..., DynamoDBState]
StoreFactory = Callable[..., S3SourceStore]


def start_moto_server(executable: str | None = None) -> MotoServer:
    """A started moto server; when moto_server is missing, a skip — but a failure under CI=true,
    where a missing test service must never pass silently."""
    try:
        return MotoServer(executable=executable).start()
    except MotoServerNotFound as exc:
        unavailable(str(exc))
