"""A browser-like HTTP client of the console: a cookie jar, the ``Origin`` a browser sends,
and the CSRF token read from the page's forms."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

#: Where the browser test leaves its screenshots (git-ignored).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"


class ConsoleClient:
    """One browser session on the console at ``url``."""

    def __init__(self, url: str):
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=120.0, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def sign_in(self, token: str) -> httpx.Response:
        return self.http.post("/login", data={"token": token, "next": "/workspaces"}, headers={"Origin": self.url})

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def csrf_token(self, page: str = "/workspaces") -> str:
        found = _CSRF.search(self.get(page).text)
        assert found, f"no CSRF token in the forms of {page}"
        return found.group(1)

    def post(self, path: str, data: dict[str, str], *, csrf: bool = True, origin: str | None = "same",
             form_page: str = "/workspaces") -> httpx.Response:
        """A form POST as the browser sends it: with the page's CSRF token and this Origin,
        unless told otherwise (``origin=None`` sends none, another string sends that)."""
        fields = {**data, **({"csrf_token": self.csrf_token(form_page)} if csrf else {})}
        headers = {} if origin is None else {"Origin": self.url if origin == "same" else origin}
        return self.http.post(path, data=fields, headers=headers)
