"""The web console: ``faasops api serve`` answers a browser at ``/`` with pages over the Platform
API.

Every page reads and writes through the API's own routes, called in process as the signed-in
session's principal (:mod:`faasops.console.platform_calls`), so the console shows exactly what
the API answers that token — the same scope checks, the same 404 for a workspace outside the
scope, the same 422 messages. Sign-in, the session cookie and CSRF protection are in
:mod:`faasops.console.sessions` and :mod:`faasops.console.csrf`; the pages in
:mod:`faasops.console.pages`. Templates and static assets ship in this package: nothing is
fetched from elsewhere at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from faasops.api.context import ApiContext


def add_console(app: "FastAPI", ctx: "ApiContext") -> None:
    """Serve the console at ``/`` of ``app`` (the Platform API of the project ``ctx`` serves)."""
    from faasops.console.pages import console_router, mount_static
    from faasops.console.sessions import SessionStore

    app.state.console_sessions = SessionStore()
    mount_static(app)
    app.include_router(console_router(app, ctx))
