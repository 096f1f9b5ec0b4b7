"""The DynamoDB log source and the logs table design, against a real moto server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from itertools import islice
from typing import Any

import pytest

from aws_logs_support import TABLE, WS
from faasops.errors import ProviderError
from faasops.model import ProviderConfig
from faasops.plugins import aws_logs
from faasops.plugin_manager import create_plugin_manager, create_provider
from faasops.plugins.aws_logs import DynamoDBLogSource, iso, log_item, put_log, table_definition
from testkit.moto import MotoServer


def make_source(moto: MotoServer, **options: Any) -> DynamoDBLogSource:
    """A DynamoDB log source made the way faasops makes it: options checked against the plugin's
    schema by the plugin manager, then the plugin hook."""
    config = ProviderConfig("logs", "dynamodb", {"endpoint_url": moto.url, **options})
    source = create_provider(create_plugin_manager(), None, "logs", config)  # type: ignore[arg-type]
    assert isinstance(source, DynamoDBLogSource)
    return source


def messages(records: list) -> list[str]:
    return [r.message for r in records]


def test_put_log_writes_the_documented_item(dynamodb: Any) -> None:
    at = 1_790_000_000.25
    put_log(dynamodb, TABLE, WS, "hello", "GET / 200", at=at, log_id="req-1", level="INFO", status=200,
            duration_ms=4.5, labels={"pod": "hello-abc-def"}, ttl_s=86400)

    item = dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": "LOGS#storefront"},
                                                   "sk": {"S": f"{iso(at)}#hello#req-1"}})["Item"]

    assert iso(at) == "2026-09-21T14:13:20.250000Z"
    assert item == {
        "pk": {"S": "LOGS#storefront"}, "sk": {"S": "2026-09-21T14:13:20.250000Z#hello#req-1"},
        "fpk": {"S": "LOGS#storefront#hello"}, "id": {"S": "req-1"}, "workspace": {"S": "storefront"},
        "function": {"S": "hello"}, "function_id": {"S": "storefront.hello"},
        "time": {"S": "2026-09-21T14:13:20.250000Z"}, "message": {"S": "GET / 200"}, "level": {"S": "INFO"},
        "status": {"N": "200"}, "duration_ms": {"N": "4.5"}, "labels": {"M": {"pod": {"S": "hello-abc-def"}}},
        "expires_at": {"N": str(int(at) + 86400)},
    }


def test_table_definition_is_printed_for_create_table() -> None:
    out = subprocess.run([sys.executable, "-m", "faasops.plugins.aws_logs", "table-definition", "my-logs"],
                         capture_output=True, text=True, check=True).stdout

    assert json.loads(out) == table_definition("my-logs")


def test_a_workspace_reads_newest_first_across_its_functions_in_one_query(dynamodb: Any, moto: MotoServer) -> None:
    now = time.time()
    for i, function in enumerate(["hello", "checkout", "hello", "checkout", "hello"]):
        put_log(dynamodb, TABLE, WS, function, f"{function} {i}", at=now - 10 + i)
    put_log(dynamodb, TABLE, "other", "hello", "another workspace", at=now)
    source = make_source(moto)

    records = source.read(WS, None, limit=3)

    assert [(r.function, r.message) for r in records] == [("hello", "hello 4"), ("checkout", "checkout 3"),
                                                           ("hello", "hello 2")]
    assert source.calls == {"dynamodb.Query": 1}
    first = records[0]
    assert (first.workspace, first.function_id) == ("storefront", "storefront.hello")
    assert abs(first.time - (now - 6)) < 1e-5


def test_a_function_reads_newest_first_through_the_by_function_index(dynamodb: Any, moto: MotoServer) -> None:
    now = time.time()
    for i in range(4):
        put_log(dynamodb, TABLE, WS, "hello", f"hello {i}", at=now - 10 + i, status=500 if i == 3 else 200,
                duration_ms=12.5, level="ERROR" if i == 3 else "INFO")
    put_log(dynamodb, TABLE, WS, "checkout", "checkout", at=now)

    records = make_source(moto).read(WS, "hello", limit=2)

    assert messages(records) == ["hello 3", "hello 2"]
    assert (records[0].status, records[0].duration_s, records[0].labels["level"]) == (500, 0.0125, "ERROR")


def test_since_is_a_key_condition(dynamodb: Any, moto: MotoServer) -> None:
    now = time.time()
    put_log(dynamodb, TABLE, WS, "hello", "two hours ago", at=now - 7200)
    put_log(dynamodb, TABLE, WS, "hello", "a minute ago", at=now - 60)

    assert messages(make_source(moto).read(WS, "hello", limit=10, since=now - 1800)) == ["a minute ago"]
    assert messages(make_source(moto).read(WS, None, limit=10)) == ["a minute ago", "two hours ago"]


def test_grep_filters_on_the_message_and_reads_on_until_limit_matches(dynamodb: Any, moto: MotoServer,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws_logs, "PAGE_SIZE", 3)  # make the pages small enough to need several
    now = time.time()
    grep = 'say "hi" |= #x'
    for i in range(12):
        put_log(dynamodb, TABLE, WS, "hello", f"{grep} {i}" if i % 4 == 0 else f"noise {i}", at=now - 20 + i)
    source = make_source(moto)

    records = source.read(WS, "hello", limit=2, grep=grep)

    assert messages(records) == [f"{grep} 8", f"{grep} 4"]
    assert source.calls["dynamodb.Query"] == 3  # items 11-9, 8-6 (first match), 5-3 (second match)


def test_follow_continues_where_the_read_stopped_each_record_once(dynamodb: Any, moto: MotoServer) -> None:
    now = time.time()
    for i in range(3):
        put_log(dynamodb, TABLE, WS, "hello", f"old {i}", at=now - 10 + i, log_id=f"old-{i}")
    source = make_source(moto, poll_interval=0.05)
    assert messages(source.read(WS, None, limit=2)) == ["old 2", "old 1"]

    # Written between the read and the follow: one in the same microsecond as the newest shown.
    put_log(dynamodb, TABLE, WS, "checkout", "same time as old 2", at=now - 8, log_id="zzz")
    put_log(dynamodb, TABLE, WS, "hello", "new", at=now - 5)
    follow = source.follow(WS, None)

    assert messages(islice(follow, 2)) == ["same time as old 2", "new"]
    # A late write (older than the newest shown, within follow_overlap) shows once, and nothing
    # shown before comes again; what the read left out (old 0) never shows.
    put_log(dynamodb, TABLE, WS, "hello", "late", at=now - 6)
    put_log(dynamodb, TABLE, WS, "hello", "sentinel", at=now - 4)
    assert messages(islice(follow, 2)) == ["late", "sentinel"]
    put_log(dynamodb, TABLE, WS, "hello", "rewritten", at=now - 4, log_id="old-2-retry")
    assert messages(islice(follow, 1)) == ["rewritten"]


def test_follow_of_a_function_with_grep_starts_now(dynamodb: Any, moto: MotoServer) -> None:
    put_log(dynamodb, TABLE, WS, "hello", "already there: wanted", at=time.time() - 1)
    follow = make_source(moto, poll_interval=0.05).follow(WS, "hello", grep="wanted")

    put_log(dynamodb, TABLE, WS, "checkout", "wanted, other function")
    put_log(dynamodb, TABLE, WS, "hello", "unrelated")
    put_log(dynamodb, TABLE, WS, "hello", "wanted")

    assert messages(islice(follow, 1)) == ["wanted"]


def test_a_missing_table_names_it_and_the_key_schema_it_needs(moto: MotoServer) -> None:
    with pytest.raises(ProviderError) as error:
        make_source(moto, table="nope").read(WS, None, limit=5)

    message = str(error.value)
    assert message.startswith(f"DynamoDB logs table 'nope' does not exist at {moto.url}.")
    assert "pk (S, HASH) + sk (S, RANGE)" in message and "by_function on fpk (S, HASH) + sk (S, RANGE)" in message
    assert "python -m faasops.plugins.aws_logs table-definition nope" in message
    assert "\n" not in message


def test_a_table_without_the_function_index_says_so(moto: MotoServer) -> None:
    client = moto.client("dynamodb")
    definition = table_definition("no-index")
    del definition["GlobalSecondaryIndexes"]
    definition["AttributeDefinitions"] = definition["AttributeDefinitions"][:2]
    client.create_table(**definition)

    with pytest.raises(ProviderError, match="has no global secondary index by_function"):
        make_source(moto, table="no-index").read(WS, "hello", limit=5)


@pytest.mark.parametrize("options, message", [
    ({"aws_secret_access_key": "x"}, "remove 'aws_secret_access_key': faasops never reads credentials from faas.yaml"),
    ({"colour": "blue"}, "providers.logs.colour: unknown option 'colour'"),
    ({"poll_interval": 0}, r"providers.logs.poll_interval: must be more than 0 \(got 0\)"),
    ({"poll_interval_seconds": -1}, r"providers.logs.poll_interval_seconds: must be more than 0 \(got -1\)"),
])
def test_options_are_checked(moto: MotoServer, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ProviderError, match=message):
        make_source(moto, **options)


def test_the_default_table_is_faasops_logs(moto: MotoServer) -> None:
    assert make_source(moto).table == "faasops-logs"
    assert log_item(WS, "hello", "x", at=0, log_id="a")["sk"] == {"S": "1970-01-01T00:00:00.000000Z#hello#a"}
