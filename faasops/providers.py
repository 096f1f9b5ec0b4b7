"""The provider contracts: what a plugin's state backend, source store, builder, registry,
scaffolder and deployer objects must offer, and the plain values they exchange.

Plugins create providers through the factory hooks in :mod:`faasops.hookspecs`. Only the apply
executor calls methods that change anything; plan calls ``read``/``observe`` methods only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, runtime_checkable

from faasops.model import Function, Project, Workspace

TASK_STATUSES = ("pending", "running", "completed", "failed")


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkspaceRecord:
    """A workspace as the state backend last recorded it (after a successful apply)."""

    name: str
    spec: dict[str, Any]


@dataclass(frozen=True)
class FunctionRecord:
    """A function as the state backend last recorded it — only after its deploy succeeded.

    ``spec`` is the applied :meth:`Function.spec` plus ``source_hash`` and ``build_key``;
    ``artifact`` the pushed image reference (``repo@sha256:…``).
    """

    workspace: str
    name: str
    spec: dict[str, Any]
    artifact: str
    applied_at: str
    # What was live right after the deploy, with what was rendered for it (see
    # faasops.diff.deployed_fingerprint); "" when the providers could not say.
    deployed: str = ""

    @property
    def address(self) -> str:
        return f"{self.workspace}/{self.name}"


@dataclass(frozen=True)
class ActualState:
    """Everything the state backend knows, read in one batch per workspace (or fewer).

    ``serial`` grows with every recorded change; saved plans use it to detect staleness.
    """

    workspaces: dict[str, WorkspaceRecord] = field(default_factory=dict)
    functions: dict[str, FunctionRecord] = field(default_factory=dict)  # by address
    serial: int = 0


@dataclass(frozen=True)
class Task:
    """One step of apply (upload, build, push, scaffold, deploy, record, delete …)."""

    id: str
    workspace: str
    function: str | None
    kind: str
    status: str  # one of TASK_STATUSES
    created_at: str
    updated_at: str
    message: str = ""
    run_id: str = ""


@dataclass(frozen=True)
class SourceSnapshot:
    """A function's source directory frozen into a deterministic archive.

    ``digest`` (``sha256:…``) covers file names, executable bits and contents — never mtimes — so
    the same tree always gives the same digest.
    """

    digest: str
    archive: bytes  # tar.gz, deterministic
    files: tuple[str, ...]
    size: int


@dataclass(frozen=True)
class BuildResult:
    """A built component. ``cached`` is True when the builder reused an earlier build."""

    build_key: str
    wasm_path: Path
    wasm_digest: str
    cached: bool


@dataclass(frozen=True)
class Artifact:
    """A pushed OCI artifact: ``reference`` is ``repository@sha256:…`` (what deploy uses)."""

    reference: str
    digest: str
    pushed: bool  # False when the registry already had this digest


@dataclass(frozen=True)
class LiveObject:
    """What the deployer observes for one function: the manifests it finds live (or none)."""

    address: str
    manifests: tuple[dict[str, Any], ...]
    # faasops.diff.live_fingerprint(manifests); deployers compute it while the state is read.
    fingerprint: str = ""

    def __post_init__(self) -> None:
        if not self.fingerprint:
            from faasops.diff import live_fingerprint

            object.__setattr__(self, "fingerprint", live_fingerprint(self.manifests))


@dataclass(frozen=True)
class LockInfo:
    """Who holds the state lock."""

    id: str
    holder: str
    host: str
    pid: int
    command: str
    created_at: str
    expires_at: str
    ci_url: str = ""


# --------------------------------------------------------------------------------------------
# Provider protocols
# --------------------------------------------------------------------------------------------


@runtime_checkable
class StateBackend(Protocol):
    """Where faasops records what it applied, and the task history."""

    def read(self, workspaces: Iterable[str] | None = None) -> ActualState:
        """All records (or those of ``workspaces``), in as few reads as the store allows.

        A backend may also offer ``serial() -> int``: ``read().serial`` in one small read
        (apply checks a plan's freshness with it)."""

    def put_workspace(self, record: WorkspaceRecord) -> None: ...

    def delete_workspace(self, name: str) -> None: ...

    def put_function(self, record: FunctionRecord) -> None:
        """Record a function as applied. Called only after its deploy succeeded."""

    def delete_function(self, workspace: str, name: str) -> None: ...

    def put_task(self, task: Task) -> None:
        """Insert or update a task (tasks are keyed by ``id``).

        A backend where each write is a round trip may also offer ``put_tasks(tasks)`` (several
        tasks in as few writes as it can) and accept ``tasks=`` in ``put_function`` and
        ``delete_function`` (tasks written together with the record). Apply then writes a
        function's tasks in step groups instead of one write per task change (see
        :class:`faasops.executor.TaskJournal`)."""

    def list_tasks(
        self, workspace: str | None = None, task_id: str | None = None, limit: int = 50
    ) -> list[Task]:
        """Newest first."""

    def acquire_lock(self, info: LockInfo, timeout_s: float) -> LockInfo:
        """Take the state lock or raise :class:`faasops.errors.LockError` naming the holder."""

    def release_lock(self, lock_id: str) -> None: ...

    def force_unlock(self, lock_id: str) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class SourceStore(Protocol):
    """Keeps validated source archives, content-addressed."""

    def upload(self, function: Function, snapshot: SourceSnapshot) -> str:
        """Store the archive (idempotent: an existing digest is not written again); return its URI."""


@runtime_checkable
class Builder(Protocol):
    """Turns a source snapshot into a Spin component."""

    #: Identifies the toolchain; part of the build key, so a toolchain change rebuilds.
    toolchain: str

    def build_key(self, function: Function, snapshot: SourceSnapshot) -> str:
        """The content hash that decides whether a build can be reused (pure, no I/O)."""

    def build(self, function: Function, snapshot: SourceSnapshot) -> BuildResult:
        """Build, or reuse a cached build with the same key."""


@runtime_checkable
class Registry(Protocol):
    """Stores components as Spin OCI artifacts.

    A registry (or a source store, or a deployer) may also offer ``use_recorded(state:
    ActualState)``: apply hands it the state its plan was read from (in the same process, same
    serial) before the first step, so it can skip requests the records already answer (a
    recorded artifact was pushed)."""

    def push(self, function: Function, build: BuildResult, created: str) -> Artifact:
        """Push (skipping blobs and manifests the registry already has). ``created`` pins the
        ``org.opencontainers.image.created`` annotation so equal sources give equal digests."""


@runtime_checkable
class Scaffolder(Protocol):
    """Renders the Kubernetes manifests of a function (SpinApp, HPA/ScaledObject …)."""

    def render(self, project: Project, function: Function, artifact: str) -> list[dict[str, Any]]:
        """Pure: the manifests for ``function`` running image ``artifact``.

        A scaffolder may also offer ``render_digest(project, function, artifact) -> str``: a
        digest that changes whenever the rendered manifests would, cheaper than rendering them.
        Plans use it to skip rendering for the drift check of functions whose live objects are
        exactly as their last deploy left them."""


@runtime_checkable
class Deployer(Protocol):
    """Makes rendered manifests live, and observes what is live."""

    def observe(self, project: Project, workspaces: Iterable[Workspace | str]) -> dict[str, LiveObject]:
        """What is live per function address, in batches (one list per namespace and kind)."""

    def ensure_workspace(self, project: Project, workspace: Workspace) -> None: ...

    def delete_workspace(self, project: Project, workspace: str, namespace: str) -> None: ...

    def deploy(self, project: Project, function: Function, manifests: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Make ``manifests`` live. May return the objects as live right after (as
        :meth:`observe` would show them), which lets later plans skip re-rendering them for the
        drift check while they stay that way; ``None`` always works."""

    def undeploy(self, project: Project, workspace: str, namespace: str, name: str) -> None:
        """Remove the function's objects. A deployer may also offer ``deploy_note(address) ->
        str``: what its last change of a workspace or function did (the gitops deployer's
        commit), which the executor records as the step's task message."""


# --------------------------------------------------------------------------------------------
# Day-2 operations: logs, metrics, invoke
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogRecord:
    """One log entry of a function (an invocation, or one line its pods printed).

    ``time`` is seconds since the epoch; ``message`` may span several lines (a traceback);
    ``status``/``duration_s`` are set for invocation records; ``id`` identifies the record
    within its source so ``follow`` never repeats one.
    """

    time: float
    workspace: str
    function: str
    message: str
    status: int | None = None
    duration_s: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    id: str = ""

    @property
    def function_id(self) -> str:
        """The ``function_id`` label faasops puts on SpinApps and pods."""
        return f"{self.workspace}.{self.function}"


@runtime_checkable
class LogSource(Protocol):
    """Where ``faasops logs`` reads (the local invocation log, DynamoDB, Loki …)."""

    def read(self, workspace: str, function: str | None, *, limit: int, since: float | None = None,
             grep: str | None = None) -> list[LogRecord]:
        """The newest ``limit`` records (newest first) of a workspace or one function, optionally
        only those at or after ``since`` and whose message contains ``grep``."""

    def follow(self, workspace: str, function: str | None, *, since: float | None = None,
               grep: str | None = None, poll_s: float = 1.0) -> Iterator[LogRecord]:
        """Records as they arrive, oldest first, each exactly once, until the caller stops."""


@dataclass(frozen=True)
class MetricSeries:
    """One metric of a function over time: ``points`` are ``(time, value)``."""

    name: str  # cpu_cores, memory_bytes, replicas, requests, errors, latency_p99_ms …
    unit: str
    points: tuple[tuple[float, float], ...]


@runtime_checkable
class MetricsSource(Protocol):
    """Where ``faasops metrics`` reads (the local invocation log, Prometheus …)."""

    def query(self, workspace: str, function: str, *, since: float, until: float,
              step_s: float) -> list[MetricSeries]: ...


@dataclass(frozen=True)
class InvokeRequest:
    """A request for an invoker. Header values are wire text: each character is one byte (the
    latin-1 reading of the bytes sent, so ``héllo`` from ``-H`` arrives as its UTF-8 bytes read as
    latin-1). Pass them to ``http.client``/urllib3 unchanged; never encode them as UTF-8 again."""

    method: str
    path: str  # below the function's route, with the query: "/items?id=7"
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


@dataclass(frozen=True)
class InvokeResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    error: str | None = None  # set when the function failed (a trap or a guest traceback)


@runtime_checkable
class Invoker(Protocol):
    """How ``faasops invoke`` reaches a deployed function."""

    def invoke(self, workspace: str, function: str, request: InvokeRequest) -> InvokeResponse: ...
