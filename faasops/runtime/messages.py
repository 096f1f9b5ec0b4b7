"""The request a runtime is given and the response (plus diagnostics) it gives back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP request for one function.

    ``path`` is the full request target (path and query) as the client sent it. ``base_path`` is
    where the local server mounts the function (``/ws/fn``): it is taken off before the guest
    sees the request, which then reads exactly as on the cluster, where the function is an app of
    its own with route ``/...`` (see :mod:`faasops.runtime.http_trigger`). Header values are the
    bytes sent, as latin-1 text (one char per byte), as ``http.server`` and ``http.client`` keep
    them. ``client_addr`` (``ip:port``) is None for a request run in-process.
    """

    method: str
    path: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    base_path: str = "/"
    scheme: str = "http"
    client_addr: str | None = None


@dataclass(frozen=True)
class HttpResponse:
    """What the function answered, with the request's captured output and costs.

    ``error`` is set when the guest failed: the trap text when it crashed or called an
    unsupported host API, or the guest's Python traceback when its handler raised.
    ``cpu_s`` is the CPU time of the thread that ran the request (guest and host code).
    """

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    cpu_s: float = 0.0
    error: str | None = None
    limit_exceeded: str | None = None
    """Set when a runtime limit (time, memory) stopped the guest: says which, with its value."""
    streamed: bool = False
    """The head and body went to the request's :class:`ResponseSink` while the guest ran;
    ``body`` is then empty."""
    incomplete: str | None = None
    """Why a streamed body did not end properly (the guest crashed, ran out of time, returned
    without finishing the body, or the client stopped taking it); None when it ended properly.
    The client must see a cut connection, never a complete response."""

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        key = name.lower()
        return next((v for n, v in self.headers if n.lower() == key), None)


class ResponseSink(Protocol):
    """Where a response goes while the guest writes it: the server's connection to the client.

    The runtime calls it on the guest's thread, from host functions: :meth:`start` when the
    guest sets its response (``response-outparam.set``), :meth:`write` for every body write
    after that. Ending the response (or cutting it) is the caller's business once
    :meth:`faasops.runtime.LoadedApp.handle` returned, as the :class:`HttpResponse` says.
    """

    def start(self, status: int, headers: list[tuple[str, str]], deadline: float) -> bool:
        """The guest's status and headers (values as latin-1 text, one char per byte). True:
        the head is sent and body bytes follow through :meth:`write`; False: keep buffering,
        the response is answered as a whole when the guest returns. ``deadline`` is the
        ``time.monotonic()`` value after which no write may block."""
        ...

    def write(self, data: bytes) -> str | None:
        """Send body bytes now; None when they went out, else why the client can't take them
        (it went away, stopped reading until the deadline, or the body outgrew its
        Content-Length). After a refusal the guest's body stream is closed."""
        ...


@dataclass(frozen=True)
class InvocationRecord:
    """One served request, as reported to ``on_invocation``."""

    time: float  # wall-clock start, seconds since the epoch
    workspace: str
    function: str
    method: str
    path: str
    status: int
    duration_s: float
    cpu_s: float
    stdout: str
    stderr: str
    error: str | None
