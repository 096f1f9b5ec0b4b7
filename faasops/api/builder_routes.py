"""The Builder API inside the Platform API: ``/api/v1/build``, ``/build-and-push``, ``/push``,
``/scaffold``, ``/deploy`` and the task endpoints, with the same routes as ``faasops builder
serve`` (:func:`faasops.builder_service.routes.add_builder_routes`).

Where the work runs follows the project's ``providers.builder``:

- ``type: remote`` — each request is passed on to that Builder service (its ``url``, with the token
  from its ``token_env``), and its answer comes back as it is; a builder that cannot be reached, or
  that refuses the API's own token, answers 502.
- any other builder — a :class:`~faasops.builder_service.service.BuilderService` in this process,
  made from the project's providers (state, sources, builder, registry, scaffolder, deployer),
  on the first builder request.

Tasks: the project's state backend holds the API's write tasks (``faasops api``) and, in
process, the builder's tasks — ``GET /api/v1/tasks/{id}`` finds either there, then (remote) asks
the Builder service. A workspace's list merges both, newest first.

Scope: building, pushing and deploying a function of a workspace need ``write`` on it; scaffold
(pure rendering) and the task endpoints need ``read``. Outside the scope: 404, for a task id too.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import urllib3
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ValidationError

from faasops.api.access import Principal, authenticated
from faasops.api.context import ApiContext
from faasops.builder_service.config import SERVICE_SLOTS, ServiceConfig
from faasops.builder_service.models import (
    DeployRequest,
    PushRequest,
    ScaffoldRequest,
    ScaffoldResponse,
    TaskAccepted,
    TaskModel,
)
from faasops.builder_service.routes import (
    BuilderEndpoints,
    ServiceEndpoints,
    add_builder_routes,
    task_model,
)
from faasops.builder_service.service import BuilderService
from faasops.builder_service.wire import API_PREFIX, FIELD_SOURCE, FIELD_SPEC
from faasops.engine import Engine
from faasops.errors import FaasopsError
from faasops.model import Project
from faasops.plugins.remote_builder import TYPE as REMOTE, RemoteOptions

#: Seconds the API waits for the remote builder's answer to one request (uploads included).
PROXY_TIMEOUT_S = 300.0


def service_config(project: Project) -> ServiceConfig:
    """The in-process builder's config: the project's own providers, rooted at the project, so
    relative paths and the state backend are the ones ``faasops apply`` uses."""
    providers = {slot: {"type": config.type, **config.options}
                 for slot, config in project.providers.items() if slot in SERVICE_SLOTS}
    return ServiceConfig.model_validate({"project": project.name, "data_dir": str(project.root),
                                         "providers": providers})


class RemoteEndpoints:
    """The endpoints passed on to a remote Builder service; its answers come back unchanged
    (its 4xx included), its failures as 502."""

    def __init__(self, options: RemoteOptions):
        self.options = options
        self.base_url = options.url.rstrip("/")
        self._pool = urllib3.PoolManager(num_pools=2, maxsize=8, retries=False, ca_certs=options.ca_bundle,
                                         timeout=urllib3.Timeout(connect=options.connect_timeout, read=PROXY_TIMEOUT_S))

    def _forward(self, method: str, path: str, body: bytes | None = None,
                 content_type: str | None = None) -> dict[str, Any]:
        token = os.environ.get(self.options.token_env, "").strip()
        if not token:
            raise HTTPException(502, f"the builder at {self.base_url} needs a token: set {self.options.token_env} "
                                     "in the API server's environment (providers.builder `token_env`)")
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        try:
            response = self._pool.request(method, self.base_url + path, body=body, headers=headers, redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise HTTPException(502, f"cannot reach the builder at {self.base_url} "
                                     f"({str(reason).split(': ', 1)[-1]})") from None
        try:
            answer = json.loads(response.data)
        except ValueError:
            answer = None
        detail = answer.get("detail") if isinstance(answer, dict) else None
        if response.status in (401, 403):
            raise HTTPException(502, f"the builder at {self.base_url} refused the API's token in "
                                     f"${self.options.token_env} (HTTP {response.status})")
        if response.status >= 500 or not isinstance(answer, dict):
            raise HTTPException(502, f"the builder at {self.base_url} answered HTTP {response.status}"
                                     + (f": {detail}" if isinstance(detail, str) else ""))
        if response.status >= 400:
            raise HTTPException(response.status, detail if isinstance(detail, str) else f"HTTP {response.status}")
        return answer

    def _model(self, model: type[BaseModel], answer: dict[str, Any]) -> Any:
        try:
            return model.model_validate(answer)
        except ValidationError:
            raise HTTPException(502, f"the builder at {self.base_url} answered with unexpected JSON") from None

    def _json(self, path: str, request: BaseModel) -> dict[str, Any]:
        body = json.dumps(request.model_dump(mode="json", exclude_unset=True)).encode()
        return self._forward("POST", path, body, "application/json")

    def build(self, archive: bytes, spec: str, push: bool) -> TaskAccepted:
        body, content_type = urllib3.encode_multipart_formdata({
            FIELD_SPEC: spec, FIELD_SOURCE: ("source.tar.gz", archive, "application/gzip"),
        })
        path = f"{API_PREFIX}/build-and-push" if push else f"{API_PREFIX}/build"
        return self._model(TaskAccepted, self._forward("POST", path, body, content_type))

    def push(self, request: PushRequest) -> TaskAccepted:
        return self._model(TaskAccepted, self._json(f"{API_PREFIX}/push", request))

    def scaffold(self, request: ScaffoldRequest) -> ScaffoldResponse:
        return self._model(ScaffoldResponse, self._json(f"{API_PREFIX}/scaffold", request))

    def deploy(self, request: DeployRequest) -> TaskAccepted:
        return self._model(TaskAccepted, self._json(f"{API_PREFIX}/deploy", request))

    def task(self, task_id: str) -> TaskModel:
        return self._model(TaskModel, self._forward("GET", f"{API_PREFIX}/tasks/{task_id}"))

    def workspace_tasks(self, workspace: str, limit: int) -> list[TaskModel]:
        answer = self._forward("GET", f"{API_PREFIX}/workspaces/{workspace}/tasks?limit={limit}")
        tasks = answer.get("tasks")
        if not isinstance(tasks, list):
            raise HTTPException(502, f"the builder at {self.base_url} answered with unexpected JSON")
        return [self._model(TaskModel, t) for t in tasks]

    def close(self) -> None:
        self._pool.clear()


class ProjectTasks:
    """The remote builder's endpoints, with the project's own task history first: the API's
    write tasks live in the project's state backend, the remote builder's in its own."""

    def __init__(self, remote: RemoteEndpoints, state: Any):
        self.remote = remote
        self.state = state

    def build(self, archive: bytes, spec: str, push: bool) -> TaskAccepted:
        return self.remote.build(archive, spec, push)

    def push(self, request: PushRequest) -> TaskAccepted:
        return self.remote.push(request)

    def scaffold(self, request: ScaffoldRequest) -> ScaffoldResponse:
        return self.remote.scaffold(request)

    def deploy(self, request: DeployRequest) -> TaskAccepted:
        return self.remote.deploy(request)

    def task(self, task_id: str) -> TaskModel:
        found = [t for t in self.state.list_tasks(task_id=task_id, limit=5) if t.id == task_id]
        return task_model(found[0]) if found else self.remote.task(task_id)

    def workspace_tasks(self, workspace: str, limit: int) -> list[TaskModel]:
        merged = [task_model(t) for t in self.state.list_tasks(workspace=workspace, limit=limit)]
        merged += self.remote.workspace_tasks(workspace, limit)
        return sorted(merged, key=lambda t: (t.created_at, t.task_id), reverse=True)[:limit]


class ProjectBuilder:
    """The builder endpoints of one served project, made on first use (a builder request should
    not slow the API's start, nor fail it when the builder is misconfigured)."""

    def __init__(self, ctx: ApiContext):
        self.ctx = ctx
        self._lock = threading.Lock()
        self._endpoints: BuilderEndpoints | None = None
        self._closers: list[Any] = []

    def endpoints(self) -> BuilderEndpoints:
        with self._lock:
            if self._endpoints is None:
                self._endpoints = self._make()
            return self._endpoints

    def _make(self) -> BuilderEndpoints:
        engine = Engine.load(self.ctx.project_dir, self.ctx.environment)
        project = engine.project
        if project.provider("builder").type == REMOTE:
            try:
                remote = RemoteEndpoints(RemoteOptions.parse(project.provider("builder")))
                endpoints = ProjectTasks(remote, engine.state)
            except FaasopsError as exc:
                engine.close()
                raise HTTPException(503, f"the project's remote builder cannot be used: {exc}") from None
            self._closers += [remote.close, engine.close]
            return endpoints
        engine.close()
        try:
            service = BuilderService(service_config(project))
        except (FaasopsError, ValidationError) as exc:
            raise HTTPException(503, f"the project's builder cannot be used: {exc}") from None
        self._closers.append(service.close)
        return ServiceEndpoints(service)

    def close(self) -> None:
        with self._lock:
            for close in reversed(self._closers):
                close()
            self._closers, self._endpoints = [], None


def _allowed(request: Request, workspace: str, action: str) -> bool:
    principal: Principal = request.state.principal  # set by `authenticated`, which runs first
    return principal.allows(workspace, action)


def router(ctx: ApiContext) -> APIRouter:
    """The builder and task endpoints of the Platform API for the project ``ctx`` serves."""
    builder = ProjectBuilder(ctx)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        builder.close()

    api = APIRouter(lifespan=lifespan)
    bearer = HTTPBearer(auto_error=False, description="An API token.")
    add_builder_routes(api, builder.endpoints, _allowed, [Depends(bearer), Depends(authenticated)])
    return api
