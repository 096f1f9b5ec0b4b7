"""What Spin's HTTP trigger does to a request before the guest sees it, for route ``/...``.

On the cluster every function is a Spin app of its own whose one component has the route
``/...``; the local server mounts each function under ``/<workspace>/<function>``. To give the
guest the request exactly as on the cluster (and as under ``spin up``), the mount prefix is
taken off the path first, then the trigger's work is replayed. The values follow Spin v3.6.3
(the 3.x line that serves spin-sdk 3.x components):

- ``crates/trigger-http/src/headers.rs`` ``compute_default_headers``: ``spin-path-info`` is
  the route's trailing wildcard, ``spin-full-url`` is ``{scheme}://{Host}{path and query}``,
  ``spin-matched-route`` and ``spin-raw-component-route`` are the route as written (``/...``),
  ``spin-component-route`` the route without ``/...`` (empty), ``spin-base-path`` ``/`` and
  ``spin-client-addr`` the peer's ``ip:port``.
- ``prepare_request_headers`` (same file) turns every client header value into UTF-8 text
  (a value that is not UTF-8 fails the request) and the ``wasi.rs`` executor appends the
  ``spin-*`` headers *after* the client's into an ``http::HeaderMap``: a client header of the
  same name is kept, the trigger's value follows it in the same name group, and spin-sdk's
  ``dict(...)`` of the entries keeps the last one, so the guest reads the trigger's value.
- ``crates/routes/src/lib.rs`` ``trailing_wildcard``: the path is matched as received (still
  percent-encoded), the query is not part of it, a trailing slash is kept (``/a/`` → ``/a/``)
  and ``/`` stays ``/``.
- wasmtime-wasi-http's ``HostIncomingRequest::new`` drops ``DEFAULT_FORBIDDEN_HEADERS`` (among
  them ``host``) from what the guest sees; ``path-with-query`` is the path and query as sent,
  which is what spin-sdk 3.4.1 hands the handler as ``Request.uri``.
"""

from __future__ import annotations

from dataclasses import dataclass

from faasops.runtime.http_syntax import wire_bytes
from faasops.runtime.messages import HttpRequest
from faasops.runtime.wasi_http import IncomingRequest

ROUTE = "/..."
"""The route of every function's component (its own app on the cluster)."""

# wasmtime-wasi-http's DEFAULT_FORBIDDEN_HEADERS (wasi:http 0.2): never shown to the guest.
FORBIDDEN_INCOMING = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "transfer-encoding", "upgrade", "host", "http2-settings"})

DEFAULT_HOST = "localhost"  # what Spin assumes for a request without a Host header
IN_PROCESS_CLIENT_ADDR = "127.0.0.1:0"
"""``spin-client-addr`` of a request run in-process (``faasops invoke`` without a server)."""


class NotUtf8Header(ValueError):
    """A request header value is not UTF-8: Spin's trigger refuses the request (500)."""


@dataclass(frozen=True)
class GuestView:
    """The request as the guest sees it: target (path and query), headers (bytes), authority."""

    target: str
    headers: list[tuple[str, bytes]]
    authority: str


def unmounted_target(target: str, mount: str) -> str:
    """``target`` (path and query as received) with the local mount prefix taken off, so it reads
    as on the cluster: ``/ws/fn/post?x=1`` → ``/post?x=1``, ``/ws/fn`` and ``/ws/fn/`` → ``/``,
    ``/ws/fn?x=1`` → ``/?x=1``. A target outside the mount is returned unchanged."""
    if not target.startswith("/"):
        target = "/" + target
    path, sep, query = target.partition("?")
    base = mount.rstrip("/")
    if base and path == base:
        path = "/"
    elif base and path.startswith(base + "/"):
        path = path[len(base):]
    return path + sep + query


def spin_headers(target: str, host: str, scheme: str, client_addr: str) -> list[tuple[str, str]]:
    """The headers Spin's trigger adds for route ``/...``, in its order, for a request whose
    (unmounted) path and query is ``target``."""
    path = target.partition("?")[0]
    return [
        # The trailing wildcard of "/..." is the whole path; "/" (empty capture plus trailing
        # slash) stays "/".
        ("spin-path-info", path),
        ("spin-full-url", f"{scheme}://{host}{target}"),
        ("spin-matched-route", ROUTE),
        ("spin-base-path", "/"),
        ("spin-raw-component-route", ROUTE),
        ("spin-component-route", ROUTE.removesuffix("/...")),
        ("spin-client-addr", client_addr),
    ]


def guest_view(request: HttpRequest) -> GuestView:
    """What Spin's trigger gives the guest for ``request`` (see the module docstring).

    Raises :class:`NotUtf8Header` for a header value that is not UTF-8, as Spin does."""
    target = unmounted_target(request.path, request.base_path)
    host = DEFAULT_HOST
    grouped: dict[str, list[bytes]] = {}
    for name, value in request.headers:
        raw = wire_bytes(value)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise NotUtf8Header(f"request header {name!r} is not UTF-8 text") from None
        key = name.lower()
        if key == "host" and key not in grouped:  # the first Host, as HeaderMap::get reads it
            host = text
        # http::HeaderMap keeps values of one name together, in the order names first appear.
        grouped.setdefault(key, []).append(raw)
    for name, value in spin_headers(target, host, request.scheme,
                                    request.client_addr or IN_PROCESS_CLIENT_ADDR):
        grouped.setdefault(name, []).append(value.encode("utf-8"))
    headers = [(name, value) for name, values in grouped.items() if name not in FORBIDDEN_INCOMING
               for value in values]
    return GuestView(target, headers, host)


def incoming_request(request: HttpRequest) -> IncomingRequest:
    """The ``wasi:http`` incoming request the guest is handed for ``request``."""
    view = guest_view(request)
    return IncomingRequest(request.method, view.target, request.scheme, view.authority,
                           view.headers, request.body)
