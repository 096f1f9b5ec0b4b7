"""Small projects, functions and values for provider tests, made without a ``faas.yaml``.

Each function gets a real source directory (a Spin Python handler that answers with its name),
so snapshots, digests and uploads see real files.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from faasops.model import Function, Location, Project, ProviderConfig, Workspace
from faasops.providers import BuildResult, FunctionRecord, LockInfo, Task, WorkspaceRecord

HANDLER = """\
from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        return Response(200, {{"content-type": "text/plain"}}, b"{text}")
"""


def sample_function(root: Path, workspace: str, name: str, *, text: str | None = None, **fields: Any) -> Function:
    """Function ``workspace/name`` with its source in ``root/functions/<workspace>-<name>``
    (written when missing; ``text`` is what its handler answers). ``fields`` set any other
    :class:`~faasops.model.Function` field (``env``, ``protect``, ``replicas`` …)."""
    source = f"functions/{workspace}-{name}"
    source_dir = root / source
    handler = HANDLER.format(text=text if text is not None else f"hello from {workspace}/{name}")
    if not (source_dir / "app.py").is_file() or text is not None:
        source_dir.mkdir(parents=True, exist_ok=True)
        (source_dir / "app.py").write_text(handler)
    return Function(
        workspace=workspace,
        name=name,
        source_dir=source_dir,
        source=source,
        location=Location(str(root / "faas.yaml")),
        **fields,
    )


def sample_workspace(name: str, functions: Iterable[Function] = (), **fields: Any) -> Workspace:
    """Workspace ``name`` holding ``functions``; ``fields`` set ``namespace``, ``protect`` …"""
    return Workspace(name=name, location=Location("faas.yaml"), functions=tuple(functions), **fields)


def sample_project(
    root: Path,
    *workspaces: Workspace,
    name: str = "conformance",
    provider_type: str = "memory",
    providers: dict[str, ProviderConfig] | None = None,
) -> Project:
    """Project ``name`` at ``root`` (created) with ``workspaces`` — by default workspace ``demo``
    with function ``hello`` — and every apply slot set to ``provider_type``."""
    root.mkdir(parents=True, exist_ok=True)
    if not workspaces:
        workspaces = (sample_workspace("demo", [sample_function(root, "demo", "hello")]),)
    slots = ("state", "sources", "builder", "registry", "scaffolder", "deployer")
    configs = {slot: ProviderConfig(slot, provider_type) for slot in slots} | (providers or {})
    return Project(name=name, root=root, providers=configs, workspaces=tuple(workspaces))


def two_function_project(tmp_path: Path) -> Project:
    """A project in ``tmp_path/conformance_project`` with one workspace ``demo`` holding the
    functions ``hello`` and ``bye`` (the source store and registry contracts' default)."""
    root = tmp_path / "conformance_project"
    root.mkdir()
    functions = [sample_function(root, "demo", "hello"), sample_function(root, "demo", "bye")]
    return sample_project(root, sample_workspace("demo", functions))


def sample_build(directory: Path, function: Function, content: bytes = b"") -> BuildResult:
    """A fake component for ``function`` (the WebAssembly header, then ``content``) written to
    ``directory``: enough for a registry, which stores a component without running it."""
    wasm = b"\0asm\x01\0\0\0" + (content or function.address.encode())
    digest = "sha256:" + hashlib.sha256(wasm).hexdigest()
    path = directory / f"{digest.removeprefix('sha256:')}.wasm"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wasm)
    return BuildResult(build_key=digest, wasm_path=path, wasm_digest=digest, cached=False)


def now() -> str:
    """The timestamp format of records, tasks and locks."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def workspace_record(name: str = "demo", **spec: Any) -> WorkspaceRecord:
    return WorkspaceRecord(name, {"namespace": name, "labels": {}, "protect": False, **spec})


def function_record(workspace: str = "demo", name: str = "hello", artifact: str = "", **spec: Any) -> FunctionRecord:
    digest = "sha256:" + hashlib.sha256(f"{workspace}/{name}".encode()).hexdigest()
    return FunctionRecord(
        workspace,
        name,
        {"source": f"functions/{name}", "env": {}, **spec},
        artifact or f"registry.example/{workspace}/{name}@{digest}",
        now(),
    )


def task(
    task_id: str,
    workspace: str = "demo",
    function: str | None = "hello",
    kind: str = "deploy",
    status: str = "running",
    created_at: str | None = None,
    run_id: str = "run-1",
    message: str = "",
) -> Task:
    created = created_at or now()
    return Task(task_id, workspace, function, kind, status, created, created, message, run_id)


def lock_info(
    lock_id: str,
    *,
    holder: str = "conformance",
    host: str | None = None,
    pid: int | None = None,
    command: str = "faasops apply",
) -> LockInfo:
    """A lock request. By default from this host and process; pass another ``host`` for a
    holder only an expired lease frees, a ``pid`` that is gone for a dead local holder."""
    return LockInfo(
        lock_id, holder, host or socket.gethostname(), os.getpid() if pid is None else pid, command, now(), ""
    )
