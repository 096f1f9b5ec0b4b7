"""What every route of the Platform API needs to know about the project it serves."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ApiContext:
    """The project one ``faasops api serve`` process serves.

    ``project_dir`` is the ``-C`` directory: the git work tree holding the root ``faas.yaml``, the
    source of truth every write edits and commits. ``environment`` is the ``-e`` overlay (None:
    the base manifests). ``tokens_file`` holds the hashed API tokens (None: only the
    ``FAASOPS_API_TOKEN`` admin token). ``push`` is ``(remote, branch)`` when every commit is
    pushed, else None.
    """

    project_dir: Path
    environment: str | None = None
    tokens_file: Path | None = None
    push: tuple[str, str] | None = None
