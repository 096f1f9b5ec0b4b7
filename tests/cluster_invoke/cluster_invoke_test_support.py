"""What the cluster invoke tests share: the cloud example pointed at the Kubernetes API emulator,
and a Service standing for the one spin-operator creates for a SpinApp."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from cli_support import EXAMPLES, REPO, Result, run_faasops

HANDLERS = REPO / "tests" / "runtime" / "handlers"


def cloud_copy(dest: Path, providers: dict[str, Any], workspaces: list[dict[str, Any]] | None = None) -> Path:
    """The cloud example (storefront: hello, checkout) plus an ``echo`` function, with
    ``faas.local.yaml`` setting ``providers`` (and merging ``workspaces``)."""
    project = dest / "cloud"
    shutil.copytree(EXAMPLES / "cloud", project, ignore=shutil.ignore_patterns(".faasops", "__pycache__"))
    shutil.copytree(HANDLERS / "echo", project / "functions" / "echo")
    overlay: dict[str, Any] = {
        "providers": providers,
        "workspaces": [{"name": "storefront", "functions": [{"name": "echo", "source": "functions/echo"}]},
                       *(workspaces or [])],
    }
    (project / "faas.local.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    return project


def invoke(project: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    return run_faasops("-C", str(project), "-e", "local", "invoke", *args, env=env, timeout=120)


def spin_service(name: str, namespace: str) -> dict[str, Any]:
    """The Service spin-operator creates for SpinApp ``name``: port 80 → the pod's http-app port."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {"core.spinkube.dev/app-name": name}},
        "spec": {"type": "ClusterIP", "selector": {f"core.spinkube.dev/app.{name}.status": "ready"},
                 "ports": [{"protocol": "TCP", "port": 80, "targetPort": "http-app"}]},
    }
