"""The console's pages and the fragments its script refreshes.

======  ==============================================  ==========================================
GET     ``/``                                           to the workspaces (or the sign-in form)
GET     ``/login``, POST ``/login``, POST ``/logout``   sign in with an API token, sign out
GET     ``/workspaces``                                 workspaces the session may read
GET     ``/workspaces/{ws}``                            its functions: declared, deployed, drift
GET     ``/workspaces/{ws}/tasks``                      its task history
GET     ``/workspaces/{ws}/new-function``, POST         create a function from code in a textarea
GET     ``/workspaces/{ws}/functions/{fn}``             config, artifact, tasks, logs, chart, invoke
POST    ``/workspaces/{ws}/functions/{fn}/invoke``      call it, show status, headers, body, time
GET     ``/workspaces/{ws}/functions/{fn}/code``, POST  edit its code
GET     ``/workspaces/{ws}/functions/{fn}/live/…``      fragments: ``tasks``, ``logs``, ``chart``
GET     ``/plan``                                       ``faasops plan --format markdown`` of the work tree
======  ==============================================  ==========================================

Every read and write goes through the Platform API's routes as the session's principal
(:class:`~faasops.console.platform_calls.PlatformCalls`), so a workspace outside the token's
scope answers the same 404 page as one that does not exist. Every POST passes the CSRF checks
of :mod:`faasops.console.csrf` first, else answers 403.
"""

from __future__ import annotations

import base64
import dataclasses
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from faasops.api.access import Principal
from faasops.api.context import ApiContext
from faasops.console.chart import DEFAULT_WINDOW, WINDOWS, chart
from faasops.console.code_errors import code_problems, numbered_lines
from faasops.console.csrf import CSRF_FIELD, same_origin, token_matches
from faasops.console.platform_calls import Answer, PlatformCalls
from faasops.console.sessions import COOKIE_NAME, Session, SessionStore
from faasops.errors import FaasopsError
from faasops.handler_contract import module_file
from faasops.model import DEFAULT_HANDLER
from faasops.observe import parse_duration

HERE = Path(__file__).parent
TASKS = "/api/v1"
#: Shown for a missing workspace or function and for one outside the session's scope alike.
NOT_FOUND = "Not found: no such workspace or function (or your token may not see it)."
#: What the console's pages may load: only this origin (no inline script, no CDN).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STARTER_CODE = '''from spin_sdk import http
from spin_sdk.http import Request, Response


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        return Response(200, {"content-type": "text/plain"}, b"Hello from the console!")
'''
LOG_LINES = 20
TASK_LINES = 10


def mount_static(app: FastAPI) -> None:
    """Serve the stylesheet and script shipped in this package at ``/static``."""
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="console-static")


def _segment(name: str) -> str:
    """``name`` as one URL path segment."""
    return quote(name, safe="")


def _workspace_api(workspace: str) -> str:
    return f"/api/workspaces/{_segment(workspace)}"


def _function_api(workspace: str, function: str) -> str:
    return f"{_workspace_api(workspace)}/functions/{_segment(function)}"


def _local_path(target: str | None) -> str:
    """``target`` when it is a path on this server (sign-in's ``next``), else the start page."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/workspaces"


def _digest(reference: str | None) -> str | None:
    """The ``sha256:…`` digest of an artifact reference, when it has one."""
    if not reference:
        return None
    _, at, digest = reference.rpartition("@")
    return digest if at else None


def _headers_text(text: str) -> dict[str, str]:
    """``Name: value`` lines (the invoke form's headers) as a mapping; blank lines are skipped."""
    headers: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip():
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
    return headers


def _pick_series(series: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Two series to draw: CPU and requests (the local log has both), else CPU and replicas
    (Prometheus), else the source's first two."""
    preferred = [s for name in ("cpu_cores", "requests", "replicas") for s in series if s["name"] == name]
    return (preferred + [s for s in series if s not in preferred])[:2]


class PageAnswer(Exception):
    """Raised by a page's checks to answer at once with ``response`` (sign in first, not found)."""

    def __init__(self, response: Response):
        super().__init__(response.status_code)
        self.response = response


def console_router(app: FastAPI, ctx: ApiContext) -> APIRouter:
    """The console's routes for the API ``app`` serving the project ``ctx`` names."""
    app.add_exception_handler(PageAnswer, lambda request, exc: exc.response)  # type: ignore[arg-type, attr-defined]
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    sessions: SessionStore = app.state.console_sessions
    router = APIRouter(include_in_schema=False)

    # ------------------------------------------------------------ plumbing

    def current(request: Request) -> Session | None:
        return sessions.get(request.cookies.get(COOKIE_NAME))

    def calls(session: Session) -> PlatformCalls:
        return PlatformCalls(app, session.principal)

    def page(request: Request, template: str, session: Session | None, status: int = 200,
             **values: Any) -> HTMLResponse:
        response = templates.TemplateResponse(request, template, {
            "session": session, "user": session.principal if session else None,
            "csrf_field": CSRF_FIELD, "csrf_token": session.csrf_token if session else "", **values,
        }, status_code=status)
        response.headers.update(SECURITY_HEADERS)
        return response

    def to_login(request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_segment(target)}", status_code=303)

    def not_found(request: Request, session: Session) -> HTMLResponse:
        return page(request, "error.html", session, 404, title="Not found", message=NOT_FOUND)

    def signed_in(request: Request) -> Session:
        """The request's session; else the answer is the sign-in form (and back here after)."""
        session = current(request)
        if session is None:
            raise PageAnswer(to_login(request))
        return session

    def found(request: Request, session: Session, answer: Answer) -> Answer:
        """``answer`` unless it is the API's 404: then the console's own, the same for a
        workspace or function that does not exist and for one outside the session's scope."""
        if answer.status == 404:
            raise PageAnswer(not_found(request, session))
        return answer

    def to_function(workspace: str, function: str, answer: Answer) -> Response:
        """After a write: the function's page, watching the write's task."""
        task = (answer.body or {}).get("task_id")
        return RedirectResponse(f"/workspaces/{_segment(workspace)}/functions/{_segment(function)}"
                                + (f"?task={_segment(task)}" if task else ""), status_code=303)

    def refused(request: Request, session: Session | None, why: str) -> HTMLResponse:
        return page(request, "error.html", session, 403, title="Refused", message=why)

    async def checked_write(request: Request) -> tuple[Session, Any] | HTMLResponse:
        """The session and form of a POST that passes the CSRF checks, else the 403 page."""
        session = current(request)
        form = await request.form()
        if session is None:
            return refused(request, None, "Your session has ended: sign in again.")
        token = form.get(CSRF_FIELD)
        if not same_origin(request) or not token_matches(request, session.csrf_token,
                                                          token if isinstance(token, str) else None):
            return refused(request, session, "This form did not come from this console's pages "
                                             "(cross-site request refused). Reload the page and try again.")
        return session, form

    # ------------------------------------------------------------ sign in / out

    @router.get("/")
    async def home(request: Request) -> Response:
        return RedirectResponse("/workspaces" if current(request) else "/login", status_code=303)

    @router.get("/login")
    async def login_form(request: Request, next: str = "/workspaces") -> Response:
        if current(request):
            return RedirectResponse(_local_path(next), status_code=303)
        return page(request, "login.html", None, next=_local_path(next), error=None)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        target = _local_path(str(form.get("next") or ""))
        if not same_origin(request):
            return refused(request, None, "Sign-in must come from this console's own sign-in page.")
        token = str(form.get("token") or "").strip()
        principal: Principal | None = app.state.tokens.principal(token) if token else None
        if principal is None:
            return page(request, "login.html", None, 401, next=target, error="That token is not valid.")
        session_id, _ = sessions.create(principal)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE_NAME, session_id, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        checked = await checked_write(request)
        if isinstance(checked, HTMLResponse):
            return checked
        sessions.end(request.cookies.get(COOKIE_NAME))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response

    # ------------------------------------------------------------ workspaces

    @router.get("/workspaces")
    async def workspaces(request: Request) -> Response:
        session = signed_in(request)
        answer = await calls(session).get("/api/workspaces")
        return page(request, "workspaces.html", session, workspaces=answer.body["workspaces"] if answer.ok else [],
                    error=None if answer.ok else answer.detail)

    @router.get("/workspaces/{workspace}")
    async def workspace(request: Request, workspace: str, refresh: bool = False) -> Response:
        session = signed_in(request)
        answer = found(request, session, await calls(session).get(_workspace_api(workspace),
                                                                   refresh=refresh or None))
        if not answer.ok:
            return page(request, "error.html", session, answer.status, title="Error", message=answer.detail)
        view = answer.body
        for fn in view["functions"]:
            fn["digest"] = _digest((fn.get("deployed") or {}).get("artifact"))
        return page(request, "workspace.html", session, ws=view, refreshed=refresh,
                    can_write=session.principal.allows(workspace, "write"))

    @router.get("/workspaces/{workspace}/tasks")
    async def workspace_tasks(request: Request, workspace: str) -> Response:
        session = signed_in(request)
        answer = found(request, session, await calls(session).get(f"{TASKS}/workspaces/{_segment(workspace)}/tasks",
                                                                   limit=100))
        return page(request, "tasks.html", session, workspace=workspace,
                    tasks=answer.body["tasks"] if answer.ok else [], error=None if answer.ok else answer.detail)

    # ------------------------------------------------------------ a function

    async def function_page(request: Request, session: Session, workspace: str, function: str,
                            status: int = 200, **extra: Any) -> Response:
        api = calls(session)
        base = _function_api(workspace, function)
        refresh = request.query_params.get("refresh") == "1"
        view = found(request, session, await api.get(base, refresh=refresh or None))
        if not view.ok:
            return page(request, "error.html", session, view.status, title="Error", message=view.detail)
        fn = view.body
        declared = fn.get("declared") or {}
        deployed = fn.get("deployed") or {}
        config = {k: v for k, v in declared.items() if k not in ("source_hash", "toolchain")}
        return page(
            request, "function.html", session, status, fn=fn, workspace=workspace, function=function,
            config_yaml=yaml.safe_dump(config, sort_keys=False, default_flow_style=False) if config else "",
            artifact=deployed.get("artifact"), digest=_digest(deployed.get("artifact")),
            replicas=declared.get("replicas"), autoscaling=declared.get("autoscaling"),
            source_hash=declared.get("source_hash"), refreshed=refresh,
            tasks_fragment=await tasks_values(api, workspace, function, request.query_params.get("task")),
            logs_fragment=await logs_values(api, workspace, function),
            chart_fragment=await chart_values(api, workspace, function, request.query_params.get("since")),
            windows=WINDOWS, can_write=session.principal.allows(workspace, "write"),
            can_invoke=session.principal.allows(workspace, "invoke"),
            **{"invoke_form": {"method": "GET", "path": "/", "headers": "", "body": ""}, "invoke": None, **extra},
        )

    async def tasks_values(api: PlatformCalls, workspace: str, function: str, task_id: str | None) -> dict[str, Any]:
        listed = await api.get(f"{TASKS}/workspaces/{_segment(workspace)}/tasks", limit=50)
        tasks = [t for t in (listed.body or {}).get("tasks", []) if t.get("function") in (function, None)][:TASK_LINES]
        watched = None
        if task_id:
            polled = await api.get(f"{TASKS}/tasks/{_segment(task_id)}")
            watched = polled.body if polled.ok else None
        running = any(t["status"] in ("pending", "running") for t in tasks + ([watched] if watched else []))
        return {"tasks": tasks, "watched": watched, "running": running, "task_id": task_id,
                "error": None if listed.ok else listed.detail}

    async def logs_values(api: PlatformCalls, workspace: str, function: str) -> dict[str, Any]:
        answer = await api.get(f"{_function_api(workspace, function)}/logs", limit=LOG_LINES)
        return {"entries": answer.body["entries"] if answer.ok else [], "source": (answer.body or {}).get("source"),
                "error": None if answer.ok else answer.detail}

    async def chart_values(api: PlatformCalls, workspace: str, function: str, since: str | None) -> dict[str, Any]:
        window = next((w for w in WINDOWS if w[1] == since), next(w for w in WINDOWS if w[1] == DEFAULT_WINDOW))
        _, since_text, step = window
        until = time.time()
        answer = await api.get(f"/api/functions/{_segment(workspace)}.{_segment(function)}/metrics",
                               since=since_text, step=step)
        if not answer.ok:
            return {"charts": [], "since": since_text, "error": answer.detail, "source": None}
        start = until - parse_duration(since_text)
        charts = [chart(s["name"], s["unit"], [tuple(p) for p in s["points"]], start, until)
                  for s in _pick_series(answer.body["series"])]
        return {"charts": charts, "since": since_text, "error": None, "source": answer.body.get("source")}

    @router.get("/workspaces/{workspace}/functions/{function}")
    async def function_view(request: Request, workspace: str, function: str) -> Response:
        session = signed_in(request)
        return await function_page(request, session, workspace, function)

    async def fragment(request: Request, workspace: str, function: str, part: str, values: Any) -> Response:
        """The ``_{part}.html`` fragment the page's script swaps in (401 once signed out)."""
        session = current(request)
        if session is None:
            return Response("signed out", status_code=401)
        target = await calls(session).get(_function_api(workspace, function))
        if target.status == 404:
            return Response(NOT_FOUND, status_code=404)
        return page(request, f"_{part}.html", session, workspace=workspace, function=function,
                    **{f"{part}_fragment": await values(calls(session))})

    @router.get("/workspaces/{workspace}/functions/{function}/live/{part}")
    async def live(request: Request, workspace: str, function: str, part: str, task: str | None = None,
                   since: str | None = None) -> Response:
        parts = {"tasks": lambda api: tasks_values(api, workspace, function, task),
                 "logs": lambda api: logs_values(api, workspace, function),
                 "chart": lambda api: chart_values(api, workspace, function, since)}
        if part not in parts:
            return Response(NOT_FOUND, status_code=404)
        return await fragment(request, workspace, function, part, parts[part])

    @router.post("/workspaces/{workspace}/functions/{function}/invoke")
    async def invoke(request: Request, workspace: str, function: str) -> Response:
        checked = await checked_write(request)
        if isinstance(checked, HTMLResponse):
            return checked
        session, form = checked
        values = {k: str(form.get(k) or "") for k in ("method", "path", "headers", "body")}
        call = {"method": values["method"] or "GET", "path": values["path"] or "/",
                "headers": _headers_text(values["headers"]), "body": values["body"].replace("\r\n", "\n")}
        answer = await calls(session).call(
            "POST", f"{_function_api(workspace, function)}/invoke", json=call)
        found(request, session, answer)
        result = {"ok": answer.ok, "elapsed_ms": round(answer.elapsed_s * 1000, 1),
                  **(answer.body if answer.ok else {"detail": answer.detail, "api_status": answer.status})}
        return await function_page(request, session, workspace, function, invoke_form=values, invoke=result)

    # ------------------------------------------------------------ code

    def current_code(workspace: str, function: str) -> tuple[str, str]:
        """The function's handler module as the work tree holds it, and its file name."""
        from faasops.manifest import load_project

        project = load_project(ctx.project_dir, ctx.environment)
        declared = next((f for f in project.functions() if f.address == f"{workspace}/{function}"), None)
        if declared is None:
            return "", module_file(DEFAULT_HANDLER)
        path = declared.source_dir / module_file(declared.handler)
        try:
            return path.read_text(encoding="utf-8", errors="replace"), module_file(declared.handler)
        except FileNotFoundError:
            return "", module_file(declared.handler)

    def code_page(request: Request, session: Session, workspace: str, function: str | None, code: str,
                  file: str, status: int = 200, detail: str | None = None, name: str = "") -> HTMLResponse:
        problems = code_problems(detail) if detail else []
        return page(request, "code.html", session, status, workspace=workspace, function=function, name=name,
                    code=code, file=file, problems=problems,
                    lines=numbered_lines(code, problems, file) if problems else [],
                    can_write=session.principal.allows(workspace, "write"))

    @router.get("/workspaces/{workspace}/new-function")
    async def new_function_form(request: Request, workspace: str) -> Response:
        session = signed_in(request)
        found(request, session, await calls(session).get(_workspace_api(workspace)))
        return code_page(request, session, workspace, None, STARTER_CODE, module_file(DEFAULT_HANDLER))

    @router.post("/workspaces/{workspace}/new-function")
    async def create_function(request: Request, workspace: str) -> Response:
        checked = await checked_write(request)
        if isinstance(checked, HTMLResponse):
            return checked
        session, form = checked
        name = str(form.get("name") or "").strip()
        code = str(form.get("code") or "").replace("\r\n", "\n")
        answer = await calls(session).call("POST", f"{_workspace_api(workspace)}/functions",
                                           json={"name": name, "code": base64.b64encode(code.encode()).decode()})
        if answer.status == 404 and not session.principal.allows(workspace, "read"):
            return not_found(request, session)
        if not answer.ok:
            return code_page(request, session, workspace, None, code, module_file(DEFAULT_HANDLER),
                             answer.status, answer.detail, name)
        return to_function(workspace, name, answer)

    @router.get("/workspaces/{workspace}/functions/{function}/code")
    async def edit_code_form(request: Request, workspace: str, function: str) -> Response:
        session = signed_in(request)
        found(request, session, await calls(session).get(_function_api(workspace, function)))
        code, file = await run_in_threadpool(current_code, workspace, function)
        return code_page(request, session, workspace, function, code, file)

    @router.post("/workspaces/{workspace}/functions/{function}/code")
    async def save_code(request: Request, workspace: str, function: str) -> Response:
        checked = await checked_write(request)
        if isinstance(checked, HTMLResponse):
            return checked
        session, form = checked
        code = str(form.get("code") or "").replace("\r\n", "\n")
        answer = await calls(session).call("PATCH", _function_api(workspace, function),
                                           json={"code": base64.b64encode(code.encode()).decode()})
        found(request, session, answer)
        if not answer.ok:
            _, file = await run_in_threadpool(current_code, workspace, function)
            return code_page(request, session, workspace, function, code, file, answer.status, answer.detail)
        return to_function(workspace, function, answer)

    # ------------------------------------------------------------ plan preview

    def plan_markdown(principal: Principal, visible: list[str]) -> str:
        """``faasops plan --format markdown`` of the work tree, limited to ``visible`` workspaces
        unless ``principal`` is an admin (a plan line names what it changes)."""
        from faasops.engine import Engine
        from faasops.plan import PlanOptions, Selection
        from faasops.plan_render import render_markdown

        selection = Selection() if principal.is_admin else Selection(tuple(visible))
        with Engine.load(ctx.project_dir, ctx.environment) as engine:
            plan = engine.plan(PlanOptions(selection=selection))
        if not principal.is_admin:  # warnings may name any workspace
            plan = dataclasses.replace(plan, warnings=())
        return render_markdown(plan)

    @router.get("/plan")
    async def plan_preview(request: Request) -> Response:
        session = signed_in(request)
        listed = await calls(session).get("/api/workspaces")
        visible = [w["name"] for w in (listed.body or {}).get("workspaces", [])]
        markdown, error = None, None
        if visible or session.principal.is_admin:
            try:
                markdown = await run_in_threadpool(plan_markdown, session.principal, visible)
            except FaasopsError as exc:
                error = str(exc)
        return page(request, "plan.html", session, markdown=markdown, error=error, visible=visible)

    return router
