"""The apply executor: runs a plan's changes through the providers, as a dependency graph.

Workspaces are created before their functions and deleted after them. Each function runs its
steps in order — upload → build → push → scaffold → deploy → record — and different functions run
in parallel (``parallelism``). Every step is a task in the state backend. A function is recorded
as applied only after its deploy succeeded, so a failed or killed run is simply re-planned.

Task history is written as each step starts and ends, unless the state backend offers
``put_tasks`` (a remote store, where each write is a round trip): then a function's tasks are
written in two step groups (see :class:`TaskJournal`) — the preparing steps (snapshot … scaffold)
together with the deploy as running, just before the deploy changes the cluster, and the deploy's
and the record's completion in the same transaction as the record. A failure, a signal or an
abort writes what is pending at once.

A signal (see :mod:`faasops.interruption`) sets ``interrupt``: no step starts after it, except
the ``record`` that follows a finished deploy or delete (so the state says what is live), and
:meth:`Executor.abort` ends what runs.
"""

from __future__ import annotations

import os
import subprocess
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, TypeVar

from faasops.diff import deployed_fingerprint, live_fingerprint
from faasops.errors import FaasopsError, StalePlanError
from faasops.interruption import kill_child_processes
from faasops.lock import INTERRUPTED_MESSAGE
from faasops.model import Function, Project
from faasops.plan import Action, Plan, ResourceChange
from faasops.progress import Reporter
from faasops.providers import (
    ActualState,
    Builder,
    Deployer,
    FunctionRecord,
    Registry,
    Scaffolder,
    SourceStore,
    StateBackend,
    SupportsDeployNote,
    SupportsRecordedState,
    SupportsRenderDigest,
    SupportsTaskBatches,
    Task,
    WorkspaceRecord,
)
from faasops.source import snapshot_directory

T = TypeVar("T")
EPOCH = "1970-01-01T00:00:00Z"


def utcnow() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class ProviderSet:
    """The six providers one run uses."""

    state: StateBackend
    sources: SourceStore
    builder: Builder
    registry: Registry
    scaffolder: Scaffolder
    deployer: Deployer


@dataclass
class ApplyResult:
    """What apply did. ``failed`` maps an address to its error message; ``skipped`` were not
    started; ``interrupted`` were started, then stopped by a signal before they were recorded."""

    run_id: str
    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    builds: int = 0
    cached_builds: int = 0
    pushes: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped and not self.interrupted


class StepFailed(Exception):
    """A step failed; the message is already recorded on its task."""


class Stopped(Exception):
    """A signal stopped the run before this step (or aborted it while it ran)."""


def source_date(source_dir: Path) -> str:
    """The pinned creation time of a function's artifact, so equal sources give equal digests:
    ``SOURCE_DATE_EPOCH`` if set, else the last commit touching the source dir, else the epoch."""
    if epoch := os.environ.get("SOURCE_DATE_EPOCH"):
        return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        out = subprocess.run(
            ["git", "log", "-1", "--format=%ct", "--", "."],
            cwd=source_dir, capture_output=True, text=True, timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return EPOCH
    if out.returncode != 0 or not out.stdout.strip():
        return EPOCH
    return datetime.fromtimestamp(int(out.stdout.strip()), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# Steps that change the cluster: a grouped journal writes them as running before they start,
# so a run killed meanwhile leaves an open task that the next run marks interrupted.
WRITE_AHEAD_STEPS = frozenset({"deploy", "undeploy", "delete"})


class TaskJournal:
    """Where one function's tasks go: straight to the state backend (``grouped`` False: one
    write per change of a task), or held and written in step groups through ``put_tasks``.

    Grouped, a task is held until a step in :data:`WRITE_AHEAD_STEPS` starts, a step fails or the
    run stops (:meth:`flush`: one ``put_tasks`` of everything held), or the record is written
    (:meth:`take`: the held tasks go into the record's own write)."""

    def __init__(self, state: StateBackend, grouped: bool):
        self.state = state
        self.grouped = grouped
        self._held: dict[str, Task] = {}  # task id → its newest version, in step order
        self._lock = threading.Lock()

    def write(self, task: Task) -> None:
        """A task started, finished or failed."""
        if not self.grouped:
            self.state.put_task(task)
            return
        with self._lock:
            self._held[task.id] = task
        if task.status == "failed" or (task.status == "running" and task.kind in WRITE_AHEAD_STEPS):
            self.flush()

    def flush(self) -> None:
        """Write every held task now (one ``put_tasks``)."""
        with self._lock:
            held, self._held = list(self._held.values()), {}
        if held:
            try:
                assert isinstance(self.state, SupportsTaskBatches)  # grouped only for such a backend
                self.state.put_tasks(held)
            except BaseException:
                with self._lock:
                    self._held = {t.id: t for t in held} | self._held
                raise

    def take(self, finished: Task) -> list[Task]:
        """The held tasks plus ``finished`` (a completed version of a held one), for a write
        that records them itself; they are no longer held."""
        with self._lock:
            self._held[finished.id] = finished
            held, self._held = list(self._held.values()), {}
        return held

    def give_back(self, tasks: list[Task]) -> None:
        """``tasks`` from :meth:`take` were not written after all."""
        with self._lock:
            self._held = {t.id: t for t in tasks} | self._held


class Executor:
    """Runs one plan. Not reusable: create one per apply."""

    def __init__(
        self,
        project: Project,
        providers: ProviderSet,
        reporter: Reporter,
        parallelism: int = 4,
        continue_on_error: bool = False,
        on_step: Callable[[str, str, str, str], None] | None = None,
        on_step_started: Callable[[str, str], None] | None = None,
        interrupt: threading.Event | None = None,
        recorded: ActualState | None = None,
    ):
        self.project = project
        self.p = providers
        self.reporter = reporter
        self.parallelism = max(1, parallelism)
        self.continue_on_error = continue_on_error
        self.on_step = on_step
        self.on_step_started = on_step_started  # (address, step): the faasops_step_started hook
        self.result = ApplyResult(run_id=uuid.uuid4().hex[:12])
        self._stop = threading.Event()  # a failure: start no new function
        self.interrupt = interrupt or threading.Event()  # a signal: start no new step
        self._aborted = threading.Event()  # a second signal: end the running steps
        self._lock = threading.Lock()
        self._dates: dict[Path, str] = {}
        self._final_namespaces: dict[str, str] = {}
        self._running: dict[str, Task] = {}  # task id → task, while its step runs
        self._begun: set[str] = set()  # addresses that started a step
        # The state the plan was made from (read in this process, same serial): providers may
        # skip requests it already answers (see _tell_providers).
        self.recorded = recorded
        self._grouped = isinstance(providers.state, SupportsTaskBatches)
        self._journals: dict[str, TaskJournal] = {}  # address → its journal, grouped only
        self._written_with_record: set[str] = set()  # ids of record tasks written by the record itself

    # ---------------------------------------------------------------- signals

    def abort(self) -> list[str]:
        """End the run now (a second signal; called from the main thread): start nothing more,
        kill child processes (builds), mark the running steps' tasks interrupted. Returns the
        running steps as ``address step``. A worker whose step still finishes records its
        real outcome over the mark."""
        self.interrupt.set()
        self._aborted.set()
        kill_child_processes()
        with self._lock:
            running = list(self._running.values())
        for task in running:
            try:
                self._journal(_address(task)).write(Task(**{**task.__dict__, "status": "failed",
                                                            "updated_at": utcnow(), "message": INTERRUPTED_MESSAGE}))
            except FaasopsError:
                pass  # the next run marks it (a lock taken over marks every open task)
        with self._lock:
            journals = list(self._journals.values())
        for journal in journals:
            try:
                journal.flush()
            except FaasopsError:
                pass
        return [f"{_address(t)} {t.kind}" for t in running]

    def _journal(self, address: str) -> TaskJournal:
        """Where the tasks of ``address`` go: per-step writes, or (a backend with ``put_tasks``)
        a function's own grouped journal."""
        if not self._grouped or "/" not in address:
            return TaskJournal(self.p.state, grouped=False)
        with self._lock:
            journal = self._journals.get(address)
            if journal is None:
                journal = self._journals[address] = TaskJournal(self.p.state, grouped=True)
            return journal

    def _flush(self, address: str) -> None:
        """Write what the journal of ``address`` holds (a failure or a stop ended its steps)."""
        with self._lock:
            journal = self._journals.get(address)
        if journal is not None:
            try:
                journal.flush()
            except FaasopsError:
                pass  # the step's own error is the one to report

    def _check_stop(self, address: str, finishing: bool) -> None:
        if self._aborted.is_set() or (self.interrupt.is_set() and not finishing):
            raise Stopped()
        with self._lock:
            self._begun.add(address)

    def _stopped(self, address: str) -> None:
        """``address`` was stopped by a signal: interrupted if it had begun, else not started."""
        with self._lock:
            began = address in self._begun
            (self.result.interrupted if began else self.result.skipped).append(address)
        self.reporter.step(address, "stop", "skipped",
                           "interrupted between steps, not recorded" if began else "the run was interrupted")

    # ---------------------------------------------------------------- steps and tasks

    def _step(self, address: str, kind: str, work: Callable[..., T], detail: Callable[[T], str] | None = None,
              finishing: bool = False, takes_task: bool = False) -> T:
        """Run one step as a task. ``finishing`` marks the record that follows a finished
        deploy or delete: it still runs after a first signal, so the state says what is live.
        ``takes_task``: ``work`` is given the step's running task (a record that writes its
        own task's completion, see :meth:`_record_function`)."""
        self._check_stop(address, finishing)
        workspace, _, function = address.partition("/")
        now = utcnow()
        task = Task(
            id=uuid.uuid4().hex, workspace=workspace, function=function or None, kind=kind,
            status="running", created_at=now, updated_at=now, run_id=self.result.run_id,
        )
        self._journal(address).write(task)
        with self._lock:
            self._running[task.id] = task
        self.reporter.step(address, kind, "running")
        try:
            if self.on_step_started:
                self.on_step_started(address, kind)
            value = work(task) if takes_task else work()
        except Exception as exc:
            if self._aborted.is_set():  # most likely the abort itself (a killed build)
                self._finish(task, "failed", INTERRUPTED_MESSAGE)
                raise Stopped() from exc
            message = str(exc) if isinstance(exc, FaasopsError) else f"{type(exc).__name__}: {exc}"
            # Providers name the function in their errors (they are raised elsewhere too); every
            # line that shows this message already starts with the address.
            message = message.removeprefix(f"{address}: ")
            self._finish(task, "failed", message)
            if not isinstance(exc, FaasopsError):
                raise  # a bug: keep the traceback (the task is already marked failed)
            raise StepFailed(message) from exc
        self._finish(task, "completed", detail(value) if detail else "")
        return value

    def _finish(self, task: Task, status: str, message: str) -> None:
        done = Task(**{**task.__dict__, "status": status, "updated_at": utcnow(), "message": message})
        try:
            if task.id not in self._written_with_record:
                self._journal(_address(task)).write(done)
        finally:
            with self._lock:
                self._running.pop(task.id, None)
        self.reporter.step(_address(task), task.kind, status, message)
        if self.on_step:
            self.on_step(_address(task), task.kind, status, message)

    def _source_date(self, source_dir: Path) -> str:
        # One `git log` per source directory per run: many functions may share a directory.
        with self._lock:
            if source_dir not in self._dates:
                self._dates[source_dir] = source_date(source_dir)
            return self._dates[source_dir]

    def _failed(self, address: str, message: str) -> None:
        with self._lock:
            self.result.failed[address] = message
        if not self.continue_on_error:
            self._stop.set()

    # ---------------------------------------------------------------- workspaces

    def _apply_workspace(self, change: ResourceChange) -> bool:
        ws = self.project.workspace(change.address)
        assert ws is not None
        try:
            if change.action is Action.REPLACE and change.before:
                old_ns = change.before["namespace"]
                if self._namespace_free(ws.name, old_ns):
                    self._step(ws.name, "delete-namespace", lambda: self.p.deployer.delete_workspace(self.project, ws.name, old_ns))
            self._step(ws.name, "namespace", lambda: self.p.deployer.ensure_workspace(self.project, ws),
                       lambda _: self._deployer_note(ws.name))
            self._step(ws.name, "record", lambda: self.p.state.put_workspace(WorkspaceRecord(ws.name, change.after or ws.spec())),
                       finishing=True)
        except StepFailed as exc:
            self._failed(ws.name, str(exc))
            return False
        except Stopped:
            self._stopped(ws.name)
            return False
        self.result.applied.append(ws.name)
        return True

    def _delete_workspace(self, change: ResourceChange) -> None:
        namespace = (change.before or {}).get("namespace", change.address)
        try:
            if self._namespace_free(change.address, namespace):
                self._step(change.address, "delete", lambda: self.p.deployer.delete_workspace(self.project, change.address, namespace),
                           lambda _: self._deployer_note(change.address))
            else:
                # Its functions were deleted one by one; the namespace stays for the other workspace.
                self.reporter.step(change.address, "delete", "skipped", f"namespace {namespace} is shared with another workspace")
            self._step(change.address, "record", lambda: self.p.state.delete_workspace(change.address), finishing=True)
        except StepFailed as exc:
            self._failed(change.address, str(exc))
            return
        except Stopped:
            self._stopped(change.address)
            return
        self.result.deleted.append(change.address)

    # ---------------------------------------------------------------- functions

    def _function(self, change: ResourceChange) -> Function:
        ws = self.project.workspace(change.workspace)
        fn = next((f for f in ws.functions if f.name == change.name), None) if ws else None
        if fn is None:
            raise StalePlanError(f"{change.address} is in the plan but no longer in the manifests; plan again")
        return fn

    def _apply_function(self, change: ResourceChange, old_namespace: str | None) -> None:
        address = change.address
        if self._stop.is_set():
            with self._lock:
                self.result.skipped.append(address)
            self.reporter.step(address, "skip", "skipped", "an earlier failure stopped the run")
            return
        try:
            fn = self._function(change)
            snapshot = self._step(address, "snapshot", lambda: snapshot_directory(fn.source_dir), lambda s: s.digest)
            want = (change.after or {}).get("source_hash")
            if want and snapshot.digest != want:
                raise StepFailed(f"the source of {address} changed since the plan was made; plan again")
            self._step(address, "upload", lambda: self.p.sources.upload(fn, snapshot), str)
            build = self._step(address, "build", lambda: self.p.builder.build(fn, snapshot), lambda b: "cached" if b.cached else b.wasm_digest)
            with self._lock:
                if build.cached:
                    self.result.cached_builds += 1
                else:
                    self.result.builds += 1
            artifact = self._step(address, "push", lambda: self.p.registry.push(fn, build, self._source_date(fn.source_dir)), lambda a: a.reference + ("" if a.pushed else " (already present)"))
            if artifact.pushed:
                with self._lock:
                    self.result.pushes += 1
            manifests = self._step(address, "scaffold", lambda: self.p.scaffolder.render(self.project, fn, artifact.reference), lambda m: f"{len(m)} manifests")
            if change.action is Action.REPLACE and old_namespace:
                self._step(address, "undeploy", lambda: self.p.deployer.undeploy(self.project, fn.workspace, old_namespace, fn.name))
            live = self._step(address, "deploy", lambda: self.p.deployer.deploy(self.project, fn, manifests),
                              lambda _: self._deployer_note(address))
            record = FunctionRecord(fn.workspace, fn.name, change.after or {}, artifact.reference, utcnow(),
                                    self._deployed(fn, artifact.reference, live))
            self._step(address, "record", lambda task: self._record_function(record, task), finishing=True,
                       takes_task=True)
        except (StepFailed, FaasopsError) as exc:
            self._flush(address)
            self._failed(address, str(exc))
            return
        except Stopped:
            self._flush(address)
            self._stopped(address)
            return
        with self._lock:
            self.result.applied.append(address)

    def _record_function(self, record: FunctionRecord, task: Task) -> None:
        """Record a deployed function (see :meth:`_record_with_tasks`)."""
        self._record_with_tasks(record.address, task, lambda: self.p.state.put_function(record),
                                lambda tasks: self.p.state.put_function(record, tasks=tasks))  # type: ignore[call-arg]

    def _record_deletion(self, workspace: str, name: str, task: Task) -> None:
        """Record a deleted function (see :meth:`_record_with_tasks`)."""
        self._record_with_tasks(f"{workspace}/{name}", task, lambda: self.p.state.delete_function(workspace, name),
                                lambda tasks: self.p.state.delete_function(workspace, name, tasks=tasks))  # type: ignore[call-arg]

    def _record_with_tasks(self, address: str, task: Task, plain: Callable[[], None],
                           with_tasks: Callable[[list[Task]], None]) -> None:
        """Write a record. Grouped, the held tasks (the deploy's or delete's completion) and this
        step's own completion go into the record's write (``tasks=``), so a run killed after it
        leaves no task open."""
        journal = self._journal(address)
        if not journal.grouped:
            plain()
            return
        done = Task(**{**task.__dict__, "status": "completed", "updated_at": utcnow()})
        tasks = journal.take(done)
        try:
            with_tasks(tasks)
        except BaseException:
            journal.give_back([t for t in tasks if t.id != task.id])
            raise
        with self._lock:
            self._written_with_record.add(task.id)

    def _deployed(self, fn: Function, artifact: str, live: Any) -> str:
        """The record's fingerprint of this deploy, when the providers can give one."""
        scaffolder = self.p.scaffolder
        if not isinstance(scaffolder, SupportsRenderDigest) or not isinstance(live, list):
            return ""
        return deployed_fingerprint(scaffolder.render_digest(self.project, fn, artifact), live_fingerprint(live))

    def _deployer_note(self, address: str) -> str:
        """What the deployer says its last change of ``address`` did, for the task message (a
        deployer may offer ``deploy_note(address)``: the gitops one names its commit)."""
        deployer = self.p.deployer
        return deployer.deploy_note(address) if isinstance(deployer, SupportsDeployNote) else ""

    def _delete_function(self, change: ResourceChange, namespace: str) -> None:
        if self._stop.is_set():
            with self._lock:
                self.result.skipped.append(change.address)
            return
        try:
            self._step(change.address, "delete", lambda: self.p.deployer.undeploy(self.project, change.workspace, namespace, change.name),
                       lambda _: self._deployer_note(change.address))
            self._step(change.address, "record", lambda task: self._record_deletion(change.workspace, change.name, task),
                       finishing=True, takes_task=True)
        except StepFailed as exc:
            self._flush(change.address)
            self._failed(change.address, str(exc))
            return
        except Stopped:
            self._flush(change.address)
            self._stopped(change.address)
            return
        with self._lock:
            self.result.deleted.append(change.address)

    # ---------------------------------------------------------------- the graph

    def _tell_providers(self) -> None:
        """Hand the state the plan was made from to the providers that offer
        ``use_recorded(state)`` (see :mod:`faasops.providers`), so they can skip requests whose
        answer the records already give."""
        if self.recorded is None:
            return
        for provider in (self.p.sources, self.p.registry, self.p.deployer):
            if isinstance(provider, SupportsRecordedState):
                provider.use_recorded(self.recorded)

    def _namespaces_after(self, plan: Plan, recorded: dict[str, str]) -> dict[str, str]:
        """Workspace → the namespace it will be in once ``plan`` is applied: the ones the plan
        creates or moves where the manifests put them, recorded ones the plan keeps where they are."""
        changes = {c.address: c for c in plan.actionable if c.kind == "workspace"}
        after = {name: namespace for name, namespace in recorded.items()
                 if name not in changes or changes[name].action is not Action.DELETE}
        for name, change in changes.items():
            if change.action is not Action.DELETE:
                after[name] = (change.after or {}).get("namespace", name)
        return after

    def _namespace_free(self, workspace: str, namespace: str) -> bool:
        """Whether no other workspace is, or stays, in ``namespace``: two workspaces may share one
        (with different function names), and deleting one must not take the other's functions down."""
        return not any(ns == namespace and name != workspace for name, ns in self._final_namespaces.items())

    def run(self, plan: Plan, recorded_namespaces: dict[str, str]) -> ApplyResult:
        """Apply ``plan``. ``recorded_namespaces`` maps workspace → namespace as last recorded
        (where deletes and replaces find the old objects)."""
        work = plan.actionable
        self._final_namespaces = self._namespaces_after(plan, recorded_namespaces)
        self._tell_providers()
        self.reporter.start(len(work))
        ws_changes = [c for c in work if c.kind == "workspace"]
        fn_changes = [c for c in work if c.kind == "function"]

        failed_ws: set[str] = set()
        for change in ws_changes:
            if change.action in (Action.CREATE, Action.UPDATE, Action.REPLACE):
                if not self._apply_workspace(change):
                    failed_ws.add(change.address)

        upserts = [c for c in fn_changes if c.action is not Action.DELETE]
        deletes = [c for c in fn_changes if c.action is Action.DELETE]
        with ThreadPoolExecutor(max_workers=self.parallelism, thread_name_prefix="faasops-apply") as pool:
            futures = []
            for change in upserts:
                if change.workspace in failed_ws:
                    self.result.skipped.append(change.address)
                    continue
                futures.append(pool.submit(self._apply_function, change, recorded_namespaces.get(change.workspace)))
            for change in deletes:
                namespace = recorded_namespaces.get(change.workspace, change.workspace)
                futures.append(pool.submit(self._delete_function, change, namespace))
            for future in futures:
                future.result()  # re-raises bugs

        for change in ws_changes:
            if change.action is Action.DELETE:
                blocked = [a for a in (*self.result.failed, *self.result.interrupted) if a.startswith(change.address + "/")]
                if blocked or self._stop.is_set() or self.interrupt.is_set():
                    self.result.skipped.append(change.address)
                    continue
                self._delete_workspace(change)
        self.reporter.finish(self.result)
        return self.result


def _address(task: Task) -> str:
    return task.workspace + (f"/{task.function}" if task.function else "")


def recorded_namespaces(workspaces: dict[str, Any]) -> dict[str, str]:
    return {name: rec.spec.get("namespace", name) for name, rec in workspaces.items()}

