"""What the observe and builder API tests share besides api-core's fixtures (conftest.py,
api_support.py): project settings committed the way an operator would, seeded invocation logs,
and URLs where nothing listens."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from api_support import ADMIN_TOKEN, ApiServer, git, make_git_project, start_server
from faasops.invocation_log import InvocationLog
from faasops.runtime.messages import InvocationRecord


def set_providers(project: Path, providers: dict[str, Any]) -> None:
    """Set ``providers`` in the project's faas.yaml and commit it (the API serves git)."""
    manifest = project / "faas.yaml"
    data = yaml.safe_load(manifest.read_text())
    data.setdefault("providers", {}).update(providers)
    manifest.write_text(yaml.safe_dump(data, sort_keys=False))
    git(project, "commit", "-q", "-am", "providers for the test")


def seed_invocations(project: Path, count: int, workspace: str = "demo", function: str = "hello") -> None:
    """``count`` invocations in the local log, one second apart, as `faasops up` records them."""
    log = InvocationLog(project / ".faasops" / "invocations.db")
    start = time.time() - count
    for i in range(count):
        log.record(InvocationRecord(time=start + i, workspace=workspace, function=function, method="GET",
                                    path=f"/call/{i}", status=200, duration_s=0.01, cpu_s=0.005,
                                    stdout=f"call {i}\n", stderr="", error=None))
    log.close()


def closed_port_url() -> str:
    """An http URL where nothing listens (a port bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def shared_server(root: Path) -> Iterator[tuple[ApiServer, Path]]:
    """For a module-scoped fixture: `faasops api serve` on examples/hello under ``root`` with the
    admin token and an (empty) tokens file tests add to; stopped when the generator ends."""
    tokens = root / "api-tokens"
    tokens.touch()
    server = start_server(make_git_project(root), ("--tokens", str(tokens)), {"FAASOPS_API_TOKEN": ADMIN_TOKEN},
                          root / "api-server.log")
    try:
        yield server, tokens
    finally:
        server.stop()
