"""Helpers shared by the build-side tests (kept out of conftest.py so test modules can import
them by a name no other test directory uses)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from faasops.model import Function, Location, Project, ProviderConfig, Workspace
from faasops.plugins.componentize import ComponentizePyBuilder

HELLO_HANDLER = textwrap.dedent(
    """\
    from spin_sdk import http
    from spin_sdk.http import Request, Response


    class IncomingHandler(http.IncomingHandler):
        def handle_request(self, request: Request) -> Response:
            return Response(200, {"content-type": "text/plain"}, b"hello from faasops")
    """
)


def write_source(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def make_function(source_dir: Path, name: str = "hello", workspace: str = "demo", **fields) -> Function:
    return Function(
        workspace=workspace,
        name=name,
        source_dir=source_dir,
        source=source_dir.name,
        location=Location("faas.yaml", 1, 1),
        **fields,
    )


def make_project(root: Path, functions: tuple[Function, ...] = (), namespace: str = "", **fields) -> Project:
    workspaces: dict[str, list[Function]] = {}
    for function in functions:
        workspaces.setdefault(function.workspace, []).append(function)
    return Project(
        name="test",
        root=root,
        providers={
            "builder": ProviderConfig("builder", "componentize-py"),
            "scaffolder": ProviderConfig("scaffolder", "spinkube"),
        },
        workspaces=tuple(
            Workspace(name=ws, location=Location("faas.yaml"), namespace=namespace, functions=tuple(fns))
            for ws, fns in workspaces.items()
        ),
        **fields,
    )


class CountingBuilder(ComponentizePyBuilder):
    """The real builder, counting how often it runs componentize-py."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.componentize_calls = 0

    def _componentize(self, function, app_dir, out, deps=None):
        self.componentize_calls += 1
        super()._componentize(function, app_dir, out, deps)
