"""The Platform API over HTTP: :func:`create_app` builds the FastAPI application.

=======  =====================================================  ======================================
GET      ``/api/workspaces``                                    workspaces the token may read
POST     ``/api/workspaces``                                    create one (commit + apply)
GET      ``/api/workspaces/{workspace_id}``                     one workspace, declared and deployed
PATCH    ``/api/workspaces/{workspace_id}``                     change its settings (merge patch)
DELETE   ``/api/workspaces/{workspace_id}``                     delete it with its functions
GET      ``/api/workspaces/{workspace_id}/functions``           its functions
POST     ``/api/workspaces/{workspace_id}/functions``           create one (Base64 ``code``)
GET      ``/api/workspaces/{workspace_id}/functions/{fn}``      one function, declared and deployed
PATCH    ``/api/workspaces/{workspace_id}/functions/{fn}``      change settings and/or ``code``
DELETE   ``/api/workspaces/{workspace_id}/functions/{fn}``      delete it
GET      ``/api/status``                                        git head, last applied commit, recovery
GET      ``/healthz``                                           liveness (no auth)
GET      ``/docs``, ``/openapi.json``                           this API's documentation (no auth)
GET      ``/``                                                  the web console (:mod:`faasops.console`)
=======  =====================================================  ======================================

plus the routers of :mod:`faasops.api.observe_routes` (invoke, logs, metrics) and
:mod:`faasops.api.builder_routes` (``/api/v1/…``: builder and tasks).

Bodies use ``faas.yaml``'s field names. A write answers 202 with its task (poll
``/api/v1/tasks/{id}``) once it is committed, or with ``?wait=true`` 200/201 once it is applied
(502 when the apply failed: the commit stays). Errors answer ``{"detail": "…"}``: 400 (bad
Base64, not JSON), 401 (token), 404 (not found, or outside the token's scope), 409 (exists,
protected), 413 (body too large), 422 (invalid field, name or code), 503 (state locked too long).
"""

from __future__ import annotations

import json
import os
from contextlib import asynccontextmanager
from typing import Annotated, Any, AsyncIterator

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from faasops import __version__, names
from faasops.api import builder_routes, changes, observe_routes
from faasops.api.access import TOKEN_ENV, Principal, TokenRegistry, authenticated, authorize, visible_workspaces
from faasops.api.context import ApiContext
from faasops.api.project_cache import ProjectCache
from faasops.api.uploaded_code import MAX_CODE_BYTES, CodeRejected, UploadedCode, decode_code
from faasops.api.writer import LOCK_WAIT_S, Write, WriteFailed, Writer
from faasops.errors import FaasopsError
from faasops.manifest import load_project
from faasops.manifest.schema import manifest_schema
from faasops.model import DEFAULT_HANDLER, Function, Project

MAX_BODY_BYTES = (MAX_CODE_BYTES * 4) // 3 + 1024 * 1024
TASKS_PATH = "/api/v1/tasks"
WAIT_S = LOCK_WAIT_S + 3600.0  # the lock, then a build: never forever
WORKSPACE_ID = Annotated[str, PathParam(max_length=253, description="The workspace's name")]
FUNCTION_ID = Annotated[str, PathParam(max_length=253, description="The function's name in its workspace")]
REFRESH = Annotated[bool, Query(description="Also compare with what is live (a plan of this target): "
                                            "`synced` becomes `drift` when the live objects differ")]
WAIT = Annotated[bool, Query(description="Answer after the apply (200/201), not after the commit (202)")]
BODY = Annotated[dict[str, Any], Body(description="A faas.yaml entry as JSON (+ `code` for functions)")]
# Module level: FastAPI resolves the endpoints' (string) annotations in this module's namespace.
User = Annotated[Principal, Depends(authenticated)]
_ERROR = {"content": {"application/json": {"example": {"detail": "workspace 'shop' not found"}}}}


class ApiError(HTTPException):
    """An error answer with the ``{"detail": …}`` shape."""


def _schema_fields(kind: str) -> frozenset[str]:
    return frozenset(manifest_schema()["$defs"][kind]["properties"])


def create_app(ctx: ApiContext, writer: Writer | None = None) -> FastAPI:
    """The Platform API for the project in ``ctx.project_dir``. Fails (FaasopsError) before
    the server listens when no token is configured or the project is invalid. Outside a git
    work tree it serves reads and answers every write 409."""
    env_token = os.environ.get(TOKEN_ENV) or None
    if ctx.tokens_file is None and env_token is None:
        raise FaasopsError(f"no API token configured: set {TOKEN_ENV} (one admin token) or pass --tokens FILE "
                           "(see `faasops api token create`)")
    writer = writer or Writer(ctx)
    workspace_fields = _schema_fields("workspace") - {"functions"}
    function_fields = _schema_fields("function") | {"code"}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        writer.start()
        yield
        writer.stop()

    app = FastAPI(title="faasops Platform API", version=__version__, lifespan=lifespan,
                  summary="Workspaces and functions, with git as the source of truth: every write is a "
                          "commit in the project repository plus an apply of exactly that change.")
    app.state.tokens = TokenRegistry(ctx.tokens_file, env_token)
    app.state.writer = writer
    app.state.ctx = ctx
    app.add_middleware(_BodyLimit, max_bytes=MAX_BODY_BYTES)
    bearer = HTTPBearer(auto_error=False, description="An API token (FAASOPS_API_TOKEN or `faasops api token create`).")
    secured = [Depends(bearer)]  # documents the scheme in /docs; `authenticated` enforces it

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"detail": _without_token(request, str(exc.detail))}, status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return JSONResponse({"detail": "the request body is not valid JSON"}, status_code=400)
        message = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or '(body)'}: {e.get('msg')}"
                            for e in errors)
        return JSONResponse({"detail": _without_token(request, message)}, status_code=422)

    @app.exception_handler(FaasopsError)
    async def _user_error(request: Request, exc: FaasopsError) -> JSONResponse:
        return JSONResponse({"detail": _without_token(request, str(exc))}, status_code=422)

    @app.get("/healthz", tags=["service"], summary="Liveness (no auth)")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/status", tags=["service"], dependencies=secured, summary="Git head, last applied commit, crash recovery")
    def status(user: User) -> dict[str, Any]:
        if not user.is_admin:
            raise ApiError(404, "not found")
        return writer.status()

    # ------------------------------------------------------------ reads

    project_cache = ProjectCache(writer.repo.top if writer.repo else None,
                                 lambda: load_project(ctx.project_dir, ctx.environment))

    def declared() -> Project:
        return project_cache.get()

    def function_view(workspace: str, name: str, fn: Function | None, record: Any,
                      desired: dict[str, Any] | None) -> dict[str, Any]:
        """One function's view: ``fn`` as declared (None: not declared), ``record`` as deployed
        (None: not deployed) and ``desired``, ``fn``'s full desired spec."""
        if fn is None:
            state = "pending-delete"
        elif record is None:
            state = "pending-create"
        elif record.spec != desired:
            state = "pending-update"
        else:
            state = "synced"
        return {
            "name": name, "workspace": workspace, "id": f"{workspace}.{name}", "status": state,
            "declared": ({"source": fn.source, **{k: v for k, v in desired.items() if k != "source"}} if fn and desired else None),
            "deployed": ({"spec": record.spec, "artifact": record.artifact, "applied_at": record.applied_at}
                         if record else None),
        }

    def workspace_view(project: Project, actual: Any, name: str, with_functions: bool) -> dict[str, Any]:
        ws = project.workspace(name)
        record = actual.workspaces.get(name)
        fn_names = sorted({f.name for f in (ws.functions if ws else ())}
                          | {r.name for r in actual.functions.values() if r.workspace == name})
        # One batched call: a source several functions share is digested once.
        specs = writer.desired_specs(list(ws.functions)) if ws else {}
        by_name = {f.name: f for f in (ws.functions if ws else ())}
        functions = [function_view(name, f, by_name.get(f), actual.functions.get(f"{name}/{f}"),
                                   specs.get(f"{name}/{f}")) for f in fn_names]
        if ws is None:
            state = "pending-delete"
        elif record is None:
            state = "pending-create"
        elif record.spec != ws.spec() or any(f["status"] != "synced" for f in functions):
            state = "pending-update"
        else:
            state = "synced"
        view: dict[str, Any] = {
            "name": name, "status": state,
            "declared": ({**ws.spec(), "functions": [f.name for f in ws.functions]} if ws else None),
            "deployed": ({**record.spec, "functions": sorted(f.name for f in actual.functions.values()
                                                             if f.workspace == name)} if record else None),
        }
        if with_functions:
            view["functions"] = functions
        else:
            view["function_count"] = len(fn_names)
        return view

    def known(project: Project, actual: Any) -> set[str]:
        return {ws.name for ws in project.workspaces} | set(actual.workspaces)

    router = APIRouter(prefix="/api/workspaces", tags=["workspaces and functions"],
                       responses={401: _ERROR, 404: _ERROR}, dependencies=secured)

    @router.get("", summary="List workspaces (declared and deployed)")
    def list_workspaces(user: User) -> dict[str, Any]:
        project, actual = declared(), writer.state.read()
        return {"workspaces": [workspace_view(project, actual, n, False)
                               for n in visible_workspaces(user, known(project, actual))]}

    def with_live(view: dict[str, Any], target: str) -> dict[str, Any]:
        """``view`` (and its functions) with what a plan of ``target`` would do, drift included."""
        changes = writer.planned(target)
        for item in [view, *view.get("functions", [])]:
            address = item["name"] if "workspace" not in item else f"{item['workspace']}/{item['name']}"
            change = changes.get(address)
            item["plan"] = change
            if change and change["action"] != "no-op" and item["status"] == "synced":
                item["status"] = "drift"
        return view

    @router.get("/{workspace_id}", summary="One workspace with its functions")
    def get_workspace(workspace_id: WORKSPACE_ID, user: User, refresh: REFRESH = False) -> dict[str, Any]:
        authorize(user, workspace_id, "read")
        project, actual = declared(), writer.state.read([workspace_id])
        if workspace_id not in known(project, actual):
            raise ApiError(404, f"workspace '{workspace_id}' not found")
        view = workspace_view(project, actual, workspace_id, True)
        return with_live(view, workspace_id) if refresh else view

    @router.get("/{workspace_id}/functions", summary="A workspace's functions")
    def list_functions(workspace_id: WORKSPACE_ID, user: User, refresh: REFRESH = False) -> dict[str, Any]:
        return {"functions": get_workspace(workspace_id, user, refresh)["functions"]}

    @router.get("/{workspace_id}/functions/{function_id}", summary="One function, declared and deployed")
    def get_function(workspace_id: WORKSPACE_ID, function_id: FUNCTION_ID, user: User,
                     refresh: REFRESH = False) -> dict[str, Any]:
        authorize(user, workspace_id, "read")
        project, actual = declared(), writer.state.read([workspace_id])
        if workspace_id not in known(project, actual):
            raise ApiError(404, f"workspace '{workspace_id}' not found")
        address = f"{workspace_id}/{function_id}"
        fn = next((f for f in project.functions() if f.address == address), None)
        record = actual.functions.get(address)
        if fn is None and record is None:
            raise ApiError(404, f"function '{address}' not found")
        view = function_view(workspace_id, function_id, fn, record,
                             writer.desired_specs([fn])[address] if fn else None)
        return with_live(view, f"{workspace_id}/{function_id}") if refresh else view

    # ------------------------------------------------------------ writes

    def run(write: Write, wait: bool, created: bool) -> JSONResponse:
        try:
            writer.submit(write)
        except WriteFailed as exc:  # the API is stopping
            raise ApiError(exc.status, str(exc)) from None
        if not write.committed.wait(WAIT_S):
            raise ApiError(503, "the write did not get the state lock in time; it was not made")
        if write.error is not None:
            raise ApiError(write.error.status, str(write.error))
        if write.task is None:  # the project already says what the request asks
            return JSONResponse({"status": "unchanged", "commit": None, "task_id": None,
                                 "message": "nothing to change: the manifests already declare this"}, status_code=200)
        poll = f"{TASKS_PATH}/{write.task.id}"
        body: dict[str, Any] = {"task_id": write.task.id, "commit": write.commit, "message": write.change.message
                                if write.change else "", "poll": poll}
        if not wait:
            return JSONResponse({**body, "status": write.task.status}, status_code=202, headers={"Location": poll})
        write.done.wait(WAIT_S)
        task = write.task
        result = write.result or {}
        if task.status != "completed":
            return JSONResponse({"detail": result.get("error") or task.message, **body, "status": task.status},
                                status_code=502)
        return JSONResponse({**body, "status": task.status, "result": result}, status_code=201 if created else 200)

    def checked_fields(body: dict[str, Any], allowed: frozenset[str], what: str) -> None:
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ApiError(422, f"unknown field(s) for a {what}: {', '.join(unknown)} "
                                f"(allowed: {', '.join(sorted(allowed))})")

    def checked_name(value: Any, rule: names.NameRule, what: str) -> str:
        if not isinstance(value, str):
            raise ApiError(422, f"name: the {what} needs a `name` (a string)")
        problem = rule.problem(value)
        if problem is not None:
            raise ApiError(422, f"name: {problem}")
        return value

    def code_of(body: dict[str, Any], handler_hint: str) -> UploadedCode | None:
        if "code" not in body:
            return None
        handler = body.get("handler", handler_hint)
        if not isinstance(handler, str) or names.MODULE_NAME.problem(handler):
            raise ApiError(422, f"handler: {handler!r} is not a module name")
        try:
            return decode_code(body["code"], handler)
        except CodeRejected as exc:
            raise ApiError(exc.status, str(exc)) from None

    @router.post("", status_code=202, summary="Create a workspace", responses={409: _ERROR, 422: _ERROR})
    def create_workspace(body: BODY, user: User, wait: WAIT = False) -> JSONResponse:
        checked_fields(body, workspace_fields, "workspace")
        name = checked_name(body.get("name"), names.DNS_LABEL, "workspace")
        authorize(user, name, "write")
        entry = dict(body)
        return run(Write(user.name, name, None, lambda p, rb: changes.create_workspace(p, entry, rb)), wait, True)

    @router.patch("/{workspace_id}", status_code=202, summary="Change a workspace's settings (merge patch)",
                  responses={409: _ERROR, 422: _ERROR})
    def patch_workspace(workspace_id: WORKSPACE_ID, body: BODY, user: User, wait: WAIT = False) -> JSONResponse:
        authorize(user, workspace_id, "write")
        checked_fields(body, workspace_fields, "workspace")
        if body.get("name", workspace_id) != workspace_id:
            raise ApiError(422, "name: a workspace cannot be renamed; create a new one")
        patch = {k: v for k, v in body.items() if k != "name"}
        if not patch:
            raise ApiError(422, "nothing to change: the body names no field")
        return run(Write(user.name, workspace_id, None,
                         lambda p, rb: changes.update_workspace(p, workspace_id, patch, rb)), wait, False)

    @router.delete("/{workspace_id}", status_code=202, summary="Delete a workspace and its functions",
                   responses={409: _ERROR})
    def delete_workspace(workspace_id: WORKSPACE_ID, user: User, wait: WAIT = False) -> JSONResponse:
        authorize(user, workspace_id, "write")
        return run(Write(user.name, workspace_id, None,
                         lambda p, rb: changes.delete_workspace(p, workspace_id, rb)), wait, False)

    @router.post("/{workspace_id}/functions", status_code=202, summary="Create a function (Base64 `code`)",
                 responses={400: _ERROR, 409: _ERROR, 413: _ERROR, 422: _ERROR})
    def create_function(workspace_id: WORKSPACE_ID, body: BODY, user: User, wait: WAIT = False) -> JSONResponse:
        authorize(user, workspace_id, "write")
        checked_fields(body, function_fields, "function")
        checked_name(body.get("name"), names.FUNCTION_NAME, "function")
        code = code_of(body, DEFAULT_HANDLER)
        if code is None and "source" not in body:
            raise ApiError(422, "code: a new function needs its `code` (Base64), or the `source` directory it uses")
        entry = {k: v for k, v in body.items() if k != "code"}
        return run(Write(user.name, workspace_id, entry["name"],
                         lambda p, rb: changes.create_function(p, workspace_id, entry, code, rb)), wait, True)

    @router.patch("/{workspace_id}/functions/{function_id}", status_code=202,
                  summary="Change a function's settings and/or code",
                  responses={400: _ERROR, 409: _ERROR, 413: _ERROR, 422: _ERROR})
    def patch_function(workspace_id: WORKSPACE_ID, function_id: FUNCTION_ID, body: BODY, user: User,
                       wait: WAIT = False) -> JSONResponse:
        authorize(user, workspace_id, "write")
        checked_fields(body, function_fields, "function")
        if body.get("name", function_id) != function_id:
            raise ApiError(422, "name: a function cannot be renamed; create a new one")
        current = next((f for f in declared().functions() if f.address == f"{workspace_id}/{function_id}"), None)
        code = code_of(body, current.handler if current else DEFAULT_HANDLER)
        patch = {k: v for k, v in body.items() if k not in ("code", "name")}
        if not patch and code is None:
            raise ApiError(422, "nothing to change: the body names no field and no code")
        return run(Write(user.name, workspace_id, function_id,
                         lambda p, rb: changes.update_function(p, workspace_id, function_id, patch, code, rb)),
                   wait, False)

    @router.delete("/{workspace_id}/functions/{function_id}", status_code=202, summary="Delete a function",
                   responses={409: _ERROR})
    def delete_function(workspace_id: WORKSPACE_ID, function_id: FUNCTION_ID, user: User,
                        wait: WAIT = False) -> JSONResponse:
        authorize(user, workspace_id, "write")
        return run(Write(user.name, workspace_id, function_id,
                         lambda p, rb: changes.delete_function(p, workspace_id, function_id, rb)), wait, False)

    app.include_router(router)
    app.include_router(observe_routes.router(ctx))
    app.include_router(builder_routes.router(ctx))
    from faasops.console import add_console  # the web console at `/`, on top of the routes above

    add_console(app, ctx)
    return app


def _without_token(request: Request, text: str) -> str:
    """``text`` without the caller's token, should a client send it where a name belongs (an
    error message repeats the value it refuses)."""
    _, _, credentials = request.headers.get("authorization", "").partition(" ")
    credentials = credentials.strip()
    return text.replace(credentials, "[token]") if len(credentials) >= 8 else text


class _BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` with 413 (before reading them
    when Content-Length says so, else while they stream)."""

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PATCH", "PUT"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _answer(send, 413, f"the request body is larger than {self.max_bytes} bytes")
            return
        seen = 0

        async def counted() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await _answer(send, 413, f"the request body is larger than {self.max_bytes} bytes")


class _TooLarge(Exception):
    pass


async def _answer(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
