"""Helpers the test modules import: run the real CLI, copy examples, snapshot trees."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def output(self) -> str:
        return self.out + self.err


def run_faasops(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
                input: str | None = None, timeout: float = 600) -> Result:
    """Run the real CLI in a subprocess, as a user or CI would."""
    proc = subprocess.run(
        [sys.executable, "-m", "faasops.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, input=input,
        env={**os.environ, **(env or {})},
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def copy_example(name: str, dest: Path) -> Path:
    target = dest / name
    shutil.copytree(EXAMPLES / name, target, ignore=shutil.ignore_patterns(".faasops", "__pycache__"))
    return target


def tree_snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes: to prove a command wrote nothing."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() and not p.is_symlink() else b"<link>")
        for p in sorted(root.rglob("*"))
        if p.is_file() or p.is_symlink()
    }
