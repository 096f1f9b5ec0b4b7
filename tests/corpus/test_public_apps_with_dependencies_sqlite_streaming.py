"""Public Spin Python apps that use dependencies (requirements.txt), SQLite and streaming
(a handler on the wasi-http exports), asserted to answer as under Spin.

``sdk-external-lib``, ``sdk-spin-sqlite`` and ``sdk-streaming`` are built in one project and served
by one ``faasops up``; ``sdk-matrix-math`` (numpy, a native package) is a project of its own,
because its apply must fail. Provenance and expected behaviour: tests/corpus/CORPUS.md.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

import pytest

from corpus_support import (
    BLOB_SHA256, FACT, UP_START_TIMEOUT_S, Upstream, applied_project, apply, last_log, request, write_project,
)
from up_support import UpProcess, running_up

SERVED = ("sdk-external-lib", "sdk-spin-sqlite", "sdk-streaming")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, upstream: Upstream) -> Path:
    return applied_project(tmp_path_factory.mktemp("corpus-more") / "project", SERVED, upstream)


@pytest.fixture(scope="module")
def up(project: Path) -> Iterator[UpProcess]:
    with running_up(project, start_timeout_s=UP_START_TIMEOUT_S) as server:
        yield server


@pytest.mark.parametrize("method, target, body, status, answer", [
    ("GET", "/", None, 200, b"Hello World"),
    # the route exists for POST only: http_router raises InvalidMethodError, which the app doesn't catch
    ("GET", "/post", None, 500, b""),
    ("POST", "/post", b"TEST", 200, b"TEST"),
    ("GET", "/queryparams?foo=bar", None, 200, b"bar"),
    ("GET", "/queryparams/?foo=b%20r", None, 200, b"b r"),  # trim_last_slash; parse_qs decodes
])
def test_external_lib_example_routes_with_http_router_from_requirements(
        up: UpProcess, method: str, target: str, body: bytes | None, status: int, answer: bytes) -> None:
    got = request(up, "sdk-external-lib", target, method, body)
    assert (got.status, got.body) == (status, answer)
    assert got.header("content-type") == ("text/plain" if status == 200 else None)


def test_external_lib_example_answers_404_for_an_unknown_path(up: UpProcess) -> None:
    got = request(up, "sdk-external-lib", "/nope")
    assert (got.status, got.body, got.header("content-type"), got.header("content-length")) == (404, b"", None, "0")


def test_matrix_math_example_is_refused_naming_numpy(tmp_path: Path) -> None:
    """numpy is a native package: upstream builds it from a WASI wheel directory (`-p`); faasops
    installs wheels for the build host's pip, so the build must stop with a message naming it."""
    root = write_project(tmp_path / "project", ["sdk-matrix-math"])
    applied = apply(root)
    assert applied.code == 1, applied.output
    assert "numpy" in applied.output
    assert "Traceback" not in applied.output


def test_sqlite_example_builds_and_fails_on_the_missing_table_as_under_spin(project: Path, up: UpProcess) -> None:
    """The declared ``default`` database starts empty (upstream creates ``todos`` with
    ``spin up --sqlite``), so ``execute`` returns Spin's ``io`` error and the app, which does not
    catch it, answers spin-sdk's 500."""
    got = request(up, "sdk-spin-sqlite")
    assert (got.status, got.body, got.header("content-type")) == (500, b"", None)
    log = last_log(project, "sdk-spin-sqlite")
    assert "spin_sdk.wit.types.Err: Error_Io(" in log
    assert "no such table: todos" in log


def test_streaming_example_echoes_the_body_with_its_content_type(up: UpProcess) -> None:
    body = b"chunk " * 5000
    got = request(up, "sdk-streaming", "/echo", "POST", body, headers=[("content-type", "text/x-corpus")])
    assert (got.status, got.body, got.header("content-type")) == (200, body, "text/x-corpus")


def test_streaming_example_hashes_each_url_it_is_given(up: UpProcess, upstream: Upstream) -> None:
    blob, fact = f"{upstream.url}/blob", f"{upstream.url}/fact"
    got = request(up, "sdk-streaming", "/hash-all", headers=[("url", blob), ("url", fact)])
    assert (got.status, got.header("content-type")) == (200, "text/plain")
    # one line per url, in the order the downloads finish
    assert sorted(got.body.decode().splitlines()) == sorted(
        [f"{blob}: {BLOB_SHA256}", f"{fact}: {hashlib.sha256(FACT).hexdigest()}"])


def test_streaming_example_answers_400_to_anything_else(up: UpProcess) -> None:
    got = request(up, "sdk-streaming", "/")
    assert (got.status, got.body) == (400, b"")
