"""Helpers the GitOps tests import: projects and git repositories."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

from cli_support import EXAMPLES

GIT_ENV = {"GIT_AUTHOR_NAME": "Someone", "GIT_AUTHOR_EMAIL": "someone@example.test",
           "GIT_COMMITTER_NAME": "Someone", "GIT_COMMITTER_EMAIL": "someone@example.test",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path, *args: str, check: bool = True) -> str:
    """Run git as a person working in ``cwd`` would; returns stdout."""
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                            env={**os.environ, **GIT_ENV})
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result.stdout


def bare_repository(root: Path) -> tuple[Path, Path]:
    """A bare repository with one commit on ``main`` (a README), and a clone of it: (bare, clone)."""
    bare, seed, clone = root / "remote.git", root / "seed", root / "deploy-repo"
    git(root, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    git(root, "clone", "--quiet", str(bare), str(seed))
    (seed / "README.md").write_text("Deployed by Argo CD from this repository.\n")
    git(seed, "add", "README.md")
    git(seed, "commit", "--quiet", "-m", "start")
    git(seed, "push", "--quiet", "origin", "HEAD:refs/heads/main")
    git(root, "clone", "--quiet", "--branch", "main", str(bare), str(clone))
    return bare, clone


def make_project(root: Path, workspaces: str, providers: str = "") -> Path:
    """The hello example under ``root/project`` with these workspaces (YAML list, every function
    may use ``source: functions/hello``) and provider overrides (YAML mapping)."""
    project = root / "project"
    shutil.copytree(EXAMPLES / "hello", project, ignore=shutil.ignore_patterns(".faasops", "__pycache__"))
    text = "apiVersion: faasops/v1\nproject: hello\nbackend: local\n"
    if providers:
        text += "providers:\n" + textwrap.indent(textwrap.dedent(providers), "  ")
    text += "workspaces:\n" + textwrap.indent(textwrap.dedent(workspaces), "  ")
    (project / "faas.yaml").write_text(text)
    return project


def files_under(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (relative path → bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
