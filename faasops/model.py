"""The desired model: what the manifests declare, after loading, overlays and validation.

Values only. The manifest loader builds them; diff, plan and providers read them. Paths are
absolute; ``location`` points back into the manifest for error messages.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_EXECUTOR = "containerd-shim-spin"
DEFAULT_HANDLER = "app"


@dataclass(frozen=True)
class Location:
    """Where a value was declared: manifest file (relative to the project root), 1-based line/col."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}" if self.line else self.file


@dataclass(frozen=True)
class ProviderConfig:
    """One provider slot of the project (``state``, ``sources``, ``builder``, ``registry``,
    ``scaffolder``, ``deployer``): the plugin ``type`` that serves it and its options."""

    slot: str
    type: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SecretRef:
    """A secret the function reads, by reference only: faasops never reads or stores the value.

    ``source`` is ``kubernetes`` (a Secret ``ref`` and ``key``), ``ssm`` (parameter name ``ref``)
    or ``secretsmanager`` (secret id ``ref``, optional JSON ``key``).
    """

    name: str
    source: str
    ref: str
    key: str | None = None

    def as_spec(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "ref": self.ref, "key": self.key}


def secrets_fingerprint(secrets: tuple[SecretRef, ...]) -> str | None:
    """A digest of secret references (names and sources, never values), or None without secrets."""
    if not secrets:
        return None
    payload = json.dumps([s.as_spec() for s in secrets], sort_keys=True).encode()
    return "sha256:" + hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class Autoscaling:
    """HPA or KEDA autoscaling. With autoscaling on, the autoscaler owns ``replicas``."""

    type: str  # "hpa" | "keda"
    min_replicas: int
    max_replicas: int
    cpu_utilization: int | None = None
    memory_utilization: int | None = None

    def as_spec(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "min": self.min_replicas,
            "max": self.max_replicas,
            "cpu": self.cpu_utilization,
            "memory": self.memory_utilization,
        }


@dataclass(frozen=True)
class Resources:
    """Kubernetes resource requests and limits, as quantity strings (``100m``, ``128Mi``)."""

    cpu_request: str | None = None
    memory_request: str | None = None
    cpu_limit: str | None = None
    memory_limit: str | None = None

    def as_spec(self) -> dict[str, Any]:
        return {
            "requests": {"cpu": self.cpu_request, "memory": self.memory_request},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


@dataclass(frozen=True)
class FileMount:
    """One entry of a function's ``files``, as in spin.toml: a path or glob relative to the
    source directory (``destination`` None: mounted at the same path under ``/``), or a file or
    directory ``source`` mounted at the absolute guest path ``destination``."""

    source: str
    destination: str | None = None

    def as_spec(self) -> str | dict[str, str]:
        if self.destination is None:
            return self.source
        return {"source": self.source, "destination": self.destination}


@dataclass(frozen=True)
class Function:
    """One function: a Spin HTTP component built from a Python source directory."""

    workspace: str
    name: str
    source_dir: Path
    source: str  # as written in the manifest, relative to the project root
    location: Location
    handler: str = DEFAULT_HANDLER
    env: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    secrets: tuple[SecretRef, ...] = ()
    resources: Resources = field(default_factory=Resources)
    replicas: int = 1
    autoscaling: Autoscaling | None = None
    spot: bool = False
    protect: bool = False
    executor: str = DEFAULT_EXECUTOR
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    timeout: int | None = None  # seconds one request may run locally; None: the runtime's default
    # Spin's allowed_outbound_hosts: where outbound HTTP may go (none: nowhere), in declared order.
    allowed_outbound_hosts: tuple[str, ...] = ()
    # Spin's sqlite_databases: the database labels the component may open (none: no database).
    sqlite_databases: tuple[str, ...] = ()
    # Spin's key_value_stores: the store labels the component may open (none: no store).
    key_value_stores: tuple[str, ...] = ()
    # Spin's files: what is mounted read-only into the component (faasops.file_mounts).
    files: tuple[FileMount, ...] = ()
    # faas.yaml's `dependencies:`: requirement strings, each read as a requirements.txt line.
    dependencies: tuple[str, ...] = ()

    @property
    def address(self) -> str:
        return f"{self.workspace}/{self.name}"

    def spec(self) -> dict[str, Any]:
        """The declared settings that apply compares, as plain data (no source hash: the
        engine adds that from the source snapshot). ``replicas`` is left out under autoscaling,
        because the autoscaler owns it."""
        return {
            "source": self.source,
            "handler": self.handler,
            "env": dict(sorted(self.env.items())),
            "variables": dict(sorted(self.variables.items())),
            # Only a fingerprint of the references: plans and state never need more to see a change.
            "secrets": secrets_fingerprint(self.secrets),
            "resources": self.resources.as_spec(),
            "replicas": None if self.autoscaling else self.replicas,
            "autoscaling": self.autoscaling.as_spec() if self.autoscaling else None,
            "spot": self.spot,
            "protect": self.protect,
            "executor": self.executor,
            "labels": dict(sorted(self.labels.items())),
            "annotations": dict(sorted(self.annotations.items())),
            # Only when set, so the plans and state of functions without one stay as they were.
            **({"timeout": self.timeout} if self.timeout is not None else {}),
            **({"allowed_outbound_hosts": list(self.allowed_outbound_hosts)}
               if self.allowed_outbound_hosts else {}),
            **({"sqlite_databases": list(self.sqlite_databases)} if self.sqlite_databases else {}),
            **({"key_value_stores": list(self.key_value_stores)} if self.key_value_stores else {}),
            **({"files": [m.as_spec() for m in self.files]} if self.files else {}),
            **({"dependencies": list(self.dependencies)} if self.dependencies else {}),
        }


@dataclass(frozen=True)
class Workspace:
    """A workspace: a group of functions deployed to one Kubernetes namespace."""

    name: str
    location: Location
    namespace: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    protect: bool = False
    functions: tuple[Function, ...] = ()

    def spec(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace or self.name,
            "labels": dict(sorted(self.labels.items())),
            "protect": self.protect,
        }


@dataclass(frozen=True)
class Project:
    """The whole desired state of one project directory."""

    name: str
    root: Path
    providers: dict[str, ProviderConfig]
    workspaces: tuple[Workspace, ...] = ()
    environment: str | None = None
    manifest_files: tuple[Path, ...] = ()
    templates_dir: Path | None = None

    @property
    def state_dir(self) -> Path:
        """Where the local backend keeps state, sources, builds and artifacts."""
        return self.root / ".faasops"

    def provider(self, slot: str) -> ProviderConfig:
        return self.providers[slot]

    def functions(self) -> list[Function]:
        return [f for ws in self.workspaces for f in ws.functions]

    def workspace(self, name: str) -> Workspace | None:
        return next((ws for ws in self.workspaces if ws.name == name), None)


PROVIDER_SLOTS = ("state", "sources", "builder", "registry", "scaffolder", "deployer")
# Day-2 slots: where `faasops logs`, `faasops metrics` and `faasops invoke` read and call.
OPERATIONS_SLOTS = ("logs", "metrics", "invoker")
ALL_SLOTS = PROVIDER_SLOTS + OPERATIONS_SLOTS

# `backend:` presets: one word selects a coherent set of providers; each slot can still be
# overridden under `providers:`.
BACKEND_PRESETS: dict[str, dict[str, str]] = {
    "local": {
        "state": "local",
        "sources": "local",
        "builder": "componentize-py",
        "registry": "local",
        "scaffolder": "spinkube",
        "deployer": "local",
        "logs": "local",
        "metrics": "local",
        "invoker": "local",
    },
    "aws": {
        "state": "dynamodb",
        "sources": "s3",
        "builder": "componentize-py",
        "registry": "ecr",
        "scaffolder": "spinkube",
        "deployer": "kubernetes",
        "logs": "dynamodb",
        "metrics": "prometheus",
        "invoker": "kubernetes",
    },
}
