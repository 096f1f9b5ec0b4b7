"""Request and response models of the Builder API — what ``/docs`` and ``/openapi.json`` show.

They validate the shapes of :mod:`faasops.builder_service.wire` with exactly the rules faas.yaml
applies — the same code: names through :mod:`faasops.names` (full matches: no trailing newline,
no ``=`` in an env key, no NUL in a value), numbers as whole int32 numbers, and the rules across
settings through :mod:`faasops.function_rules` — so a request can never carry a name that would
escape a path, a repository or a namespace, nor a function that validate would refuse. A
violation is a 422 with the same message validate prints.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, model_validator

from faasops import function_rules, names
from faasops.dependencies import parse_dependency_list
from faasops.model import DEFAULT_EXECUTOR, DEFAULT_HANDLER

# For path parameters (FastAPI's Rust regex engine, where ``$`` is the very end of the text).
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DIGEST = r"^sha256:[0-9a-f]{64}$"
TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$"
IMAGE = r"^\S{1,512}$"


def _text(value: str) -> str:
    """Free text (env and variable values, annotations, references): never NUL or other control
    characters but tab, newline and carriage return — as in a manifest."""
    problem = names.control_character_problem(value, free_text=True)
    if problem:
        raise ValueError(problem)
    return value


def _requirement(value: str) -> str:
    """One entry of a function's ``dependencies``: read as a requirements.txt line, as
    ``faasops validate`` reads faas.yaml's."""
    _, problems = parse_dependency_list([value])
    if problems:
        raise ValueError(problems[0][1])
    return value


DnsName = Annotated[str, AfterValidator(names.DNS_LABEL.validated)]
FunctionName = Annotated[str, AfterValidator(names.FUNCTION_NAME.validated)]
KubernetesName = Annotated[str, AfterValidator(names.DNS_SUBDOMAIN.validated)]
ModuleName = Annotated[str, AfterValidator(names.MODULE_NAME.validated)]
EnvName = Annotated[str, AfterValidator(names.ENV_NAME.validated)]
SpinVariableName = Annotated[str, AfterValidator(names.SPIN_VARIABLE.validated)]
SecretName = Annotated[str, AfterValidator(names.SECRET_NAME.validated)]
LabelKey = Annotated[str, AfterValidator(names.LABEL_KEY.validated)]
LabelValue = Annotated[str, AfterValidator(names.LABEL_VALUE.validated)]
Quantity = Annotated[str, AfterValidator(names.QUANTITY.validated)]
Text = Annotated[str, AfterValidator(_text)]
AllowedHost = Annotated[str, AfterValidator(names.ALLOWED_OUTBOUND_HOST.validated)]
SqliteLabel = Annotated[str, AfterValidator(names.SQLITE_DATABASE.validated)]
StoreLabel = Annotated[str, AfterValidator(names.KEY_VALUE_STORE.validated)]
FilePath = Annotated[str, Field(min_length=1, max_length=4096), AfterValidator(_text)]
RequirementLine = Annotated[str, Field(max_length=1000), AfterValidator(_text), AfterValidator(_requirement)]
# Strict: 3.0, "3" and true are not whole numbers (lax pydantic would take them, and 1e30 too).
Replicas = Annotated[int, Strict(), Field(ge=1, le=names.INT32_MAX)]
Percent = Annotated[int, Strict(), Field(ge=1, le=100)]

_SECRET_REFS = {"kubernetes": names.DNS_SUBDOMAIN, "ssm": names.SSM_PARAMETER}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SecretRefModel(_Strict):
    """A secret the function reads, by reference only (values never reach the builder)."""

    name: SecretName
    source: Literal["kubernetes", "ssm", "secretsmanager"]
    ref: Text = Field(min_length=1, max_length=2048)
    key: Text | None = None

    @model_validator(mode="after")
    def _reference_fits_its_source(self) -> SecretRefModel:
        rule = _SECRET_REFS.get(self.source)
        if rule is not None:
            rule.validated(self.ref)
        if self.source == "kubernetes" and self.key is not None:
            names.SECRET_KEY.validated(self.key)
        return self


class QuantitiesModel(_Strict):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class ResourcesModel(_Strict):
    requests: QuantitiesModel = QuantitiesModel()
    limits: QuantitiesModel = QuantitiesModel()


class AutoscalingModel(_Strict):
    type: Literal["hpa", "keda"]
    # At least 1 for keda too: it can't scale to zero on the cpu/memory triggers faasops renders.
    min: Replicas = 1
    max: Replicas
    cpu: Percent | None = None
    memory: Percent | None = None

    @model_validator(mode="after")
    def _bounds_and_target(self) -> AutoscalingModel:
        problem = function_rules.max_below_min(self.min, self.max)
        if problem:
            raise ValueError(problem)
        if self.cpu is None and self.memory is None:
            raise ValueError("autoscaling needs a target: set cpu and/or memory (utilization percent, 1–100)")
        return self


class FileMountModel(_Strict):
    """A ``files`` entry that mounts ``source`` (relative to the source) at ``destination``."""

    source: FilePath
    destination: FilePath


class FunctionModel(_Strict):
    """A function as faas.yaml declares it (what decides its artifact and its manifests)."""

    workspace: DnsName
    name: FunctionName
    handler: ModuleName = DEFAULT_HANDLER
    env: dict[EnvName, Text] = Field(default_factory=dict)
    variables: dict[SpinVariableName, Text] = Field(default_factory=dict)
    secrets: list[SecretRefModel] = Field(default_factory=list)
    resources: ResourcesModel = ResourcesModel()
    replicas: Replicas = 1
    autoscaling: AutoscalingModel | None = None
    spot: Annotated[bool, Strict()] = False
    executor: KubernetesName = DEFAULT_EXECUTOR
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    annotations: dict[LabelKey, Text] = Field(default_factory=dict)
    timeout: Annotated[int, Strict(), Field(ge=1, le=3600)] | None = None
    allowed_outbound_hosts: list[AllowedHost] = Field(default_factory=list, max_length=1000)
    sqlite_databases: list[SqliteLabel] = Field(default_factory=list, max_length=100)
    key_value_stores: list[StoreLabel] = Field(default_factory=list, max_length=100)
    files: list[FilePath | FileMountModel] = Field(default_factory=list, max_length=1000)
    dependencies: list[RequirementLine] = Field(
        default_factory=list, max_length=1000,
        description="Requirements installed into the component, each read as a requirements.txt line.")

    @model_validator(mode="after")
    def _settings_agree(self) -> FunctionModel:
        problems = [message for _, message in
                    function_rules.secret_clashes([s.name for s in self.secrets], self.variables, self.env)]
        if self.autoscaling is not None:
            requests = self.resources.requests
            problems += [message for message in (
                function_rules.missing_request("cpu", self.autoscaling.cpu, requests.cpu),
                function_rules.missing_request("memory", self.autoscaling.memory, requests.memory),
            ) if message]
        too_large = function_rules.annotations_too_large(self.annotations)
        if too_large:
            problems.append(too_large)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class WorkspaceModel(_Strict):
    name: DnsName
    namespace: DnsName | None = Field(None, description="Kubernetes namespace (default: the workspace name).")
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)


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
