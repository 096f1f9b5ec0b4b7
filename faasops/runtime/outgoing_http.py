"""``wasi:http/outgoing-handler@0.2``: the guest's outbound HTTP requests (``spin_sdk.http.send``).

As in Spin (``crates/factor-outbound-http/src/wasi.rs``), a request whose URL the component's
``allowed_outbound_hosts`` does not allow fails in ``handle`` with ``error-code::HTTP-request-
denied``; spin-sdk 3.4.1 raises it as ``spin_sdk.wit.types.Err(ErrorCode_HttpRequestDenied())``,
which the handler can catch. Allowed requests go out with :mod:`http.client`:

* when the guest first asks for the response — spin-sdk calls ``handle`` *before* it writes the
  request body, so the request can only be sent once the body is finished;
* bounded: every socket operation times out after :data:`OUTBOUND_TIMEOUT_S` or at the
  request's own deadline, whichever comes first (reading the body stops at that deadline too),
  and a response body larger than :data:`MAX_RESPONSE_BYTES` is an ``HTTP-response-body-size``
  error;
* redirects are not followed (wasi-http hands the guest the 3xx itself), and the ``host``
  header comes from the request's authority (wasi-http forbids the guest to set one).

Connection failures are the ``error-code`` Spin's client would give (``connection-refused``,
``DNS-error``, ``connection-timeout`` …), delivered through the future.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from typing import Any

from faasops.runtime.host import HOST_API, RequestState, Resource, WitResult
from faasops.runtime.wasi import Pollable
from faasops.runtime.wasi_http import TYPES, Fields, IncomingBody, OutgoingRequest

OUTGOING_HANDLER = "wasi:http/outgoing-handler@0.2"
OUTBOUND_TIMEOUT_S = 30.0
"""Longest wait for one connect or read of an outbound request (the request's deadline may cut it
shorter)."""
MAX_RESPONSE_BYTES = 16 << 20
"""Largest outbound response body handed to the guest; a larger one is an error the guest sees."""
_READ_CHUNK = 64 << 10


class RequestOptions(Resource):
    """``request-options``: per-request timeouts in nanoseconds (None: the runtime's)."""

    resource = "request-options"

    def __init__(self) -> None:
        self.connect_timeout: int | None = None
        self.first_byte_timeout: int | None = None
        self.between_bytes_timeout: int | None = None


class IncomingResponse(Resource):
    """A response received for an outbound request."""

    resource = "incoming-response"

    def __init__(self, status: int, headers: list[tuple[str, bytes]], body: bytes):
        self.status = status
        self.headers = headers
        self.body: IncomingBody | None = IncomingBody(body)


class FutureIncomingResponse(Resource):
    """The response to come: the request is sent when the guest first waits for it with its
    body finished (or never opened)."""

    resource = "future-incoming-response"

    def __init__(self, state: RequestState, request: OutgoingRequest, url: str,
                 options: RequestOptions | None):
        self.state = state
        self.request = request
        self.url = url
        self.options = options
        self.result: WitResult | None = None  # ("ok", IncomingResponse) or ("err", error-code)
        self.taken = False

    def sendable(self) -> bool:
        body = self.request.body
        return body is None or body.finished

    def resolve(self) -> WitResult:
        if self.result is None:
            self.result = _send(self.state, self.request, self.url, self.options)
        return self.result


class ResponsePollable(Pollable):
    """Ready once the response arrived; asking sends the request if its body is complete."""

    def __init__(self, future: FutureIncomingResponse):
        super().__init__()
        self.future = future

    def ready(self) -> bool:
        if self.future.result is None and not self.future.sendable():
            return False
        self.future.resolve()
        return True


def _case(variant: Any) -> tuple[str, Any]:
    """A variant value as ``(case, payload)``: lifted ones are pairs, host-made ones may be bare."""
    return (variant, None) if isinstance(variant, str) else variant


def _authority_parts(request: OutgoingRequest) -> tuple[str, str]:
    # wasi-http: a request without a scheme is sent as http.
    case, other = _case(request.scheme) if request.scheme is not None else ("HTTP", None)
    name = {"HTTP": "http", "HTTPS": "https"}.get(case) or str(other).lower()
    return name, request.authority or ""


def _url(request: OutgoingRequest) -> tuple[str, str, str]:
    scheme, authority = _authority_parts(request)
    path = request.path_with_query or "/"
    return scheme, authority, f"{scheme}://{authority}{path}"


def _method_name(method: Any) -> str:
    case, other = _case(method)
    return str(other) if case == "other" else case.upper()


@HOST_API.func(OUTGOING_HANDLER, "handle")
def _handle(state: RequestState, request: OutgoingRequest, options: RequestOptions | None) -> WitResult:
    scheme, authority, url = _url(request)
    hosts = state.allowed_hosts
    host = authority.rpartition("@")[2]
    self_request = host == "" or host.split(":")[0] == "self.alt" or host.startswith(":")
    allowed = (hosts.allows_self() if self_request else hosts.allows_url(url)) if hosts else False
    if not allowed:
        state.note(f"outbound request to {url} denied (HTTP-request-denied): not in the function's "
                   f"allowed_outbound_hosts ({hosts or 'none'})")
        return ("err", "HTTP-request-denied")
    if self_request:
        # Spin sends these to the app itself; the local runtime has no origin to send them to.
        state.note(f"outbound request to {url}: requests to the app itself (self) are not supported "
                   "by faasops' local runtime")
        return ("err", "HTTP-request-URI-invalid")
    if scheme not in ("http", "https"):
        return ("err", "HTTP-protocol-error")
    return ("ok", FutureIncomingResponse(state, request, url, options))


@HOST_API.func(TYPES, "[method]future-incoming-response.subscribe")
def _future_subscribe(state: RequestState, future: FutureIncomingResponse) -> Pollable:
    return ResponsePollable(future)


@HOST_API.func(TYPES, "[method]future-incoming-response.get")
def _future_get(state: RequestState, future: FutureIncomingResponse) -> Any:
    if future.result is None and not future.sendable():
        return None  # the guest is still writing the request body
    if future.taken:
        return ("err", None)  # some(err): the response was already taken
    future.taken = True
    return ("ok", future.resolve())


@HOST_API.func(TYPES, "[method]incoming-response.status")
def _response_status(state: RequestState, response: IncomingResponse) -> int:
    return response.status


@HOST_API.func(TYPES, "[method]incoming-response.headers")
def _response_headers(state: RequestState, response: IncomingResponse) -> Fields:
    return Fields(list(response.headers), immutable=True)


@HOST_API.func(TYPES, "[method]incoming-response.consume")
def _response_consume(state: RequestState, response: IncomingResponse) -> WitResult:
    body, response.body = response.body, None
    return ("ok", body) if body is not None else ("err", None)


@HOST_API.func(TYPES, "[constructor]request-options")
def _options_new(state: RequestState) -> RequestOptions:
    return RequestOptions()


def _option_accessors(attr: str) -> None:
    def get(state: RequestState, options: RequestOptions) -> int | None:
        return getattr(options, attr)

    def set_(state: RequestState, options: RequestOptions, value: int | None) -> WitResult:
        setattr(options, attr, value)
        return ("ok", None)

    wit = attr.replace("_", "-")
    HOST_API.func(TYPES, f"[method]request-options.{wit}")(get)
    HOST_API.func(TYPES, f"[method]request-options.set-{wit}")(set_)


for _attr in ("connect_timeout", "first_byte_timeout", "between_bytes_timeout"):
    _option_accessors(_attr)


# -- the client ------------------------------------------------------------------------------

def _timeout(state: RequestState, options: RequestOptions | None) -> float:
    limit = OUTBOUND_TIMEOUT_S
    if options is not None:
        for ns in (options.connect_timeout, options.first_byte_timeout, options.between_bytes_timeout):
            if ns is not None:
                limit = min(limit, ns / 1e9)
    return max(0.001, min(limit, state.deadline - time.monotonic()))


def _send(state: RequestState, request: OutgoingRequest, url: str,
          options: RequestOptions | None) -> WitResult:
    """Send ``request``; ``("ok", IncomingResponse)`` or ``("err", error-code)``."""
    scheme, authority = _authority_parts(request)
    timeout = _timeout(state, options)
    connection_class = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    try:
        connection = connection_class(authority, timeout=timeout)
    except (http.client.InvalidURL, ValueError):
        return ("err", "HTTP-request-URI-invalid")
    body = bytes(request.body.data) if request.body is not None else b""
    connected = False
    try:
        connection.connect()
        connected = True
        connection.putrequest(_method_name(request.method), request.path_with_query or "/",
                              skip_accept_encoding=True)
        names = set()
        for name, value in request.headers.entries:
            names.add(name)
            connection.putheader(name, value)
        if body and "content-length" not in names and "transfer-encoding" not in names:
            connection.putheader("content-length", str(len(body)))
        connection.endheaders(body or None)
        response = connection.getresponse()
        headers = [(name.lower(), value.encode("latin-1")) for name, value in response.getheaders()]
        data = bytearray()
        while True:
            # The socket timeout bounds each read; the request's deadline bounds them all, so a
            # server dripping bytes can't hold the request past its time limit.
            remaining = state.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the function's time limit ran out while reading the response")
            if connection.sock is not None:
                connection.sock.settimeout(min(timeout, remaining))
            chunk = response.read(_READ_CHUNK)
            if not chunk:
                break
            data += chunk
            if len(data) > MAX_RESPONSE_BYTES:
                state.note(f"outbound response from {url} exceeds {MAX_RESPONSE_BYTES} bytes")
                return ("err", ("HTTP-response-body-size", MAX_RESPONSE_BYTES))
        return ("ok", IncomingResponse(response.status, headers, bytes(data)))
    except Exception as exc:  # noqa: BLE001 - every failure becomes the error-code the guest sees
        code = _error_code(exc, connected)
        state.note(f"outbound request to {url} failed ({code if isinstance(code, str) else code[0]}): {exc}")
        return ("err", code)
    finally:
        connection.close()


def _error_code(exc: Exception, connected: bool) -> Any:
    """The wasi-http ``error-code`` for a client failure, as wasmtime-wasi-http maps hyper's."""
    if isinstance(exc, socket.gaierror):
        return ("DNS-error", {"rcode": str(exc), "info-code": None})
    if isinstance(exc, ConnectionRefusedError):
        return "connection-refused"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "HTTP-response-timeout" if connected else "connection-timeout"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS-certificate-error"
    if isinstance(exc, ssl.SSLError):
        return "TLS-protocol-error"
    if isinstance(exc, (http.client.IncompleteRead, http.client.RemoteDisconnected)):
        return "HTTP-response-incomplete"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "connection-terminated"
    if isinstance(exc, http.client.HTTPException):
        return "HTTP-protocol-error"
    if isinstance(exc, OSError):
        return "destination-unavailable"
    return ("internal-error", str(exc)[:200])
