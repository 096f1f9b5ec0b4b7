"""The Builder API over HTTP: :func:`create_app` builds the FastAPI application.

======  =============================================  ==========================================
POST    ``/api/v1/build``                              upload (multipart ``source`` + ``spec``),
                                                       build → 202 + task
POST    ``/api/v1/build-and-push``                     upload, build, push → 202 + task
POST    ``/api/v1/push``                               push an earlier build by key → 202 + task
POST    ``/api/v1/scaffold``                           render the manifests → 200
POST    ``/api/v1/deploy``                             render + apply → 202 + task
GET     ``/api/v1/tasks/{task_id}``                    one task (poll it)
GET     ``/api/v1/workspaces/{workspace_id}/tasks``    a workspace's task history, newest first
GET     ``/api/v1/builds/{build_key}/component``       a built component (``application/wasm``)
GET     ``/api/v1/info``                               toolchain and configured providers
GET     ``/healthz``                                   liveness/readiness (no auth)
GET     ``/docs``, ``/openapi.json``                   the API's documentation (no auth)
======  =============================================  ==========================================

Every ``/api/`` request needs ``Authorization: Bearer <token>``; the check runs as ASGI middleware
before any byte of the body is read, so an anonymous client can't make the service spool an
upload. Errors answer ``{"detail": "…"}``: 401 (token), 404, 411/413 (upload size), 422 (invalid
request, archive or handler — with located messages), 501 (no provider configured for it).
"""

from __future__ import annotations

import hmac
import os
from contextlib import asynccontextmanager
from typing import Annotated, Any, AsyncIterator

from fastapi import Depends, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPBearer

from faasops import __version__
from faasops.builder_service.config import ConfigError, ServiceConfig
from faasops.builder_service.models import DIGEST, ErrorModel, ServiceInfo
from faasops.builder_service.routes import ERRORS, ServiceEndpoints, add_builder_routes, validation_message
from faasops.builder_service.service import BuilderService, NotConfigured, NotFound
from faasops.builder_service.uploads import BodyLimit, Receive, Scope, Send, UploadRejected, answer_json
from faasops.builder_service.wire import API_PREFIX
from faasops.errors import FaasopsError

MIN_TOKEN_LENGTH = 16
UPLOAD_PATHS = frozenset({f"{API_PREFIX}/build", f"{API_PREFIX}/build-and-push"})
JSON_PATHS = frozenset({f"{API_PREFIX}/push", f"{API_PREFIX}/scaffold", f"{API_PREFIX}/deploy"})
MAX_JSON_BYTES = 1 << 20


def read_token(config: ServiceConfig) -> str:
    """The bearer token from the environment variable the config names."""
    name = config.auth.token_env
    token = os.environ.get(name, "")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ConfigError(
            f"the builder needs its bearer token in the environment variable {name} "
            f"({'unset' if not token else 'shorter than ' + str(MIN_TOKEN_LENGTH) + ' characters'}); "
            "e.g. from a Kubernetes Secret"
        )
    return token


class BearerAuth:
    """ASGI middleware: ``/api/`` requests need ``Authorization: Bearer <token>``."""

    def __init__(self, app: Any, token: str):
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            header = dict(scope.get("headers") or []).get(b"authorization", b"")
            scheme, _, credentials = header.partition(b" ")
            if scheme.lower() != b"bearer" or not credentials.strip():
                await _unauthorized(send, "missing bearer token (send `Authorization: Bearer <token>`)")
                return
            if not hmac.compare_digest(credentials.strip(), self._token):
                await _unauthorized(send, "invalid bearer token")
                return
        await self.app(scope, receive, send)


async def _unauthorized(send: Send, detail: str) -> None:
    async def with_challenge(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message["headers"], (b"www-authenticate", b"Bearer")]
        await send(message)

    await answer_json(with_challenge, 401, detail)


def create_app(config: ServiceConfig, service: BuilderService | None = None) -> FastAPI:
    """The Builder API application for ``config`` (``service`` to pass one built elsewhere).
    Providers are created here, so a bad config fails before the server listens."""
    token = read_token(config)
    svc = service or BuilderService(config)
    endpoints = ServiceEndpoints(svc)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        svc.close()

    app = FastAPI(
        title="faasops Builder API",
        version=__version__,
        summary="Build Python HTTP handlers into Spin components, push them as OCI artifacts, "
                "render and deploy SpinApps — for CI runners without the toolchain or credentials.",
        lifespan=lifespan,
    )
    app.state.service = svc
    bearer = HTTPBearer(auto_error=False, description="The token from the service's `auth.token_env`.")
    secured = [Depends(bearer)]  # documents the scheme in /docs; BearerAuth enforces it

    @app.exception_handler(UploadRejected)
    async def _rejected(request: Request, exc: UploadRejected) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(NotConfigured)
    async def _not_configured(request: Request, exc: NotConfigured) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=501)

    @app.exception_handler(FaasopsError)
    async def _invalid(request: Request, exc: FaasopsError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": validation_message(exc.errors())}, status_code=422)

    @app.get("/healthz", tags=["service"], summary="Liveness and readiness")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(f"{API_PREFIX}/info", response_model=ServiceInfo, tags=["service"], dependencies=secured,
             responses=ERRORS, summary="Toolchain (part of every build key) and configured providers")
    def info() -> dict[str, Any]:
        return svc.info()

    add_builder_routes(app.router, lambda: endpoints, lambda request, workspace, action: True, secured)

    @app.get(f"{API_PREFIX}/builds/{{build_key}}/component", tags=["build"], dependencies=secured,
             response_class=FileResponse, responses={**ERRORS, 404: {"model": ErrorModel}},
             summary="Download a built component (application/wasm)")
    def component(build_key: Annotated[str, PathParam(pattern=DIGEST)]) -> FileResponse:
        build = svc.find_build(build_key)
        return FileResponse(build.wasm_path, media_type="application/wasm",
                            headers={"Docker-Content-Digest": build.wasm_digest})

    # Added last = outermost: the token is checked before the size, and both before the body.
    app.add_middleware(BodyLimit, max_bytes=config.limits.max_upload_bytes, paths=UPLOAD_PATHS)
    app.add_middleware(BodyLimit, max_bytes=MAX_JSON_BYTES, paths=JSON_PATHS)
    app.add_middleware(BearerAuth, token=token)
    return app

