"""Day-2 reads and calls of the Platform API: invoke a function, read its logs, its Loki logs
and its metrics — the same providers ``faasops invoke``, ``faasops logs`` and ``faasops metrics``
use, answered as JSON.

======  =========================================================  =======  ==========================
POST    ``/api/workspaces/{ws}/functions/{fn}/invoke``             invoke   the function's answer
GET     ``/api/workspaces/{ws}/logs?limit=N``                      read     the logs slot, newest first
GET     ``/api/workspaces/{ws}/functions/{fn}/logs?limit=N``       read     the logs slot, newest first
GET     ``/api/functions/{ws}.{fn}/loki-logs?limit=N``             read     Loki, by ``function_id``
GET     ``/api/functions/{ws}.{fn}/metrics?since=1h&step=1m``      read     the metrics slot
======  =========================================================  =======  ==========================

The logs slot is ``providers.logs``: the local invocation log on the local backend, DynamoDB on
aws. Loki is the ``loki`` type of that slot (``providers.logs: {type: loki, …}`` or nested as
``providers.logs.loki``), as for ``faasops logs --source loki``. A workspace or function that is
neither declared nor deployed answers 404, as one outside the token's scope does. A provider
that is not configured answers 503, one that fails or cannot be reached 502 — with the
provider's one-line message, which never holds a credential (those stay in environment
variables).
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field, model_validator

from faasops.api.access import Principal, authenticated, authorize, not_found
from faasops.api.context import ApiContext
from faasops.engine import Engine
from faasops.errors import FaasopsError, ProviderError
from faasops.names import DNS_LABEL, FUNCTION_NAME, split_address
from faasops.observe import parse_duration, stamp
from faasops.providers import InvokeRequest, LogRecord, MetricSeries
from faasops.runtime.http_syntax import is_field_value, is_token, wire_bytes

#: Largest request body ``invoke`` passes on, decoded (``faasops up``'s --max-body-size default).
MAX_INVOKE_BODY_BYTES = 10 << 20
#: Most log entries one request returns (``faasops logs`` allows more, one page is enough here).
MAX_LOG_LIMIT = 10_000
DEFAULT_LOG_LIMIT = 50
LOKI = "loki"

WorkspaceId = Annotated[str, PathParam(max_length=63, description="The workspace's name.")]
FunctionName = Annotated[str, PathParam(max_length=63, description="The function's name.")]
GlobalFunctionId = Annotated[str, PathParam(max_length=127, description="The function_id label: `<workspace>.<function>`.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LOG_LIMIT, description="Most entries returned, newest first.")]
Since = Annotated[str | None, Query(max_length=16, description="Only entries newer than this: 30s, 15m, 2h, 1d.")]
Caller = Annotated[Principal, Depends(authenticated)]
Grep = Annotated[str | None, Query(max_length=1000, description="Only entries whose message contains this text.")]

_PROVIDER_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token"},
    404: {"description": "No such workspace or function, or outside the token's scope"},
    422: {"description": "Invalid parameter"},
    502: {"description": "The provider (function, log store, Loki, Prometheus) failed or cannot be reached"},
    503: {"description": "The provider is not configured for this project"},
}


# ---------------------------------------------------------------------------------- models


class InvokeCall(BaseModel):
    """A request for the function. ``body`` is UTF-8 text, ``body_base64`` any bytes; give one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"method": "POST", "path": "/items?id=7", "headers": {"content-type": "application/json"},
         "body": "{\"name\": \"x\"}"},
    ]})

    method: str = Field("GET", min_length=1, max_length=32, description="HTTP method.")
    path: str = Field("/", max_length=8192, description="Path and query below the function's route.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers (UTF-8 values).")
    body: str | None = Field(None, description="The request body as text (sent as UTF-8).")
    body_base64: str | None = Field(None, description="The request body as Base64 (binary bodies).")

    @model_validator(mode="after")
    def _one_body(self) -> "InvokeCall":
        if self.body is not None and self.body_base64 is not None:
            raise ValueError("give `body` or `body_base64`, not both")
        return self


class InvokeAnswer(BaseModel):
    """What the function answered. ``body`` is the body as text when it is UTF-8, else null;
    ``body_base64`` is always the exact bytes."""

    status: int
    headers: list[tuple[str, str]] = Field(description="Response headers in order, repeats kept.")
    body: str | None
    body_base64: str
    error: str | None = Field(None, description="Set when the function failed (a trap or a traceback).")


class LogEntry(BaseModel):
    time: float = Field(description="Seconds since the epoch.")
    timestamp: str = Field(description="The same time, ISO 8601 UTC.")
    workspace_id: str
    function: str
    function_id: str
    message: str
    status: int | None = None
    duration_s: float | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class LogsAnswer(BaseModel):
    workspace_id: str
    function: str | None
    source: str = Field(description="The log source type (local, dynamodb, loki …).")
    entries: list[LogEntry] = Field(description="Newest first.")


class MetricSeriesModel(BaseModel):
    name: str
    unit: str
    points: list[tuple[float, float]] = Field(description="[time, value] pairs, oldest first.")


class MetricsAnswer(BaseModel):
    function_id: str
    step_seconds: float
    source: str
    series: list[MetricSeriesModel]


# ---------------------------------------------------------------------------------- helpers


@contextmanager
def project_engine(ctx: ApiContext) -> Iterator[Engine]:
    """The engine for the project as the work tree declares it now."""
    with Engine.load(ctx.project_dir, ctx.environment) as engine:
        yield engine


def require_target(engine: Engine, workspace: str, function: str | None) -> None:
    """404 unless the workspace (and function) is declared in the manifests or recorded in the
    state: the same answer as outside the token's scope."""
    project = engine.project
    if function is None:
        if any(w.name == workspace for w in project.workspaces):
            return
        if workspace in engine.state.read([workspace]).workspaces:
            return
        raise not_found(workspace)
    address = f"{workspace}/{function}"
    if any(f.address == address for f in project.functions()):
        return
    if address in engine.state.read([workspace]).functions:
        return
    raise HTTPException(404, f"function '{address}' not found")


def operations(engine: Engine, slot: str, type_: str | None = None) -> tuple[Any, str]:
    """The provider of ``slot`` (of ``type_``) and its type, or 503 naming what is missing."""
    wanted = f"{slot} ({type_})" if type_ else slot
    if slot not in engine.project.providers:
        raise HTTPException(503, f"no {slot} provider is configured for this project (providers.{slot})")
    try:
        return engine.operations_provider(slot, type_), type_ or engine.project.provider(slot).type
    except FaasopsError as exc:
        raise HTTPException(503, f"no usable {wanted} provider for this project: {exc}") from None


@contextmanager
def upstream(what: str) -> Iterator[None]:
    """A provider failing (unreachable, refusing, answering nonsense) is the gateway's error: 502."""
    try:
        yield
    except ProviderError as exc:
        raise HTTPException(502, f"{what} failed: {exc}") from None


def checked_names(workspace: str, function: str | None) -> None:
    """422 for names no workspace or function can have (what faas.yaml would refuse)."""
    problem = DNS_LABEL.problem(workspace) or (FUNCTION_NAME.problem(function) if function is not None else None)
    if problem is not None:
        raise HTTPException(422, problem)


def global_function_id(function_id: str) -> tuple[str, str]:
    """``<ws>.<fn>`` (or ``<ws>/<fn>``) → (workspace, function); 422 when it is not one."""
    workspace, function = split_address(function_id)
    if not function:
        raise HTTPException(422, f"function_id {function_id!r} is not <workspace>.<function> (e.g. demo.hello)")
    checked_names(workspace, function)
    return workspace, function


def log_entry(record: LogRecord) -> LogEntry:
    return LogEntry(time=record.time, timestamp=stamp(record.time), workspace_id=record.workspace,
                    function=record.function, function_id=record.function_id, message=record.message,
                    status=record.status, duration_s=record.duration_s, labels=dict(record.labels))


def since_cutoff(since: str | None) -> float | None:
    if since is None:
        return None
    try:
        return time.time() - parse_duration(since)
    except FaasopsError as exc:
        raise HTTPException(422, f"since: {exc}") from None


def invoke_request(call: InvokeCall) -> InvokeRequest:
    """The provider request for ``call``; 400/422 for what no HTTP request can carry."""
    method = call.method.upper()
    if not is_token(method):
        raise HTTPException(422, f"method {call.method!r} is not an HTTP method")
    headers = []
    for name, value in call.headers.items():
        raw = value.encode("utf-8")
        if not is_token(name):
            raise HTTPException(422, f"header name {name!r} is not a valid HTTP header name")
        if not is_field_value(raw):
            raise HTTPException(422, f"header {name!r}: the value has CR, LF, NUL or another control character")
        headers.append((name.lower(), raw.decode("latin-1")))  # wire text, see InvokeRequest
    if call.body_base64 is not None:
        try:
            body = base64.b64decode(call.body_base64, validate=True)
        except (binascii.Error, ValueError):
            raise HTTPException(400, "body_base64 is not valid Base64") from None
    else:
        body = (call.body or "").encode("utf-8")
    if len(body) > MAX_INVOKE_BODY_BYTES:
        raise HTTPException(413, f"the request body is {len(body)} bytes; at most {MAX_INVOKE_BODY_BYTES} are passed on")
    path = call.path if call.path.startswith("/") else "/" + call.path
    if any(c in path for c in "\r\n\0 "):
        raise HTTPException(422, "path must not contain spaces, CR, LF or NUL (percent-encode them)")
    return InvokeRequest(method, path, headers, body)


def invoke_answer(status: int, headers: list[tuple[str, str]], body: bytes, error: str | None) -> InvokeAnswer:
    try:
        text: str | None = body.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    shown = [(name, wire_bytes(value).decode("utf-8", "replace")) for name, value in headers]
    return InvokeAnswer(status=status, headers=shown, body=text, body_base64=base64.b64encode(body).decode(),
                        error=error)


def series_model(series: MetricSeries) -> MetricSeriesModel:
    return MetricSeriesModel(name=series.name, unit=series.unit, points=[(t, v) for t, v in series.points])


# ---------------------------------------------------------------------------------- routes


def router(ctx: ApiContext) -> APIRouter:
    """The observe endpoints of the Platform API for the project ``ctx`` serves."""
    api = APIRouter(tags=["observe"], responses=_PROVIDER_ERRORS)

    @api.post("/api/workspaces/{workspace_id}/functions/{function_id}/invoke", response_model=InvokeAnswer,
              summary="Call the deployed function (needs `invoke` on the workspace)",
              responses={400: {"description": "body_base64 is not Base64"}, 413: {"description": "Body too large"}})
    def invoke(workspace_id: WorkspaceId, function_id: FunctionName, call: InvokeCall, caller: Caller) -> InvokeAnswer:
        authorize(caller, workspace_id, "invoke")
        checked_names(workspace_id, function_id)
        request = invoke_request(call)
        with project_engine(ctx) as engine:
            require_target(engine, workspace_id, function_id)
            invoker, _ = operations(engine, "invoker")
            try:
                response = invoker.invoke(workspace_id, function_id, request)
            except ProviderError as exc:
                raise HTTPException(502, f"invoking {workspace_id}/{function_id} failed: {exc}") from None
            except FaasopsError as exc:  # e.g. not deployed yet: the function is there, not its deployment
                raise HTTPException(409, str(exc)) from None
        return invoke_answer(response.status, response.headers, response.body, response.error)

    def read_logs(workspace: str, function: str | None, limit: int, since: str | None, grep: str | None,
                  source: str | None) -> LogsAnswer:
        cutoff = since_cutoff(since)
        with project_engine(ctx) as engine:
            require_target(engine, workspace, function)
            reader, kind = operations(engine, "logs", source)
            with upstream(f"reading logs from {kind}"):
                records = reader.read(workspace, function, limit=limit, since=cutoff, grep=grep)
        return LogsAnswer(workspace_id=workspace, function=function, source=kind,
                          entries=[log_entry(r) for r in records])

    @api.get("/api/workspaces/{workspace_id}/logs", response_model=LogsAnswer,
             summary="A workspace's logs from the logs slot (local log, DynamoDB), newest first")
    def workspace_logs(workspace_id: WorkspaceId, caller: Caller, limit: Limit = DEFAULT_LOG_LIMIT,
                       since: Since = None, grep: Grep = None) -> LogsAnswer:
        authorize(caller, workspace_id, "read")
        checked_names(workspace_id, None)
        return read_logs(workspace_id, None, limit, since, grep, None)

    @api.get("/api/workspaces/{workspace_id}/functions/{function_id}/logs", response_model=LogsAnswer,
             summary="A function's logs from the logs slot (local log, DynamoDB), newest first")
    def function_logs(workspace_id: WorkspaceId, function_id: FunctionName, caller: Caller,
                      limit: Limit = DEFAULT_LOG_LIMIT, since: Since = None, grep: Grep = None) -> LogsAnswer:
        authorize(caller, workspace_id, "read")
        checked_names(workspace_id, function_id)
        return read_logs(workspace_id, function_id, limit, since, grep, None)

    @api.get("/api/functions/{function_id}/loki-logs", response_model=LogsAnswer,
             summary="A function's pod logs from Loki, by its function_id label, newest first")
    def loki_logs(function_id: GlobalFunctionId, caller: Caller, limit: Limit = DEFAULT_LOG_LIMIT,
                  since: Since = None, grep: Grep = None) -> LogsAnswer:
        workspace, function = split_address(function_id)
        authorize(caller, workspace, "read")  # before any other answer: nothing leaks outside the scope
        workspace, function = global_function_id(function_id)
        return read_logs(workspace, function, limit, since, grep, LOKI)

    @api.get("/api/functions/{function_id}/metrics", response_model=MetricsAnswer,
             summary="A function's metrics over time (CPU, memory, replicas from Prometheus; "
                     "requests, errors, latency and CPU locally)")
    def metrics(function_id: GlobalFunctionId, caller: Caller,
                since: Annotated[str, Query(max_length=16, description="Window: 15m, 1h, 1d.")] = "1h",
                step: Annotated[str, Query(max_length=16, description="Resolution: 30s, 1m, 5m.")] = "1m") -> MetricsAnswer:
        workspace, function = split_address(function_id)
        authorize(caller, workspace, "read")
        workspace, function = global_function_id(function_id)
        try:
            window, bucket = parse_duration(since), parse_duration(step)
        except FaasopsError as exc:
            raise HTTPException(422, str(exc)) from None
        if window / bucket > 11_000:  # Prometheus' own limit on points per series
            raise HTTPException(422, f"since/step gives {int(window / bucket)} points; at most 11000 (use a larger step)")
        now = time.time()
        with project_engine(ctx) as engine:
            require_target(engine, workspace, function)
            source, kind = operations(engine, "metrics")
            with upstream(f"querying metrics from {kind}"):
                found = source.query(workspace, function, since=now - window, until=now, step_s=bucket)
        return MetricsAnswer(function_id=f"{workspace}.{function}", step_seconds=bucket, source=kind,
                             series=[series_model(s) for s in found])

    return api
