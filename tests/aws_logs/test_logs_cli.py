"""`faasops logs` through the real CLI on the cloud example: the DynamoDB logs table (moto) by
default, Loki (the test double) with --source loki.

The overlay points the state and sources providers at a dead endpoint: the logs command must
not need them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from aws_logs_support import DEAD_ENDPOINT, TABLE, WS, CliFollower, logs_project, run_logs
from faasops.plugins.aws_logs import put_log
from testkit.loki import LokiDouble
from testkit.moto import MotoServer

HELLO = {"function_id": "storefront.hello", "workspace_id": "storefront", "pod": "hello-7d9f8b6c5d-x2x4z"}
CHECKOUT = {"function_id": "storefront.checkout", "workspace_id": "storefront", "pod": "checkout-6c5b4a3f2-q1w2e"}


@pytest.fixture()
def project(tmp_path: Path, moto: MotoServer, loki: LokiDouble) -> Path:
    return logs_project(tmp_path, {"type": "dynamodb", "endpoint_url": moto.url, "poll_interval_seconds": 0.2,
                                   "loki": {"url": loki.url, "poll_interval_seconds": 0.2}})


def texts(out: str) -> list[str]:
    """Each printed record without its timestamp: ``storefront/hello message``."""
    return [line.split(" ", 1)[1] for line in out.splitlines()]


# -------------------------------------------------------------------- DynamoDB logs table


def test_workspace_and_function_logs_are_the_newest_limit_printed_oldest_first(dynamodb: Any, project: Path) -> None:
    now = time.time()
    for i, function in enumerate(["hello", "checkout", "hello", "checkout", "hello"]):
        put_log(dynamodb, TABLE, WS, function, f"request {i}", at=now - 10 + i, status=200)

    workspace = run_logs(project, WS, "--limit", "3")
    function = run_logs(project, f"{WS}/hello", "--limit", "2")
    two_arguments = run_logs(project, WS, "hello", "--limit", "2")

    assert (workspace.code, workspace.err) == (0, "")
    assert texts(workspace.out) == ["storefront/hello request 2", "storefront/checkout request 3",
                                    "storefront/hello request 4"]
    assert texts(function.out) == ["storefront/hello request 2", "storefront/hello request 4"]
    assert two_arguments.out == function.out


def test_since_grep_and_json(dynamodb: Any, project: Path) -> None:
    now = time.time()
    grep = 'say "hi" |= x'
    put_log(dynamodb, TABLE, WS, "hello", f"old: {grep}", at=now - 7200)
    put_log(dynamodb, TABLE, WS, "hello", f"new: {grep}", at=now - 60, status=500, duration_ms=7.5, level="ERROR")
    put_log(dynamodb, TABLE, WS, "hello", "new: unrelated", at=now - 30)

    since = run_logs(project, f"{WS}/hello", "--since", "30m")
    grepped = run_logs(project, f"{WS}/hello", "--grep", grep, "--format", "json")

    assert texts(since.out) == [f"storefront/hello new: {grep}", "storefront/hello new: unrelated"]
    records = [json.loads(line) for line in grepped.out.splitlines()]
    assert [r["message"] for r in records] == [f"old: {grep}", f"new: {grep}"]
    assert {k: records[1][k] for k in ("workspace", "function", "function_id", "status", "duration_s")} == {
        "workspace": "storefront", "function": "hello", "function_id": "storefront.hello", "status": 500,
        "duration_s": 0.0075}
    assert records[1]["labels"] == {"function_id": "storefront.hello", "level": "ERROR"}


def test_follow_prints_new_records_once(dynamodb: Any, project: Path) -> None:
    now = time.time()
    put_log(dynamodb, TABLE, WS, "hello", "before 1", at=now - 3)
    put_log(dynamodb, TABLE, WS, "hello", "before 2", at=now - 2)
    follower = CliFollower(project, f"{WS}/hello", "--limit", "1")
    assert texts("\n".join(follower.wait_for(1))) == ["storefront/hello before 2"]

    for i in range(3):
        put_log(dynamodb, TABLE, WS, "hello", f"live {i}")
    put_log(dynamodb, TABLE, WS, "checkout", "another function")
    follower.wait_for(4)
    put_log(dynamodb, TABLE, WS, "hello", "late but within the overlap", at=time.time() - 2)
    follower.wait_for(5)
    code, lines, err = follower.stop(quiet_s=1.0)

    assert code == 0, err
    assert texts("\n".join(lines)) == ["storefront/hello before 2", "storefront/hello live 0",
                                       "storefront/hello live 1", "storefront/hello live 2",
                                       "storefront/hello late but within the overlap"]


def test_an_unknown_function_has_no_logs_and_is_no_error(dynamodb: Any, project: Path) -> None:
    put_log(dynamodb, TABLE, WS, "hello", "something")

    result = run_logs(project, f"{WS}/nope")

    assert (result.code, result.out) == (0, "")


def test_a_missing_logs_table_is_a_clear_error(project: Path) -> None:
    result = run_logs(project, WS)

    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith("Error: DynamoDB logs table 'faasops-logs' does not exist at ")
    assert "table-definition faasops-logs" in result.err
    assert len(result.err.strip().splitlines()) == 1


# -------------------------------------------------------------------- Loki


def test_loki_workspace_and_function_logs_newest_first_with_since_and_grep(loki: LokiDouble, project: Path) -> None:
    now = time.time()
    grep = '"quoted" |= x'
    loki.push(HELLO, [(now - 7200, f"hello old {grep}"), (now - 40, "hello 1"), (now - 20, f"hello 2 {grep}")])
    loki.push(CHECKOUT, [(now - 30, "checkout 1"), (now - 10, "checkout 2")])

    workspace = run_logs(project, WS, "--source", "loki", "--limit", "3")
    function = run_logs(project, f"{WS}/hello", "--source", "loki", "--since", "3h")
    grepped = run_logs(project, f"{WS}/hello", "--source", "loki", "--since", "10m", "--grep", grep)

    assert (workspace.code, workspace.err) == (0, "")
    assert texts(workspace.out) == ["storefront/checkout checkout 1", f"storefront/hello hello 2 {grep}",
                                    "storefront/checkout checkout 2"]
    assert texts(function.out) == [f"storefront/hello hello old {grep}", "storefront/hello hello 1",
                                   f"storefront/hello hello 2 {grep}"]
    assert texts(grepped.out) == [f"storefront/hello hello 2 {grep}"]
    assert loki.requests[-1].params["query"] == ['{function_id="storefront.hello"} |= "\\"quoted\\" |= x"']


def test_loki_json_carries_the_stream_labels(loki: LokiDouble, project: Path) -> None:
    [stamp] = loki.push(HELLO, [(time.time() - 5, "hello")])

    result = run_logs(project, f"{WS}/hello", "--source", "loki", "--format", "json")

    record = json.loads(result.out)
    assert {k: record[k] for k in ("workspace", "function", "function_id", "message")} == {
        "workspace": "storefront", "function": "hello", "function_id": "storefront.hello", "message": "hello"}
    assert record["labels"]["pod"] == HELLO["pod"]
    assert record["id"].startswith(f"{stamp}:")


def test_loki_follow_tails_new_entries_without_duplicates(loki: LokiDouble, project: Path) -> None:
    base = time.time_ns() - 5_000_000_000
    loki.push(HELLO, [(base, "before 1"), (base + 1, "before 2")])
    follower = CliFollower(project, f"{WS}/hello", "--source", "loki", "--limit", "1")
    assert texts("\n".join(follower.wait_for(1))) == ["storefront/hello before 2"]

    # The same nanosecond as the entry shown: another line, and the same line from another pod.
    loki.push(HELLO, [(base + 1, "same nanosecond")])
    loki.push({**HELLO, "pod": "hello-7d9f8b6c5d-other"}, [(base + 1, "before 2")])
    loki.push(HELLO, [(time.time_ns(), "live")])
    loki.push(CHECKOUT, [(time.time_ns(), "another function")])
    follower.wait_for(4)
    loki.push(HELLO, [(time.time_ns(), "live again")])
    follower.wait_for(5)
    code, lines, err = follower.stop(quiet_s=1.0)

    assert code == 0, err
    shown = texts("\n".join(lines))
    assert shown[0] == "storefront/hello before 2"
    assert sorted(shown[1:3]) == ["storefront/hello before 2", "storefront/hello same nanosecond"]
    assert shown[3:] == ["storefront/hello live", "storefront/hello live again"]


def test_loki_unknown_function_has_no_logs(loki: LokiDouble, project: Path) -> None:
    loki.push(HELLO, [(time.time() - 5, "hello")])

    result = run_logs(project, f"{WS}/nope", "--source", "loki")

    assert (result.code, result.out) == (0, "")


def test_unreachable_loki_is_a_one_line_error(tmp_path: Path, moto: MotoServer) -> None:
    project = logs_project(tmp_path, {"type": "dynamodb", "endpoint_url": moto.url,
                                      "loki": {"url": DEAD_ENDPOINT, "timeout_seconds": 2}})

    result = run_logs(project, f"{WS}/hello", "--source", "loki")

    assert result.code == 1
    assert result.err.startswith(f"Error: cannot reach Loki at {DEAD_ENDPOINT} (")
    assert len(result.err.strip().splitlines()) == 1
