"""The behavioural tests of :class:`faasops.providers.SourceStore`."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from faasops.conformance.samples import two_function_project
from faasops.model import Project
from faasops.providers import SourceSnapshot, SourceStore
from faasops.source import snapshot_directory

#: ``read_source(uri) -> bytes``: the archive a store keeps under ``uri``.
SourceReader = Callable[[str], bytes]


class SourceStoreContract:
    """Subclass it as ``Test…`` and define the fixture ``source_store`` (a store, empty for each
    test; it may use the ``conformance_project`` fixture). Define ``read_source(uri) -> bytes`` too, reading
    what the store keeps under a URI (with your service's client), so the tests can check the
    content; without it those checks are skipped::

        class TestMyStore(SourceStoreContract):
            @pytest.fixture
            def source_store(self, tmp_path):
                return MyStore(tmp_path / "archives")

            @pytest.fixture
            def read_source(self):
                return lambda uri: Path(urlparse(uri).path).read_bytes()
    """

    @pytest.fixture
    def source_store(self) -> SourceStore:
        raise NotImplementedError("define the fixture source_store in your SourceStoreContract subclass")

    @pytest.fixture
    def read_source(self) -> SourceReader | None:
        return None

    @pytest.fixture
    def conformance_project(self, tmp_path: Path) -> Project:
        return two_function_project(tmp_path)

    def _snapshots(self, conformance_project: Project) -> tuple[SourceSnapshot, SourceSnapshot]:
        hello, bye = conformance_project.functions()
        return snapshot_directory(hello.source_dir), snapshot_directory(bye.source_dir)

    def test_an_upload_is_idempotent_and_keeps_the_archive(
        self, source_store: SourceStore, conformance_project: Project, read_source: SourceReader | None
    ) -> None:
        hello = conformance_project.functions()[0]
        snapshot, _ = self._snapshots(conformance_project)
        first = source_store.upload(hello, snapshot)
        assert source_store.upload(hello, snapshot) == first
        if read_source is None:
            pytest.skip("no read_source fixture: the stored content is not checked")
        assert read_source(first) == snapshot.archive

    def test_the_uri_is_addressed_by_the_digest(
        self, source_store: SourceStore, conformance_project: Project, read_source: SourceReader | None
    ) -> None:
        hello, bye = conformance_project.functions()
        one, two = self._snapshots(conformance_project)
        assert one.digest != two.digest
        uri_one, uri_two = source_store.upload(hello, one), source_store.upload(bye, two)
        assert uri_one != uri_two
        assert one.digest.removeprefix("sha256:") in uri_one
        # The same archive uploaded for another function is the same object.
        assert source_store.upload(bye, one) == uri_one
        if read_source is not None:
            assert (read_source(uri_one), read_source(uri_two)) == (one.archive, two.archive)

    def test_concurrent_uploads_of_one_digest_agree(
        self, source_store: SourceStore, conformance_project: Project, read_source: SourceReader | None
    ) -> None:
        hello = conformance_project.functions()[0]
        snapshot, _ = self._snapshots(conformance_project)
        with ThreadPoolExecutor(4) as pool:
            uris = set(pool.map(lambda _: source_store.upload(hello, snapshot), range(8)))
        assert len(uris) == 1
        if read_source is not None:
            assert read_source(uris.pop()) == snapshot.archive
