"""The DynamoDB log source (slot ``logs``, type ``dynamodb``): ``faasops logs WS [FN]`` on AWS.

The platform's functions and runtime write one item per log record (an invocation, or a line
a function printed) into a DynamoDB logs table; faasops only reads it. :func:`put_log` writes an
item in exactly the format below: platform runtimes use it (or write the same attributes),
and so do the tests.

Options (under ``providers.logs`` with ``type: dynamodb``): ``table`` (default
``faasops-logs``), ``region``, ``endpoint_url``, ``max_attempts`` (default 5),
``poll_interval_seconds`` (seconds between two polls of ``--follow``, default 1), ``follow_overlap_seconds``
(seconds ``--follow`` keeps re-reading behind the newest record it showed, for writes that
land late or reach the index late; default 5). Credentials come from the default AWS chain,
as for the state table; credential-like options are refused.

Logs table design
=================

============  ==========================================  ==================================
attribute     value                                       role
============  ==========================================  ==================================
``pk``        ``LOGS#<workspace>``                        partition key (S)
``sk``        ``<time>#<function>#<id>``                  sort key (S): newest first = reverse
``fpk``       ``LOGS#<workspace>#<function>``             partition key (S) of GSI ``by_function``
``id``        unique per record (request id, uuid …)      makes ``sk`` unique
``workspace``, ``function``, ``function_id``  names; ``function_id = <workspace>.<function>``
``time``      the record's time, same text as in ``sk``   for people reading the table
``message``   the text (may span lines)                   ``--grep`` filters on it
``level``     optional (``INFO``, ``ERROR`` …)
``status``    optional N: the HTTP status of an invocation
``duration_ms``  optional N: how long the invocation took
``labels``    optional M of strings (pod, request path …)
``expires_at``  optional N (epoch seconds): the table's TTL attribute
============  ==========================================  ==================================

``<time>`` is UTC ISO 8601 with microseconds, fixed width (``2026-01-31T12:00:00.123456Z``), so
string order is time order.

- **Workspace logs** are one Query on ``pk = LOGS#<ws>`` with ``ScanIndexForward=false`` and
  ``Limit``: the newest records first, however large the table.
- **Function logs** are the same Query on the global secondary index ``by_function``
  (``fpk`` HASH, ``sk`` RANGE, projection ALL). A GSI rather than a second item per record: the
  writer puts one item and DynamoDB maintains the index; it is eventually consistent, which
  ``--follow``'s overlap absorbs.
- ``--since`` is a key condition, ``sk >= <time of since>``; ``--grep TEXT`` is the filter
  ``contains(message, TEXT)`` (case-sensitive), the Query paginating until ``--limit`` records
  matched.
- ``--follow`` polls the same Query forward (``sk >=`` ``follow_overlap`` seconds before the
  newest record shown) and shows each ``sk`` once; it continues exactly where the preceding
  read of the same query stopped.
- Set the table's TTL to ``expires_at`` to expire old records
  (``aws dynamodb update-time-to-live --table-name faasops-logs
  --time-to-live-specification Enabled=true,AttributeName=expires_at``).
- A busy workspace writes one partition; DynamoDB's adaptive capacity serves a few thousand
  writes per second per partition key, far above one workspace's log volume on this platform.

Create the table with ``aws dynamodb create-table --cli-input-json "$(python -m
faasops.plugins.aws_logs table-definition faasops-logs)"``.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from faasops.errors import ProviderError
from faasops.hookspecs import hookimpl
from faasops.model import Project, ProviderConfig
from faasops.options import seconds_option
from faasops.plugins.aws import DEFAULT_MAX_ATTEMPTS, _attempts, _AwsService, _NotFound, _s
from faasops.providers import LogRecord

DEFAULT_TABLE = "faasops-logs"
INDEX_BY_FUNCTION = "by_function"
DEFAULT_POLL_S = 1.0
DEFAULT_OVERLAP_S = 5.0
# While nothing arrives, --follow never looks further back than this.
FOLLOW_LOOKBACK_S = 3600.0
PAGE_SIZE = 1000
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_NAMES = {"#m": "message"}


def iso(epoch: float) -> str:
    """The fixed-width UTC time used in ``sk`` and ``time``: ``2026-01-31T12:00:00.123456Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime(_TIME_FORMAT)


def parse_iso(text: str) -> float:
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC).timestamp()


def table_definition(table: str = DEFAULT_TABLE) -> dict[str, Any]:
    """The ``CreateTable`` request of a logs table (see the module docstring)."""
    return {
        "TableName": table,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "fpk")],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [{
            "IndexName": INDEX_BY_FUNCTION,
            "KeySchema": [{"AttributeName": "fpk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"},
        }],
    }


def log_item(workspace: str, function: str, message: str, *, at: float | None = None, log_id: str | None = None,
             level: str | None = None, status: int | None = None, duration_ms: float | None = None,
             labels: Mapping[str, str] | None = None, ttl_s: float | None = None) -> dict[str, Any]:
    """One logs-table item (DynamoDB attribute values) in the documented format. ``at`` is the
    record's time (default now), ``log_id`` its unique id (default a random one), ``ttl_s``
    sets ``expires_at`` that many seconds after ``at``."""
    at = time.time() if at is None else at
    log_id = log_id or uuid.uuid4().hex
    stamp = iso(at)
    item: dict[str, Any] = {
        "pk": _s(f"LOGS#{workspace}"), "sk": _s(f"{stamp}#{function}#{log_id}"),
        "fpk": _s(f"LOGS#{workspace}#{function}"), "id": _s(log_id), "workspace": _s(workspace),
        "function": _s(function), "function_id": _s(f"{workspace}.{function}"), "time": _s(stamp),
        "message": _s(message),
    }
    if level is not None:
        item["level"] = _s(level)
    if status is not None:
        item["status"] = {"N": str(int(status))}
    if duration_ms is not None:
        item["duration_ms"] = {"N": repr(float(duration_ms))}
    if labels:
        item["labels"] = {"M": {k: _s(str(v)) for k, v in labels.items()}}
    if ttl_s is not None:
        item["expires_at"] = {"N": str(int(at + ttl_s))}
    return item


def put_log(client: Any, table: str, workspace: str, function: str, message: str, **fields: Any) -> dict[str, Any]:
    """Write one log record with a boto3 DynamoDB ``client``; return the item written.
    ``fields`` are those of :func:`log_item`. Writing the same ``log_id`` again overwrites the
    record, so a writer may retry safely."""
    item = log_item(workspace, function, message, **fields)
    client.put_item(TableName=table, Item=item)
    return item


@dataclass
class _Position:
    """Where a read left off: records with ``sk`` below ``floor`` are never shown again,
    ``seen`` holds the ``sk`` of those shown at or after it (→ their time), ``newest`` is the
    time of the newest record shown."""

    floor: str
    newest: float
    seen: dict[str, float]


class DynamoDBLogSource(_AwsService):
    """Reads function logs from a DynamoDB logs table (see the module docstring)."""

    service = "dynamodb"

    def __init__(self, table: str = DEFAULT_TABLE, *, region: str | None = None, endpoint_url: str | None = None,
                 max_attempts: int = DEFAULT_MAX_ATTEMPTS, poll_s: float = DEFAULT_POLL_S,
                 overlap_s: float = DEFAULT_OVERLAP_S):
        super().__init__(region=region, endpoint_url=endpoint_url, max_attempts=max_attempts)
        self.table = table
        self.poll_s = poll_s
        self.overlap_s = overlap_s
        self.display = f"DynamoDB logs table {table!r}"
        self._positions: dict[tuple[str, str | None, str | None, float | None], _Position] = {}

    def _missing(self, operation: str) -> _NotFound:
        return _NotFound(
            f"{self.display} does not exist at {self.endpoint}. The platform's runtime writes it and faasops "
            f"reads it; it needs the key schema pk (S, HASH) + sk (S, RANGE) and a global secondary index "
            f"{INDEX_BY_FUNCTION} on fpk (S, HASH) + sk (S, RANGE). Create it with `aws dynamodb create-table "
            f"--cli-input-json \"$(python -m faasops.plugins.aws_logs table-definition {self.table})\"`, or set "
            "`table` under providers.logs in faas.yaml"
        )

    # ------------------------------------------------------------ LogSource

    def read(self, workspace: str, function: str | None, *, limit: int, since: float | None = None,
             grep: str | None = None) -> list[LogRecord]:
        items, position = self._newest(workspace, function, iso(since) if since is not None else "", grep, limit)
        self._positions[(workspace, function, grep, since)] = position
        return [_record(item) for item in items]

    def follow(self, workspace: str, function: str | None, *, since: float | None = None,
               grep: str | None = None, poll_s: float | None = None) -> Iterator[LogRecord]:
        # Where to start is settled here, not at the first next(): what is written from now on shows.
        position = self._positions.pop((workspace, function, grep, since), None)
        if position is None:  # nothing read before: start from now, ignoring what is already there
            now = time.time()
            start = max(iso(now - self.overlap_s), iso(since) if since is not None else "")
            position = self._newest(workspace, function, start, grep, PAGE_SIZE)[1]
            position.newest = max(position.newest, now)
        return self._tail(workspace, function, grep, position, self.poll_s if poll_s is None else poll_s)

    def _tail(self, workspace: str, function: str | None, grep: str | None, position: _Position,
              poll_s: float) -> Iterator[LogRecord]:
        while True:
            for item in self._poll(workspace, function, grep, position):
                yield _record(item)
            time.sleep(poll_s)

    # ------------------------------------------------------------ reading

    def _newest(self, workspace: str, function: str | None, start: str, grep: str | None,
                limit: int) -> tuple[list[dict[str, Any]], _Position]:
        """The newest ``limit`` items with ``sk >= start`` (newest first), and the position a
        follow continues from."""
        found: list[dict[str, Any]] = []
        for item in self._query(workspace, function, start, grep, forward=False, page=limit):
            found.append(item)
            if len(found) == limit:
                break
        # A full read may have left older records out: those must not show up in a follow.
        floor = found[-1]["sk"]["S"] if len(found) == limit else start
        newest = _time_of(found[0]) if found else (parse_iso(start) if start else 0.0)
        seen = {item["sk"]["S"]: _time_of(item) for item in found if item["sk"]["S"] >= floor}
        return found, _Position(floor, newest, seen)

    def _window(self, position: _Position, now: float) -> str:
        """Where a poll starts: ``follow_overlap_seconds`` before the newest record shown (writer
        clocks, not ours), but never further back than an hour while nothing arrives."""
        return max(position.floor, iso(max(position.newest - self.overlap_s, now - FOLLOW_LOOKBACK_S)))

    def _poll(self, workspace: str, function: str | None, grep: str | None,
              position: _Position) -> list[dict[str, Any]]:
        """Items not shown yet, oldest first."""
        now = time.time()
        fresh = []
        for item in self._query(workspace, function, self._window(position, now), grep, forward=True, page=PAGE_SIZE):
            sk = item["sk"]["S"]
            if sk not in position.seen:
                position.seen[sk] = _time_of(item)
                position.newest = max(position.newest, position.seen[sk])
                fresh.append(item)
        window = self._window(position, now)
        position.seen = {sk: t for sk, t in position.seen.items() if sk >= window}
        return fresh

    def _query(self, workspace: str, function: str | None, start: str, grep: str | None, *, forward: bool,
               page: int) -> Iterator[dict[str, Any]]:
        """Every item of the workspace's (or function's) Query with ``sk >= start``, page by page."""
        key, partition = ("fpk", f"LOGS#{workspace}#{function}") if function else ("pk", f"LOGS#{workspace}")
        request: dict[str, Any] = {
            "TableName": self.table, "KeyConditionExpression": f"{key} = :p",
            "ExpressionAttributeValues": {":p": _s(partition)}, "ScanIndexForward": forward,
            # A filter applies after Limit, so a grep reads full pages until enough matched.
            "Limit": PAGE_SIZE if grep else max(1, min(page, PAGE_SIZE)),
        }
        if function:
            request["IndexName"] = INDEX_BY_FUNCTION
        if start:
            request["KeyConditionExpression"] += " AND sk >= :start"
            request["ExpressionAttributeValues"][":start"] = _s(start)
        if grep:
            request["FilterExpression"] = "contains(#m, :grep)"
            request["ExpressionAttributeNames"] = _NAMES
            request["ExpressionAttributeValues"][":grep"] = _s(grep)
        while True:
            try:
                response = self._call("query", **request)
            except ProviderError as exc:
                if function and self._index_missing(exc):
                    raise ProviderError(
                        f"{self.display} has no global secondary index {INDEX_BY_FUNCTION} (fpk HASH, sk RANGE), "
                        "which per-function logs need; see `python -m faasops.plugins.aws_logs table-definition "
                        f"{self.table}`") from None
                raise
            yield from response.get("Items", [])
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _index_missing(self, error: ProviderError) -> bool:
        """Whether a failed index Query means the index is missing: DynamoDB says so in a
        ValidationException ("… specified index"), moto answers ResourceNotFound as for a table."""
        if "specified index" in str(error):
            return True
        if not isinstance(error, _NotFound):
            return False
        try:
            self._call("describe_table", TableName=self.table)
            return True
        except _NotFound:
            return False


def _time_of(item: dict[str, Any]) -> float:
    return parse_iso(item["sk"]["S"].split("#", 1)[0])


def _record(item: dict[str, Any]) -> LogRecord:
    """A logs-table item as a log record; time, function and id come from ``sk``, which every
    item has, the rest from the documented attributes when present."""
    stamp, function, log_id = item["sk"]["S"].split("#", 2)
    workspace = item["pk"]["S"].removeprefix("LOGS#")
    labels = {k: v["S"] for k, v in item.get("labels", {}).get("M", {}).items() if "S" in v}
    labels["function_id"] = f"{workspace}.{function}"
    if "level" in item:
        labels["level"] = item["level"]["S"]
    status = int(item["status"]["N"]) if "status" in item else None
    duration = float(item["duration_ms"]["N"]) / 1000 if "duration_ms" in item else None
    return LogRecord(parse_iso(stamp), workspace, function, item.get("message", {}).get("S", ""), status, duration,
                     labels, log_id)


OPTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "table": {"type": "string", "minLength": 1, "default": DEFAULT_TABLE, "description": "the logs table"},
        "region": {"type": "string", "minLength": 1, "description": "AWS region of the table (default: boto3's)"},
        "endpoint_url": {"type": "string", "minLength": 1, "description": "another endpoint (LocalStack, moto)"},
        "max_attempts": {"type": "integer", "minimum": 1, "default": DEFAULT_MAX_ATTEMPTS,
                         "description": "attempts per call, the first included"},
        "poll_interval_seconds": seconds_option("how often --follow asks for new lines", DEFAULT_POLL_S,
                                                aliases=["poll_interval"]),
        "follow_overlap_seconds": seconds_option("how far back --follow looks again for late writes",
                                                 DEFAULT_OVERLAP_S, aliases=["follow_overlap"]),
    },
}


@hookimpl
def faasops_provider_options() -> list[tuple[str, str, dict[str, Any]]]:
    return [("logs", "dynamodb", OPTIONS_SCHEMA)]


@hookimpl
def faasops_provider_types() -> list[tuple[str, str, str]]:
    return [("logs", "dynamodb", "function logs from the platform's DynamoDB logs table (newest first, --follow)")]


@hookimpl
def faasops_log_source(config: ProviderConfig, project: Project) -> DynamoDBLogSource | None:
    if config.type != "dynamodb":
        return None
    where = "providers.logs (dynamodb)"
    options = config.options  # checked against OPTIONS_SCHEMA
    return DynamoDBLogSource(
        options.get("table", DEFAULT_TABLE), region=options.get("region"), endpoint_url=options.get("endpoint_url"),
        max_attempts=_attempts(options, where), poll_s=float(options.get("poll_interval_seconds", DEFAULT_POLL_S)),
        overlap_s=float(options.get("follow_overlap_seconds", DEFAULT_OVERLAP_S)),
    )


def _main(argv: list[str]) -> int:
    """``python -m faasops.plugins.aws_logs table-definition [TABLE]``: the CreateTable JSON."""
    if not argv or argv[0] != "table-definition" or len(argv) > 2:
        print("usage: python -m faasops.plugins.aws_logs table-definition [TABLE]", file=sys.stderr)
        return 2
    print(json.dumps(table_definition(argv[1] if len(argv) == 2 else DEFAULT_TABLE), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
