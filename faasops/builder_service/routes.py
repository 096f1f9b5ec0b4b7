"""The Builder API's endpoints, once, for every application that serves them.

``faasops builder serve`` (:mod:`faasops.builder_service.app`) and the Platform API
(:mod:`faasops.api.builder_routes`) both call :func:`add_builder_routes`: the same paths, request
models, validation, OpenAPI text and status codes, in front of a :class:`BuilderEndpoints` —
:class:`ServiceEndpoints` running the work in this process, or the Platform API's proxy to a
remote Builder service.

``allowed(request, workspace, action)`` is who may do what: the builder service has one token
and lets its holder do everything (its middleware checked the token); the Platform API checks
the token's scope. A workspace outside it answers 404, as one that does not exist — a task of
such a workspace too, so no task id tells whose it is.

Errors become :class:`fastapi.HTTPException` inside each route (not through application-level
exception handlers), so the routes answer the same under any application that includes them:
401 (token), 404, 411/413 (upload size), 422 (invalid request, archive or handler — with located
messages), 501 (no provider configured for it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from faasops.builder_service.models import (
    DNS_LABEL,
    BuildSpec,
    DeployRequest,
    ErrorModel,
    PushRequest,
    ScaffoldRequest,
    ScaffoldResponse,
    TaskAccepted,
    TaskListModel,
    TaskModel,
)
from faasops.builder_service.service import BuilderService, NotConfigured, NotFound, UploadedBuild
from faasops.builder_service.tasks import task_result
from faasops.builder_service.uploads import UploadRejected
from faasops.builder_service.wire import API_PREFIX, FAILED, FIELD_SOURCE, FIELD_SPEC
from faasops.errors import FaasopsError
from faasops.providers import Task

TASK_ID = r"^[0-9a-f]{8,64}$"
MAX_TASK_LIMIT = 1000
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorModel, "description": "Missing or wrong bearer token"},
    422: {"model": ErrorModel, "description": "Invalid request"},
}
UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    411: {"model": ErrorModel, "description": "No Content-Length"},
    413: {"model": ErrorModel, "description": "Upload (or its unpacked files) too large"},
    422: {"model": ErrorModel, "description": "Not a tar.gz, unsafe entries, or handler contract violated"},
    501: {"model": ErrorModel, "description": "No registry configured (build-and-push)"},
}

# Module level: FastAPI resolves the endpoints' (string) annotations in this module's namespace.
SourceField = Annotated[UploadFile, File(alias=FIELD_SOURCE, description="The source directory as a tar.gz.")]
SpecField = Annotated[str, Form(alias=FIELD_SPEC, description="A BuildSpec (JSON text): project, function, "
                                                            "source_digest, created.")]
TaskId = Annotated[str, PathParam(pattern=TASK_ID)]
WorkspaceId = Annotated[str, PathParam(pattern=DNS_LABEL, max_length=63)]
TaskLimit = Annotated[int, Query(ge=1, le=MAX_TASK_LIMIT)]

#: ``allowed(request, workspace, action)``: may the caller ``action`` (read/write) in ``workspace``.
Allowed = Callable[[Request, str, str], bool]


class BuilderEndpoints(Protocol):
    """What the routes ask for; each method may raise :class:`UploadRejected`,
    :class:`NotFound`, :class:`NotConfigured`, another :class:`FaasopsError` (422) or an
    :class:`HTTPException` as it is."""

    def build(self, archive: bytes, spec: str, push: bool) -> TaskAccepted: ...

    def push(self, request: PushRequest) -> TaskAccepted: ...

    def scaffold(self, request: ScaffoldRequest) -> ScaffoldResponse: ...

    def deploy(self, request: DeployRequest) -> TaskAccepted: ...

    def task(self, task_id: str) -> TaskModel: ...

    def workspace_tasks(self, workspace: str, limit: int) -> list[TaskModel]: ...


def task_model(task: Task) -> TaskModel:
    return TaskModel(
        task_id=task.id, workspace_id=task.workspace, function=task.function, kind=task.kind,
        status=task.status,  # type: ignore[arg-type]
        created_at=task.created_at, updated_at=task.updated_at,
        log=task.message if task.status == FAILED else "", result=task_result(task),  # type: ignore[arg-type]
    )


def task_accepted(task: Task) -> TaskAccepted:
    return TaskAccepted(task_id=task.id, status="pending", kind=task.kind, workspace_id=task.workspace,
                        function=task.function, poll=f"{API_PREFIX}/tasks/{task.id}")


def validation_message(errors: Any) -> str:
    """Pydantic's errors as one line: ``field.path: message; …``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in error.get('loc', ()) if p != 'body') or '(request)'}: {error.get('msg')}"
        for error in errors
    )


def uploaded_build(archive: bytes, spec: str) -> UploadedBuild:
    """A ``POST /build`` request's parts, the spec validated (422 naming the field otherwise)."""
    try:
        parsed = BuildSpec.model_validate_json(spec)
    except ValidationError as exc:
        raise UploadRejected(422, f"{FIELD_SPEC}: " + validation_message(exc.errors())) from exc
    return UploadedBuild(parsed.project, parsed.function.model_dump(), archive, parsed.source_digest, parsed.created)


class ServiceEndpoints:
    """The endpoints served by a :class:`BuilderService` in this process."""

    def __init__(self, service: BuilderService):
        self.service = service

    def build(self, archive: bytes, spec: str, push: bool) -> TaskAccepted:
        return task_accepted(self.service.submit_build(uploaded_build(archive, spec), push=push))

    def push(self, request: PushRequest) -> TaskAccepted:
        return task_accepted(self.service.submit_push(request.project, request.function.model_dump(),
                                                      request.build_key, request.created))

    def scaffold(self, request: ScaffoldRequest) -> ScaffoldResponse:
        manifests = self.service.scaffold(request.project, request.workspace.model_dump(),
                                          request.function.model_dump(), request.image)
        return ScaffoldResponse(manifests=manifests)

    def deploy(self, request: DeployRequest) -> TaskAccepted:
        return task_accepted(self.service.submit_deploy(request.project, request.workspace.model_dump(),
                                                        request.function.model_dump(), request.image))

    def task(self, task_id: str) -> TaskModel:
        return task_model(self.service.task(task_id))

    def workspace_tasks(self, workspace: str, limit: int) -> list[TaskModel]:
        return [task_model(t) for t in self.service.workspace_tasks(workspace, limit)]


@contextmanager
def answering() -> Iterator[None]:
    """The service's errors as HTTP answers, whichever application serves the route."""
    try:
        yield
    except UploadRejected as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except NotFound as exc:
        raise HTTPException(404, str(exc)) from None
    except NotConfigured as exc:
        raise HTTPException(501, str(exc)) from None
    except FaasopsError as exc:
        raise HTTPException(422, str(exc)) from None


def accepted(body: TaskAccepted) -> JSONResponse:
    return JSONResponse(jsonable_encoder(body), status_code=202, headers={"Location": body.poll})


def add_builder_routes(router: APIRouter, endpoints: Callable[[], BuilderEndpoints], allowed: Allowed,
                       dependencies: list[Any] | None = None) -> None:
    """Add the build, push, scaffold, deploy and task endpoints to ``router``. ``endpoints`` is
    called per request (so a service can be made when first needed); ``dependencies`` run
    before each route (authentication, or documenting it)."""
    secured = dependencies or []

    def require(request: Request, workspace: str, action: str) -> None:
        if not allowed(request, workspace, action):
            raise HTTPException(404, f"workspace '{workspace}' not found")

    def upload(request: Request, source: UploadFile, spec: str, push: bool) -> JSONResponse:
        with answering():
            workspace = uploaded_build(b"", spec).function["workspace"]  # the spec alone: before reading the source
            require(request, workspace, "write")
            return accepted(endpoints().build(source.file.read(), spec, push))

    @router.post(f"{API_PREFIX}/build", status_code=202, response_model=TaskAccepted, tags=["build"],
                 dependencies=secured, responses=UPLOAD_ERRORS, summary="Upload a source and build it")
    def build(request: Request, source: SourceField, spec: SpecField) -> JSONResponse:
        return upload(request, source, spec, push=False)

    @router.post(f"{API_PREFIX}/build-and-push", status_code=202, response_model=TaskAccepted, tags=["build"],
                 dependencies=secured, responses=UPLOAD_ERRORS,
                 summary="Upload a source, build it and push the Spin OCI artifact")
    def build_and_push(request: Request, source: SourceField, spec: SpecField) -> JSONResponse:
        return upload(request, source, spec, push=True)

    @router.post(f"{API_PREFIX}/push", status_code=202, response_model=TaskAccepted, tags=["build"],
                 dependencies=secured, responses={**ERRORS, 404: {"model": ErrorModel}, 501: {"model": ErrorModel}},
                 summary="Push an earlier build of this builder, by build key")
    def push(request: Request, body: PushRequest) -> JSONResponse:
        require(request, body.function.workspace, "write")
        with answering():
            return accepted(endpoints().push(body))

    @router.post(f"{API_PREFIX}/scaffold", response_model=ScaffoldResponse, tags=["deploy"], dependencies=secured,
                 responses=ERRORS, summary="Render the function's manifests (SpinApp, HPA/ScaledObject)")
    def scaffold(request: Request, body: ScaffoldRequest) -> ScaffoldResponse:
        require(request, body.workspace.name, "read")
        with answering():
            return endpoints().scaffold(body)

    @router.post(f"{API_PREFIX}/deploy", status_code=202, response_model=TaskAccepted, tags=["deploy"],
                 dependencies=secured, responses={**ERRORS, 501: {"model": ErrorModel}},
                 summary="Render and apply the function (function_id labels, autoscaling, spot); "
                         "creates the namespace when missing")
    def deploy(request: Request, body: DeployRequest) -> JSONResponse:
        require(request, body.workspace.name, "write")
        with answering():
            return accepted(endpoints().deploy(body))

    @router.get(f"{API_PREFIX}/tasks/{{task_id}}", response_model=TaskModel, tags=["tasks"], dependencies=secured,
                responses={**ERRORS, 404: {"model": ErrorModel}}, summary="One task: poll until completed or failed")
    def get_task(request: Request, task_id: TaskId) -> TaskModel:
        with answering():
            found = endpoints().task(task_id)
        if not allowed(request, found.workspace_id, "read"):
            raise HTTPException(404, f"no task {task_id}")  # as for an id that does not exist
        return found

    @router.get(f"{API_PREFIX}/workspaces/{{workspace_id}}/tasks", response_model=TaskListModel, tags=["tasks"],
                dependencies=secured, responses={**ERRORS, 404: {"model": ErrorModel}},
                summary="A workspace's tasks, newest first")
    def workspace_tasks(request: Request, workspace_id: WorkspaceId, limit: TaskLimit = 50) -> TaskListModel:
        require(request, workspace_id, "read")
        with answering():
            return TaskListModel(workspace_id=workspace_id, tasks=endpoints().workspace_tasks(workspace_id, limit))
