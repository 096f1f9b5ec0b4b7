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
    """Where faasops records what it applied, and the task history.

    Every method may be called from the executor's worker threads at the same time (record and
    task writes of different functions run in parallel): a backend serialises what its store
    needs serialised. Several processes may use one store at once (two applies, ``faasops up``,
    the Platform API); the lock decides which of them writes records. Failures of the store are
    :class:`~faasops.errors.ProviderError`; lock refusals are :class:`~faasops.errors.LockError`.
    :mod:`faasops.conformance` holds the behavioural tests of this contract.
    """

    def read(self, workspaces: Iterable[str] | None = None) -> ActualState:
        """All records (or those of ``workspaces``), in as few reads as the store allows.

        Returns the records as last written by any client of the store (read-after-write: a
        record put by one client is seen by the next ``read`` of any other) and the current
        ``serial``. A store that was never written reads as an empty ``ActualState()`` with
        serial 0 and is not created by reading. Never writes. Thread-safe.

        A backend may also offer ``serial() -> int`` (:class:`SupportsSerial`)."""

    def put_workspace(self, record: WorkspaceRecord) -> None:
        """Insert or replace the record of workspace ``record.name``; grows the serial by at
        least one. While this client holds the lock, a backend that can fence writes refuses
        (``LockError``) once the lock was taken over. Thread-safe."""

    def delete_workspace(self, name: str) -> None:
        """Remove the workspace's record (its functions' records are deleted on their own
        first); grows the serial. Deleting an absent record is not an error. Thread-safe."""

    def put_function(self, record: FunctionRecord) -> None:
        """Insert or replace the record of ``record.address``. Called only after its deploy
        succeeded. Grows the serial; fenced like :meth:`put_workspace`. Thread-safe."""

    def delete_function(self, workspace: str, name: str) -> None:
        """Remove the function's record; grows the serial. Deleting an absent record is not an
        error. Thread-safe."""

    def put_task(self, task: Task) -> None:
        """Insert or update a task (tasks are keyed by ``id``; the writer always passes the whole
        task with its id, run and creation time unchanged). Tasks are history, not records: the
        serial does not change. Called from worker threads, several times per step.
        (:class:`SupportsTaskBatches` writes them in groups.)"""

    def list_tasks(
        self, workspace: str | None = None, task_id: str | None = None, limit: int = 50
    ) -> list[Task]:
        """At most ``limit`` tasks, newest first (by ``created_at``), of one workspace or all;
        ``task_id`` matches a whole id or a prefix of one. Never writes."""

    def acquire_lock(self, info: LockInfo, timeout_s: float) -> LockInfo:
        """Take the state lock for the run ``info`` describes, waiting up to ``timeout_s``
        seconds (0: one look), or raise :class:`faasops.errors.LockError` naming the holder
        (:func:`faasops.lock.locked_error`).

        Returns ``info`` with ``expires_at`` set to the end of the lease. The lock is exclusive
        across every client of the store; a held lock is taken over when it is stale
        (:func:`faasops.lock.is_stale`: its lease expired, or its holder ran on this host and
        its process is gone). While held, the backend renews the lease (a heartbeat every
        lease/3) until :meth:`release_lock` or :meth:`close`. Taking the lock marks every task
        still ``pending`` or ``running`` as failed with
        :data:`faasops.lock.INTERRUPTED_MESSAGE` (their run is gone)."""

    def release_lock(self, lock_id: str) -> None:
        """Stop renewing and free the lock if it still carries ``lock_id``; a lock that is gone
        or was taken over is left alone (no error)."""

    def force_unlock(self, lock_id: str) -> None:
        """Free the lock held by another run (``faasops force-unlock``). Raises ``LockError``
        when the state is not locked or the lock carries another id."""

    def close(self) -> None:
        """Stop renewing a held lock (without releasing it: a run that ends without releasing
        is stale once its lease expires) and free connections. Called once per command."""


@runtime_checkable
class SupportsSerial(Protocol):
    """A state backend capability: the serial without reading every record."""

    def serial(self) -> int:
        """``read().serial`` in one small read (apply checks a saved plan's freshness with it).
        Never writes; 0 for a store that was never written."""


@runtime_checkable
class SupportsTaskBatches(Protocol):
    """A state backend capability: tasks written in groups, and together with a record.

    A backend where each write is a round trip offers it; apply then writes a function's tasks in
    step groups instead of one write per task change (:class:`faasops.executor.TaskJournal`)."""

    def put_tasks(self, tasks: Iterable[Task]) -> None:
        """Insert or update several tasks in as few writes as the store allows (the newest version
        of each id wins). Called from worker threads. Raises ``ProviderError`` when some could not
        be written; the ones written stay."""

    def put_function(self, record: FunctionRecord, tasks: Iterable[Task] = ()) -> None:
        """:meth:`StateBackend.put_function`, writing ``tasks`` in the same transaction."""

    def delete_function(self, workspace: str, name: str, tasks: Iterable[Task] = ()) -> None:
        """:meth:`StateBackend.delete_function`, writing ``tasks`` in the same transaction."""


@runtime_checkable
class SupportsRecordedState(Protocol):
    """A source store, registry or deployer capability: skip requests the records answer."""

    def use_recorded(self, state: ActualState) -> None:
        """Called once before an apply's first step with the state its plan was read from (in
        the same process, same serial): e.g. a recorded artifact was pushed, so the registry need
        not be asked again. Must not write; the provider may keep ``state`` for the run."""


@runtime_checkable
class SupportsSnapshot(Protocol):
    """A state backend capability: a snapshot of the records that makes later reads cheaper."""

    def write_snapshot(self) -> bool:
        """Write a snapshot of the current records (called after an apply, with the lock held).
        Returns whether one was written. It only ever speeds reads up: a ``FaasopsError`` is
        ignored, and plans then read the records."""


@runtime_checkable
class SourceStore(Protocol):
    """Keeps validated source archives, content-addressed. Called from worker threads."""

    def upload(self, function: Function, snapshot: SourceSnapshot) -> str:
        """Store ``snapshot.archive`` under ``snapshot.digest`` and return its URI.

        Idempotent: an archive whose digest is already stored is not written again, and the same
        digest always gives the same URI (different digests, different URIs), whichever function
        uploads it. Errors: ``ProviderError``. Thread-safe (two functions may upload the same
        digest at once)."""


@runtime_checkable
class Builder(Protocol):
    """Turns a source snapshot into a Spin component. Called from worker threads."""

    #: Identifies the toolchain; part of the build key, so a toolchain change rebuilds.
    toolchain: str

    def build_key(self, function: Function, snapshot: SourceSnapshot) -> str:
        """The content hash (``sha256:…``) that decides whether a build can be reused: equal for
        equal inputs (snapshot digest, the function's build settings, :attr:`toolchain`). Pure,
        no I/O."""

    def build(self, function: Function, snapshot: SourceSnapshot) -> BuildResult:
        """Build, or reuse a cached build with the same key (``cached=True``). A build error in
        the user's code is a ``FaasopsError`` whose message says what to fix. Thread-safe."""


@runtime_checkable
class SupportsBuildCache(Protocol):
    """A builder capability: its builds, kept by key in the componentize-py cache layout
    (:mod:`faasops.builder_service.build_cache`), which the Builder service finds earlier
    builds in."""

    #: The cache's root directory.
    cache_dir: Path


@runtime_checkable
class Registry(Protocol):
    """Stores components as Spin OCI artifacts. Called from worker threads (see also
    :class:`SupportsRecordedState`)."""

    def push(self, function: Function, build: BuildResult, created: str) -> Artifact:
        """Push the component (skipping blobs and manifests the registry already has) and return
        the artifact: ``reference`` is ``repository@digest``, ``pushed`` False when the registry
        already had that digest.

        ``created`` pins the ``org.opencontainers.image.created`` annotation, so equal inputs
        give equal digests (pushing twice is idempotent); another component gives another
        digest. Errors: ``ProviderError`` (credentials never in the message). Thread-safe."""


@runtime_checkable
class Scaffolder(Protocol):
    """Renders the Kubernetes manifests of a function (SpinApp, HPA/ScaledObject …)."""

    def render(self, project: Project, function: Function, artifact: str) -> list[dict[str, Any]]:
        """Pure: the manifests for ``function`` running image ``artifact``, each with
        ``metadata.namespace`` set (the first one's namespace is where the function lives).
        A broken user template is a located ``FaasopsError``. Thread-safe.

        A scaffolder may also offer ``render_digest`` (:class:`SupportsRenderDigest`)."""


@runtime_checkable
class SupportsRenderDigest(Protocol):
    """A scaffolder capability: what a render would give, digested without rendering."""

    def render_digest(self, project: Project, function: Function, artifact: str) -> str:
        """A digest that changes whenever :meth:`Scaffolder.render` of the same arguments would.
        Plans use it to skip rendering for the drift check of functions whose live objects are
        exactly as their last deploy left them. Pure, thread-safe."""


@runtime_checkable
class Deployer(Protocol):
    """Makes rendered manifests live, and observes what is live.

    Every method may run in worker threads at the same time, for different functions. Cluster
    errors are ``ProviderError`` (a conflict with another field manager says how to resolve it).
    """

    def observe(self, project: Project, workspaces: Iterable[Workspace | str]) -> dict[str, LiveObject]:
        """What is live per function address (``workspace/function``), in batches (one list per
        namespace and kind). A workspace given by name lives in the namespace of that name.
        Functions with nothing live are absent; a workspace that does not exist is no error.
        Never writes."""

    def ensure_workspace(self, project: Project, workspace: Workspace) -> None:
        """Create or update the workspace's namespace (labels included). Idempotent."""

    def delete_workspace(self, project: Project, workspace: str, namespace: str) -> None:
        """Delete ``namespace`` with everything in it. Deleting a missing one is not an error."""

    def deploy(self, project: Project, function: Function, manifests: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Make ``manifests`` live (create or update; idempotent), and remove the function's
        objects that are no longer rendered (an autoscaler switched off). Afterwards
        :meth:`observe` shows the function with objects holding every field of ``manifests``
        (:func:`faasops.diff.manifest_drift` finds nothing).

        May return the objects as live right after (as :meth:`observe` would show them), which
        lets later plans skip re-rendering them for the drift check while they stay that way;
        ``None`` always works."""

    def undeploy(self, project: Project, workspace: str, namespace: str, name: str) -> None:
        """Remove the function's objects from ``namespace``; afterwards :meth:`observe` does not
        list it. Removing a function that is not live is not an error.

        A deployer may also offer ``deploy_note`` (:class:`SupportsDeployNote`)."""


@runtime_checkable
class SupportsDeployNote(Protocol):
    """A deployer capability: a note on what its last change did, for the step's task."""

    def deploy_note(self, address: str) -> str:
        """What the last change of workspace or function ``address`` did (the gitops deployer's
        commit), which the executor records as the step's task message; "" when nothing to say.
        Called right after that change, in the same worker thread."""


@runtime_checkable
class SupportsClose(Protocol):
    """A capability of any provider besides the state backend (which always has ``close``):
    connections or sessions to free when its user is done with it."""

    def close(self) -> None:
        """Free connections; the provider is not used afterwards. Idempotent."""


# --------------------------------------------------------------------------------------------
# Garbage collection (optional): what a source store, builder or registry keeps, and removing it
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredItem:
    """One thing a provider keeps on the project's behalf, as ``faasops gc`` reports it.

    ``kind`` says what it is (``image``, ``blob``, ``source``, ``build``, ``compiled``,
    ``repository`` …); ``name`` is how its store names it (a digest, an object key,
    ``repository@sha256:…``); ``size`` the bytes removing it frees (0 when nothing measurable
    goes with it, such as an index entry whose blobs are counted on their own)."""

    kind: str
    name: str
    size: int


@dataclass(frozen=True)
class Retained:
    """What garbage collection must keep, computed from the state and its task history.

    ``artifacts`` are the image references (``[host/]repository@sha256:…``) recorded functions
    run or may roll back to; compare them by repository and digest (hosts differ between an
    ECR endpoint and its ``registry_url``). ``sources`` are the source digests (``sha256:…``)
    of those artifacts. ``recorded`` holds every reference this project's history ever
    pushed, for registries that cannot list untagged images. With ``purge``, containers
    (repositories) that no retained artifact uses go too."""

    artifacts: frozenset[str] = frozenset()
    sources: frozenset[str] = frozenset()
    recorded: frozenset[str] = frozenset()
    purge: bool = False


@dataclass(frozen=True)
class Garbage:
    """What one store holds for the project that :class:`Retained` does not name.

    ``store`` names the store for the report (``S3 bucket 'b' sources/shop/``); ``notes`` say
    what it left alone and why (a cache shared with other projects …)."""

    store: str
    items: tuple[StoredItem, ...] = ()
    notes: tuple[str, ...] = ()


@runtime_checkable
class StoredArtifacts(Protocol):
    """Optional capability of a source store, builder or registry: ``faasops gc`` and ``faasops
    destroy --purge`` collect what it keeps for the project.

    A provider only ever considers what is this project's for sure: objects under the
    project's own prefix, repositories named for the project, caches inside the project's
    ``.faasops`` directory. What is shared with other projects (a content-addressed cache
    outside the project, another project's prefix) is never listed, only mentioned in
    ``notes``. gc calls both methods holding the state lock, so no apply of this project runs
    meanwhile; anything written outside that lock must be left alone."""

    def garbage(self, retained: Retained) -> Garbage:
        """What the store holds for the project and ``retained`` does not name. Reads only."""

    def collect(self, garbage: Garbage) -> Garbage:
        """Remove ``garbage`` (from :meth:`garbage` of this provider); return what was removed
        (an item already gone is left out). An item that turned out to be in use again is kept."""


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
              step_s: float) -> list[MetricSeries]:
        """The function's series between ``since`` and ``until`` (seconds since the epoch), one
        point per ``step_s``; series the source does not have are absent. Never writes; errors
        are ``ProviderError`` (an unreachable service named with its URL, no credentials)."""


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

    def invoke(self, workspace: str, function: str, request: InvokeRequest) -> InvokeResponse:
        """Send ``request`` to the deployed function and return its answer, whatever its status
        (a 500 is a response, not an error). A function that failed sets ``error``; a function
        that cannot be reached is a ``ProviderError`` saying why."""
