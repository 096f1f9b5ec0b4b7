"""The embedded local backend: everything under ``.faasops/`` in the project, no services.

- state: SQLite (``.faasops/state.db``) — workspaces, functions, tasks, the lock;
- sources: content-addressed archives (``.faasops/sources/sha256/<hex>.tar.gz``);
- registry: an OCI image layout with Spin's media types (``.faasops/oci``);
- deployer: rendered manifests per namespace (``.faasops/deploy/<namespace>/<fn>.yaml``),
  which ``faasops up`` serves with the local runtime, and, as the kubernetes deployer creates
  them on a cluster, the SpinAppExecutor each SpinApp names
  (``.faasops/deploy/<namespace>/_executors/<name>.yaml``; options ``create_executors``,
  ``runtime_class``, ``spot_runtime_class`` as for the kubernetes deployer). Files starting
  with ``_`` are the namespace's, not a function's. With the local registry, a deploy first
  compiles the SpinApp's component into the local runtime's cache (option ``precompile``,
  default true), so a running ``faasops up`` swaps the new version in without compiling it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import threading
import time
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

import yaml

from faasops.errors import LockError, ProviderError
from faasops.garbage_files import file_size, is_temporary, owned_by, remove_files, shared_note
from faasops.hookspecs import hookimpl
from faasops.lock import DEFAULT_LEASE_S, INTERRUPTED_MESSAGE, is_stale, iso, lease_until, locked_error, utc_now
from faasops.model import Function, Project, ProviderConfig, Workspace
from faasops.names import repository_name
from faasops.progress import report_activity
from faasops.oci import OciLayout, function_artifact, mounted_files
from faasops.options import seconds_option
from faasops.plugins.spinkube import DEFAULT_RUNTIME_CLASS, DEFAULT_SPOT_RUNTIME_CLASS, EXECUTOR_OPTIONS, ExecutorTemplate
from faasops.providers import (
    ActualState,
    Artifact,
    BuildResult,
    FunctionRecord,
    Garbage,
    LiveObject,
    LockInfo,
    Retained,
    SourceSnapshot,
    StoredItem,
    Task,
    WorkspaceRecord,
)
from faasops.template_sandbox import read_rendered

LOCK_LEASE_S = DEFAULT_LEASE_S
RUNTIME_CACHE_ENV = "FAASOPS_RUNTIME_CACHE"  # read by faasops.serving, which compiles into it
# Temporary names of atomic writes: ".index.json.<pid>.<tid>.tmp", "<hex>.tar.tmp<pid>.<tid>" …
_TEMP_NAME = re.compile(r"\.tmp(\d+(\.\d+)?)?$|\.tmp\d")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS workspaces (name TEXT PRIMARY KEY, spec TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS functions (
    workspace TEXT NOT NULL, name TEXT NOT NULL, spec TEXT NOT NULL,
    artifact TEXT NOT NULL, applied_at TEXT NOT NULL, deployed TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (workspace, name));
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY, run_id TEXT NOT NULL, workspace TEXT NOT NULL, function TEXT,
    kind TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, message TEXT NOT NULL DEFAULT '');
CREATE INDEX IF NOT EXISTS tasks_by_workspace ON tasks (workspace, created_at);
CREATE TABLE IF NOT EXISTS locks (
    name TEXT PRIMARY KEY, id TEXT NOT NULL, holder TEXT NOT NULL, host TEXT NOT NULL,
    pid INTEGER NOT NULL, command TEXT NOT NULL, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, ci_url TEXT NOT NULL DEFAULT '');
"""





class LocalState:
    """SQLite state. One connection shared by the apply threads behind a mutex; WAL mode and a
    busy timeout let separate processes (a second apply, ``faasops up``) read alongside."""

    def __init__(self, path: Path, lease_s: float = LOCK_LEASE_S, scratch_dirs: tuple[Path, ...] = ()):
        self.path = path
        self.lease_s = lease_s
        self.scratch_dirs = scratch_dirs  # where other local providers write atomically
        self._conn: sqlite3.Connection | None = None
        self._mutex = threading.RLock()
        self._heartbeat: threading.Thread | None = None
        self._held: str | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        # Opened on first use, so reading a project that was never applied creates nothing.
        with self._mutex:
            if self._conn is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
                _migrate(conn)
                self._conn = conn
            return self._conn

    def _exists(self) -> bool:
        return self._conn is not None or self.path.exists()

    # ------------------------------------------------------------ records

    def _write(self, sql: str, args: tuple[Any, ...], bump: bool = True) -> None:
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(sql, args)
                if bump:
                    self._db.execute(
                        "INSERT INTO meta (key, value) VALUES ('serial', '1') "
                        "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def read(self, workspaces: Iterable[str] | None = None) -> ActualState:
        if not self._exists():
            return ActualState()
        with self._mutex:
            rows_ws = self._db.execute("SELECT name, spec FROM workspaces").fetchall()
            rows_fn = self._db.execute(
                "SELECT workspace, name, spec, artifact, applied_at, deployed FROM functions"
            ).fetchall()
            serial = self._db.execute("SELECT value FROM meta WHERE key = 'serial'").fetchone()
        wanted = set(workspaces) if workspaces is not None else None
        ws = {
            name: WorkspaceRecord(name, json.loads(spec))
            for name, spec in rows_ws
            if wanted is None or name in wanted
        }
        fns = {
            f"{w}/{n}": FunctionRecord(w, n, json.loads(spec), artifact, applied_at, deployed)
            for w, n, spec, artifact, applied_at, deployed in rows_fn
            if wanted is None or w in wanted
        }
        return ActualState(ws, fns, int(serial[0]) if serial else 0)

    def serial(self) -> int:
        if not self._exists():
            return 0
        with self._mutex:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'serial'").fetchone()
        return int(row[0]) if row else 0

    def put_workspace(self, record: WorkspaceRecord) -> None:
        self._write(
            "INSERT INTO workspaces (name, spec) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET spec = excluded.spec",
            (record.name, json.dumps(record.spec, sort_keys=True)),
        )

    def delete_workspace(self, name: str) -> None:
        self._write("DELETE FROM workspaces WHERE name = ?", (name,))

    def put_function(self, record: FunctionRecord) -> None:
        self._write(
            "INSERT INTO functions (workspace, name, spec, artifact, applied_at, deployed) VALUES (?,?,?,?,?,?) "
            "ON CONFLICT(workspace, name) DO UPDATE SET spec = excluded.spec, "
            "artifact = excluded.artifact, applied_at = excluded.applied_at, deployed = excluded.deployed",
            (record.workspace, record.name, json.dumps(record.spec, sort_keys=True), record.artifact,
             record.applied_at, record.deployed),
        )

    def delete_function(self, workspace: str, name: str) -> None:
        self._write("DELETE FROM functions WHERE workspace = ? AND name = ?", (workspace, name))

    # ------------------------------------------------------------ tasks

    def put_task(self, task: Task) -> None:
        self._write(
            "INSERT INTO tasks (id, run_id, workspace, function, kind, status, created_at, updated_at, message) "
            "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET status = excluded.status, "
            "updated_at = excluded.updated_at, message = excluded.message",
            (task.id, task.run_id, task.workspace, task.function, task.kind, task.status,
             task.created_at, task.updated_at, task.message),
            bump=False,
        )

    def list_tasks(self, workspace: str | None = None, task_id: str | None = None, limit: int = 50) -> list[Task]:
        sql = "SELECT id, workspace, function, kind, status, created_at, updated_at, message, run_id FROM tasks"
        clauses, args = [], []
        if workspace:
            clauses.append("workspace = ?")
            args.append(workspace)
        if task_id:
            clauses.append("(id = ? OR id LIKE ?)")
            args += [task_id, task_id + "%"]
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        args.append(limit)
        if not self._exists():
            return []
        with self._mutex:
            rows = self._db.execute(sql, args).fetchall()
        return [Task(*row) for row in rows]

    # ------------------------------------------------------------ lock

    def _lock_row(self) -> LockInfo | None:
        row = self._db.execute(
            "SELECT id, holder, host, pid, command, created_at, expires_at, ci_url FROM locks WHERE name = 'state'"
        ).fetchone()
        return LockInfo(*row) if row else None


    def current_lock(self) -> LockInfo | None:
        if not self._exists():
            return None
        with self._mutex:
            return self._lock_row()

    def acquire_lock(self, info: LockInfo, timeout_s: float) -> LockInfo:
        deadline = time.monotonic() + timeout_s
        while True:
            with self._mutex:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    held = self._lock_row()
                    if held is None or is_stale(held):
                        lock = LockInfo(**{**info.__dict__, "expires_at": lease_until(self.lease_s)})
                        self._db.execute(
                            "INSERT OR REPLACE INTO locks (name, id, holder, host, pid, command, created_at, expires_at, ci_url) "
                            "VALUES ('state',?,?,?,?,?,?,?,?)",
                            (lock.id, lock.holder, lock.host, lock.pid, lock.command, lock.created_at, lock.expires_at, lock.ci_url),
                        )
                        # Whatever was still running belonged to a run that is gone, and so
                        # do half-written files: holding the lock, nobody else writes them.
                        self._remove_leftover_temp_files()
                        self._db.execute(
                            "UPDATE tasks SET status = 'failed', updated_at = ?, message = ? "
                            "WHERE status IN ('running', 'pending')",
                            (iso(utc_now()), INTERRUPTED_MESSAGE),
                        )
                        self._db.execute("COMMIT")
                        self._start_heartbeat(lock.id)
                        return lock
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
            if time.monotonic() >= deadline:
                raise locked_error(held)
            time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))

    def _remove_leftover_temp_files(self) -> None:
        """Atomic writes go through ``*.tmp*`` files then a rename; a run killed in between
        leaves the temporary file behind. Only called with the lock held."""
        for directory in self.scratch_dirs:
            if directory.is_dir():
                for path in directory.rglob("*.tmp*"):
                    if path.is_file() and _TEMP_NAME.search(path.name):
                        path.unlink(missing_ok=True)

    def _start_heartbeat(self, lock_id: str) -> None:
        self._held = lock_id

        def beat() -> None:
            while self._held == lock_id:
                time.sleep(self.lease_s / 3)
                if self._held != lock_id:
                    return
                self._write(
                    "UPDATE locks SET expires_at = ? WHERE name = 'state' AND id = ?",
                    (lease_until(self.lease_s), lock_id),
                    bump=False,
                )

        self._heartbeat = threading.Thread(target=beat, name="faasops-lock-heartbeat", daemon=True)
        self._heartbeat.start()

    def release_lock(self, lock_id: str) -> None:
        self._held = None
        self._write("DELETE FROM locks WHERE name = 'state' AND id = ?", (lock_id,), bump=False)

    def force_unlock(self, lock_id: str) -> None:
        with self._mutex:
            held = self._lock_row()
        if held is None:
            raise LockError("the state is not locked")
        if held.id != lock_id:
            raise LockError(f"lock id {lock_id!r} does not match the current lock {held.id!r} (held by {held.holder} on {held.host})")
        self._write("DELETE FROM locks WHERE name = 'state' AND id = ?", (lock_id,), bump=False)

    def close(self) -> None:
        self._held = None
        with self._mutex:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class LocalSourceStore:
    """Source archives on disk, addressed by their content digest."""

    def __init__(self, root: Path, project: Project | None = None):
        self.root = root
        self.project = project  # whose .faasops decides whether gc may clean ``root``

    def upload(self, function: Function, snapshot: SourceSnapshot) -> str:
        path = self.root / "sha256" / f"{snapshot.digest.removeprefix('sha256:')}.tar.gz"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}.{threading.get_ident()}")
            tmp.write_bytes(snapshot.archive)
            os.replace(tmp, path)
        return path.as_uri()

    def garbage(self, retained: Retained) -> Garbage:
        """Archives of sources no retained artifact was built from (:class:`StoredArtifacts`)."""
        store = f"local sources {self.root}"
        if self.project is None or not owned_by(self.project, self.root):
            return Garbage(store, notes=(shared_note(self.root, "the source store"),))
        directory = self.root / "sha256"
        paths = sorted(directory.glob("*.tar.gz")) if directory.is_dir() else []
        return Garbage(store, tuple(
            StoredItem("source", path.name, file_size(path)) for path in paths
            if not is_temporary(path) and f"sha256:{path.name.removesuffix('.tar.gz')}" not in retained.sources))

    def collect(self, garbage: Garbage) -> Garbage:
        removed = [remove_files(item, [self.root / "sha256" / item.name]) for item in garbage.items]
        return Garbage(garbage.store, tuple(item for item in removed if item is not None), garbage.notes)


class LocalRegistry:
    """Spin OCI artifacts in an OCI image layout on disk (``.faasops/oci``)."""

    def __init__(self, root: Path, project: Project):
        self.root = root
        self.project = project

    @cached_property
    def layout(self) -> OciLayout:
        return OciLayout(self.root)  # creates the layout: only on the first push

    def push(self, function: Function, build: BuildResult, created: str) -> Artifact:
        artifact = function_artifact(
            function, build.wasm_path, build.wasm_digest, created, {"dev.faasops.function": function.address}
        )
        repository = repository_name(self.project.name, function.workspace, function.name)
        present = self.layout.has_blob(artifact.digest)
        digest = self.layout.put_artifact(artifact, f"{repository}:{build.build_key.removeprefix('sha256:')[:16]}")
        return Artifact(reference=f"local/{repository}@{digest}", digest=digest, pushed=not present)


    # -------------------------------------------------------------- garbage collection

    @property
    def runtime_cache(self) -> Path:
        """Where the local runtime keeps components compiled from this registry's artifacts
        (as :mod:`faasops.serving` picks it)."""
        return Path(os.environ.get(RUNTIME_CACHE_ENV) or self.project.state_dir / "runtime-cache")

    def garbage(self, retained: Retained) -> Garbage:
        """Index entries of this project's images that are not retained, the blobs no remaining
        manifest needs, and compiled components of no remaining artifact (:class:`StoredArtifacts`)."""
        store = f"local registry {self.root}"
        if not owned_by(self.project, self.root):
            return Garbage(store, notes=(shared_note(self.root, "the OCI layout"),))
        if not (self.root / "index.json").is_file():
            return Garbage(store)
        layout = self.layout
        keep = {reference.rpartition("@")[2] for reference in retained.artifacts}
        own = repository_name(self.project.name, "", "").removesuffix("/")  # "<project>/": this project's repositories
        entries = layout.manifest_entries()
        drop = [(ref, digest) for ref, digest in entries if ref.startswith(own) and digest not in keep]
        remaining = {digest for ref, digest in entries if (ref, digest) not in drop}
        # A retained artifact whose tag moved on to a newer push has no index entry but stays.
        needed = layout.referenced_blobs(remaining | keep)
        items = [StoredItem("image", f"local/{ref}@{digest}", 0) for ref, digest in drop]
        items += [StoredItem("blob", digest, size) for digest, size in sorted(layout.stored_blobs().items())
                  if digest not in needed]
        notes: list[str] = []
        cache = self.runtime_cache
        if not owned_by(self.project, cache):
            notes.append(shared_note(cache, "the runtime cache"))
        elif cache.is_dir():
            wasm = {digest.removeprefix("sha256:") for digest in needed}
            items += [StoredItem("compiled", path.name, file_size(path)) for path in sorted(cache.glob("*.cwasm"))
                      if path.name.split("-", 1)[0] not in wasm]
        return Garbage(store, tuple(items), tuple(notes))

    def collect(self, garbage: Garbage) -> Garbage:
        layout = self.layout
        images = {(item.name.removeprefix("local/").rpartition("@")[0], item.name.rpartition("@")[2]): item
                  for item in garbage.items if item.kind == "image"}
        removed = [images[entry] for entry in layout.remove_entries(images)]
        with layout.index_locked():
            # Looked at again under the index lock: a blob a manifest listed since needs stays.
            needed = layout.referenced_blobs({digest for _, digest in layout.manifest_entries()})
            removed += [remove_files(item, [layout.blob_path(item.name)]) for item in garbage.items
                        if item.kind == "blob" and item.name not in needed]
        removed += [remove_files(item, [self.runtime_cache / item.name]) for item in garbage.items
                    if item.kind == "compiled"]
        return Garbage(garbage.store, tuple(item for item in removed if item is not None), garbage.notes)

    def _digest(self, reference: str) -> str:
        _, _, digest = reference.partition("@")
        if not digest:
            raise ProviderError(f"image reference {reference!r} has no digest")
        return digest

    def component_path(self, reference: str) -> Path:
        """The component (wasm layer) of a pushed artifact ``…@sha256:…``, for the local runtime."""
        try:
            return self.layout.wasm_path_for(self._digest(reference))
        except (KeyError, FileNotFoundError) as exc:
            raise ProviderError(f"image {reference} is not in the local registry {self.root}; run `faasops apply`") from exc

    def locked_component(self, reference: str) -> dict[str, Any]:
        """The component entry of the artifact's Spin locked app: its ``env`` and its
        ``metadata`` (time limit, allowed outbound hosts), for the local runtime."""
        return dict(self.layout.locked_app_for(self._digest(reference))["components"][0])

    def component_files(self, reference: str) -> dict[str, bytes | Path]:
        """The component's ``files`` (guest path → inline content or stored data layer), for the
        local runtime to mount at ``/``."""
        return mounted_files(self.locked_component(reference), self.layout.blob_path)


class LocalDeployer:
    """"Deploys" by writing the rendered manifests per namespace; ``faasops up`` serves them.

    Given the local ``registry``, a deploy compiles the SpinApp's component into the local
    runtime's cache before it writes the manifest: the compile (seconds for a componentize-py
    component) is part of apply, and ``faasops up`` only loads the compiled artifact.
    """

    def __init__(self, root: Path, options: dict[str, Any] | None = None,
                 registry: LocalRegistry | None = None):
        self.root = root
        options = dict(options or {})
        create = options.get("create_executors", True)
        if not isinstance(create, bool):
            raise ProviderError(f"providers.deployer.create_executors must be true or false, not {create!r}")
        precompile = options.get("precompile", True)
        if not isinstance(precompile, bool):
            raise ProviderError(f"providers.deployer.precompile must be true or false, not {precompile!r}")
        self.registry = registry if precompile else None
        self.executors = ExecutorTemplate(
            str(options.get("runtime_class") or DEFAULT_RUNTIME_CLASS),
            str(options.get("spot_runtime_class") or DEFAULT_SPOT_RUNTIME_CLASS),
            options,
        ) if create else None

    def _ns_dir(self, namespace: str) -> Path:
        return self.root / namespace

    def observe(self, project: Project, workspaces: Iterable[Workspace | str]) -> dict[str, LiveObject]:
        live: dict[str, LiveObject] = {}
        for ws in workspaces:
            name = ws if isinstance(ws, str) else ws.name
            namespace = name if isinstance(ws, str) else (ws.namespace or ws.name)
            directory = self._ns_dir(namespace)
            if not directory.is_dir():
                continue
            for path in sorted(directory.glob("*.yaml")):
                if path.name.startswith("_"):  # the namespace's own objects, not a function
                    continue
                # Rendered manifests, read with the limits templates' output is read with.
                docs = tuple(d for d in read_rendered(path.read_text(), str(path)) if d)
                live[f"{name}/{path.stem}"] = LiveObject(f"{name}/{path.stem}", docs)
        return live

    def ensure_workspace(self, project: Project, workspace: Workspace) -> None:
        namespace = workspace.namespace or workspace.name
        directory = self._ns_dir(namespace)
        directory.mkdir(parents=True, exist_ok=True)
        manifest = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"app.kubernetes.io/managed-by": "faasops", "workspace_id": workspace.name, **workspace.labels}},
        }
        _atomic_write(directory / "_namespace.yaml", yaml.safe_dump(manifest, sort_keys=True))

    def delete_workspace(self, project: Project, workspace: str, namespace: str) -> None:
        shutil.rmtree(self._ns_dir(namespace), ignore_errors=True)

    def deploy(self, project: Project, function: Function, manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Write the manifests; returns them as :meth:`observe` will read them back."""
        namespace = manifests[0]["metadata"]["namespace"]
        spinapp = next((m for m in manifests if m.get("kind") == "SpinApp"), None)
        if spinapp is not None:
            self._precompile(project, function, str(spinapp["spec"]["image"]))
        if spinapp is not None and self.executors is not None:
            executor = self.executors.render(project, function, spinapp)
            if executor is not None:
                path = self._ns_dir(namespace) / "_executors" / f"{executor['metadata']['name']}.yaml"
                text = yaml.safe_dump(executor, sort_keys=True)
                # Functions of the namespace share it: written when it is missing or changed.
                if not path.is_file() or path.read_text() != text:
                    _atomic_write(path, text)
        text = yaml.safe_dump_all(manifests, sort_keys=True)
        _atomic_write(self._ns_dir(namespace) / f"{function.name}.yaml", text)
        return [d for d in read_rendered(text, f"{function.address} (deployed manifests)") if d]

    def undeploy(self, project: Project, workspace: str, namespace: str, name: str) -> None:
        (self._ns_dir(namespace) / f"{name}.yaml").unlink(missing_ok=True)

    def _precompile(self, project: Project, function: Function, image: str) -> None:
        """Compile ``image``'s component into the runtime cache (a no-op when it is there)."""
        if self.registry is None:
            return
        try:
            wasm_path = self.registry.component_path(image)
        except ProviderError:
            return  # an image from elsewhere (the Builder service deploys any image): nothing to serve here
        # Imported here: wasmtime loads only for a deploy that compiles.
        from faasops.runtime.component import ComponentLoadError, default_cache_dir, precompile

        report_activity(function.address, "compiling for the local runtime")
        try:
            precompile(wasm_path, default_cache_dir(project.state_dir))
        except ComponentLoadError as exc:
            raise ProviderError(f"{function.address}: the local runtime cannot run {image}: {exc}") from None


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a state database written by an earlier faasops up to the current schema."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(functions)")}
    if "deployed" not in columns:  # written before deploys were fingerprinted: plans render to check drift
        conn.execute("ALTER TABLE functions ADD COLUMN deployed TEXT NOT NULL DEFAULT ''")


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# -------------------------------------------------------------------- hook implementations


def _path(default: str) -> dict[str, Any]:
    return {"type": "string", "minLength": 1, "description": f"where (default .faasops/{default})"}


@hookimpl
def faasops_provider_options() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("state", "local", {"type": "object", "properties": {
            "path": _path("state.db"),
            "lock_lease_seconds": seconds_option("how long a run's lock lasts without renewal", LOCK_LEASE_S),
        }}),
        ("sources", "local", {"type": "object", "properties": {"path": _path("sources")}}),
        ("registry", "local", {"type": "object", "properties": {"path": _path("oci")}}),
        ("deployer", "local", {"type": "object", "properties": {
            "path": _path("deploy"),
            "precompile": {"type": "boolean", "default": True,
                           "description": "compile each deployed component into the local runtime's cache, so "
                                          "`faasops up` swaps it in at once (false: `up` compiles after the swap)"},
            **EXECUTOR_OPTIONS,
        }}),
    ]


@hookimpl
def faasops_provider_types() -> list[tuple[str, str, str]]:
    return [
        ("state", "local", "SQLite state in .faasops/state.db"),
        ("sources", "local", "content-addressed source archives in .faasops/sources"),
        ("registry", "local", "Spin OCI artifacts in an OCI image layout (.faasops/oci)"),
        ("deployer", "local", "manifests in .faasops/deploy, served by `faasops up`"),
    ]


def _dir(config: ProviderConfig, project: Project, default: str) -> Path:
    return Path(config.options.get("path") or project.state_dir / default)


@hookimpl
def faasops_state_backend(config: ProviderConfig, project: Project) -> LocalState | None:
    if config.type != "local":
        return None
    scratch = tuple(project.state_dir / name for name in ("oci", "sources", "deploy"))
    return LocalState(_dir(config, project, "state.db"), float(config.options.get("lock_lease_seconds", LOCK_LEASE_S)),
                      scratch)


@hookimpl
def faasops_source_store(config: ProviderConfig, project: Project) -> LocalSourceStore | None:
    return LocalSourceStore(_dir(config, project, "sources"), project) if config.type == "local" else None


@hookimpl
def faasops_registry(config: ProviderConfig, project: Project) -> LocalRegistry | None:
    return LocalRegistry(_dir(config, project, "oci"), project) if config.type == "local" else None


@hookimpl
def faasops_deployer(config: ProviderConfig, project: Project) -> LocalDeployer | None:
    if config.type != "local":
        return None
    registry = project.providers.get("registry")
    local_registry = (LocalRegistry(_dir(registry, project, "oci"), project)
                      if registry is not None and registry.type == "local" else None)
    return LocalDeployer(_dir(config, project, "deploy"), config.options, local_registry)
