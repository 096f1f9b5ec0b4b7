"""A component's ``files`` mounted read-only at ``/`` in the local runtime (real component)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest

from faasops.file_mounts import resolve_file_mounts
from faasops.model import FileMount
from faasops.runtime import HttpRequest, LoadedApp

AppFactory = Callable[..., LoadedApp]
pytestmark = pytest.mark.slow
SOURCE = Path(__file__).parent / "handlers" / "sqlite_files"
MOUNTS = (FileMount("static"), FileMount("assets", "/data"))


@pytest.fixture(scope="module")
def files_app(app: AppFactory) -> LoadedApp:
    return app("sqlite_files", files=resolve_file_mounts(SOURCE, MOUNTS))


def get(app: LoadedApp, path: str):
    return app.handle(HttpRequest("GET", path))


@pytest.mark.parametrize("guest, host", [
    ("/static/index.html", "static/index.html"),
    ("/static/css/site.css", "static/css/site.css"),
    ("/data/big.bin", "assets/big.bin"),
    ("static/index.html", "static/index.html"),  # the working directory is /
])
def test_mounted_files_are_readable_per_request_at_their_destination(files_app: LoadedApp, guest: str, host: str) -> None:
    for _ in range(2):  # every request gets a fresh instance and sees the same files
        response = get(files_app, f"/file?path={guest}")
        assert (response.status, response.body) == (200, (SOURCE / host).read_bytes()), response.error


@pytest.mark.parametrize("guest, error", [
    ("/secret.txt", b"FileNotFoundError"),
    ("/app.py", b"FileNotFoundError"),
    ("/static/missing.txt", b"FileNotFoundError"),
    ("/../etc/passwd", b"PermissionError"),  # leaving the mount: not-permitted, as wasmtime answers
])
def test_only_declared_files_are_there(files_app: LoadedApp, guest: str, error: bytes) -> None:
    response = get(files_app, f"/file?path={guest}")

    assert (response.status, response.body) == (404, error)


def test_directories_list_their_mounted_entries(files_app: LoadedApp) -> None:
    assert json.loads(get(files_app, "/list?path=/").body) == ["data", "static"]
    assert json.loads(get(files_app, "/list?path=/static").body) == ["css", "index.html"]


def test_the_mount_is_read_only(files_app: LoadedApp) -> None:
    response = get(files_app, "/write")

    assert response.status == 403
    assert response.body in (b"OSError", b"PermissionError")


def test_without_files_there_is_no_filesystem(app: AppFactory) -> None:
    response = get(app("sqlite_files"), "/file?path=/static/index.html")

    assert response.status == 404
