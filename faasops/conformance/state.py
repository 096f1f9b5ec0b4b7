"""The behavioural tests of :class:`faasops.providers.StateBackend`."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from faasops.conformance.samples import function_record, lock_info, task, workspace_record
from faasops.errors import LockError
from faasops.lock import INTERRUPTED_MESSAGE, iso, utc_now
from faasops.providers import StateBackend, SupportsSerial

#: ``state_clients(lease_s=…)``: a new client of the test's store (see :class:`StateBackendContract`).
StateFactory = Callable[..., StateBackend]

# A short lease, so that expiry and renewal are seen within a second or two.
SHORT_LEASE_S = 0.6


class StateBackendContract:
    """Subclass it as ``Test…`` and define the fixture ``state_factory``: a callable
    ``state_factory(lease_s: float) -> StateBackend`` that returns a new *client* of one store,
    fresh for each test. Two calls must give two clients that share the store as two processes
    would (what one writes the other reads; the lock is exclusive between them)::

        class TestMyState(StateBackendContract):
            @pytest.fixture
            def state_factory(self, tmp_path):
                return lambda lease_s: MyState(tmp_path / "state", lease_s=lease_s)

    Every client made is closed after the test.
    """

    @pytest.fixture
    def state_factory(self) -> StateFactory:
        raise NotImplementedError("define the fixture state_factory(lease_s) in your StateBackendContract subclass")

    @pytest.fixture
    def state_clients(self, state_factory: StateFactory) -> Iterator[StateFactory]:
        made: list[StateBackend] = []

        def make(lease_s: float = 60.0) -> StateBackend:
            made.append(state_factory(lease_s))
            return made[-1]

        yield make
        for state in made:
            state.close()  # stops lease renewals; the store is the test's own, locks may stay

    @pytest.fixture
    def state_client(self, state_clients: StateFactory) -> StateBackend:
        return state_clients()

    # ------------------------------------------------------------------ records

    def test_a_new_store_reads_empty(self, state_client: StateBackend) -> None:
        actual = state_client.read()
        assert (actual.workspaces, actual.functions, actual.serial) == ({}, {}, 0)
        assert state_client.list_tasks() == []

    def test_records_written_by_one_client_are_read_by_another(self, state_clients: StateFactory) -> None:
        writer, reader = state_clients(), state_clients()
        ws, fn = workspace_record("demo"), function_record("demo", "hello", env={"A": "1"})
        writer.put_workspace(ws)
        writer.put_function(fn)
        actual = reader.read()
        assert actual.workspaces == {"demo": ws}
        assert actual.functions == {"demo/hello": fn}

    def test_a_put_replaces_the_record_and_a_delete_removes_it(self, state_client: StateBackend) -> None:
        state_client.put_workspace(workspace_record("demo"))
        state_client.put_workspace(workspace_record("demo", protect=True))
        state_client.put_function(function_record("demo", "hello"))
        newer = function_record(
            "demo", "hello", artifact="registry.example/demo/hello@sha256:" + "1" * 64, env={"B": "2"}
        )
        state_client.put_function(newer)
        actual = state_client.read()
        assert actual.workspaces["demo"].spec["protect"] is True
        assert actual.functions == {"demo/hello": newer}
        state_client.delete_function("demo", "hello")
        state_client.delete_workspace("demo")
        assert (state_client.read().workspaces, state_client.read().functions) == ({}, {})

    def test_deleting_what_is_not_recorded_is_no_error(self, state_client: StateBackend) -> None:
        state_client.delete_function("demo", "nothing")
        state_client.delete_workspace("nothing")

    def test_read_of_some_workspaces_returns_only_their_records(self, state_client: StateBackend) -> None:
        for name in ("a", "b"):
            state_client.put_workspace(workspace_record(name))
            state_client.put_function(function_record(name, "hello"))
        actual = state_client.read(["b"])
        assert set(actual.workspaces) == {"b"}
        assert set(actual.functions) == {"b/hello"}

    # ------------------------------------------------------------------ serial

    def test_every_record_write_grows_the_serial(self, state_clients: StateFactory) -> None:
        state, other = state_clients(), state_clients()
        seen = [state.read().serial]
        writes: tuple[Callable[[], None], ...] = (
            lambda: state.put_workspace(workspace_record("demo")),
            lambda: state.put_function(function_record()),
            lambda: state.put_function(function_record(env={"A": "1"})),
            lambda: state.delete_function("demo", "hello"),
            lambda: state.delete_workspace("demo"),
        )
        for write in writes:
            write()
            seen.append(other.read().serial)
        assert seen == sorted(set(seen)), f"the serial must grow with every record write: {seen}"

    def test_the_serial_capability_agrees_with_read(self, state_clients: StateFactory) -> None:
        state = state_clients()
        if not isinstance(state, SupportsSerial):
            pytest.skip("this backend does not offer serial()")
        assert state.serial() == state.read().serial == 0
        state.put_workspace(workspace_record("demo"))
        assert state_clients().serial() == state.read().serial > 0  # type: ignore[attr-defined]

    def test_tasks_leave_the_serial_alone(self, state_client: StateBackend) -> None:
        state_client.put_workspace(workspace_record("demo"))
        before = state_client.read().serial
        state_client.put_task(task("t1"))
        state_client.put_task(task("t1", status="completed"))
        assert state_client.read().serial == before

    def test_concurrent_writers_lose_no_record_and_move_the_serial_on(self, state_clients: StateFactory) -> None:
        # A backend may commit records waiting together in one transaction (one serial bump for
        # the group), so concurrent writes move the serial on, not necessarily once per record;
        # a write alone always moves it (test_every_record_write_grows_the_serial).
        clients = [state_clients(), state_clients()]
        clients[0].put_workspace(workspace_record("demo"))
        before = clients[0].read().serial
        errors: list[BaseException] = []

        def write(client: StateBackend, names: list[str]) -> None:
            try:
                for name in names:
                    client.put_function(function_record("demo", name))
            except BaseException as exc:  # reported below, in the test's thread
                errors.append(exc)

        names = [f"fn-{i}" for i in range(16)]
        threads = [threading.Thread(target=write, args=(clients[i % 2], names[i::4])) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        actual = state_clients().read()
        assert sorted(actual.functions) == sorted(f"demo/{n}" for n in names)
        assert actual.serial > before, "concurrent writes left the serial where it was"

    # ------------------------------------------------------------------ tasks

    def test_tasks_are_upserted_by_id_and_listed_newest_first(self, state_clients: StateFactory) -> None:
        state = state_clients()
        state.put_task(task("aaa-1", created_at="2026-01-01T00:00:01.000000Z"))
        state.put_task(
            task("bbb-2", workspace="other", function=None, kind="namespace", created_at="2026-01-01T00:00:02.000000Z")
        )
        state.put_task(task("ccc-3", created_at="2026-01-01T00:00:03.000000Z"))
        updated = task("aaa-1", status="completed", created_at="2026-01-01T00:00:01.000000Z", message="done")
        state.put_task(updated)
        reader = state_clients()
        assert [t.id for t in reader.list_tasks()] == ["ccc-3", "bbb-2", "aaa-1"]
        assert reader.list_tasks(task_id="aaa-1") == [updated]
        assert [t.id for t in reader.list_tasks(task_id="bbb")] == ["bbb-2"]
        assert [t.id for t in reader.list_tasks(workspace="demo")] == ["ccc-3", "aaa-1"]
        assert [t.id for t in reader.list_tasks(limit=2)] == ["ccc-3", "bbb-2"]
        assert reader.list_tasks(task_id="bbb")[0].function is None

    # ------------------------------------------------------------------ lock

    def test_the_lock_is_exclusive_between_clients(self, state_clients: StateFactory) -> None:
        first, second = state_clients(), state_clients()
        held = first.acquire_lock(lock_info("lock-one", holder="alice"), 0)
        assert held.id == "lock-one" and held.expires_at > held.created_at
        with pytest.raises(LockError, match="alice"):
            second.acquire_lock(lock_info("lock-two", holder="bob"), 0)
        with pytest.raises(LockError):
            second.acquire_lock(lock_info("lock-two", holder="bob"), 0.3)  # waits, then gives up
        first.release_lock(held.id)
        assert second.acquire_lock(lock_info("lock-two"), 0).id == "lock-two"

    def test_a_waiting_client_gets_the_lock_once_it_is_released(self, state_clients: StateFactory) -> None:
        first, second = state_clients(), state_clients()
        held = first.acquire_lock(lock_info("lock-one"), 0)
        releaser = threading.Timer(0.3, first.release_lock, args=(held.id,))
        releaser.start()
        try:
            assert second.acquire_lock(lock_info("lock-two"), 30).id == "lock-two"
        finally:
            releaser.join()

    def test_releasing_another_lock_id_leaves_the_lock_held(self, state_clients: StateFactory) -> None:
        holder, other = state_clients(), state_clients()
        holder.acquire_lock(lock_info("lock-one"), 0)
        other.release_lock("not-this-one")
        with pytest.raises(LockError):
            other.acquire_lock(lock_info("lock-two"), 0)

    def test_force_unlock_needs_the_current_lock_id(self, state_clients: StateFactory) -> None:
        holder, admin = state_clients(), state_clients()
        with pytest.raises(LockError, match="not locked"):
            admin.force_unlock("lock-one")
        holder.acquire_lock(lock_info("lock-one"), 0)
        with pytest.raises(LockError, match="does not match"):
            admin.force_unlock("wrong-id")
        admin.force_unlock("lock-one")
        assert admin.acquire_lock(lock_info("lock-two"), 0).id == "lock-two"

    def test_the_lock_of_a_dead_process_on_this_host_is_taken_over(self, state_clients: StateFactory) -> None:
        crashed, next_run = state_clients(), state_clients()
        gone = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
        )
        crashed.acquire_lock(lock_info("lock-dead", pid=int(gone.stdout)), 0)
        crashed.close()  # the run is gone without releasing
        assert next_run.acquire_lock(lock_info("lock-next"), 0).id == "lock-next"

    def test_an_expired_lease_is_taken_over(self, state_clients: StateFactory) -> None:
        crashed, next_run = state_clients(SHORT_LEASE_S), state_clients(SHORT_LEASE_S)
        held = crashed.acquire_lock(lock_info("lock-elsewhere", host="another-host.invalid"), 0)
        crashed.close()  # stops renewing: only the lease's expiry frees the lock
        try:
            early = next_run.acquire_lock(lock_info("lock-early"), 0)
        except LockError:
            pass  # still within its lease
        else:  # a loaded machine took that long: only fine if the lease had run out
            assert iso(utc_now()) >= held.expires_at, f"lock taken over before its lease ran out ({held})"
            assert early.id == "lock-early"
            return
        time.sleep(SHORT_LEASE_S * 2)
        assert next_run.acquire_lock(lock_info("lock-next"), 0).id == "lock-next"

    def test_the_lease_is_renewed_while_the_lock_is_held(self, state_clients: StateFactory) -> None:
        holder, other = state_clients(SHORT_LEASE_S), state_clients(SHORT_LEASE_S)
        held = holder.acquire_lock(lock_info("lock-long", host="another-host.invalid"), 0)
        time.sleep(SHORT_LEASE_S * 3)  # three leases: only a renewed lock is still held
        with pytest.raises(LockError):
            other.acquire_lock(lock_info("lock-other"), 0)
        holder.release_lock(held.id)
        assert other.acquire_lock(lock_info("lock-other"), 0).id == "lock-other"

    def test_taking_the_lock_marks_the_open_tasks_of_a_gone_run_interrupted(self, state_clients: StateFactory) -> None:
        state = state_clients()
        state.put_task(task("open-1", status="running", run_id="gone"))
        state.put_task(task("open-2", status="pending", run_id="gone"))
        state.put_task(task("done-3", status="completed", run_id="gone", message="ok"))
        state.acquire_lock(lock_info("lock-one"), 0)
        tasks = {t.id: t for t in state_clients().list_tasks()}
        for open_id in ("open-1", "open-2"):
            assert (tasks[open_id].status, tasks[open_id].message) == ("failed", INTERRUPTED_MESSAGE)
        assert (tasks["done-3"].status, tasks["done-3"].message) == ("completed", "ok")
