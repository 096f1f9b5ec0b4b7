"""Fixtures of the Platform API tests (helpers in :mod:`api_support`):

- ``api_project``: a copy of ``examples/hello`` in its own git repository (one commit);
- ``api_server``: ``faasops api serve`` on it (subprocess) with ``FAASOPS_API_TOKEN`` = ``ADMIN_TOKEN``;
- ``token_server``: the API with a tokens file (see ``SCOPED``) and no environment token;
- ``start_api``: a factory, ``start_api(project, *extra_args, env={...}, environment=None) -> ApiServer``, for other
  variants (``--push``, a restart after a crash …). Every server started is stopped in teardown.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Callable

import pytest

from api_support import ADMIN_TOKEN, SCOPED, ApiServer, make_git_project, start_server
from cli_support import run_faasops


@pytest.fixture
def api_project(tmp_path: Path) -> Path:
    return make_git_project(tmp_path)


@pytest.fixture
def start_api(tmp_path: Path) -> Iterator[Callable[..., ApiServer]]:
    started: list[ApiServer] = []

    def start(project: Path, *args: str, env: dict[str, str | None] | None = None,
              environment: str | None = None) -> ApiServer:
        server = start_server(project, args, {"FAASOPS_API_TOKEN": ADMIN_TOKEN, **(env or {})},
                              tmp_path / f"api-server-{len(started)}.log", environment)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def shared_api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """One API for a module's tests that change nothing (bad input, reads, refusals)."""
    root = tmp_path_factory.mktemp("shared-api")
    server = start_server(make_git_project(root), (), {"FAASOPS_API_TOKEN": ADMIN_TOKEN}, root / "api-server.log")
    yield server
    server.stop()


@pytest.fixture
def api_server(api_project: Path, start_api: Callable[..., ApiServer]) -> ApiServer:
    return start_api(api_project)


@pytest.fixture
def tokens(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A tokens file made with `faasops api token create` and the tokens it printed, by name."""
    path = tmp_path / "secrets" / "api-tokens"
    printed = {}
    for name, scopes in SCOPED.items():
        result = run_faasops("api", "token", "create", name, *[a for s in scopes for a in ("--scope", s)],
                             "--tokens", str(path))
        assert result.code == 0, result.output
        printed[name] = result.out.strip()
    return path, printed


@pytest.fixture
def token_server(api_project: Path, start_api: Callable[..., ApiServer],
                 tokens: tuple[Path, dict[str, str]]) -> tuple[ApiServer, dict[str, str]]:
    """The API with the tokens file only (no FAASOPS_API_TOKEN), and the tokens by name."""
    path, printed = tokens
    return start_api(api_project, "--tokens", str(path), env={"FAASOPS_API_TOKEN": None}), printed


