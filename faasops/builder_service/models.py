"""Request and response models of the Builder API — what ``/docs`` and ``/openapi.json`` show.

They validate the shapes of :mod:`faasops.builder_service.wire` with the same rules faas.yaml's
schema applies (DNS-1123 names, handler module names, quantities), so a request can never carry
a name that would escape a path, a repository or a namespace.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from faasops.model import DEFAULT_EXECUTOR, DEFAULT_HANDLER

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
MODULE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
QUANTITY = r"^([0-9]+(\.[0-9]*)?|\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
DIGEST = r"^sha256:[0-9a-f]{64}$"
TIMESTAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"
IMAGE = r"^\S{1,512}$"

DnsName = Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SecretRefModel(_Strict):
    """A secret the function reads, by reference only (values never reach the builder)."""

    name: str = Field(pattern=ENV_NAME)
    source: Literal["kubernetes", "ssm", "secretsmanager"]
    ref: str = Field(min_length=1, max_length=2048)
    key: str | None = None


class QuantitiesModel(_Strict):
    cpu: str | None = Field(None, pattern=QUANTITY)
    memory: str | None = Field(None, pattern=QUANTITY)


class ResourcesModel(_Strict):
    requests: QuantitiesModel = QuantitiesModel()
    limits: QuantitiesModel = QuantitiesModel()


class AutoscalingModel(_Strict):
    type: Literal["hpa", "keda"]
    min: int = Field(ge=0)
    max: int = Field(ge=1)
    cpu: int | None = Field(None, ge=1, le=100)
    memory: int | None = Field(None, ge=1, le=100)


class FunctionModel(_Strict):
    """A function as faas.yaml declares it (what decides its artifact and its manifests)."""

    workspace: DnsName
    name: DnsName
    handler: str = Field(DEFAULT_HANDLER, pattern=MODULE_NAME)
    env: dict[str, str] = Field(default_factory=dict)
    variables: dict[str, str] = Field(default_factory=dict)
    secrets: list[SecretRefModel] = Field(default_factory=list)
    resources: ResourcesModel = ResourcesModel()
    replicas: int = Field(1, ge=0)
    autoscaling: AutoscalingModel | None = None
    spot: bool = False
    executor: DnsName = DEFAULT_EXECUTOR
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class WorkspaceModel(_Strict):
    name: DnsName
    namespace: DnsName | None = Field(None, description="Kubernetes namespace (default: the workspace name).")
    labels: dict[str, str] = Field(default_factory=dict)


class BuildSpec(_Strict):
    """The ``spec`` form field of ``POST /build`` and ``POST /build-and-push`` (JSON text)."""

    project: DnsName = Field(description="Project name (part of repository names).")
    function: FunctionModel
    source_digest: str | None = Field(
        None, pattern=DIGEST,
        description="The client's digest of the source tree; the upload is refused when it differs.")
    created: str | None = Field(
        None, pattern=TIMESTAMP,
        description="build-and-push: the pinned org.opencontainers.image.created (default the epoch).")


class PushRequest(_Strict):
    project: DnsName
    function: FunctionModel
    build_key: str = Field(pattern=DIGEST, description="A build key this builder built earlier.")
    created: str | None = Field(None, pattern=TIMESTAMP)


class ScaffoldRequest(_Strict):
    project: DnsName
    workspace: WorkspaceModel
    function: FunctionModel
    image: str = Field(pattern=IMAGE, description="The image to run, `repository@sha256:…`.")


class DeployRequest(ScaffoldRequest):
    """Rendered by the scaffolder (``function_id`` labels, autoscaler, spot executor) and applied
    by the deployer; the namespace is created when missing."""


class ArtifactModel(BaseModel):
    reference: str
    digest: str
    pushed: bool


class TaskResultModel(BaseModel):
    """What a completed task produced (fields depend on its kind)."""

    model_config = ConfigDict(extra="allow")

    build_key: str | None = None
    wasm_digest: str | None = None
    cached: bool | None = None
    toolchain: str | None = None
    artifact: ArtifactModel | None = None
    namespace: str | None = None
    manifests: list[str] | None = None


class TaskModel(BaseModel):
    task_id: str
    workspace_id: str
    function: str | None
    kind: str
    status: Literal["pending", "running", "completed", "failed"]
    created_at: str
    updated_at: str
    log: str = Field("", description="A failed task's log excerpt.")
    result: TaskResultModel | None = None


class TaskAccepted(BaseModel):
    task_id: str
    status: Literal["pending"]
    kind: str
    workspace_id: str
    function: str | None
    poll: str = Field(description="Where to poll the task.")


class TaskListModel(BaseModel):
    workspace_id: str
    tasks: list[TaskModel]


class ScaffoldResponse(BaseModel):
    manifests: list[dict[str, Any]]


class ServiceInfo(BaseModel):
    api_version: int
    faasops_version: str
    toolchain: str = Field(description="Part of every build key: clients use it to compute keys locally.")
    builder: str
    registry: str | None
    deployer: str | None
    max_upload_bytes: int


class ErrorModel(BaseModel):
    detail: str
