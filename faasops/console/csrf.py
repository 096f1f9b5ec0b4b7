"""Cross-site request forgery protection of the console's writes.

A write (every POST) must pass two checks, else it answers 403 and changes nothing:

- it comes from this origin: ``Origin`` (or, when a browser leaves it out, ``Referer``) names the
  scheme, host and port the request was sent to; a request with neither is refused;
- it carries the session's CSRF token: the ``csrf_token`` form field every form holds, or the
  ``X-CSRF-Token`` header for scripted requests.

The session cookie is also ``SameSite=Strict``, so a browser does not send it with a request
another site starts; these checks do not rely on that alone.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


def own_origin(request: Request) -> str:
    """The origin the browser sent ``request`` to (scheme from the server, host from ``Host``)."""
    return f"{request.url.scheme}://{request.headers.get('host', '')}".lower()


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def same_origin(request: Request) -> bool:
    """Whether ``Origin`` (else ``Referer``) says the request comes from this console's pages."""
    origin = request.headers.get("origin")
    if origin is not None:
        return origin.lower() == own_origin(request)
    referer = request.headers.get("referer")
    return referer is not None and _origin_of(referer) == own_origin(request)


def token_matches(request: Request, expected: str, form_value: str | None) -> bool:
    """Whether the request carries ``expected`` (form field, else header); constant time."""
    sent = form_value if form_value is not None else request.headers.get(CSRF_HEADER)
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())
