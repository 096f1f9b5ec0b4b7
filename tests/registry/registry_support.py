"""Helpers for the registry provider tests (a module name no other test directory uses)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import urllib3

from testkit.availability import unavailable
from faasops.model import Function, Location, Project, ProviderConfig, Workspace
from faasops.oci import MANIFEST_MEDIA_TYPE
from testkit.registry import OciRegistry, RegistryUnavailable

REPO_ROOT = Path(__file__).resolve().parents[2]
HELLO_SOURCE = REPO_ROOT / "examples" / "hello" / "functions" / "hello"
PROJECT = "test"
CREATED = "2024-05-01T12:00:00Z"
PASSWORD_ENV = "FAASOPS_TEST_REGISTRY_PASSWORD"

# Requests that move blob bytes into the registry (a mount moves none).
UPLOAD_CALLS = ("registry.POST upload", "registry.PUT blob", "registry.PATCH blob chunk")




def start_registry(users: dict[str, str] | None = None, auth: str = "htpasswd") -> OciRegistry:
    """A docker-registry (see :class:`OciRegistry`), or a skip/failure when it is not installed."""
    try:
        return OciRegistry(users, auth=auth)
    except RegistryUnavailable as exc:
        unavailable(str(exc))
        raise


def make_function(name: str = "hello", workspace: str = "demo", source_dir: Path = HELLO_SOURCE) -> Function:
    return Function(
        workspace=workspace,
        name=name,
        source_dir=source_dir,
        source=str(source_dir),
        location=Location("faas.yaml", 1, 1),
    )


def make_project(root: Path, config: ProviderConfig, functions: tuple[Function, ...] = ()) -> Project:
    workspaces: dict[str, list[Function]] = {}
    for function in functions:
        workspaces.setdefault(function.workspace, []).append(function)
    return Project(
        name=PROJECT,
        root=root,
        providers={"registry": config},
        workspaces=tuple(
            Workspace(name=ws, location=Location("faas.yaml"), functions=tuple(fns)) for ws, fns in workspaces.items()
        ),
    )


def repository(function: Function, prefix: str = "faasops/") -> str:
    return f"{prefix}{PROJECT}/{function.workspace}/{function.name}"


def uploads(calls: dict[str, int]) -> int:
    return sum(calls.get(name, 0) for name in UPLOAD_CALLS)


class RegistryReader:
    """Reads back what a push stored, over the registry's own HTTP API."""

    def __init__(self, url: str, username: str | None = None, password: str | None = None):
        self.url = url
        self.headers = urllib3.make_headers(basic_auth=f"{username}:{password}") if username else {}

    def get(self, path: str, **headers: str) -> urllib3.BaseHTTPResponse:
        return urllib3.request("GET", self.url + path, headers={**self.headers, **headers}, redirect=False)

    def manifest(self, repo: str, reference: str) -> tuple[dict[str, Any], urllib3.BaseHTTPResponse]:
        response = self.get(f"/v2/{repo}/manifests/{reference}", Accept=MANIFEST_MEDIA_TYPE)
        assert response.status == 200, (response.status, response.data[:300])
        return json.loads(response.data), response

    def blob(self, repo: str, digest: str) -> bytes:
        response = self.get(f"/v2/{repo}/blobs/{digest}")
        assert response.status == 200, (response.status, response.data[:300])
        return response.data

    def blob_size(self, repo: str, digest: str) -> int | None:
        response = urllib3.request("HEAD", f"{self.url}/v2/{repo}/blobs/{digest}", headers=self.headers, redirect=False)
        return int(response.headers["Content-Length"]) if response.status == 200 else None

    def tags(self, repo: str) -> list[str]:
        response = self.get(f"/v2/{repo}/tags/list")
        assert response.status == 200, (response.status, response.data[:300])
        return sorted(json.loads(response.data).get("tags") or [])
