"""``wasi:http/types@0.2`` host side: the incoming request, the response, fields and bodies.

Outgoing requests are built here; :mod:`faasops.runtime.outgoing_http` sends them.
"""

from __future__ import annotations

from typing import Any, Sequence

from faasops.runtime.host import HOST_API, HostTrap, RequestState, Resource, WitResult
from faasops.runtime.http_syntax import is_field_value, is_token
from faasops.runtime.messages import ResponseSink
from faasops.runtime.wasi import CLOSED, InputStream, IoError, OK, OutputStream, Pollable

TYPES = "wasi:http/types@0.2"

_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
# wasmtime-wasi-http refuses these in guest-built fields as well.
_FORBIDDEN = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                        "upgrade", "host", "http2-settings"})


def method_variant(method: str) -> Any:
    """The ``method`` variant for an HTTP method name."""
    upper = method.upper()
    return upper.lower() if upper in _METHODS else ("other", method)


class Fields(Resource):
    """``fields`` (also ``headers``/``trailers``): an ordered multimap, names lower-cased."""

    resource = "fields"

    def __init__(self, entries: list[tuple[str, bytes]] | None = None, *, immutable: bool = False):
        self.entries = entries if entries is not None else []
        self.immutable = immutable

    def _check(self, name: str, values: Sequence[bytes] = ()) -> Any:
        if self.immutable:
            return ("err", "immutable")
        # As wasmtime-wasi-http: a value with CR/LF/NUL could split the response head.
        if not is_token(name) or not all(is_field_value(v) for v in values):
            return ("err", "invalid-syntax")
        if name.lower() in _FORBIDDEN:
            return ("err", "forbidden")
        return None


class IncomingBody(Resource):
    resource = "incoming-body"

    def __init__(self, data: bytes):
        self.data = data
        self.stream_taken = False


class FutureTrailers(Resource):
    resource = "future-trailers"


class IncomingRequest(Resource):
    """The request being handled, as the guest sees it."""

    resource = "incoming-request"

    def __init__(self, method: str, path_with_query: str, scheme: str, authority: str,
                 headers: list[tuple[str, bytes]], body: bytes):
        self.method = method
        self.path_with_query = path_with_query
        self.scheme = scheme
        self.authority = authority
        self.headers = headers
        self.body: IncomingBody | None = IncomingBody(body)


class OutgoingBody(Resource):
    """A body the guest writes: buffered, or — for a response whose head went out — sent to
    the client write by write (:meth:`stream_to`)."""

    resource = "outgoing-body"

    def __init__(self) -> None:
        self.data = bytearray()
        self.stream: OutputStream | None = None
        self.finished = False
        self._sink: ResponseSink | None = None
        self._state: RequestState | None = None

    def stream_to(self, sink: ResponseSink, state: RequestState) -> None:
        """From now on send every write to ``sink``, starting with what was buffered."""
        self._sink, self._state = sink, state
        buffered, self.data = bytes(self.data), bytearray()
        if buffered:
            self.append(buffered)

    def append(self, data: bytes) -> WitResult:
        """One write of the guest's body stream."""
        if self._sink is None or self._state is None:
            self.data += data
            return OK
        if self._state.stream_failure is not None:
            return CLOSED
        if data:  # an empty write must not reach the client: a zero-size chunk ends the body
            refusal = self._sink.write(bytes(data))
            if refusal is not None:
                self._state.stream_failure = refusal
                if self.stream is not None:
                    self.stream.closed = True
                return CLOSED
        return OK


class BodyOutputStream(OutputStream):
    """The ``output-stream`` of an outgoing body: writes go through :meth:`OutgoingBody.append`."""

    def __init__(self, body: OutgoingBody):
        super().__init__(body.data)
        self.body = body

    def write(self, data: Any) -> WitResult:
        if self.closed:
            return CLOSED
        return self.body.append(data)


class OutgoingResponse(Resource):
    """The response the guest builds; read back after the guest returns."""

    resource = "outgoing-response"

    def __init__(self, headers: Fields):
        headers.immutable = True
        self.headers = headers
        self.status = 200
        self.body: OutgoingBody | None = None


class ResponseOutparam(Resource):
    resource = "response-outparam"


class OutgoingRequest(Resource):
    """A request the guest prepares for ``wasi:http/outgoing-handler.handle``."""

    resource = "outgoing-request"

    def __init__(self, headers: Fields):
        headers.immutable = True
        self.headers = headers
        self.method: Any = "get"
        self.path_with_query: str | None = None
        self.scheme: Any = None
        self.authority: str | None = None
        self.body: OutgoingBody | None = None


# -- fields ----------------------------------------------------------------------------------

@HOST_API.func(TYPES, "[constructor]fields")
def _fields_new(state: RequestState) -> Fields:
    return Fields()


@HOST_API.func(TYPES, "[static]fields.from-list")
def _fields_from_list(state: RequestState, entries: list[tuple[str, bytes]]) -> WitResult:
    fields = Fields()
    for name, value in entries:
        problem = fields._check(name, [value])
        if problem:
            return problem
    fields.entries = [(name.lower(), value) for name, value in entries]
    return ("ok", fields)


@HOST_API.func(TYPES, "[method]fields.get")
def _fields_get(state: RequestState, fields: Fields, name: str) -> list[bytes]:
    key = name.lower()
    return [value for n, value in fields.entries if n == key]


@HOST_API.func(TYPES, "[method]fields.has")
def _fields_has(state: RequestState, fields: Fields, name: str) -> bool:
    key = name.lower()
    return any(n == key for n, _ in fields.entries)


@HOST_API.func(TYPES, "[method]fields.set")
def _fields_set(state: RequestState, fields: Fields, name: str, values: list[bytes]) -> WitResult:
    problem = fields._check(name, values)
    if problem:
        return problem
    key = name.lower()
    fields.entries = [(n, v) for n, v in fields.entries if n != key] + [(key, v) for v in values]
    return OK


@HOST_API.func(TYPES, "[method]fields.delete")
def _fields_delete(state: RequestState, fields: Fields, name: str) -> WitResult:
    problem = fields._check(name)
    if problem:
        return problem
    key = name.lower()
    fields.entries = [(n, v) for n, v in fields.entries if n != key]
    return OK


@HOST_API.func(TYPES, "[method]fields.append")
def _fields_append(state: RequestState, fields: Fields, name: str, value: bytes) -> WitResult:
    problem = fields._check(name, [value])
    if problem:
        return problem
    fields.entries.append((name.lower(), value))
    return OK


@HOST_API.func(TYPES, "[method]fields.entries")
def _fields_entries(state: RequestState, fields: Fields) -> list[tuple[str, bytes]]:
    return fields.entries


@HOST_API.func(TYPES, "[method]fields.clone")
def _fields_clone(state: RequestState, fields: Fields) -> Fields:
    return Fields(list(fields.entries))


# -- incoming request ------------------------------------------------------------------------

@HOST_API.func(TYPES, "[method]incoming-request.method")
def _request_method(state: RequestState, request: IncomingRequest) -> Any:
    return method_variant(request.method)


@HOST_API.func(TYPES, "[method]incoming-request.path-with-query")
def _request_path(state: RequestState, request: IncomingRequest) -> str:
    return request.path_with_query


@HOST_API.func(TYPES, "[method]incoming-request.scheme")
def _request_scheme(state: RequestState, request: IncomingRequest) -> Any:
    scheme = request.scheme.lower()
    return {"http": "HTTP", "https": "HTTPS"}.get(scheme, ("other", scheme))


@HOST_API.func(TYPES, "[method]incoming-request.authority")
def _request_authority(state: RequestState, request: IncomingRequest) -> str:
    return request.authority


@HOST_API.func(TYPES, "[method]incoming-request.headers")
def _request_headers(state: RequestState, request: IncomingRequest) -> Fields:
    return Fields(request.headers, immutable=True)


@HOST_API.func(TYPES, "[method]incoming-request.consume")
def _request_consume(state: RequestState, request: IncomingRequest) -> WitResult:
    body, request.body = request.body, None
    return ("ok", body) if body is not None else ("err", None)


@HOST_API.func(TYPES, "[method]incoming-body.stream")
def _incoming_body_stream(state: RequestState, body: IncomingBody) -> WitResult:
    if body.stream_taken:
        return ("err", None)
    body.stream_taken = True
    return ("ok", InputStream(body.data))


@HOST_API.func(TYPES, "[static]incoming-body.finish")
def _incoming_body_finish(state: RequestState, body: IncomingBody) -> FutureTrailers:
    return FutureTrailers()


@HOST_API.func(TYPES, "[method]future-trailers.subscribe")
def _trailers_subscribe(state: RequestState, trailers: FutureTrailers) -> Pollable:
    return Pollable()


@HOST_API.func(TYPES, "[method]future-trailers.get")
def _trailers_get(state: RequestState, trailers: FutureTrailers) -> Any:
    return ("ok", ("ok", None))  # some(ok(ok(none))): ready, no trailers


# -- response --------------------------------------------------------------------------------

@HOST_API.func(TYPES, "[constructor]outgoing-response")
def _response_new(state: RequestState, headers: Fields) -> OutgoingResponse:
    return OutgoingResponse(headers)


@HOST_API.func(TYPES, "[method]outgoing-response.status-code")
def _response_status(state: RequestState, response: OutgoingResponse) -> int:
    return response.status


@HOST_API.func(TYPES, "[method]outgoing-response.set-status-code")
def _response_set_status(state: RequestState, response: OutgoingResponse, status: int) -> WitResult:
    if not 100 <= status <= 999:
        return ("err", None)
    response.status = status
    return OK


@HOST_API.func(TYPES, "[method]outgoing-response.headers")
def _response_headers(state: RequestState, response: OutgoingResponse) -> Fields:
    return Fields(response.headers.entries, immutable=True)


@HOST_API.func(TYPES, "[method]outgoing-response.body")
@HOST_API.func(TYPES, "[method]outgoing-request.body")
def _outgoing_body(state: RequestState, message: OutgoingResponse | OutgoingRequest) -> WitResult:
    if message.body is not None:
        return ("err", None)
    message.body = OutgoingBody()
    return ("ok", message.body)


@HOST_API.func(TYPES, "[method]outgoing-body.write")
def _outgoing_body_write(state: RequestState, body: OutgoingBody) -> WitResult:
    if body.stream is not None or body.finished:
        return ("err", None)
    body.stream = BodyOutputStream(body)
    return ("ok", body.stream)


@HOST_API.func(TYPES, "[static]outgoing-body.finish")
def _outgoing_body_finish(state: RequestState, body: OutgoingBody,
                          trailers: Fields | None) -> WitResult:
    body.finished = True
    if body.stream is not None:
        body.stream.closed = True
    return OK


@HOST_API.func(TYPES, "[static]response-outparam.set")
def _outparam_set(state: RequestState, outparam: ResponseOutparam, response: WitResult) -> None:
    if state.response is not None or state.response_error is not None:
        raise HostTrap("guest set the response twice")
    tag, value = response
    if tag == "ok":
        state.response = value
        # A response without a body resource is complete as set (spin-sdk's 500 after a handler
        # raised is one): it is answered whole, so the runtime can still say which limit it was.
        if value.body is not None and state.sink is not None and state.sink.start(
                value.status, [(name, raw.decode("latin-1")) for name, raw in value.headers.entries],
                state.deadline):
            # The head is out: the body goes to the client as the guest writes it.
            state.streamed = True
            value.body.stream_to(state.sink, state)
    else:
        state.response_error = f"guest answered with HTTP error code {value!r}"


@HOST_API.func(TYPES, "http-error-code")
def _http_error_code(state: RequestState, err: IoError) -> None:
    return None


# -- outgoing request (sent by faasops.runtime.outgoing_http) -----------------------------------------------

@HOST_API.func(TYPES, "[constructor]outgoing-request")
def _request_new(state: RequestState, headers: Fields) -> OutgoingRequest:
    return OutgoingRequest(headers)


@HOST_API.func(TYPES, "[method]outgoing-request.headers")
def _outgoing_request_headers(state: RequestState, request: OutgoingRequest) -> Fields:
    return Fields(request.headers.entries, immutable=True)


def _accessors(attr: str) -> None:
    def get(state: RequestState, request: OutgoingRequest) -> Any:
        return getattr(request, attr)

    def set_(state: RequestState, request: OutgoingRequest, value: Any) -> WitResult:
        setattr(request, attr, value)
        return OK

    wit = attr.replace("_", "-")
    HOST_API.func(TYPES, f"[method]outgoing-request.{wit}")(get)
    HOST_API.func(TYPES, f"[method]outgoing-request.set-{wit}")(set_)


for _attr in ("method", "path_with_query", "scheme", "authority"):
    _accessors(_attr)
