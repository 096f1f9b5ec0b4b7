"""The repository a reconciler deploys from: a clone it owns (``--repo URL --branch B``), brought
to the remote branch's head each round, or a directory used as it is.

With a remote, the clone is the reconciler's own: every round fetches the branch and hard-resets
the work tree to it, so a force-pushed or rewritten branch is followed as it is, and nothing a
previous round (or a killed reconciler) left behind in tracked files survives. Untracked files
are kept: the local backend's ``.faasops`` state lives there.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from faasops.errors import FaasopsError

GIT_TIMEOUT_S = 300.0  # a fetch over a slow link; a hung one must not stop the loop forever
_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")


class CheckoutError(FaasopsError):
    """The repository could not be fetched or brought to the branch's head."""


def redacted(text: str) -> str:
    """``https://user:token@host/…`` → ``https://***@host/…``: remote URLs may carry credentials,
    and they must never reach a log line, a metric label or an error message."""
    return _CREDENTIALS.sub(r"\1***@", text)


@dataclass(frozen=True)
class Checkout:
    """Where the project is (``directory``) and the commit it is at (``revision``: a full SHA,
    or "" when the directory is not a git work tree)."""

    directory: Path
    revision: str


class Repository:
    """A directory, optionally a clone of ``url`` at ``branch`` kept in step with it.

    ``project_path`` is the project's directory inside the repository (``--path``)."""

    def __init__(self, directory: Path, url: str | None = None, branch: str = "main", project_path: str = "."):
        self.directory = directory
        self.url = url
        self.branch = branch
        self.project_path = project_path
        self._env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}

    @property
    def project_directory(self) -> Path:
        return (self.directory / self.project_path).resolve()

    def describe(self) -> str:
        """``URL@branch`` (credentials redacted) or the directory, for log lines and labels."""
        return f"{redacted(self.url)}@{self.branch}" if self.url else str(self.directory)

    def update(self) -> Checkout:
        """Bring the work tree to the remote branch's head (cloning it the first time); without
        a URL, just read the directory's revision."""
        if self.url:
            self._sync()
        return Checkout(self.project_directory, self._revision())

    def _sync(self) -> None:
        if not (self.directory / ".git").exists():
            if self.directory.exists() and any(self.directory.iterdir()):
                raise CheckoutError(f"{self.directory} is not empty and not a clone of {redacted(self.url or '')}: "
                                    "give reconcile an empty or new -C directory")
            self.directory.mkdir(parents=True, exist_ok=True)
            self._git("init", "--quiet")
            self._git("remote", "add", "origin", self.url or "")
        else:
            # The URL may have changed (a rotated token): the remote follows --repo.
            self._git("remote", "set-url", "origin", self.url or "")
        # A reconciler killed inside a git command leaves its index lock behind; the clone is
        # this reconciler's alone (one replica), so a lock in it is always a leftover.
        (self.directory / ".git" / "index.lock").unlink(missing_ok=True)
        self._git("fetch", "--quiet", "--prune", "--no-tags", "origin",
                  f"+refs/heads/{self.branch}:refs/remotes/origin/{self.branch}")
        self._git("checkout", "--quiet", "--force", "-B", self.branch, f"refs/remotes/origin/{self.branch}")
        self._git("reset", "--quiet", "--hard", f"refs/remotes/origin/{self.branch}")

    def _revision(self) -> str:
        try:
            result = self._run("rev-parse", "--verify", "--quiet", "HEAD^{commit}", cwd=self.project_directory)
        except CheckoutError:
            if self.url:
                raise
            return ""  # a plain directory (no git, or not there: loading the project says so)
        return result.stdout.strip() if result.returncode == 0 else ""

    def _git(self, *args: str) -> str:
        result = self._run(*args)
        if result.returncode != 0:
            lines = [line.strip() for line in (result.stderr or result.stdout).splitlines() if line.strip()]
            detail = redacted(" ".join(lines[-2:]) or "no output")
            raise CheckoutError(f"git {args[0]} {self.describe()} failed: {detail}")
        return result.stdout

    def _run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        where = cwd or self.directory
        if not where.is_dir():
            raise CheckoutError(f"{where} is not a directory")
        try:
            return subprocess.run(["git", *args], cwd=where, env=self._env, capture_output=True, text=True,
                                  timeout=GIT_TIMEOUT_S)
        except FileNotFoundError:
            raise CheckoutError("reconcile needs git, which is not installed") from None
        except subprocess.TimeoutExpired:
            raise CheckoutError(f"git {args[0]} {self.describe()} did not finish within {GIT_TIMEOUT_S:g}s") from None
