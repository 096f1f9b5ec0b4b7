"""Unpacking a function's source archive (a gzip'd tar) without trusting it.

Every source archive faasops unpacks goes through :func:`extract_source_archive`: an upload to
the Builder service and the snapshot the componentize builder extracts alike. It works in two
passes over the decompressed stream:

1. :func:`scan_source_archive` reads the raw 512-byte tar headers itself, streaming through gzip
   with a cap on the decompressed bytes, and checks every limit *before* anything is handed to
   :mod:`tarfile`: the size of each extended header (PAX ``x``/``g``, GNU long name ``L``), the
   shape of each PAX record, the length and characters of each name, the number of members, the
   total unpacked size and the compression ratio. It refuses anything but regular files and
   directories, names that are not UTF-8, absolute, contain ``..`` or repeat.
2. :mod:`tarfile` then extracts (``filter="data"``) from a stream cut off where the scan ended,
   and every member it reads must be the one the scan checked — so tarfile never reads a byte the
   scan did not.

Why not tarfile alone: it reads an extended header of any size into memory (an 815 KB upload
holding an 800 MiB PAX header took 42 s and 883 MB before it was accepted) and parses PAX
records with regular expressions that are superlinear on runs of digits (the class of
CVE-2024-6232, fixed only in later Python patch releases). The scan's own record parser is
linear, and it refuses digit runs long enough to make tarfile's expressions slow.

Over a limit, :class:`ArchiveError` names the limit (its ``limit``: an :class:`ArchiveLimits`
field); otherwise the archive is malformed or unsafe and ``limit`` is None.
"""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from faasops.errors import FaasopsError
from faasops.source import MAX_SOURCE_BYTES

BLOCK = 512
GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_MAX_FILES = 10_000
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_MAX_NAME_BYTES = 1024
DEFAULT_MAX_COMPRESSION_RATIO = 200
# Fixed limits (not configurable): no legitimate archive comes near them.
MAX_TOTAL_HEADER_BYTES = 4 * 1024 * 1024  # all extended headers of one archive together
MAX_PAX_RECORDS = 128  # records in one PAX header
MAX_NAME_COMPONENT_BYTES = 255  # Linux's NAME_MAX
MAX_DIGIT_RUN = 64  # tarfile's PAX regexes go superlinear on long runs of digits
# Below this many decompressed bytes the ratio is not checked: a one-file archive is mostly the
# tar format's zero padding and compresses 50:1.
RATIO_FLOOR_BYTES = 1024 * 1024
_SKIP_CHUNK = 64 * 1024

_ZERO_BLOCK = bytes(BLOCK)
_REGULAR = (b"0", b"\0")
_DIRECTORY = b"5"
_PAX = b"x"
_PAX_GLOBAL = b"g"
_GNU_LONGNAME = b"L"
_REFUSED_TYPES = {
    b"1": "a hard link", b"2": "a symbolic link", b"3": "a character device", b"4": "a block device",
    b"6": "a FIFO", b"7": "a contiguous file", b"S": "a GNU sparse file", b"V": "a volume label",
    b"M": "a multi-volume continuation", b"K": "a GNU long link name (links are not allowed)",
    b"X": "a Solaris extended header",
}
# PAX keys that change where the next header starts or what the member is; refused except
# ``path`` and ``size`` in a per-member header, which are honoured exactly as tarfile does.
_PAX_LAYOUT_KEYS = frozenset({"path", "size", "linkpath"})
_LONG_DIGITS = re.compile(rb"[0-9]{%d}" % (MAX_DIGIT_RUN + 1))
_SIZE_VALUE = re.compile(r"[0-9]{1,20}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ArchiveError(FaasopsError):
    """A source archive faasops refuses to unpack; ``limit`` names the limit it exceeds (an
    :class:`ArchiveLimits` field, or ``total_header_bytes``, which is fixed), None when it is
    malformed or unsafe instead."""

    def __init__(self, message: str, limit: str | None = None):
        self.limit = limit
        super().__init__(message)


@dataclass(frozen=True)
class ArchiveLimits:
    """What a source archive may hold (the Builder service's ``limits:`` use the same names)."""

    max_source_bytes: int = MAX_SOURCE_BYTES  # total size of the members, uncompressed
    max_files: int = DEFAULT_MAX_FILES  # members (files and directories)
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES  # one PAX or GNU extended header
    max_name_bytes: int = DEFAULT_MAX_NAME_BYTES  # one member name, UTF-8
    max_compression_ratio: int = DEFAULT_MAX_COMPRESSION_RATIO  # decompressed : compressed

    def stream_cap(self) -> int:
        """Most decompressed bytes a scan reads: the members' data, one header and padding per
        member, the extended headers' budget and the end-of-archive blocks."""
        return self.max_source_bytes + (self.max_files + 1) * 2 * BLOCK + MAX_TOTAL_HEADER_BYTES + 2 * BLOCK


@dataclass(frozen=True)
class ArchiveMember:
    """A member the scan accepted: ``path`` is normalised (no ``./``, no trailing ``/``; ``""``
    for the archive's root directory)."""

    path: str
    is_dir: bool
    size: int

    def matches(self, info: tarfile.TarInfo) -> bool:
        """Whether tarfile read this very member."""
        if self.is_dir:
            return info.isdir() and _normalise(info.name) == self.path
        return info.isreg() and info.size == self.size and _normalise(info.name) == self.path


@dataclass(frozen=True)
class ScannedArchive:
    """What :func:`scan_source_archive` found; ``end`` is the decompressed offset just after the
    end-of-archive block (or the end of the stream)."""

    members: tuple[ArchiveMember, ...]
    end: int


class _Inflated:
    """The decompressed stream of ``archive``, read forward only; refuses to go past the cap or
    the compression ratio."""

    def __init__(self, archive: bytes, limits: ArchiveLimits):
        self._gzip = gzip.GzipFile(fileobj=io.BytesIO(archive), mode="rb")
        self._compressed = max(len(archive), 1)
        self._limits = limits
        self._cap = limits.stream_cap()
        self.position = 0

    def read(self, size: int) -> bytes:
        if self.position + size > self._cap:
            raise _too_large(self._limits)
        try:
            data = self._gzip.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise ArchiveError(f"the archive is not a readable gzip stream ({exc})") from None
        self.position += len(data)
        ratio = self._limits.max_compression_ratio
        if self.position > RATIO_FLOOR_BYTES and self.position > ratio * self._compressed:
            raise ArchiveError(
                f"the archive expands more than {ratio} times its compressed size ({self._compressed} bytes)",
                "max_compression_ratio",
            )
        return data

    def read_exact(self, size: int, what: str) -> bytes:
        data = self.read(size)
        if len(data) != size:
            raise ArchiveError(f"the archive ends in the middle of {what}")
        return data

    def skip(self, size: int, what: str) -> None:
        while size:
            size -= len(self.read_exact(min(size, _SKIP_CHUNK), what))


def _too_large(limits: ArchiveLimits) -> ArchiveError:
    return ArchiveError(f"the archive unpacks to more than {limits.max_source_bytes} bytes; "
                        "keep build outputs and data files out of function sources", "max_source_bytes")


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _until_nul(field: bytes) -> bytes:
    end = field.find(b"\0")
    return field if end < 0 else field[:end]


def _octal(field: bytes, what: str, where: str) -> int:
    """A numeric header field, stricter than tarfile: octal digits only (no base-256, sign, ``0o``
    or underscores, all of which tarfile's ``int(…, 8)`` would take)."""
    text = _until_nul(field).strip(b" ")
    if not text:
        return 0
    if not text.isdigit() or b"8" in text or b"9" in text:
        raise ArchiveError(f"{where}: the {what} field is not an octal number")
    return int(text, 8)


def _check_checksum(block: bytes, where: str) -> None:
    stored = _octal(block[148:156], "checksum", where)
    header = block[:148] + b" " * 8 + block[156:]
    unsigned = sum(header)
    if stored == unsigned:
        return
    # Some old tars summed signed bytes (tarfile accepts both).
    signed = unsigned - 256 * sum(1 for byte in header if byte > 127)
    if stored != signed:
        raise ArchiveError(f"{where}: bad header checksum (not a tar archive, or a corrupt one)")


def _show(name: str | bytes) -> str:
    """A name for a message: escaped (control characters, invalid UTF-8) and shortened."""
    shown = repr(name)[1:] if isinstance(name, bytes) else repr(name)
    return shown if len(shown) <= 120 else shown[:100] + "…'"


def _normalise(name: str) -> str:
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def _decode_name(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ArchiveError(f"{where}: the name {_show(raw)} is not UTF-8") from None


def _checked_path(name: str, is_dir: bool, limits: ArchiveLimits, where: str) -> str:
    """The normalised path of a member name, or an error saying what is wrong with it."""
    if len(name.encode()) > limits.max_name_bytes:
        raise ArchiveError(f"{where}: the name is {len(name.encode())} bytes long; at most "
                           f"{limits.max_name_bytes} are allowed", "max_name_bytes")
    if _CONTROL.search(name):
        raise ArchiveError(f"{where}: the name {_show(name)} contains a control character")
    if name.startswith("/"):
        raise ArchiveError(f"{where}: refusing absolute path {_show(name)}")
    parts = name.split("/")
    if ".." in parts:
        raise ArchiveError(f"{where}: refusing path {_show(name)}, which leaves the source directory")
    if any(len(part.encode()) > MAX_NAME_COMPONENT_BYTES for part in parts):
        raise ArchiveError(f"{where}: a part of the name {_show(name)} is longer than "
                           f"{MAX_NAME_COMPONENT_BYTES} bytes")
    path = _normalise(name)
    if not path and not is_dir:
        raise ArchiveError(f"{where}: a file without a name ({_show(name)})")
    if not is_dir and name.endswith("/"):
        raise ArchiveError(f"{where}: the file {_show(name)} is named like a directory")
    return path


def _pax_records(data: bytes, global_: bool, where: str) -> dict[str, bytes]:
    """The records of a PAX header, parsed linearly and strictly: ``LEN SP KEY=VALUE LF`` back to
    back, each ``LEN`` exactly the record's length, nothing else (tarfile, which reads the same
    bytes next, then finds exactly these records)."""
    if _LONG_DIGITS.search(data):
        raise ArchiveError(f"{where}: the PAX header holds a run of more than {MAX_DIGIT_RUN} digits")
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if len(records) >= MAX_PAX_RECORDS:
            raise ArchiveError(f"{where}: the PAX header holds more than {MAX_PAX_RECORDS} records")
        space = data.find(b" ", pos, pos + 8)
        digits = data[pos:space] if space > pos else b""
        if not digits.isdigit() or digits.startswith(b"0"):
            raise ArchiveError(f"{where}: malformed PAX record at byte {pos} (no length)")
        end = pos + int(digits)
        equals = data.find(b"=", space + 1, end)
        if end > len(data) or data[end - 1:end] != b"\n" or equals <= space + 1:
            raise ArchiveError(f"{where}: malformed PAX record at byte {pos}")
        try:
            key = data[space + 1:equals].decode("utf-8")
        except UnicodeDecodeError:
            raise ArchiveError(f"{where}: a PAX record's key is not UTF-8") from None
        value = data[equals + 1:end - 1]
        if key.startswith("GNU.sparse.") or key == "linkpath" or (global_ and key in _PAX_LAYOUT_KEYS):
            raise ArchiveError(f"{where}: refusing the PAX record {_show(key)} in a "
                               f"{'global ' if global_ else ''}header")
        records[key] = value
        pos = end
    return records


def scan_source_archive(archive: bytes, limits: ArchiveLimits = ArchiveLimits()) -> ScannedArchive:
    """Check ``archive`` header by header (see the module docstring) without extracting it or
    holding more than one extended header in memory; raise :class:`ArchiveError` at the first
    problem."""
    if archive[:2] != GZIP_MAGIC:
        raise ArchiveError("the archive is not gzip-compressed (a source archive is a .tar.gz)")
    stream = _Inflated(archive, limits)
    members: list[ArchiveMember] = []
    seen: dict[str, bool] = {}  # normalised path → is a directory
    total = header_bytes = 0
    long_name: bytes | None = None  # from an `L` or a PAX `path`, for the next member
    long_size: int | None = None  # from a PAX `size`
    extended: str | None = None  # the kind of extended header pending, for messages
    while True:
        offset = stream.position
        where = f"header at byte {offset}"
        block = stream.read(BLOCK)
        if not block or block == _ZERO_BLOCK:
            if extended:
                raise ArchiveError(f"{where}: the archive ends after a {extended} without its member")
            break
        if len(block) != BLOCK:
            raise ArchiveError(f"{where}: the archive ends in the middle of a tar header"
                               + (" (it is not a tar archive)" if offset == 0 else ""))
        _check_checksum(block, where)
        kind = block[156:157]
        size = _octal(block[124:136], "size", where)
        if kind in (_PAX, _PAX_GLOBAL, _GNU_LONGNAME):
            label = {_PAX: "PAX header", _PAX_GLOBAL: "PAX global header", _GNU_LONGNAME: "GNU long name header"}[kind]
            if size > limits.max_header_bytes:
                raise ArchiveError(f"{where}: a {label} of {size} bytes; at most {limits.max_header_bytes} "
                                   "are allowed", "max_header_bytes")
            header_bytes += BLOCK + _padded(size)
            if header_bytes > MAX_TOTAL_HEADER_BYTES:
                raise ArchiveError(f"{where}: the archive's extended headers exceed {MAX_TOTAL_HEADER_BYTES} bytes "
                                   "in all", "total_header_bytes")
            if extended:
                raise ArchiveError(f"{where}: a {label} after a {extended}: one extended header per member")
            data = stream.read_exact(_padded(size), f"a {label}")
            if data[size:].strip(b"\0"):
                raise ArchiveError(f"{where}: the {label} has data after its declared size")
            if kind == _GNU_LONGNAME:
                long_name, extended = _until_nul(data), label
            elif kind == _PAX:
                records = _pax_records(data[:size], False, where)
                if "size" in records:
                    text = records["size"].decode("ascii", "replace")
                    if not _SIZE_VALUE.fullmatch(text):
                        raise ArchiveError(f"{where}: the PAX size {_show(text)} is not a number")
                    long_size = int(text)
                if "path" in records:
                    long_name = records["path"].rstrip(b"/") or records["path"]
                extended = label
            else:
                _pax_records(data[:size], True, where)
            continue
        if kind in _REFUSED_TYPES or kind not in (*_REGULAR, _DIRECTORY):
            what = _REFUSED_TYPES.get(kind, f"of unknown type {_show(kind)}")
            name = _show(long_name if long_name is not None else _until_nul(block[0:100]))
            raise ArchiveError(f"{where}: refusing {name}, {what} (only files and directories are allowed)")
        header_name = _until_nul(block[0:100])
        # As tarfile: an old-style file whose name ends in "/" is a directory, and a ustar prefix
        # is joined to the name.
        is_dir = kind == _DIRECTORY or (kind == b"\0" and header_name.endswith(b"/"))
        prefix = _until_nul(block[345:500])
        raw_name = long_name if long_name is not None else (prefix + b"/" + header_name if prefix else header_name)
        if long_size is not None:
            size = long_size
        name = _decode_name(raw_name, where)
        where = f"member {_show(name)}"
        path = _checked_path(name, is_dir, limits, where)
        if is_dir and size:
            raise ArchiveError(f"{where}: a directory with {size} bytes of data")
        if len(members) >= limits.max_files:
            raise ArchiveError(f"the archive holds more than {limits.max_files} members", "max_files")
        total += size
        if total > limits.max_source_bytes:
            raise _too_large(limits)
        if path in seen and not (is_dir and seen[path]):
            raise ArchiveError(f"{where}: the name appears twice in the archive")
        seen[path] = is_dir
        stream.skip(_padded(size), f"the data of {_show(name)}")
        members.append(ArchiveMember(path, is_dir, size))
        long_name = long_size = extended = None
    if not members:
        raise ArchiveError("the archive is empty")
    return ScannedArchive(tuple(members), stream.position)


class _Prefix(io.RawIOBase):
    """The first ``limit`` decompressed bytes of an archive: all tarfile gets to read."""

    def __init__(self, archive: bytes, limit: int):
        self._gzip = gzip.GzipFile(fileobj=io.BytesIO(archive), mode="rb")
        self._left = limit

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = self._left if size < 0 else min(size, self._left)
        data = self._gzip.read(size) if size else b""
        self._left -= len(data)
        return data


def extract_source_archive(archive: bytes, dest: Path,
                           limits: ArchiveLimits = ArchiveLimits()) -> tuple[ArchiveMember, ...]:
    """Scan ``archive`` (:func:`scan_source_archive`), then extract it into ``dest`` (which should
    be empty) with tarfile's ``data`` filter; return the members."""
    scanned = scan_source_archive(archive, limits)
    expected = iter(scanned.members)

    def checked(tar: tarfile.TarFile) -> Iterator[tarfile.TarInfo]:
        for info in tar:
            member = next(expected, None)
            if member is None or not member.matches(info):
                raise ArchiveError(f"tarfile read member {_show(info.name)} where the "
                                   "check read another; refusing the archive")
            yield info

    try:
        with tarfile.open(fileobj=_Prefix(archive, scanned.end), mode="r|") as tar:
            tar.extractall(dest, members=checked(tar), filter="data")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise ArchiveError(f"the archive cannot be extracted: {exc}") from None
    if next(expected, None) is not None:
        raise ArchiveError("tarfile stopped before the last member the check read")
    return scanned.members
