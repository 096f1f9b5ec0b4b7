"""Hostile source archives for the tests and ``bench/archive_bench.py``: each a small .tar.gz that
tries one way around the source-archive limits (:mod:`faasops.source_archive`).

The tar bytes are written here block by block (not with :mod:`tarfile`, which refuses to write
most of them) and compressed as a stream, so an 800 MiB header costs no memory to make.
:data:`CASES` lists them, each with a maker taking a ``scale`` (1.0: the review's sizes; tests use
less) and the HTTP status the Builder service must answer.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from faasops import scaffold_project

BLOCK = 512
MiB = 1024 * 1024
HELLO_HANDLER = scaffold_project.HELLO_HANDLER.encode()


def header(name: bytes, size: int = 0, kind: bytes = b"0", *, prefix: bytes = b"", linkname: bytes = b"",
           mode: int = 0o644, size_field: bytes | None = None) -> bytes:
    """One raw ustar header block with a valid checksum; ``size_field`` replaces the encoded
    size (12 bytes) to forge one."""
    block = bytearray(BLOCK)
    block[0:len(name[:100])] = name[:100]
    block[100:108] = b"%07o\0" % mode
    block[108:116] = b"%07o\0" % 0
    block[116:124] = b"%07o\0" % 0
    block[124:136] = size_field if size_field is not None else b"%011o\0" % size
    block[136:148] = b"%011o\0" % 0
    block[156:157] = kind
    block[157:157 + len(linkname[:100])] = linkname[:100]
    block[257:265] = b"ustar\x0000"
    block[345:345 + len(prefix[:155])] = prefix[:155]
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block)


def padding(size: int) -> bytes:
    return bytes(-size % BLOCK)


def member(name: bytes, data: bytes = b"", kind: bytes = b"0", **fields: object) -> bytes:
    """A header and its data, padded."""
    return header(name, len(data), kind, **fields) + data + padding(len(data))  # type: ignore[arg-type]


def pax_record(key: bytes, value: bytes) -> bytes:
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length).encode()) + len(body) != length:
        length += 1
    return str(length).encode() + body


def end_of_archive() -> bytes:
    return bytes(2 * BLOCK)


def gzip_stream(chunks: Iterable[bytes]) -> bytes:
    """Gzip ``chunks`` as one stream without holding the uncompressed bytes."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = io.BytesIO()
    for chunk in chunks:
        out.write(compressor.compress(chunk))
    out.write(compressor.flush())
    return out.getvalue()


def repeated(byte: bytes, size: int, chunk: int = 4 * MiB) -> Iterator[bytes]:
    block = byte * chunk
    while size > 0:
        yield block[:min(chunk, size)]
        size -= chunk


def hello_member() -> bytes:
    return member(b"app.py", HELLO_HANDLER)


def valid_archive() -> bytes:
    """A source the Builder service accepts: the hello handler."""
    return gzip_stream([hello_member(), end_of_archive()])


def huge_extended_header(kind: bytes, size: int) -> bytes:
    """An extended header (``x`` PAX or ``L`` GNU long name) of ``size`` bytes, then app.py."""
    if kind == b"x":
        # One `comment` record of the whole size: any PAX reader must read it all to parse it.
        head = str(size).encode() + b" comment="
        chunks: Iterable[bytes] = [head, *repeated(b"a", size - len(head) - 1), b"\n"]
    else:
        chunks = repeated(b"a", size)
    return gzip_stream([header(b"././@LongLink" if kind == b"L" else b"pax", size, kind), *chunks,
                        padding(size), hello_member(), end_of_archive()])


def digit_pax_header(digits: int) -> bytes:
    """A PAX header holding only digits (tarfile's regexes backtrack on them: CVE-2024-6232)."""
    return gzip_stream([header(b"pax", digits, b"x"), *repeated(b"1", digits), padding(digits),
                        hello_member(), end_of_archive()])


def many_members(count: int) -> bytes:
    empty = [member(b"f%07d" % i) for i in range(count)]
    return gzip_stream([hello_member(), *empty, end_of_archive()])


def deep_path(depth: int) -> bytes:
    name = b"d/" * depth + b"app.py"
    return gzip_stream([header(b"././@LongLink", len(name) + 1, b"L"), name + b"\0", padding(len(name) + 1),
                        member(b"x", b"x = 1\n"), hello_member(), end_of_archive()])


def gzip_bomb(size: int) -> bytes:
    """A member whose zeros compress about 1000:1."""
    return gzip_stream([hello_member(), header(b"zeros.bin", size), *repeated(b"\0", size), padding(size),
                        end_of_archive()])


def declared_huge() -> bytes:
    """A member declaring 8 GiB - 1 byte (the octal field's maximum) it does not hold."""
    return gzip_stream([hello_member(), header(b"big.bin", 8 * 1024 * MiB - 1), b"x" * BLOCK, end_of_archive()])


def many_pax_records(records: int) -> bytes:
    data = b"".join(pax_record(b"k%d" % i, b"v") for i in range(records))
    return gzip_stream([header(b"pax", len(data), b"x"), data, padding(len(data)), hello_member(),
                        end_of_archive()])


def bad_checksum() -> bytes:
    good = member(b"f.py", b"x")
    return good[:148] + b"0000000\0" + good[156:]


def single(entry: bytes) -> bytes:
    return gzip_stream([hello_member(), entry, end_of_archive()])


def zip_archive() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("app.py", HELLO_HANDLER)
    return out.getvalue()


@dataclass(frozen=True)
class Case:
    """A hostile archive: ``make(scale)`` builds it; ``status`` is the Builder service's answer."""

    name: str
    status: int
    make: Callable[[float], bytes]
    what: str


def _scaled(size: int, scale: float, minimum: int) -> int:
    return max(int(size * scale), minimum)


CASES: tuple[Case, ...] = (
    Case("pax-800MiB", 413, lambda s: huge_extended_header(b"x", _scaled(800 * MiB, s, 2 * MiB)),
         "one PAX header of 800 MiB (compressed to ~815 KB) before a valid app.py"),
    Case("gnu-longname-800MiB", 413, lambda s: huge_extended_header(b"L", _scaled(800 * MiB, s, 2 * MiB)),
         "one GNU long-name header of 800 MiB"),
    Case("pax-digits", 422, lambda s: digit_pax_header(_scaled(60 * 1024, s, 60 * 1024)),
         "a 60 KiB PAX header of digits only (CVE-2024-6232 class)"),
    Case("pax-many-records", 422, lambda s: many_pax_records(_scaled(5000, s, 5000)),
         "a PAX header of 5000 tiny records"),
    Case("members-200k", 413, lambda s: many_members(_scaled(200_000, s, 10_001)),
         "200,000 empty members (limit 10,000)"),
    Case("deep-path", 413, lambda s: deep_path(_scaled(4000, s, 600)), "a member name 8 KB deep (d/d/…/app.py)"),
    Case("gzip-bomb-1GiB", 413, lambda s: gzip_bomb(_scaled(1024 * MiB, s, 80 * MiB)),
         "1 GiB of zeros in one member (~1 MB compressed)"),
    Case("gzip-bomb-60MiB", 413, lambda s: gzip_bomb(60 * MiB),
         "60 MiB of zeros in one member: within max_source_bytes, over max_compression_ratio"),
    Case("declared-8GiB", 413, lambda s: declared_huge(), "a member header declaring 8 GiB"),
    Case("symlink", 422, lambda s: single(member(b"link", kind=b"2", linkname=b"/etc/passwd")), "a symbolic link"),
    Case("hardlink", 422, lambda s: single(member(b"link", kind=b"1", linkname=b"app.py")), "a hard link"),
    Case("device", 422, lambda s: single(member(b"null", kind=b"3")), "a character device"),
    Case("fifo", 422, lambda s: single(member(b"pipe", kind=b"6")), "a FIFO"),
    Case("absolute", 422, lambda s: single(member(b"/tmp/evil.py", b"x")), "an absolute path"),
    Case("dotdot", 422, lambda s: single(member(b"../evil.py", b"x")), "a path with .."),
    Case("duplicate", 422, lambda s: single(member(b"./app.py", b"x = 1\n")), "app.py twice"),
    Case("non-utf8-name", 422, lambda s: single(member(b"caf\xe9.py", b"x")), "a Latin-1 member name"),
    Case("newline-name", 422, lambda s: single(member(b"a\nb.py", b"x")), "a member name with a newline"),
    Case("pax-size-not-number", 422,
         lambda s: single(member(b"pax", pax_record(b"size", b"-1"), b"x") + member(b"f.py", b"x")),
         "a PAX size record of -1"),
    Case("base256-size", 422, lambda s: single(header(b"f.py", size_field=b"\xff" * 12)),
         "a negative base-256 size field"),
    Case("bad-checksum", 422, lambda s: single(bad_checksum()),
         "a header with a wrong checksum"),
    Case("truncated", 422, lambda s: gzip_stream([hello_member(), header(b"f.py", 4096), b"x" * 100]),
         "a member cut short"),
    Case("not-gzip", 422, lambda s: b"".join([hello_member(), end_of_archive()]), "an uncompressed tar"),
    Case("zip", 422, lambda s: zip_archive(), "a zip archive"),
)
