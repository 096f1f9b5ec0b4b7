"""An HTTP reverse proxy that injects faults, for reliability tests of the providers.

Put it between a client and a real test service (moto, docker-registry, the Kubernetes
emulator) and point the client at :attr:`FaultProxy.url`::

    from testkit.faultproxy import FaultProxy, aws_throttling, kube_too_many_requests

    with FaultProxy(moto.url, seed=7) as proxy:
        proxy.inject(aws_throttling(), target="TransactWriteItems", times=2)
        proxy.inject(http_error(500), method="PUT", path=r"^/bucket/", probability=0.3)
        ... run the client against proxy.url ...
        assert proxy.stats()["injected"]["aws-throttling"] == 2

Requests are forwarded as they came (same method, path, query, headers — ``Host`` included,
so AWS signatures and registry ``Location`` headers keep naming the proxy — and body), one
upstream connection per request; answers are passed back whole, with their status and headers.
Streaming answers (Kubernetes watches) are read to their end first, so don't proxy watches.

Rules
    :meth:`FaultProxy.inject` adds a rule: a :class:`Fault` and what it matches — ``method``
    (exact, ``LIST`` is not a method: use ``GET``), ``path`` (a regular expression searched in
    the path with its query), ``target`` (the operation in AWS JSON protocol's
    ``X-Amz-Target`` header, e.g. ``TransactWriteItems`` or
    ``DynamoDB_20120810.TransactWriteItems``), ``header`` (``(name, regex)``). It fires on the
    first ``times`` matching requests (after skipping ``after`` of them), or on each matching
    request with ``probability`` from the proxy's seeded random generator (with ``times`` as a
    cap), or on every match when neither is given. The first rule that fires wins. Rules are
    evaluated in order under a lock, so with a fixed seed and a fixed request order the same
    requests fail every run.

Faults (constructors below)
    * :func:`aws_throttling` — HTTP 400 with the AWS JSON 1.0 error
      ``ThrottlingException`` or ``ProvisionedThroughputExceededException`` (botocore's
      standard retry mode classifies both as throttling and retries them);
    * :func:`s3_slow_down` — S3's XML ``SlowDown`` with HTTP 503;
    * :func:`http_error` — any status with any body (500, 503 …);
    * :func:`kube_status` / :func:`kube_too_many_requests` — a Kubernetes ``Status`` answer
      (429 ``TooManyRequests`` with ``Retry-After`` and ``details.retryAfterSeconds``, 403 …);
    * :func:`delay` — hold the request longer than the client's timeout, then (by default)
      close the connection without forwarding it; ``forward=True`` forwards it afterwards,
      like a server that was only slow;
    * :func:`drop` — close the connection without any answer (``after_forward=True``: after the
      upstream processed the request, so the client never learns it succeeded);
    * :func:`reset_mid_body` — forward, send the status line, headers and half the body, then
      reset the connection (TCP RST).

:meth:`FaultProxy.stats` counts requests, forwarded requests and injections per fault and per
rule; :meth:`FaultProxy.disable` passes everything through (rules kept), :meth:`clear` removes
the rules.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import urlsplit

# Not forwarded in either direction: they describe one connection, not the message.
_HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "expect",
})
DEFAULT_UPSTREAM_TIMEOUT_S = 60.0


# ------------------------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Fault:
    """What to do to a matching request. ``kind`` is ``respond``, ``delay``, ``drop`` or
    ``reset``; ``name`` is how :meth:`FaultProxy.stats` counts it."""

    name: str
    kind: str
    status: int = 0
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0
    forward: bool = False


def http_error(status: int = 500, body: bytes | str = b"", content_type: str = "text/plain",
               headers: dict[str, str] | None = None, name: str = "") -> Fault:
    """Answer ``status`` with ``body`` instead of forwarding."""
    data = body.encode() if isinstance(body, str) else body
    if not data:
        data = f"injected {status}\n".encode()
    return Fault(name or f"http-{status}", "respond", status, data,
                 (("Content-Type", content_type), *tuple((headers or {}).items())))


_AWS_THROTTLING_MESSAGES = {
    "ThrottlingException": "Rate exceeded",
    "ProvisionedThroughputExceededException": (
        "The level of configured provisioned throughput for the table was exceeded. Consider increasing "
        "your provisioning level with the UpdateTable API."
    ),
}


def aws_throttling(code: str = "ThrottlingException", service_prefix: str = "com.amazonaws.dynamodb.v20120810",
                   status: int = 400) -> Fault:
    """AWS JSON-protocol throttling (DynamoDB's wire format): HTTP 400,
    ``{"__type": "<prefix>#<code>", "message": …}``."""
    body = json.dumps({"__type": f"{service_prefix}#{code}",
                       "message": _AWS_THROTTLING_MESSAGES.get(code, "Rate exceeded")}, separators=(",", ":"))
    return http_error(status, body, "application/x-amz-json-1.0",
                      {"x-amzn-RequestId": "FAULTPROXY0000000000000000000000000000000000000000000"},
                      name="aws-throttling" if code == "ThrottlingException" else f"aws-{code}")


def s3_slow_down() -> Fault:
    """S3's ``SlowDown`` (HTTP 503, XML error body)."""
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
            "<Message>Please reduce your request rate.</Message><RequestId>FAULTPROXY</RequestId>"
            "<HostId>faultproxy</HostId></Error>")
    return http_error(503, body, "application/xml", name="s3-slow-down")


def kube_status(code: int, reason: str, message: str, retry_after: int | None = None, name: str = "") -> Fault:
    """A Kubernetes ``Status`` failure answer (``reason`` as the API server spells it:
    ``TooManyRequests``, ``Forbidden``, ``InternalError``, ``ServiceUnavailable`` …)."""
    status: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                              "message": message, "reason": reason, "code": code}
    headers = {}
    if retry_after is not None:
        status["details"] = {"retryAfterSeconds": retry_after}
        headers["Retry-After"] = str(retry_after)
    return http_error(code, json.dumps(status), "application/json", headers, name=name or f"kube-{code}")


def kube_too_many_requests(retry_after: int = 1) -> Fault:
    """The API server's priority-and-fairness rejection: 429 with ``Retry-After``."""
    return kube_status(429, "TooManyRequests", "Too many requests, please try again later.", retry_after,
                       name="kube-429")


def delay(seconds: float, forward: bool = False) -> Fault:
    """Hold the request ``seconds`` (longer than the client's timeout), then close the connection
    — or, with ``forward``, forward it and answer late."""
    return Fault("delay" if not forward else "delay-forward", "delay", seconds=seconds, forward=forward)


def drop(after_forward: bool = False) -> Fault:
    """Close the connection without an answer; ``after_forward``: once the upstream handled it."""
    return Fault("drop-after-forward" if after_forward else "drop", "drop", forward=after_forward)


def reset_mid_body() -> Fault:
    """Forward, then send the headers and half the body and reset the connection."""
    return Fault("reset-mid-body", "reset", forward=True)


# -------------------------------------------------------------------------------------- rules


@dataclass
class Rule:
    """A fault and the requests it applies to (see the module docstring)."""

    fault: Fault
    method: str | None = None
    path: str | None = None
    target: str | None = None
    header: tuple[str, str] | None = None
    times: int | None = None
    probability: float | None = None
    after: int = 0
    matched: int = 0
    injected: int = 0
    _path_re: re.Pattern[str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._path_re = re.compile(self.path) if self.path else None

    def matches(self, method: str, path: str, headers: http.client.HTTPMessage) -> bool:
        if self.method and method.upper() != self.method.upper():
            return False
        if self._path_re and not self._path_re.search(path):
            return False
        if self.target:
            target = headers.get("X-Amz-Target") or ""
            if target != self.target and target.rpartition(".")[2] != self.target:
                return False
        if self.header:
            name, pattern = self.header
            if not re.search(pattern, headers.get(name) or ""):
                return False
        return True

    def fires(self, rng: random.Random) -> bool:
        """Called for a matching request, under the proxy's lock."""
        self.matched += 1
        if self.matched <= self.after:
            return False
        if self.times is not None and self.injected >= self.times:
            return False
        if self.probability is not None and rng.random() >= self.probability:
            return False
        self.injected += 1
        return True

    def describe(self) -> dict[str, Any]:
        return {"fault": self.fault.name, "method": self.method, "path": self.path, "target": self.target,
                "times": self.times, "probability": self.probability, "matched": self.matched,
                "injected": self.injected}


# -------------------------------------------------------------------------------------- proxy


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], proxy: FaultProxy):
        self.proxy = proxy
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass  # the fault closed the socket already

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _proxy(self) -> None:
        proxy = self.server.proxy
        body = self._read_body()
        fault = proxy._choose(self.command, self.path, self.headers)
        if fault is None:
            self._relay(self._forward(body))
            return
        if fault.kind == "respond":
            self._send(fault.status, fault.headers, fault.body)
        elif fault.kind == "delay":
            if proxy._stopping.wait(fault.seconds) or not fault.forward:
                self._abort(reset=False)
                return
            self._relay(self._forward(body))
        elif fault.kind == "drop":
            if fault.forward:
                self._forward(body)
            self._abort(reset=False)
        elif fault.kind == "reset":
            status, headers, data = self._forward(body)
            half = data[: len(data) // 2]
            # An empty answer still announces a byte, so the reset always cuts something short.
            self._send(status, headers, half, length=max(len(data), 1))
            self._abort(reset=True)
        else:
            raise AssertionError(f"unknown fault kind {fault.kind!r}")

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _proxy

    def _forward(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
        proxy = self.server.proxy
        upstream = proxy._upstream
        connection_class = http.client.HTTPSConnection if upstream.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(upstream.hostname, upstream.port, timeout=proxy.upstream_timeout_s)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        try:
            connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                connection.putheader(name, value)
            connection.endheaders(body if body else None)
            response = connection.getresponse()
            data = response.read()
            result = (response.status, [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP], data)
        except (OSError, http.client.HTTPException) as exc:
            result = (502, [("Content-Type", "text/plain")], f"fault proxy: upstream failed: {exc}\n".encode())
        finally:
            connection.close()
        with proxy._lock:
            proxy._forwarded += 1
        return result

    def _relay(self, answer: tuple[int, list[tuple[str, str]], bytes]) -> None:
        self._send(*answer)

    def _send(self, status: int, headers: list[tuple[str, str]] | tuple[tuple[str, str], ...], data: bytes,
              length: int | None = None) -> None:
        """Answer; ``length`` announces more bytes than ``data`` holds (a cut-off body)."""
        try:
            self.send_response_only(status)
            self.send_header("Date", self.date_time_string())
            head = self.command == "HEAD"
            has_length = False
            for name, value in headers:
                if name.lower() == "content-length":
                    if head:  # a HEAD answer's length describes the body it did not send
                        self.send_header(name, value)
                        has_length = True
                    continue
                if name.lower() == "date":
                    continue
                self.send_header(name, value)
            if not head:
                self.send_header("Content-Length", str(length if length is not None else len(data)))
            elif not has_length:
                self.send_header("Content-Length", "0")
            self.end_headers()
            if not head and data:
                self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _abort(self, reset: bool) -> None:
        """Close the client connection now: FIN (no answer) or RST (``reset``)."""
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass


class FaultProxy:
    """A threaded reverse proxy to ``upstream_url`` on ``host:port`` (0: a free port) that
    injects the faults of its rules. ``seed`` seeds the generator of probabilistic rules."""

    def __init__(self, upstream_url: str, port: int = 0, *, host: str = "127.0.0.1", seed: int = 0,
                 upstream_timeout_s: float = DEFAULT_UPSTREAM_TIMEOUT_S):
        parts = urlsplit(upstream_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream_url must be an http(s) URL, not {upstream_url!r}")
        self.upstream_url = upstream_url.rstrip("/")
        self._upstream = parts
        self.host = host
        self.port = port
        self.upstream_timeout_s = upstream_timeout_s
        self._rng = random.Random(seed)
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._enabled = True
        self._requests = 0
        self._forwarded = 0
        self._injected: Counter[str] = Counter()
        self._by_request: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the fault proxy is not running; call start() first")
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        if self._server is None:
            self._stopping.clear()
            self._server = _Server((self.host, self.port), self)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                            name=f"fault-proxy-{self.port}", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; requests held by :func:`delay` are released (and dropped)."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------------------------- rules

    def inject(self, fault: Fault, *, method: str | None = None, path: str | None = None,
               target: str | None = None, header: tuple[str, str] | None = None, times: int | None = None,
               probability: float | None = None, after: int = 0) -> Rule:
        """Add a rule (see the module docstring); returns it (its ``matched``/``injected``
        counters are live)."""
        if probability is not None and not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be between 0 and 1")
        rule = Rule(fault, method, path, target, header, times, probability, after)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule (stats are kept; see :meth:`reset_stats`)."""
        with self._lock:
            self._rules.clear()

    def disable(self) -> None:
        """Pass every request through untouched, keeping the rules."""
        with self._lock:
            self._enabled = False

    def enable(self) -> None:
        with self._lock:
            self._enabled = True

    def _choose(self, method: str, path: str, headers: http.client.HTTPMessage) -> Fault | None:
        target = (headers.get("X-Amz-Target") or "").rpartition(".")[2]
        with self._lock:
            self._requests += 1
            self._by_request[f"{method} {target}" if target else method] += 1
            if not self._enabled:
                return None
            for rule in self._rules:
                if rule.matches(method, path, headers) and rule.fires(self._rng):
                    self._injected[rule.fault.name] += 1
                    return rule.fault
        return None

    # ---------------------------------------------------------------------------------- stats

    def stats(self) -> dict[str, Any]:
        """``{"requests": N, "forwarded": N, "injected": {fault name: N}, "injected_total": N,
        "by_request": {"PATCH": N, "POST TransactWriteItems": N …}, "rules": [...]}``."""
        with self._lock:
            return {
                "requests": self._requests,
                "forwarded": self._forwarded,
                "injected": dict(self._injected),
                "injected_total": sum(self._injected.values()),
                "by_request": dict(self._by_request),
                "rules": [rule.describe() for rule in self._rules],
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._requests = self._forwarded = 0
            self._injected.clear()
            self._by_request.clear()
            for rule in self._rules:
                rule.matched = rule.injected = 0
