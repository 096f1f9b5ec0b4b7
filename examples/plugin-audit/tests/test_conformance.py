"""The audit-archive source store against faasops' provider conformance kit: the contract's
behavioural tests come from faasops, this module only says how to build the provider."""

from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from faasops.conformance import SourceStoreContract
from faasops_audit.archive import ArchiveSourceStore


class TestArchiveSourceStore(SourceStoreContract):
    @pytest.fixture
    def source_store(self, tmp_path):
        return ArchiveSourceStore(tmp_path / "archive")

    @pytest.fixture
    def read_source(self):
        return lambda uri: Path(unquote(urlparse(uri).path)).read_bytes()
