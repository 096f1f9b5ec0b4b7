"""The API's write path: one writer thread turns queued writes into commits and applies.

Every write runs on this one thread (the process-wide serialisation) while it holds the state
lock (the backend's, so ``faasops apply`` in CI and the API never run at the same time):

1. load the project, edit the work tree (:mod:`faasops.api.changes`), validate the whole
   project with the loader ``faasops validate`` uses — a refused change is rolled back and
   answered (404/409/422), nothing committed;
2. commit exactly the touched paths, author = the token's name (and push, with ``--push``);
   record the write's task (``running``): from here on the request is answered (202, or it
   waits for step 3 with ``?wait=true``);
3. apply the targets of every write committed in this round in one plan
   (``-t ws/fn`` …, with prune: the target matches git exactly), then complete or fail each
   write's task; then record the last applied commit.

Writes queued while a round runs are the next round: 20 concurrent writes cost a few applies,
not 20. Tasks are written only while the lock is held, because taking the lock marks every
open task of a previous holder as interrupted.

Crash safety: the last applied commit is kept in the git directory
(``<git-dir>/faasops-api/applied``). On start, the commits after it that carry a
``Faasops-Target`` trailer are the ones whose apply never ran: their targets are applied before
any new write. An apply only makes the targets match the manifests, so running one again after
a crash changes nothing that was already done.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from faasops.api.changes import Change, Conflict, Rollback
from faasops.api.context import ApiContext
from faasops.api.git_repo import GitError, GitRepo
from faasops.api.manifest_edit import EntryExists, EntryNotFound
from faasops.engine import Engine
from faasops.errors import FaasopsError, LockError, ManifestError, RequestRefused
from faasops.executor import ApplyResult, utcnow
from faasops.manifest import load_project
from faasops.model import Function, Project
from faasops.plan import PlanOptions, Selection
from faasops.progress import PlainReporter
from faasops.providers import Task

log = logging.getLogger("faasops.api")

RUN_ID = "api"
TASK_KIND = "api-write"
RECOVERY_KIND = "api-recover"
LOCK_WAIT_S = 300.0
PENDING, RUNNING, COMPLETED, FAILED = "pending", "running", "completed", "failed"

Edit = Callable[[Project, Rollback], Change]


class WriteFailed(RequestRefused):
    """A write refused before its commit; ``status`` is the HTTP status to answer."""


@dataclass
class Write:
    """One queued write and what became of it (read by the request that queued it)."""

    author: str
    workspace: str
    function: str | None
    edit: Edit
    committed: threading.Event = field(default_factory=threading.Event)
    done: threading.Event = field(default_factory=threading.Event)
    error: WriteFailed | None = None
    task: Task | None = None
    commit: str | None = None
    change: Change | None = None
    result: dict[str, Any] | None = None

    def refuse(self, status: int, message: str) -> None:
        self.error = WriteFailed(status, message)
        self.committed.set()
        self.done.set()


def _status_of(exc: Exception) -> int:
    if isinstance(exc, EntryNotFound):
        return 404
    if isinstance(exc, (EntryExists, Conflict)):
        return 409
    if isinstance(exc, LockError):
        return 503
    return 422


class Writer:
    """The writer thread and its queue; also answers ``GET /api/status``."""

    def __init__(self, ctx: ApiContext):
        self.ctx = ctx
        self.repo: GitRepo | None = None
        try:
            self.repo = GitRepo(ctx.project_dir)
        except GitError as exc:
            # Reads still work; every write answers why it can't be made.
            self.no_repo = f"writes need the project in a git work tree ({exc}); run `git init && git add -A && git commit`"
            log.warning("%s", self.no_repo)
        else:
            key = self.repo.relative(ctx.project_dir).replace("/", "_") or "root"
            suffix = f".{ctx.environment}" if ctx.environment else ""
            self.marker = self.repo.git_dir / "faasops-api" / f"applied-{key}{suffix}"
        self._queue: list[Write] = []
        self._cond = threading.Condition()
        self._stopping = False
        self.recovery: dict[str, Any] = {"status": "pending", "commits": [], "targets": []}
        # The engine that holds the state lock (and writes tasks) for the whole process.
        self._lock_engine = Engine.load(ctx.project_dir, ctx.environment)
        self._thread = threading.Thread(target=self._run, name="faasops-api-writer", daemon=True)

    # ------------------------------------------------------------ public

    def start(self) -> None:
        if self.repo is not None:
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._lock_engine.close()

    @property
    def state(self) -> Any:
        return self._lock_engine.state

    def submit(self, write: Write) -> Write:
        if self.repo is None:
            write.refuse(409, self.no_repo)
            return write
        with self._cond:
            if self._stopping:
                raise WriteFailed(503, "the API is stopping")
            self._queue.append(write)
            self._cond.notify_all()
        return write

    def status(self) -> dict[str, Any]:
        """What ``GET /api/status`` answers: the git head, the last applied commit, the API
        commits after it (unapplied: a crash or a running write) and the last recovery."""
        if self.repo is None:
            return {"head": None, "applied": None, "queued_writes": 0, "unapplied_commits": [],
                    "recovery": self.recovery, "writes": self.no_repo}
        applied = self.applied_commit()
        pending = self.repo.targets_since(applied) if applied else []
        with self._cond:
            queued = len(self._queue)
        return {"head": self.repo.head(), "applied": applied, "queued_writes": queued,
                "unapplied_commits": [{"commit": sha, "targets": targets} for sha, targets in pending],
                "recovery": self.recovery}

    def desired_specs(self, functions: list[Function]) -> dict[str, dict[str, Any]]:
        """Each function's full desired spec (settings, source digest, toolchain) by address, as
        the state records it once applied. One call for many: a shared source is digested once."""
        return self._lock_engine.desired_specs(functions)

    def planned(self, target: str) -> dict[str, dict[str, Any]]:
        """What an apply of ``target`` would do now (live objects compared too), by address.
        Reads only: takes no lock."""
        with Engine.load(self.ctx.project_dir, self.ctx.environment) as engine:
            plan = engine.plan(PlanOptions(prune=True, selection=Selection((target,))))
        return {c.address: {"action": c.action.value, "reasons": list(c.reasons), "fields": [f.path for f in c.fields]}
                for c in plan.changes}

    def applied_commit(self) -> str | None:
        if self.repo is None:
            return None
        try:
            return self.marker.read_text().strip() or None
        except FileNotFoundError:
            return None

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        first = True
        while True:
            with self._cond:
                while not first and not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    self._fail_queued("the API stopped before this write was made")
                    return
            try:
                with self._lock_engine.locked("faasops api serve", LOCK_WAIT_S):
                    if first:
                        self._recover()
                        first = False
                    while True:
                        with self._cond:
                            batch, self._queue = self._queue, []
                        if not batch or self._stopping:
                            if batch:
                                self._queue = batch + self._queue
                            break
                        self._round(batch)
            except FaasopsError as exc:  # the lock could not be taken (CI applying for too long …)
                log.warning("write round failed: %s", exc)
                self._fail_queued(str(exc), status=_status_of(exc))
            except Exception:  # a bug: keep serving, answer the writes it caught
                log.exception("write round failed")
                self._fail_queued("internal error in the API's writer; see the server log", status=500)

    def _fail_queued(self, message: str, status: int = 503) -> None:
        with self._cond:
            batch, self._queue = self._queue, []
        for write in batch:
            write.refuse(status, message)

    # ------------------------------------------------------------ one round

    def _round(self, batch: list[Write]) -> None:
        committed: list[Write] = []
        for write in batch:
            if self._commit(write):
                committed.append(write)
        if not committed:
            return
        targets = sorted({t for w in committed for t in (w.change.targets if w.change else [])})
        result, error = self._apply(targets)
        for write in committed:
            self._finish(write, result, error)
        head = committed[-1].commit
        if head:
            self._mark_applied(head)

    def _commit(self, write: Write) -> bool:
        assert self.repo is not None
        rollback = Rollback()
        try:
            project = load_project(self.ctx.project_dir, self.ctx.environment)
            change = write.edit(project, rollback)
            self._check_clean(change)
            load_project(self.ctx.project_dir, self.ctx.environment)  # the whole project, as `faasops validate`
        except ManifestError as exc:
            rollback.restore()
            write.refuse(422, "the change makes the project invalid:\n" + "\n".join(str(p) for p in exc.problems))
            return False
        except (FaasopsError, OSError) as exc:
            rollback.restore()
            write.refuse(_status_of(exc) if isinstance(exc, FaasopsError) else 422, str(exc))
            return False
        except Exception:
            rollback.restore()
            raise
        try:
            sha = self.repo.commit(change.paths, change.message, write.author, change.targets)
        except FaasopsError as exc:
            rollback.restore()
            write.refuse(500, str(exc))
            return False
        rollback.discard()
        write.change, write.commit = change, sha
        if sha is None:  # nothing changed: nothing to commit or apply
            write.result = {"unchanged": True}
            write.committed.set()
            write.done.set()
            return False
        now = utcnow()
        write.task = Task(id=uuid.uuid4().hex, workspace=write.workspace, function=write.function, kind=TASK_KIND,
                          status=RUNNING, created_at=now, updated_at=now,
                          message=f"{change.message} (commit {sha[:12]}); applying", run_id=f"{RUN_ID}:{sha}")
        self.state.put_task(write.task)
        if self.ctx.push is not None:
            try:
                self.repo.push(*self.ctx.push)
            except FaasopsError as exc:
                write.result = {"push_error": str(exc)}
        write.committed.set()
        return True

    def _check_clean(self, change: Change) -> None:
        """Nothing else may be pending in the files this write commits: staged or modified
        by someone else, it would end up in the API's commit."""
        assert self.repo is not None
        staged = self.repo.staged(change.paths)
        if staged:
            raise Conflict(f"{', '.join(staged)}: has staged changes in the work tree; commit or unstage them first")

    def _apply(self, targets: list[str]) -> tuple[ApplyResult | None, str | None]:
        """Apply ``targets`` (plan + apply, prune within the targets). Returns the result, or
        the error that stopped it before any step."""
        try:
            with Engine.load(self.ctx.project_dir, self.ctx.environment) as engine:
                plan = engine.plan(PlanOptions(prune=True, selection=Selection(tuple(targets))))
                if not plan.has_changes:
                    return ApplyResult(run_id=""), None
                return engine.apply(plan, reporter=PlainReporter(_LogStream())), None
        except FaasopsError as exc:
            return None, str(exc)
        except OSError as exc:  # a provider that let a file error through
            log.exception("apply of %s failed", targets)
            return None, f"the apply failed: {type(exc).__name__}: {exc}"
        except Exception as exc:  # a bug in a provider: the commit stands, the task says so
            log.exception("apply of %s failed", targets)
            return None, f"internal error while applying: {type(exc).__name__}"

    def _finish(self, write: Write, result: ApplyResult | None, error: str | None) -> None:
        assert write.task is not None and write.change is not None
        targets = write.change.targets
        mine = lambda address: any(address == t or address.startswith(t + "/") for t in targets)  # noqa: E731
        failed = {a: m for a, m in (result.failed.items() if result else []) if mine(a)}
        unfinished = [a for a in (result.skipped + result.interrupted if result else []) if mine(a)]
        outcome: dict[str, Any] = {
            "commit": write.commit, "message": write.change.message, "targets": targets,
            "applied": sorted(a for a in (result.applied if result else []) if mine(a)),
            "deleted": sorted(a for a in (result.deleted if result else []) if mine(a)),
            **(write.result or {}),
        }
        if error is None and not failed and not unfinished:
            status, message = COMPLETED, json.dumps(outcome, sort_keys=True)
        else:
            status = FAILED
            lines = [f"commit {write.commit} is in git, but its apply failed:"]
            lines += [error] if error else []
            lines += [f"  {a}: {m}" for a, m in sorted(failed.items())]
            lines += [f"  not applied: {', '.join(sorted(unfinished))}"] if unfinished else []
            lines.append("run `faasops plan` to see what remains")
            message = "\n".join(lines)
            outcome["error"] = message
        write.result = outcome
        write.task = Task(**{**write.task.__dict__, "status": status, "updated_at": utcnow(), "message": message})
        self.state.put_task(write.task)
        write.done.set()

    def _mark_applied(self, commit: str) -> None:
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.marker.with_suffix(".tmp")
        temporary.write_text(commit + "\n")
        temporary.replace(self.marker)

    # ------------------------------------------------------------ recovery

    def _recover(self) -> None:
        """Apply what API commits made before a crash left unapplied (under the lock)."""
        assert self.repo is not None
        head = self.repo.head()
        applied = self.applied_commit()
        if applied is None or (head and not self.repo.is_ancestor(applied)):
            # First start (or history rewritten): nothing of ours is known to be pending.
            if head:
                self._mark_applied(head)
            self.recovery = {"status": "none", "commits": [], "targets": []}
            return
        pending = self.repo.targets_since(applied)
        if not pending:
            if head and head != applied:
                self._mark_applied(head)
            self.recovery = {"status": "none", "commits": [], "targets": []}
            return
        targets = sorted({t for _, ts in pending for t in ts})
        commits = [sha for sha, _ in pending]
        log.warning("applying %d commit(s) left unapplied by a previous run: %s", len(commits), ", ".join(targets))
        now = utcnow()
        task = Task(id=uuid.uuid4().hex, workspace=targets[0].split("/")[0], function=None, kind=RECOVERY_KIND,
                    status=RUNNING, created_at=now, updated_at=now,
                    message=f"applying {len(commits)} unapplied commit(s)", run_id=RUN_ID)
        self.state.put_task(task)
        self.recovery = {"status": "running", "commits": commits, "targets": targets, "task_id": task.id}
        result, error = self._apply(targets)
        ok = error is None and result is not None and result.ok
        if ok:
            message = json.dumps({"commits": commits, "targets": targets})
        else:
            failed = sorted(result.failed.items()) if result else []
            message = error or "; ".join(f"{a}: {m}" for a, m in failed) or "not every target was applied"
        self.state.put_task(Task(**{**task.__dict__, "status": COMPLETED if ok else FAILED,
                                    "updated_at": utcnow(), "message": message}))
        self._settle_interrupted_writes(commits, targets, ok, message)
        self.recovery = {"status": "completed" if ok else "failed", "commits": commits, "targets": targets,
                         "task_id": task.id, **({} if ok else {"error": message})}
        if head:
            self._mark_applied(head)

    def _settle_interrupted_writes(self, commits: list[str], targets: list[str], ok: bool, message: str) -> None:
        """The tasks of the writes whose apply the crash cut short (taking the lock marked them
        interrupted) say what the recovery did: their run id names their commit."""
        runs = {f"{RUN_ID}:{sha}": sha for sha in commits}
        for workspace in sorted({t.split("/")[0] for t in targets}):
            for found in self.state.list_tasks(workspace=workspace, limit=1000):
                if found.run_id in runs and found.kind == TASK_KIND:
                    text = (f"applied after a restart (commit {runs[found.run_id][:12]})" if ok
                            else f"commit {runs[found.run_id]} is in git, but its apply after a restart failed: {message}")
                    self.state.put_task(Task(**{**found.__dict__, "status": COMPLETED if ok else FAILED,
                                                "updated_at": utcnow(), "message": text}))


class _LogStream:
    """Apply's progress lines into the server log (a text stream for the reporter)."""

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                log.info("%s", line)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False
