"""What the security tests share: the real CLI in a subprocess (timed, optionally under a memory
ceiling), a tree snapshot that proves nothing was written, and small hostile projects."""

from __future__ import annotations

import hashlib
import os
import resource
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from faasops.scaffold_project import HELLO_HANDLER

HELLO_MANIFEST = """\
apiVersion: faasops/v1
project: hello
backend: local
workspaces:
  - name: demo
    functions:
      - name: hello
        source: functions/hello
"""

# Files larger than this are fingerprinted by size and mtime instead of hashed (a hostile
# project may hold a 100 GiB sparse file).
_HASHED_BYTES = 8 << 20


@dataclass
class CliRun:
    """One run of the real CLI."""

    args: tuple[str, ...]
    code: int
    out: str
    err: str
    seconds: float

    @property
    def output(self) -> str:
        return self.out + self.err

    def __str__(self) -> str:
        return (f"faasops {' '.join(self.args)} → exit {self.code} in {self.seconds:.2f}s\n"
                f"--- stdout\n{self.out[-3000:]}\n--- stderr\n{self.err[-3000:]}")


def run_cli(project: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
            memory_limit: int | None = None, file_modes_apply: bool = False) -> CliRun:
    """``python -m faasops.cli -C project ARGS`` as a user would run it; ``memory_limit`` caps the
    address space (bytes), so a memory bomb fails the test instead of the machine.
    ``file_modes_apply`` holds the command to file permissions even when the tests run as root
    (CI does), by dropping the capabilities that let root read any file."""

    def limit_memory() -> None:
        if memory_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    command = [sys.executable, "-m", "faasops.cli", "-C", str(project), *args]
    if file_modes_apply and os.geteuid() == 0:
        command = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", *command]
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})}, preexec_fn=limit_memory)
    return CliRun(tuple(args), proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def tree_state(root: Path) -> dict[str, str]:
    """Every entry below ``root`` (symlinks not followed, FIFOs not opened) with its content
    hash — or size and mtime for huge files — or link target: equal states mean nothing changed."""
    entries: dict[str, str] = {}
    if not root.exists():
        return entries
    for directory, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            path = Path(directory, name)
            info = path.lstat()
            key = path.relative_to(root).as_posix()
            if stat.S_ISLNK(info.st_mode):
                entries[key] = "link:" + os.readlink(path)
            elif stat.S_ISDIR(info.st_mode):
                entries[key] = "dir"
            elif not stat.S_ISREG(info.st_mode):
                entries[key] = f"special:{stat.S_IFMT(info.st_mode):o}"
            elif info.st_size > _HASHED_BYTES:
                entries[key] = f"size:{info.st_size}:mtime:{info.st_mtime_ns}"
            else:
                entries[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


def write_project(root: Path, manifest: str = HELLO_MANIFEST, handler: str | None = HELLO_HANDLER) -> Path:
    """A local-backend project with ``functions/hello/app.py``; returns the source directory."""
    source = root / "functions" / "hello"
    source.mkdir(parents=True)
    (root / "faas.yaml").write_text(manifest, encoding="utf-8")
    if handler is not None:
        (source / "app.py").write_text(handler, encoding="utf-8")
    return source


def problem_lines(stderr: str) -> list[str]:
    """The problems the CLI listed (``  file:line:col path: message``), or its one-line error."""
    lines = stderr.splitlines()
    if lines and lines[0].startswith("Error: ") and "problem(s) in the manifests" in lines[0]:
        return [line[2:] for line in lines[1:] if line.startswith("  ")]
    return [line.removeprefix("Error: ") for line in lines if line.startswith("Error: ")]
