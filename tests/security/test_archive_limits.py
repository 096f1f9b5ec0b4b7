"""Hostile source archives: every class of :mod:`testkit.hostile_archives` posted to a
real ``faasops builder serve`` is refused with a 4xx and a message, and the service goes on
serving; plus the pre-scan (:func:`faasops.source_archive.scan_source_archive`) on crafted headers.

How fast and in how little memory they are refused is measured by ``bench/archive_bench.py``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

import pytest

from faasops.source import snapshot_directory
from faasops.source_archive import ArchiveError, ArchiveLimits, extract_source_archive, scan_source_archive
from testkit import hostile_archives as hostile
from testkit.hostile_archives import CASES, Case

# The Builder service's test harness lives with its own tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "builder"))
from builder_support import MAX_UPLOAD_BYTES, BuilderServer, function_spec, local_service_config  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
# Big enough to cross every limit, small enough to post quickly (the bench uses the full sizes).
TEST_SCALE = 0.005
SPEC = {"project": "p", "function": function_spec("hostile")}


@pytest.fixture(scope="module")
def builder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BuilderServer]:
    with BuilderServer(tmp_path_factory.mktemp("archive-builder"),
                       local_service_config(max_upload_bytes=MAX_UPLOAD_BYTES)) as server:
        yield server


def _detail(response) -> str:  # type: ignore[no-untyped-def]
    return json.loads(response.data)["detail"]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_archive_is_refused_with_a_message_and_the_service_keeps_serving(
        builder: BuilderServer, case: Case) -> None:
    archive = case.make(TEST_SCALE)
    assert len(archive) < MAX_UPLOAD_BYTES, "a case must fit the upload limit to test the archive checks"

    response = builder.upload("/api/v1/build", archive, SPEC)

    assert response.status == case.status, response.data
    detail = _detail(response)
    assert detail.startswith("source archive: ") and len(detail) > len("source archive: ") + 10, detail
    if case.status == 413:
        assert "this builder's limits." in detail, detail
    assert "Traceback" not in builder.log()
    assert all(task["function"] != "hostile" for task in builder.workspace_tasks("demo"))  # nothing queued
    after = builder.upload("/api/v1/build", hostile.valid_archive(), {"project": "p", "function": function_spec("after")})
    assert after.status == 202, after.data


def test_builder_limits_from_its_config_apply_to_uploads(tmp_path: Path) -> None:
    config = local_service_config(max_upload_bytes=MAX_UPLOAD_BYTES, max_header_bytes=2048, max_name_bytes=64,
                                  max_files=3)
    with BuilderServer(tmp_path, config) as server:
        long_name = hostile.gzip_stream([hostile.hello_member(), hostile.member(b"n" * 80 + b".py", b"x = 1\n"),
                                         hostile.end_of_archive()])
        refused = server.upload("/api/v1/build", long_name, SPEC)
        assert refused.status == 413 and "limits.max_name_bytes is 64" in _detail(refused), refused.data

        many = hostile.gzip_stream([hostile.hello_member(), *(hostile.member(b"f%d.py" % i) for i in range(3)),
                                    hostile.end_of_archive()])
        refused = server.upload("/api/v1/build", many, SPEC)
        assert refused.status == 413 and "more than 3 members" in _detail(refused), refused.data

        record = hostile.pax_record(b"comment", b"c" * 3000)
        pax = hostile.single(hostile.member(b"pax", record, b"x") + hostile.member(b"f.py", b"x = 1\n"))
        refused = server.upload("/api/v1/build", pax, SPEC)
        assert refused.status == 413 and "limits.max_header_bytes is 2048" in _detail(refused), refused.data


# ---------------------------------------------------------------------------------- pre-scan


def _scan(*entries: bytes, limits: ArchiveLimits = ArchiveLimits()) -> tuple[str, ...]:
    scanned = scan_source_archive(hostile.gzip_stream([*entries, hostile.end_of_archive()]), limits)
    return tuple(member.path for member in scanned.members)


def test_scan_accepts_the_archives_faasops_and_gnu_tar_write() -> None:
    snapshot = snapshot_directory(REPO / "examples" / "hello" / "functions" / "hello")
    assert [m.path for m in scan_source_archive(snapshot.archive).members] == list(snapshot.files)
    long_name = "deep/" * 30 + "module.py"  # over ustar's 100 bytes: a PAX `path`, or a GNU `L`
    pax = hostile.member(b"pax", hostile.pax_record(b"path", long_name.encode())
                         + hostile.pax_record(b"mtime", b"1700000000.5"), b"x")
    gnu = hostile.member(b"././@LongLink", long_name.encode() + b"\0", b"L")
    assert _scan(pax + hostile.member(b"x", b"1")) == (long_name,)
    assert _scan(gnu + hostile.member(b"x", b"1")) == (long_name,)
    # `tar czf src.tgz -C dir .` names members ./app.py under a ./ directory; ustar prefixes join.
    assert _scan(hostile.member(b"./", kind=b"5"), hostile.member(b"./app.py", b"1"),
                 hostile.member(b"pkg/", kind=b"5"), hostile.member(b"mod.py", b"2", prefix=b"pkg")) == (
        "", "app.py", "pkg", "pkg/mod.py")
    # git archive's global header (a comment with the commit id) is fine.
    comment = hostile.member(b"pax_global_header", hostile.pax_record(b"comment", b"deadbeef"), b"g")
    assert _scan(comment, hostile.member(b"app.py", b"1")) == ("app.py",)


@pytest.mark.parametrize("entries, message, limit", [
    ([hostile.header(b"pax", 70_000, b"x")], "a PAX header of 70000 bytes; at most 65536", "max_header_bytes"),
    ([hostile.header(b"././@LongLink", 1 << 30, b"L")], "a GNU long name header of 1073741824 bytes", "max_header_bytes"),
    ([hostile.header(b"g", 1 << 20, b"g")], "a PAX global header of 1048576 bytes", "max_header_bytes"),
    ([hostile.member(b"K", b"target\0", b"K")], "a GNU long link name", None),
    ([hostile.member(b"pax", b"99999 path=a\n", b"x")], "malformed PAX record at byte 0", None),
    ([hostile.member(b"pax", b"12 path=a\n", b"x")], "malformed PAX record at byte 0", None),
    ([hostile.member(b"pax", b"abc path=a\n", b"x")], "malformed PAX record at byte 0 (no length)", None),
    ([hostile.member(b"pax", b"1" * 200, b"x")], "a run of more than 64 digits", None),
    ([hostile.member(b"pax", hostile.pax_record(b"comment", b"7" * 65), b"x")], "a run of more than 64 digits", None),
    ([hostile.member(b"pax", hostile.pax_record(b"size", b"1_000"), b"x")], "the PAX size '1_000' is not a number", None),
    ([hostile.member(b"pax", hostile.pax_record(b"GNU.sparse.map", b"0,1"), b"x")], "'GNU.sparse.map'", None),
    ([hostile.member(b"pax", hostile.pax_record(b"linkpath", b"/etc"), b"x")], "'linkpath'", None),
    ([hostile.member(b"g", hostile.pax_record(b"path", b"evil"), b"g")], "'path' in a global header", None),
    ([hostile.member(b"pax", hostile.pax_record(b"path", b"a"), b"x"),
      hostile.member(b"L", b"b\0", b"L")], "one extended header per member", None),
    ([hostile.member(b"L", b"b\0", b"L")], "ends after a GNU long name header without its member", None),
    ([hostile.header(b"f", size_field=b"0o17\0       ")], "size field is not an octal number", None),
    ([hostile.header(b"f", size_field=b"\x80" + bytes(11))], "size field is not an octal number", None),
    ([hostile.member(b"d/", b"data", b"5")], "a directory with 4 bytes of data", None),
    ([hostile.member(b"a/b/", b"x")], "is named like a directory", None),
    ([hostile.member(b"./", b"x")], "a file without a name", None),
    ([hostile.member(b"L", b"a/" + b"x" * 256 + b"\0", b"L"), hostile.member(b"f", b"1")],
     "longer than 255 bytes", None),
    ([hostile.member(b"x" * 99, b"1", prefix=b"/abs")], "refusing absolute path", None),
    ([hostile.member(b"ok.py", b"1", prefix=b"..")], "leaves the source directory", None),
    ([hostile.member(b"a", b"1"), hostile.member(b"a", kind=b"5")], "appears twice", None),
    ([hostile.member(b"tab\t.py", b"1")], "contains a control character", None),
    ([hostile.member(b"\xff.py", b"1")], "is not UTF-8", None),
    ([hostile.member(b"pax", hostile.pax_record(b"path", b"caf\xe9"), b"x"), hostile.member(b"f", b"1")],
     "is not UTF-8", None),
])
def test_scan_refuses_crafted_headers(entries: list[bytes], message: str, limit: str | None) -> None:
    with pytest.raises(ArchiveError) as raised:
        _scan(hostile.hello_member(), *entries)
    assert message in str(raised.value)
    assert raised.value.limit == limit


def test_scan_counts_members_sizes_and_the_compression_ratio() -> None:
    limits = ArchiveLimits(max_source_bytes=1024 * 1024, max_files=3, max_compression_ratio=50)
    three = [hostile.member(b"f%d" % i, b"x") for i in range(3)]
    assert len(_scan(*three, limits=limits)) == 3
    with pytest.raises(ArchiveError, match="more than 3 members") as raised:
        _scan(*three, hostile.member(b"f4"), limits=limits)
    assert raised.value.limit == "max_files"
    with pytest.raises(ArchiveError, match="unpacks to more than 1048576 bytes") as raised:
        _scan(hostile.header(b"big", 1024 * 1024 + 1), limits=limits)
    assert raised.value.limit == "max_source_bytes"
    with pytest.raises(ArchiveError, match="expands more than 50 times") as raised:
        scan_source_archive(hostile.gzip_bomb(2 * 1024 * 1024), ArchiveLimits(max_compression_ratio=50))
    assert raised.value.limit == "max_compression_ratio"


def test_extraction_reproduces_the_snapshot_and_only_what_was_scanned(tmp_path: Path) -> None:
    source = REPO / "examples" / "hello" / "functions" / "hello"
    snapshot = snapshot_directory(source)
    extract_source_archive(snapshot.archive, tmp_path / "out")
    assert snapshot_directory(tmp_path / "out").digest == snapshot.digest
    # Bytes after the end-of-archive block are never handed to tarfile.
    trailing = hostile.gzip_stream([hostile.hello_member(), hostile.end_of_archive(),
                                    hostile.member(b"smuggled.py", b"x")])
    extract_source_archive(trailing, tmp_path / "trailing")
    assert sorted(p.name for p in (tmp_path / "trailing").iterdir()) == ["app.py"]
