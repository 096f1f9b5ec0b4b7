"""Checking an uploaded source before anything is stored.

In order, each step refusing before the next one runs:

1. **Size** (:class:`BodyLimit`, ASGI middleware): an upload must declare its
   ``Content-Length`` (411 otherwise) and may not exceed ``limits.max_upload_bytes`` (413) — the
   body is not read at all when the header is over the limit (the connection is closed after the
   answer, so a client should send ``Expect: 100-continue`` or compare with ``max_upload_bytes``
   from ``GET /api/v1/info`` first, as the remote builder does), and the bytes are counted anyway
   in case a client sends more than it declared.
2. **Archive** (:func:`validate_upload`): a gzip'd tar, unpacked into a scratch directory by
   :func:`faasops.source_archive.extract_source_archive`, which checks the raw headers before
   tarfile sees them: ``limits.max_source_bytes`` uncompressed in all, ``limits.max_files``
   members, ``limits.max_header_bytes`` per PAX or GNU extended header, ``limits.max_name_bytes``
   per name and ``limits.max_compression_ratio``, streaming through gzip so a decompression bomb
   stops at the limit; only plain files and directories with UTF-8, relative, unique names
   (no ``..``). Over a limit answers 413, anything else wrong with the archive 422.
3. **Handler contract**: the handler module is checked by
   :func:`faasops.handler_contract.check_handler`, exactly as ``faasops validate`` checks it,
   and problems come back located (``app.py:4:1: …``); then ``requirements.txt`` and the
   imports, by :func:`faasops.imports_check.check_function_imports`, as ``faasops validate`` does.

Any refusal is an :class:`UploadRejected` (HTTP 413 or 422) and leaves no task, no stored
source and no build behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from starlette.exceptions import HTTPException

from faasops.errors import RequestRefused
from faasops.handler_contract import check_handler, module_file
from faasops.imports_check import check_function_imports
from faasops.providers import SourceSnapshot
from faasops.source import SourceError, snapshot_directory
from faasops.source_archive import ArchiveError, ArchiveLimits, extract_source_archive

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class UploadRejected(RequestRefused):
    """An upload the service refuses; ``status`` is the HTTP status to answer with."""


@dataclass(frozen=True)
class UploadLimits:
    """The size of a request body, and what the archive in it may hold."""

    max_upload_bytes: int
    archive: ArchiveLimits


def validate_upload(archive: bytes, handler: str, scratch: Path, limits: UploadLimits,
                    dependencies: tuple[str, ...] = ()) -> SourceSnapshot:
    """Check ``archive`` (steps 2 and 3 above) and return its snapshot, re-made from the
    extracted files so its digest is computed exactly as a client's ``faasops apply`` computes it."""
    try:
        extract_source_archive(archive, scratch, limits.archive)
    except ArchiveError as exc:
        # An extraction error (OSError) quotes the scratch path: the client knows it as the upload.
        message = "source archive: " + str(exc).replace(str(scratch), "upload")
        if exc.limit is None:
            raise UploadRejected(422, message) from None
        value = getattr(limits.archive, exc.limit, None)
        raise UploadRejected(413, message + (f" (this builder's limits.{exc.limit} is {value})" if value else "")) from None
    module = scratch / module_file(handler)
    if not module.is_file():
        raise UploadRejected(422, f"{module_file(handler)}: the handler module is not in the upload "
                                  f"(handler {handler!r} is that file in the source directory)")
    problems = check_handler(module, module_file(handler), scratch)
    if problems:
        raise UploadRejected(422, "the handler does not meet the Spin handler contract:\n"
                                  + "\n".join(f"  {problem}" for problem in problems))
    problems = check_function_imports(scratch, handler, dependencies=dependencies)
    if problems:
        raise UploadRejected(422, "the source's requirements or imports can't work in a component:\n"
                                  + "\n".join(f"  {problem}" for problem in problems))
    try:
        return snapshot_directory(scratch, limits.archive.max_source_bytes)
    except SourceError as exc:
        raise UploadRejected(422, str(exc).replace(str(scratch), "upload")) from exc


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
