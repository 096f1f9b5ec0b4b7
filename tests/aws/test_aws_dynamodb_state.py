"""The DynamoDB state backend against a real moto server: records, serial, tasks, lock."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from dataclasses import replace
from typing import Any

import pytest

from aws_support import TABLE, StateFactory
from faasops.errors import LockError, ProviderError
from faasops.plugins.aws import DynamoDBState, table_definition
from faasops.providers import ActualState, FunctionRecord, LockInfo, StateBackend, Task, WorkspaceRecord


def function_spec(n: int) -> dict[str, Any]:
    """About the size of a real applied spec (Function.spec() + source_hash + build_key)."""
    return {
        "source": f"functions/f{n}", "handler": "app", "env": {"GREETING": "hello", "LEVEL": "info"},
        "variables": {}, "secrets": [], "replicas": 1, "autoscaling": None, "spot": False, "protect": False,
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": None, "memory": None}},
        "executor": "containerd-shim-spin", "labels": {"team": "payments"}, "annotations": {},
        "source_hash": "sha256:" + f"{n:064x}", "build_key": "sha256:" + f"{n + 1:064x}",
        "toolchain": "componentize-py 0.16.0 / spin-sdk 3.4.1",
    }


def fn_record(ws: str, name: str, n: int = 0, deployed: str = "") -> FunctionRecord:
    return FunctionRecord(ws, name, function_spec(n), f"123456789012.dkr.ecr.us-east-1.amazonaws.com/p/{ws}/{name}@sha256:{n:064x}",
                          "2026-01-01T00:00:00Z", deployed)


def lock_info(holder: str = "alice", host: str | None = None, pid: int | None = None, lock_id: str = "") -> LockInfo:
    return LockInfo(
        id=lock_id or f"lock-{holder}", holder=holder, host=host or socket.gethostname(),
        pid=os.getpid() if pid is None else pid,
        command="faasops apply", created_at="2026-01-01T00:00:00Z", expires_at="",
    )


def task(task_id: str, ws: str, created: str, status: str = "running", function: str | None = "hello",
         kind: str = "build", message: str = "") -> Task:
    return Task(id=task_id, workspace=ws, function=function, kind=kind, status=status, created_at=created,
                updated_at=created, message=message, run_id="run1")


def all_items(dynamodb: Any, table: str = TABLE) -> list[dict[str, Any]]:
    return dynamodb.scan(TableName=table)["Items"]


# ------------------------------------------------------------------------------- records


def test_backend_honours_the_state_backend_protocol(make_state: StateFactory) -> None:
    assert isinstance(make_state(), StateBackend)


def test_records_round_trip_and_every_write_bumps_the_serial(make_state: StateFactory) -> None:
    state = make_state()
    state.put_workspace(WorkspaceRecord("demo", {"namespace": "demo", "labels": {}, "protect": False}))
    state.put_workspace(WorkspaceRecord("prod", {"namespace": "prod-ns", "labels": {"tier": "1"}, "protect": True}))
    state.put_function(fn_record("demo", "hello", 1))
    state.put_function(fn_record("prod", "hello", 2))
    state.put_function(fn_record("demo", "hello", 3, deployed="sha256:" + "d" * 64))  # an update of the same record

    actual = state.read()
    assert actual.serial == 5
    assert actual.workspaces == {
        "demo": WorkspaceRecord("demo", {"namespace": "demo", "labels": {}, "protect": False}),
        "prod": WorkspaceRecord("prod", {"namespace": "prod-ns", "labels": {"tier": "1"}, "protect": True}),
    }
    assert actual.functions == {"demo/hello": fn_record("demo", "hello", 3, deployed="sha256:" + "d" * 64),
                                "prod/hello": fn_record("prod", "hello", 2)}

    assert state.serial() == 5
    state.delete_function("demo", "hello")
    state.delete_workspace("demo")
    after = state.read()
    assert after.serial == 7 == state.serial()
    assert set(after.workspaces) == {"prod"} and set(after.functions) == {"prod/hello"}
    # Records and the serial bump go in one transaction each: no separate puts. (The first
    # transaction found no table; create_table made it and the write was repeated.)
    assert state.calls["dynamodb.CreateTable"] == 1
    assert state.calls["dynamodb.TransactWriteItems"] == 7 + 1
    assert state.calls["dynamodb.PutItem"] == 0 and state.calls["dynamodb.UpdateItem"] == 0
    assert state.calls["dynamodb.GetItem"] == 2  # serial(): one small read, not the whole state


def test_read_of_selected_workspaces_filters_client_side(make_state: StateFactory) -> None:
    state = make_state()
    for ws in ("a", "b"):
        state.put_workspace(WorkspaceRecord(ws, {"namespace": ws}))
        state.put_function(fn_record(ws, "f"))
    before = state.calls["dynamodb.Query"]
    only_b = state.read(["b"])
    assert set(only_b.workspaces) == {"b"} and set(only_b.functions) == {"b/f"}
    assert only_b.serial == 4
    assert state.calls["dynamodb.Query"] - before == 1


def fill(state: DynamoDBState, workspaces: int, per_workspace: int) -> None:
    for w in range(workspaces):
        state.put_workspace(WorkspaceRecord(f"ws{w}", {"namespace": f"ws{w}"}))
        for f in range(per_workspace):
            state.put_function(fn_record(f"ws{w}", f"fn{f:03d}", w * 1000 + f))


@pytest.mark.slow  # 300 functions written to moto
def test_reading_300_functions_in_10_workspaces_is_one_query(make_state: StateFactory) -> None:
    small, large = make_state("small"), make_state("large")
    fill(small, workspaces=3, per_workspace=10)
    fill(large, workspaces=10, per_workspace=30)

    queries = []
    for state, expected in ((small, 30), (large, 300)):
        state.calls.clear()
        actual = state.read()
        assert len(actual.functions) == expected
        queries.append(state.calls["dynamodb.Query"])
        # Nothing else is called to read the state: no GetItem per function or workspace.
        assert sum(state.calls.values()) == state.calls["dynamodb.Query"]
    assert queries == [1, 1], "reading the state must not cost more calls as functions grow"
    assert len(large.read().workspaces) == 10


def big_records(state: DynamoDBState, functions: int) -> None:
    """Records of ~5 KB (a large env), so that a few hundred need more than one Query page."""
    for n in range(functions):
        record = fn_record(f"ws{n % 3}", f"fn{n:03d}", n)
        spec = {**record.spec, "env": {f"SETTING_{i}": f"{n}-{i}-" + "v" * 40 for i in range(80)}}
        state.put_function(FunctionRecord(record.workspace, record.name, spec, record.artifact, record.applied_at,
                                          f"sha256:{n:064x}"))


def snapshot_items(dynamodb: Any, project: str = "shop") -> list[str]:
    found = dynamodb.query(TableName=TABLE, KeyConditionExpression="pk = :pk",
                           ExpressionAttributeValues={":pk": {"S": f"SNAPSHOT#{project}"}})
    return sorted(item["sk"]["S"] for item in found["Items"])


@pytest.mark.slow  # thousands of records written to moto
def test_a_snapshot_replaces_the_other_query_pages_while_the_serial_holds(make_state: StateFactory, dynamodb: Any) -> None:
    state = make_state()
    state.put_workspace(WorkspaceRecord("ws0", {"namespace": "ws0"}))
    big_records(state, 300)
    records, pages = state._read_records(use_snapshot=False)
    assert pages >= 2 and len(records.functions) == 300

    assert state.write_snapshot() is True
    assert state.write_snapshot() is False  # already of this serial
    state.calls.clear()
    assert state.read() == records
    assert state.calls == {"dynamodb.Query": 2}  # the first page (it shows the snapshot), then its parts
    assert state.read(["ws1"]).functions == {a: r for a, r in records.functions.items() if r.workspace == "ws1"}

    # A record written after the snapshot (an apply that failed before writing a new one): the
    # snapshot is of an older serial, so the records are read.
    changed = replace(records.functions["ws1/fn001"], artifact="registry.example/new@sha256:" + "e" * 64)
    state.put_function(changed)
    state.calls.clear()
    fresh = state.read()
    assert fresh.functions["ws1/fn001"] == changed and fresh.serial == records.serial + 1
    assert state.calls["dynamodb.Query"] == pages

    # A new snapshot replaces the old one's parts.
    old_parts = snapshot_items(dynamodb)
    assert state.write_snapshot() is True
    new_parts = snapshot_items(dynamodb)
    assert new_parts and not set(old_parts) & set(new_parts)
    assert all(part.startswith(f"S{fresh.serial:012d}#P") for part in new_parts)
    assert state.read() == fresh

    # A damaged part is noticed (digest) and the records are read instead.
    dynamodb.update_item(TableName=TABLE, Key={"pk": {"S": "SNAPSHOT#shop"}, "sk": {"S": new_parts[0]}},
                         UpdateExpression="SET #d = :d", ExpressionAttributeNames={"#d": "data"},
                         ExpressionAttributeValues={":d": {"B": b"not the snapshot"}})
    state.calls.clear()
    assert state.read() == fresh
    assert state.calls["dynamodb.Query"] == 1 + pages

    # Once the records fit one page again (a destroy, say), the snapshot's parts go.
    for address in list(fresh.functions)[10:]:
        workspace, name = address.split("/")
        state.delete_function(workspace, name)
    assert state.write_snapshot() is False
    assert snapshot_items(dynamodb) == []
    assert len(state.read().functions) == 10


def test_a_state_that_fits_one_query_page_gets_no_snapshot(make_state: StateFactory, dynamodb: Any) -> None:
    state = make_state()
    fill(state, workspaces=2, per_workspace=5)
    assert state.write_snapshot() is False
    assert snapshot_items(dynamodb) == []
    state.calls.clear()
    assert len(state.read().functions) == 10
    assert state.calls == {"dynamodb.Query": 1}


def test_read_of_a_project_never_applied_creates_nothing(make_state: StateFactory, dynamodb: Any) -> None:
    state = make_state("never-applied")  # create_table: true, table absent
    assert state.read() == ActualState()
    assert state.serial() == 0
    assert state.list_tasks() == []
    assert state.current_lock() is None
    assert dynamodb.list_tables()["TableNames"] == []

    other = make_state("other")
    other.put_workspace(WorkspaceRecord("demo", {}))  # now the table exists
    count = len(all_items(dynamodb))
    assert state.read() == ActualState()
    assert state.serial() == 0 and other.serial() == 1
    assert len(all_items(dynamodb)) == count


def test_missing_table_without_create_table_says_how_to_create_it(make_state: StateFactory, dynamodb: Any) -> None:
    state = make_state(create_table=False)
    with pytest.raises(ProviderError) as read_error:
        state.read()
    message = str(read_error.value)
    assert "create_table: true" in message and TABLE in message and "\n" not in message
    with pytest.raises(ProviderError, match="create_table: true"):
        state.put_workspace(WorkspaceRecord("demo", {}))
    with pytest.raises(ProviderError, match="create_table: true"):
        state.acquire_lock(lock_info(), timeout_s=0)
    assert dynamodb.list_tables()["TableNames"] == []


def test_two_projects_in_one_table_do_not_see_each_other(make_state: StateFactory) -> None:
    shop, blog = make_state("shop"), make_state("blog")
    shop.put_workspace(WorkspaceRecord("demo", {"namespace": "shop"}))
    shop.put_function(fn_record("demo", "cart"))
    blog.put_workspace(WorkspaceRecord("demo", {"namespace": "blog"}))
    shop.put_task(task("aaaa1", "demo", "2026-01-01T00:00:01.000000Z"))

    assert set(blog.read().functions) == set()
    assert blog.read().workspaces["demo"].spec == {"namespace": "blog"}
    assert blog.read().serial == 1 and shop.read().serial == 2
    assert blog.list_tasks() == [] and blog.list_tasks(task_id="aaaa") == []

    shop.acquire_lock(lock_info("alice"), timeout_s=0)
    blog.acquire_lock(lock_info("bob"), timeout_s=0)  # another project's lock is another item
    assert shop.current_lock().holder == "alice" and blog.current_lock().holder == "bob"


def test_endpoint_can_come_from_botos_own_environment_variable(make_state: StateFactory, moto: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto.url)
    state = make_state(endpoint_url=None)
    state.put_workspace(WorkspaceRecord("demo", {}))
    assert state.read().serial == 1


# ------------------------------------------------------------------------------- tasks


def test_tasks_upsert_by_id_keeping_what_was_first_recorded(make_state: StateFactory) -> None:
    state = make_state()
    state.put_task(task("t1", "demo", "2026-01-01T00:00:01.000000Z", status="running"))
    state.put_task(Task(id="t1", workspace="demo", function="hello", kind="build", status="completed",
                        created_at="2026-01-01T00:00:01.000000Z", updated_at="2026-01-01T00:00:09.000000Z",
                        message="built in 8 s", run_id="run1"))
    [only] = state.list_tasks()
    assert (only.status, only.message, only.updated_at) == ("completed", "built in 8 s", "2026-01-01T00:00:09.000000Z")
    assert (only.created_at, only.function, only.kind, only.run_id) == ("2026-01-01T00:00:01.000000Z", "hello", "build", "run1")
    assert state.read().serial == 0  # tasks are history, not state


def test_tasks_list_newest_first_by_workspace_and_by_id_prefix(make_state: StateFactory) -> None:
    state = make_state()
    state.put_task(task("a1b2c3", "demo", "2026-01-01T00:00:01.000000Z", function=None, kind="namespace"))
    state.put_task(task("d4e5f6", "demo", "2026-01-01T00:00:03.000000Z", status="completed"))
    state.put_task(task("a1ffff", "prod", "2026-01-01T00:00:02.000000Z", status="failed", message="boom"))
    state.put_task(task("0badc0", "prod", "2026-01-01T00:00:04.000000Z", status="completed"))

    assert [t.id for t in state.list_tasks()] == ["0badc0", "d4e5f6", "a1ffff", "a1b2c3"]
    assert [t.id for t in state.list_tasks(limit=2)] == ["0badc0", "d4e5f6"]
    assert [t.id for t in state.list_tasks(workspace="demo")] == ["d4e5f6", "a1b2c3"]
    assert [t.id for t in state.list_tasks(workspace="prod", limit=1)] == ["0badc0"]
    assert [t.id for t in state.list_tasks(task_id="a1")] == ["a1ffff", "a1b2c3"]
    assert [t.id for t in state.list_tasks(task_id="a1", workspace="demo")] == ["a1b2c3"]
    assert [t.id for t in state.list_tasks(task_id="d4e5f6")] == ["d4e5f6"]
    assert state.list_tasks(task_id="zz") == []
    namespace_task = state.list_tasks(task_id="a1b2")[0]
    assert namespace_task.function is None and namespace_task.kind == "namespace"
    assert state.list_tasks(task_id="a1ff")[0].message == "boom"


# ------------------------------------------------------------------------------- lock


def test_racing_runs_exactly_one_takes_the_lock(make_state: StateFactory, dynamodb: Any) -> None:
    dynamodb.create_table(**table_definition(TABLE))  # the documented definition; the race is on the lock
    runners = 6
    backends = [make_state() for _ in range(runners)]
    # Clients are made before the start line, so the runs really start together.
    assert all(backend.client for backend in backends)
    barrier = threading.Barrier(runners)
    won: list[LockInfo] = []
    lost: list[tuple[str, float]] = []

    def run(i: int) -> None:
        barrier.wait()
        started = time.monotonic()
        try:
            won.append(backends[i].acquire_lock(lock_info(f"runner{i}", pid=10_000 + i, host="ci-host"), timeout_s=1.0))
        except LockError as exc:
            lost.append((str(exc), time.monotonic() - started))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(won) == 1 and len(lost) == runners - 1
    # A real race: several runs saw the lock free and tried the conditional write; one won.
    assert sum(b.calls["dynamodb.PutItem"] for b in backends) >= 2
    winner = won[0]
    for message, waited in lost:
        assert winner.holder in message and "on ci-host" in message and f"pid {winner.pid}" in message
        assert f"faasops force-unlock {winner.id}" in message
        assert waited >= 0.9  # it waited for its timeout before giving up
    assert backends[0].current_lock().id == winner.id


def test_lock_of_a_dead_process_on_this_host_is_taken_over(make_state: StateFactory) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)
    crashed = make_state()
    crashed.acquire_lock(lock_info("crashed", pid=dead_pid), timeout_s=0)
    crashed.put_task(task("t-running", "demo", "2026-01-01T00:00:01.000000Z", status="running"))
    crashed.put_task(task("t-pending", "demo", "2026-01-01T00:00:02.000000Z", status="pending"))
    crashed.put_task(task("t-done", "demo", "2026-01-01T00:00:03.000000Z", status="completed", message="ok"))
    crashed.close()  # like kill -9: heartbeat gone, lock item left behind

    successor = make_state()
    lock = successor.acquire_lock(lock_info("next"), timeout_s=0)
    assert successor.current_lock().id == lock.id
    tasks = {t.id: t for t in successor.list_tasks()}
    assert tasks["t-running"].status == "failed" and tasks["t-running"].message.startswith("interrupted")
    assert tasks["t-pending"].status == "failed"
    assert (tasks["t-done"].status, tasks["t-done"].message) == ("completed", "ok")


def test_expired_lease_is_taken_over_after_it_runs_out(make_state: StateFactory) -> None:
    # A lease long enough that a loaded machine still refuses within it, and no upper bound on
    # the takeover's wait: what matters is that it happens, and not before the lease ran out.
    elsewhere = make_state(lease_s=4.0)
    held = elsewhere.acquire_lock(lock_info("ci", host="runner-elsewhere", pid=7), timeout_s=0)
    elsewhere.close()  # the other host stopped heartbeating

    successor = make_state()
    with pytest.raises(LockError, match="runner-elsewhere"):
        successor.acquire_lock(lock_info("next"), timeout_s=0)
    lock = successor.acquire_lock(lock_info("next"), timeout_s=30)
    assert lock.holder == "next"
    assert datetime.now(timezone.utc) >= datetime.fromisoformat(held.expires_at)  # not taken before it ran out


def test_heartbeat_keeps_extending_the_lease(make_state: StateFactory) -> None:
    holder = make_state(lease_s=1.5)
    lock = holder.acquire_lock(lock_info("alice", host="runner-a", pid=1), timeout_s=0)
    time.sleep(2.5)  # well past the first lease
    renewed = holder.current_lock()
    assert renewed.id == lock.id and renewed.expires_at > lock.expires_at
    with pytest.raises(LockError, match="alice"):
        make_state().acquire_lock(lock_info("bob"), timeout_s=0)
    holder.release_lock(lock.id)
    assert make_state().acquire_lock(lock_info("bob"), timeout_s=0).holder == "bob"


def test_force_unlock_needs_the_current_lock_id(make_state: StateFactory) -> None:
    state = make_state()
    with pytest.raises(LockError, match="not locked"):
        state.force_unlock("nothing")
    lock = make_state().acquire_lock(lock_info("alice", host="gone-host", pid=1), timeout_s=0)
    with pytest.raises(LockError, match="does not match"):
        state.force_unlock("wrong-id")
    assert state.current_lock().id == lock.id
    state.force_unlock(lock.id)
    assert state.current_lock() is None


def test_release_with_another_id_leaves_the_lock_alone(make_state: StateFactory) -> None:
    holder = make_state()
    lock = holder.acquire_lock(lock_info("alice"), timeout_s=0)
    make_state().release_lock("someone-elses")
    assert holder.current_lock().id == lock.id
    holder.release_lock(lock.id)
    assert holder.current_lock() is None


def test_a_run_that_lost_its_lock_cannot_write_records(make_state: StateFactory) -> None:
    slow = make_state()
    lock = slow.acquire_lock(lock_info("slow"), timeout_s=0)
    slow.put_workspace(WorkspaceRecord("demo", {"v": 1}))
    admin = make_state()
    admin.force_unlock(lock.id)
    admin.acquire_lock(lock_info("admin"), timeout_s=0)

    with pytest.raises(LockError, match="no longer held"):
        slow.put_workspace(WorkspaceRecord("demo", {"v": 2}))
    assert admin.read().workspaces["demo"].spec == {"v": 1}
    assert admin.read().serial == 1


# ------------------------------------------------------------------------------- errors


def test_unreachable_endpoint_is_one_line_without_credentials(make_state: StateFactory,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAASOPSTEST12345")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-print-this-secret")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    state = make_state(endpoint_url=f"http://127.0.0.1:{closed_port}", max_attempts=2)
    with pytest.raises(ProviderError) as error:
        state.read()
    message = str(error.value)
    assert "cannot reach" in message and f"127.0.0.1:{closed_port}" in message
    assert "\n" not in message and "Traceback" not in message
    assert "AKIAFAASOPSTEST12345" not in message and "do-not-print-this-secret" not in message
    assert error.value.__cause__ is None  # nothing from botocore's internals rides along


def test_a_table_created_from_the_printed_definition_serves_the_backend(make_state: StateFactory,
                                                                         dynamodb: Any) -> None:
    printed = subprocess.run([sys.executable, "-m", "faasops.plugins.aws", "table-definition", "made-by-hand"],
                             capture_output=True, text=True, check=True)
    dynamodb.create_table(**json.loads(printed.stdout))
    state = make_state(table="made-by-hand", create_table=False)
    state.put_workspace(WorkspaceRecord("demo", {}))
    state.put_task(task("t1", "demo", "2026-01-01T00:00:01.000000Z"))
    assert state.read().serial == 1 and [t.id for t in state.list_tasks(workspace="demo")] == ["t1"]
