"""In-memory providers: every slot of the apply pipeline without a service, a build or a disk
write (except the fake component the builder leaves in a directory you give it).

They follow the contracts of :mod:`faasops.providers` (the conformance suites run against them
in faasops' own test suite), so the core — diff, plan, the executor, the engine — can be tested
in-process, in milliseconds. Each records the calls it served (``calls``) and can be told to fail
(``fail_on``), which is what the core tests assert on:

    providers = memory_providers(tmp_path / "builds")
    providers.deployer.fail_on.add(("deploy", "demo/hello"))
    result = Executor(project, providers, PlainReporter()).run(plan, {})

A :class:`MemoryState` is one *client* of a :class:`MemoryStore`: two clients of one store
behave as two processes sharing a state backend (the lock is exclusive between them).
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from faasops.errors import LockError, ProviderError
from faasops.hookspecs import hookimpl
from faasops.lock import DEFAULT_LEASE_S, INTERRUPTED_MESSAGE, is_stale, iso, lease_until, locked_error, utc_now
from faasops.model import Function, Project, ProviderConfig, Workspace
from faasops.providers import (
    ActualState,
    Artifact,
    BuildResult,
    FunctionRecord,
    LiveObject,
    LockInfo,
    SourceSnapshot,
    Task,
    WorkspaceRecord,
)

#: The provider type the in-memory providers answer to (every slot of ``providers:``).
MEMORY_TYPE = "memory"
#: The start of every fake component: the WebAssembly magic and version, then the source digest.
WASM_HEADER = b"\0asm\x01\0\0\0"


class InjectedFailure(ProviderError):
    """What a fake provider raises for a call listed in its ``fail_on``."""


class _Recorder:
    """Calls served, and calls to fail: ``fail_on`` holds ``(method, address)`` pairs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_on: set[tuple[str, str]] = set()
        self._calls_lock = threading.Lock()

    def _call(self, method: str, address: str) -> None:
        with self._calls_lock:
            self.calls.append((method, address))
        if (method, address) in self.fail_on:
            raise InjectedFailure(f"{address}: {method} failed (injected by the test)")

    def called(self, method: str) -> list[str]:
        """The addresses ``method`` was called for, in order."""
        with self._calls_lock:
            return [address for m, address in self.calls if m == method]


# -------------------------------------------------------------------------------------- state


@dataclass
class MemoryStore:
    """What a state backend's service holds: records, tasks, the serial and the lock."""

    workspaces: dict[str, WorkspaceRecord] = field(default_factory=dict)
    functions: dict[str, FunctionRecord] = field(default_factory=dict)
    tasks: dict[str, tuple[int, Task]] = field(default_factory=dict)  # id → (insertion order, task)
    serial: int = 0
    lock: LockInfo | None = None
    lock_client: MemoryState | None = None  # the client holding it, while it renews the lease
    mutex: threading.RLock = field(default_factory=threading.RLock)


class MemoryState(_Recorder):
    """A :class:`~faasops.providers.StateBackend` client of a :class:`MemoryStore`.

    The lease of a held lock is renewed for as long as the client that took it holds it and is
    open, as a heartbeat would renew it; :meth:`close` stops renewing without releasing (a
    crashed run). Also offers ``serial()``. ``fail_on`` takes ``("put_function", address)``,
    ``("put_workspace", name)``, ``("put_task", address)`` …
    """

    def __init__(self, store: MemoryStore | None = None, lease_s: float = DEFAULT_LEASE_S):
        super().__init__()
        self.store = store if store is not None else MemoryStore()
        self.lease_s = lease_s
        self._held: str | None = None

    def client(self) -> MemoryState:
        """Another client of the same store (another process, as far as the lock goes)."""
        return MemoryState(self.store, self.lease_s)

    # ------------------------------------------------------------ records

    def read(self, workspaces: Iterable[str] | None = None) -> ActualState:
        wanted = set(workspaces) if workspaces is not None else None
        with self.store.mutex:
            self._call("read", "")
            return ActualState(
                {n: r for n, r in self.store.workspaces.items() if wanted is None or n in wanted},
                {a: r for a, r in self.store.functions.items() if wanted is None or r.workspace in wanted},
                self.store.serial,
            )

    def serial(self) -> int:
        with self.store.mutex:
            return self.store.serial

    def _record(self, method: str, address: str) -> None:
        """The checks every record write makes (with the store's mutex held): the injected
        failure, and the fence — a client whose lock was taken over must not write."""
        self._call(method, address)
        if self._held is not None and (self.store.lock is None or self.store.lock.id != self._held):
            raise LockError(
                f"the state lock {self._held} is no longer held by this run, so {address} "
                "was not recorded; run `faasops plan` again"
            )
        self.store.serial += 1

    def put_workspace(self, record: WorkspaceRecord) -> None:
        with self.store.mutex:
            self._record("put_workspace", record.name)
            self.store.workspaces[record.name] = copy.deepcopy(record)

    def delete_workspace(self, name: str) -> None:
        with self.store.mutex:
            self._record("delete_workspace", name)
            self.store.workspaces.pop(name, None)

    def put_function(self, record: FunctionRecord) -> None:
        with self.store.mutex:
            self._record("put_function", record.address)
            self.store.functions[record.address] = copy.deepcopy(record)

    def delete_function(self, workspace: str, name: str) -> None:
        with self.store.mutex:
            self._record("delete_function", f"{workspace}/{name}")
            self.store.functions.pop(f"{workspace}/{name}", None)

    # ------------------------------------------------------------ tasks

    def put_task(self, task: Task) -> None:
        address = task.workspace + (f"/{task.function}" if task.function else "")
        with self.store.mutex:
            self._call("put_task", address)
            order = self.store.tasks.get(task.id, (len(self.store.tasks), task))[0]
            self.store.tasks[task.id] = (order, task)

    def list_tasks(self, workspace: str | None = None, task_id: str | None = None, limit: int = 50) -> list[Task]:
        with self.store.mutex:
            found = [
                (t.created_at, order, t)
                for order, t in self.store.tasks.values()
                if (workspace is None or t.workspace == workspace) and (task_id is None or t.id.startswith(task_id))
            ]
        return [t for _, _, t in sorted(found, key=lambda e: (e[0], e[1]), reverse=True)[:limit]]

    # ------------------------------------------------------------ lock

    def current_lock(self) -> LockInfo | None:
        with self.store.mutex:
            self._renew()
            return self.store.lock

    def _renew(self) -> None:
        holder = self.store.lock_client
        if self.store.lock is not None and holder is not None and holder._held == self.store.lock.id:
            self.store.lock = replace(self.store.lock, expires_at=lease_until(holder.lease_s))

    def acquire_lock(self, info: LockInfo, timeout_s: float) -> LockInfo:
        deadline = time.monotonic() + timeout_s
        while True:
            with self.store.mutex:
                self._call("acquire_lock", info.id)
                self._renew()
                held = self.store.lock
                if held is None or is_stale(held):
                    lock = replace(info, expires_at=lease_until(self.lease_s))
                    self.store.lock, self.store.lock_client, self._held = lock, self, lock.id
                    for order, task in list(self.store.tasks.values()):
                        if task.status in ("pending", "running"):
                            self.store.tasks[task.id] = (
                                order,
                                replace(task, status="failed", updated_at=iso(utc_now()), message=INTERRUPTED_MESSAGE),
                            )
                    return lock
            if time.monotonic() >= deadline:
                raise locked_error(held)
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))

    def release_lock(self, lock_id: str) -> None:
        with self.store.mutex:
            self._call("release_lock", lock_id)
            if self._held == lock_id:
                self._held = None
            if self.store.lock is not None and self.store.lock.id == lock_id:
                self.store.lock, self.store.lock_client = None, None

    def force_unlock(self, lock_id: str) -> None:
        with self.store.mutex:
            held = self.store.lock
            if held is None:
                raise LockError("the state is not locked")
            if held.id != lock_id:
                raise LockError(
                    f"lock id {lock_id!r} does not match the current lock {held.id!r} "
                    f"(held by {held.holder} on {held.host})"
                )
            self.store.lock, self.store.lock_client = None, None

    def close(self) -> None:
        self._held = None  # stop renewing; the lock stays until its lease expires


# -------------------------------------------------------------------------------------- sources


class MemorySourceStore(_Recorder):
    """A :class:`~faasops.providers.SourceStore` keeping archives in a dict by digest.
    ``writes`` counts the archives actually stored."""

    def __init__(self) -> None:
        super().__init__()
        self.archives: dict[str, bytes] = {}
        self.writes = 0
        self._lock = threading.Lock()

    def upload(self, function: Function, snapshot: SourceSnapshot) -> str:
        self._call("upload", function.address)
        with self._lock:
            if snapshot.digest not in self.archives:
                self.archives[snapshot.digest] = snapshot.archive
                self.writes += 1
        return f"memory://sources/{snapshot.digest.replace(':', '/')}.tar.gz"

    def fetch(self, uri: str) -> bytes:
        """The archive stored under ``uri`` (what the conformance suite reads back)."""
        digest = uri.removeprefix("memory://sources/").removesuffix(".tar.gz").replace("/", ":", 1)
        return self.archives[digest]


# -------------------------------------------------------------------------------------- builder


class FakeBuilder(_Recorder):
    """A :class:`~faasops.providers.Builder` that "builds" a component holding the source
    digest, in ``root``; the second build of a key is ``cached``."""

    def __init__(self, root: Path, toolchain: str = "fake-toolchain 1"):
        super().__init__()
        self.root = root
        self.toolchain = toolchain
        self._lock = threading.Lock()

    def build_key(self, function: Function, snapshot: SourceSnapshot) -> str:
        payload = json.dumps([self.toolchain, snapshot.digest, function.handler, function.dependencies])
        return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()

    def build(self, function: Function, snapshot: SourceSnapshot) -> BuildResult:
        self._call("build", function.address)
        key = self.build_key(function, snapshot)
        path = self.root / f"{key.removeprefix('sha256:')}.wasm"
        wasm = WASM_HEADER + snapshot.digest.encode()
        with self._lock:
            cached = path.is_file()
            if not cached:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(wasm)
        return BuildResult(key, path, "sha256:" + hashlib.sha256(wasm).hexdigest(), cached)


# -------------------------------------------------------------------------------------- registry


class MemoryRegistry(_Recorder):
    """A :class:`~faasops.providers.Registry` whose artifacts are digests of what a push
    names (component, creation time, function)."""

    def __init__(self, project_name: str = "conformance"):
        super().__init__()
        self.project_name = project_name
        self.artifacts: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def push(self, function: Function, build: BuildResult, created: str) -> Artifact:
        self._call("push", function.address)
        manifest = {
            "component": build.wasm_digest,
            "created": created,
            "function": function.address,
            "env": dict(sorted(function.env.items())),
        }
        digest = "sha256:" + hashlib.sha256(json.dumps(manifest, sort_keys=True).encode()).hexdigest()
        with self._lock:
            pushed = digest not in self.artifacts
            self.artifacts[digest] = manifest
        reference = f"memory/{self.project_name}/{function.workspace}/{function.name}@{digest}"
        return Artifact(reference, digest, pushed)


# -------------------------------------------------------------------------------------- scaffolder


class FakeScaffolder(_Recorder):
    """A :class:`~faasops.providers.Scaffolder` rendering one small SpinApp-like object per
    function; offers ``render_digest``."""

    def render(self, project: Project, function: Function, artifact: str) -> list[dict[str, Any]]:
        self._call("render", function.address)
        return render_spinapp(project, function, artifact)

    def render_digest(self, project: Project, function: Function, artifact: str) -> str:
        text = json.dumps(render_spinapp(project, function, artifact), sort_keys=True)
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def render_spinapp(project: Project, function: Function, artifact: str) -> list[dict[str, Any]]:
    """The fake scaffolder's manifests: what a deployer needs to tell functions apart."""
    workspace = project.workspace(function.workspace)
    namespace = (workspace.namespace if workspace else "") or function.workspace
    return [
        {
            "apiVersion": "core.spinkube.dev/v1alpha1",
            "kind": "SpinApp",
            "metadata": {
                "name": function.name,
                "namespace": namespace,
                "labels": {
                    "app.kubernetes.io/managed-by": "faasops",
                    "function_id": f"{function.workspace}.{function.name}",
                    **function.labels,
                },
            },
            "spec": {
                "image": artifact,
                "replicas": function.replicas,
                "executor": function.executor,
                "variables": [{"name": k, "value": v} for k, v in sorted(function.env.items())],
            },
        }
    ]


# -------------------------------------------------------------------------------------- deployer


class MemoryDeployer(_Recorder):
    """A :class:`~faasops.providers.Deployer` over a dict that plays the cluster:
    ``namespaces[namespace][function name] = (workspace, manifests)``. Edit ``namespaces`` to
    make drift; ``fail_on`` takes ``("deploy", address)``, ``("undeploy", address)``,
    ``("ensure_workspace", name)``, ``("delete_workspace", name)``."""

    def __init__(self) -> None:
        super().__init__()
        self.namespaces: dict[str, dict[str, tuple[str, tuple[dict[str, Any], ...]]]] = {}
        self._lock = threading.Lock()

    def observe(self, project: Project, workspaces: Iterable[Workspace | str]) -> dict[str, LiveObject]:
        live: dict[str, LiveObject] = {}
        with self._lock:
            for ws in workspaces:
                name = ws if isinstance(ws, str) else ws.name
                namespace = name if isinstance(ws, str) else (ws.namespace or ws.name)
                for fn, (workspace, manifests) in sorted(self.namespaces.get(namespace, {}).items()):
                    if workspace == name:
                        live[f"{name}/{fn}"] = LiveObject(f"{name}/{fn}", copy.deepcopy(manifests))
        return live

    def ensure_workspace(self, project: Project, workspace: Workspace) -> None:
        self._call("ensure_workspace", workspace.name)
        with self._lock:
            self.namespaces.setdefault(workspace.namespace or workspace.name, {})

    def delete_workspace(self, project: Project, workspace: str, namespace: str) -> None:
        self._call("delete_workspace", workspace)
        with self._lock:
            self.namespaces.pop(namespace, None)

    def deploy(self, project: Project, function: Function, manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self._call("deploy", function.address)
        namespace = manifests[0]["metadata"]["namespace"]
        with self._lock:
            if namespace not in self.namespaces:
                raise ProviderError(f"{function.address}: namespace {namespace} does not exist")
            self.namespaces[namespace][function.name] = (function.workspace, tuple(copy.deepcopy(manifests)))
        return copy.deepcopy(manifests)

    def undeploy(self, project: Project, workspace: str, namespace: str, name: str) -> None:
        self._call("undeploy", f"{workspace}/{name}")
        with self._lock:
            self.namespaces.get(namespace, {}).pop(name, None)

    def live_functions(self) -> list[str]:
        """Every function address that is live, sorted."""
        with self._lock:
            return sorted(f"{ws}/{fn}" for functions in self.namespaces.values() for fn, (ws, _) in functions.items())


# -------------------------------------------------------------------------------------- wiring


def memory_providers(build_dir: Path, state: MemoryState | None = None) -> Any:
    """A :class:`faasops.executor.ProviderSet` of fresh in-memory providers; the builder writes
    its fake components under ``build_dir``."""
    from faasops.executor import ProviderSet  # the executor imports the providers, not this kit

    return ProviderSet(
        state=state or MemoryState(),
        sources=MemorySourceStore(),
        builder=FakeBuilder(build_dir),
        registry=MemoryRegistry(),
        scaffolder=FakeScaffolder(),
        deployer=MemoryDeployer(),
    )


class MemoryPlugin:
    """A plugin serving type ``memory`` in every apply slot with the given providers, so an
    :class:`faasops.engine.Engine` runs on them: ``Engine(project, memory_plugin_manager(p))``."""

    def __init__(self, providers: Any):
        self.providers = providers

    @hookimpl
    def faasops_provider_types(self) -> list[tuple[str, str, str]]:
        slots = ("state", "sources", "builder", "registry", "scaffolder", "deployer")
        return [(slot, MEMORY_TYPE, "in memory (faasops.conformance.fakes)") for slot in slots]

    def _serve(self, config: ProviderConfig, slot: str) -> Any:
        return getattr(self.providers, slot) if config.type == MEMORY_TYPE else None

    @hookimpl
    def faasops_state_backend(self, config: ProviderConfig, project: Project) -> Any:
        return self._serve(config, "state")

    @hookimpl
    def faasops_source_store(self, config: ProviderConfig, project: Project) -> Any:
        return self._serve(config, "sources")

    @hookimpl
    def faasops_builder(self, config: ProviderConfig, project: Project) -> Any:
        return self._serve(config, "builder")

    @hookimpl
    def faasops_registry(self, config: ProviderConfig, project: Project) -> Any:
        return self._serve(config, "registry")

    @hookimpl
    def faasops_scaffolder(self, config: ProviderConfig, project: Project) -> Any:
        return self._serve(config, "scaffolder")

    @hookimpl
    def faasops_deployer(self, config: ProviderConfig, project: Project) -> Any:
        return self._serve(config, "deployer")


def memory_plugin_manager(providers: Any, *plugins: Any) -> Any:
    """A plugin manager with only the hook specifications, a :class:`MemoryPlugin` of
    ``providers`` and ``plugins`` (no entry points: nothing installed takes part)."""
    import pluggy

    from faasops import hookspecs

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(MemoryPlugin(providers))
    for plugin in plugins:
        pm.register(plugin)
    pm.check_pending()
    return pm
