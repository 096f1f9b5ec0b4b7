"""A threaded HTTP server routing ``/<workspace>/<function>/…`` to loaded apps.

The app is resolved on every request, so a caller can swap an app (new deploy) at any time:
in-flight requests finish on the app they started with, the next ones get the new one.

Responses stream: the head goes out when the guest sets it and each body write as the guest
makes it (:class:`_StreamedResponse`); a failure after the head went out cuts the connection.

What a client or a guest can make it spend is bounded (:class:`ServerLimits`): request bodies
by size, each function by a number of concurrent instances (a hot function is refused with 503
instead of starving the others), idle connections by time. Request framing that could be read
two ways (the request smuggling class) is refused with 400, and a guest's response head that
could split the response (CR/LF in a header) with 500.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Iterator
from urllib.parse import unquote

from faasops.runtime.component import CapacityExceeded, LoadedApp, format_bytes
from faasops.runtime.http_syntax import response_head_problem
from faasops.runtime.messages import HttpRequest, HttpResponse, InvocationRecord

log = logging.getLogger(__name__)

Resolver = Callable[[str, str], "LoadedApp | None"]

# Connection-level headers are the server's business, not the function's.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length",
                         "upgrade", "proxy-connection", "te", "trailer"})


DEFAULT_MAX_BODY_SIZE = 10 << 20
DEFAULT_FUNCTION_CONCURRENCY = 8
DEFAULT_QUEUE_WAIT_S = 1.0
DEFAULT_IDLE_TIMEOUT_S = 30.0
RETRY_AFTER_S = 1
# A chunk-size line is hex digits, then optional ";extensions"; 16 hex digits already exceed
# any body we accept, so longer sizes are malformed rather than merely too large.
_CHUNK_SIZE = re.compile(r"[0-9A-Fa-f]{1,16}")
_MAX_LINE = 8192
_MAX_TRAILER_LINES = 64
# After refusing a body we did not read, keep reading (and discarding) it for a moment, so the
# client gets to read the answer instead of a connection reset.
_LINGER_S = 2.0


@dataclass(frozen=True)
class ServerLimits:
    """What one client or one function may make the server spend."""

    max_body_size: int = DEFAULT_MAX_BODY_SIZE
    """Largest request body in bytes; a larger one is answered 413 without being stored."""
    function_concurrency: int = DEFAULT_FUNCTION_CONCURRENCY
    """Requests of one function that run at once; more wait up to ``queue_wait_s``, then 503."""
    queue_wait_s: float = DEFAULT_QUEUE_WAIT_S
    """How long a request may wait for its function's slot before it is answered 503."""
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S
    """A connection that sends nothing for this long (mid-request or between requests) is closed."""


class RequestRejected(Exception):
    """The request can't be served as framed; answer ``status`` and close the connection."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class FunctionSlots:
    """A bounded number of concurrent requests per function, shared by all its versions."""

    def __init__(self, per_function: int, wait_s: float):
        self.per_function = per_function
        self.wait_s = wait_s
        self._semaphores: dict[str, threading.BoundedSemaphore] = {}
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, address: str) -> Iterator[bool]:
        """Yield True holding one of ``address``'s slots, or False if none freed up in time."""
        with self._lock:
            semaphore = self._semaphores.setdefault(address, threading.BoundedSemaphore(self.per_function))
        acquired = semaphore.acquire(timeout=self.wait_s)
        try:
            yield acquired
        finally:
            if acquired:
                semaphore.release()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets bursts of concurrent clients.
    request_queue_size = 128


class RuntimeServer:
    """Serve functions over HTTP until :meth:`shutdown`.

    ``resolve(workspace, function)`` returns the app to run, or None for a 404.
    ``on_invocation`` receives an :class:`InvocationRecord` for every routed request (unknown
    functions included, with status 404) before the response is complete (a streamed response's
    last bytes wait for it), so a client holding a response can already find its record; keep it
    quick. Its exceptions are logged, not raised.
    ``port=0`` binds a free port; :attr:`port` tells which.
    """

    def __init__(self, host: str, port: int, resolve: Resolver,
                 on_invocation: Callable[[InvocationRecord], None] | None = None,
                 limits: ServerLimits = ServerLimits()):
        self.resolve = resolve
        self.on_invocation = on_invocation
        self.limits = limits
        self.slots = FunctionSlots(limits.function_concurrency, limits.queue_wait_s)
        self._httpd = _HTTPServer((host, port), _handler_class(self))
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self._httpd.server_address[0])

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0)."""
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL of the server, without trailing slash."""
        return f"http://{self.host}:{self.port}"

    def serve_forever(self) -> None:
        """Serve on the calling thread until :meth:`shutdown` is called from another."""
        self._httpd.serve_forever(poll_interval=0.2)

    def start(self) -> "RuntimeServer":
        """Serve on a background thread; returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name="faasops-runtime-server",
                                        daemon=True)
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop serving and release the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> "RuntimeServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def _record(self, record: InvocationRecord) -> None:
        if self.on_invocation is None:
            return
        try:
            self.on_invocation(record)
        except Exception:  # a broken recorder must not break serving
            log.exception("on_invocation callback failed")


def _json_response(status: int, message: str,
                   headers: tuple[tuple[str, str], ...] = ()) -> HttpResponse:
    body = json.dumps({"error": message}).encode("utf-8")
    return HttpResponse(status, [("content-type", "application/json"), *headers], body, error=message)


def _content_length(values: list[str]) -> int | None:
    """The one length that every Content-Length header (and list element) states, or None if
    there is none; RequestRejected when they disagree or one is not a plain decimal number."""
    lengths = {item.strip() for value in values for item in value.split(",")}
    if not lengths:
        return None
    if len(lengths) > 1:
        raise RequestRejected(400, "conflicting Content-Length headers")
    (text,) = lengths
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise RequestRejected(400, f"malformed Content-Length {text[:40]!r}")
    return int(text)


def _handler_class(server: RuntimeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a benchmark or proxy reuses connections
        server_version = "faasops-runtime"

        timeout = server.limits.idle_timeout_s  # socket timeout: no thread waits forever on a client

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes; with Nagle on, the body waits for the
            # client's delayed ACK (~40 ms per request).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            self._stream = None
            started = time.time()
            target = self.path
            segments = target.split("?", 1)[0].split("/")
            try:
                body = self._read_body()
            except RequestRejected as exc:
                # The body's end is unknown (or was not read): the connection can't carry more.
                self.close_connection = True
                log.warning("refused %s %s from %s: %s", self.command, target[:200],
                            self.client_address[0], exc)
                self._send(_json_response(exc.status, str(exc)))
                self._linger()
                return
            if len(segments) < 3 or not segments[1] or not segments[2]:
                self._send(_json_response(404, "expected a path /<workspace>/<function>/…"))
                return
            workspace, function = unquote(segments[1]), unquote(segments[2])
            try:
                app = server.resolve(workspace, function)
            except Exception as exc:
                log.exception("resolving %s/%s failed", workspace, function)
                response = _json_response(500, f"cannot load {workspace}/{function}: {exc}")
            else:
                if app is None:
                    response = _json_response(404, f"no function {workspace}/{function}")
                else:
                    with server.slots.slot(f"{workspace}/{function}") as acquired:
                        if acquired:
                            response = self._invoke(app, workspace, function, target, body)
                        else:
                            response = _overloaded(
                                f"{workspace}/{function} already runs {server.slots.per_function} "
                                f"requests (the per-function concurrency limit)")
            stream = self._stream
            if stream is not None and stream.started:
                # The head went out while the guest ran: end the body, or cut it short.
                cut = stream.cut_reason(response)
                if cut is not None:
                    log.error("cut the response of %s/%s short: %s", workspace, function, cut)
                server._record(InvocationRecord(
                    started, workspace, function, self.command, target, stream.status,
                    response.duration_s, response.cpu_s, response.stdout, response.stderr,
                    response.error or cut))
                stream.end(cut)
                return
            server._record(InvocationRecord(
                started, workspace, function, self.command, target, response.status,
                response.duration_s, response.cpu_s, response.stdout, response.stderr,
                response.error))
            self._send(response)

        _stream: "_StreamedResponse | None" = None

        def _invoke(self, app: LoadedApp, workspace: str, function: str, target: str,
                    body: bytes) -> HttpResponse:
            request = HttpRequest(
                method=self.command, path=target, headers=list(self.headers.items()), body=body,
                base_path=f"/{workspace}/{function}", client_addr=f"{self.client_address[0]}:"
                                                                  f"{self.client_address[1]}")
            # A HEAD response has no body to stream: it is answered whole, as it always was.
            self._stream = (_StreamedResponse(self, server.limits.idle_timeout_s)
                            if self.command != "HEAD" else None)
            try:
                response = app.handle(request, self._stream)
            except CapacityExceeded as exc:
                return _overloaded(f"the server runs as many requests as it can ({exc})")
            except Exception as exc:  # a runtime bug: answer, keep serving
                log.exception("running %s/%s failed", workspace, function)
                return _json_response(500, f"runtime error: {exc!r}")
            if response.streamed:
                return response  # its head was checked before it went out
            problem = response_head_problem(response.status, response.headers)
            if problem is not None:
                message = f"refused the response of {workspace}/{function}: {problem}"
                log.error("%s", message)
                return HttpResponse(500, [("content-type", "application/json")],
                                    json.dumps({"error": message}).encode("utf-8"),
                                    response.stdout, response.stderr, response.duration_s,
                                    response.cpu_s, message)
            if response.limit_exceeded:
                log.error("%s/%s answered 500: %s", workspace, function, response.limit_exceeded)
            return response

        def handle_expect_100(self) -> bool:
            # Refuse a too-large body before the client sends it (curl asks first above 1 MB).
            try:
                length = _content_length(self.headers.get_all("content-length", []))
            except RequestRejected:
                length = None  # _serve answers the malformed header
            if length is not None and length > server.limits.max_body_size:
                self.close_connection = True
                self._send(_json_response(413, f"request body of {length} bytes exceeds the limit "
                                               f"of {format_bytes(server.limits.max_body_size)}"))
                return False
            return super().handle_expect_100()

        def _read_body(self) -> bytes:
            """The request body within the size limit; RequestRejected for ambiguous or
            malformed framing (400) and bodies over the limit (413)."""
            limit = server.limits.max_body_size
            codings = [c.strip().lower() for v in self.headers.get_all("transfer-encoding", [])
                       for c in v.split(",") if c.strip()]
            length = _content_length(self.headers.get_all("content-length", []))
            if codings:
                if length is not None:
                    raise RequestRejected(400, "both Content-Length and Transfer-Encoding")
                if codings != ["chunked"]:
                    raise RequestRejected(400, f"unsupported Transfer-Encoding {', '.join(codings)!r}")
                return self._read_chunked(limit)
            if length is None or length == 0:
                return b""
            if length > limit:
                raise RequestRejected(413, f"request body of {length} bytes exceeds the limit of "
                                           f"{format_bytes(limit)}")
            body = self.rfile.read(length)
            if len(body) != length:
                raise RequestRejected(400, "request body shorter than its Content-Length")
            return body

        def _read_chunked(self, limit: int) -> bytes:
            chunks: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(_MAX_LINE + 1)
                size_text = line.split(b";", 1)[0].strip(b" \t\r\n").decode("ascii", "replace")
                if len(line) > _MAX_LINE or not line.endswith(b"\n") or not _CHUNK_SIZE.fullmatch(size_text):
                    raise RequestRejected(400, "malformed chunk size")
                size = int(size_text, 16)
                if size == 0:
                    break
                total += size
                if total > limit:
                    raise RequestRejected(413, f"request body exceeds the limit of {format_bytes(limit)}")
                chunk = self.rfile.read(size)
                if len(chunk) != size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise RequestRejected(400, "malformed chunk (shorter than its size or not CRLF-terminated)")
                chunks.append(chunk)
            for _ in range(_MAX_TRAILER_LINES):
                line = self.rfile.readline(_MAX_LINE + 1)
                if len(line) > _MAX_LINE or not line.endswith(b"\n"):
                    raise RequestRejected(400, "malformed chunked trailer")
                if not line.strip():
                    return b"".join(chunks)
            raise RequestRejected(400, "too many chunked trailer lines")

        def _linger(self) -> None:
            """Half-close, then discard what the client still sends for a moment (see _LINGER_S)."""
            try:
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_WR)
                self.connection.settimeout(0.5)
                until = time.monotonic() + _LINGER_S
                while time.monotonic() < until and self.connection.recv(1 << 16):
                    pass
            except OSError:
                pass

        def send_response(self, code: int, message: str | None = None) -> None:
            # As Spin's server (hyper): no Server header, and a Date only when the response has
            # none (see _send_head) — an app that passes an upstream's headers on must not
            # answer with two of each.
            self.log_request(code)
            self.send_response_only(code, message)

        def _send(self, response: HttpResponse) -> None:
            _send_head(self, response.status, response.headers)
            head = self.command == "HEAD"
            self.send_header("content-length", str(len(response.body)))
            self.end_headers()
            if not head:
                self.wfile.write(response.body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s - %s", self.address_string(), format % args)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    return Handler


def _send_head(handler: BaseHTTPRequestHandler, status: int, headers: list[tuple[str, str]]) -> None:
    """The status line and the guest's headers (hop-by-hop ones dropped), plus ``date`` when the
    guest set none, as hyper does under Spin."""
    handler.send_response(status)
    dated = False
    for name, value in headers:
        lowered = name.lower()
        if lowered not in _HOP_BY_HOP:
            handler.send_header(name, value)
            dated = dated or lowered == "date"
    if not dated:
        handler.send_header("date", handler.date_time_string())


class _StreamedResponse:
    """A guest's response sent to the client while the guest writes it (a
    :class:`~faasops.runtime.messages.ResponseSink`).

    The head goes out when the guest sets the response; each body write then goes out at once,
    as one HTTP/1.1 chunk, or as it is when the guest declared a Content-Length. The last bytes
    (the final empty chunk, or the write that completes the Content-Length) wait for
    :meth:`end`, after the guest returned and the invocation was recorded: a client never
    holds a complete response whose record is missing, and a guest that fails after its head
    went out cuts the connection instead of answering a second time. Writes block while the
    client doesn't read, never past the request's deadline or the idle timeout.
    """

    def __init__(self, handler: BaseHTTPRequestHandler, idle_timeout_s: float):
        self._handler = handler
        self._idle_timeout_s = idle_timeout_s
        self.started = False
        self.status = 0
        self._deadline = 0.0
        self._length: int | None = None  # the guest's Content-Length; None: chunked
        self._sent = 0
        self._held = b""
        self._failure: str | None = None

    def start(self, status: int, headers: list[tuple[str, str]], deadline: float) -> bool:
        """Send the head, unless it is one the server answers whole once the guest returned:
        a head that must be refused (500), a status without a body, or a body of unknown
        length for an HTTP/1.0 client (no chunked transfer coding)."""
        handler = self._handler
        if response_head_problem(status, headers) is not None or status < 200 or status in (204, 304):
            return False
        try:
            length = _content_length([value for name, value in headers if name.lower() == "content-length"])
        except RequestRejected:
            length = None  # not a usable length: frame the body ourselves
        chunked = length is None
        if chunked and handler.request_version != "HTTP/1.1":
            return False
        _send_head(handler, status, headers)
        if chunked:
            handler.send_header("transfer-encoding", "chunked")
        else:
            handler.send_header("content-length", str(length))
        self._deadline = deadline
        self._length = length
        self.status = status
        self.started = True
        return self._send(handler.end_headers)

    def write(self, data: bytes) -> str | None:
        """Send one body write (see :class:`~faasops.runtime.messages.ResponseSink`)."""
        if self._failure is not None:
            return self._failure
        if self._length is None:
            self._send(lambda: self._handler.wfile.write(b"%x\r\n%b\r\n" % (len(data), data)))
            return self._failure
        total = self._sent + len(self._held) + len(data)
        if total > self._length:
            self._failure = f"the guest wrote more than its Content-Length of {self._length} bytes"
            return self._failure
        out, self._held = self._held, b""
        if total == self._length:
            self._held = data
        else:
            out += data
        if out:
            self._sent += len(out)
            self._send(lambda: self._handler.wfile.write(out))
        return self._failure

    def cut_reason(self, response: HttpResponse) -> str | None:
        """Why the body must be cut short once the guest returned, or None when it may end."""
        if self._failure is not None:
            return self._failure
        if response.incomplete is not None:
            return response.incomplete
        if not response.streamed:
            return f"the runtime failed after the head went out: {response.error}"
        if self._length is not None and self._sent + len(self._held) < self._length:
            return (f"the guest finished its body after {self._sent + len(self._held)} of the "
                    f"{self._length} bytes its Content-Length announced")
        return None

    def end(self, cut: str | None) -> None:
        """Complete the response, or, with a ``cut`` reason, close the connection instead so
        the client sees an incomplete response."""
        handler = self._handler
        if cut is None and self._failure is None:
            last = self._held if self._length is not None else b"0\r\n\r\n"
            if self._send(lambda: handler.wfile.write(last), within_deadline=False):
                handler.connection.settimeout(self._idle_timeout_s)
                return
        handler.close_connection = True
        try:
            handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, write: Callable[[], object], within_deadline: bool = True) -> bool:
        """Run one socket write within the idle timeout and, while the guest runs (it waits
        for the write), within the request's deadline."""
        if self._failure is not None:
            return False
        remaining = self._deadline - time.monotonic() if within_deadline else self._idle_timeout_s
        try:
            if remaining <= 0:
                raise TimeoutError
            self._handler.connection.settimeout(min(self._idle_timeout_s, remaining))
            write()
            return True
        except TimeoutError:
            self._failure = "the client did not take the response body in time"
        except OSError as exc:
            self._failure = f"the client went away while the body was sent ({exc.__class__.__name__})"
        return False


def _overloaded(message: str) -> HttpResponse:
    log.warning("answered 503: %s", message)
    return _json_response(503, message, (("retry-after", str(RETRY_AFTER_S)),))
