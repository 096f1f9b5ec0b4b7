"""The apply executor: runs a plan's changes through the providers, as a dependency graph.

Workspaces are created before their functions and deleted after them. Each function runs its
steps in order — upload → build → push → scaffold → deploy → record — and different functions run
in parallel (``parallelism``). Every step is a task in the state backend. A function is recorded
as applied only after its deploy succeeded, so a failed or killed run is simply re-planned.
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
from faasops.model import Function, Project
from faasops.plan import Action, Plan, ResourceChange
from faasops.progress import Reporter
from faasops.providers import (
    Builder,
    Deployer,
    FunctionRecord,
    Registry,
    Scaffolder,
    SourceStore,
    StateBackend,
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
    """What apply did. ``failed`` maps an address to its error message."""

    run_id: str
    applied: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    builds: int = 0
    cached_builds: int = 0
    pushes: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped


class StepFailed(Exception):
    """A step failed; the message is already recorded on its task."""


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
    ):
        self.project = project
        self.p = providers
        self.reporter = reporter
        self.parallelism = max(1, parallelism)
        self.continue_on_error = continue_on_error
        self.on_step = on_step
        self.on_step_started = on_step_started  # (address, step): the faasops_step_started hook
        self.result = ApplyResult(run_id=uuid.uuid4().hex[:12])
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._dates: dict[Path, str] = {}

    # ---------------------------------------------------------------- steps and tasks

    def _step(self, address: str, kind: str, work: Callable[[], T], detail: Callable[[T], str] | None = None) -> T:
        workspace, _, function = address.partition("/")
        now = utcnow()
        task = Task(
            id=uuid.uuid4().hex, workspace=workspace, function=function or None, kind=kind,
            status="running", created_at=now, updated_at=now, run_id=self.result.run_id,
        )
        self.p.state.put_task(task)
        self.reporter.step(address, kind, "running")
        try:
            if self.on_step_started:
                self.on_step_started(address, kind)
            value = work()
        except Exception as exc:
            message = str(exc) if isinstance(exc, FaasopsError) else f"{type(exc).__name__}: {exc}"
            self._finish(task, "failed", message)
            if not isinstance(exc, FaasopsError):
                raise  # a bug: keep the traceback (the task is already marked failed)
            raise StepFailed(message) from exc
        self._finish(task, "completed", detail(value) if detail else "")
        return value

    def _finish(self, task: Task, status: str, message: str) -> None:
        done = Task(**{**task.__dict__, "status": status, "updated_at": utcnow(), "message": message})
        self.p.state.put_task(done)
        self.reporter.step(task.workspace + (f"/{task.function}" if task.function else ""), task.kind, status, message)
        if self.on_step:
            self.on_step(task.workspace + (f"/{task.function}" if task.function else ""), task.kind, status, message)

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
                self._step(ws.name, "delete-namespace", lambda: self.p.deployer.delete_workspace(self.project, ws.name, old_ns))
            self._step(ws.name, "namespace", lambda: self.p.deployer.ensure_workspace(self.project, ws))
            self._step(ws.name, "record", lambda: self.p.state.put_workspace(WorkspaceRecord(ws.name, change.after or ws.spec())))
        except StepFailed as exc:
            self._failed(ws.name, str(exc))
            return False
        self.result.applied.append(ws.name)
        return True

    def _delete_workspace(self, change: ResourceChange) -> None:
        namespace = (change.before or {}).get("namespace", change.address)
        try:
            self._step(change.address, "delete", lambda: self.p.deployer.delete_workspace(self.project, change.address, namespace))
            self._step(change.address, "record", lambda: self.p.state.delete_workspace(change.address))
        except StepFailed as exc:
            self._failed(change.address, str(exc))
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
            live = self._step(address, "deploy", lambda: self.p.deployer.deploy(self.project, fn, manifests))
            record = FunctionRecord(fn.workspace, fn.name, change.after or {}, artifact.reference, utcnow(),
                                    self._deployed(fn, artifact.reference, live))
            self._step(address, "record", lambda: self.p.state.put_function(record))
        except (StepFailed, FaasopsError) as exc:
            self._failed(address, str(exc))
            return
        with self._lock:
            self.result.applied.append(address)

    def _deployed(self, fn: Function, artifact: str, live: Any) -> str:
        """The record's fingerprint of this deploy, when the providers can give one."""
        render_digest = getattr(self.p.scaffolder, "render_digest", None)
        if render_digest is None or not isinstance(live, list):
            return ""
        return deployed_fingerprint(render_digest(self.project, fn, artifact), live_fingerprint(live))

    def _delete_function(self, change: ResourceChange, namespace: str) -> None:
        if self._stop.is_set():
            with self._lock:
                self.result.skipped.append(change.address)
            return
        try:
            self._step(change.address, "delete", lambda: self.p.deployer.undeploy(self.project, change.workspace, namespace, change.name))
            self._step(change.address, "record", lambda: self.p.state.delete_function(change.workspace, change.name))
        except StepFailed as exc:
            self._failed(change.address, str(exc))
            return
        with self._lock:
            self.result.deleted.append(change.address)

    # ---------------------------------------------------------------- the graph

    def run(self, plan: Plan, recorded_namespaces: dict[str, str]) -> ApplyResult:
        """Apply ``plan``. ``recorded_namespaces`` maps workspace → namespace as last recorded
        (where deletes and replaces find the old objects)."""
        work = plan.actionable
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
                blocked = [a for a in self.result.failed if a.startswith(change.address + "/")]
                if blocked or self._stop.is_set():
                    self.result.skipped.append(change.address)
                    continue
                self._delete_workspace(change)
        self.reporter.finish(self.result)
        return self.result


def recorded_namespaces(workspaces: dict[str, Any]) -> dict[str, str]:
    return {name: rec.spec.get("namespace", name) for name, rec in workspaces.items()}

