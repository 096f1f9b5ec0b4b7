"""The AWS providers: state and task history in DynamoDB (``dynamodb``), sources in S3 (``s3``).

Both use boto3's default credential chain (``AWS_*`` environment variables, ``AWS_PROFILE``,
IRSA web identity in-cluster, instance roles); faas.yaml never carries credentials. An unset
``endpoint_url`` leaves boto3's own ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_DYNAMODB`` /
``AWS_ENDPOINT_URL_S3`` support in charge. boto3 is imported on first use only, because every
faasops command loads every plugin.

Options (under ``providers.state`` / ``providers.sources`` in faas.yaml)
=====================================================================

- ``dynamodb``: ``table`` (required), ``region``, ``endpoint_url``, ``create_table`` (default
  false), ``lock_lease_seconds`` (default 60), ``max_attempts`` (botocore standard-mode retries,
  default 5), ``timeout_seconds`` (read timeout per request, default 30).
- ``s3``: ``bucket`` (required), ``prefix`` (default ``sources/``), ``region``,
  ``endpoint_url``, ``sse`` (``AES256`` default, or ``aws:kms``), ``kms_key_id`` (with
  ``aws:kms``; default the account's ``aws/s3`` key), ``create_bucket`` (default false; a created
  bucket blocks public access), ``max_attempts``, ``timeout_seconds``.

Unknown options are refused, and so are credential-like ones (:data:`STATE_OPTIONS_SCHEMA`,
:data:`SOURCES_OPTIONS_SCHEMA`).

Retries
=======

botocore's ``standard`` retry mode, with ``max_attempts`` attempts per call (the first
included). It retries throttling (``ThrottlingException``,
``ProvisionedThroughputExceededException``, S3 ``SlowDown``, any 429 …: waits of
``uniform(0, min(1 s × 2^n, 20 s))``), transient failures (500/502/503/504, ``RequestTimeout``,
connection errors, timeouts, dropped connections, a DynamoDB CRC32 mismatch: waits of
``uniform(0, min(25 ms × 2^n, 20 s))`` for DynamoDB, 50 ms for S3), and honours
``x-amz-retry-after`` — the same exponential backoff with full jitter as :mod:`faasops.retry`.
Its client-side retry quota (500 tokens: 14 per transient retry, 5 per throttling retry, refunded
by successes) stops retrying against an endpoint that keeps failing. A call still failing after
that ends the run with one line naming the operation, the code and the attempts.

botocore retries every operation, writes included. That is safe here: record writes are
``TransactWriteItems`` carrying botocore's automatic ``ClientRequestToken`` (DynamoDB answers a
repeat within 10 minutes without applying it again), task writes and the lock heartbeat are
idempotent ``SET`` updates, and a conditional lock write whose answer was lost is recognised
when its retry fails the condition: the lock item then carries our own lock id (see
``acquire_lock``), so the run goes on holding it instead of waiting for itself.

DynamoDB table design
=====================

One table can hold the state of many projects: every key starts with the project name. All
key attributes are strings.

================  ========================  ====================================
item              ``pk``                    ``sk``
================  ========================  ====================================
state serial      ``PROJECT#<project>``     ``META#SERIAL``
workspace record  ``PROJECT#<project>``     ``WS#<workspace>``
function record   ``PROJECT#<project>``     ``WS#<workspace>#FN#<function>``
task              ``TASKS#<project>``       ``TASK#<task id>``
state lock        ``LOCK#<project>``        ``LOCK``
state snapshot    ``SNAPSHOT#<project>``    ``S<serial>#P<part>``
================  ========================  ====================================

- **Reading the state is one Query** (``pk = PROJECT#<project>``, strongly consistent,
  paginated past 1 MB) however many workspaces and functions there are; ``read(workspaces)``
  filters client-side. Specs are stored as JSON strings, as the local backend does.
- **Large states are also kept as a snapshot.** When the records take more than one Query page,
  apply ends by writing them as zlib-compressed JSON parts (≤ 300 KB each) of the current
  serial, noted on the serial item, in one transaction conditioned on the serial and the lock.
  A read whose first page shows a snapshot of the serial it holds reads the parts instead of
  the other pages (10,000 functions: 2 Queries instead of 9 pages of 1 MB); any record write
  bumps the serial, so a snapshot never hides a newer record, and a damaged or missing part
  (sha256 over the parts) falls back to the records.
- **Record writes are fenced transactions.** ``put/delete_workspace`` and
  ``put/delete_function`` run as one ``TransactWriteItems``: the record, ``ADD serial 1`` on the
  serial item and — while this backend holds the lock — a ``ConditionCheck`` that the lock item
  still carries our lock id. A run whose lease expired and was taken over therefore cannot
  write over the new holder's state; it gets a :class:`~faasops.errors.LockError` instead.
- **Tasks are keyed by id**, so ``put_task`` is an upsert by id (a ``PutItem`` of the whole
  task: writers always pass a task whole, its id, run and creation time unchanged). Apply writes
  a function's tasks in step groups (see :mod:`faasops.executor`): ``put_tasks`` puts several in
  one ``BatchWriteItem`` (25 a request), and ``put_function``/``delete_function`` take the tasks
  that complete with the record into the record's own transaction — two writes per function
  applied instead of fifteen. ``--id`` prefix
  lookup is one strongly consistent Query on ``begins_with(sk, "TASK#<prefix>")``. Listing
  newest-first needs a time order, which the id key can't give, so each task also carries
  ``task_order = <created_at>#<id>`` and is indexed by three global secondary indexes, all
  sorted by ``task_order`` (projection ALL, queried with ``ScanIndexForward=False``):

  - ``tasks_by_time`` on ``task_scope = TASKS#<project>``: ``faasops tasks``;
  - ``tasks_by_ws`` on ``task_ws_scope = TASKS#<project>#WS#<workspace>``: ``faasops tasks WS``;
  - ``open_tasks`` on ``open_scope = TASKS#<project>``, set only while a task is ``pending`` or
    ``running`` — a sparse index of unfinished tasks.

  GSIs rather than extra items because DynamoDB maintains them without a transaction per task
  write, and unlike an LSI they put no 10 GB cap on a project's task history. Taking the lock
  marks the previous run's unfinished tasks failed ("interrupted") by querying ``open_tasks``
  only, each update conditional on the task still being open (GSIs are eventually consistent;
  the condition makes a stale index entry harmless). Listings through a GSI may lag a write by
  a few milliseconds — fine for a history view.
- **The lock** is one item holding id, holder, host, pid, command, created_at, expires_at,
  ci_url and a ``version`` counter. Taking it: read it (consistently); if absent, expired, or
  held by a dead pid on this host, write ours with ``attribute_not_exists(pk)`` or
  ``lock_id = <seen id> AND version = <seen version>``. Losing that race fails the condition,
  and the loser looks again until its timeout. A heartbeat every lease/3 extends
  ``expires_at`` and bumps ``version`` on condition of still holding the lock; release and
  force-unlock delete on condition of the lock id. Expiry compares client clocks: keep hosts
  NTP-synced well within the lease (60 s by default).

``create_table: true`` creates the table (on-demand billing) on the first write — never on a
read. To create it yourself: ``aws dynamodb create-table --cli-input-json "$(python -m
faasops.plugins.aws table-definition TABLE)"``.

S3 layout
=========

``s3://<bucket>/<prefix><project>/<sha256 hex of the source tree>.tar.gz``, written with
server-side encryption (``AES256`` or ``aws:kms``), ``Content-Type: application/gzip`` and
metadata ``workspace``/``function``/``digest``. Objects are content-addressed, so an upload first
HEADs the key and skips the PUT when it is there; a key found or written once is not asked for
again by the same process (functions sharing a source directory). The project's folder keeps
projects sharing a bucket apart: ``faasops gc`` lists and deletes under ``<prefix><project>/``
only. (Sources written before keys carried the project sit directly under ``<prefix>``; gc never
touches them.)
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import sys
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, TypeVar

from faasops.errors import FaasopsError, LockError, ProviderError
from faasops.hookspecs import hookimpl
from faasops.lock import DEFAULT_LEASE_S, INTERRUPTED_MESSAGE, is_stale, iso, lease_until, locked_error, utc_now
from faasops.model import Function, Project, ProviderConfig
from faasops.options import seconds_option
from faasops.providers import (
    ActualState,
    FunctionRecord,
    Garbage,
    LockInfo,
    Retained,
    SourceSnapshot,
    StoredItem,
    Task,
    WorkspaceRecord,
)
from faasops.retry import RetryPolicy

if TYPE_CHECKING:
    from botocore.client import BaseClient

T = TypeVar("T")

LOCK_LEASE_S = DEFAULT_LEASE_S
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 5.0
# TransactionConflict: another transaction touched the serial item (another process). The
# serial item is hot, so conflicts are retried longer than botocore would.
TRANSACTION_CONFLICT_RETRY = RetryPolicy(max_attempts=8, max_seconds=10.0, base_delay_s=0.05, max_delay_s=1.0)
DEFAULT_PREFIX = "sources/"
_SOURCE_NAME = re.compile(r"[0-9a-f]{64}\.tar\.gz")  # a source archive's name under the project prefix
SSE_MODES = ("AES256", "aws:kms")

SERIAL_SK = "META#SERIAL"  # the other state items: WS#<workspace> and WS#<workspace>#FN#<function>
# The state snapshot (see DynamoDBState.write_snapshot): compressed parts under SNAPSHOT#<project>.
SNAPSHOT_PART_BYTES = 300_000  # items hold at most 400 KB
SNAPSHOT_MAX_PARTS = 12  # a transaction holds at most 4 MB
SNAPSHOT_FORMAT = 1
LOCK_SK = "LOCK"
INDEX_BY_TIME = "tasks_by_time"
INDEX_BY_WORKSPACE = "tasks_by_ws"
INDEX_OPEN = "open_tasks"
OPEN_STATUSES = ("pending", "running")
BATCH_WRITE_MAX = 25  # items per BatchWriteItem
TRANSACTION_MAX_ITEMS = 100  # items per TransactWriteItems
# Items DynamoDB left unprocessed (throttled partitions) are written again with this backoff.
UNPROCESSED_RETRY = RetryPolicy(max_attempts=8, max_seconds=20.0, base_delay_s=0.05, max_delay_s=2.0)

_ACCESS_CODES = {
    "AccessDenied", "AccessDeniedException", "UnrecognizedClientException", "InvalidClientTokenId",
    "InvalidSignatureException", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
    "MissingAuthenticationToken", "InvalidAccessKeyId", "InvalidToken", "AllAccessDisabled",
    "KMS.AccessDeniedException", "403",
}
_THROTTLE_CODES = {
    "Throttling", "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
    "SlowDown", "TooManyRequestsException", "LimitExceededException", "RequestThrottled",
}
_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA|ANPA|AGPA)[A-Z0-9]{12,}\b")


# -------------------------------------------------------------------- shared AWS plumbing





def _one_line(text: str) -> str:
    return _KEY_ID.sub("<access key id>", " ".join(str(text).split()))


def _safe_url(url: str | None) -> str:
    """The endpoint without any ``user:password@`` part."""
    return re.sub(r"//[^/@]*@", "//", url) if url else "the default AWS endpoint"


class _ConditionFailed(Exception):
    """A conditional write did not apply. ``reasons``: the codes of a cancelled transaction."""

    def __init__(self, reasons: list[str] | None = None):
        super().__init__(reasons)
        self.reasons = reasons or []


class _NotFound(ProviderError):
    """The table or bucket does not exist (message says how to create it)."""


class _AwsService:
    """One lazily created boto3 client with standard retries, an API-call counter and error
    mapping to one-line :class:`ProviderError` messages that never carry credentials."""

    service = ""
    display = ""

    def __init__(self, *, region: str | None, endpoint_url: str | None, max_attempts: int,
                 timeout_s: float = DEFAULT_TIMEOUT_S):
        self.region = region
        self.endpoint_url = endpoint_url
        self.max_attempts = max_attempts
        self.timeout_s = timeout_s
        #: API calls made, keyed ``"<service>.<Operation>"`` (e.g. ``"dynamodb.Query"``; one per
        #: page of a paginated read, retries not counted). For tests and benchmarks.
        self.calls: Counter[str] = Counter()
        self._calls_mutex = threading.Lock()
        self._client: BaseClient | None = None
        self._client_mutex = threading.Lock()

    @property
    def client(self) -> BaseClient:
        with self._client_mutex:
            if self._client is None:
                self._client = self._make_client()
            return self._client

    def _make_client(self) -> BaseClient:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError

        config = Config(
            # total_max_attempts: in a client Config, botocore's `max_attempts` counts retries
            # (5 would mean 6 attempts, and 1 would still retry once).
            retries={"mode": "standard", "total_max_attempts": self.max_attempts},
            connect_timeout=min(CONNECT_TIMEOUT_S, self.timeout_s), read_timeout=self.timeout_s,
            user_agent_extra="faasops",
        )
        try:
            client = boto3.session.Session().client(
                self.service, region_name=self.region, endpoint_url=self.endpoint_url, config=config
            )
        except BotoCoreError as exc:
            raise ProviderError(f"{self.display}: cannot create an AWS client: {_one_line(exc)} "
                                "(set `region` in faas.yaml or AWS_REGION)") from None
        client.meta.events.register("before-call.*.*", self._count)
        return client

    def _count(self, event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        with self._calls_mutex:
            self.calls[f"{service}.{operation}"] += 1

    @property
    def endpoint(self) -> str:
        url = self._client.meta.endpoint_url if self._client is not None else self.endpoint_url
        return _safe_url(url)

    def _missing(self, operation: str) -> _NotFound:
        """The error for a missing table or bucket, saying how to create it."""
        raise NotImplementedError

    def _call(self, operation: str, ok_codes: tuple[str, ...] = (), **kwargs: Any) -> dict[str, Any]:
        """Call ``operation`` (snake_case), mapping every failure to a one-line user error.

        Failed conditions raise :class:`_ConditionFailed` for the caller to handle; an error
        whose code is in ``ok_codes`` returns ``{}`` instead."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError as BotoConnectionError,
            HTTPClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )

        client = self.client
        try:
            return getattr(client, operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = str(error.get("Message", ""))
            if code in ok_codes:
                return {}
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed() from None
            if code == "TransactionCanceledException":
                reasons = [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])]
                raise _ConditionFailed(reasons) from None
            if code in ("ResourceNotFoundException", "NoSuchBucket"):
                raise self._missing(exc.operation_name) from None
            if "specified index" in message:
                raise ProviderError(
                    f"{self.display}: {_one_line(message)}: it was not created by faasops; see "
                    "`python -m faasops.plugins.aws table-definition TABLE` for the layout it needs"
                ) from None
            if code in _ACCESS_CODES:
                raise ProviderError(
                    f"{self.display}: access denied for {exc.operation_name} ({code}"
                    + (f": {_one_line(message)}" if message and message != code else "")
                    + "); check the IAM permissions of the AWS identity faasops runs as"
                ) from None
            if code in _THROTTLE_CODES:
                raise ProviderError(
                    f"{self.display}: {exc.operation_name} was throttled ({code}) and still failed after "
                    f"{self.max_attempts} attempts; retry later, raise `max_attempts`, or raise the capacity"
                ) from None
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
            if status >= 500:  # transient by botocore's rules: it was retried
                raise ProviderError(
                    f"{self.display}: {exc.operation_name} failed: {code}: {_one_line(message) or f'HTTP {status}'} "
                    f"(HTTP {status}, still failing after {self.max_attempts} attempts)"
                ) from None
            raise ProviderError(f"{self.display}: {exc.operation_name} failed: {code}: {_one_line(message)}") from None
        except (NoCredentialsError, PartialCredentialsError):
            raise ProviderError(
                f"{self.display}: no usable AWS credentials: faasops uses the default AWS credential chain "
                "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, IRSA web identity, instance role)"
            ) from None
        except (BotoConnectionError, HTTPClientError) as exc:
            raise ProviderError(
                f"{self.display}: cannot reach {self.endpoint} ({type(exc).__name__} after "
                f"{self.max_attempts} attempts); check `endpoint_url`, `region` and the network"
            ) from None
        except BotoCoreError as exc:
            raise ProviderError(f"{self.display}: {_one_line(exc)}") from None

    def close(self) -> None:
        with self._client_mutex:
            if self._client is not None:
                self._client.close()
                self._client = None


# -------------------------------------------------------------------- DynamoDB state


def table_definition(table: str) -> dict[str, Any]:
    """The ``CreateTable`` request for a faasops state table (see the module docstring)."""
    string_attrs = ("pk", "sk", "task_scope", "task_ws_scope", "open_scope", "task_order")

    def index(name: str, partition: str) -> dict[str, Any]:
        return {
            "IndexName": name,
            "KeySchema": [{"AttributeName": partition, "KeyType": "HASH"},
                          {"AttributeName": "task_order", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }

    return {
        "TableName": table,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in string_attrs],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            index(INDEX_BY_TIME, "task_scope"),
            index(INDEX_BY_WORKSPACE, "task_ws_scope"),
            index(INDEX_OPEN, "open_scope"),
        ],
    }


def _snapshot_prefix(serial: int) -> str:
    return f"S{serial:012d}#P"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


class DynamoDBState(_AwsService):
    """State, task history and the lock of one project in a (shared) DynamoDB table."""

    service = "dynamodb"

    def __init__(self, project: str, table: str, *, region: str | None = None, endpoint_url: str | None = None,
                 create_table: bool = False, lease_s: float = LOCK_LEASE_S,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS, timeout_s: float = DEFAULT_TIMEOUT_S):
        super().__init__(region=region, endpoint_url=endpoint_url, max_attempts=max_attempts, timeout_s=timeout_s)
        self.project = project
        self.table = table
        self.create_table = create_table
        self.lease_s = lease_s
        self.display = f"DynamoDB table {table!r}"
        self._state_pk = f"PROJECT#{project}"
        self._tasks_pk = f"TASKS#{project}"
        self._snapshot_pk = f"SNAPSHOT#{project}"
        self._lock_key = {"pk": _s(f"LOCK#{project}"), "sk": _s(LOCK_SK)}
        self._record_mutex = threading.Lock()
        self._queue_mutex = threading.Lock()
        self._queue: list[_PendingRecord] = []  # records waiting for the next transaction
        self._held: str | None = None
        self._stop_beat = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def _missing(self, operation: str) -> _NotFound:
        return _NotFound(
            f"{self.display} does not exist at {self.endpoint}: set `create_table: true` under "
            "providers.state in faas.yaml, or create it with `aws dynamodb create-table --cli-input-json "
            f"\"$(python -m faasops.plugins.aws table-definition {self.table})\"`"
        )

    # ------------------------------------------------------------ table

    def _write(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """A write; with ``create_table`` a missing table is created, then the write retried."""
        try:
            return self._call(operation, **kwargs)
        except _NotFound:
            if not self.create_table:
                raise
        self._create_table()
        return self._call(operation, **kwargs)

    def _create_table(self) -> None:
        from botocore.exceptions import WaiterError

        # ResourceInUseException: another run is creating it right now.
        self._call("create_table", ok_codes=("ResourceInUseException",), **table_definition(self.table))
        try:
            self.client.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 300})
        except WaiterError as exc:
            raise ProviderError(f"{self.display}: it was created but did not become ACTIVE: {_one_line(exc)}") from None

    def _pages(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """The answer pages of one Query."""
        request = {"TableName": self.table, **kwargs}
        while True:
            page = self._call("query", **request)
            yield page
            if "LastEvaluatedKey" not in page:
                return
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item of one Query, page by page."""
        for page in self._pages(**kwargs):
            yield from page.get("Items", [])

    def _read_missing_ok(self, read: Callable[[], T], empty: T) -> T:
        """Reads never create the table: with ``create_table`` a missing one reads as empty."""
        try:
            return read()
        except _NotFound:
            if self.create_table:
                return empty
            raise

    # ------------------------------------------------------------ records

    def read(self, workspaces: Iterable[str] | None = None) -> ActualState:
        """The records: one consistent ``Query`` of the project's partition (1 MB pages). When
        the first page shows a snapshot of the current serial and more pages would follow, the
        snapshot's few items are read instead of the other pages (see :meth:`write_snapshot`)."""
        actual = self._read_missing_ok(lambda: self._read_records(use_snapshot=True)[0], ActualState())
        if workspaces is None:
            return actual
        wanted = set(workspaces)
        return ActualState({k: v for k, v in actual.workspaces.items() if k in wanted},
                           {k: v for k, v in actual.functions.items() if v.workspace in wanted}, actual.serial)

    def _read_records(self, use_snapshot: bool) -> tuple[ActualState, int]:
        """The state and the number of Query pages it took."""
        serial = 0
        ws: dict[str, WorkspaceRecord] = {}
        fns: dict[str, FunctionRecord] = {}
        pages = 0
        for page in self._pages(KeyConditionExpression="pk = :pk", ExpressionAttributeValues={":pk": _s(self._state_pk)},
                                ConsistentRead=True):
            pages += 1
            for item in page.get("Items", []):
                sk = item["sk"]["S"]
                if sk == SERIAL_SK:  # sorts first: it is on the first page
                    serial = int(item["serial"]["N"])
                    if use_snapshot and "LastEvaluatedKey" in page:
                        snapshot = self._read_snapshot(item)
                        if snapshot is not None:
                            return snapshot, pages
                    continue
                if not sk.startswith("WS#"):
                    continue
                workspace, is_function, name = sk[3:].partition("#FN#")
                if not is_function:
                    ws[workspace] = WorkspaceRecord(workspace, json.loads(item["spec"]["S"]))
                else:
                    record = FunctionRecord(workspace, name, json.loads(item["spec"]["S"]),
                                            item["artifact"]["S"], item["applied_at"]["S"],
                                            item.get("deployed", {}).get("S", ""))
                    fns[record.address] = record
        return ActualState(ws, fns, serial), pages

    def serial(self) -> int:
        """The state's serial: one consistent ``GetItem``."""
        item = self._serial_item()
        return int(item["serial"]["N"]) if "serial" in item else 0

    def _serial_item(self) -> dict[str, Any]:
        """The serial item (with the snapshot's notes), ``{}`` before the first record."""
        return self._read_missing_ok(lambda: self._call(
            "get_item", TableName=self.table, Key={"pk": _s(self._state_pk), "sk": _s(SERIAL_SK)},
            ConsistentRead=True,
        ).get("Item"), None) or {}

    # ------------------------------------------------------------ snapshot

    def _read_snapshot(self, serial_item: dict[str, Any]) -> ActualState | None:
        """The snapshot's records if ``serial_item`` names one of its serial and it is whole."""
        serial = int(serial_item["serial"]["N"])
        if serial_item.get("snapshot_serial", {}).get("N") != str(serial) \
                or serial_item.get("snapshot_format", {}).get("N") != str(SNAPSHOT_FORMAT):
            return None  # none, or records were written since (an apply failed or was killed)
        parts = list(self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)", ConsistentRead=True,
            ExpressionAttributeValues={":pk": _s(self._snapshot_pk), ":prefix": _s(_snapshot_prefix(serial))},
        ))
        data = b"".join(part["data"]["B"] for part in parts)
        if len(parts) != int(serial_item["snapshot_parts"]["N"]) \
                or "sha256:" + hashlib.sha256(data).hexdigest() != serial_item["snapshot_digest"]["S"]:
            return None  # damaged, or replaced while this was read
        try:
            body = json.loads(zlib.decompress(data))
        except (zlib.error, ValueError):
            return None
        return ActualState(
            {name: WorkspaceRecord(name, spec) for name, spec in body["workspaces"].items()},
            {f"{f[0]}/{f[1]}": FunctionRecord(*f) for f in body["functions"]},
            serial,
        )

    def write_snapshot(self) -> bool:
        """Write the records as one compressed snapshot, so that plans read a few items instead
        of every record: at 10,000 functions, one Query page and two items instead of 9 pages
        of 1 MB (and a hundredth of the read capacity).

        Called at the end of an apply, holding the lock. The snapshot is of one serial, noted on
        the serial item, and is only used while the serial is unchanged: every record write
        bumps it, so the records of a later (or interrupted) apply are never hidden. Written in
        one transaction conditioned on the serial and the lock. Returns False when the records
        fit one Query page (a snapshot would not save a read), when the snapshot is already of
        this serial, or when the state is too large for one transaction."""
        current = self._serial_item()
        previous = current.get("snapshot_serial", {}).get("N")
        if previous is not None and previous == current.get("serial", {}).get("N") \
                and current.get("snapshot_format", {}).get("N") == str(SNAPSHOT_FORMAT):
            return False  # a no-op apply: the snapshot is of this serial already
        actual, pages = self._read_records(use_snapshot=False)
        if pages <= 1:  # a read is one page anyway; an older snapshot (say, before a destroy) goes
            self._delete_snapshot_parts(previous, current, actual.serial)
            return False
        body = {
            "workspaces": {name: record.spec for name, record in sorted(actual.workspaces.items())},
            "functions": [[r.workspace, r.name, r.spec, r.artifact, r.applied_at, r.deployed]
                          for _, r in sorted(actual.functions.items())],
        }
        data = zlib.compress(json.dumps(body, sort_keys=True, separators=(",", ":")).encode(), 6)
        chunks = [data[i:i + SNAPSHOT_PART_BYTES] for i in range(0, len(data), SNAPSHOT_PART_BYTES)]
        if len(chunks) > SNAPSHOT_MAX_PARTS:
            return False
        prefix = _snapshot_prefix(actual.serial)
        items: list[dict[str, Any]] = [{"Put": {"TableName": self.table, "Item": {
            "pk": _s(self._snapshot_pk), "sk": _s(f"{prefix}{i:04d}"), "data": {"B": chunk}}}}
            for i, chunk in enumerate(chunks)]
        items.append({"Update": {
            "TableName": self.table, "Key": {"pk": _s(self._state_pk), "sk": _s(SERIAL_SK)},
            "UpdateExpression": "SET snapshot_serial = :serial, snapshot_parts = :parts, "
                                "snapshot_digest = :digest, snapshot_format = :format",
            "ConditionExpression": "serial = :serial",
            "ExpressionAttributeValues": {
                ":serial": _n(actual.serial), ":parts": _n(len(chunks)), ":format": _n(SNAPSHOT_FORMAT),
                ":digest": _s("sha256:" + hashlib.sha256(data).hexdigest())},
        }})
        if self._held:
            items.append(self._lock_check(self._held))
        try:
            self._write("transact_write_items", TransactItems=items)
        except _ConditionFailed:
            return False  # the state moved on meanwhile: plans read the records
        self._delete_snapshot_parts(previous, current, actual.serial)
        return True

    def _delete_snapshot_parts(self, previous: str | None, serial_item: dict[str, Any], current: int) -> None:
        """Delete the parts of the snapshot ``serial_item`` noted, unless it is of ``current``."""
        if previous is None or previous == str(current):
            return
        old_prefix = _snapshot_prefix(int(previous))
        for i in range(int(serial_item.get("snapshot_parts", {}).get("N", "0"))):
            self._call("delete_item", TableName=self.table,
                       Key={"pk": _s(self._snapshot_pk), "sk": _s(f"{old_prefix}{i:04d}")})

    def _lock_check(self, lock_id: str) -> dict[str, Any]:
        """A transaction item that fails unless the lock item still carries ``lock_id``."""
        return {"ConditionCheck": {
            "TableName": self.table, "Key": self._lock_key,
            "ConditionExpression": "lock_id = :id", "ExpressionAttributeValues": {":id": _s(lock_id)},
        }}

    def _record(self, change: dict[str, Any], what: str, tasks: Iterable[Task] = ()) -> None:
        """Write one record, bump the serial and (holding the lock) check we still hold it —
        all in one transaction, with ``tasks`` put in it too.

        One writer per process: the serial item would otherwise make the apply threads'
        transactions conflict with each other. Records that wait meanwhile are written together
        by the next transaction (group commit, up to :data:`TRANSACTION_MAX_ITEMS` items): one
        serial bump and one round trip for all of them, so parallel applies don't queue up
        behind one another's round trips."""
        entry = _PendingRecord([change, *({"Put": {"TableName": self.table, "Item": self._task_item(task)}}
                                          for task in tasks)], what)
        if len(entry.items) > TRANSACTION_MAX_ITEMS - 2:
            raise ProviderError(f"{self.display}: recording {what} needs {len(entry.items)} items in one "
                                f"transaction, more than {TRANSACTION_MAX_ITEMS - 2}")
        with self._queue_mutex:
            self._queue.append(entry)
        with self._record_mutex:
            while not entry.done:
                batch = self._take_batch()
                try:
                    self._write_batch(batch)
                finally:
                    for one in batch:
                        if not one.done:  # interrupted mid-write: whether it landed is unknown
                            one.error = ProviderError(f"{self.display}: recording {one.what} was interrupted")
                            one.done = True
        if entry.error is not None:
            raise entry.error

    def _write_batch(self, batch: list["_PendingRecord"]) -> None:
        try:
            self._transact(batch)
        except FaasopsError as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:
                # One record may be what the transaction refused: write each alone.
                for one in batch:
                    try:
                        self._transact([one])
                    except FaasopsError as alone:
                        one.error = alone
                    one.done = True
        for one in batch:
            one.done = True

    def _take_batch(self) -> list["_PendingRecord"]:
        """The waiting records, oldest first, that fit one transaction (each item once)."""
        batch: list[_PendingRecord] = []
        keys: set[str] = set()
        room = TRANSACTION_MAX_ITEMS - 2  # the serial and the lock check
        with self._queue_mutex:
            while self._queue:
                entry = self._queue[0]
                entry_keys = {_item_key(item) for item in entry.items}
                if batch and (len(entry.items) > room or entry_keys & keys):
                    break
                self._queue.pop(0)
                batch.append(entry)
                keys |= entry_keys
                room -= len(entry.items)
        return batch

    def _transact(self, batch: list["_PendingRecord"]) -> None:
        """One transaction: the serial bump, the lock check (while holding the lock) and the
        items of ``batch``; conflicts with other writers are retried."""
        serial = {"Update": {
            "TableName": self.table, "Key": {"pk": _s(self._state_pk), "sk": _s(SERIAL_SK)},
            "UpdateExpression": "SET item_type = :t ADD serial :one",
            "ExpressionAttributeValues": {":t": _s("serial"), ":one": _n(1)},
        }}
        items = [serial]
        held = self._held
        if held:
            items.append(self._lock_check(held))
        for entry in batch:
            items += entry.items
        what = batch[0].what if len(batch) == 1 else f"{batch[0].what} and {len(batch) - 1} more records"
        attempts = TRANSACTION_CONFLICT_RETRY.start()
        while True:
            try:
                self._write("transact_write_items", TransactItems=items)
                return
            except _ConditionFailed as failed:
                if held and len(failed.reasons) >= 2 and failed.reasons[1] == "ConditionalCheckFailed":
                    raise LockError(
                        f"the state lock {held} is no longer held by this run (its lease expired or it "
                        f"was force-unlocked), so {what} was not recorded; run `faasops plan` again"
                    ) from None
                if "TransactionConflict" not in failed.reasons:
                    raise ProviderError(f"{self.display}: recording {what} was cancelled "
                                        f"({', '.join(failed.reasons) or 'no reason given'})") from None
            if not attempts.retry():
                raise ProviderError(f"{self.display}: recording {what} kept conflicting with another writer "
                                    f"({attempts.summary()}); retry")

    def _put_record(self, item: dict[str, Any], what: str, tasks: Iterable[Task] = ()) -> None:
        self._record({"Put": {"TableName": self.table, "Item": item}}, what, tasks)

    def _delete_record(self, sk: str, what: str, tasks: Iterable[Task] = ()) -> None:
        self._record({"Delete": {"TableName": self.table, "Key": {"pk": _s(self._state_pk), "sk": _s(sk)}}},
                     what, tasks)

    def put_workspace(self, record: WorkspaceRecord) -> None:
        self._put_record({
            "pk": _s(self._state_pk), "sk": _s(f"WS#{record.name}"), "item_type": _s("workspace"),
            "workspace": _s(record.name), "spec": _s(json.dumps(record.spec, sort_keys=True)),
        }, f"workspace {record.name}")

    def delete_workspace(self, name: str) -> None:
        self._delete_record(f"WS#{name}", f"the deletion of workspace {name}")

    def put_function(self, record: FunctionRecord, tasks: Iterable[Task] = ()) -> None:
        """Record a function; ``tasks`` are written in the same transaction."""
        self._put_record({
            "pk": _s(self._state_pk), "sk": _s(f"WS#{record.workspace}#FN#{record.name}"),
            "item_type": _s("function"), "workspace": _s(record.workspace), "name": _s(record.name),
            "spec": _s(json.dumps(record.spec, sort_keys=True)), "artifact": _s(record.artifact),
            "applied_at": _s(record.applied_at),
            **({"deployed": _s(record.deployed)} if record.deployed else {}),
        }, f"function {record.address}", tasks)

    def delete_function(self, workspace: str, name: str, tasks: Iterable[Task] = ()) -> None:
        """Delete a function's record; ``tasks`` are written in the same transaction."""
        self._delete_record(f"WS#{workspace}#FN#{name}", f"the deletion of function {workspace}/{name}", tasks)

    # ------------------------------------------------------------ tasks

    def put_task(self, task: Task) -> None:
        """One ``PutItem`` of the whole task: every writer passes the task whole (its id,
        creation time and run never change), so a put gives what an update would, without an
        update expression to evaluate (moto parses one in ~10 ms)."""
        self._write("put_item", TableName=self.table, Item=self._task_item(task))

    def put_tasks(self, tasks: Iterable[Task]) -> None:
        """Put several tasks: one ``BatchWriteItem`` per 25 (a task appears once per request,
        its newest version). Items DynamoDB returns unprocessed are written again with backoff."""
        newest = {task.id: task for task in tasks}
        items = [{"PutRequest": {"Item": self._task_item(task)}} for task in newest.values()]
        for start in range(0, len(items), BATCH_WRITE_MAX):
            pending = items[start:start + BATCH_WRITE_MAX]
            attempts = UNPROCESSED_RETRY.start()
            while pending:
                answer = self._write("batch_write_item", RequestItems={self.table: pending})
                pending = (answer.get("UnprocessedItems") or {}).get(self.table) or []
                if pending and not attempts.retry():
                    raise ProviderError(f"{self.display}: {len(pending)} task writes stayed unprocessed "
                                        f"({attempts.summary()}); retry")

    def _task_item(self, task: Task) -> dict[str, Any]:
        item = {
            "pk": _s(self._tasks_pk), "sk": _s(f"TASK#{task.id}"), "item_type": _s("task"),
            "task_id": _s(task.id), "run_id": _s(task.run_id), "workspace": _s(task.workspace),
            "kind": _s(task.kind), "status": _s(task.status), "created_at": _s(task.created_at),
            "updated_at": _s(task.updated_at), "message": _s(task.message),
            "task_scope": _s(self._tasks_pk), "task_ws_scope": _s(f"{self._tasks_pk}#WS#{task.workspace}"),
            "task_order": _s(f"{task.created_at}#{task.id}"),
        }
        if task.function is not None:
            item["function"] = _s(task.function)
        if task.status in OPEN_STATUSES:
            item["open_scope"] = _s(self._tasks_pk)
        return item

    def list_tasks(self, workspace: str | None = None, task_id: str | None = None, limit: int = 50) -> list[Task]:
        return self._read_missing_ok(lambda: self._list_tasks(workspace, task_id, limit), [])

    def _list_tasks(self, workspace: str | None, task_id: str | None, limit: int) -> list[Task]:
        if limit <= 0:
            return []
        if task_id:
            items = [
                item for item in self._query(
                    KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
                    ExpressionAttributeValues={":pk": _s(self._tasks_pk), ":prefix": _s(f"TASK#{task_id}")},
                    ConsistentRead=True,
                )
                if not workspace or item["workspace"]["S"] == workspace
            ]
            items.sort(key=lambda item: item["task_order"]["S"], reverse=True)
            return [_task(item) for item in items[:limit]]
        index, key, scope = (
            (INDEX_BY_WORKSPACE, "task_ws_scope", f"{self._tasks_pk}#WS#{workspace}") if workspace
            else (INDEX_BY_TIME, "task_scope", self._tasks_pk)
        )
        found: list[Task] = []
        for item in self._query(
            IndexName=index, KeyConditionExpression=f"{key} = :scope",
            ExpressionAttributeValues={":scope": _s(scope)}, ScanIndexForward=False, Limit=limit,
        ):
            found.append(_task(item))
            if len(found) == limit:
                break
        return found

    def _mark_interrupted(self) -> None:
        """Fail the tasks a previous run left pending or running (it is gone: we hold the lock)."""
        for item in list(self._query(
            IndexName=INDEX_OPEN, KeyConditionExpression="open_scope = :scope",
            ExpressionAttributeValues={":scope": _s(self._tasks_pk)},
        )):
            try:
                self._call(
                    "update_item", TableName=self.table, Key={"pk": item["pk"], "sk": item["sk"]},
                    UpdateExpression="SET #status = :failed, updated_at = :now, message = :why REMOVE open_scope",
                    ConditionExpression="#status IN (:pending, :running)",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={
                        ":failed": _s("failed"), ":now": _s(iso(utc_now())), ":why": _s(INTERRUPTED_MESSAGE),
                        ":pending": _s("pending"), ":running": _s("running"),
                    },
                )
            except _ConditionFailed:
                pass  # it finished after the index was read

    # ------------------------------------------------------------ lock

    def _get_lock(self) -> tuple[LockInfo, int] | None:
        def get() -> dict[str, Any]:
            return self._call("get_item", TableName=self.table, Key=self._lock_key, ConsistentRead=True)

        item = self._read_missing_ok(get, {}).get("Item")
        if not item:
            return None
        info = LockInfo(
            id=item["lock_id"]["S"], holder=item["holder"]["S"], host=item["host"]["S"],
            pid=int(item["pid"]["N"]), command=item["command"]["S"], created_at=item["created_at"]["S"],
            expires_at=item["expires_at"]["S"], ci_url=item.get("ci_url", {}).get("S", ""),
        )
        return info, int(item["version"]["N"])

    def current_lock(self) -> LockInfo | None:
        found = self._get_lock()
        return found[0] if found else None


    def acquire_lock(self, info: LockInfo, timeout_s: float) -> LockInfo:
        deadline = time.monotonic() + timeout_s
        lost_races = 0
        while True:
            found = self._get_lock()
            held = found[0] if found else None
            if held is not None and held.id == info.id:
                # Our conditional write landed but its answer was lost; botocore's retry of it then
                # failed the condition. The lock is ours.
                self._start_heartbeat(held.id)
                try:
                    self._mark_interrupted()
                except BaseException:
                    self.release_lock(held.id)
                    raise
                return held
            if held is None or is_stale(held):
                lock = replace(info, expires_at=lease_until(self.lease_s))
                if self._try_take(lock, found):
                    self._start_heartbeat(lock.id)
                    try:
                        self._mark_interrupted()
                    except BaseException:
                        self.release_lock(lock.id)  # nobody else would, until the lease ran out
                        raise
                    return lock
                lost_races += 1
                if lost_races < 20 or time.monotonic() < deadline:
                    time.sleep(random.uniform(0.0, 0.05))
                    continue  # look again: who won?
                raise LockError("could not take the state lock: other runs kept taking it first; retry")
            if time.monotonic() >= deadline:
                raise locked_error(held)
            time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))

    def _try_take(self, lock: LockInfo, seen: tuple[LockInfo, int] | None) -> bool:
        """Write ``lock`` if the lock item is still what we saw; False when another run won."""
        if seen is None:
            condition, values = "attribute_not_exists(pk)", {}
        else:
            condition = "lock_id = :seen_id AND version = :seen_version"
            values = {":seen_id": _s(seen[0].id), ":seen_version": _n(seen[1])}
        item = {
            **self._lock_key, "item_type": _s("lock"), "lock_id": _s(lock.id), "holder": _s(lock.holder),
            "host": _s(lock.host), "pid": _n(lock.pid), "command": _s(lock.command),
            "created_at": _s(lock.created_at), "expires_at": _s(lock.expires_at), "ci_url": _s(lock.ci_url),
            "version": _n(seen[1] + 1 if seen else 1),
        }
        try:
            self._write("put_item", TableName=self.table, Item=item, ConditionExpression=condition,
                        **({"ExpressionAttributeValues": values} if values else {}))
        except _ConditionFailed:
            return False
        return True

    def _start_heartbeat(self, lock_id: str) -> None:
        self._stop_heartbeat()
        self._held = lock_id
        stop = self._stop_beat = threading.Event()

        def beat() -> None:
            while not stop.wait(self.lease_s / 3):
                try:
                    self._call(
                        "update_item", TableName=self.table, Key=self._lock_key,
                        UpdateExpression="SET expires_at = :expires ADD version :one",
                        ConditionExpression="lock_id = :id",
                        ExpressionAttributeValues={
                            ":expires": _s(lease_until(self.lease_s)),
                            ":one": _n(1), ":id": _s(lock_id),
                        },
                    )
                except _ConditionFailed:
                    return  # the lock was taken from us; record writes are fenced against this
                except FaasopsError:
                    continue  # a network blip: the lease outlasts two missed beats

        self._heartbeat = threading.Thread(target=beat, name="faasops-dynamodb-lock-heartbeat", daemon=True)
        self._heartbeat.start()

    def _stop_heartbeat(self) -> None:
        self._held = None
        self._stop_beat.set()
        if self._heartbeat is not None and self._heartbeat is not threading.current_thread():
            self._heartbeat.join(timeout=5)
        self._heartbeat = None

    def _delete_lock(self, lock_id: str) -> None:
        self._call("delete_item", TableName=self.table, Key=self._lock_key,
                   ConditionExpression="lock_id = :id", ExpressionAttributeValues={":id": _s(lock_id)})

    def release_lock(self, lock_id: str) -> None:
        if self._held == lock_id:
            self._stop_heartbeat()
        try:
            self._delete_lock(lock_id)
        except (_ConditionFailed, _NotFound):
            pass  # already gone, or taken over after our lease expired: not ours to delete

    def force_unlock(self, lock_id: str) -> None:
        found = self._get_lock()
        if found is None:
            raise LockError("the state is not locked")
        held = found[0]
        if held.id != lock_id:
            raise LockError(f"lock id {lock_id!r} does not match the current lock {held.id!r} "
                            f"(held by {held.holder} on {held.host})")
        try:
            self._delete_lock(lock_id)
        except _ConditionFailed:
            after = self._get_lock()
            if after is None:
                return  # our delete landed; a retry of it (its answer lost) found nothing to delete
            raise LockError(f"lock {lock_id!r} changed while it was being removed; look again") from None

    def close(self) -> None:
        self._stop_heartbeat()
        super().close()


@dataclass
class _PendingRecord:
    """A record write (its transaction items) waiting for a transaction (see ``_record``)."""

    items: list[dict[str, Any]]
    what: str
    done: bool = False
    error: FaasopsError | None = None


def _item_key(item: dict[str, Any]) -> str:
    """Which table item a transaction item touches (one item may appear once per transaction)."""
    op = next(iter(item.values()))
    key = op.get("Key") or {name: op["Item"][name] for name in ("pk", "sk")}
    return f"{key['pk']['S']}\x00{key['sk']['S']}"


def _task(item: dict[str, Any]) -> Task:
    return Task(
        id=item["task_id"]["S"], workspace=item["workspace"]["S"], function=item.get("function", {}).get("S"),
        kind=item["kind"]["S"], status=item["status"]["S"], created_at=item["created_at"]["S"],
        updated_at=item["updated_at"]["S"], message=item.get("message", {}).get("S", ""),
        run_id=item.get("run_id", {}).get("S", ""),
    )


# -------------------------------------------------------------------- S3 sources


class S3SourceStore(_AwsService):
    """Validated source archives in S3, content-addressed and encrypted at rest."""

    service = "s3"

    def __init__(self, bucket: str, *, prefix: str = DEFAULT_PREFIX, region: str | None = None,
                 endpoint_url: str | None = None, sse: str = "AES256", kms_key_id: str | None = None,
                 create_bucket: bool = False, max_attempts: int = DEFAULT_MAX_ATTEMPTS,
                 timeout_s: float = DEFAULT_TIMEOUT_S, project: str = ""):
        super().__init__(region=region, endpoint_url=endpoint_url, max_attempts=max_attempts, timeout_s=timeout_s)
        self.bucket = bucket
        prefix = prefix.lstrip("/")
        self.prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        # The project's own folder: what gc may clean without touching other projects' sources.
        self.project_prefix = f"{self.prefix}{project}/" if project else ""
        self.sse = sse
        self.kms_key_id = kms_key_id
        self.create_bucket = create_bucket
        self.display = f"S3 bucket {bucket!r}"
        self._bucket_mutex = threading.Lock()
        # Keys this process found or wrote: functions sharing a source ask for it once.
        self._present: set[str] = set()
        self._present_mutex = threading.Lock()

    def _missing(self, operation: str) -> _NotFound:
        return _NotFound(f"{self.display} does not exist at {self.endpoint}: create it, or set "
                         "`create_bucket: true` under providers.sources in faas.yaml")

    def key_for(self, snapshot: SourceSnapshot) -> str:
        return f"{self.project_prefix or self.prefix}{snapshot.digest.removeprefix('sha256:')}.tar.gz"

    def garbage(self, retained: Retained) -> Garbage:
        """Archives under the project's own prefix whose source no retained artifact was built
        from (:class:`faasops.providers.StoredArtifacts`). Keys outside it — other projects',
        and those written before keys carried the project — are never listed."""
        store = f"S3 bucket {self.bucket!r} {self.project_prefix}"
        if not self.project_prefix:
            return Garbage(store, notes=("no project prefix: sources are shared, left alone",))
        items = []
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.project_prefix}
        while True:
            page = self._call("list_objects_v2", **request)
            for entry in page.get("Contents", []):
                name = entry["Key"][len(self.project_prefix):]
                if _SOURCE_NAME.fullmatch(name) and f"sha256:{name.removesuffix('.tar.gz')}" not in retained.sources:
                    items.append(StoredItem("source", entry["Key"], int(entry.get("Size", 0))))
            if not page.get("IsTruncated"):
                break
            request["ContinuationToken"] = page["NextContinuationToken"]
        return Garbage(store, tuple(items))

    def collect(self, garbage: Garbage) -> Garbage:
        by_key = {item.name: item for item in garbage.items}
        keys = sorted(by_key)
        removed = []
        for start in range(0, len(keys), 1000):  # DeleteObjects takes up to 1000 keys
            answer = self._call("delete_objects", Bucket=self.bucket,
                                Delete={"Objects": [{"Key": key} for key in keys[start:start + 1000]]})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise ProviderError(f"{self.display}: DeleteObjects failed for {len(answer['Errors'])} key(s), "
                                    f"e.g. {first.get('Key')}: {first.get('Code')}")
            removed += [by_key[d["Key"]] for d in answer.get("Deleted", []) if d.get("Key") in by_key]
        return Garbage(garbage.store, tuple(removed), garbage.notes)

    def upload(self, function: Function, snapshot: SourceSnapshot) -> str:
        key = self.key_for(snapshot)
        uri = f"s3://{self.bucket}/{key}"
        with self._present_mutex:
            if key in self._present:
                return uri
        if self._exists(key):
            with self._present_mutex:
                self._present.add(key)
            return uri
        put = {
            "Bucket": self.bucket, "Key": key, "Body": snapshot.archive, "ContentType": "application/gzip",
            "ServerSideEncryption": self.sse,
            "Metadata": {"workspace": function.workspace, "function": function.name, "digest": snapshot.digest},
        }
        if self.kms_key_id:
            put["SSEKMSKeyId"] = self.kms_key_id
        try:
            self._call("put_object", **put)
        except _NotFound:
            if not self.create_bucket:
                raise
            self._create_bucket()
            self._call("put_object", **put)
        with self._present_mutex:
            self._present.add(key)
        return uri

    def _exists(self, key: str) -> bool:
        """HEAD the object. A 404 (no object, or no bucket: the PUT tells which) or a 403 (no
        s3:ListBucket/GetObject permission: PUT anyway, it is idempotent) both mean "write it"."""
        found = self._call("head_object", ok_codes=("404", "403", "NoSuchKey", "NotFound", "Forbidden"),
                           Bucket=self.bucket, Key=key)
        return bool(found)

    def _create_bucket(self) -> None:
        with self._bucket_mutex:
            request: dict[str, Any] = {"Bucket": self.bucket}
            region = self.client.meta.region_name
            if region and region != "us-east-1":
                request["CreateBucketConfiguration"] = {"LocationConstraint": region}
            self._call("create_bucket", ok_codes=("BucketAlreadyOwnedByYou",), **request)
            self._call("put_public_access_block", Bucket=self.bucket, PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            })


# -------------------------------------------------------------------- options


def _common(region_of: str) -> dict[str, dict[str, Any]]:
    """The options every AWS provider type has."""
    return {
        "region": {"type": "string", "minLength": 1, "description": f"AWS region of the {region_of} (default: boto3's)"},
        "endpoint_url": {"type": "string", "minLength": 1, "description": "another endpoint (LocalStack, moto)"},
        "max_attempts": {"type": "integer", "minimum": 1, "default": DEFAULT_MAX_ATTEMPTS,
                         "description": "attempts per call, the first included"},
    }


STATE_OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "table": {"type": "string", "minLength": 1, "description": "the DynamoDB table (one table, many projects)"},
        "create_table": {"type": "boolean", "default": False, "description": "create the table when missing"},
        "lock_lease_seconds": seconds_option("how long a run's lock lasts without renewal", LOCK_LEASE_S),
        "timeout_seconds": seconds_option("read timeout per request", DEFAULT_TIMEOUT_S),
        **_common("table"),
    },
    "required": ["table"],
}
SOURCES_OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "bucket": {"type": "string", "minLength": 1, "description": "the S3 bucket"},
        "prefix": {"type": "string", "default": DEFAULT_PREFIX, "description": "key prefix of the archives"},
        "sse": {"enum": list(SSE_MODES), "default": "AES256", "description": "server-side encryption"},
        "kms_key_id": {"type": "string", "minLength": 1,
                       "description": "KMS key (with sse: aws:kms; default the account's aws/s3 key)"},
        "create_bucket": {"type": "boolean", "default": False,
                          "description": "create the bucket when missing (blocking public access)"},
        "timeout_seconds": seconds_option("read timeout per request", DEFAULT_TIMEOUT_S),
        **_common("bucket"),
    },
    "required": ["bucket"],
}


def _attempts(options: dict[str, Any], where: str) -> int:
    attempts = int(options.get("max_attempts", DEFAULT_MAX_ATTEMPTS))
    if attempts < 1:
        raise ProviderError(f"{where}: `max_attempts` must be at least 1")
    return attempts


def _timeout(options: dict[str, Any], where: str) -> float:
    timeout = float(options.get("timeout_seconds", DEFAULT_TIMEOUT_S))
    if timeout <= 0:
        raise ProviderError(f"{where}: `timeout_seconds` must be positive")
    return timeout


# -------------------------------------------------------------------- hook implementations


@hookimpl
def faasops_provider_options() -> list[tuple[str, str, dict[str, Any]]]:
    return [("state", "dynamodb", STATE_OPTIONS_SCHEMA), ("sources", "s3", SOURCES_OPTIONS_SCHEMA)]


@hookimpl
def faasops_provider_types() -> list[tuple[str, str, str]]:
    return [
        ("state", "dynamodb", "state, task history and lock in a DynamoDB table (one table, many projects)"),
        ("sources", "s3", "content-addressed, encrypted source archives in S3"),
    ]


@hookimpl
def faasops_state_backend(config: ProviderConfig, project: Project) -> DynamoDBState | None:
    if config.type != "dynamodb":
        return None
    options = config.options  # checked against STATE_OPTIONS_SCHEMA
    lease = float(options.get("lock_lease_seconds", LOCK_LEASE_S))
    if lease <= 0:
        raise ProviderError("providers.state (dynamodb): `lock_lease_seconds` must be positive")
    return DynamoDBState(
        project.name, options["table"], region=options.get("region"), endpoint_url=options.get("endpoint_url"),
        create_table=options.get("create_table", False), lease_s=lease,
        max_attempts=_attempts(options, "providers.state (dynamodb)"),
        timeout_s=_timeout(options, "providers.state (dynamodb)"),
    )


@hookimpl
def faasops_source_store(config: ProviderConfig, project: Project) -> S3SourceStore | None:
    if config.type != "s3":
        return None
    options = config.options  # checked against SOURCES_OPTIONS_SCHEMA
    sse = options.get("sse", "AES256")
    if sse not in SSE_MODES:
        raise ProviderError(f"providers.sources (s3): `sse` must be one of {', '.join(SSE_MODES)}, not {sse!r}")
    if options.get("kms_key_id") and sse != "aws:kms":
        raise ProviderError("providers.sources (s3): `kms_key_id` needs `sse: aws:kms`")
    return S3SourceStore(
        options["bucket"], prefix=options.get("prefix", DEFAULT_PREFIX), region=options.get("region"),
        endpoint_url=options.get("endpoint_url"), sse=sse, kms_key_id=options.get("kms_key_id"),
        create_bucket=options.get("create_bucket", False),
        max_attempts=_attempts(options, "providers.sources (s3)"),
        timeout_s=_timeout(options, "providers.sources (s3)"), project=project.name,
    )


def _main(argv: list[str]) -> int:
    """``python -m faasops.plugins.aws table-definition TABLE``: the CreateTable JSON."""
    if len(argv) != 2 or argv[0] != "table-definition":
        print("usage: python -m faasops.plugins.aws table-definition TABLE", file=sys.stderr)
        return 2
    print(json.dumps(table_definition(argv[1]), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
