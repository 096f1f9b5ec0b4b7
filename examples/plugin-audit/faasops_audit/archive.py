"""A source store for audits: every source archive faasops deployed, kept in a directory.

``providers.sources: {type: audit-archive, path: /srv/audit/sources}`` keeps each archive as
``<path>/<sha256 hex>.tar.gz`` (content-addressed: the same sources are stored once), so an
auditor can see exactly what code a deployment was built from.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from faasops.errors import ProviderError

TYPE = "audit-archive"


class ArchiveSourceStore:
    """A :class:`faasops.providers.SourceStore` in a local directory."""

    def __init__(self, root: Path):
        self.root = root

    def path_for(self, digest: str) -> Path:
        return self.root / f"{digest.removeprefix('sha256:')}.tar.gz"

    def upload(self, function, snapshot) -> str:
        path = self.path_for(snapshot.digest)
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                # Written under a name of its own, then renamed: a reader never sees half of it.
                partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
                partial.write_bytes(snapshot.archive)
                os.replace(partial, path)
            except OSError as exc:
                raise ProviderError(f"{function.address}: can't keep its sources in {self.root}: {exc}") from exc
        return path.as_uri()


def from_options(options: dict, project) -> ArchiveSourceStore:
    path = options.get("path")
    if not isinstance(path, str) or not path:
        raise ProviderError("providers.sources (type audit-archive): `path` is required")
    return ArchiveSourceStore(Path(project.root) / path)
