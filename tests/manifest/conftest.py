"""Helpers for the manifest tests: writing small projects and proving nothing was written."""

from __future__ import annotations

import hashlib
import os
import textwrap
from pathlib import Path
from typing import Callable

import pytest

# The corpus directories are projects, not test packages.
collect_ignore = ["broken", "fixtures"]

HANDLER = '''\
from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        return Response(200, {"content-type": "text/plain"}, b"hello")
'''

ProjectMaker = Callable[[dict[str, str | bytes]], Path]


@pytest.fixture
def make_project(tmp_path: Path) -> ProjectMaker:
    """Write ``{relative path: text}`` under a fresh project root (text is dedented; a value of
    ``HANDLER`` writes a valid handler) and return the root."""

    def make(files: dict[str, str | bytes]) -> Path:
        root = tmp_path / "project"
        for relative, content in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content), encoding="utf-8")
        return root

    return make


@pytest.fixture
def snapshot() -> Callable[[Path], dict[str, str]]:
    """Takes pictures of a directory tree; see :func:`take_snapshot`."""
    return take_snapshot


def take_snapshot(root: Path) -> dict[str, str]:
    """Every entry below ``root`` (symlinks not followed) with its content hash or link target."""
    entries: dict[str, str] = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(directory, name)
            key = path.relative_to(root).as_posix()
            if path.is_symlink():
                entries[key] = "link:" + os.readlink(path)
            elif path.is_dir():
                entries[key] = "dir"
            else:
                entries[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


@pytest.fixture
def handler_source() -> str:
    """The text of a valid Spin handler module."""
    return HANDLER
