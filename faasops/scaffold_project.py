"""``faasops init``: a new project with one hello-world function."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from faasops.errors import FaasopsError

HELLO_HANDLER = '''\
from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        return Response(200, {"content-type": "text/plain"}, bytes("Hello from Blue FaaS!", "utf-8"))
'''

MANIFEST = '''\
# yaml-language-server: $schema=./faas.yaml.schema
# (editor completion; refresh the schema after upgrading: `faasops schema > faas.yaml.schema`)
apiVersion: faasops/v1
project: {project}
backend: local          # state, builds and artifacts under .faasops/; `aws` for DynamoDB/S3/ECR/Kubernetes

workspaces:
  - name: demo
    functions:
      - name: hello
        source: functions/hello
'''

GITIGNORE = ".faasops/\n"


def schema_text() -> str:
    """The JSON Schema of faas.yaml shipped with this faasops."""
    return (files("faasops") / "faas.yaml.schema").read_text()


def project_name(directory: Path) -> str:
    """A DNS-1123 label derived from the directory name."""
    name = re.sub(r"[^a-z0-9-]+", "-", directory.resolve().name.lower()).strip("-")[:63].strip("-")
    return name or "my-project"


def create_project(directory: Path, name: str | None = None) -> list[Path]:
    """Write faas.yaml, functions/hello/app.py and .gitignore; never overwrites a file."""
    files = {
        directory / "faas.yaml": MANIFEST.format(project=name or project_name(directory)),
        directory / "functions" / "hello" / "app.py": HELLO_HANDLER,
        directory / ".gitignore": GITIGNORE,
        directory / "faas.yaml.schema": schema_text(),
    }
    existing = [p for p in files if p.exists()]
    if (directory / "faas.yaml") in existing:
        raise FaasopsError(f"{directory / 'faas.yaml'} already exists; not overwriting it")
    created = []
    for path, text in files.items():
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        created.append(path)
    return created
