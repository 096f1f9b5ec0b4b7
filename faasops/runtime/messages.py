"""The request a runtime is given and the response (plus diagnostics) it gives back."""

from __future__ import annotations

from dataclasses import dataclass, field


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

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        key = name.lower()
        return next((v for n, v in self.headers if n.lower() == key), None)


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
