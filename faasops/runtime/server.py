"""A threaded HTTP server routing ``/<workspace>/<function>/…`` to loaded apps.

The app is resolved on every request, so a caller can swap an app (new deploy) at any time:
in-flight requests finish on the app they started with, the next ones get the new one.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import unquote

from faasops.runtime.component import LoadedApp
from faasops.runtime.messages import HttpRequest, HttpResponse, InvocationRecord

log = logging.getLogger(__name__)

Resolver = Callable[[str, str], "LoadedApp | None"]

# Connection-level headers are the server's business, not the function's.
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length",
                         "upgrade", "proxy-connection", "te", "trailer"})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets bursts of concurrent clients.
    request_queue_size = 128


class RuntimeServer:
    """Serve functions over HTTP until :meth:`shutdown`.

    ``resolve(workspace, function)`` returns the app to run, or None for a 404.
    ``on_invocation`` receives an :class:`InvocationRecord` for every routed request (unknown
    functions included, with status 404) before the response is written, so a client holding a
    response can already find its record; keep it quick. Its exceptions are logged, not raised.
    ``port=0`` binds a free port; :attr:`port` tells which.
    """

    def __init__(self, host: str, port: int, resolve: Resolver,
                 on_invocation: Callable[[InvocationRecord], None] | None = None):
        self.resolve = resolve
        self.on_invocation = on_invocation
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


def _json_response(status: int, message: str) -> HttpResponse:
    body = json.dumps({"error": message}).encode("utf-8")
    return HttpResponse(status, [("content-type", "application/json")], body, error=message)


def _handler_class(server: RuntimeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a benchmark or proxy reuses connections
        server_version = "faasops-runtime"

        def setup(self) -> None:
            super().setup()
            # Headers and body go out in two writes; with Nagle on, the body waits for the
            # client's delayed ACK (~40 ms per request).
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _serve(self) -> None:
            started = time.time()
            target = self.path
            segments = target.split("?", 1)[0].split("/")
            try:
                body = self._read_body()
            except ValueError:
                self.close_connection = True  # the framing is unknown: don't read further
                self._send(_json_response(400, "malformed request body framing"))
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
                    response = self._invoke(app, workspace, function, target, body)
            server._record(InvocationRecord(
                started, workspace, function, self.command, target, response.status,
                response.duration_s, response.cpu_s, response.stdout, response.stderr,
                response.error))
            self._send(response)

        def _invoke(self, app: LoadedApp, workspace: str, function: str, target: str,
                    body: bytes) -> HttpResponse:
            request = HttpRequest(
                method=self.command, path=target, headers=list(self.headers.items()), body=body,
                base_path=f"/{workspace}/{function}", client_addr=f"{self.client_address[0]}:"
                                                                  f"{self.client_address[1]}")
            try:
                return app.handle(request)
            except Exception as exc:  # a runtime bug: answer, keep serving
                log.exception("running %s/%s failed", workspace, function)
                return _json_response(500, f"runtime error: {exc!r}")

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("transfer-encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline().strip():  # trailers
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("content-length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, response: HttpResponse) -> None:
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() not in _HOP_BY_HOP:
                    self.send_header(name, value)
            head = self.command == "HEAD"
            self.send_header("content-length", str(len(response.body)))
            self.end_headers()
            if not head:
                self.wfile.write(response.body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("%s - %s", self.address_string(), format % args)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    return Handler
