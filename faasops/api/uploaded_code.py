"""A function's code as the API receives it: Base64 in the request body's ``code`` field.

The decoded bytes are one of: a gzip'd tar of the source directory, a zip of it, or the handler
module itself (UTF-8 Python). Everything is checked here, before the project's work tree is
touched: the size, the archive's safety (tar.gz through :mod:`faasops.source_archive`; a zip is
read with :mod:`zipfile` under the same limits and re-packed as a tar.gz, so the very same scan
and extraction judge it), Python syntax and the Spin handler contract
(:mod:`faasops.handler_contract`). A problem is a :class:`CodeRejected` carrying the HTTP status
(400 for Base64 that does not decode, 413 over a size limit, 422 otherwise) and a located
message such as ``app.py:3:1: Python syntax error: …``.
"""

from __future__ import annotations

import base64
import binascii
import io
import shutil
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from faasops.errors import RequestRefused
from faasops.handler_contract import check_handler, check_handler_source, decode_utf8, module_file
from faasops.source_archive import GZIP_MAGIC, ArchiveError, ArchiveLimits, extract_source_archive

ZIP_MAGIC = b"PK\x03\x04"
# A JSON body holds the code as Base64 (4/3 of it): the body limit follows from this one.
MAX_CODE_BYTES = 10 * 1024 * 1024
LIMITS = ArchiveLimits(max_source_bytes=4 * MAX_CODE_BYTES, max_files=2_000)


class CodeRejected(RequestRefused):
    """The ``code`` field is refused; ``status`` is the HTTP status to answer."""


@dataclass(frozen=True)
class UploadedCode:
    """Checked code, ready to be written: ``archive`` (tar.gz, replaces the whole source
    directory) or ``module`` (the handler module's text, replaces that one file)."""

    handler: str
    archive: bytes | None = None
    module: bytes | None = None

    def write_into(self, source_dir: Path) -> None:
        """Write the code into ``source_dir`` (an archive replaces the directory's contents)."""
        if self.archive is not None:
            if source_dir.exists():
                shutil.rmtree(source_dir)
            source_dir.mkdir(parents=True)
            extract_source_archive(self.archive, source_dir, LIMITS)
        else:
            assert self.module is not None
            target = source_dir / module_file(self.handler)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.module)


def decode_code(text: object, handler: str) -> UploadedCode:
    """Decode and check the ``code`` field for handler module ``handler`` (e.g. ``app``)."""
    if not isinstance(text, str):
        raise CodeRejected(400, "code: must be a string (the Base64 of the handler module, or of a .tar.gz/.zip "
                                "of the source directory)")
    if len(text) > (MAX_CODE_BYTES * 4) // 3 + 4:
        raise CodeRejected(413, f"code: more than {MAX_CODE_BYTES} bytes once decoded")
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise CodeRejected(400, "code: not valid Base64") from None
    if not data:
        raise CodeRejected(422, "code: empty")
    if data.startswith(GZIP_MAGIC):
        return _checked_archive(data, handler)
    if data.startswith(ZIP_MAGIC):
        return _checked_archive(_zip_as_tar_gz(data), handler)
    display = module_file(handler)
    source, problem = decode_utf8(data, display)
    problems = [problem] if problem else check_handler_source(source, display)
    if problems:
        raise CodeRejected(422, "\n".join(str(p) for p in problems))
    return UploadedCode(handler=handler, module=data)


def _checked_archive(archive: bytes, handler: str) -> UploadedCode:
    with tempfile.TemporaryDirectory(prefix="faasops-api-code-") as scratch:
        root = Path(scratch)
        try:
            extract_source_archive(archive, root, LIMITS)
        except ArchiveError as exc:
            raise CodeRejected(413 if exc.limit else 422, f"code: {exc}") from None
        display = module_file(handler)
        if not (root / display).is_file():
            raise CodeRejected(422, f"code: the archive has no {display} (the handler module {handler!r})")
        problems = check_handler(root / display, display)
    if problems:
        raise CodeRejected(422, "\n".join(str(p) for p in problems))
    return UploadedCode(handler=handler, archive=archive)


def _zip_as_tar_gz(data: bytes) -> bytes:
    """The zip's regular files as a tar.gz, read under :data:`LIMITS` (declared sizes are not
    trusted: each member is read with a cap). Names are checked by the tar scan afterwards."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len(infos) > LIMITS.max_files:
                raise CodeRejected(413, f"code: the zip has more than {LIMITS.max_files} entries")
            out = io.BytesIO()
            total = 0
            with tarfile.open(fileobj=out, mode="w:gz") as tar:
                for info in infos:
                    mode = (info.external_attr >> 16) & 0o170000
                    if mode and mode not in (0o100000, 0o040000):
                        raise CodeRejected(422, f"code: zip entry {info.filename!r} is not a regular file or directory")
                    if info.is_dir():
                        continue
                    with archive.open(info) as member:
                        content = member.read(LIMITS.max_source_bytes - total + 1)
                    total += len(content)
                    if total > LIMITS.max_source_bytes:
                        raise CodeRejected(413, f"code: the zip unpacks to more than {LIMITS.max_source_bytes} bytes")
                    entry = tarfile.TarInfo(info.filename)
                    entry.size = len(content)
                    entry.mode = 0o644
                    tar.addfile(entry, io.BytesIO(content))
            return out.getvalue()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, OSError, ValueError) as exc:
        raise CodeRejected(422, f"code: not a readable zip archive ({exc})") from None
