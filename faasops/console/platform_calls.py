"""The console's calls to the Platform API: the API's own routes, called in process as the
signed-in session's principal.

Going through the routes (rather than beside them) means the console cannot show more than
the API would answer the same token: scope checks, 404s outside the scope, validation and
error messages all come from one place.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from faasops.api.access import IN_PROCESS_PRINCIPAL, Principal

#: Longest the console waits for one API call (an invoke, a plan): then it shows a timeout.
CALL_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Answer:
    """An API answer: status, JSON body (None when it is not JSON), and how long it took."""

    status: int
    body: Any
    elapsed_s: float

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def detail(self) -> str:
        """The error message of an error answer (``{"detail": …}``)."""
        if isinstance(self.body, dict) and isinstance(self.body.get("detail"), str):
            return self.body["detail"]
        return f"the API answered {self.status}"


class PlatformCalls:
    """API calls as ``principal``, over an ASGI transport straight into ``app``."""

    def __init__(self, app: Any, principal: Principal):
        self._app = app
        self._principal = principal

    async def _as_principal(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self._app({**scope, IN_PROCESS_PRINCIPAL: self._principal}, receive, send)

    async def call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                   json: Any = None) -> Answer:
        transport = httpx.ASGITransport(app=self._as_principal)
        async with httpx.AsyncClient(transport=transport, base_url="http://console.in-process",
                                     timeout=CALL_TIMEOUT_S) as client:
            started = time.perf_counter()
            response = await client.request(method, path, params=params, json=json)
            elapsed = time.perf_counter() - started
        try:
            body = response.json()
        except ValueError:
            body = None
        return Answer(response.status_code, body, elapsed)

    async def get(self, path: str, **params: Any) -> Answer:
        return await self.call("GET", path, params={k: v for k, v in params.items() if v is not None})
