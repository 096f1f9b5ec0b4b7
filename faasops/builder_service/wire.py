"""The Builder API's wire values, shared by the service and the remote-builder client.

Plain dicts and constants only (no FastAPI, no pydantic), so the client side — the
``remote`` builder and registry in :mod:`faasops.plugins.remote_builder` — works on a CI runner
that installed faasops without the ``builder`` extra. The service validates the same shapes with
the pydantic models of :mod:`faasops.builder_service.models`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from faasops.model import (
    DEFAULT_EXECUTOR,
    DEFAULT_HANDLER,
    Autoscaling,
    FileMount,
    Function,
    Location,
    Resources,
    SecretRef,
    Workspace,
)

API_PREFIX = "/api/v1"
API_VERSION = 1

# Task statuses: what this service writes, and what a client accepts. Older Builder servers
# answered `done` for success; it means the same as `completed`.
PENDING, RUNNING, COMPLETED, FAILED = "pending", "running", "completed", "failed"
LEGACY_DONE = "done"
OPEN_STATUSES = frozenset({PENDING, RUNNING})
SUCCESS_STATUSES = frozenset({COMPLETED, LEGACY_DONE})
FAILURE_STATUSES = frozenset({FAILED})

# Task kinds, one per long-running endpoint.
KIND_BUILD = "build"
KIND_BUILD_AND_PUSH = "build-and-push"
KIND_PUSH = "push"
KIND_DEPLOY = "deploy"

# Multipart field names of the upload endpoints.
FIELD_SOURCE = "source"
FIELD_SPEC = "spec"

UPLOADED_SOURCE = "(uploaded to the builder)"


def function_to_wire(function: Function) -> dict[str, Any]:
    """The settings of ``function`` the service needs to build, push, render and deploy it — the
    same ones that decide its artifact and manifests (``env`` and variable names are baked into
    the artifact), never secret values (there are none in the model)."""
    autoscaling = function.autoscaling
    return {
        "workspace": function.workspace,
        "name": function.name,
        "handler": function.handler,
        "env": dict(function.env),
        "variables": dict(function.variables),
        "secrets": [secret.as_spec() for secret in function.secrets],
        "resources": function.resources.as_spec(),
        "replicas": function.replicas,
        "autoscaling": autoscaling.as_spec() if autoscaling else None,
        "spot": function.spot,
        "executor": function.executor,
        "labels": dict(function.labels),
        "annotations": dict(function.annotations),
        # The Spin settings the artifact's locked app carries (the cluster enforces them) and
        # the dependencies — each only when set, so a Builder service that predates a field
        # still builds every function that doesn't use it.
        **({"timeout": function.timeout} if function.timeout is not None else {}),
        **({"allowed_outbound_hosts": list(function.allowed_outbound_hosts)} if function.allowed_outbound_hosts else {}),
        **({"sqlite_databases": list(function.sqlite_databases)} if function.sqlite_databases else {}),
        **({"key_value_stores": list(function.key_value_stores)} if function.key_value_stores else {}),
        **({"files": [mount.as_spec() for mount in function.files]} if function.files else {}),
        **({"dependencies": list(function.dependencies)} if function.dependencies else {}),
    }


def function_from_wire(data: dict[str, Any], source_dir: Path) -> Function:
    """The :class:`Function` a request describes (``data`` already validated by the service's
    models); ``source_dir`` is where its uploaded source lies, if anywhere."""
    resources = data.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    scaling = data.get("autoscaling")
    return Function(
        workspace=data["workspace"],
        name=data["name"],
        source_dir=source_dir,
        source=UPLOADED_SOURCE,
        location=Location("builder-request"),
        handler=data.get("handler") or DEFAULT_HANDLER,
        env=dict(data.get("env") or {}),
        variables=dict(data.get("variables") or {}),
        secrets=tuple(
            SecretRef(name=s["name"], source=s["source"], ref=s["ref"], key=s.get("key"))
            for s in data.get("secrets") or ()
        ),
        resources=Resources(
            cpu_request=requests.get("cpu"), memory_request=requests.get("memory"),
            cpu_limit=limits.get("cpu"), memory_limit=limits.get("memory"),
        ),
        replicas=int(data.get("replicas", 1)),
        autoscaling=Autoscaling(
            type=scaling["type"], min_replicas=int(scaling["min"]), max_replicas=int(scaling["max"]),
            cpu_utilization=scaling.get("cpu"), memory_utilization=scaling.get("memory"),
        ) if scaling else None,
        spot=bool(data.get("spot", False)),
        executor=data.get("executor") or DEFAULT_EXECUTOR,
        labels=dict(data.get("labels") or {}),
        annotations=dict(data.get("annotations") or {}),
        timeout=data.get("timeout"),
        allowed_outbound_hosts=tuple(data.get("allowed_outbound_hosts") or ()),
        sqlite_databases=tuple(data.get("sqlite_databases") or ()),
        key_value_stores=tuple(data.get("key_value_stores") or ()),
        files=tuple(
            FileMount(entry) if isinstance(entry, str) else FileMount(entry["source"], entry["destination"])
            for entry in data.get("files") or ()
        ),
        dependencies=tuple(data.get("dependencies") or ()),
    )


def workspace_to_wire(workspace: Workspace) -> dict[str, Any]:
    return {"name": workspace.name, "namespace": workspace.spec()["namespace"], "labels": dict(workspace.labels)}


def workspace_from_wire(data: dict[str, Any], functions: tuple[Function, ...] = ()) -> Workspace:
    return Workspace(
        name=data["name"], location=Location("builder-request"), namespace=data.get("namespace") or "",
        labels=dict(data.get("labels") or {}), functions=functions,
    )
