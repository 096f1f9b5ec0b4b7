"""The corpus of broken projects: each fails with a located, teaching message, and loading it
writes nothing.

Each ``broken/<case>/`` is a tiny project; ``expected.txt`` holds one line that the error must
contain (the first one, as the problems sort), and an optional ``environment.txt`` the environment
to load it with (``-e``, for a problem in an overlay). To add a case, make the directory and its
``expected.txt``; the test picks it up.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from faasops.errors import ManifestError
from faasops.manifest import load_project

BROKEN = Path(__file__).parent / "broken"
OUTSIDE = Path(__file__).parent / "fixtures"
CASES = sorted(path.name for path in BROKEN.iterdir() if path.is_dir())


def snapshot(root: Path) -> dict[str, str]:
    """Every entry below ``root`` (symlinks not followed) with its content hash or link target."""
    entries: dict[str, str] = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(directory, name)
            key = path.relative_to(root).as_posix()
            if path.is_symlink():
                entries[key] = "link:" + os.readlink(path)
            elif path.is_dir():
                entries[key] = "dir"
            else:
                entries[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


def environment(root: Path) -> str | None:
    """The case's ``-e`` environment, if it has one."""
    path = root / "environment.txt"
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def test_corpus_covers_at_least_24_cases():
    assert len(CASES) >= 24
    assert all((BROKEN / case / "expected.txt").is_file() for case in CASES)


@pytest.mark.parametrize("case", CASES)
def test_broken_project_is_rejected_with_a_located_message(case: str):
    root = BROKEN / case
    expected = (root / "expected.txt").read_text(encoding="utf-8").strip()
    before = snapshot(root), snapshot(OUTSIDE)

    with pytest.raises(ManifestError) as caught:
        load_project(root, environment(root))

    lines = str(caught.value).splitlines()
    assert expected in lines, "\n".join(lines)
    assert [str(problem) for problem in caught.value.problems] == lines
    assert (snapshot(root), snapshot(OUTSIDE)) == before, "loading a project must not write anything"


@pytest.mark.slow  # every broken project of the corpus through the real CLI
def test_every_broken_project_fails_the_real_cli_with_located_messages_and_writes_nothing():
    """The whole corpus through `faasops apply --auto-approve` — the command with the most to
    lose (validate and plan load manifests the same way): exit 1, the expected located line on
    stderr, no traceback, and not a byte written (no `.faasops/` either)."""
    command = ("apply", "--auto-approve")
    import subprocess
    import sys

    for case in CASES:
        root = BROKEN / case
        expected = (root / "expected.txt").read_text(encoding="utf-8").strip()
        before = snapshot(root), snapshot(OUTSIDE)
        selected = ("-e", environment(root)) if environment(root) else ()
        result = subprocess.run([sys.executable, "-m", "faasops.cli", "-C", str(root), *selected, *command],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 1, (case, result.stdout, result.stderr)
        assert f"  {expected}" in result.stderr.splitlines(), (case, result.stderr)
        assert "Traceback" not in result.stderr, case
        assert (snapshot(root), snapshot(OUTSIDE)) == before, f"{case}: the CLI wrote something"
