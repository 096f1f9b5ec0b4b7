"""The project's git work tree, driven through the ``git`` command line.

Only the paths a write changed are staged and committed (``git commit -- PATHS``), so whatever
else someone left modified or staged in the work tree stays out of the API's commits. Each
commit carries a ``Faasops-Target:`` trailer naming what it changes: after a crash, the
commits made since the last applied one say exactly which targets still need an apply.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from faasops.errors import FaasopsError

TARGET_TRAILER = "Faasops-Target"
COMMITTER = ("faasops api", "faasops-api@localhost")


class GitError(FaasopsError):
    """A git command failed."""


class GitRepo:
    """The git work tree holding ``project_dir``."""

    def __init__(self, project_dir: Path):
        self.project_dir = project_dir
        top = self._git("rev-parse", "--show-toplevel", cwd=project_dir, what="find the git work tree").strip()
        self.top = Path(top).resolve()
        self.git_dir = Path(self._git("rev-parse", "--absolute-git-dir", what="find the git directory").strip())
        self._has_identity = bool(self._git("config", "user.email", check=False).strip())

    def _git(self, *args: str, cwd: Path | None = None, what: str = "", check: bool = True,
             env: dict[str, str] | None = None) -> str:
        proc = subprocess.run(["git", *args], cwd=cwd or self.top, capture_output=True, text=True,
                              env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})})
        if check and proc.returncode != 0:
            detail = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"
            raise GitError(f"git could not {what or ' '.join(args[:1])}: {detail}")
        return proc.stdout

    def relative(self, path: Path) -> str:
        """``path`` relative to the work tree's top (how git names it)."""
        return path.resolve().relative_to(self.top).as_posix()

    def head(self) -> str | None:
        out = self._git("rev-parse", "--verify", "-q", "HEAD", check=False).strip()
        return out or None

    def commit(self, paths: list[Path], message: str, author: str, targets: list[str]) -> str | None:
        """Stage exactly ``paths`` (additions, changes and deletions below them) and commit only
        them, authored by ``author``; return the new commit's id, or None when the paths hold
        no change (the project already said that)."""
        names = sorted({self.relative(p) for p in paths})
        # A path that is gone and was never committed has nothing to stage (git would refuse it).
        names = [n for n in names if (self.top / n).exists() or self._git("ls-files", "--", n).strip()]
        if not names:
            return None
        self._git("add", "-A", "--", *names, what="stage the change")
        unchanged = subprocess.run(["git", "diff", "--cached", "--quiet", "--", *names], cwd=self.top)
        if unchanged.returncode == 0:
            return None
        trailers = "\n".join(f"{TARGET_TRAILER}: {t}" for t in targets)
        env = {"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": f"{author}@faasops-api"}
        if not self._has_identity:
            env |= {"GIT_COMMITTER_NAME": COMMITTER[0], "GIT_COMMITTER_EMAIL": COMMITTER[1]}
        self._git("commit", "--quiet", "--no-verify", "-m", f"{message}\n\n{trailers}", "--", *names,
                  what="commit the change", env=env)
        head = self.head()
        assert head is not None
        return head

    def staged(self, paths: list[Path]) -> list[str]:
        """The files below ``paths`` whose changes are staged in the index."""
        names = sorted({self.relative(p) for p in paths})
        return self._git("diff", "--cached", "--name-only", "--", *names, what="read the index").split()

    def push(self, remote: str, branch: str) -> None:
        self._git("push", "--quiet", remote, f"HEAD:refs/heads/{branch}", what=f"push to {remote} {branch}")

    def targets_since(self, commit: str | None) -> list[tuple[str, list[str]]]:
        """The API commits after ``commit`` (all of them when None), oldest first, each with
        the targets its trailers name."""
        if self.head() is None:
            return []
        spec = f"{commit}..HEAD" if commit else "HEAD"
        out = self._git("log", "--reverse", f"--format=%H%x00%(trailers:key={TARGET_TRAILER},valueonly,separator=%x01)%x1e",
                        spec, what="read the history")
        found = []
        for record in out.split("\x1e"):
            record = record.strip("\n")
            if not record:
                continue
            sha, _, trailers = record.partition("\x00")
            targets = [t.strip() for t in trailers.split("\x01") if t.strip()]
            if targets:
                found.append((sha.strip(), targets))
        return found

    def is_ancestor(self, commit: str) -> bool:
        proc = subprocess.run(["git", "merge-base", "--is-ancestor", commit, "HEAD"], cwd=self.top,
                              capture_output=True)
        return proc.returncode == 0
