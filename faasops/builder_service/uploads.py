"""Checking an uploaded source before anything is stored.

In order, each step refusing before the next one runs:

1. **Size** (:class:`BodyLimit`, ASGI middleware): an upload must declare its
   ``Content-Length`` (411 otherwise) and may not exceed ``limits.max_upload_bytes`` (413) — the
   body is not read at all when the header is over the limit (the connection is closed after the
   answer, so a client should send ``Expect: 100-continue`` or compare with ``max_upload_bytes``
   from ``GET /api/v1/info`` first, as the remote builder does), and the bytes are counted anyway
   in case a client sends more than it declared.
2. **Archive** (:func:`validate_upload`): a gzip'd tar whose entries add up to at most
   ``limits.max_source_bytes`` uncompressed and ``limits.max_files`` entries, checked entry by
   entry while reading headers so a decompression bomb stops at the limit; then extracted into a
   scratch directory with the built-in builder's rules
   (:func:`faasops.plugins.componentize.extract_archive`: no absolute names, ``..``, links or
   devices).
3. **Handler contract**: the handler module is checked by
   :func:`faasops.handler_contract.check_handler`, exactly as ``faasops validate`` checks it,
   and problems come back located (``app.py:4:1: …``).

Any refusal is an :class:`UploadRejected` (HTTP 413 or 422) and leaves no task, no stored
source and no build behind.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from starlette.exceptions import HTTPException

from faasops.errors import FaasopsError, ProviderError
from faasops.handler_contract import check_handler
from faasops.plugins.componentize import extract_archive
from faasops.providers import SourceSnapshot
from faasops.source import SourceError, snapshot_directory

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class UploadRejected(FaasopsError):
    """An upload the service refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


@dataclass(frozen=True)
class UploadLimits:
    max_upload_bytes: int
    max_source_bytes: int
    max_files: int


def validate_upload(archive: bytes, handler: str, scratch: Path, limits: UploadLimits) -> SourceSnapshot:
    """Check ``archive`` (steps 2 and 3 above) and return its snapshot, re-made from the
    extracted files so its digest is computed exactly as a client's ``faasops apply`` computes it."""
    _check_entries(archive, limits)
    try:
        extract_archive(archive, scratch)
    except ProviderError as exc:
        raise UploadRejected(422, str(exc)) from exc
    module = scratch / f"{handler}.py"
    if not module.is_file():
        raise UploadRejected(422, f"{handler}.py: the handler module is not in the upload "
                                  f"(handler {handler!r} is a module at the top of the source directory)")
    problems = check_handler(module, f"{handler}.py")
    if problems:
        raise UploadRejected(422, "the handler does not meet the Spin handler contract:\n"
                                  + "\n".join(f"  {problem}" for problem in problems))
    try:
        return snapshot_directory(scratch, limits.max_source_bytes)
    except SourceError as exc:
        raise UploadRejected(422, str(exc).replace(str(scratch), "upload")) from exc


def _check_entries(archive: bytes, limits: UploadLimits) -> None:
    if archive[:2] != b"\x1f\x8b":
        raise UploadRejected(422, "the upload is not a gzip-compressed tar archive (.tar.gz)")
    total = count = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            # Iterating reads one header at a time; stopping here skips decompressing the rest.
            for member in tar:
                count += 1
                total += max(member.size, 0)
                if count > limits.max_files:
                    raise UploadRejected(413, f"the archive holds more than {limits.max_files} entries")
                if total > limits.max_source_bytes:
                    raise UploadRejected(
                        413, f"the archive unpacks to more than {limits.max_source_bytes} bytes; "
                             "keep build outputs and data files out of function sources")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise UploadRejected(422, f"the upload is not a readable tar.gz archive: {exc}") from exc
    if count == 0:
        raise UploadRejected(422, "the archive is empty")


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``max_bytes`` on ``paths`` (step 1 above)."""

    def __init__(self, app: ASGIApp, max_bytes: int, paths: frozenset[str]):
        self.app = app
        self.max_bytes = max_bytes
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is None:
            await answer_json(send, 411, "a request body must declare its Content-Length")
            return
        try:
            length = int(declared)
        except ValueError:
            await answer_json(send, 400, "Content-Length is not a number")
            return
        if length > self.max_bytes:
            await answer_json(send, 413, self._too_large(length))
            return

        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # more than declared: h11 should never let it through
                    raise _BodyTooLarge(self._too_large(seen))
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _BodyTooLarge as exc:
            if not started:
                await answer_json(send, 413, exc.detail)

    def _too_large(self, size: int) -> str:
        return f"the request body is {size} bytes; this builder accepts at most {self.max_bytes} bytes here"


class _BodyTooLarge(HTTPException):
    """An HTTPException, so FastAPI's body parsing passes it on instead of answering 400."""

    def __init__(self, detail: str):
        super().__init__(413, detail)


async def answer_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
